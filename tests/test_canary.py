"""The canary of a line cell: the sequential test's error rates, the certification gate, and
promotion, rollback and resume in a real line run, with the registry matching the telemetry."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from certtools import small_weld_spec, write_random_weld_bundle, write_scripted_weld_bundle

from robocell.agents.bundle import ONNX_FILE, subject_digests
from robocell.cli import main
from robocell.line.canary import canary_side
from robocell.line.sequential import CanaryTest, msprt
from robocell.line.telemetry import open_telemetry

pytestmark = pytest.mark.xdist_group("canary")
WELD = "robocell/WeldSeam-v1"


# ------------------------------------------------------------------- the sequential test
def _canary_run(rng: np.random.Generator, energy_effect: float, canary_success: float) -> str:
    """One canary against a champion (success 0.98, energy N(100, 8)), 20 % of the parts."""
    test = CanaryTest(max_parts=300)
    while True:
        side = "canary" if rng.random() < 0.2 else "champion"
        success = rng.random() < (canary_success if side == "canary" else 0.98)
        mean = 100.0 * (1.0 + energy_effect) if side == "canary" else 100.0
        test.add(side, success, rng.normal(mean, 8.0))
        decision, _ = test.decision()
        if decision is not None:
            return decision


def test_a_canary_worse_by_the_margin_is_promoted_at_most_alpha_over_two_of_the_time():
    # At the boundary of the null (success exactly δ = 0.02 lower), with a real energy gain:
    # a promotion is the error the non-inferiority test bounds by α/2 = 0.025.
    rng = np.random.default_rng(0)
    runs = 300
    promoted = sum(_canary_run(rng, -0.05, 0.96) == "promote" for _ in range(runs))
    # 0.025 plus three binomial standard errors of 300 runs
    assert promoted / runs <= 0.025 + 3 * (0.025 * 0.975 / runs) ** 0.5


def test_no_difference_is_never_promoted_and_a_clear_gain_is():
    rng = np.random.default_rng(1)
    assert not any(_canary_run(rng, 0.0, 0.98) == "promote" for _ in range(100))
    assert all(_canary_run(rng, -0.05, 1.0) == "promote" for _ in range(50))
    assert all(_canary_run(rng, +0.05, 0.98) == "rollback" for _ in range(50))


def test_msprt_grows_with_evidence_and_is_one_at_no_information():
    assert msprt(0.0, 1.0, 0.0, 1e-12) == pytest.approx(1.0)
    assert msprt(5.0, 1.0, 0.0, 1.0) > msprt(1.0, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError):
        msprt(1.0, 0.0, 0.0, 1.0)


def test_a_part_s_side_is_fixed_in_advance_and_the_share_holds():
    sides = [canary_side(7, part, "weld-1", 0.2) for part in range(20_000)]
    assert sides == [canary_side(7, part, "weld-1", 0.2) for part in range(20_000)]
    assert abs(np.mean(sides) - 0.2) < 0.01
    assert sides != [canary_side(8, part, "weld-1", 0.2) for part in range(20_000)]


# ------------------------------------------------------------------------- a line run
def _line(
    tmp: Path, champion: Path, challenger: Path, parts: int, steps: int | None = None
) -> Path:
    """A one-cell weld line offering ``challenger`` from part 0; its certificate is taken at
    part 3, on a 6-episode spec (``steps``: a shorter time limit, for a policy that fails)."""
    spec = small_weld_spec(6)
    if steps is not None:
        spec["env_kwargs"] = {"max_episode_steps": steps}
    (tmp / "spec.yaml").write_text(yaml.safe_dump(spec))
    entry = {"bundle": str(challenger), "benchmark": str(tmp / "spec.yaml"), "at_part": 0,
             "certify_parts": 3, "share": 0.3}  # fmt: skip
    cell = {"id": "weld-1", "env_id": WELD, "bundle": str(champion), "canary": entry}
    path = tmp / "line.yaml"
    path.write_text(yaml.safe_dump({"line": "canary-test", "parts": parts, "cells": [cell]}))
    return path


def _run(line: Path, out: Path, *extra: str) -> dict[str, Any]:
    assert main(["line", "run", str(line), "-o", str(out), "--no-progress", *extra]) == 0
    return json.loads((out / "summary.json").read_text())


def _telemetry(out: Path) -> tuple[list[dict], list[dict]]:
    with open_telemetry(out / "telemetry.sqlite", create=False) as store:
        return store.rows(), store.events()


def _expected_bundles(out: Path, rows: list[dict], share: float) -> list[str]:
    """The bundle each part must have run by the registry's history."""
    history = json.loads((out / "registry" / "weld-1.json").read_text())["history"]
    expected = []
    for row in rows:
        state = [h for h in history if h["part"] <= row["part"]][-1]
        canary = state["canary"] is not None and canary_side(0, row["part"], "weld-1", share)
        expected.append(state["canary"] if canary else state["champion"])
    return expected


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("canary-bundles")
    return {
        "scripted": write_scripted_weld_bundle(root / "scripted"),
        "random": write_random_weld_bundle(root / "random"),
        "residual": Path(__file__).resolve().parents[1] / "models" / "weld",
    }


