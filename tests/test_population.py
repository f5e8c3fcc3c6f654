"""Several challengers per improve round: seeds, Bonferroni, choosing one, the registry.

Training runs a few hundred Pendulum steps in local processes; the validation figures are
forced so the decisions are known. The same loop on Ray is in tests/test_ray.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from test_improve import PENDULUM, episodes

from robocell.agents.bundle import load_bundle
from robocell.cli import main
from robocell.schema import SchemaError
from robocell.train.config import config_from_dict
from robocell.train.improve import loop as improve_module
from robocell.train.improve.config import ImproveConfig
from robocell.train.improve.decision import decide
from robocell.train.improve.policy_registry import PolicyRegistry
from robocell.train.improve.population import (
    challenger_configs,
    check_seed_namespaces,
    pick,
    promotion_rule,
    round_config,
)


def test_one_challenger_is_the_single_loop_and_several_get_their_own_seeds() -> None:
    config = config_from_dict({**PENDULUM, "seed": 10})
    for r in (1, 2, 3):
        (only,) = challenger_configs(config, r, 1).items()
        assert only[0] == f"v00{r}" and only[1] == round_config(config, r)
        assert only[1].seed == 10 + r
    seeds = [c.seed for r in (1, 2) for c in challenger_configs(config, r, 3).values()]
    assert seeds == [11, 12, 13, 14, 15, 16]
    assert list(challenger_configs(config, 2, 3)) == ["v002a", "v002b", "v002c"]
    # Six training seeds from 4,999,990 reach the validation block from 5,000,000.
    near = config_from_dict({**PENDULUM, "seed": 4_999_990})
    check_seed_namespaces(near, rounds=2, challengers=1)
    with pytest.raises(SchemaError, match="overlap the validation seeds"):
        check_seed_namespaces(near, rounds=2, challengers=5)


def test_each_of_k_challengers_claims_better_at_bonferroni_confidence() -> None:
    improve = ImproveConfig(alpha=0.05, confidence=0.9)
    rule = promotion_rule(improve, 3)
    assert rule.confidence == pytest.approx(1 - 0.1 / 3) and rule.alpha == 0.05
    assert promotion_rule(improve, 1).confidence == 0.9
    # A gain whose 90 % CI lies below zero but whose 96.7 % CI does not.
    champion = episodes([1] * 12, [1000.0] * 12, [30.0] * 12)
    gains = [-26.0, 16.0, -21.0, -4.0, -36.0, 9.0, -18.0, -11.0, 3.0, -26.0, 14.0, -8.0]
    challenger = episodes([1] * 12, [1000.0 + g for g in gains], [30.0] * 12)
    single = ImproveConfig(confidence=0.9, figures=["energy_j"])
    assert decide(champion, challenger, promotion_rule(single, 1)).promote
    assert not decide(champion, challenger, promotion_rule(single, 3)).promote


def test_pick_promotes_at_most_one_the_most_successful_then_the_largest_gain() -> None:
    champion = episodes([1] * 12, [1000.0] * 12, [30.0] * 12)
    small = episodes([1] * 12, [980.0 + 0.1 * i for i in range(12)], [30.0] * 12)
    large = episodes([1] * 12, [900.0 + 0.1 * i for i in range(12)], [30.0] * 12)
    worse = episodes([0] * 12, [10.0] * 12, [5.0] * 12)
    rule = promotion_rule(ImproveConfig(min_paired_episodes=10), 3)
    decisions = {
        vid: decide(champion, eps, rule)
        for vid, eps in (("v001a", small), ("v001b", large), ("v001c", worse))
    }
    assert [d.promote for d in decisions.values()] == [True, True, False]
    assert pick(decisions) == "v001b"
    assert pick({"v001c": decisions["v001c"]}) is None


FORCED = {  # run id -> (successes, energy J, cycle time s) on the 12 validation seeds
    "round-000": ([1] * 12, [1000.0 + i for i in range(12)], [30.0] * 12),
    "round-001a": ([1] * 12, [950.0 + i for i in range(12)], [30.0] * 12),  # 5 % better
    "round-001b": ([1] * 12, [800.0 + i for i in range(12)], [30.0] * 12),  # 20 % better
    "round-001c": ([0] * 12, [100.0] * 12, [5.0] * 12),  # fails every episode
}


def test_a_round_of_three_challengers_promotes_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def forced_play(self: Any, run: Any, config: Any, seeds: list[int]) -> list[dict]:
        return episodes(*FORCED[run.run_id])

    monkeypatch.setattr(improve_module.ImproveLoop, "_play", forced_play)
    data = {**PENDULUM, "improve": {"steps_per_round": 128, "validation_episodes": 12}}
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(data))
    reg = tmp_path / "reg"
    args = [
        "improve",
        str(config),
        "--rounds",
        "1",
        "--registry",
        str(reg),
        "--quiet",
        "--challengers",
        "3",
    ]
    assert main(args) == 0, capsys.readouterr()
    registry = PolicyRegistry.open(reg)
    a, b, c = (registry.version(f"v001{x}") for x in "abc")
    assert [a["decision"], b["decision"], c["decision"]] == ["rejected", "promoted", "rejected"]
    assert registry.index["champion"] == "v001b" and registry.index["next_round"] == 2
    assert a["reason"].startswith("kept the champion: passed its test, but v001b was promoted")
    assert "98.3333% CI" in b["reason"]
    assert b["test"]["rule"]["confidence"] == pytest.approx(1 - 0.05 / 3)
    assert {a["parent"], b["parent"], c["parent"]} == {"v000"}
    assert [v["run_dir"] for v in (a, b, c)] == [f"runs/round-001{x}" for x in "abc"]
    seeds = [
        yaml.safe_load((reg / v["run_dir"] / "config.yaml").read_text())["seed"] for v in (a, b, c)
    ]
    assert seeds == [1, 2, 3]
    assert load_bundle(reg / "bundles" / "v001b").manifest["run_id"] == "round-001b"
    assert not (reg / "bundles" / "v001a").exists() and not (reg / "bundles" / "v001c").exists()
    assert registry.index["setup"]["challengers"] == 3
    # Continuing with another population size is refused: the rounds would not match.
    assert main([*args[:-1], "2"]) == 2
    assert "was started with challengers = 3" in capsys.readouterr().err
