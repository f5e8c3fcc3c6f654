"""The welding cell: process model, seam tracker, success rule and the scripted welder."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from robocell.envs.energy import EnergyConstants
from robocell.envs.rollout import episode_seeds, run_episode, summarize
from robocell.envs.weld.controller import ScriptedWelder
from robocell.envs.weld.process import WeldProcess, WeldProcessSpec
from robocell.envs.weld.reward import SHAPING_TERMS, TorchState, WeldRewardSpec, potentials
from robocell.envs.weld.seam import Seam, make_seam_points
from robocell.envs.weld.task import OBSERVATION_FIELDS

FIELD = {field["name"]: i for i, field in enumerate(OBSERVATION_FIELDS)}


def _straight_process() -> WeldProcess:
    points = make_seam_points("straight", 100.0, np.random.default_rng(0))
    return WeldProcess(Seam(points), WeldProcessSpec())


def _pass(
    process: WeldProcess, x0: float, x1: float, lateral: float, standoff: float, dt: float
) -> None:
    start = np.array([x0, lateral, standoff])
    end = np.array([x1, lateral, standoff])
    process.advance(start, end, True, dt)


@pytest.mark.parametrize(
    ("lateral", "standoff", "speed", "good"),
    [
        (0.0, 12.0, 9.0, True),
        (0.8, 13.5, 7.0, True),
        (1.5, 12.0, 9.0, False),
        (0.0, 15.0, 9.0, False),
        (0.0, 12.0, 15.0, False),
        (0.0, 12.0, 4.0, False),
    ],
)
def test_process_tolerance_band(lateral: float, standoff: float, speed: float, good: bool) -> None:
    process = _straight_process()
    for k in range(10):  # 10 steps of 0.1 s from x = -40 mm
        x0 = -40.0 + k * speed * 0.1
        _pass(process, x0, x0 + speed * 0.1, lateral, standoff, 0.1)
    figures = process.figures()
    welded_mm = speed * 1.0
    if good:
        assert figures["good_fraction"] * 100.0 == pytest.approx(welded_mm, abs=1.0)
        assert figures["defect_length_mm"] == 0.0
    else:
        assert figures["good_fraction"] == 0.0
        assert figures["defect_length_mm"] == pytest.approx(welded_mm, abs=1.0)


def test_standing_arc_burns_through() -> None:
    process = _straight_process()
    _pass(process, 0.0, 0.0, 0.0, 12.0, 0.1)
    assert process.defect_mm == pytest.approx(0.5)


def test_arc_off_welds_nothing_and_heat_input_follows_arc_power() -> None:
    process = _straight_process()
    process.advance(np.array([-50.0, 0, 12]), np.array([-40.0, 0, 12]), False, 0.1)
    assert process.figures()["seam_coverage"] == 0.0
    for k in range(20):
        x0 = -50.0 + 0.9 * k
        _pass(process, x0, x0 + 0.9, 0.0, 12.0, 0.1)
    figures = process.figures()
    welded_mm = figures["seam_coverage"] * len(process.cells) * 0.5
    expected = 0.8 * EnergyConstants.arc_power_w * 2.0 / welded_mm
    assert figures["heat_input_j_per_mm"] == pytest.approx(expected, rel=1e-6)


def test_seam_projection_signs() -> None:
    seam = Seam(make_seam_points("straight", 100.0, np.random.default_rng(0)))
    s, lateral = seam.project(np.array([[0.0, 2.0], [-60.0, -1.0], [70.0, 0.0]]))
    assert s == pytest.approx([50.0, -10.0, 120.0], abs=0.3)
    assert lateral == pytest.approx([2.0, -1.0, 0.0], abs=1e-6)


@pytest.mark.parametrize("shape", ["straight", "arc", "s_curve"])
def test_seam_length_matches_request(shape: str) -> None:
    seam = Seam(make_seam_points(shape, 180.0, np.random.default_rng(1)))
    assert seam.length_mm == pytest.approx(180.0, abs=1.0)


def test_seam_tracker_reveals_the_calibration_error() -> None:
    env = gym.make("robocell/WeldSeam-v1")
    readings, truth = [], []
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        task = env.unwrapped.task
        _, true_lateral = task.seam.project(task.real_tcp_mm[None, :2])
        readings.append(obs[FIELD["sensor_lateral"]])
        truth.append(-true_lateral[0])
    env.close()
    # The nominal offset alone does not tell where the real seam is; the tracker does,
    # to within its 0.1 mm noise.
    assert np.abs(np.array(readings) - np.array(truth)).max() < 0.5
    assert np.abs(np.array(truth)).max() > 0.5


def test_crashing_into_the_plate_ends_the_episode_unsuccessfully() -> None:
    env = gym.make("robocell/WeldSeam-v1")
    env.reset(seed=0)
    for _ in range(100):
        _, _, terminated, truncated, info = env.step(np.array([0.0, 0.0, -1.0, -1.0], np.float32))
        if terminated or truncated:
            break
    env.close()
    assert terminated and not info["is_success"]
    assert env.unwrapped.task.standoff_mm < 2.0


def test_scripted_welder_reaches_success_on_seeded_episodes() -> None:
    env = gym.make("robocell/WeldSeam-v1")
    welder = ScriptedWelder(env.unwrapped)
    episodes = [run_episode(env, welder, seed) for seed in episode_seeds(1000, 10)]
    env.close()
    summary = summarize(episodes)
    assert summary["success_rate"] >= 0.9
    assert summary["mean/mean_lateral_error_mm"] < 1.0
    assert summary["mean/arc_time_s"] > 5.0


def test_arc_power_is_metered_while_welding() -> None:
    env = gym.make("robocell/WeldSeam-v1")
    welder = ScriptedWelder(env.unwrapped)
    obs, _ = env.reset(seed=4)
    while not env.unwrapped.task.arc_on:
        obs, _, _, _, info = env.step(welder(obs))
    env.close()
    assert info["energy_j"] >= EnergyConstants.arc_power_w * 0.1


# ---------------------------------------------------------------------- reward (v1)
GAMMA = 0.97


def _play(env: gym.Env, policy, seed: int) -> tuple[float, list[dict], dict]:
    """Undiscounted return, every step's info, and Φ(s_0) per shaping term."""
    obs, _ = env.reset(seed=seed)
    start = dict(env.unwrapped.task.potentials)
    total, infos = 0.0, []
    while True:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        total += reward
        infos.append({**info, "terminated": terminated})
        if terminated or truncated:
            return total, infos, start


