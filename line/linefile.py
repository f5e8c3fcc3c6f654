"""The line file (``configs/lines/*.yaml``): cells, bundles, scenario, detectors, calibration.

Checked by the typed schema of the run configs (:mod:`robocell.schema`): unknown keys,
missing fields and wrong types are refused with the field's dotted path. A line names one
or more cells; each cell names its bundle, the scenario that drifts its plant (hidden from
the controller), its detectors and whether the line calibrates it by itself.

Example::

    line: vision-camera-bump
    parts: 1500
    cells:
      - id: vision-1
        env_id: robocell/VisionSort-v1
        bundle: models/vision
        scenario:
          - {at_part: 300, parameter: camera_tilt_deg, value: 2.0}
          - {at_part: 300, parameter: camera_shift_mm, value: [8.0, 0.0]}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from robocell.errors import RobocellError
from robocell.schema import SchemaError, parse
from robocell.util import load_yaml

#: Grid emission factor default, g CO2e per kWh: the EU-27 average of electricity generation
#: in 2023, 244 g CO2e/kWh (European Environment Agency, "Greenhouse gas emission intensity
#: of electricity generation in Europe", indicator ENER 038, 2024). Set ``grid_g_co2e_per_kwh``
#: to the site's own supplier figure.
DEFAULT_GRID_G_CO2E_PER_KWH = 244.0
MAX_PARTS = 1_000_000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Ramp:
    """A parameter moving linearly from its value at ``at_part`` to ``to`` over ``parts``."""

    to: float | list[float]
    parts: int

    def validate(self) -> None:
        if self.parts < 1:
            raise SchemaError("ramp.parts", f"must be at least 1, got {self.parts}")


@dataclass(frozen=True)
class ScenarioStep:
    """From part ``at_part`` on, ``parameter`` is ``value`` (or ramps, see :class:`Ramp`)."""

    at_part: int
    parameter: str
    value: float | list[float] | None = None
    ramp: Ramp | None = None

    def validate(self) -> None:
        if self.at_part < 0:
            raise SchemaError("at_part", f"must be >= 0, got {self.at_part}")
        if (self.value is None) == (self.ramp is None):
            raise SchemaError(self.parameter, "give exactly one of value and ramp")


@dataclass(frozen=True)
class Detectors:
    """The drift detectors of a cell (:mod:`robocell.line.detectors`).

    ``warmup_parts`` parts after the start (and after each calibration) are the reference:
    the success rate, mean and spread of energy and cycle time the detectors compare with.
    Thresholds are set on that reference so that a stationary stream raises a false alarm
    once in ``false_alarm_parts`` parts on average.
    """

    enabled: bool = True
    warmup_parts: int = 150
    false_alarm_parts: int = 50_000
    streams: list[Literal["success", "escape", "energy_j", "cycle_time_s"]] = field(
        default_factory=lambda: ["success", "escape", "energy_j", "cycle_time_s"]
    )

    def validate(self) -> None:
        if self.warmup_parts < 20:
            raise SchemaError("warmup_parts", f"must be at least 20, got {self.warmup_parts}")
        if not 100 <= self.false_alarm_parts <= 200_000:
            raise SchemaError("false_alarm_parts", "must be in [100, 200000]")


@dataclass(frozen=True)
class CanaryEntry:
    """A challenger offered to a cell (:mod:`robocell.line.canary`): certified on the twin,
    then run on ``share`` of the parts until the sequential test promotes or rolls it back."""

    bundle: str
    """The challenger's bundle directory."""
    benchmark: str
    """The cell's benchmark spec (a path, or a packaged name: weld, peg, vision)."""
    at_part: int = 0
    """The part from which the challenger is certified and then canaried."""
    certify_parts: int = 100
    """Parts after ``at_part`` at which the certificate is taken (and awaited, if the
    certification is slower): the canary begins there if it PASSED."""
    share: float = 0.2
    """Fraction of the parts the canary makes."""
    twin: dict[str, Any] = field(default_factory=dict)
    """What the line believes of the plant, as env kwargs of the twin the challenger is
    certified on (e.g. ``{joint_friction_nm: 1.5}``)."""
    alpha: float = 0.05
    """Error level of the sequential test (α/2 for each one-sided decision)."""
    margin: float = 0.02
    """How much lower a success rate may be and still count as no worse."""
    max_parts: int = 2000
    """Canary parts after which, with no decision, the canary is rolled back."""

    def validate(self) -> None:
        if not 0.0 < self.share < 1.0:
            raise SchemaError("share", f"must be in (0, 1), got {self.share}")
        if not 0.0 < self.alpha < 0.5:
            raise SchemaError("alpha", f"must be in (0, 0.5), got {self.alpha}")
        if not 0.0 <= self.margin < 0.5:
            raise SchemaError("margin", f"must be in [0, 0.5), got {self.margin}")
        if self.at_part < 0 or self.certify_parts < 0:
            raise SchemaError("at_part", "at_part and certify_parts must be >= 0")
        if not 100 <= self.max_parts <= MAX_PARTS:
            raise SchemaError("max_parts", f"must be in [100, {MAX_PARTS}]")