def _digest(bundle: Path) -> str:
    return subject_digests(bundle)[ONNX_FILE]


def test_a_challenger_that_fails_certification_never_runs(tmp_path, bundles):
    line = _line(tmp_path, bundles["scripted"], bundles["random"], parts=8, steps=60)
    summary = _run(line, tmp_path / "out")
    rows, events = _telemetry(tmp_path / "out")
    (certificate,) = [e for e in events if e["type"] == "certificate"]
    assert (certificate["part"], certificate["data"]["verdict"]) == (3, "FAILED")
    assert not [e for e in events if e["type"] in ("canary", "promotion", "rollback")]
    assert {row["bundle_sha256"] for row in rows} == {_digest(bundles["scripted"])}
    registry = json.loads((tmp_path / "out" / "registry" / "weld-1.json").read_text())
    assert registry["aliases"] == {"champion": _digest(bundles["scripted"]), "canary": None}
    assert [e["type"] for e in summary["events"]].count("certificate") == 1


def test_a_rolled_back_canary_stops_and_the_registry_matches_the_telemetry(
    tmp_path, bundles, monkeypatch
):
    def decide(test: CanaryTest) -> tuple[str | None, str]:  # the statistics are tested above
        return ("rollback", "forced") if test.sides["canary"]["success"].n >= 3 else (None, "")

    monkeypatch.setattr(CanaryTest, "decision", decide)
    line = _line(tmp_path, bundles["residual"], bundles["scripted"], parts=20)
    _run(line, tmp_path / "out")
    rows, events = _telemetry(tmp_path / "out")
    kinds = [e["type"] for e in events]
    assert kinds.index("certificate") < kinds.index("canary") < kinds.index("rollback")
    rollback = next(e for e in events if e["type"] == "rollback")
    scripted = _digest(bundles["scripted"])
    ran = [row["bundle_sha256"] for row in rows]
    assert ran.count(scripted) == 3
    assert scripted not in ran[rollback["part"] + 1 :]
    assert ran == _expected_bundles(tmp_path / "out", rows, 0.3)
    registry = json.loads((tmp_path / "out" / "registry" / "weld-1.json").read_text())
    assert registry["aliases"]["canary"] is None


def test_a_promotion_survives_a_resume_part_for_part(tmp_path, bundles, monkeypatch):
    def decide(test: CanaryTest) -> tuple[str | None, str]:
        return ("promote", "forced") if test.sides["canary"]["success"].n >= 5 else (None, "")

    monkeypatch.setattr(CanaryTest, "decision", decide)
    line = _line(tmp_path, bundles["scripted"], bundles["residual"], parts=24)
    out = tmp_path / "out"
    _run(line, out, "--parts", "12")
    first_rows, _ = _telemetry(out)
    summary = _run(line, out, "--resume")
    rows, events = _telemetry(out)
    assert rows[:12] == first_rows
    promotion = next(e for e in events if e["type"] == "promotion")
    residual = _digest(bundles["residual"])
    assert all(row["bundle_sha256"] == residual for row in rows[promotion["part"] + 1 :])
    assert [e["type"] for e in events].count("promotion") == 1
    assert summary["cells"]["weld-1"]["bundle_sha256"] == residual
    assert [row["bundle_sha256"] for row in rows] == _expected_bundles(out, rows, 0.3)


def test_a_line_killed_while_certifying_resumes_with_the_champion_serving(tmp_path, bundles):
    line = _line(tmp_path, bundles["scripted"], bundles["residual"], parts=16)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "robocell", "line", "run", str(line), "-o", str(out),
               "--no-progress"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "learning" / "weld-1" / "attempt-0" / "certify.log"
    deadline = time.monotonic() + 300
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(1.0)  # the certifier dies with the line (PR_SET_PDEATHSIG)
    assert not [p for p in _children_named("certify") if str(out) in p]
    _run(line, out, "--resume")
    rows, events = _telemetry(out)
    assert [row["part"] for row in rows] == list(range(16))
    assert [e["type"] for e in events].count("certificate") == 1
    assert [row["bundle_sha256"] for row in rows] == _expected_bundles(out, rows, 0.3)


def _children_named(word: str) -> list[str]:
    """Command lines of running processes that mention ``word``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if word in text:
            found.append(text)
    return found
