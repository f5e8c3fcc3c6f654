"""Import boundaries: which package may import which, and what stays torch-free.

The pipeline runs one way (envs → agents → train → eval is not a cycle): cells know nothing of
training or certification, agents nothing of run directories, and everything a certifier or a
buyer runs on a supplier's bundle works without torch or stable-baselines3.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Modules that read, gate, certify, verify or pay for a bundle: never torch, never SB3.
TORCH_FREE = (
    "robocell.agents.bundle",
    "robocell.agents.bundle.describe",
    "robocell.agents.bundle.digests",
    "robocell.agents.bundle.intake",
    "robocell.agents.bundle.manifest",
    "robocell.agents.bundle.policy",
    "robocell.agents.bundle.write",
    "robocell.agents.cli",
    "robocell.agents.scripted",
    "robocell.eval.certify",
    "robocell.eval.cli",
    "robocell.eval.runner",
    "robocell.eval.production",
    "robocell.eval.verify",
    "robocell.eval.release.cli",
    "robocell.eval.release.contract",
    "robocell.eval.release.chain",
    "robocell.eval.release.clock",
    "robocell.eval.release.dispute",
    "robocell.eval.release.events",
    "robocell.eval.release.ledger",
    "robocell.eval.release.release",
    "robocell.eval.release.store_postgres",
    "robocell.eval.release.store_sqlite",
    "robocell.envs.make",
    "robocell.executor",
    "robocell.line.canary",
    "robocell.line.cli",
    "robocell.line.detectors",
    "robocell.line.linefile",
    "robocell.line.report",
    "robocell.line.runtime",
    "robocell.line.sequential",
    "robocell.line.telemetry",
    "robocell.line.telemetry.cli",
)

# folder -> robocell subpackages its modules must not import
FORBIDDEN = {
    "envs": ("robocell.train", "robocell.eval", "robocell.agents"),
    "agents": ("robocell.train", "robocell.eval"),
    "line": ("robocell.train",),  # a learning cycle trains in worker processes, never here
}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_never_imports_torch_or_sb3(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in sys.modules\n"
        "               if m.split('.')[0] in ('torch', 'stable_baselines3', 'sb3_contrib'))\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "", f"{module} pulls in {result.stdout.strip()}"


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_folder_imports_nothing_downstream(folder: str) -> None:
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in _imported_modules(path):
            if name.startswith(FORBIDDEN[folder]):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_the_boundary_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from robocell.train.config import RunConfig\n")
    assert "robocell.train.config" in _imported_modules(probe)


def test_only_the_sim_wrapper_imports_pybullet() -> None:
    wrapper = {ROOT / "envs" / "sim.py", ROOT / "envs" / "sim_joints.py"}
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("envs", "agents", "train", "eval", "robocell")
        for path in (ROOT / folder).rglob("*.py")
        if path not in wrapper
        and any(
            name.split(".")[0] in ("pybullet", "pybullet_utils") for name in _imported_modules(path)
        )
    ]
    assert offenders == []
