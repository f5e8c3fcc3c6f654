"""Small helpers shared by every subpackage: digests, canonical JSON, atomic writes, YAML."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from robocell.errors import RobocellError


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_json(obj: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8. Digests are taken over this."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def atomic_write_bytes(path: str | Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, mode: int | None = None) -> None:
    """Text form of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode(), mode)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


#: A config, spec or contract is a few kilobytes; anything over this is not one.
MAX_YAML_BYTES = 1024 * 1024
#: Nodes a YAML document may hold once its aliases are followed. A real config holds a few
#: hundred; an alias bomb ("billion laughs") expands a few hundred bytes to billions.
MAX_YAML_NODES = 100_000


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing, oversized, binary or bad file is a RobocellError.

    Aliases are allowed, but the document may expand to at most :data:`MAX_YAML_NODES` nodes.
    """
    path = Path(path)
    data = parse_yaml_text(read_text_capped(path, MAX_YAML_BYTES, "a YAML file"), str(path))
    if not isinstance(data, dict):
        raise RobocellError(f"{path}: expected a mapping at the top level")
    return data


def read_text_capped(path: Path, max_bytes: int, what: str) -> str:
    """The UTF-8 text of a file of at most ``max_bytes``; every failure names the file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise RobocellError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RobocellError(f"{path}: is a directory, expected {what}") from None
    except OSError as exc:
        raise RobocellError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise RobocellError(f"{path}: larger than {max_bytes} bytes, too large for {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RobocellError(f"{path}: not UTF-8 text (a binary file?), expected {what}") from None


def parse_yaml_text(text: str, where: str) -> Any:
    """Parse one YAML document with the safe loader, refusing alias bombs; errors name ``where``."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, set()) > MAX_YAML_NODES:
            raise RobocellError(
                f"{where}: expands to more than {MAX_YAML_NODES} YAML nodes (an alias bomb?)"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise RobocellError(f"{where}: not valid YAML ({exc})") from None
    except RecursionError:
        raise RobocellError(f"{where}: YAML nested too deeply") from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Nodes of the document with every alias copied out, each shared node computed once."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise yaml.YAMLError("an alias refers to the node that holds it (a recursive document)")
    open_nodes.add(key)
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [item for pair in node.value for item in pair]
    total = 1
    for child in children:
        total += _expanded_size(child, sizes, open_nodes)
        if total > MAX_YAML_NODES:
            break
    open_nodes.discard(key)
    sizes[key] = total
    return total


def resolve_packaged(path: str | Path, folder: str) -> Path:
    """``path`` if it exists or has a suffix, else the packaged ``configs/<folder>/<path>.yaml``."""
    candidate = Path(path)
    if candidate.exists() or candidate.suffix:
        return candidate
    packaged = resources.files("robocell.configs") / folder / f"{candidate.name}.yaml"
    return Path(str(packaged)) if packaged.is_file() else candidate
