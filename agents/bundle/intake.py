"""The one gate of a bundle: everything is checked here before onnxruntime sees a byte.

The certifier runs bundles that a supplier sent, so nothing here executes or unpickles
anything: a path that names a pickle, an SB3 zip or a torch file is refused by its name
alone; the manifest is plain JSON with a size cap; the ONNX file has a size cap, is read once
(the bytes that are hashed are the bytes that are run), must match the manifest's digest, and
is parsed as a protobuf and checked for ops outside the ONNX default domain, model-local
functions, and external data (which would make onnxruntime open other files).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from robocell.agents.bundle.manifest import (
    MANIFEST_FILE,
    ONNX_FILE,
    BundleManifest,
    metadata_props,
    parse_manifest,
)
from robocell.errors import VerificationError
from robocell.schema import SchemaError
from robocell.util import load_json_strict, read_error, sha256_bytes

# A default-MLP policy is ~50 kB and a CNN policy for 84×84 images ~7 MB; 64 MiB leaves
# room for large networks and still stops a bundle from filling memory.
MAX_ONNX_BYTES = 64 * 1024 * 1024
MAX_MANIFEST_BYTES = 1024 * 1024
# Files that are code in disguise (pickle, SB3 zip of pickles, torch.save archives, numpy
# arrays with allow_pickle): refused by name, never opened.
REFUSED_SUFFIXES = frozenset(
    {".zip", ".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".npy", ".npz"}
)
DEFAULT_DOMAINS = frozenset({"", "ai.onnx"})

_ELEM_TYPES = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.BOOL: "bool",
}


def bundle_directory(path: str | Path) -> Path:
    """The bundle directory at ``path``; anything else is refused without being opened."""
    path = Path(path)
    if path.suffix.lower() in REFUSED_SUFFIXES:
        raise VerificationError(
            f"{path}: a {path.suffix} file is not a bundle and is never opened (it could run "
            f"code when loaded); only a bundle directory ({ONNX_FILE} + {MANIFEST_FILE}) is "
            "accepted, see `robocell export`"
        )
    if path.is_symlink():
        # Its files are checked not to be links; the folder holding them must not be one either.
        raise VerificationError(f"{path}: a symbolic link, not a bundle directory")
    if not path.exists():
        raise VerificationError(f"{path}: no such bundle directory")
    if not path.is_dir():
        raise VerificationError(f"{path}: not a bundle directory ({ONNX_FILE} + {MANIFEST_FILE})")
    return path


@dataclass(frozen=True)
class CheckedBundle:
    """A bundle that passed every intake check: its files' bytes and the parsed manifest."""

    directory: Path
    manifest: dict[str, Any]
    manifest_bytes: bytes
    onnx_bytes: bytes
    model: onnx.ModelProto


def check_bundle(path: str | Path, max_onnx_bytes: int = MAX_ONNX_BYTES) -> CheckedBundle:
    """Run every intake check on a bundle directory; raises VerificationError naming the failure.

    Checks, in order: it is a directory (a pickle, SB3 zip or torch file is refused
    unopened), the manifest's schema, the ONNX size cap, the ONNX sha256 against the manifest,
    default-domain ops only, no external data, the opset and IR version, that the ONNX
    metadata mirrors the manifest, and the graph's input and output shapes (outputs ``action``
    and the input guard's ``fault``).
    """
    directory = bundle_directory(path)
    manifest_path, onnx_path = directory / MANIFEST_FILE, directory / ONNX_FILE
    data, manifest_bytes = read_manifest_json(manifest_path)
    try:
        manifest = parse_manifest(data)
    except SchemaError as exc:
        raise VerificationError(f"{manifest_path}: {exc}") from None
    onnx_bytes = read_capped(onnx_path, max_onnx_bytes)
    digest = sha256_bytes(onnx_bytes)
    if digest != manifest.onnx_sha256:
        raise VerificationError(
            f"{onnx_path}: sha256 {digest} does not match the manifest's {manifest.onnx_sha256}"
        )
    model = parse_onnx(onnx_bytes, onnx_path)
    check_against_manifest(model, manifest, data, onnx_path)
    return CheckedBundle(directory, data, manifest_bytes, onnx_bytes, model)


