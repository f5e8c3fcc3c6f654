"""Build your own cell: what robocell's cells are built from, in one import.

A cell is a :class:`Task` (the workpiece, the process model, the reward terms and success,
filled in through small hooks), a :class:`CellEnv` that joins it to a :class:`Sim` (the one
PyBullet client), a robot (:class:`Robot`: an arm of :data:`ARMS`, e.g. :class:`KukaIiwa`,
with a rigid :class:`Tool`) and the
:class:`EnergyMeter`, and a :class:`CellSpec` that names the env, its time limit and its
scripted controller. Declare the spec under the ``robocell.cells`` entry-point group of your
package (or call :func:`register_cell`) and every ``robocell`` command works on the cell:
``envs``, ``baseline``, ``train``, ``export``, ``certify``, ``line run``. Run
``robocell cell check`` (:func:`check_cell`) on it first: the harness every built-in cell
passes. A complete example: docs/CELLS.md, "Your own cell".
"""

from robocell.envs import register_cell
from robocell.envs.arms import ARMS, ArmSpec, arm_spec, require_arm
from robocell.envs.check import check_cell
from robocell.envs.core import CellEnv, Task
from robocell.envs.energy import EnergyConstants, EnergyMeter
from robocell.envs.line_params import LineParameter
from robocell.envs.robot import KukaIiwa, Robot, Tool
from robocell.envs.sim import Sim
from robocell.envs.spec import CellSpec

__all__ = [
    "ARMS",
    "ArmSpec",
    "CellEnv",
    "CellSpec",
    "EnergyConstants",
    "EnergyMeter",
    "KukaIiwa",
    "LineParameter",
    "Robot",
    "Sim",
    "Task",
    "Tool",
    "arm_spec",
    "check_cell",
    "register_cell",
    "require_arm",
]