@dataclass(frozen=True)
class LearningEntry:
    """The learning cycle of a cell (:mod:`robocell.line.learning`): an alarm calibration does
    not clear triggers it, and the line updates the twin from production by itself."""

    twin_parts: int = 150
    """Production parts after the trigger whose mean figure the twin estimate matches."""
    twin_episodes: int = 40
    """Twin episodes (common seeds) at each value the estimate probes."""
    bounds: list[float] | None = None
    """The estimated parameter's search range; default: the parameter's own range."""
    tolerance: float = 0.005
    """The estimate's resolution, in the parameter's unit."""

    def validate(self) -> None:
        if not 20 <= self.twin_parts <= MAX_PARTS:
            raise SchemaError("twin_parts", f"must be in [20, {MAX_PARTS}]")
        if not 4 <= self.twin_episodes <= 1000:
            raise SchemaError("twin_episodes", "must be in [4, 1000]")
        if self.bounds is not None and (len(self.bounds) != 2 or self.bounds[0] >= self.bounds[1]):
            raise SchemaError("bounds", f"must be [low, high] with low < high, got {self.bounds}")
        if self.tolerance <= 0.0:
            raise SchemaError("tolerance", f"must be > 0, got {self.tolerance}")


@dataclass(frozen=True)
class CellEntry:
    """One cell of the line."""

    id: str
    env_id: str
    """The cell the bundle must be for (``robocell/VisionSort-v1`` …)."""
    bundle: str
    scenario: list[ScenarioStep] = field(default_factory=list)
    detectors: Detectors = field(default_factory=Detectors)
    calibration: Literal["auto", "off"] = "auto"
    key: str | None = None
    """The cell's Ed25519 private key (``robocell keys new --cell ID``); default
    ``keys/cell-<id>.key`` beside the line's output."""
    canary: CanaryEntry | None = None
    """A challenger to certify, canary and promote or roll back."""
    learning: LearningEntry | None = None
    """The learning cycle: its trigger and the twin's update from production."""

    def validate(self) -> None:
        from robocell.envs import ENV_IDS
        from robocell.line.twin import TWIN_ESTIMATES

        if not _ID.match(self.id):
            raise SchemaError("id", f"{self.id!r}: letters, digits, '_', '.', '-' (<= 64)")
        if self.env_id not in ENV_IDS:
            raise SchemaError(
                "env_id", f"unknown cell {self.env_id!r} (known: {', '.join(ENV_IDS)})"
            )
        if self.learning is not None and self.env_id not in TWIN_ESTIMATES:
            raise SchemaError(
                "learning",
                f"{self.env_id} has no twin estimate yet (cells with one: "
                f"{', '.join(TWIN_ESTIMATES)})",
            )


@dataclass(frozen=True)
class LineFile:
    """A production line: its cells and how long it runs."""

    line: str
    cells: list[CellEntry]
    parts: int = 1000
    seed: int = 0
    grid_g_co2e_per_kwh: float = DEFAULT_GRID_G_CO2E_PER_KWH
    batch_parts: int = 1
    """Parts per signed telemetry batch: a crash loses the batch in flight, so 1 (the
    default) loses at most the part in flight; more parts per batch sign less often."""
    description: str = ""

    def validate(self) -> None:
        if not _ID.match(self.line):
            raise SchemaError("line", f"{self.line!r}: letters, digits, '_', '.', '-' (<= 64)")
        if not self.cells:
            raise SchemaError("cells", "name at least one cell")
        ids = [cell.id for cell in self.cells]
        duplicate = next((i for i in ids if ids.count(i) > 1), None)
        if duplicate:
            raise SchemaError("cells", f"duplicate cell id {duplicate!r}")
        if not 1 <= self.parts <= MAX_PARTS:
            raise SchemaError("parts", f"must be in [1, {MAX_PARTS}], got {self.parts}")
        if not 0 <= self.seed <= 1_000_000:
            raise SchemaError("seed", f"must be in [0, 1000000], got {self.seed}")
        if not 0.0 <= self.grid_g_co2e_per_kwh <= 2000.0:
            raise SchemaError("grid_g_co2e_per_kwh", "must be in [0, 2000] g CO2e/kWh")
        if not 1 <= self.batch_parts <= 10_000:
            raise SchemaError("batch_parts", "must be in [1, 10000]")


def load_line(path: str | Path) -> LineFile:
    """Read and check a line file (relative bundle and key paths are taken from the working
    directory, as every robocell command does)."""
    data = load_yaml(path)
    try:
        return parse(LineFile, data)
    except SchemaError as exc:
        raise RobocellError(f"{path}: {exc}") from None


def scenario_values(steps: list[ScenarioStep], part: int, start: dict[str, Any]) -> dict[str, Any]:
    """The plant parameters the scenario sets at ``part`` (only those it has touched).

    Steps apply in ``at_part`` order; a ramp starts from the parameter's value when it begins
    (``start`` holds the plant's defaults) and holds ``to`` once it is over.
    """
    values: dict[str, Any] = {}
    for step in sorted(steps, key=lambda s: s.at_part):
        if step.at_part > part:
            break
        if step.ramp is None:
            values[step.parameter] = step.value
            continue
        begin = values.get(step.parameter, start[step.parameter])
        share = min(1.0, (part - step.at_part) / step.ramp.parts)
        values[step.parameter] = _mix(begin, step.ramp.to, share)
    return values


def _mix(begin: Any, end: Any, share: float) -> Any:
    if isinstance(end, list):
        begin = list(begin) if isinstance(begin, list | tuple) else [begin] * len(end)
        return [float(b) + share * (float(e) - float(b)) for b, e in zip(begin, end, strict=True)]
    return float(begin) + share * (float(end) - float(begin))
