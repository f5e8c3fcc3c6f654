"""TensorBoard of the improve loop: per round the champion's and challenger's validation
figures, the promotion decision and the paired differences (``improve/…`` tags)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robocell.train.improve.decision import Decision


class RoundLog:
    """Writes one point per round; opens the event file on first use."""

    def __init__(self, tb_dir: Path) -> None:
        self.tb_dir = tb_dir
        self._tb: Any = None

    def log(
        self,
        r: int,
        champion: dict[str, float],
        challenger: dict[str, float] | None,
        decision: Decision | None,
    ) -> None:
        """Round ``r``'s figures and decision (the challenger shown: the promoted one, else
        the first)."""
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.tb_dir))
        for role, summary in (("champion", champion), ("challenger", challenger)):
            for key, value in _tb_figures(summary).items():
                self._tb.add_scalar(f"improve/{role}/{key}", value, r)
        if decision is not None:
            self._tb.add_scalar("improve/promoted", float(decision.promote), r)
            for test in decision.figures:
                self._tb.add_scalar(f"improve/diff/{test.figure}", test.diff_mean, r)
                self._tb.add_scalar(f"improve/diff/{test.figure}_ci_high", test.ci_high, r)
            self._tb.add_text("improve/decision", decision.reason, r)
        self._tb.flush()

    def close(self) -> None:
        """Close the event file (if one was opened)."""
        if self._tb is not None:
            self._tb.close()


def _tb_figures(summary: dict[str, float] | None) -> dict[str, float]:
    if summary is None:
        return {}
    figures = {"success_rate": summary["success_rate"]}
    figures.update(
        {
            k.removeprefix("mean/"): v
            for k, v in summary.items()
            if k.startswith("mean/") and k != "mean/success"
        }
    )
    return figures
