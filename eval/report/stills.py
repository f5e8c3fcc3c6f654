"""Rollout stills for the report: the first and the last frame of a few certified episodes.

The episodes are replayed with the bundle in the benchmark's cell, rendered headless
(``render_mode="rgb_array"``, TinyRenderer): the first frame before the first action, the last
one where the episode ended. A replay must reproduce the logged metrics exactly; rendering
does not touch the physics. Cost: one episode each (about 1.5 s for a weld seam).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robocell.errors import RobocellError
from robocell.eval.robustness import is_success
from robocell.eval.runner import play_episode
from robocell.eval.spec import BenchmarkSpec

STILLS_DIR = "stills"
DEFAULT_STILL_EPISODES = 3


def still_name(index: int, moment: str) -> str:
    """Relative path of a still: ``stills/episode_0007_first.png`` (moment: first/last)."""
    return f"{STILLS_DIR}/episode_{index:04d}_{moment}.png"


def pick_episodes(records: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """Up to ``count`` episodes in index order: the first failure (if any), then the first ones.

    A buyer sees a failure when there is one, and typical episodes besides.
    """
    failures = [r for r in records if not is_success(r["metrics"])]
    chosen = failures[:1] if count > 0 else []
    for record in records:
        if len(chosen) >= count:
            break
        if record not in chosen:
            chosen.append(record)
    return sorted(chosen, key=lambda record: record["index"])


def render_stills(
    policy: Any, spec: BenchmarkSpec, records: list[dict[str, Any]], count: int
) -> dict[str, bytes]:
    """``{relative path: PNG}`` of the first and last frame of ``count`` replayed episodes."""
    chosen = pick_episodes(records, count)
    if not chosen:
        return {}
    from robocell.envs.make import make_cell

    env = make_cell(spec.env_id, spec.env_kwargs, render_mode="rgb_array")
    stills = {}
    try:
        for record in chosen:
            first, last = _replay(env, policy, record)
            stills[still_name(record["index"], "first")] = _png(first)
            stills[still_name(record["index"], "last")] = _png(last)
    finally:
        env.close()
    return stills


class _FirstFrame:
    """Wraps a policy: renders the frame the first action is taken in."""

    def __init__(self, env: Any, act: Any) -> None:
        self.env, self.act = env, act
        self.frame: np.ndarray | None = None

    def __call__(self, obs: Any) -> np.ndarray:
        if self.frame is None:
            self.frame = self.env.render()
        return self.act(obs)


def _replay(env: Any, policy: Any, record: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    cameras: list[_FirstFrame] = []

    def film(act: Any) -> _FirstFrame:
        cameras.append(_FirstFrame(env, act))
        return cameras[-1]

    metrics = play_episode(env, policy, record["seed"], film)
    camera = cameras[0]
    if metrics != record["metrics"] or camera.frame is None:
        raise RobocellError(
            f"episode {record['index']} (seed {record['seed']}) replayed for the report's stills "
            "did not reproduce its logged metrics"
        )
    return camera.frame, env.render()


def _png(frame: np.ndarray) -> bytes:
    import imageio.v3 as iio

    return bytes(iio.imwrite("<bytes>", np.asarray(frame, dtype=np.uint8), extension=".png"))
