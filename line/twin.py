"""The twin updated from production: a drifted plant parameter estimated from the telemetry.

Calibration measures what a routine can probe in the plant (a camera's pose, a wire tip).
Some drift no routine probes: worn joints show only in what each part costs. The twin
estimate finds the value of such a plant parameter at which the twin (the cell's env with
the parameter set, played by the champion bundle) gives the same mean of a production figure
as the telemetry since the drift:

- the twin plays the same seeds at every probed value (common random numbers), so its mean
  figure is a smooth function of the parameter and bisection converges;
- the figure must be monotone in the parameter over ``bounds``: the twin's means at the two
  ends say whether it rises or falls, and an observed mean outside them is refused, naming
  both (the drift is not this parameter, or the bounds are too narrow);
- the seeds are the twin's own, apart from the production parts' (the estimate does not
  replay the plant's episodes).

:data:`TWIN_ESTIMATES` lists, per cell, which parameter is estimated from which figure.
The error of each against the plant's truth is measured by ``bench/twin_accuracy.py``
(docs/BENCHMARKS.md, "Twin estimates").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robocell.errors import RobocellError

#: Per cell: (plant parameter, the production figure it is estimated from).
TWIN_ESTIMATES: dict[str, tuple[str, str]] = {
    "robocell/PegInsert-v0": ("joint_friction_nm", "energy_j"),
    "robocell/PegInsert-v1": ("joint_friction_nm", "energy_j"),
}
#: Seeds of the twin's episodes: apart from the line's parts and the evaluation seeds.
TWIN_FIRST_SEED = 5_000_000


@dataclass(frozen=True)
class TwinEstimate:
    """A plant parameter matched to production, and what the match cost.

    Attributes:
        parameter: the plant parameter (a line parameter of the cell).
        value: its estimate.
        figure: the production figure matched.
        observed: the figure's mean over the production parts given.
        twin: the twin's mean figure at ``value``.
        probes: (parameter value, twin mean) of every value tried, in order.
        episodes: twin episodes played in all.
        wall_s: wall time of the estimate (s).
        cpu_s: CPU time of this process for it (s).
    """

    parameter: str
    value: float
    figure: str
    observed: float
    twin: float
    probes: list[tuple[float, float]] = field(default_factory=list)
    episodes: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0


def estimate_parameter(
    env: Any,
    policy: Any,
    parameter: str,
    figure: str,
    observed: float,
    bounds: tuple[float, float],
    episodes: int = 40,
    tolerance: float = 0.01,
) -> TwinEstimate:
    """The value of ``parameter`` in ``bounds`` at which the twin's mean ``figure`` is
    ``observed``: bisection on ``episodes`` common seeds to ``tolerance`` (the parameter's
    unit). ``env`` is the twin (the cell's env, changed through ``configure``), ``policy``
    the bundle that plays it. RobocellError where the observed mean lies outside the twin's
    means at the bounds."""
    from robocell.eval.runner import play_episode

    start_wall, start_cpu = time.perf_counter(), time.process_time()
    seeds = range(TWIN_FIRST_SEED, TWIN_FIRST_SEED + episodes)
    probes: list[tuple[float, float]] = []

    def twin_mean(value: float) -> float:
        env.unwrapped.configure(**{parameter: value})
        figures = [play_episode(env, policy, seed)[figure] for seed in seeds]
        mean = float(np.mean([np.nan if f is None else f for f in figures]))
        probes.append((value, mean))
        return mean

    low, high = (float(b) for b in bounds)
    at_low, at_high = twin_mean(low), twin_mean(high)
    if not min(at_low, at_high) <= observed <= max(at_low, at_high):
        raise RobocellError(
            f"twin estimate of {parameter}: the observed mean {figure} {observed:.4g} lies "
            f"outside the twin's {at_low:.4g} at {low:g} and {at_high:.4g} at {high:g}"
        )
    rising = at_high >= at_low
    while high - low > tolerance:
        middle = 0.5 * (low + high)
        if (twin_mean(middle) < observed) == rising:
            low = middle
        else:
            high = middle
    value = 0.5 * (low + high)
    return TwinEstimate(
        parameter=parameter,
        value=value,
        figure=figure,
        observed=float(observed),
        twin=twin_mean(value),
        probes=probes,
        episodes=len(probes) * episodes,
        wall_s=time.perf_counter() - start_wall,
        cpu_s=time.process_time() - start_cpu,
    )
