"""Intake checks of a bundle: what is refused before onnxruntime sees a single byte.

The certifier runs bundles that a supplier sent, so nothing here executes or unpickles
anything: a path that names a pickle, an SB3 zip or a torch file is refused by its name
alone; the manifest is plain JSON with a size cap; the ONNX file has a size cap, is read once
(the bytes that are hashed are the bytes that are run), must match the manifest's digest, and
is parsed as a protobuf and checked for ops outside the ONNX default domain, model-local
functions, and external data (which would make onnxruntime open other files).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx

from robocell.agents.bundle_manifest import MANIFEST_FILE, ONNX_FILE
from robocell.errors import VerificationError

# A default-MLP policy is ~50 kB and a CNN policy for 84×84 images ~7 MB; 64 MiB leaves
# room for large networks and still stops a bundle from filling memory.
MAX_ONNX_BYTES = 64 * 1024 * 1024
MAX_MANIFEST_BYTES = 1024 * 1024
# Files that are code in disguise (pickle, SB3 zip of pickles, torch.save archives).
REFUSED_SUFFIXES = frozenset({".zip", ".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib"})
DEFAULT_DOMAINS = frozenset({"", "ai.onnx"})

_ELEM_TYPES = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT64: "int64",
}


def bundle_directory(path: str | Path) -> Path:
    """The bundle directory at ``path``; anything else is refused without being opened."""
    path = Path(path)
    if path.suffix.lower() in REFUSED_SUFFIXES:
        raise VerificationError(
            f"{path}: a {path.suffix} file is not a bundle; only a bundle directory "
            f"({ONNX_FILE} + {MANIFEST_FILE}) is accepted, pickles and model zips never are"
        )
    if not path.exists():
        raise VerificationError(f"{path}: no such bundle directory")
    if not path.is_dir():
        raise VerificationError(f"{path}: not a bundle directory ({ONNX_FILE} + {MANIFEST_FILE})")
    return path


def read_capped(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file (not a link) of at most ``max_bytes``."""
    if path.is_symlink() or not path.is_file():
        raise VerificationError(f"{path}: missing or not a regular file")
    size = path.stat().st_size
    if size > max_bytes:
        raise VerificationError(f"{path}: {size} bytes is over the cap of {max_bytes} bytes")
    data = path.read_bytes()
    if len(data) > max_bytes:  # it grew between stat and read
        raise VerificationError(f"{path}: over the cap of {max_bytes} bytes")
    return data


def read_manifest_json(path: Path) -> tuple[dict[str, Any], bytes]:
    """The manifest as a mapping, and its bytes (for the digest)."""
    data = read_capped(path, MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise VerificationError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise VerificationError(f"{path}: expected a JSON object")
    return manifest, data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


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
