"""The cell's telemetry key: the one the line file names, or ``OUT/keys/cell-<id>.key``,
made on the line's first run (``robocell keys new --cell ID`` makes one ahead of time)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from robocell.eval.keys import generate_keypair, load_private_key
from robocell.line.linefile import CellEntry


def cell_key(cell: CellEntry, out_dir: Path) -> Ed25519PrivateKey:
    """The private key that signs ``cell``'s telemetry batches."""
    if cell.key is not None:
        return load_private_key(cell.key)
    path = out_dir / "keys" / f"cell-{cell.id}.key"
    if not path.exists():
        generate_keypair(path.parent, path.name, f"cell-{cell.id}.pub")
    return load_private_key(path)
