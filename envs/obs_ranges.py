"""Measured observation ranges of each cell: what its vector observations hold, with a margin.

``scripts/measure_ranges.py`` rolls each cell out with its scripted controller and with
random actions (default settings), takes every vector field's minimum and maximum, and
widens them by a margin; it writes one ``ranges/<Name>-v<N>.json`` per cell next to this
module. Export reads them (:func:`observation_ranges`) into the manifest's ``low``/``high``,
and the bundle's graph clips finite values outside them (:mod:`robocell.agents.bundle.guard`).
"""

from __future__ import annotations

import json
from pathlib import Path

RANGES_DIR = Path(__file__).resolve().parent / "ranges"
# Widen the measured [min, max] by this fraction of its span on each side, and at least by
# ABSOLUTE_MARGIN (a field that was constant still gets room for noise).
RELATIVE_MARGIN = 0.25
ABSOLUTE_MARGIN = 1e-3


def ranges_path(env_id: str) -> Path:
    """The range file of ``env_id`` (``robocell/WeldSeam-v1`` → ``WeldSeam-v1.json``)."""
    return RANGES_DIR / f"{env_id.split('/')[-1]}.json"


def observation_ranges(env_id: str) -> dict[str, dict[str, list[float]]]:
    """Per ONNX input name, per field name: ``[low, high]``; empty for an unmeasured env."""
    path = ranges_path(env_id)
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))["inputs"]


def widen(low: float, high: float) -> list[float]:
    """``[low, high]`` widened by the margin on each side."""
    margin = max(RELATIVE_MARGIN * (high - low), ABSOLUTE_MARGIN * max(1.0, abs(low), abs(high)))
    return [float(low - margin), float(high + margin)]
