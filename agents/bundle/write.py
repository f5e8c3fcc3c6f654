"""Writing a bundle: both files appear at once, validated, or nothing is written."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx

from robocell.agents.bundle.guard import guard_model, is_guarded
from robocell.agents.bundle.intake import check_structure, default_opset
from robocell.agents.bundle.manifest import (
    MANIFEST_FILE,
    ONNX_FILE,
    manifest_dict,
    metadata_props,
    parse_manifest,
)
from robocell.errors import RobocellError
from robocell.schema import SchemaError
from robocell.util import sha256_bytes


def write_bundle(
    bundle_dir: str | Path,
    model: onnx.ModelProto,
    manifest: dict[str, Any],
    overwrite: bool = False,
    check: Callable[[Path], None] | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> tuple[str, str]:
    """Write ``model`` and ``manifest`` as a bundle; returns (onnx sha256, manifest sha256).

    ``manifest`` holds every field but the ONNX ones (file, opset, IR version, sha256), which
    are filled in here; it is validated, a graph without the input guard gets it
    (:func:`robocell.agents.bundle.guard.guard_model`, from the manifest's ranges and safe
    action), the manifest is copied into the model's ``metadata_props``, and both
    files appear at once (the bundle is assembled in a temporary sibling directory and
    renamed), so a crash never leaves half a bundle. ``check``, if given, is called with the
    complete temporary bundle before it is renamed into place; if it raises, nothing is kept.
    ``extra_files`` (name to bytes, e.g. a README) are written beside the two bundle files.
    """
    bundle_dir = Path(bundle_dir)
    check_bundle_target(bundle_dir, overwrite)
    fields = {
        **manifest,
        "onnx_file": ONNX_FILE,
        "onnx_opset": default_opset(model),
        "onnx_ir_version": model.ir_version,
        "onnx_sha256": "0" * 64,
    }
    try:
        data = manifest_dict(parse_manifest(fields))
    except SchemaError as exc:
        raise RobocellError(f"manifest: {exc}") from None
    if not is_guarded(model):
        model = guard_model(model, data)
    del model.metadata_props[:]
    for key, value in metadata_props(data).items():
        model.metadata_props.add(key=key, value=value)
    check_structure(model, ONNX_FILE)
    onnx_bytes = model.SerializeToString()
    data["onnx_sha256"] = sha256_bytes(onnx_bytes)
    manifest_bytes = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
    files = {**(extra_files or {}), ONNX_FILE: onnx_bytes, MANIFEST_FILE: manifest_bytes}
    _write_directory(bundle_dir, files, overwrite, check)
    return data["onnx_sha256"], sha256_bytes(manifest_bytes)


def check_bundle_target(bundle_dir: Path, overwrite: bool) -> None:
    """Refuse to write over an existing, non-empty directory unless ``overwrite``."""
    if bundle_dir.exists() and not bundle_dir.is_dir():
        raise RobocellError(f"{bundle_dir}: exists and is not a directory")
    if bundle_dir.is_dir() and any(bundle_dir.iterdir()) and not overwrite:
        raise RobocellError(f"{bundle_dir}: exists and is not empty (pass --force to replace it)")


def _write_directory(
    target: Path, files: dict[str, bytes], overwrite: bool, check: Callable[[Path], None] | None
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes it private; a bundle is meant to be shared
        for name, data in files.items():
            with open(staging / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if check is not None:
            check(staging)
        if target.exists():
            check_bundle_target(target, overwrite)
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
            os.replace(target, old / target.name)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
