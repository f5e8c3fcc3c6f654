"""The assembly cell: hole geometry, compliance, force limit, wrist sensor and the baseline."""

from __future__ import annotations

import numpy as np
import pytest

from robocell.envs.energy import EnergyConstants
from robocell.envs.peg.controller import SpiralSearchInserter
from robocell.envs.peg.env import PegInsertEnv, PegInsertEnvV1
from robocell.envs.peg.fixture import HoleGeometry
from robocell.envs.peg.impedance import CartesianImpedance
from robocell.envs.peg.impedance_compiled import law_torques
from robocell.envs.peg.task import PEG, SUCCESS_DEPTH_MM
from robocell.envs.rollout import episode_seeds, run_episode, summarize
from robocell.envs.sim import rotation_matrix

G = 9.81
FORCE_Z = 8  # index of force_z in the observation


# ---------------------------------------------------------------------- helpers
def _contact_force_n(env: PegInsertEnv) -> float:
    return sum(c.normal_force_n for c in env.sim.contacts("robot", "fixture"))


def _drive(env: PegInsertEnv, target_true_mm: tuple[float, float, float], steps: int) -> dict:
    """Move the set-point towards a point given in the TRUE hole frame (tests may peek)."""
    task = env.task
    info: dict = {}
    for _ in range(steps):
        nominal_minus_true = task.state.tcp_nominal_mm - task.state.tcp_true_mm
        target = np.asarray(target_true_mm) + nominal_minus_true
        action = np.clip(target - task.setpoint_mm, -1.0, 1.0).astype(np.float32)
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    return info


def _insert(env: PegInsertEnv, offset_mm: float) -> dict:
    """Hover over the true hole centre + offset in x, then push straight down."""
    _drive(env, (offset_mm, 0.0, 5.0), 40)
    return _drive(env, (offset_mm, 0.0, -40.0), 80)


# ---------------------------------------------------------------------- geometry (no physics)
def _inside_any(parts: list, points_m: np.ndarray) -> np.ndarray:
    inside = np.zeros(len(points_m), bool)
    for part in parts:
        local = (points_m - np.asarray(part.offset)) @ rotation_matrix(part.orientation)
        inside |= np.all(np.abs(local) <= np.asarray(part.half_extents), axis=1)
    return inside


