"""The learning cycle on production data: its trigger, then the twin updated from telemetry.

A drift alarm makes the line calibrate the cell (:mod:`robocell.line.runtime`). With a
``learning`` entry in the line file, an alarm that calibration does not clear **triggers a
learning cycle** instead of another calibration:

- the cell has no calibration routine, or its calibration is off: nothing can clear it;
- a stream alarms again after a calibration was made for it: with the belief calibrated the
  KPI is still off, so the drifted quantity is not one calibration measures.

The trigger is a ``learning`` event (the part, why, the streams). From then on the line
calibrates that cell no more. After ``twin_parts`` more production parts it **updates the
twin**: the cell's drifted parameter (:data:`~robocell.line.twin.TWIN_ESTIMATES`) is
estimated by matching the mean figure of those parts on the twin
(:func:`~robocell.line.twin.estimate_parameter`), and a ``twin`` event holds the estimate,
its probes and its cost. The rows' ``conditions`` hold the plant's hidden truth: the
estimate never reads them; they give its error in the event, as a calibration event gives
the calibration's.

The cycle ends there for now: training challengers on the updated twin, certifying and
canarying them (:mod:`robocell.line.canary` does the last two for an offered bundle) are
not joined to it yet (docs/PRODUCTION.md, "Learning cycles").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from robocell.errors import RobocellError
from robocell.line.linefile import LearningEntry
from robocell.line.twin import TWIN_ESTIMATES, estimate_parameter

Emit = Callable[..., None]


class LearningCycle:
    """One cell's learning cycle: when it is triggered, and the twin's update after it."""

    def __init__(self, entry: LearningEntry, env_id: str, policy: Any) -> None:
        self.entry, self.policy = entry, policy
        self.parameter, self.figure = TWIN_ESTIMATES[env_id]
        self.triggered_at: int | None = None
        self.twin_done = False
        self.calibrated_streams: set[str] = set()  # streams a calibration was made for
        self._twin_env: Any = None

    def replay(self, events: list[dict[str, Any]]) -> None:
        """Where the recorded events leave the cycle (``--resume``)."""
        alarms: dict[int, set[str]] = {}
        for event in events:
            if event["type"] == "drift_alarm":
                alarms.setdefault(event["part"], set()).add(event["data"]["stream"])
            elif event["type"] == "calibration":
                self.calibrated_streams |= alarms.get(event["part"], set())
            elif event["type"] == "learning":
                self.triggered_at = event["part"]
            elif event["type"] == "twin":
                self.twin_done = True

    def calibrate(self, part: int, streams: list[str], routine: bool, emit: Emit) -> bool:
        """After alarms on ``streams``: True when a calibration may clear them; else the
        cycle is triggered (once) and the line calibrates no more."""
        if self.triggered_at is not None:
            return False
        if routine and not set(streams) & self.calibrated_streams:
            self.calibrated_streams |= set(streams)
            return True
        self.triggered_at = part
        reason = "not cleared by calibration" if routine else "no calibration routine"
        emit("learning", part, reason=reason, streams=sorted(streams),
             calibrated_streams=sorted(self.calibrated_streams))  # fmt: skip
        return False

    def after_part(self, part: int, rows: list[dict[str, Any]], emit: Emit) -> None:
        """Once ``twin_parts`` parts followed the trigger: estimate the drifted parameter."""
        if self.triggered_at is None or self.twin_done:
            return
        if part < self.triggered_at + self.entry.twin_parts:
            return
        window = [row for row in rows if self.triggered_at < row["part"] <= part]
        observed = float(np.mean([_figure(row, self.figure) for row in window]))
        truth = float(np.mean([row["conditions"][self.parameter] for row in window]))
        common = {"parameter": self.parameter, "figure": self.figure, "observed": observed,
                  "parts": [window[0]["part"], window[-1]["part"]]}  # fmt: skip
        self.twin_done = True
        try:
            found = estimate_parameter(
                self._twin(), self.policy, self.parameter, self.figure, observed,
                self._bounds(), self.entry.twin_episodes, self.entry.tolerance,
            )  # fmt: skip
        except RobocellError as exc:
            emit("twin", part, **common, refused=str(exc), truth=truth)
            return
        emit("twin", part, **common, value=found.value, twin=found.twin, truth=truth,
             error=found.value - truth, probes=[list(p) for p in found.probes],
             episodes=found.episodes, wall_s=found.wall_s, cpu_s=found.cpu_s)  # fmt: skip

    def follow(self, champion: Any) -> None:
        """A promotion made ``champion`` the cell's policy: the twin is played by it (and
        built as it deploys the cell) from now on."""
        if champion is self.policy:
            return
        self.close()
        self.policy, self._twin_env = champion, None

    def close(self) -> None:
        if self._twin_env is not None:
            self._twin_env.close()

    def _twin(self) -> Any:
        if self._twin_env is None:  # the cell as the bundle deploys it, apart from the plant
            self._twin_env = self.policy.make_env()
        return self._twin_env

    def _bounds(self) -> tuple[float, float]:
        if self.entry.bounds is not None:
            return float(self.entry.bounds[0]), float(self.entry.bounds[1])
        parameter = next(
            p for p in self._twin().unwrapped.line_parameters if p.name == self.parameter
        )
        return float(parameter.low), float(parameter.high)


def _figure(row: dict[str, Any], name: str) -> float:
    """A figure of a telemetry row: a column (energy, cycle time) or a quality figure."""
    return float(row[name] if name in row else row["quality"][name])
