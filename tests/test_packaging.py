"""Layout guardrails: every package folder ships, short imports are banned, import registers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import tomllib

import robocell
from robocell.envs import ENV_IDS

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SKIP = {".venv", ".git", "tests", "build", "bench"}


def _package_folders() -> set[str]:
    folders = set()
    for init in ROOT.rglob("__init__.py"):
        relative = init.parent.relative_to(ROOT)
        if relative.parts and relative.parts[0] not in SKIP and ".egg-info" not in str(relative):
            folders.add(relative.as_posix())
    return folders


def test_every_folder_with_an_init_is_a_listed_package() -> None:
    package_dir = PYPROJECT["tool"]["setuptools"]["package-dir"]
    folder_to_package = {folder: name for name, folder in package_dir.items()}
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    for folder in _package_folders():
        top, *rest = folder.split("/")
        assert top in folder_to_package, f"{folder} is not mapped in package-dir"
        name = ".".join([folder_to_package[top], *rest])
        assert name in listed, f"{folder} ({name}) is missing from [tool.setuptools] packages"


def test_top_level_folders_install_under_robocell() -> None:
    package_dir = PYPROJECT["tool"]["setuptools"]["package-dir"]
    for folder in ("envs", "agents", "train", "eval", "configs"):
        assert package_dir[f"robocell.{folder}"] == folder
        assert (ROOT / folder / "__init__.py").exists()


def test_short_imports_are_banned_by_ruff(tmp_path: Path) -> None:
    bad = ROOT / "robocell" / "_short_import_probe.py"
    bad.write_text("import envs\nfrom train import config\n")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "TID251", str(bad)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    finally:
        bad.unlink()
    assert result.returncode != 0
    assert result.stdout.count("TID251") == 2


def test_import_robocell_registers_every_cell() -> None:
    assert robocell.__version__
    assert "robocell/WeldSeam-v1" in ENV_IDS
    for env_id in ENV_IDS:
        assert env_id in gym.registry


def test_gym_make_works_in_a_fresh_interpreter() -> None:
    code = (
        "import gymnasium as gym, robocell; e = gym.make('robocell/WeldSeam-v1'); e.reset(seed=0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_typed_marker_ships() -> None:
    assert (ROOT / "robocell" / "py.typed").exists()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["robocell"]
