"""Accuracy of the twin estimate of worn joints (peg joint friction from energy per part).

For each true friction the plant (models/peg, the shipped bundle) makes ``parts`` parts on the
line's episode seeds; the twin estimate (:func:`robocell.line.twin.estimate_parameter`) then
finds the friction at which the twin, on its own seeds, costs the same mean energy per part.
Prints the truth, the estimate, its error, the twin's episodes and the estimate's wall and
CPU time.

    .venv/bin/python bench/twin_accuracy.py [parts, default 100] [twin episodes, default 40]
"""

from __future__ import annotations

import sys

import numpy as np

from robocell.agents.bundle import load_bundle
from robocell.eval.runner import play_episode
from robocell.line.runtime import episode_seed
from robocell.line.twin import TWIN_ESTIMATES, estimate_parameter

TRUTHS_NM = (0.05, 0.1, 0.15, 0.2, 0.3)
BOUNDS_NM = (0.0, 0.5)


def main(parts: int, episodes: int) -> None:
    policy = load_bundle("models/peg")
    parameter, figure = TWIN_ESTIMATES[policy.env_id]
    plant, twin = policy.make_env(), policy.make_env()
    print(f"{parameter} from {figure}: {parts} production parts, twin {episodes} seeds")
    print("truth   estimate  error   observed J  twin episodes  wall s  CPU s")
    errors = []
    for truth in TRUTHS_NM:
        plant.unwrapped.configure(**{parameter: truth})
        seeds = [episode_seed(0, part, "peg-1") for part in range(parts)]
        observed = float(np.mean([play_episode(plant, policy, s)[figure] for s in seeds]))
        found = estimate_parameter(
            twin, policy, parameter, figure, observed, BOUNDS_NM, episodes, tolerance=0.002
        )
        errors.append(found.value - truth)
        print(
            f"{truth:5.3f}   {found.value:6.3f}   {found.value - truth:+6.3f}  "
            f"{observed:9.1f}   {found.episodes:13d}  {found.wall_s:6.1f}  {found.cpu_s:5.1f}"
        )
    print(f"mean |error| {np.mean(np.abs(errors)):.3f} N·m, worst {np.max(np.abs(errors)):.3f}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args + [100, 40][len(args) :]))
