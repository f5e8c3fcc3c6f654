"""The champion/challenger loop behind ``robocell improve``.

Round 0 trains the first champion from the config (or adopts a trained run). Each later
round r trains a challenger for ``steps_per_round`` steps starting from the champion's
weights and normaliser statistics (seed ``seed + r``, env kwargs from the config's schedule),
plays both policies on round r's validation seeds in the round's env, and promotes the
challenger only when :func:`robocell.train.improve.decision.decide` says it is better
(success not worse by an exact one-sided test, energy or cycle time better by a bootstrap
CI); otherwise the champion stays. With ``--challengers K`` a round trains K challengers at
once through the executor seam and promotes at most one, with Bonferroni-corrected claims
(:mod:`robocell.train.improve.population`). Every round is recorded in the registry
(:mod:`robocell.train.improve.policy_registry`), each new champion is exported as a bundle, and the
figures and decisions go to TensorBoard under ``improve/``.

The registry index records progress: run the same command again after a kill and the loop
continues with the first unfinished round, redoing it from its start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robocell.errors import RobocellError
from robocell.executor import ExecutorOptions, run_jobs
from robocell.schema import SchemaError, to_dict
from robocell.train.config import RunConfig, config_digest, config_from_dict
from robocell.train.improve.config import ImproveConfig
from robocell.train.improve.decision import (
    Decision,
    decide,
    validation_seeds,
)
from robocell.train.improve.policy_registry import (
    PolicyRegistry,
    clear_partial_round,
    registry_lock,
    version_id,
)
from robocell.train.improve.population import (
    MAX_CHALLENGERS,
    challenger_configs,
    check_seed_namespaces,
    pick,
    promotion_rule,
    round_config,
    runner_up_reason,
    train_challenger,
)
from robocell.train.improve.round_log import RoundLog
from robocell.train.rundir import LoadedRun, load_run

Log = Callable[[str], None]


@dataclass
class ImproveRequest:
    """What one ``robocell improve`` call asks for."""

    config: RunConfig
    """The base config, with its ``improve`` section (see :func:`resolve_improve`)."""
    rounds: int
    """Challenger rounds after round 0: the loop ends once round ``rounds`` is finished."""
    registry_dir: Path
    command: str
    adopt_run: Path | None = None
    """A trained run to adopt as the first champion instead of training round 0."""
    progress: bool = True
    challengers: int = 1
    """Challengers trained per round, in parallel (see :mod:`.population`)."""
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)
    """Where the challengers train: local processes or Ray."""


@dataclass
class ImproveResult:
    """How a call ended."""

    registry_dir: Path
    champion: str | None
    finished_rounds: list[int]
    interrupted_round: int | None


def resolve_improve(config: RunConfig, steps_per_round: int | None = None) -> RunConfig:
    """``config`` with ``--steps-per-round`` (when given) in its ``improve`` section."""
    if steps_per_round is None:
        return config
    data = to_dict(config)
    data["improve"]["steps_per_round"] = steps_per_round
    return config_from_dict(data)


def run_improve(request: ImproveRequest, log: Log = print) -> ImproveResult:
    """Run rounds until round ``request.rounds`` is finished (or a stop signal)."""
    config = request.config
    if not 1 <= request.challengers <= MAX_CHALLENGERS:
        raise RobocellError(f"--challengers must be in [1, {MAX_CHALLENGERS}]")
    check_seed_namespaces(config, request.rounds, request.challengers)
    check_schedule(config, request.rounds)
    adopt = str(request.adopt_run.resolve()) if request.adopt_run else None
    setup = {
        "env_id": config.env_id,
        "algo": config.algo,
        "base_config_digest": config_digest(config),
    }
    if request.challengers > 1:  # absent for one: registries of the single loop stay valid
        setup["challengers"] = request.challengers
    with registry_lock(request.registry_dir):
        registry = PolicyRegistry.open_or_create(request.registry_dir, setup, to_dict(config))
        adopt = _adopted_run(registry, adopt)
        return ImproveLoop(request, registry, adopt, log).run()


def _adopted_run(registry: PolicyRegistry, adopt: str | None) -> str | None:
    recorded = registry.index.get("adopted_run")
    if registry.next_round == 0 and adopt != recorded:
        registry.index["adopted_run"] = adopt  # round 0 not done: the new choice stands
        registry.save()
        return adopt
    if adopt is not None and adopt != recorded:
        raise RobocellError(f"{registry.root}: round 0 already adopted {recorded}, not {adopt}")
    return recorded


def check_schedule(config: RunConfig, rounds: int) -> None:
    """Build each scheduled env once: bad kwargs or changed spaces fail before any training."""
    from robocell.train.vec_env import probe_spaces

    schedule = config.improve.schedule
    if not schedule:
        return
    base_spaces = probe_spaces(round_config(config, 0))
    for i in range(min(rounds, len(schedule))):
        try:
            spaces = probe_spaces(round_config(config, i + 1))
        except SchemaError as exc:
            raise SchemaError(f"improve.schedule[{i}]", str(exc)) from None
        if spaces != base_spaces:
            raise SchemaError(
                f"improve.schedule[{i}]",
                "changes the observation or action "
                "space; a challenger could not start from the champion",
            )


class ImproveLoop:
    """Plays the rounds of one registry; see the module docstring."""

    def __init__(
        self, request: ImproveRequest, registry: PolicyRegistry, adopt: str | None, log: Log
    ) -> None:
        self.request = request
        self.registry = registry
        self.adopt = adopt
        self.log = log
        self.improve: ImproveConfig = request.config.improve
        self._tb = RoundLog(registry.tb_dir)

    def run(self) -> ImproveResult:
        """Finish every due round; stops early (and says which round) on a stop signal."""
        finished: list[int] = []
        interrupted = None
        try:
            while self.registry.next_round <= self.request.rounds:
                r = self.registry.next_round
                self.registry.begin_round(r)
                clear_partial_round(self.registry, r, self._ids(r))
                done = self._initial_round() if r == 0 else self._challenger_round(r)
                if not done:
                    interrupted = r
                    break
                finished.append(r)
        finally:
            self._tb.close()
        return ImproveResult(
            self.registry.root, self.registry.index["champion"], finished, interrupted
        )

    # ------------------------------------------------------------------ rounds
    def _initial_round(self) -> bool:
        from robocell.train.trainer import start_run

        config = round_config(self.request.config, 0)
        if self.adopt is not None:
            run_dir = Path(self.adopt)
            self.log(f"round 0: adopting {run_dir} as the first champion")
        else:
            run_dir = self.registry.run_dir(0)
            self.log(
                f"round 0: training the first champion ({config.total_timesteps} steps) "
                f"in {run_dir}"
            )
            if start_run(config, run_dir, self.request.command, self.request.progress).interrupted:
                return False
        run = load_run(run_dir, "best")
        _check_adopted(run.config, config, run_dir)
        seeds = validation_seeds(0, self.improve.validation_episodes)
        episodes = self._play(run, config, seeds)
        summary = self._record_validation(0, seeds, {"v000": episodes})["v000"]
        self._tb.log(0, summary, None, None)
        entry = self._entry(0, version_id(0), None, run, run_dir, config, summary)
        entry.update(decision="initial", reason="first champion")
        entry.update(self._export(run_dir, "v000"))
        self.registry.commit(entry, champion=True)
        self.log(f"round 0: champion v000 — {_figures_line(summary)}")
        return True

    def _ids(self, r: int) -> list[str]:
        return [version_id(0)] if r == 0 else list(self._configs(r))

    def _configs(self, r: int) -> dict[str, RunConfig]:
        return challenger_configs(self.request.config, r, self.request.challengers)

    def _challenger_round(self, r: int) -> bool:
        champion = self.registry.champion
        assert champion is not None  # round 0 is committed before any challenger round
        parent_dir = self.registry.resolve(champion["run_dir"])
        parent = load_run(parent_dir, "best")
        configs = self._configs(r)
        if not self._train_challengers(r, champion["id"], configs, parent, parent_dir):
            return False
        entries = self._judge(r, champion["id"], parent, configs)
        promoted = [entry["id"] for entry in entries if entry["decision"] == "promoted"]
        self.registry.commit_round(entries, promoted[0] if promoted else None)
        for entry in entries:
            self.log(f"round {r}: {entry['id']} {entry['reason']}")
        return True

    def _train_challengers(
        self,
        r: int,
        parent_id: str,
        configs: dict[str, RunConfig],
        parent: LoadedRun,
        parent_dir: Path,
    ) -> bool:
        one = len(configs) == 1
        config = next(iter(configs.values()))
        self.log(
            f"round {r}: training challenger(s) {', '.join(configs)} from {parent_id} "
            f"({config.total_timesteps} steps, env_kwargs {config.env_kwargs})"
        )
        progress = self.request.progress and one and not self.request.executor.use_ray
        stats = reward_stats_of(parent_dir)
        zip_path = str(parent.checkpoint_path.resolve())
        jobs = [
            (to_dict(cfg), str(self.registry.version_run_dir(vid).resolve()),
             self.request.command, zip_path, parent.normalizer, stats, progress)
            for vid, cfg in configs.items()
        ]  # fmt: skip
        finished = run_jobs(train_challenger, jobs, self.request.executor, config.cpus_per_run)
        return all(finished)

    def _judge(
        self, r: int, parent_id: str, parent: LoadedRun, configs: dict[str, RunConfig]
    ) -> list[dict[str, Any]]:
        """Play champion and challengers on round ``r``'s seeds, decide, export the chosen."""
        config = next(iter(configs.values()))  # every challenger of a round has its env
        seeds = validation_seeds(r, self.improve.validation_episodes)
        old = self._play(parent, config, seeds)
        runs = {vid: load_run(self.registry.version_run_dir(vid), "best") for vid in configs}
        played = {vid: self._play(run, config, seeds) for vid, run in runs.items()}
        rule = promotion_rule(self.improve, len(configs))
        decisions = {vid: decide(old, new, rule) for vid, new in played.items()}
        chosen = pick(decisions)
        summaries = self._record_validation(r, seeds, {parent_id: old, **played})
        shown = chosen or next(iter(configs))
        self._tb.log(r, summaries[parent_id], summaries[shown], decisions[shown])
        return [
            self._challenger_entry(r, parent_id, vid, runs[vid], config, summaries,
                                   decisions[vid], chosen)
            for vid in configs
        ]  # fmt: skip

    def _challenger_entry(
        self,
        r: int,
        parent_id: str,
        vid: str,
        run: LoadedRun,
        config: RunConfig,
        summaries: dict[str, dict[str, float]],
        decision: Decision,
        chosen: str | None,
    ) -> dict[str, Any]:
        run_dir = self.registry.version_run_dir(vid)
        entry = self._entry(r, vid, parent_id, run, run_dir, config, summaries[vid])
        reason = decision.reason
        if decision.promote and vid != chosen:
            reason = runner_up_reason(decision, str(chosen))
        entry.update(
            compared_with={"version": parent_id, "validation": summaries[parent_id]},
            decision="promoted" if vid == chosen else "rejected",
            reason=reason,
            test=decision.to_dict(),
        )
        if vid == chosen:
            entry.update(self._export(run_dir, vid))
        return entry

    # ------------------------------------------------------------------ pieces
    def _play(self, run: LoadedRun, config: RunConfig, seeds: list[int]) -> list[dict[str, float]]:
        from robocell.envs.make import make_cell
        from robocell.train.evaluate import model_policy, run_episodes

        env = make_cell(config.env_id, config.env_kwargs)
        try:
            return run_episodes(env, model_policy(run.model, run.normalizer), seeds)
        finally:
            env.close()

    def _record_validation(
        self, r: int, seeds: list[int], episodes: dict[str, list[dict[str, float]]]
    ) -> dict[str, dict[str, float]]:
        from robocell.envs.rollout import summarize
        from robocell.util import atomic_write_json

        atomic_write_json(
            self.registry.validation_file(r), {"round": r, "seeds": seeds, "episodes": episodes}
        )
        return {vid: {"first_seed": seeds[0], **summarize(eps)} for vid, eps in episodes.items()}

    def _entry(
        self,
        r: int,
        vid: str,
        parent: str | None,
        run: LoadedRun,
        run_dir: Path,
        config: RunConfig,
        summary: dict[str, float],
    ) -> dict[str, Any]:
        return {
            "id": vid,
            "round": r,
            "parent": parent,
            "run_dir": self.registry.relative(run_dir),
            "checkpoint": self.registry.relative(run.checkpoint_path),
            "run_id": run.run_id,
            "config_digest": run.config_digest,
            "env_kwargs": dict(config.env_kwargs),
            "train_steps": int(run.model.num_timesteps),
            "validation": summary,
            "validation_file": self.registry.relative(self.registry.validation_file(r)),
            "compared_with": None,
            "test": None,
            "bundle": None,
            "onnx_sha256": None,
        }

    def _export(self, run_dir: Path, vid: str) -> dict[str, Any]:
        from robocell.train.export import export_run

        bundle_dir = self.registry.bundle_dir(vid)
        report = export_run(run_dir, bundle_dir, "best", overwrite=True)
        self.log(f"exported {vid} to {bundle_dir} (parity max |Δa| {report.max_abs_diff:.2g})")
        return {"bundle": self.registry.relative(bundle_dir), "onnx_sha256": report.onnx_sha256}


def _figures_line(summary: dict[str, float]) -> str:
    text = f"success {100 * summary['success_rate']:.0f}%"
    for key, unit in (("energy_j", "J"), ("cycle_time_s", "s")):
        if f"mean/{key}" in summary:
            text += f", {key} {summary[f'mean/{key}']:.4g} {unit}"
    return text + f" on {int(summary['episodes'])} validation episodes"


def _check_adopted(adopted: RunConfig, config: RunConfig, run_dir: Path) -> None:
    for name in ("env_id", "algo", "policy_kwargs", "normalize"):
        if getattr(adopted, name) != getattr(config, name):
            raise RobocellError(
                f"{run_dir}: its {name} {getattr(adopted, name)!r} differs from "
                f"the config's {getattr(config, name)!r}"
            )


def reward_stats_of(run_dir: Path) -> dict[str, Any] | None:
    """The reward-normaliser statistics of a run's latest checkpoint (None without one)."""
    from robocell.train.resume import RunState
    from robocell.train.rundir import companion, latest_checkpoint

    model_zip = latest_checkpoint(run_dir)
    if model_zip is None:
        return None
    return RunState.from_json(companion(model_zip, ".state.json")).reward_stats
