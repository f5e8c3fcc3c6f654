"""The twin estimate: bisection on common seeds recovers a plant parameter, refuses a mean
the twin cannot give, and reports what it cost."""

from __future__ import annotations

import numpy as np
import pytest

from robocell.agents.bundle import load_bundle
from robocell.errors import RobocellError
from robocell.eval.runner import play_episode
from robocell.line.twin import TWIN_ESTIMATES, TWIN_FIRST_SEED, estimate_parameter

EPISODES = 6


@pytest.fixture(scope="module")
def peg():
    policy = load_bundle("models/peg")
    env = policy.make_env()
    yield policy, env
    env.close()


def _mean_energy(env, policy, friction: float) -> float:
    env.unwrapped.configure(joint_friction_nm=friction)
    seeds = range(TWIN_FIRST_SEED, TWIN_FIRST_SEED + EPISODES)
    return float(np.mean([play_episode(env, policy, seed)["energy_j"] for seed in seeds]))


def test_the_twin_recovers_friction_on_its_own_seeds(peg) -> None:
    policy, env = peg
    parameter, figure = TWIN_ESTIMATES[policy.env_id]
    observed = _mean_energy(env, policy, 0.2)  # the twin's seeds: the mean it must match
    found = estimate_parameter(
        env, policy, parameter, figure, observed, (0.0, 0.4), EPISODES, tolerance=0.01
    )
    assert found.value == pytest.approx(0.2, abs=0.02)
    assert found.twin == pytest.approx(observed, rel=0.1)
    assert found.probes[:2] == [(0.0, found.probes[0][1]), (0.4, found.probes[1][1])]
    assert found.probes[0][1] < observed < found.probes[1][1]  # energy rises with friction
    assert found.episodes == EPISODES * len(found.probes)
    assert found.wall_s > 0 and found.cpu_s > 0


def test_a_mean_the_twin_cannot_give_is_refused_naming_it(peg) -> None:
    policy, env = peg
    with pytest.raises(RobocellError, match=r"joint_friction_nm.*outside the twin's"):
        estimate_parameter(env, policy, "joint_friction_nm", "energy_j", 1.0, (0.0, 0.1), EPISODES)
