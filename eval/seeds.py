"""Secret master seeds, their public commitments, and the episode seeds derived from them.

A buyer publishes ``commitment(master_seed)`` before the supplier delivers and gives the master
seed to the certifier only. Nobody who lacks the master seed can compute an episode seed, so no
one can train or tune on the certification episodes; once the certificate reveals the seed,
anyone can check it against the commitment and recompute every episode seed.

Rules (version 1):

* master seed: 32 random bytes from the OS (``secrets``), written as 64 lowercase hex digits;
* commitment: ``sha256(master_seed_bytes)`` in hex;
* episode seed *i*: the first 8 bytes of ``HMAC-SHA256(key=master_seed_bytes,
  msg=b"robocell/episode-seed/v1:" + str(i))`` read as a big-endian integer and shifted right
  by one bit (a 63-bit non-negative integer, accepted by ``env.reset(seed=...)``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from robocell.errors import RobocellError
from robocell.util import atomic_write_text, read_error, sha256_bytes

MASTER_SEED_BYTES = 32
EPISODE_SEED_LABEL = b"robocell/episode-seed/v1:"
DERIVATION_RULE = (
    "episode_seed(i) = int.from_bytes(HMAC-SHA256(key=bytes.fromhex(master_seed), "
    "msg=b'robocell/episode-seed/v1:' + str(i).encode())[:8], 'big') >> 1; "
    "commitment = sha256(bytes.fromhex(master_seed))"
)


def new_master_seed() -> str:
    """A fresh secret master seed: 32 random bytes as 64 hex digits."""
    return secrets.token_hex(MASTER_SEED_BYTES)


def commitment(master_seed_hex: str) -> str:
    """The public commitment of a master seed: sha256 hex of its bytes."""
    return sha256_bytes(_seed_bytes(master_seed_hex))


def episode_seed(master_seed_hex: str, index: int) -> int:
    """The seed of certification episode ``index`` (0-based); see the module docstring."""
    if index < 0:
        raise ValueError(f"episode index must be >= 0, got {index}")
    message = EPISODE_SEED_LABEL + str(index).encode()
    digest = hmac.new(_seed_bytes(master_seed_hex), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def read_master_seed(path: str | Path) -> str:
    """Read a master seed file (64 hex digits, surrounding whitespace ignored)."""
    path = Path(path)
    try:
        text = path.read_text().strip().lower()
    except UnicodeDecodeError:
        raise RobocellError(f"{path}: not a master seed file (64 hex digits)") from None
    except OSError as exc:
        raise read_error(path, exc, "a master seed file") from None
    try:
        _seed_bytes(text)
    except ValueError:
        raise RobocellError(f"{path}: not a master seed (expected 64 hex digits)") from None
    return text


def write_master_seed(path: str | Path, master_seed_hex: str) -> None:
    """Write a master seed file readable by its owner only; refuses to overwrite one."""
    path = Path(path)
    if path.exists():
        raise RobocellError(f"{path}: already exists; refusing to overwrite a master seed")
    atomic_write_text(path, master_seed_hex + "\n", mode=0o600)


def check_commitment(master_seed_hex: str, expected: str) -> None:
    """Raise unless ``master_seed_hex`` hashes to the published commitment ``expected``."""
    expected = expected.strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise RobocellError(f"commitment must be 64 hex digits, got {expected!r}")
    if not hmac.compare_digest(commitment(master_seed_hex), expected):
        raise RobocellError(
            "the master seed does not match the commitment "
            f"(sha256 of the seed is {commitment(master_seed_hex)}, commitment is {expected})"
        )


def _seed_bytes(master_seed_hex: str) -> bytes:
    text = master_seed_hex.strip().lower()
    if len(text) != 2 * MASTER_SEED_BYTES or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"a master seed is {2 * MASTER_SEED_BYTES} hex digits")
    return bytes.fromhex(text)
