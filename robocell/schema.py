"""Typed schemas for YAML files: a dataclass per file, validated field by field.

:func:`parse` builds a dataclass from a mapping: unknown keys are rejected, missing required
fields are named, and every value is checked against the field's annotation (``int``,
``float``, ``str``, ``bool``, ``Decimal``, ``Literal[...]``, ``X | None``, ``list[X]``,
``dict[str, X]``, ``Any`` and nested dataclasses). Range checks live in the dataclass's
``validate()`` method and raise :class:`SchemaError` naming the field. Every message names the
field by its dotted path, e.g. ``algo.hyperparams.learning_rate``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from robocell.errors import RobocellError

T = TypeVar("T")


class SchemaError(RobocellError):
    """A value in a config file is unknown, missing or of the wrong type or range."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field


def parse(cls: type[T], data: Any, where: str = "") -> T:
    """Build the dataclass ``cls`` from ``data``; ``where`` prefixes field names in errors."""
    if not isinstance(data, Mapping):
        raise SchemaError(where, f"expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        raise SchemaError(_join(where, unknown[0]), f"unknown key (allowed: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        path = _join(where, name)
        if name in data:
            values[name] = _convert(hints[name], data[name], path)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise SchemaError(path, "required key is missing")
    obj = cls(**values)
    if hasattr(obj, "validate"):
        obj.validate()
    return obj


def to_dict(obj: Any) -> Any:
    """A dataclass (tree) as plain YAML/JSON-ready data; Decimals become strings."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Decimal):
        return str(obj)
    return obj


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _convert(kind: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _convert_union(typing.get_args(kind), value, path)
    if origin is typing.Literal:
        if value not in typing.get_args(kind):
            choices = ", ".join(map(repr, typing.get_args(kind)))
            raise SchemaError(path, f"must be one of {choices}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise SchemaError(path, f"expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(kind)
        return [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise SchemaError(path, f"expected a mapping, got {type(value).__name__}")
        _, item = typing.get_args(kind)
        return {str(k): _convert(item, v, _join(path, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(kind):
        return parse(kind, value, path)
    return _convert_scalar(kind, value, path)


def _convert_union(options: tuple[Any, ...], value: Any, path: str) -> Any:
    if value is None and type(None) in options:
        return None
    present = [option for option in options if option is not type(None)]
    if len(present) == 1:  # ``X | None``: X's own message, naming the nested field
        return _convert(present[0], value, path)
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _convert(option, value, path)
        except SchemaError as exc:
            errors.append(str(exc))
    raise SchemaError(path, errors[0].split(": ", 1)[-1] if errors else "bad value")


def _convert_scalar(kind: type, value: Any, path: str) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise SchemaError(path, f"expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(path, f"expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SchemaError(path, f"expected a number, got {value!r}")
        return float(value)
    if kind is Decimal:
        return _to_decimal(value, path)
    if kind is str:
        if not isinstance(value, str):
            raise SchemaError(path, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"schema field {path} has an unsupported type {kind!r}")


def _to_decimal(value: Any, path: str) -> Decimal:
    # A float has already lost digits (0.1 + 0.2): amounts must be written as strings or ints.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise SchemaError(path, f"expected a decimal written as a string, got {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise SchemaError(path, f"not a decimal number: {value!r}") from None
    if not result.is_finite():
        raise SchemaError(path, f"must be finite, got {value!r}")
    return result
