"""One line per finished sweep trial (Ray Tune's own progress tables are turned off)."""

from __future__ import annotations

from typing import Any

from ray import tune


class TrialLogger(tune.Callback):
    """Prints each finished trial's score, steps and parameters.

    Tune pickles its callbacks with the experiment state, so this one holds nothing.
    """

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Tune calls this when a trial ends (finished or stopped early)."""
        result = trial.last_result or {}
        print(
            f"trial {trial.trial_id}: score {result.get('score')} after "
            f"{result.get('timesteps')} steps, {trial.config}",
            flush=True,
        )