def _expected_solid(geo: HoleGeometry, p_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Analytic solid of the block and a mask of points safely away from its surfaces."""
    x, y, z = np.abs(p_mm[:, 0]), np.abs(p_mm[:, 1]), p_mm[:, 2]
    opening = geo.half_width_mm + np.clip(geo.chamfer_mm + z, 0.0, geo.chamfer_mm)
    radial = np.maximum(x, y)
    in_block = (z < 0.0) & (z > -geo.block_height_mm) & (radial < geo.block_half_mm)
    solid = in_block & ((z < -geo.depth_mm) | (radial > opening))
    margin = 0.01  # mm: points this close to a surface are not classified
    clear = (
        (np.abs(radial - opening) > margin)
        & (np.abs(z + geo.depth_mm) > margin)
        & (np.abs(z) > margin)
    )
    return solid, clear


@pytest.mark.parametrize(("clearance_mm", "chamfer_mm"), [(0.5, 2.0), (0.1, 2.0), (0.5, 0.0)])
def test_hole_is_exactly_the_stated_shape(clearance_mm: float, chamfer_mm: float) -> None:
    geo = HoleGeometry(10.0 + clearance_mm, 30.0, chamfer_mm, 50.0, 120.0)
    rng = np.random.default_rng(0)
    # Most samples near the mouth and the bore wall, where clearance and chamfer live.
    near = rng.uniform([-14, -14, -35], [14, 14, 1], (40000, 3))
    far = rng.uniform([-55, -55, -125], [55, 55, 5], (10000, 3))
    points_mm = np.vstack([near, far])
    solid, clear = _expected_solid(geo, points_mm)
    inside = _inside_any(geo.parts(), points_mm / 1000.0)
    assert np.array_equal(inside[clear], solid[clear])
    # The bore is exactly peg + clearance wide: a peg-wide column is free down to the bottom.
    column = np.column_stack([np.full(50, 10.0 + clearance_mm - 0.02), np.zeros(50)])
    column = np.column_stack([column, np.linspace(-29.9, -0.1, 50)])
    assert not _inside_any(geo.parts(), column / 1000.0).any()


# ---------------------------------------------------------------------- geometry (physics)
@pytest.mark.parametrize("clearance_mm", [0.5, 0.1])
def test_aligned_peg_goes_in_at_the_stated_clearance(clearance_mm: float) -> None:
    env = PegInsertEnv(clearance_mm=clearance_mm, position_error_mm=0.0)
    env.reset(seed=3)
    info = _insert(env, 0.0)
    env.close()
    assert info["insertion_depth_mm"] >= SUCCESS_DEPTH_MM
    assert info["is_success"]
    assert info["peak_force_n"] < 25.0


@pytest.mark.parametrize(
    ("chamfer_mm", "offset_mm", "goes_in"),
    [(2.0, 2.0, True), (2.0, 4.0, False), (0.0, 1.0, False), (2.0, 1.0, True)],
)
def test_chamfer_catches_and_walls_hold(chamfer_mm: float, offset_mm: float, goes_in: bool) -> None:
    # Capture range = clearance + chamfer (2.5 mm); beyond it, or with no chamfer and an
    # offset above the clearance, the peg sits on the top face however hard it pushes.
    env = PegInsertEnv(chamfer_mm=chamfer_mm, position_error_mm=0.0)
    env.reset(seed=4)
    _drive(env, (offset_mm, 0.0, 5.0), 40)
    info = _drive(env, (offset_mm, 0.0, -6.0), 40)  # press ~ 12 N into whatever is below
    depth_mm = info["insertion_depth_mm"]
    env.close()
    if goes_in:
        assert depth_mm > 5.0
    else:
        assert depth_mm < 0.1


# ---------------------------------------------------------------------- compliance
@pytest.mark.parametrize("stiffness_n_m", [1000.0, 2000.0, 4000.0])
def test_pressing_2mm_gives_stiffness_times_2mm(stiffness_n_m: float) -> None:
    env = PegInsertEnv(stiffness_n_m=stiffness_n_m, force_noise_n=0.0, torque_noise_nm=0.0)
    env.reset(seed=5)
    _drive(env, (25.0, 0.0, 3.0), 50)  # above solid top face, 25 mm beside the hole
    obs_info = _drive(env, (25.0, 0.0, -2.0), 40)  # set-point 2 mm into the steel
    expected_n = stiffness_n_m * 0.002
    contact_n = _contact_force_n(env)
    torque_use = np.abs(env.robot.joint_state().tau) / env.robot.max_torque_nm
    sensed_n = env.task.state.wrench[2]
    env.close()
    assert obs_info["insertion_depth_mm"] < 0.05  # the surface did not give way
    assert contact_n == pytest.approx(expected_n, rel=0.05)
    assert sensed_n == pytest.approx(contact_n, rel=0.03)
    assert torque_use.max() < 0.5  # far from saturating any motor


def test_stiff_position_control_would_jam_hard() -> None:
    """The contrast: a position-controlled arm told to go 2 mm into the surface."""
    env = PegInsertEnv(force_noise_n=0.0, torque_noise_nm=0.0)
    env.reset(seed=5)
    _drive(env, (25.0, 0.0, 3.0), 50)
    task, robot = env.task, env.robot
    target = task.hole_true_m + task.to_world @ np.array([25.0, 0.0, -2.0]) / 1000.0
    robot.set_joint_targets(robot.ik(target, task.controller.setpoint_quat))
    for _ in range(240):
        env.sim.step()
    contact_n = _contact_force_n(env)
    env.close()
    assert contact_n > 10 * 2000.0 * 0.002  # far above the compliant arm's 4 N


def test_free_space_step_response_is_settled_and_square() -> None:
    env = PegInsertEnv()
    env.reset(seed=6)
    task = env.task
    start = task.state.tcp_nominal_mm.copy()
    for _ in range(10):  # a 10 mm set-point step in x, 1 mm per step
        env.step(np.array([1.0, 0.0, 0.0], np.float32))
    for _ in range(20):  # then hold for 1 s
        env.step(np.zeros(3, np.float32))
    moved = task.state.tcp_nominal_mm - start
    _, quat = env.robot.tcp_pose()
    tilt_cos = (rotation_matrix(quat) @ [0, 0, 1]) @ (
        rotation_matrix(task.controller.setpoint_quat) @ [0, 0, 1]
    )
    env.close()
    assert moved == pytest.approx([10.0, 0.0, 0.0], abs=0.1)
    assert tilt_cos > np.cos(1e-3)


def test_heavy_damping_stays_stable() -> None:
    # Damping is applied implicitly; explicit damping this high would blow up the wrist.
    env = PegInsertEnv(damping_n_s_m=3000.0, rot_damping_nms_rad=20.0)
    env.reset(seed=7)
    for _ in range(40):
        info = env.step(np.array([0.5, -0.5, -1.0], np.float32))[-1]
        assert "fault" not in info
    env.close()


def test_energy_meters_the_commanded_torques() -> None:
    env = PegInsertEnv()
    env.reset(seed=8)
    _, _, _, _, info = env.step(np.zeros(3, np.float32))
    tau = env.robot.joint_state().tau  # commanded, not PyBullet's stale read-back
    constants = EnergyConstants()
    holding_w = constants.standby_w + constants.copper_loss_w_per_nm2 * float(tau @ tau)
    env.close()
    assert info["energy_j"] == pytest.approx(holding_w * 0.05, rel=0.05)


# ---------------------------------------------------------------------- force limit
def test_exceeding_the_force_limit_ends_the_episode_damaged() -> None:
    env = PegInsertEnv(force_noise_n=0.0, torque_noise_nm=0.0)
    env.reset(seed=9)
    _drive(env, (25.0, 0.0, 3.0), 50)
    steps, terminated, info = 0, False, {}
    while not terminated and steps < 60:  # keep pushing the set-point down, 1 mm a step
        _, _, terminated, _, info = env.step(np.array([0.0, 0.0, -1.0], np.float32))
        steps += 1
    env.close()
    assert terminated
    assert info["damaged"] == 1.0 and not info["is_success"]
    assert info["peak_force_n"] > 50.0
    assert info["reward/force_excess"] <= -10.0
    assert info["episode_metrics"]["damaged"] == 1.0


def test_a_lower_force_limit_is_respected() -> None:
    env = PegInsertEnv(force_limit_n=12.0, force_noise_n=0.0, torque_noise_nm=0.0)
    env.reset(seed=9)
    _drive(env, (25.0, 0.0, 3.0), 50)
    info = _drive(env, (25.0, 0.0, -8.0), 30)  # 16 N static
    env.close()
    assert info["damaged"] == 1.0


# ---------------------------------------------------------------------- sensor
def test_sensor_is_zeroed_for_the_tool_weight() -> None:
    env = PegInsertEnv(force_noise_n=0.0, torque_noise_nm=0.0)
    obs, _ = env.reset(seed=10)
    raw = env.sim.joint_reaction_wrench("robot", env.task.tool_link)
    weight_n = PEG.mass_kg * G
    obs, *_ = env.step(np.zeros(3, np.float32))
    env.close()
    assert np.linalg.norm(raw[:3]) == pytest.approx(weight_n, rel=0.02)  # it sees the peg
    assert np.abs(obs[6:9]).max() < 0.02  # ... and reports no contact force


def test_sensor_noise_is_seeded_and_has_the_stated_sigma() -> None:
    readings = []
    for _ in range(2):
        env = PegInsertEnv(force_noise_n=0.1)
        env.reset(seed=11)
        rows = [env.step(np.zeros(3, np.float32))[0][6:9] for _ in range(60)]
        readings.append(np.array(rows))
        env.close()
    assert np.array_equal(readings[0], readings[1])
    sigma_mean_n = 0.1 / np.sqrt(12)  # mean of 12 samples per 0.05 s step
    assert readings[0].std(axis=0) == pytest.approx([sigma_mean_n] * 3, rel=0.3)
    tare_sigma_n = 0.1 / np.sqrt(24)  # the tare averages the 24 samples of the settle period
    assert np.abs(readings[0].mean(axis=0)).max() < 4 * tare_sigma_n


def test_sensed_force_tracks_the_contact_force() -> None:
    env = PegInsertEnv(force_noise_n=0.0, torque_noise_nm=0.0)
    env.reset(seed=12)
    _drive(env, (-25.0, 10.0, 3.0), 50)
    obs_forces, contact_forces = [], []
    for depth_mm in (1.0, 3.0, 6.0):
        _drive(env, (-25.0, 10.0, -depth_mm), 25)
        obs_forces.append(env.task.state.wrench[2])
        contact_forces.append(_contact_force_n(env))
    env.close()
    assert obs_forces == pytest.approx(contact_forces, rel=0.03, abs=0.05)


# ---------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    "kwargs",
    [
        {"clearance_mm": 0.0},
        {"chamfer_mm": 5.0},
        {"chamfer_mm": -1.0},
        {"position_error_mm": -1.0},
        {"force_limit_n": 0.0},
        {"stiffness_n_m": -1.0},
        {"force_noise_n": -0.1},
    ],
)
def test_bad_arguments_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        PegInsertEnv(**kwargs)


# ---------------------------------------------------------------------- scripted baseline
def test_spiral_search_baseline_solves_most_episodes() -> None:
    env = PegInsertEnv()
    policy = SpiralSearchInserter(env)
    episodes = [run_episode(env, policy, seed) for seed in episode_seeds(100, 10)]
    env.close()
    summary = summarize(episodes)
    assert summary["success_rate"] >= 0.8
    assert summary["mean/damaged"] == 0.0


def test_baseline_needs_nothing_but_the_observation() -> None:
    """Built without an env (no access to any state), it acts exactly the same."""
    env = PegInsertEnv()
    with_env = run_episode(env, SpiralSearchInserter(env), seed=21)
    blind = run_episode(env, SpiralSearchInserter(None), seed=21)
    env.close()
    assert with_env == blind
    assert with_env["success"] == 1.0


def test_linearised_law_stays_close_to_the_exact_one() -> None:
    """The per-period linearisation (see robocell.envs.peg.impedance) costs < 0.3 N·m."""
    env = PegInsertEnv()
    env.reset(seed=13)
    task, controller = env.task, env.task.controller
    worst_nm = 0.0
    for k in range(30):  # full-speed set-point moves, changing direction
        task.apply_action(np.array([1.0, -1.0, -1.0 if k < 15 else 1.0], np.float32))
        for substep in range(task.physics_steps):
            task.before_physics_step(substep)
            env.sim.step()
            task.after_physics_step(substep)
        states = env.sim.raw_joint_states("robot", env.robot.joint_indices)
        x = np.array([s[0] for s in states] + [s[1] for s in states])
        linearised_nm = controller.torques(x)
        controller.update_model()  # the exact law at the period's end state
        worst_nm = max(worst_nm, np.abs(linearised_nm - controller.torques(x)).max())
        task.compute_reward_terms()
    env.close()
    assert worst_nm < 0.3


# ---------------------------------------------------------------------- v1: Pinocchio, compiled
def test_v1s_compiled_law_is_v0s_law_on_pinocchios_model() -> None:
    """At the same states the compiled law on Pinocchio's model gives v0's torques."""
    env = PegInsertEnvV1()
    env.reset(seed=13)
    task, compiled = env.task, env.task.controller
    bullet = CartesianImpedance(env.robot, task.gains, rest_posture=compiled._rest)
    bullet.reset(compiled.setpoint_quat)  # (already under torque control: changes nothing)
    worst_nm = 0.0
    for k in range(20):
        env.step(np.array([1.0, -1.0, -1.0 if k < 10 else 1.0], np.float32))
        bullet.setpoint_m, bullet.setpoint_quat = compiled.setpoint_m, compiled.setpoint_quat
        compiled.update_model()
        bullet.update_model()
        states = env.robot.joint_reading()
        x = np.array([s[0] for s in states[:7]] + [s[1] for s in states[:7]])
        tau_nm = law_torques(states, compiled._offset, compiled._gain)
        assert tau_nm == pytest.approx(compiled.torques(x), abs=1e-9)  # the per-step call
        # The gains (A, B: from J and M alone) agree to rounding; the torques see PyBullet's
        # single-precision TCP pose (~5e-8 m × 2000 N/m, 1e-7 rad × 100 N·m/rad) in v0's error.
        assert compiled._gain == pytest.approx(bullet._gain, rel=1e-9, abs=1e-9)
        worst_nm = max(worst_nm, np.abs(tau_nm - bullet.torques(x)).max())
    env.close()
    assert worst_nm < 1e-3


def test_v1s_spiral_search_succeeds_as_on_v0() -> None:
    seeds = episode_seeds(100, 10)
    summaries = []
    for env in (PegInsertEnv(), PegInsertEnvV1()):
        summaries.append(summarize([run_episode(env, SpiralSearchInserter(env), s) for s in seeds]))
        env.close()
    v0, v1 = summaries
    assert v1["success_rate"] == v0["success_rate"] >= 0.8
    assert v1["mean/energy_j"] == pytest.approx(v0["mean/energy_j"], rel=0.05)
