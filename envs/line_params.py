"""Plant parameters: the hidden, drifting conditions of a cell in production.

A production cell's *plant* is its env with parameters that drift between parts (a knocked
camera, a bent torch, a worn hole). Each cell declares them as :class:`LineParameter` on its
env class and in its ``CellSpec``; each one is an env kwarg with a unit and a range, and
``CellEnv.configure`` changes it between episodes. Vector parameters (a 3-D offset) have
``size`` > 1; :func:`flatten` names their elements ``<name>_<axis>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import numpy as np

AXES = "xyz"


class LineParameter(NamedTuple):
    """One plant parameter of a cell.

    Attributes:
        name: the env kwarg.
        unit: its unit (``"1"`` for dimensionless).
        default: the value a cell built without it has (a float, or a tuple for ``size`` > 1).
        low: smallest allowed value (of every element).
        high: largest allowed value (of every element).
        description: what it is, one line.
        size: elements (1 for a scalar, 2 or 3 for an x, y(, z) vector).
    """

    name: str
    unit: str
    default: float | tuple[float, ...]
    low: float
    high: float
    description: str
    size: int = 1

    def check(self, value: object) -> float | tuple[float, ...]:
        """The value as a float (or tuple of floats); out of range or wrong size: ValueError."""
        try:
            array = np.asarray(value, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name} must be numeric, got {value!r}") from None
        if array.size != self.size:
            raise ValueError(f"{self.name} takes {self.size} value(s), got {value!r}")
        if not (np.all(np.isfinite(array)) and np.all((array >= self.low) & (array <= self.high))):
            raise ValueError(
                f"{self.name} must be in [{self.low}, {self.high}] {self.unit}, got {value!r}"
            )
        if self.size == 1:
            return float(array[0])
        return tuple(float(v) for v in array)

    def is_default(self, value: float | tuple[float, ...]) -> bool:
        """Whether ``value`` equals the default (then the cell behaves bitwise as without it)."""
        return np.array_equal(np.asarray(value, dtype=float), np.asarray(self.default, float))


def check_all(
    parameters: Iterable[LineParameter], values: Mapping[str, object]
) -> dict[str, float | tuple[float, ...]]:
    """Check ``values`` by name against ``parameters``; an unknown name is a ValueError."""
    by_name = {p.name: p for p in parameters}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        known = ", ".join(by_name) or "none"
        raise ValueError(f"unknown plant parameter(s) {', '.join(unknown)} (known: {known})")
    return {name: by_name[name].check(value) for name, value in values.items()}


def flatten(values: Mapping[str, float | tuple[float, ...]]) -> dict[str, float]:
    """Scalar conditions: a vector ``tcp_offset_mm`` becomes ``tcp_offset_mm_x`` … ``_z``."""
    flat: dict[str, float] = {}
    for name, value in values.items():
        if isinstance(value, tuple):
            flat.update({f"{name}_{AXES[i]}": float(v) for i, v in enumerate(value)})
        else:
            flat[name] = float(value)
    return flat
