"""Ed25519 key pairs of a certifier: create, load, fingerprint.

The private key is a PKCS#8 PEM file readable by its owner only (0600); the public key is a
SubjectPublicKeyInfo PEM file that buyers and contracts hold. A key's fingerprint is the sha256
of its raw 32-byte public key, so it does not depend on the PEM wrapping.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from robocell.errors import RobocellError
from robocell.util import atomic_write_bytes, read_error, sha256_bytes

PRIVATE_KEY_NAME = "certifier.key"
PUBLIC_KEY_NAME = "certifier.pub"


def generate_keypair(
    out_dir: str | Path, key_name: str = PRIVATE_KEY_NAME, pub_name: str = PUBLIC_KEY_NAME
) -> tuple[Path, Path]:
    """Write a fresh Ed25519 pair to ``out_dir`` as ``key_name`` (0600) and ``pub_name``
    (the certifier's by default); refuses to overwrite an existing key."""
    out_dir = Path(out_dir)
    key_path, pub_path = out_dir / key_name, out_dir / pub_name
    for path in (key_path, pub_path):
        if path.exists():
            raise RobocellError(f"{path}: already exists; refusing to overwrite a key")
    private_key = Ed25519PrivateKey.generate()
    key_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    atomic_write_bytes(key_path, key_pem, mode=0o600)
    atomic_write_bytes(pub_path, public_key_pem(private_key.public_key()), mode=0o644)
    return key_path, pub_path


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    """The SubjectPublicKeyInfo PEM form of a public key."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read an unencrypted Ed25519 PEM private key; refuses one that others can read."""
    path = Path(path)
    data = _read(path, "private key")
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise RobocellError(f"{path}: private key is readable by others; run chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise RobocellError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise RobocellError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Read an Ed25519 PEM public key."""
    path = Path(path)
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise RobocellError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise RobocellError(f"{path}: not an Ed25519 public key")
    return key


def public_key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """sha256 hex of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_bytes(raw)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise read_error(path, exc, f"a {what} file") from None
