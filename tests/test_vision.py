"""The vision cell: camera mapping, rendering, suction, each reward case and the baseline."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator

import gymnasium as gym
import numpy as np
import pytest

from robocell.envs.arms import IIWA_MAX_SPEED_RAD_S
from robocell.envs.rollout import episode_seeds, run_episode, summarize
from robocell.envs.sim import Sim, quat_from_euler
from robocell.envs.sim_types import BoxPart, Light
from robocell.envs.vision.camera import OverheadCamera, PartVisual, RenderClient, detect_parts
from robocell.envs.vision.controller import ScriptedSorter
from robocell.envs.vision.env import VisionSortEnv
from robocell.envs.vision.pick_grid import PickGrid
from robocell.envs.vision.pick_place import ArmPlanner, joint_move
from robocell.envs.vision.scene import (
    FIELD_M,
    PART_HALF_M,
    PART_TOP_M,
    SUCTION_CUP,
    TRAY_CENTRE_M,
    TRAY_HALF_M,
    TRAY_RGB,
)
from robocell.envs.vision.task import PICK_HEIGHT_M

ENV_ID = "robocell/VisionSort-v1"


@pytest.fixture
def make_env() -> Iterator[Callable[..., gym.Env]]:
    envs: list[gym.Env] = []

    def make(**kwargs: object) -> gym.Env:
        env = gym.make(ENV_ID, **kwargs)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


def _pick_action(env: gym.Env, name: str, ng: bool, offset_m: float = 0.0) -> np.ndarray:
    """The action that picks a part at its true centre (test-only ground truth)."""
    position, _ = env.unwrapped.sim.base_pose(name)
    xy = position[:2] + np.array([offset_m, 0.0])
    return env.unwrapped.task.encode_action(xy, "ng" if ng else "ok")


# ---------------------------------------------------------------------- camera
def _camera() -> OverheadCamera:
    return OverheadCamera(TRAY_CENTRE_M, 0.75, FIELD_M, 84)


def test_pixel_mapping_round_trip() -> None:
    camera = _camera()
    points = np.array([[0.5, -0.1, PART_TOP_M], [0.7, 0.12, PART_TOP_M], [0.58, 0.0, 0.09]])
    pixels = camera.world_to_pixel(points)
    back = np.stack(
        [camera.pixel_to_world(px, z) for px, z in zip(pixels, points[:, 2], strict=True)]
    )
    np.testing.assert_allclose(back, points, atol=1e-9)
    centre = camera.world_to_pixel(np.array(TRAY_CENTRE_M))
    np.testing.assert_allclose(centre, [42.5, 41.5], atol=1e-5)  # TinyRenderer's sampling
    further, left = camera.world_to_pixel(np.array([[0.68, 0.0, 0.09], [0.58, 0.1, 0.09]]))
    assert further[1] < centre[1] and further[0] == pytest.approx(centre[0])  # rows run along −x
    assert left[0] < centre[0] and left[1] == pytest.approx(centre[1])  # columns along −y


@pytest.mark.parametrize("xy", [(0.58, 0.0), (0.47, -0.09), (0.66, 0.11), (0.53, 0.127)])
def test_part_at_known_position_appears_at_expected_pixel(xy: tuple[float, float]) -> None:
    camera = _camera()
    client = RenderClient(camera)
    try:
        marker = {"m": _flat_square_visual()}
        client.build(TRAY_HALF_M, (*TRAY_RGB, 1.0), marker, Light())
        position = np.array([*xy, TRAY_CENTRE_M[2] + 0.0005])
        client.sync({"m": (position, np.array([0.0, 0.0, 0.0, 1.0]))})
        (blob,) = detect_parts(client.render(), min_area_px=10)
    finally:
        client.close()
    expected = camera.world_to_pixel(position + np.array([0.0, 0.0, 0.0005]))  # its top face
    np.testing.assert_allclose(blob.centre_px, expected, atol=0.6)  # a 40 mm square: 11 px


def _flat_square_visual() -> PartVisual:
    return PartVisual((BoxPart((0.02, 0.02, 0.0005), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0, 1.0)),))


def test_background_composite_equals_full_render(make_env) -> None:
    env = make_env()
    obs, _ = env.reset(seed=4)
    task = env.unwrapped.task
    full = Sim()  # the whole scene in one client, drawn in one pass
    try:
        top = TRAY_CENTRE_M[2] - TRAY_HALF_M[2]
        full.create_box("tray", TRAY_HALF_M, (*TRAY_CENTRE_M[:2], top), rgba=task.tray_rgba)
        for name, part in task.parts.items():
            position, orientation = task.sim.base_pose(name)
            full.create_compound(name, part.visual().boxes, position, orientation, collision=False)
        camera, light = task.camera, task.render_client.light
        rgb, _ = full.camera_image(84, 84, camera.view_matrix(), camera.projection_matrix(), light)
    finally:
        full.close()
    np.testing.assert_array_equal(obs["image"], rgb.transpose(2, 0, 1))


def test_world_matches_image_for_every_part(make_env) -> None:
    env = make_env(light_tilt_deg=0.0, light_level_jitter=0.0, colour_jitter=0.0)
    obs, _ = env.reset(seed=2)
    camera = env.unwrapped.task.camera
    blobs = detect_parts(obs["image"], min_area_px=40)
    parts = env.unwrapped.task.parts
    assert len(blobs) == len(parts)
    for name in parts:
        position, _ = env.unwrapped.sim.base_pose(name)
        expected = camera.world_to_pixel(position + np.array([0.0, 0.0, PART_HALF_M[2]]))
        distance = min(np.linalg.norm(b.centre_px - expected) for b in blobs)
        assert distance < 1.0


def test_camera_renders_from_a_client_without_the_robot(make_env) -> None:
    env = make_env()
    env.reset(seed=0)
    task = env.unwrapped.task
    assert task.render_client.sim.client_id != env.unwrapped.sim.client_id
    assert not task.render_client.sim.has_body("robot")
    assert task.render_client.shown_parts == list(task.parts)


def test_depth_channel_shows_part_height(make_env) -> None:
    env = make_env(depth=True, parts=(3, 3))
    obs, _ = env.reset(seed=1)
    assert obs["image"].shape == (4, 84, 84)
    assert env.observation_space.contains(obs)
    depth_mm = obs["image"][3].astype(int)
    assert np.median(depth_mm) <= 1  # the tray surface
    tops = (depth_mm >= 19) & (depth_mm <= 21)  # the parts' 20 mm high top faces
    assert 3 * 100 < tops.sum() < 3 * 150


# ---------------------------------------------------------------------- pick grid
def _grid(size: int = 168) -> PickGrid:
    return PickGrid.from_camera(_camera(), size, PART_TOP_M, ("ok", "ng"))


def test_grid_index_names_cell_and_bin() -> None:
    grid = _grid()
    assert grid.n_actions == 168 * 168 * 2
    assert max(grid.cell_m) <= 0.002  # a cell is at most 2 mm of tray
    first, last = grid.decode(0), grid.decode(168 * 168 - 1)
    assert first[1] == last[1] == "ok" and grid.decode(168 * 168)[1] == "ng"
    assert first[0][0] > TRAY_CENTRE_M[0] > last[0][0]  # row 0 is the far (+x) edge
    assert first[0][1] > TRAY_CENTRE_M[1] > last[0][1]  # col 0 is the left (+y) edge
    xy, _ = grid.decode(1 * 168 * 168 + 5 * 168 + 7)
    np.testing.assert_allclose(xy, grid.point(5, 7))
    with pytest.raises(ValueError, match="outside"):
        grid.decode(grid.n_actions)


def test_grid_round_trip() -> None:
    grid = _grid()
    indices = np.random.default_rng(0).integers(0, grid.n_actions, 500)
    for index in indices:
        xy, bin_name = grid.decode(index)
        assert grid.encode(xy, bin_name) == index
    # Any point maps to the cell holding it: back within half a cell.
    points = np.random.default_rng(1).uniform([0.45, -0.14], [0.71, 0.14], (200, 2))
    for xy in points:
        centre, _ = grid.decode(grid.encode(xy, "ng"))
        assert np.all(np.abs(centre - xy) <= np.asarray(grid.cell_m) / 2 + 1e-12)


@pytest.mark.parametrize("size", [84, 168])
def test_grid_cells_are_aligned_with_the_image(size: int) -> None:
    camera, grid = _camera(), _grid(size)
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    points = np.stack([grid.point(r, c) for r, c in zip(rows.ravel(), cols.ravel(), strict=True)])
    pixels = camera.world_to_pixel(np.column_stack([points, np.full(len(points), PART_TOP_M)]))
    scale = camera.size_px / size  # image pixels per cell
    np.testing.assert_allclose(pixels[:, 0], (cols.ravel() + 0.5) * scale, atol=1e-9)
    np.testing.assert_allclose(pixels[:, 1], (rows.ravel() + 0.5) * scale, atol=1e-9)


def test_grid_is_the_default_action_and_continuous_stays(make_env) -> None:
    env = make_env()
    assert env.action_space == gym.spaces.Discrete(168 * 168 * 2)
    grid = env.unwrapped.action_grid
    assert (grid["rows"], grid["cols"], grid["bins"]) == (168, 168, ["ok", "ng"])
    assert grid["index"] == "bin*rows*cols + row*cols + col"
    assert make_env(image_size=32).action_space.n == 64 * 64 * 2
    assert make_env(grid_size=200).action_space.n == 200 * 200 * 2
    continuous = make_env(action_mode="continuous")
    assert continuous.action_space.shape == (3,)
    assert continuous.unwrapped.action_grid is None


@pytest.mark.parametrize("index", [-1, 168 * 168 * 2, 3.0], ids=["negative", "past_end", "float"])
def test_grid_index_outside_the_space_is_an_invalid_action(make_env, index: float) -> None:
    env = make_env()
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(np.asarray(index))
    assert truncated and not terminated and reward == 0.0
    assert info["fault"] == "invalid_action"


def test_grid_pick_at_a_part_sorts_it(make_env) -> None:
    env = make_env(defect_rate=1.0, parts=(3, 3))
    env.reset(seed=3)
    task = env.unwrapped.task
    position, _ = task.sim.base_pose("part_1")
    row, col = task.grid.cell_of(position[:2])
    index = 1 * 168 * 168 + row * 168 + col  # the NG bin
    _, _, _, _, info = env.step(index)
    assert info["reward/correct"] == 1.0 and task.location["part_1"] == "ng"


# ---------------------------------------------------------------------- suction and rewards
def test_good_part_into_ok_bin_is_correct(make_env) -> None:
    env = make_env(defect_rate=0.0, parts=(3, 3))
    env.reset(seed=0)
    _, reward, _, _, info = env.step(_pick_action(env, "part_0", ng=False))
    task = env.unwrapped.task
    assert task.location["part_0"] == "ok"
    assert info["reward/correct"] == 1.0 and info["reward/empty_pick"] == 0.0
    assert reward == pytest.approx(1.0 + info["reward/energy"])
    assert info["sort_accuracy"] == pytest.approx(1 / 3)
    assert not task.suction_on and task._constraint is None  # released


def test_released_part_lies_in_the_bin(make_env) -> None:
    env = make_env(defect_rate=0.0, parts=(3, 3))
    env.reset(seed=0)
    env.step(_pick_action(env, "part_1", ng=False))
    env.step(_pick_action(env, "part_0", ng=False))  # one more cycle: the first part settles
    position, _ = env.unwrapped.sim.base_pose("part_1")
    assert abs(position[1] - 0.30) < 0.08 and position[2] == pytest.approx(0.095, abs=0.002)


def test_defective_part_into_ok_bin_is_an_escape(make_env) -> None:
    env = make_env(defect_rate=1.0, parts=(3, 3))
    env.reset(seed=0)
    _, _, _, _, info = env.step(_pick_action(env, "part_2", ng=False))
    assert info["reward/escape"] == -2.0 and info["reward/correct"] == 0.0
    assert info["escape_rate"] == pytest.approx(1 / 3)


def test_good_part_into_ng_bin_is_scrap(make_env) -> None:
    env = make_env(defect_rate=0.0, parts=(3, 3))
    env.reset(seed=0)
    _, _, _, _, info = env.step(_pick_action(env, "part_1", ng=True))
    assert info["reward/scrap"] == -0.5 and info["scrap_rate"] == pytest.approx(1 / 3)
    assert env.unwrapped.task.location["part_1"] == "ng"


def test_defective_part_into_ng_bin_is_correct(make_env) -> None:
    env = make_env(defect_rate=1.0, parts=(3, 3))
    env.reset(seed=0)
    _, _, _, _, info = env.step(_pick_action(env, "part_0", ng=True))
    assert info["reward/correct"] == 1.0 and info["reward/escape"] == 0.0


def test_empty_pick_costs_and_moves_nothing(make_env) -> None:
    env = make_env(parts=(3, 3))
    env.reset(seed=0)
    task = env.unwrapped.task
    before = {name: task.sim.base_pose(name)[0] for name in task.parts}
    obs, _, _, _, info = env.step(_pick_action(env, "part_0", ng=False, offset_m=0.045))
    assert info["reward/empty_pick"] == -0.2 and info["empty_picks"] == 1.0
    assert obs["state"][1] == 1.0  # the vacuum switch reported no part
    for name, position in before.items():
        np.testing.assert_allclose(task.sim.base_pose(name)[0], position, atol=1e-4)


@pytest.mark.parametrize(("local_offset_m", "held"), [(0.0, True), (0.014, True), (0.018, False)])
def test_cup_must_seal_inside_the_margin(make_env, local_offset_m: float, held: bool) -> None:
    env = make_env(parts=(3, 3), action_mode="continuous")  # exact pick points
    env.reset(seed=0)
    yaw = env.unwrapped.task.parts["part_0"].yaw_rad
    # An offset d along world x is d·max(|cos|, |sin|) along the part's nearest face axis.
    offset = local_offset_m / max(abs(np.cos(yaw)), abs(np.sin(yaw)))
    _, _, _, _, info = env.step(_pick_action(env, "part_0", ng=False, offset_m=offset))
    assert info["reward/empty_pick"] == (0.0 if held else -0.2)
    assert (env.unwrapped.task.location["part_0"] == "ok") == held


def test_no_attach_without_touch(make_env) -> None:
    env = make_env()
    env.reset(seed=0)
    task = env.unwrapped.task
    task.suction_on = True  # the arm waits 120 mm above the tray: nothing to hold
    assert task._part_under_cup() is None


def test_pump_power_is_metered_while_suction_is_on(make_env) -> None:
    env = make_env(parts=(3, 3))
    env.reset(seed=0)
    env.step(_pick_action(env, "part_0", ng=False))
    held_j = env.unwrapped.meter.tool_total_j
    env.reset(seed=0)
    env.step(_pick_action(env, "part_0", ng=False, offset_m=0.045))
    empty_j = env.unwrapped.meter.tool_total_j
    # 25 W from the start of the descent until the release (0.25 + 0.1 + 0.25 + 0.95 s), or
    # until the seal check reports no part (0.25 + 0.1 s).
    assert held_j == pytest.approx(25.0 * 1.55)
    assert empty_j == pytest.approx(25.0 * 0.35)


def test_attempt_budget_ends_the_episode(make_env) -> None:
    env = make_env(parts=(3, 3))
    env.reset(seed=0)
    for step in range(5):  # 3 parts + 2 attempts, all empty (a corner with no part)
        _, _, terminated, truncated, info = env.step(0)  # top-left cell, OK bin
        assert terminated == (step == 4) and not truncated
    assert info["episode_metrics"]["picks_per_part"] == pytest.approx(5 / 3)
    assert info["episode_metrics"]["success"] == 0.0


def test_state_holds_no_part_information(make_env) -> None:
    env = make_env()
    states = [env.reset(seed=seed)[0]["state"] for seed in range(5)]
    for state in states:
        np.testing.assert_array_equal(state, [1.0, 0.0])


def test_randomisation_kwargs_change_the_look(make_env) -> None:
    plain = make_env(light_tilt_deg=0.0, light_level_jitter=0.0, colour_jitter=0.0)
    corners = {tuple(plain.reset(seed=s)[0]["image"][:, 0, 0]) for s in range(3)}
    assert len(corners) == 1  # tray pixels look the same in every episode
    jittered = make_env()
    corners = {tuple(jittered.reset(seed=s)[0]["image"][:, 0, 0]) for s in range(3)}
    assert len(corners) == 3


def test_bad_kwargs_are_refused() -> None:
    with pytest.raises(ValueError, match="action_mode"):
        VisionSortEnv(action_mode="pixels")
    with pytest.raises(ValueError, match="grid_size"):
        VisionSortEnv(action_mode="continuous", grid_size=100)
    with pytest.raises(ValueError, match="parts"):
        VisionSortEnv(parts=(0, 3))
    with pytest.raises(ValueError, match="defect_rate"):
        VisionSortEnv(defect_rate=1.5)
    with pytest.raises(ValueError, match="energy_weight"):
        VisionSortEnv(energy_weight=-1.0)


# ---------------------------------------------------------------------- motion and clients
def test_joint_moves_keep_rated_speeds_and_arrive() -> None:
    q_from, q_to = np.zeros(7), np.array([0.8, -0.5, 0.3, 1.0, -0.2, 0.4, 0.1])
    positions, velocities = joint_move(q_from, q_to, 120, 1 / 60)
    np.testing.assert_allclose(positions[-1], q_to)
    assert np.all(np.abs(velocities) <= np.asarray(IIWA_MAX_SPEED_RAD_S) + 1e-9)
    assert np.all(np.abs(np.diff(positions, axis=0)) * 60 <= np.asarray(IIWA_MAX_SPEED_RAD_S))


def test_joint_moves_keep_rated_accelerations_where_the_arm_has_them() -> None:
    q_from, q_to = np.zeros(7), np.array([0.0, 0.15, 0.0, -0.03, 0.0, 0.18, 0.0])
    accel = np.array([15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0])
    fast, _ = joint_move(q_from, q_to, 120, 1 / 240)
    limited, velocities = joint_move(q_from, q_to, 120, 1 / 240, max_accel_rad_s2=accel)
    np.testing.assert_allclose(limited[-1], q_to)
    assert np.argmax(np.all(limited == q_to, axis=1)) > np.argmax(np.all(fast == q_to, axis=1))
    rates = np.abs(np.diff(velocities, axis=0)) * 240
    assert np.all(rates <= accel * 1.01)


def test_planner_is_exact() -> None:
    planner = ArmPlanner(SUCTION_CUP)
    try:
        for xy in [(0.45, -0.14), (0.72, 0.14), (0.58, 0.0)]:
            q = planner.solve((*xy, PICK_HEIGHT_M))
            planner.arm.reset_joints(q)
            tcp, _ = planner.arm.tcp_pose()
            np.testing.assert_allclose(tcp, (*xy, PICK_HEIGHT_M), atol=1e-5)
    finally:
        planner.close()


def test_resets_reuse_all_three_clients_and_close_releases_them() -> None:
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    task = env.unwrapped.task
    clients = (env.unwrapped.sim, task.render_client.sim, task.planner.sim)
    ids = [sim.client_id for sim in clients]
    for seed in range(30):
        env.reset(seed=seed)
    assert [sim.client_id for sim in clients] == ids
    env.close()
    assert not any(sim.connected for sim in clients)


def test_made_and_closed_envs_leak_no_clients() -> None:
    probe = Sim()  # PyBullet hands out the lowest free client slot
    before = probe.client_id
    probe.close()
    for seed in range(5):
        env = gym.make(ENV_ID)
        env.reset(seed=seed)
        env.close()
    probe = Sim()
    try:
        assert probe.client_id == before
    finally:
        probe.close()


def test_multi_input_policy_accepts_the_observation(make_env) -> None:
    from stable_baselines3 import PPO

    env = make_env(parts=(3, 3))
    model = PPO("MultiInputPolicy", env, n_steps=8, batch_size=8, n_epochs=1, seed=0)
    model.learn(total_timesteps=8)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)


# ---------------------------------------------------------------------- baseline
def test_scripted_sorter_sorts_parts() -> None:
    env = gym.make(ENV_ID)
    policy = ScriptedSorter(env.unwrapped)
    episodes = [run_episode(env, policy, seed) for seed in episode_seeds(1000, 6)]
    env.close()
    summary = summarize(episodes)
    assert summary["mean/sort_accuracy"] >= 0.95
    assert summary["mean/picks_per_part"] <= 1.2
    assert summary["mean/escape_rate"] == 0.0


def test_scripted_sorter_uses_the_image_only(make_env) -> None:
    env = make_env(parts=(3, 3), defect_rate=0.0)
    obs, _ = env.reset(seed=0)
    policy = ScriptedSorter(env.unwrapped)
    task = env.unwrapped.task
    blank = {"image": np.zeros_like(obs["image"]), "state": obs["state"]}
    xy, bin_name = task.decode_action(policy(blank))  # nothing seen: a harmless pick
    assert bin_name == "ok" and np.linalg.norm(xy - TRAY_CENTRE_M[:2]) < 0.002
    xy, bin_name = task.decode_action(policy(obs))
    assert bin_name == "ok"  # every part is good here
    seen = [np.linalg.norm(xy - task.sim.base_pose(name)[0][:2]) for name in task.parts]
    assert min(seen) < 0.004  # within 4 mm of a true part centre
    targets = policy.candidate_actions(obs)
    picks = [(task.decode_action(a), w) for a, w in targets.items()]
    assert all(name == "ok" for (_, name), _ in picks)
    for name in task.parts:  # around every part: its nearest cells, weighted by distance
        centre = task.sim.base_pose(name)[0][:2]
        near = sorted((np.linalg.norm(xy - centre), w) for (xy, _), w in picks)
        close = [w for d, w in near if d < 0.008]
        assert 20 <= len(close) <= 50 and max(close) > 0.75 and min(close) < 0.1


def _target_picks(task: object, targets: dict) -> list[tuple[np.ndarray, str]]:
    return [task.decode_action(action) for action in targets]


@pytest.mark.parametrize(
    ("defect_rate", "chosen", "outcome", "right"),
    [(0.0, "ng", "scrap", "ok"), (1.0, "ok", "escape", "ng"), (1.0, "ng", "correct", "ng")],
)
def test_outcome_targets_put_the_picked_part_in_the_bin_its_outcome_shows(
    make_env, defect_rate: float, chosen: str, outcome: str, right: str
) -> None:
    env = make_env(parts=(3, 3), defect_rate=defect_rate)
    obs, _ = env.reset(seed=0)
    sorter, task = ScriptedSorter(env.unwrapped), env.unwrapped.task
    action = _pick_action(env, "part_1", ng=chosen == "ng")
    _, _, _, _, info = env.step(action)
    assert info[f"reward/{outcome}"] != 0.0
    picks = _target_picks(task, sorter.outcome_targets(obs, action, info))
    assert picks and all(name == right for _, name in picks)
    centres = {name: np.asarray(task.parts[name].position_m[:2]) for name in task.parts}
    nearest = {min(centres, key=lambda n: np.linalg.norm(xy - centres[n])) for xy, _ in picks}
    assert nearest == {"part_1"}  # only the part that was picked


def test_outcome_targets_without_an_outcome_are_the_sorters_candidates(make_env) -> None:
    env = make_env(parts=(3, 3))
    obs, _ = env.reset(seed=0)
    sorter = ScriptedSorter(env.unwrapped)
    empty = env.unwrapped.task.encode_action(np.asarray(TRAY_CENTRE_M[:2]) + 0.14, "ok")
    _, _, _, _, info = env.step(empty)
    assert info["reward/empty_pick"] < 0.0
    assert sorter.outcome_targets(obs, empty, info) == sorter.candidate_actions(obs)


def test_part_poses_stay_upright_after_reset(make_env) -> None:
    env = make_env()
    env.reset(seed=9)
    for name in env.unwrapped.task.parts:
        _, orientation = env.unwrapped.sim.base_pose(name)
        yaw = env.unwrapped.task.parts[name].yaw_rad
        np.testing.assert_allclose(orientation, quat_from_euler(0.0, 0.0, yaw), atol=1e-9)


def test_baseline_command_reports_sort_accuracy() -> None:
    command = [sys.executable, "-m", "robocell", "baseline", ENV_ID, "--episodes", "2", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["episodes"] == 2
    assert summary["mean/sort_accuracy"] == 1.0
    for figure in ("escape_rate", "scrap_rate", "picks_per_part", "energy_per_part_j"):
        assert f"mean/{figure}" in summary
