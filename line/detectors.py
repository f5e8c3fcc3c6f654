"""Drift alarms: one-sided CUSUM detectors on a cell's KPI streams.

A Bernoulli CUSUM watches the failure indicator of success (and of an escape, for the
vision cell): with in-control failure rate ``p0`` and the rate to detect ``p1 > p0``, each
part adds the log-likelihood ratio of its outcome,

    S_t = max(0, S_{t-1} + x_t log(p1 / p0) + (1 - x_t) log((1 - p1) / (1 - p0))),

and the detector alarms when ``S_t > h`` (Page 1954, "Continuous inspection schemes",
Biometrika 41; the Bernoulli form: Reynolds & Stoumbos 1999, "A CUSUM chart for monitoring
a proportion when inspecting continuously", J. Quality Technology 31). A two-sided
standardised CUSUM watches energy per part and cycle time against the reference mean and
spread, ``S_t^± = max(0, S_{t-1}^± ± z_t − k)`` with ``z_t = (x_t − μ0) / σ0`` and
``k = 0.5`` (tuned to a one-σ shift; Montgomery, "Introduction to Statistical Quality
Control", 8th ed., §9.1).

Thresholds are not textbook defaults: ``h`` is the smallest value whose in-control average
run length, measured on streams resampled from the cell's own warm-up parts (the stationary
reference), is at least ``false_alarm_parts``. A stream that never alarms in the simulated
horizon counts with the horizon as its run length, so the estimate errs low (safe side).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: The smallest in-control failure rate a Bernoulli CUSUM assumes (a warm-up with no failure
#: does not prove the rate is zero).
MIN_FAILURE_RATE = 0.002
#: Reference value of the standardised CUSUM (detects a shift of about one sigma soonest).
CUSUM_K = 0.5
_STREAMS = 32
_HORIZON = 3  # simulated parts per stream, in multiples of the wanted run length
_RNG_SEED = 20_240_601


@dataclass
class Alarm:
    """A detector that crossed its threshold at ``part``."""

    stream: str
    part: int
    statistic: float
    threshold: float
    direction: str


@dataclass
class BernoulliCusum:
    """Upward CUSUM on a 0/1 failure stream (1 = the part failed)."""

    stream: str
    p0: float
    p1: float
    threshold: float
    statistic: float = 0.0

    @classmethod
    def from_reference(cls, stream: str, failures: Sequence[float], arl0: int) -> BernoulliCusum:
        """Reference rate from the warm-up (Jeffreys estimate, floored); p1 = 3·p0 + 0.05."""
        n = len(failures)
        p0 = max(MIN_FAILURE_RATE, (float(np.sum(failures)) + 0.5) / (n + 1.0))
        p1 = min(0.95, 3.0 * p0 + 0.05)
        up, down = np.log(p1 / p0), np.log((1.0 - p1) / (1.0 - p0))
        rng = np.random.default_rng(_RNG_SEED)
        draws = rng.random((_STREAMS, _HORIZON * arl0), dtype=np.float32)
        steps = np.where(draws < p0, np.float32(up), np.float32(down))
        return cls(stream, p0, p1, _threshold(steps, arl0))

    def update(self, failed: float, part: int) -> Alarm | None:
        step = np.log(self.p1 / self.p0) if failed else np.log((1 - self.p1) / (1 - self.p0))
        self.statistic = max(0.0, self.statistic + float(step))
        if self.statistic > self.threshold:
            return Alarm(self.stream, part, self.statistic, self.threshold, "up")
        return None

    def reset(self) -> None:
        self.statistic = 0.0


@dataclass
class MeanCusum:
    """Two-sided standardised CUSUM of a continuous KPI against its warm-up mean and spread."""

    stream: str
    mean: float
    std: float
    threshold: float
    high: float = 0.0
    low: float = 0.0

    @classmethod
    def from_reference(cls, stream: str, values: Sequence[float], arl0: int) -> MeanCusum:
        """μ0 and σ0 from the warm-up; h from CUSUMs of values resampled from it."""
        values = np.asarray(values, dtype=float)
        mean, std = float(values.mean()), float(values.std(ddof=1))
        std = max(std, 1e-6 * max(1.0, abs(mean)))  # a constant KPI still has a scale
        rng = np.random.default_rng(_RNG_SEED)
        z = ((rng.choice(values, size=(_STREAMS, _HORIZON * arl0)) - mean) / std).astype(np.float32)
        # Two one-sided CUSUMs: alarm at whichever crosses first (their minimum run length).
        threshold = _threshold(np.concatenate([z - CUSUM_K, -z - CUSUM_K]), arl0, pairs=True)
        return cls(stream, mean, std, threshold)

    def update(self, value: float, part: int) -> Alarm | None:
        z = (value - self.mean) / self.std
        self.high = max(0.0, self.high + z - CUSUM_K)
        self.low = max(0.0, self.low - z - CUSUM_K)
        if max(self.high, self.low) > self.threshold:
            direction = "up" if self.high >= self.low else "down"
            return Alarm(self.stream, part, max(self.high, self.low), self.threshold, direction)
        return None

    def reset(self) -> None:
        self.high = self.low = 0.0


def _cusum_paths(steps: np.ndarray) -> np.ndarray:
    """``S_t = max(0, S_{t-1} + step_t)`` along axis 1, for every row."""
    # max(0, ·) recursion as cumulative sum minus its running minimum (Lindley's recursion).
    total = np.cumsum(steps, axis=1)
    return total - np.minimum(np.minimum.accumulate(total, axis=1), 0.0)


def _threshold(steps: np.ndarray, arl0: int, pairs: bool = False) -> float:
    """The smallest h whose mean first-passage time over the rows is at least ``arl0``.

    With ``pairs`` the rows are two halves (upper and lower CUSUM of the same streams) and a
    stream's run length is the earlier of its two.
    """
    peaks = np.maximum.accumulate(_cusum_paths(steps), axis=1)
    if pairs:
        half = len(peaks) // 2
        peaks = np.maximum(peaks[:half], peaks[half:])
    horizon = peaks.shape[1]

    def mean_run_length(h: float) -> float:
        crossed = peaks > h
        first = np.where(crossed.any(axis=1), crossed.argmax(axis=1) + 1, horizon)
        return float(first.mean())

    low, high = 0.0, float(peaks.max()) + 1.0
    for _ in range(40):  # bisection: the mean run length grows with h
        middle = 0.5 * (low + high)
        low, high = (middle, high) if mean_run_length(middle) < arl0 else (low, middle)
    return high


#: Streams whose standard is the warm-up's level for good: quality. The process figures
#: (energy, cycle time) take a new reference after a calibration, which may change them.
QUALITY_STREAMS = ("success", "escape")


@dataclass
class CellDetectors:
    """The detectors of one cell: each stream warms up, then is watched part by part."""

    streams: list[str]
    warmup_parts: int
    false_alarm_parts: int
    reference: dict[str, list[float]] = field(default_factory=dict)
    detectors: dict[str, BernoulliCusum | MeanCusum] = field(default_factory=dict)
    raised: set[str] = field(default_factory=set)
    """Streams whose alarm stands: they raise no more until :meth:`restart` (a calibration)."""

    def update(self, part: int, kpis: dict[str, float]) -> list[Alarm]:
        """Feed one part's KPIs (``success``, ``escape``, ``energy_j``, ``cycle_time_s``)."""
        alarms = []
        for name in self.streams:
            value = _observation(name, kpis)
            if value is None or name in self.raised:
                continue
            if name not in self.detectors:
                self._warm_up(name, value)
                continue
            alarm = self.detectors[name].update(value, part)
            if alarm is not None:
                alarms.append(alarm)
                self.raised.add(name)
        return alarms

    def restart(self) -> None:
        """After a calibration: clear the standing alarms and zero the statistics. Quality
        streams keep their reference (the level to hold); energy and cycle time warm up
        again on the calibrated cell."""
        self.raised.clear()
        for name in [n for n in self.detectors if n not in QUALITY_STREAMS]:
            del self.detectors[name]
            self.reference.pop(name, None)
        for detector in self.detectors.values():
            detector.reset()

    def thresholds(self) -> dict[str, float]:
        return {name: detector.threshold for name, detector in self.detectors.items()}

    def _warm_up(self, name: str, value: float) -> None:
        values = self.reference.setdefault(name, [])
        values.append(value)
        if len(values) < self.warmup_parts:
            return
        kind = BernoulliCusum if name in QUALITY_STREAMS else MeanCusum
        self.detectors[name] = kind.from_reference(name, values, self.false_alarm_parts)


def _observation(stream: str, kpis: dict[str, float]) -> float | None:
    if stream == "success":
        return 1.0 - float(kpis["success"])
    if stream == "escape":
        escape = kpis.get("escape_rate")
        return None if escape is None else float(escape > 0)
    return float(kpis[stream]) if stream in kpis else None
