"""The trained bundles shipped under models/: they pass the bundle gate, models/README.md names
the config they were trained from, and each controls its cell on held-out seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from robocell.agents.bundle import check_bundle, load_bundle
from robocell.envs.rollout import run_episode

MODELS = Path(__file__).resolve().parents[1] / "models"
SHIPPED = {
    "weld": "robocell/WeldSeam-v1",
    "peg": "robocell/PegInsert-v0",
    "vision": "robocell/VisionSort-v1",
    "motion": "robocell/MotionTransfer-v0",
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_bundle_passes_the_gate_and_is_documented(name: str) -> None:
    checked = check_bundle(MODELS / name)
    manifest = checked.manifest
    assert manifest["env_id"] == SHIPPED[name]
    # Exported from a training run: checked against the trained model (a controller written as
    # ONNX by hand has no parity observations).
    assert manifest["parity"]["observations"] > 0
    readme = (MODELS / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith(f"| `models/{name}/`"))
    assert manifest["config_digest"] in row


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_bundle_controls_its_cell_on_held_out_seeds(name: str) -> None:
    # The first five of the 100 held-out seeds the README's figures come from.
    policy = load_bundle(MODELS / name)
    env = policy.make_env()
    try:
        successes = [
            run_episode(env, policy, seed)["success"] for seed in range(2_000_000, 2_000_005)
        ]
    finally:
        env.close()
    assert sum(successes) >= 4
