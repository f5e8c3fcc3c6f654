"""Give an existing bundle the input guard without retraining: ``robocell guard BUNDLE -o OUT``.

The bundle's own graph is wrapped by :func:`robocell.agents.bundle.guard.guard_model`; its
manifest keeps the provenance and parity record and takes the cell's current descriptions:
observation ranges, action descriptions, safe action, the ``fault`` output and the batch
dimension. The graph's inputs and output must be the ones the cell describes today. The
source is checked as the gate would (digest, default domain, no external data) except for
the new manifest fields, which a bundle written before the guard lacks. The bundle's other
regular files (a README) are carried into the new bundle, so guarding in place loses nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robocell.agents.bundle.describe import action_output, fault_fields, observation_inputs
from robocell.agents.bundle.guard import is_guarded
from robocell.agents.bundle.intake import (
    MAX_ONNX_BYTES,
    bundle_directory,
    parse_onnx,
    read_capped,
    read_manifest_json,
)
from robocell.agents.bundle.manifest import MANIFEST_FILE, ONNX_FILE
from robocell.agents.bundle.write import write_bundle
from robocell.envs.make import make_cell
from robocell.errors import RobocellError, VerificationError
from robocell.util import sha256_bytes

# Filled in again by write_bundle.
_ONNX_FIELDS = ("onnx_file", "onnx_opset", "onnx_ir_version", "onnx_sha256")
_SIGNATURE = ("name", "key", "dtype", "shape", "layout")
MAX_EXTRA_BYTES = 1 << 20  # a README or notes beside the bundle, not data


def guard_bundle(
    source: str | Path, target: str | Path, overwrite: bool = False
) -> tuple[str, str]:
    """Write ``source``'s graph with the guard to ``target``; returns the two new digests."""
    directory = bundle_directory(source)
    manifest, _ = read_manifest_json(directory / MANIFEST_FILE)
    onnx_bytes = read_capped(directory / ONNX_FILE, MAX_ONNX_BYTES)
    if sha256_bytes(onnx_bytes) != manifest.get("onnx_sha256"):
        raise VerificationError(f"{directory / ONNX_FILE}: sha256 differs from the manifest's")
    model = parse_onnx(onnx_bytes, directory / ONNX_FILE)
    if is_guarded(model):
        raise RobocellError(f"{directory}: the bundle's graph already has the guard")
    env = make_cell(manifest["env_id"], manifest.get("env_kwargs", {}))
    try:
        inputs, action = observation_inputs(env), action_output(env)
    finally:
        env.close()
    _check_same_signature(manifest, inputs, action, directory)
    fields = {key: value for key, value in manifest.items() if key not in _ONNX_FIELDS}
    fields.update({"observation": inputs, "action": action, **fault_fields()})
    del model.metadata_props[:]
    return write_bundle(target, model, fields, overwrite, extra_files=_other_files(directory))


def _other_files(directory: Path) -> dict[str, bytes]:
    bundle_files = (ONNX_FILE, MANIFEST_FILE)
    return {
        path.name: read_capped(path, MAX_EXTRA_BYTES)
        for path in sorted(directory.iterdir())
        if path.name not in bundle_files and path.is_file() and not path.is_symlink()
    }


def _check_same_signature(
    manifest: dict[str, Any], inputs: list[dict[str, Any]], action: dict[str, Any], where: Path
) -> None:
    old = [{key: entry.get(key) for key in _SIGNATURE} for entry in manifest["observation"]]
    new = [{key: entry[key] for key in _SIGNATURE} for entry in inputs]
    old_names = [[f["name"] for f in entry["fields"]] for entry in manifest["observation"]]
    new_names = [[f["name"] for f in entry["fields"]] for entry in inputs]
    same_action = all(
        manifest["action"].get(key) == action[key] for key in ("kind", "dtype", "shape", "grid")
    )
    if old != new or old_names != new_names or not same_action:
        raise RobocellError(
            f"{where}: the bundle's inputs or action differ from what "
            f"{manifest['env_id']} describes today; re-export it from its run instead"
        )
