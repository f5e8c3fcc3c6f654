"""The export's parity check: the ONNX graph's actions against the training-side pipeline.

Continuous actions must agree within ``PARITY_ATOL + PARITY_RTOL·|a|``. A discrete action is
the arg-max of the policy's scores: the same index, or a tie between equally likely actions
(see :func:`check_parity`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from robocell.agents.bundle.manifest import PARITY_ATOL, PARITY_RTOL
from robocell.agents.onnx_graph import InputLayout
from robocell.errors import RobocellError

_CHUNK = 256


@dataclass
class ParityFigures:
    """What :func:`check_parity` found over all compared observations."""

    max_abs_diff: float = 0.0
    """Continuous: largest |Δa|; discrete: largest probability gap of an arg-max tie."""
    worst_ratio: float = 0.0
    """Largest difference / allowance (<= 1 when the check passes)."""
    argmax_ties: int = 0
    """Discrete: observations where the graph chose another action of equal probability."""


def check_parity(
    session: ort.InferenceSession,
    layouts: list[InputLayout],
    reference: Callable[[Any], np.ndarray],
    observations: list[Any],
) -> ParityFigures:
    """Compare the graph's actions with ``reference``'s; raises RobocellError if they differ.

    Continuous actions must agree within ``PARITY_ATOL + PARITY_RTOL·|a|``. A discrete
    action (an integer output, e.g. a cell of a pick grid) is the arg-max of the policy's
    scores and must be the same index — except at a tie: where the graph chose another
    action whose probability under the trained model equals the best one within the same
    tolerance, ``p_best − p_chosen <= PARITY_ATOL + PARITY_RTOL·p_best``. On a fine grid the
    best point often lies between two cells, and float32 differences between the two
    runtimes (about 1e-6 of a score) then decide between equals; such ties are counted.
    A relative tolerance on the index itself would accept a pick 30 cells away.
    """
    figures = ParityFigures()
    for start in range(0, len(observations), _CHUNK):
        chunk = observations[start : start + _CHUNK]
        batch = _stack(chunk, layouts)
        expected = np.asarray(reference(batch), dtype=np.float64).reshape(len(chunk), -1)
        feed = {item.name: batch if item.key is None else batch[item.key] for item in layouts}
        raw = np.asarray(session.run(["action"], feed)[0])
        got = raw.astype(np.float64).reshape(len(chunk), -1)
        if np.issubdtype(raw.dtype, np.integer):
            diff, ratio = _discrete_gaps(reference, batch, expected, got)
            figures.argmax_ties += int(np.sum((got != expected) & (ratio <= 1.0)))
        else:
            diff = np.abs(got - expected)
            ratio = diff / (PARITY_ATOL + PARITY_RTOL * np.abs(expected))
        if ratio.max() > 1.0:
            _raise_parity(start, expected, got, diff, ratio, np.issubdtype(raw.dtype, np.integer))
        figures.max_abs_diff = max(figures.max_abs_diff, float(diff.max()))
        figures.worst_ratio = max(figures.worst_ratio, float(ratio.max()))
    return figures


def _discrete_gaps(
    reference: Any, batch: Any, expected: np.ndarray, got: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per action: the probability gap best − chosen under the model, and gap / allowance."""
    differs = got != expected
    gap = np.where(differs, np.nan, 0.0)  # nan: no probabilities to tell a tie
    ratio = np.where(differs, np.inf, 0.0)
    probabilities = getattr(reference, "action_probabilities", None)
    if not differs.any() or probabilities is None or expected.shape[1] != 1:
        return gap, ratio
    probs = probabilities(batch)
    rows = np.arange(len(expected))
    best = probs[rows, expected[:, 0].astype(int)]
    chosen = probs[rows, np.clip(got[:, 0], 0, probs.shape[1] - 1).astype(int)]
    gap[:, 0] = np.where(differs[:, 0], np.maximum(best - chosen, 0.0), 0.0)
    ratio[:, 0] = np.where(differs[:, 0], gap[:, 0] / (PARITY_ATOL + PARITY_RTOL * best), 0.0)
    return gap, ratio


def _raise_parity(
    start: int, expected: np.ndarray, got: np.ndarray, diff: np.ndarray, ratio: np.ndarray,
    discrete: bool,
) -> None:  # fmt: skip
    row, col = np.unravel_index(np.argmax(ratio), ratio.shape)
    where = f"parity check failed on observation {start + row}, action[{col}]: onnxruntime "
    if discrete:
        why = (
            "discrete actions must be equal (no action probabilities to tell a tie)"
            if np.isnan(diff[row, col])
            else f"the model's probabilities of the two differ by {diff[row, col]:.3g}, a tie "
            f"needs <= {PARITY_ATOL} + {PARITY_RTOL}·p"
        )
        raise RobocellError(
            f"{where}chose {got[row, col]:.0f}, torch {expected[row, col]:.0f}: {why}; "
            "no bundle written"
        )
    raise RobocellError(
        f"{where}{got[row, col]:.9g} vs torch {expected[row, col]:.9g} (|Δa| = "
        f"{diff[row, col]:.3g} > {PARITY_ATOL} + {PARITY_RTOL}·|a|); no bundle written"
    )


def _stack(observations: list[Any], layouts: list[InputLayout]) -> Any:
    """One batch of raw observations, laid out as the graph's inputs."""
    if layouts[0].key is None:
        return np.stack([np.asarray(obs, dtype=layouts[0].dtype) for obs in observations])
    return {
        item.key: np.stack([np.asarray(obs[item.key], dtype=item.dtype) for obs in observations])
        for item in layouts
    }
