"""A cell from another package: built from robocell.cells, installed, found, trained, certified,
run on a line.

The package is docs/CELLS.md's example ("Your own cell"), written out file by file and installed
with pip into a throwaway folder beside a broken plug-in. Every command runs in a fresh
interpreter with that folder on PYTHONPATH, so the cell is found through its installed entry
point, in the training and certification workers too; the venv is left as it was.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from robocell.envs import CELLS, ENV_IDS, register_cell
from robocell.errors import RobocellError
from robocell.eval.seeds import commitment, read_master_seed

pytestmark = pytest.mark.xdist_group("cell_plugin")  # one worker builds the package once

ROOT = Path(__file__).resolve().parents[1]
# A fenced block whose first line names the file it is: "# robocell_demo_cell/reach.py".
FILE_BLOCK = re.compile(r"```(?:python|toml)\n# (\S+)\n(.*?)```", re.DOTALL)
DEMO_ID = "demo/Reach-v0"
BROKEN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "robocell-broken-cell"
version = "0.1.0"

[project.entry-points."robocell.cells"]
broken = "robocell_broken_cell:CELL"
"""
TINY_RUN = {
    "env_id": DEMO_ID,
    "algo": "ppo",
    "total_timesteps": 256,
    "n_envs": 2,
    "vec_env": "subproc",  # the workers must find the plug-in themselves
    "hyperparams": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
    "policy_kwargs": {"net_arch": [16]},
    "eval_freq": 128,
    "eval_episodes": 1,
    "checkpoint_freq": 128,
}
TINY_SPEC = {
    "name": "reach-test",
    "env_id": DEMO_ID,
    "episodes": 6,
    "alpha": 0.05,
    "criteria": [{"name": "success", "metric": "success", "op": ">=", "value": 1, "p0": 0.5}],
    "figures": [{"name": "energy_per_part_j", "metric": "energy_j", "unit": "J"}],
    "bootstrap": {"seed": 0, "resamples": 200, "confidence": 0.95},
}


def _write_demo_package(package: Path) -> None:
    blocks = FILE_BLOCK.findall((ROOT / "docs" / "CELLS.md").read_text(encoding="utf-8"))
    assert {name for name, _ in blocks} == {
        "pyproject.toml",
        "robocell_demo_cell/__init__.py",
        "robocell_demo_cell/reach.py",
    }
    for name, text in blocks:
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text, encoding="utf-8")


def _write_broken_package(package: Path) -> None:
    (package / "robocell_broken_cell").mkdir(parents=True)
    (package / "pyproject.toml").write_text(BROKEN_PYPROJECT, encoding="utf-8")
    (package / "robocell_broken_cell" / "__init__.py").write_text(
        "import robocell_no_such_dependency\n", encoding="utf-8"
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the installed demo cell and a broken plug-in (for PYTHONPATH)."""
    root = tmp_path_factory.mktemp("plugins")
    _write_demo_package(root / "demo")
    _write_broken_package(root / "broken")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    pip += ["--no-build-isolation", "--target", str(root / "site")]
    subprocess.run([*pip, str(root / "demo"), str(root / "broken")], check=True, timeout=300)
    return root / "site"


def robocell(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``robocell ARGS`` in a fresh interpreter that has the plug-ins installed."""
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "robocell", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": path},
    )


def test_envs_lists_the_plugin_cell_and_the_broken_plugin_on_one_line(site: Path) -> None:
    result = robocell(site, "envs")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith(DEMO_ID) for line in lines)
    assert all(any(line.startswith(env_id) for line in lines) for env_id in ENV_IDS)
    broken = [line for line in lines if "broken = robocell_broken_cell:CELL" in line]
    assert len(broken) == 1
    assert "FAILED to load: ModuleNotFoundError" in broken[0]
    assert "robocell_no_such_dependency" in broken[0]


def test_the_plugin_cell_passes_the_harness(site: Path) -> None:
    result = robocell(site, "cell", "check", DEMO_ID)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("\nPASS  ") == 7
    assert "scripted controller: 2/2 episodes succeeded" in result.stdout


@pytest.fixture(scope="module")
def bundle(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo cell trained for a few hundred steps (2 subprocess envs) and exported."""
    root = tmp_path_factory.mktemp("demo_run")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY_RUN), encoding="utf-8")
    run = ["train", str(root / "tiny.yaml"), "--run-dir", str(root / "run"), "--quiet"]
    result = robocell(site, *run)
    assert result.returncode == 0, result.stderr
    result = robocell(site, "export", str(root / "run"), "-o", str(root / "bundle"))
    assert result.returncode == 0, result.stderr
    return root / "bundle"


def test_train_export_certify_verify_and_run_a_line_of_the_plugin_cell(
    site: Path, bundle: Path, tmp_path: Path
) -> None:
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(TINY_SPEC), encoding="utf-8")
    assert robocell(site, "keys", "new", "-o", str(tmp_path / "keys")).returncode == 0
    assert robocell(site, "seeds", "new", "-o", str(tmp_path / "seed")).returncode == 0
    certify = [
        *("certify", str(bundle), "--benchmark", str(tmp_path / "spec.yaml")),
        *("--master-seed-file", str(tmp_path / "seed")),
        *("--commitment", commitment(read_master_seed(tmp_path / "seed"))),
        *("--key", str(tmp_path / "keys" / "certifier.key"), "-o", str(tmp_path / "cert")),
        *("--workers", "2", "--no-progress", "--stills", "0"),  # spawned workers
    ]
    result = robocell(site, *certify)
    assert result.returncode == 0, result.stderr
    assert "verdict: " in result.stdout
    verify = ["verify", str(tmp_path / "cert" / "certificate.json")]
    verify += ["--pubkey", str(tmp_path / "keys" / "certifier.pub"), "--bundle", str(bundle)]
    result = robocell(site, *verify)
    assert result.returncode == 0, result.stderr
    assert "certificate valid" in result.stdout
    episodes = (tmp_path / "cert" / "episodes.jsonl").read_text().splitlines()
    assert len(episodes) == TINY_SPEC["episodes"]

    cell = {"id": "reach-1", "env_id": DEMO_ID, "bundle": str(bundle), "calibration": "off"}
    line = {"line": "demo-reach", "parts": 3, "seed": 0, "cells": [cell]}
    (tmp_path / "line.yaml").write_text(yaml.safe_dump(line), encoding="utf-8")
    run = ["line", "run", str(tmp_path / "line.yaml"), "-o", str(tmp_path / "line")]
    result = robocell(site, *run, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "line" / "summary.json").is_file()


def test_registering_a_spec_again_changes_nothing() -> None:
    spec = CELLS["robocell/PegInsert-v0"]
    register_cell(spec)
    assert CELLS["robocell/PegInsert-v0"] is spec


def test_a_second_cell_under_a_taken_id_is_refused() -> None:
    other = CELLS["robocell/PegInsert-v0"]._replace(entry_point="elsewhere:PegInsertEnv")
    with pytest.raises(RobocellError, match=r"already registered .*refusing a second cell"):
        register_cell(other)
    assert CELLS["robocell/PegInsert-v0"].entry_point == "robocell.envs.peg.env:PegInsertEnv"


@pytest.mark.parametrize("env_id", ["Reach-v0", "demo/Reach", "demo/Reach-v", "a/b/Reach-v0"])
def test_an_id_outside_namespace_name_version_is_refused(env_id: str) -> None:
    spec = CELLS["robocell/PegInsert-v0"]._replace(env_id=env_id)
    with pytest.raises(RobocellError, match="not of the form namespace/Name-vN"):
        register_cell(spec)
    assert env_id not in CELLS
