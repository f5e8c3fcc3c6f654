"""Small helpers shared by every subpackage: digests, canonical JSON, atomic writes, YAML."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
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


#: Nesting a JSON or YAML document read from outside may have. A certificate is 8 deep, a
#: config 5; only a crafted file goes deeper (and would exhaust the parser's recursion).
MAX_NESTING = 64
#: Digits an integer in such a document may have: a seed has 19, an amount is a string.
MAX_INT_DIGITS = 40


def load_json_strict(
    data: bytes | str, where: str, error: type[RobocellError] = RobocellError
) -> Any:
    """Parse JSON read from outside; refuse what ``json.loads`` would let through.

    Refused with ``error`` naming ``where``: duplicate keys (``json`` keeps the last),
    ``NaN``/``Infinity`` and numbers that overflow to them, integers over
    :data:`MAX_INT_DIGITS` digits, and nesting deeper than :data:`MAX_NESTING`.
    """
    try:
        value = json.loads(
            data,
            object_pairs_hook=_unique_pairs,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
        )
    except RecursionError:
        raise error(f"{where}: nested more than {MAX_NESTING} deep") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise error(f"{where}: not valid JSON ({exc})") from None
    if nesting_depth(value) > MAX_NESTING:
        raise error(f"{where}: nested more than {MAX_NESTING} deep")
    return value


def nesting_depth(value: Any) -> int:
    """How deep lists and mappings nest in ``value`` (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} overflows to {value}")
    return value


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
    except OSError as exc:
        raise read_error(path, exc, what) from None
    if len(data) > max_bytes:
        raise RobocellError(f"{path}: larger than {max_bytes} bytes, too large for {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RobocellError(f"{path}: not UTF-8 text (a binary file?), expected {what}") from None


def read_error(path: Path, exc: OSError, what: str) -> RobocellError:
    """The one-line error for a file that could not be read (missing, a folder, no access)."""
    if isinstance(exc, FileNotFoundError):
        return RobocellError(f"{path}: no such file, expected {what}")
    if isinstance(exc, IsADirectoryError):
        return RobocellError(f"{path}: is a directory, expected {what}")
    if isinstance(exc, PermissionError):
        return RobocellError(f"{path}: permission denied reading {what}")
    return RobocellError(f"{path}: cannot read {what} ({exc.strerror or exc})")


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, refusing duplicate keys, non-finite numbers and oversized integers."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *base`` overrides on purpose
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a finite number", node.start_mark
            )
        return value

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value.lstrip("+-").replace("_", "")) > MAX_INT_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of over {MAX_INT_DIGITS} digits", node.start_mark
            )
        return super().construct_yaml_int(node)


_StrictLoader.add_constructor("tag:yaml.org,2002:float", _StrictLoader.construct_yaml_float)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:map", _StrictLoader.construct_yaml_map)


def parse_yaml_text(text: str, where: str) -> Any:
    """Parse one YAML document with the strict safe loader; errors name ``where``.

    Refused: alias bombs, duplicate keys, ``.nan``/``.inf``, integers over
    :data:`MAX_INT_DIGITS` digits and nesting deeper than :data:`MAX_NESTING`.
    """
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, set()) > MAX_YAML_NODES:
            raise RobocellError(
                f"{where}: expands to more than {MAX_YAML_NODES} YAML nodes (an alias bomb?)"
            )
        document = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise RobocellError(f"{where}: not valid YAML ({' '.join(str(exc).split())})") from None
    except RecursionError:
        raise RobocellError(f"{where}: nested more than {MAX_NESTING} deep") from None
    finally:
        loader.dispose()
    if nesting_depth(document) > MAX_NESTING:
        raise RobocellError(f"{where}: nested more than {MAX_NESTING} deep")
    return document


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


# PyYAML follows YAML 1.1, where ``3e-4`` (no dot) is a string; people write it as a number.
_EXPONENT_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def yaml_numbers(value: Any) -> Any:
    """``value`` with YAML 1.1's exponent strings (``3e-4``, no dot) read as floats."""
    if isinstance(value, dict):
        return {k: yaml_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [yaml_numbers(v) for v in value]
    if isinstance(value, str) and _EXPONENT_FLOAT.match(value):
        return float(value)
    return value


def parse_override(item: str, option: str = "--set") -> tuple[str, Any]:
    """``a.b=value`` → (``a.b``, YAML value); a missing ``=`` is a RobocellError naming
    ``option``, the command-line option that gave ``item``."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise RobocellError(f"{option} {item!r}: expected KEY=VALUE, e.g. hyperparams.gamma=0.98")
    value = parse_yaml_text(text, f"{option} {item!r}") if text.strip() else ""
    return key.strip(), yaml_numbers(value)
