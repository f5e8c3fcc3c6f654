"""The champion/challenger loop: promotion test, seeds, registry, CLI, TensorBoard, kill + resume.

Training budgets are a few hundred steps: these tests check the machinery and the decision
rule, not learning. Pendulum runs keep the loop fast; one round on the weld cell checks the
real energy and cycle-time figures end to end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy import stats as sps

from robocell.agents.bundle import load_bundle
from robocell.cli import main
from robocell.errors import RobocellError
from robocell.schema import SchemaError
from robocell.train.config import load_config
from robocell.train.improve import loop as improve_module
from robocell.train.improve.decision import (
    VALIDATION_FIRST_SEED,
    PromotionRule,
    decide,
    success_test,
    validation_block,
    validation_seeds,
)
from robocell.train.improve.policy_registry import PolicyRegistry, registry_lock

PENDULUM: dict[str, Any] = {
    "env_id": "Pendulum-v1",
    "algo": "ppo",
    "total_timesteps": 256,
    "hyperparams": {"n_steps": 128, "batch_size": 64, "n_epochs": 1},
    "policy_kwargs": {"net_arch": [16]},
    "eval_freq": 0,
    "eval_episodes": 1,
    "checkpoint_freq": 0,
    "improve": {"steps_per_round": 1024, "validation_episodes": 3},
}


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def episodes(success: list[int], energy_j: list[float], cycle_s: list[float]) -> list[dict]:
    return [
        {"success": float(s), "energy_j": e, "cycle_time_s": c}
        for s, e, c in zip(success, energy_j, cycle_s, strict=True)
    ]


# ---------------------------------------------------------------------- the decision rule
def test_a_forced_worse_challenger_is_not_promoted() -> None:
    rng = np.random.default_rng(0)
    energy = list(rng.normal(5000.0, 300.0, 20))
    champion = episodes([1] * 20, energy, [30.0] * 20)
    # Half the welds fail, although it spends 40 % less energy and time.
    challenger = episodes([1] * 10 + [0] * 10, [0.6 * e for e in energy], [18.0] * 20)
    decision = decide(champion, challenger)
    assert not decision.promote
    assert decision.success.worse and decision.success.champion_only == 10
    assert all(t.better for t in decision.figures)  # efficiency alone does not buy promotion
    assert decision.reason.startswith("kept the champion: success worse")


def test_a_forced_better_challenger_is_promoted() -> None:
    rng = np.random.default_rng(1)
    energy = rng.normal(5000.0, 300.0, 30)
    champion = episodes([1] * 25 + [0] * 5, list(energy), [30.0] * 30)
    saving = rng.normal(200.0, 50.0, 30)  # about 4 % less energy per episode, seed by seed
    challenger = episodes([1] * 25 + [0] * 5, list(energy - saving), [30.0] * 30)
    decision = decide(champion, challenger)
    assert decision.promote, decision.reason
    energy_test = next(t for t in decision.figures if t.figure == "energy_j")
    assert energy_test.better and energy_test.ci_high < 0 < -energy_test.ci_low
    # Compared on the 25 seeds where both welded good.
    assert energy_test.n == 25 and energy_test.diff_mean == pytest.approx(-saving[:25].mean())
    assert decision.reason.startswith("promoted: success not worse")


def test_noise_in_the_figures_is_not_an_improvement() -> None:
    rng = np.random.default_rng(2)
    champion = episodes([1] * 30, list(rng.normal(5000, 300, 30)), list(rng.normal(30, 2, 30)))
    challenger = episodes([1] * 30, list(rng.normal(5000, 300, 30)), list(rng.normal(30, 2, 30)))
    decision = decide(champion, challenger)
    assert not decision.promote
    assert all(t.ci_low < 0 < t.ci_high for t in decision.figures)
    assert "no figure is better" in decision.reason


def test_a_shorter_cycle_alone_is_enough() -> None:
    champion = episodes([1] * 10, [4000.0] * 10, [30.0 + 0.1 * i for i in range(10)])
    challenger = episodes([1] * 10, [4000.0] * 10, [28.0 + 0.1 * i for i in range(10)])
    decision = decide(champion, challenger)
    assert decision.promote
    assert [t.better for t in decision.figures] == [False, True]
    assert not decide(champion, challenger, PromotionRule(figures=("energy_j",))).promote


def test_failing_faster_is_not_an_improvement() -> None:
    champion = episodes([0] * 20, [500.0 + i for i in range(20)], [15.0] * 20)
    challenger = episodes([0] * 20, [400.0 + i for i in range(20)], [12.0] * 20)
    decision = decide(champion, challenger)  # default: compare where both welded good
    assert not decision.promote and decision.figures == [] and decision.paired_episodes == 0
    assert "figures not compared: 0 seeds where both succeeded (at least 10 needed)" in (
        decision.reason
    )
    assert decide(champion, challenger, PromotionRule(efficiency_episodes="all")).promote
    # Nine good parts each are still too few to compare the energy per part.
    champion[:9] = episodes([1] * 9, [3000.0] * 9, [30.0] * 9)
    challenger[:9] = episodes([1] * 9, [2000.0] * 9, [25.0] * 9)
    assert decide(champion, challenger).paired_episodes == 9
    assert not decide(champion, challenger).promote
    assert decide(champion, challenger, PromotionRule(min_paired_episodes=9)).promote


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_the_success_test_is_the_exact_one_sided_mcnemar_test(alpha: float) -> None:
    # Check against scipy's exact binomial test on the split seeds, over a grid of splits.
    for b in range(0, 13):
        for c in range(0, 6):
            old = [1] * b + [0] * c + [1] * 3
            new = [0] * b + [1] * c + [1] * 3
            test = success_test(
                episodes(old, [0.0] * len(old), [0.0] * len(old)),
                episodes(new, [0.0] * len(new), [0.0] * len(new)),
                alpha,
            )
            p = sps.binomtest(b, b + c, 0.5, alternative="greater").pvalue if b + c else 1.0
            assert test.worse == (p <= alpha), (b, c, p, test)
    # The smallest evidence at alpha = 0.05: 5 seeds lost, none won (p = 1/32).
    assert success_test(
        episodes([1] * 5, [0.0] * 5, [0.0] * 5), episodes([0] * 5, [0.0] * 5, [0.0] * 5), 0.05
    ).worse
    assert not success_test(
        episodes([1] * 4, [0.0] * 4, [0.0] * 4), episodes([0] * 4, [0.0] * 4, [0.0] * 4), 0.05
    ).worse


def test_missing_figures_never_promote_and_unpaired_episodes_are_refused() -> None:
    champion = [{"success": 1.0, "episode_steps": 200.0}] * 5
    challenger = [{"success": 1.0, "episode_steps": 100.0}] * 5
    decision = decide(champion, challenger)
    assert not decision.promote and decision.missing_figures == ["energy_j", "cycle_time_s"]
    assert "energy_j not reported" in decision.reason
    with pytest.raises(ValueError, match="same, non-zero number"):
        decide(champion, challenger[:4])


def test_validation_seeds_follow_the_stated_rule() -> None:
    assert validation_seeds(0, 3) == [5_000_000, 5_000_001, 5_000_002]
    assert validation_seeds(2, 2) == [5_020_000, 5_020_001]
    block = validation_block(5)
    assert block.start == VALIDATION_FIRST_SEED and block.stop == 5_060_000
    # Apart from periodic evaluation, `robocell eval` and export's recordings.
    for first in (1_000_000, 2_000_000, 900_000):
        assert first + 10_000 <= block.start
    with pytest.raises(ValueError):
        validation_seeds(0, 10_001)


# ---------------------------------------------------------------------- config
def test_the_improve_section_is_validated_and_scheduled(tmp_path: Path) -> None:
    data = {**PENDULUM, "improve": {"alpha": 1.5}}
    with pytest.raises(SchemaError, match=r"improve\.alpha: must be in \(0, 1\)"):
        load_config(write_config(tmp_path / "a.yaml", data))
    data = {**PENDULUM, "improve": {"alhpa": 0.1}}
    with pytest.raises(SchemaError, match=r"improve\.alhpa: unknown key"):
        load_config(write_config(tmp_path / "b.yaml", data))
    data = {
        **PENDULUM,
        "env_kwargs": {"g": 9.81},
        "improve": {"schedule": [{}, {"g": 10.5}, {"g": 11.0}]},
    }
    config = load_config(write_config(tmp_path / "c.yaml", data))
    rounds = [improve_module.round_config(config, r) for r in range(5)]
    assert [c.env_kwargs["g"] for c in rounds] == [9.81, 9.81, 10.5, 11.0, 11.0]
    assert [c.seed for c in rounds] == [0, 1, 2, 3, 4]
    assert rounds[0].total_timesteps == 256 and rounds[1].total_timesteps == 50_000


def test_seeds_overlapping_the_validation_block_are_refused(tmp_path: Path) -> None:
    config = improve_module.resolve_improve(
        load_config(write_config(tmp_path / "c.yaml", {**PENDULUM, "seed": 5_000_010}))
    )
    with pytest.raises(SchemaError, match=r"seed: seeds 5000010.*overlap the validation seeds"):
        improve_module.check_seed_namespaces(config, rounds=2)
    data = {**PENDULUM, "env_id": "robocell/WeldSeam-v0", "pretrain": {"first_seed": 5_010_000}}
    config = load_config(write_config(tmp_path / "d.yaml", data))
    improve_module.check_seed_namespaces(config, rounds=0)  # round 0 validates below 5_010_000
    with pytest.raises(SchemaError, match=r"pretrain\.first_seed: seeds 5010000–5010049"):
        improve_module.check_seed_namespaces(config, rounds=1)


def test_a_schedule_that_the_env_refuses_fails_before_training(tmp_path: Path) -> None:
    data = {**PENDULUM, "improve": {"schedule": [{"no_such_kwarg": 1}]}}
    config = improve_module.resolve_improve(load_config(write_config(tmp_path / "c.yaml", data)))
    with pytest.raises(SchemaError, match=r"improve\.schedule\[0\]"):
        improve_module.check_schedule(config, rounds=1)


# ---------------------------------------------------------------------- registry
def _entry(r: int, parent: str | None) -> dict[str, Any]:
    return {"id": f"v{r:03d}", "round": r, "parent": parent, "decision": "x", "reason": "y"}


def test_registry_lineage_and_setup(tmp_path: Path) -> None:
    registry = PolicyRegistry.open_or_create(tmp_path / "reg", {"env_id": "E", "algo": "ppo"}, {})
    registry.commit(_entry(0, None), champion=True)
    registry.commit(_entry(1, "v000"), champion=True)
    registry.commit(_entry(2, "v001"), champion=False)
    registry.commit(_entry(3, "v001"), champion=True)
    again = PolicyRegistry.open(tmp_path / "reg")
    assert again.index["champion"] == "v003" and again.next_round == 4
    assert again.lineage("v003") == ["v000", "v001", "v003"]
    assert again.lineage("v002") == ["v000", "v001", "v002"]
    with pytest.raises(RobocellError, match="round 2 committed while round 4 is due"):
        again.commit(_entry(2, "v001"), champion=False)
    with pytest.raises(RobocellError, match="was started with algo = 'ppo'"):
        PolicyRegistry.open_or_create(tmp_path / "reg", {"env_id": "E", "algo": "sac"}, {})


def test_registry_index_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = PolicyRegistry.open_or_create(tmp_path / "reg", {"env_id": "E"}, {})
    registry.commit(_entry(0, None), champion=True)
    before = registry.index_path.read_bytes()

    def crash(src: Any, dst: Any) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        registry.commit(_entry(1, "v000"), champion=True)
    monkeypatch.undo()
    assert registry.index_path.read_bytes() == before  # the old index, whole
    assert sorted(p.name for p in (tmp_path / "reg").iterdir()) == ["index.json"]
    assert PolicyRegistry.open(tmp_path / "reg").next_round == 1


def test_registry_refuses_malformed_indexes_and_a_second_user(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text('{"format": "robocell-registry/1", "versions": 3}')
    with pytest.raises(RobocellError, match="'setup' is missing or malformed"):
        PolicyRegistry.open(tmp_path)
    with pytest.raises(RobocellError, match="not a registry"):
        PolicyRegistry.open(tmp_path / "nothing")
    with registry_lock(tmp_path / "r"):
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "from pathlib import Path\n"
                "from robocell.train.improve.policy_registry import registry_lock\n"
                f"with registry_lock(Path({str(tmp_path / 'r')!r})): pass",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode != 0 and "another improve process" in proc.stderr


# ---------------------------------------------------------------------- kill -9 + resume (CLI)
def robocell(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "robocell", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 2-round Pendulum loop killed (-9) while training round 2, then run again."""
    root = tmp_path_factory.mktemp("improve")
    config = write_config(root / "pendulum.yaml", PENDULUM)
    reg = root / "reg"
    args = ("improve", str(config), "--rounds", "2", "--registry", str(reg), "--quiet")
    proc = subprocess.Popen(
        [sys.executable, "-m", "robocell", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not (reg / "runs" / "round-002" / "config.yaml").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "round 2 never started"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    killed = json.loads((reg / "index.json").read_text())
    rerun = robocell(*args)
    assert rerun.returncode == 0, rerun.stderr
    return {"reg": reg, "args": args, "killed": killed, "rerun": rerun, "code": proc.returncode}


def test_a_killed_loop_continues_at_the_round_it_stopped(resumed: dict[str, Any]) -> None:
    killed, reg = resumed["killed"], resumed["reg"]
    assert resumed["code"] == -signal.SIGKILL
    assert killed["next_round"] == 2 and killed["in_progress"]["round"] == 2
    index = PolicyRegistry.open(reg).index
    assert [v["id"] for v in index["versions"]] == ["v000", "v001", "v002"]
    assert index["next_round"] == 3 and index["in_progress"] is None
    for old, new in zip(killed["versions"], index["versions"], strict=False):
        assert old == new  # finished rounds are not redone
    assert "round 0" not in resumed["rerun"].stdout and "round 1:" not in resumed["rerun"].stdout
    # The interrupted round was redone from its start: a fresh run directory, one command.
    assert len((reg / "runs" / "round-002" / "command.txt").read_text().splitlines()) == 1


def test_the_registry_keeps_the_lineage_and_its_evidence(resumed: dict[str, Any]) -> None:
    from robocell.train.rundir import load_run

    registry = PolicyRegistry.open(resumed["reg"])
    champions = ["v000"]
    for entry in registry.versions:
        run = load_run(registry.resolve(entry["run_dir"]), "best")
        assert entry["config_digest"] == run.config_digest and entry["run_id"] == run.run_id
        validation = json.loads(registry.resolve(entry["validation_file"]).read_text())
        r = entry["round"]
        assert validation["seeds"] == validation_seeds(r, 3)
        if r == 0:
            assert entry["parent"] is None and entry["decision"] == "initial"
            continue
        assert entry["parent"] == champions[-1]
        assert entry["compared_with"]["version"] == entry["parent"]
        again = decide(validation["episodes"][entry["parent"]], validation["episodes"][entry["id"]])
        assert again.to_dict() == entry["test"] and again.reason == entry["reason"]
        assert entry["decision"] == ("promoted" if again.promote else "rejected")
        if again.promote:
            champions.append(entry["id"])
    assert registry.index["champion"] == champions[-1]
    bundle = load_bundle(registry.resolve(registry.champion["bundle"]))
    assert bundle.onnx_sha256 == registry.champion["onnx_sha256"]
    assert bundle.manifest["run_id"] == f"round-{registry.champion['round']:03d}"


def test_tensorboard_has_the_round_figures_and_decisions(resumed: dict[str, Any]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps: dict[str, set[int]] = {}
    for event_file in (resumed["reg"] / "tb").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(event_file), size_guidance={"scalars": 0, "tensors": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            steps.setdefault(tag, set()).update(e.step for e in acc.Scalars(tag))
        for tag in acc.Tags()["tensors"]:
            steps.setdefault(tag, set()).update(e.step for e in acc.Tensors(tag))
    assert steps["improve/champion/success_rate"] == {0, 1, 2}
    assert steps["improve/champion/return/reward"] == {0, 1, 2}
    assert steps["improve/challenger/success_rate"] == {1, 2}
    assert steps["improve/promoted"] == {1, 2}
    assert any(tag.startswith("improve/decision") for tag in steps)


def test_registry_show_and_a_finished_loop(
    resumed: dict[str, Any], capsys: pytest.CaptureFixture
) -> None:
    reg = resumed["reg"]
    assert main(["registry", "show", "--registry", str(reg)]) == 0
    shown = capsys.readouterr().out
    lines = shown.splitlines()
    assert lines[0].startswith(f"registry {reg}: Pendulum-v1 (ppo), rounds 0-2 finished")
    assert any(line.startswith("v002 ") and "v000" in line for line in lines)
    assert "lineage: v000" in shown
    before = (reg / "index.json").read_bytes()
    assert main(list(resumed["args"])) == 0
    assert "nothing to do: round 2 is already finished" in capsys.readouterr().out
    assert (reg / "index.json").read_bytes() == before
    assert main([*resumed["args"], "--steps-per-round", "64"]) == 2
    assert "was started with base_config_digest" in capsys.readouterr().err


# ---------------------------------------------------------------------- forced decisions (CLI)
FORCED = {  # run id -> (successes out of 3, energy J, cycle time s) per validation episode
    "round-000": ([1, 1, 1], [1000.0, 1100.0, 1200.0], [30.0, 30.0, 30.0]),
    "round-001": ([1, 1, 1], [900.0, 1010.0, 1080.0], [30.0, 30.0, 30.0]),  # better energy
    "round-002": ([0, 0, 0], [100.0, 100.0, 100.0], [5.0, 5.0, 5.0]),  # fails every weld
}


def test_forced_decisions_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def forced_play(self: Any, run: Any, config: Any, seeds: list[int]) -> list[dict]:
        return episodes(*FORCED[run.run_id])

    monkeypatch.setattr(improve_module.ImproveLoop, "_play", forced_play)
    config = write_config(
        tmp_path / "c.yaml",
        {
            **PENDULUM,
            "improve": {
                "steps_per_round": 128,
                "validation_episodes": 3,
                "alpha": 0.2,
                "min_paired_episodes": 3,
            },
        },
    )
    reg = tmp_path / "reg"
    code = main(["improve", str(config), "--rounds", "2", "--registry", str(reg), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    registry = PolicyRegistry.open(reg)
    v1, v2 = registry.version("v001"), registry.version("v002")
    assert v1["decision"] == "promoted" and v1["bundle"] == "bundles/v001"
    assert v2["decision"] == "rejected" and v2["parent"] == "v001" and v2["bundle"] is None
    assert v2["test"]["success"]["worse"] and v2["compared_with"]["version"] == "v001"
    assert registry.index["champion"] == "v001"
    assert registry.lineage("v002") == ["v000", "v001", "v002"]
    assert not (reg / "bundles" / "v002").exists()
    assert main(["registry", "show", "--registry", str(reg), "--champion-bundle"]) == 0
    bundle = Path(capsys.readouterr().out.strip())
    assert bundle == reg / "bundles" / "v001"
    assert load_bundle(bundle).manifest["run_id"] == "round-001"


def test_a_trained_run_can_be_adopted_as_the_first_champion(
    resumed: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = write_config(tmp_path / "c.yaml", PENDULUM)
    adopted = resumed["reg"] / "runs" / "round-000"
    reg = tmp_path / "reg"
    code = main(
        [
            "improve",
            str(config),
            "--rounds",
            "0",
            "--registry",
            str(reg),
            "--quiet",
            "--from-run",
            str(adopted),
        ]
    )
    assert code == 0, capsys.readouterr()
    v0 = PolicyRegistry.open(reg).version("v000")
    assert v0["run_dir"] == str(adopted.resolve()) and not (reg / "runs").exists()
    assert load_bundle(reg / "bundles" / "v000").manifest["run_id"] == "round-000"


# ---------------------------------------------------------------------- the weld cell
def test_one_round_on_the_weld_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # Export is exercised by the Pendulum loops above; here the weld cell's own figures
    # (energy, cycle time) must reach the validation summary and the decision.
    exported: list[str] = []

    def no_export(self: Any, run_dir: Path, vid: str) -> dict[str, Any]:
        exported.append(vid)
        return {"bundle": None, "onnx_sha256": None}

    monkeypatch.setattr(improve_module.ImproveLoop, "_export", no_export)
    data = {
        **PENDULUM,
        "env_id": "robocell/WeldSeam-v0",
        "total_timesteps": 128,
        "improve": {
            "steps_per_round": 128,
            "validation_episodes": 2,
            "efficiency_episodes": "all",
            "min_paired_episodes": 1,
        },
    }
    config = write_config(tmp_path / "weld.yaml", data)
    reg = tmp_path / "reg"
    code = main(["improve", str(config), "--rounds", "1", "--registry", str(reg), "--quiet"])
    assert code == 0, capsys.readouterr()
    v1 = PolicyRegistry.open(reg).version("v001")
    for figure in ("energy_j", "cycle_time_s", "seam_coverage"):
        assert f"mean/{figure}" in v1["validation"]
    tests = {t["figure"]: t for t in v1["test"]["figures"]}
    assert list(tests) == ["energy_j", "cycle_time_s"] and v1["test"]["missing_figures"] == []
    old = v1["compared_with"]["validation"]["mean/energy_j"]
    assert tests["energy_j"]["champion_mean"] == pytest.approx(old)
    assert exported == ["v000", *(["v001"] if v1["decision"] == "promoted" else [])]