def _hold(action: list[float]):
    return lambda obs: np.array(action, dtype=np.float32)


def _returns(infos: list[dict], gamma: float) -> tuple[float, float]:
    """(undiscounted return without shaping, γ-discounted return with it)."""
    unshaped = sum(
        value for info in infos for key, value in info.items()
        if key.startswith("reward/") and key.removeprefix("reward/") not in SHAPING_TERMS
    )  # fmt: skip
    shaped = sum(
        gamma**t * sum(v for k, v in info.items() if k.startswith("reward/"))
        for t, info in enumerate(infos)
    )
    return unshaped, shaped


@pytest.mark.parametrize(
    ("action", "ending"),
    [([0.0, 0.0, -1.0, -1.0], "crash"), ([0.0, 0.0, 1.0, -1.0], "lost")],
)
def test_crash_and_lost_endings_pay_less_than_welding_or_waiting(action, ending) -> None:
    env = gym.make("robocell/WeldSeam-v1", gamma=GAMMA)
    _, welded, _ = _play(env, ScriptedWelder(), seed=3)
    _, aborted, _ = _play(env, _hold(action), seed=3)
    assert env.unwrapped.task.ending() == ending and aborted[-1]["terminated"]
    _, waited, _ = _play(env, _hold([0.0, 0.0, 0.0, -1.0]), seed=3)
    env.close()
    assert aborted[-1]["reward/abort"] == -1.0
    assert all(info["reward/abort"] == 0.0 for info in waited)
    assert not waited[-1]["terminated"]  # waiting ran into the time limit
    # Both by the task's own terms and by what the agent maximises (the discounted return,
    # shaping included: it telescopes to the same −Φ(s_0) for all three).
    for kind in (0, 1):
        abort_return, wait_return, weld_return = (
            _returns(infos, GAMMA)[kind] for infos in (aborted, waited, welded)
        )
        assert abort_return < wait_return < weld_return


