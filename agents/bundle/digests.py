"""A bundle's subject digests: the sha256 of each file a certificate names and a payment covers.

Certification records them, verification and release compare them; all three call this
module, so the files that count and the way they are hashed are written once.
"""

from __future__ import annotations

from pathlib import Path

from robocell.agents.bundle.intake import bundle_directory
from robocell.agents.bundle.manifest import MANIFEST_FILE, ONNX_FILE
from robocell.errors import VerificationError
from robocell.util import read_error, sha256_file

SUBJECT_NAMES = (ONNX_FILE, MANIFEST_FILE)


def subject_digests(path: str | Path) -> dict[str, str]:
    """sha256 of ``policy.onnx`` and ``manifest.json``, by name.

    The path goes through the intake's directory gate (pickles and model zips are refused
    unopened), and each file must be a regular file, not a link.
    """
    directory = bundle_directory(path)
    digests = {}
    for name in SUBJECT_NAMES:
        file = directory / name
        if file.is_symlink() or not file.is_file():
            raise VerificationError(f"bundle {directory} has no regular file {name}")
        try:
            digests[name] = sha256_file(file)
        except OSError as exc:
            raise VerificationError(str(read_error(file, exc, "a bundle file"))) from None
    return digests


def check_subject_digests(path: str | Path, expected: dict[str, str]) -> dict[str, str]:
    """The bundle's subject digests; raises unless they equal ``expected`` (a certificate's)."""
    if set(expected) != set(SUBJECT_NAMES):
        names = ", ".join(sorted(expected)) or "none"
        raise VerificationError(
            f"the certificate's subjects ({names}) are not a bundle's {' and '.join(SUBJECT_NAMES)}"
        )
    found = subject_digests(path)
    for name in SUBJECT_NAMES:
        if found[name] != expected[name]:
            raise VerificationError(
                f"bundle {name} sha256 {found[name]} differs from the certified {expected[name]}"
            )
    return found