def read_capped(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file (not a link) of at most ``max_bytes``."""
    if path.is_symlink() or not path.is_file():
        raise VerificationError(f"{path}: missing or not a regular file")
    size = path.stat().st_size
    if size > max_bytes:
        raise VerificationError(f"{path}: {size} bytes is over the cap of {max_bytes} bytes")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VerificationError(str(read_error(path, exc, "a bundle file"))) from None
    if len(data) > max_bytes:  # it grew between stat and read
        raise VerificationError(f"{path}: over the cap of {max_bytes} bytes")
    return data


def read_manifest_json(path: Path) -> tuple[dict[str, Any], bytes]:
    """The manifest as a mapping, and its bytes (for the digest)."""
    data = read_capped(path, MAX_MANIFEST_BYTES)
    manifest = load_json_strict(data, str(path), VerificationError)
    if not isinstance(manifest, dict):
        raise VerificationError(f"{path}: expected a JSON object")
    return manifest, data


def parse_onnx(data: bytes, where: Path) -> onnx.ModelProto:
    """Parse ONNX bytes as a protobuf (no code runs) and apply the structural checks."""
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf raises its own DecodeError types
        raise VerificationError(f"{where}: not an ONNX model ({exc})") from None
    check_structure(model, where)
    return model


def check_structure(model: onnx.ModelProto, where: Path | str) -> None:
    """Default domain only, no local functions, no external data, a valid graph."""
    domains = {entry.domain for entry in model.opset_import}
    if not domains <= DEFAULT_DOMAINS:
        extra = sorted(domains - DEFAULT_DOMAINS)
        raise VerificationError(f"{where}: imports opset domain {extra[0]!r}; default only")
    if len(model.functions):
        raise VerificationError(f"{where}: defines model-local functions; none are allowed")
    for graph in _graphs(model.graph):
        for node in graph.node:
            if node.domain not in DEFAULT_DOMAINS:
                raise VerificationError(
                    f"{where}: node {node.name or node.op_type!r} uses op domain "
                    f"{node.domain!r}; only the ONNX default domain is allowed"
                )
        for tensor in _tensors(graph):
            if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
                raise VerificationError(f"{where}: tensor {tensor.name!r} uses external data")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise VerificationError(f"{where}: invalid ONNX graph ({first_line})") from None


def check_against_manifest(
    model: onnx.ModelProto, manifest: BundleManifest, data: dict[str, Any], where: Path
) -> None:
    """Opset, IR version, metadata and input/output signatures must match the manifest."""
    if default_opset(model) != manifest.onnx_opset or model.ir_version != manifest.onnx_ir_version:
        raise VerificationError(
            f"{where}: opset {default_opset(model)} / IR {model.ir_version} differ from the "
            f"manifest's {manifest.onnx_opset} / {manifest.onnx_ir_version}"
        )
    _check_metadata(model, data, where)
    expected_inputs = [
        (item.name, item.dtype, [None, *item.shape]) for item in manifest.observation
    ]
    _check_signatures(model.graph.input, expected_inputs, "inputs", where)
    action, fault = manifest.action, manifest.fault
    expected_outputs = [
        (action.name, action.dtype, [None, *action.shape]),
        (fault.name, fault.dtype, [None, *fault.shape]),
    ]
    _check_signatures(model.graph.output, expected_outputs, "outputs", where)


def _check_metadata(model: onnx.ModelProto, data: dict[str, Any], where: Path) -> None:
    found = {prop.key: prop.value for prop in model.metadata_props}
    expected = metadata_props(data)
    for key in sorted(set(found) | set(expected)):
        if found.get(key) != expected.get(key):
            raise VerificationError(
                f"{where}: manifest field {key!r} differs from the copy in the ONNX metadata "
                "(the manifest was edited, or belongs to another graph)"
            )


def _check_signatures(
    values: Any, expected: list[tuple[str, str, list[int | None]]], what: str, where: Path
) -> None:
    found = [value_signature(value) for value in values]
    # The leading (batch) dimension may be symbolic or fixed; every other one is static.
    normalized = [(name, dtype, [None, *dims[1:]]) for name, dtype, dims in found if dims]
    if normalized != expected or len(found) != len(expected):
        raise VerificationError(
            f"{where}: graph {what} {found} do not match the manifest's {expected}"
        )


def default_opset(model: onnx.ModelProto) -> int:
    """The model's default-domain opset version."""
    return max(entry.version for entry in model.opset_import if entry.domain in DEFAULT_DOMAINS)


def value_signature(value: onnx.ValueInfoProto) -> tuple[str, str, list[int | None]]:
    """(name, element type, shape) of a graph input or output; None for a symbolic dim."""
    tensor_type = value.type.tensor_type
    dtype = _ELEM_TYPES.get(tensor_type.elem_type, f"elem_type {tensor_type.elem_type}")
    dims = [dim.dim_value if dim.HasField("dim_value") else None for dim in tensor_type.shape.dim]
    return value.name, dtype, dims


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    # Control-flow ops (If, Loop, Scan) carry subgraphs in their attributes.
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _graphs(attribute.g)
            for subgraph in attribute.graphs:
                yield from _graphs(subgraph)


def _tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("sparse_tensor"):
                yield attribute.sparse_tensor.values
                yield attribute.sparse_tensor.indices
            for sparse in attribute.sparse_tensors:
                yield sparse.values
                yield sparse.indices
