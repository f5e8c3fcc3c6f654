"""PyBullet robot cells, registered with Gymnasium: the built-in ``robocell/`` cells and plug-ins.

``CELLS`` (env id → :class:`CellSpec`) and ``ENV_IDS`` list every registered cell; tests and
the CLI pick new cells up from them. Adding a built-in cell is one folder (task, env, scripted
controller, its ``CELL``), one entry in ``_BUILT_IN`` and one training config.

Other packages add cells through the ``robocell.cells`` entry-point group; each entry point
names a :class:`CellSpec`, or a tuple or list of them (docs/CELLS.md, "Your own cell").
Gymnasium 1.x loads no plug-ins, so robocell does: :func:`discover_cells` loads them once per
process, the first time ``CELLS`` or ``ENV_IDS`` is read or a cell is made, which keeps
``import robocell`` cheap and lets worker processes find them too. A plug-in that fails to
load is left out and reported (``robocell envs``); it breaks nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib.metadata import entry_points
from types import MappingProxyType

import gymnasium as gym
from gymnasium.envs.registration import WrapperSpec

from robocell.envs import peg, vision, weld
from robocell.envs.spec import CellSpec
from robocell.errors import RobocellError

ENTRY_POINT_GROUP = "robocell.cells"
# Gymnasium's id grammar (gymnasium.envs.registration.ENV_ID_RE) with the namespace and the
# version required: every cell is namespace/Name-vN.
_CELL_ID = re.compile(r"^[\w:-]+/[\w:.-]+-v\d+$")

# Read through __getattr__ (below), after the plug-ins are discovered.
CELLS: Mapping[str, CellSpec]
ENV_IDS: tuple[str, ...]

_registered: dict[str, CellSpec] = {}
_plugin_failures: dict[str, str] = {}
_discovered = False


def register_cell(spec: CellSpec) -> None:
    """Add a cell to ``CELLS`` and register it with Gymnasium, time limit wrappers included.

    Registering the same spec again does nothing. A RobocellError refuses an id that is not
    ``namespace/Name-vN`` and an id already registered by a different spec.
    """
    if not isinstance(spec, CellSpec):
        raise RobocellError(f"a cell is registered from a CellSpec, not {type(spec).__name__}")
    if not _CELL_ID.match(spec.env_id):
        raise RobocellError(f"cell id {spec.env_id!r} is not of the form namespace/Name-vN")
    known = _registered.get(spec.env_id)
    if known == spec:
        return
    if known is not None:
        raise RobocellError(
            f"cell {spec.env_id!r} is already registered ({known.entry_point}); "
            f"refusing a second cell of that id ({spec.entry_point})"
        )
    _register_with_gymnasium(spec)
    _registered[spec.env_id] = spec


def _register_with_gymnasium(spec: CellSpec) -> None:
    if spec.env_id in gym.registry:
        other = gym.registry[spec.env_id].entry_point
        if other == spec.entry_point:
            return  # this module imported again: Gymnasium already holds the cell
        raise RobocellError(
            f"cell {spec.env_id!r} is already a Gymnasium env ({other}); "
            f"refusing a second one of that id ({spec.entry_point})"
        )
    gym.register(
        id=spec.env_id,
        entry_point=spec.entry_point,
        max_episode_steps=spec.max_episode_steps,
        reward_threshold=spec.reward_threshold,
        # Outside TimeLimit: a max_episode_steps given to gym.make is honoured both ways.
        additional_wrappers=(
            WrapperSpec("CellTimeLimit", "robocell.envs.time_limit:CellTimeLimit", {}),
        ),
    )


def discover_cells() -> Mapping[str, str]:
    """Register the cells installed packages declare under ``robocell.cells``, once per process.

    Returns the entry points that failed (``name = module:attr`` → a one-line reason); their
    cells are left out, everything else works.
    """
    global _discovered
    if not _discovered:
        _discovered = True  # first: a plug-in may read ENV_IDS while it loads
        found = entry_points(group=ENTRY_POINT_GROUP)
        for entry_point in sorted(found, key=lambda ep: (ep.name, ep.value)):
            try:
                _register_plugin(entry_point.load())
            except Exception as exc:  # whatever a broken plug-in raises, robocell goes on
                _plugin_failures[f"{entry_point.name} = {entry_point.value}"] = error_line(exc)
    return MappingProxyType(_plugin_failures)


def error_line(exc: BaseException) -> str:
    """An exception as one line, ``Type: message``: how a failed plug-in or check is reported."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _register_plugin(declared: object) -> None:
    # A CellSpec is a tuple too: test for one first.
    specs = (declared,) if isinstance(declared, CellSpec) else declared
    if not isinstance(specs, tuple | list):
        raise RobocellError(f"names a {type(declared).__name__}, not a CellSpec or a tuple of them")
    for spec in specs:
        register_cell(spec)


def __getattr__(name: str) -> object:
    """``CELLS`` and ``ENV_IDS``, plug-ins included (a module ``__getattr__``, PEP 562)."""
    if name == "CELLS":
        discover_cells()
        return MappingProxyType(_registered)
    if name == "ENV_IDS":
        discover_cells()
        return tuple(_registered)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The motion cell is written with the public API (robocell.cells), which imports this module's
# register_cell: it is imported once that exists.
from robocell.envs import motion  # noqa: E402

_BUILT_IN = (weld.CELL, peg.CELL, peg.CELL_V1, vision.CELL, motion.CELL)

for _cell in _BUILT_IN:
    register_cell(_cell)