def test_welding_to_the_end_is_not_an_abort() -> None:
    env = gym.make("robocell/WeldSeam-v1")
    _, infos, _ = _play(env, ScriptedWelder(), seed=4)
    env.close()
    assert env.unwrapped.task.ending() == "past_end"
    assert infos[-1]["reward/success"] == 10.0
    assert all(info["reward/abort"] == 0.0 for info in infos)


@pytest.mark.parametrize(
    ("policy", "terminal"),
    [(ScriptedWelder(), True), (_hold([0.0, 0.05, -0.02, -1.0]), False)],
    ids=["terminated", "truncated"],
)
def test_shaping_sums_to_the_discounted_potential_difference(policy, terminal) -> None:
    env = gym.make("robocell/WeldSeam-v1", gamma=GAMMA)
    _, infos, start = _play(env, policy, seed=5)
    end = env.unwrapped.task.potentials
    env.close()
    assert infos[-1]["terminated"] == terminal
    # Φ(terminal) = 0; after a time-limit truncation the last state keeps its Φ.
    assert all(value == 0.0 for value in end.values()) == terminal
    steps = len(infos)
    for name in SHAPING_TERMS:
        discounted = sum(GAMMA**t * info[f"reward/{name}"] for t, info in enumerate(infos))
        assert discounted == pytest.approx(GAMMA**steps * end[name] - start[name], abs=1e-9)


def test_shaping_weight_zero_leaves_the_unshaped_reward() -> None:
    shaped = gym.make("robocell/WeldSeam-v1")
    plain = gym.make("robocell/WeldSeam-v1", shaping_weight=0.0)
    _, with_shaping, _ = _play(shaped, ScriptedWelder(), seed=6)
    _, without, _ = _play(plain, ScriptedWelder(), seed=6)
    shaped.close()
    plain.close()
    assert len(with_shaping) == len(without)
    assert any(info["reward/shaping_speed"] != 0.0 for info in with_shaping)
    for a, b in zip(with_shaping, without, strict=True):
        assert all(b[f"reward/{name}"] == 0.0 for name in SHAPING_TERMS)
        for name in ("weld_good", "weld_defect", "success", "abort", "energy"):
            assert a[f"reward/{name}"] == b[f"reward/{name}"]


def test_potential_peaks_at_the_welding_procedure() -> None:
    spec, process = WeldRewardSpec(), WeldProcessSpec()
    best = potentials(TorchState(12.0, 0.0, 9.0, True), spec, process)
    assert best == dict.fromkeys(SHAPING_TERMS, 1.0)
    far = potentials(TorchState(40.0, -12.0, -3.0, True), spec, process)
    assert far == dict.fromkeys(SHAPING_TERMS, 0.0)
    half = potentials(TorchState(12.0 + 12.5, 5.0, 13.5, True), spec, process)
    expected = {**dict.fromkeys(SHAPING_TERMS, 0.5), "shaping_speed": 0.25, "shaping_arc": 0.125}
    assert half == pytest.approx(expected)
    arc_off = potentials(TorchState(12.0, 0.0, 9.0, False), spec, process)
    assert arc_off == {**best, "shaping_arc": 0.0}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"gamma": 1.5}, "gamma must be in"), ({"shaping_weight": -1.0}, "shaping_weight")],
)
def test_reward_arguments_are_checked(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        gym.make("robocell/WeldSeam-v1", **kwargs)
