"""The commands of docs/ECOSYSTEM.md, run as written with tiny budgets appended: rl-zoo3
train on every cell with its hyperparameter file, enjoy and record_video; SB3 make_vec_env
with SubprocVecEnv (forkserver workers) and Gymnasium make_vec."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ECOSYSTEM.md"
# Appended to a documented command: argparse keeps the last value of a repeated flag.
TINY_TRAIN = ["-n", "64", "--eval-freq", "-1", "--vec-env", "dummy",
              "-params", "n_envs:1", "n_steps:32", "batch_size:32", "n_epochs:1"]  # fmt: skip
TINY_RUN = ["-n", "40"]
pytestmark = pytest.mark.xdist_group("ecosystem")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def _commands(module: str) -> list[list[str]]:
    lines = [line for block in _blocks("bash") for line in block.splitlines()]
    return [shlex.split(line) for line in lines if f"rl_zoo3.{module}" in line]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    assert argv[0] == "python"
    result = subprocess.run([sys.executable, *argv[1:]], cwd=cwd, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding configs/zoo, where the documented commands run."""
    work = tmp_path_factory.mktemp("zoo")
    shutil.copytree(ROOT / "configs" / "zoo", work / "configs" / "zoo")
    return work


def test_the_doc_trains_every_cell_robocell_ships() -> None:
    envs = {argv[argv.index("--env") + 1] for argv in _commands("train")}
    assert envs == {"robocell/WeldSeam-v1", "robocell/PegInsert-v0", "robocell/VisionSort-v1"}


@pytest.mark.parametrize("index", range(3), ids=["weld", "peg", "vision"])
def test_rl_zoo3_trains_each_cell_with_its_hyperparameter_file(workdir: Path, index: int) -> None:
    argv = _commands("train")[index]
    _run([*argv, *TINY_TRAIN], workdir)
    name = argv[argv.index("--env") + 1].replace("/", "-")
    assert (workdir / "logs" / "zoo" / "ppo" / f"{name}_1" / f"{name}.zip").is_file()


def test_rl_zoo3_enjoys_and_records_the_trained_weld_model(workdir: Path) -> None:
    model = workdir / "logs" / "zoo" / "ppo" / "robocell-WeldSeam-v1_1"
    if not model.is_dir():  # run alone: train first, as the doc does
        _run([*_commands("train")[0], *TINY_TRAIN], workdir)
    (enjoy,) = _commands("enjoy")
    _run([*enjoy, *TINY_RUN], workdir)
    (video,) = [shlex.split(line) for block in _blocks("bash") for line in block.splitlines()
                if "record_video" in line]  # fmt: skip
    _run([*video, *TINY_RUN], workdir)
    assert list((workdir / "videos").glob("*.mp4"))


def _python_block(marker: str) -> str:
    (code,) = [block for block in _blocks("python") if marker in block]
    return code


def test_sb3_make_vec_env_with_forkserver_workers_runs(tmp_path: Path) -> None:
    code = _python_block("make_vec_env")
    budgets = (("n_steps=1024", "n_steps=32"), ("total_timesteps=200_000", "total_timesteps=64"))
    for full, tiny in budgets:
        assert full in code
        code = code.replace(full, tiny)
    script = tmp_path / "sb3_vec.py"
    script.write_text(code)
    _run(["python", str(script)], tmp_path)


def test_the_bare_id_fails_in_forkserver_workers_as_the_doc_says(tmp_path: Path) -> None:
    code = _python_block("make_vec_env").replace("robocell:robocell/", "robocell/")
    script = tmp_path / "bare.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode != 0 and "Namespace robocell not found" in result.stderr


def test_gymnasium_make_vec_runs(tmp_path: Path) -> None:
    script = tmp_path / "make_vec.py"
    script.write_text(_python_block("make_vec("))
    _run(["python", str(script)], tmp_path)
