"""``robocell line run``: the cells of a line, part after part, under onnxruntime alone.

Each cell is a bundle through the one bundle gate (:func:`robocell.agents.bundle.load_bundle`)
driving its *plant*: the cell's env, whose hidden parameters the line file's scenario drifts
between parts (the controller never sees them). The line believes what the cell's
calibration file says (:class:`robocell.line.calibrate.files.CalibrationFile`); a drift alarm
makes the line run the cell's calibration routine in the plant (it costs simulated time and
energy, recorded in the ``calibration`` event) and apply the result. Time is simulated: each
part advances it by the episode's cycle time, so a line runs as fast as the physics allows.

Every part is one telemetry row, written with the events it raised in one signed batch of
``batch_parts`` parts (1 by default: a ``kill -9`` loses at most the part in flight), and
``--resume`` continues the same chain from its last recorded part, with the detectors
replayed from the recorded rows. Cells run in parallel processes, or on Ray, through the
executor seam. KPIs go to TensorBoard scalars under ``OUT/tb/<cell>``.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robocell.errors import RobocellError
from robocell.executor import ExecutorOptions, run_jobs
from robocell.line.detectors import CellDetectors
from robocell.line.linefile import MAX_PARTS, CellEntry, LineFile, scenario_values
from robocell.line.tensorboard import ScalarWriter
from robocell.util import atomic_write_bytes

#: Episode figures that have their own row columns (the rest are the row's quality figures).
_COLUMNS = ("success", "energy_j", "cycle_time_s")
#: Episode seeds of a line: above the certification and evaluation ranges.
SEED_BASE = 5_000_000


@dataclass(frozen=True)
class CellJob:
    """Everything a worker process needs to run one cell of a line."""

    line: str
    cell: CellEntry
    parts: int
    seed: int
    telemetry: str
    out_dir: str
    grid_g_co2e_per_kwh: float
    batch_parts: int
    progress_position: int | None


def run_line(
    line: LineFile,
    out_dir: Path,
    telemetry: str | None,
    options: ExecutorOptions,
    parts: int | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every cell of ``line``; returns the summary (also written to ``OUT/summary.json``)."""
    from robocell.line.telemetry import open_telemetry

    for cell in line.cells:  # every cell checked before anything is written
        check_cell(cell)
    if telemetry is None:
        out_dir.mkdir(parents=True, exist_ok=True)
    url = telemetry or str(out_dir / "telemetry.sqlite")
    with open_telemetry(url, create=True) as store:  # unreachable: a clear error, no work done
        recorded = {cell for found_line, cell in store.chains() if found_line == line.line}
    out_dir.mkdir(parents=True, exist_ok=True)
    started = recorded & {cell.id for cell in line.cells}
    if started and not resume:
        raise RobocellError(
            f"{url}: line {line.line!r} already recorded cell(s) {', '.join(sorted(started))}; "
            "pass --resume to continue their chains, or give another --telemetry"
        )
    jobs = [
        (
            CellJob(
                line.line,
                cell,
                parts or line.parts,
                line.seed,
                url,
                str(out_dir),
                line.grid_g_co2e_per_kwh,
                line.batch_parts,
                index if progress else None,
            ),
        )
        for index, cell in enumerate(line.cells)
    ]
    results = run_jobs(run_cell, jobs, dataclasses.replace(options, workers=len(jobs)))
    summary = {
        "line": line.line,
        "telemetry": url,
        "cells": {result["cell"]: result["kpis"] for result in results},
        "events": sorted(
            (event for result in results for event in result["events"]),
            key=lambda e: (e["part"], e["cell"]),
        ),
        "windows": [window for result in results for window in result["windows"]],
    }
    data = json.dumps(summary, indent=2, sort_keys=True).encode() + b"\n"
    atomic_write_bytes(out_dir / "summary.json", data, mode=0o644)
    return summary


def calibrate_on_demand(
    line: LineFile, cell: CellEntry, out_dir: Path, telemetry: str | None
) -> dict[str, Any]:
    """``robocell calibrate``: the cell's routine in its plant as the scenario stands at the
    chain's next part; the new version goes into the calibration file and a ``calibration``
    event into the cell's telemetry chain. Returns the event."""
    from robocell.line.calibrate import ROUTINES
    from robocell.line.keys import cell_key
    from robocell.line.telemetry import open_telemetry

    check_cell(cell)
    if cell.env_id not in ROUTINES:
        raise RobocellError(f"cell {cell.id}: {cell.env_id} has no calibration routine")
    url = telemetry or str(out_dir / "telemetry.sqlite")
    with open_telemetry(url, create=True) as store:
        writer = store.open_chain(line=line.line, cell=cell.id, private_key=cell_key(cell, out_dir))
        part = writer.next_part
        plant = open_plant(cell, out_dir)
        try:
            plant.set_part(cell, part)
            plant.env.reset(seed=episode_seed(line.seed, part, cell.id))
            result = ROUTINES[cell.env_id](plant.env.unwrapped)
        finally:
            plant.env.close()
        version = record_calibration(plant.calibration, result, part)
        event = {"type": "calibration", "cell": cell.id, "part": part,
                 "data": calibration_data(result, version, "on demand")}  # fmt: skip
        writer.append([], [event])
    return event


@dataclass
class Plant:
    """A cell's bundle, its plant (the env it drives) and what the line believes of it."""

    policy: Any
    env: Any
    calibration: Any
    defaults: dict[str, Any]
    """The plant parameters' defaults, where a scenario's ramps start."""

    def set_part(self, cell: CellEntry, part: int) -> int:
        """The scenario's plant values at ``part`` and the current belief, for the next
        episode; returns the calibration version in effect."""
        version, belief = self.calibration.current()
        self.env.unwrapped.configure(
            **scenario_values(cell.scenario, part, self.defaults), **belief
        )
        return version


def open_plant(cell: CellEntry, out_dir: Path) -> Plant:
    """Load ``cell``'s bundle through the gate, build its plant and read its calibration file
    (``OUT/calibration/<id>.json``)."""
    from robocell.agents.bundle import load_bundle
    from robocell.line.calibrate.files import CalibrationFile

    policy = load_bundle(cell.bundle)
    env = policy.make_env()
    plant = env.unwrapped
    path = out_dir / "calibration" / f"{cell.id}.json"
    try:
        calibration = CalibrationFile.load(path, plant.belief())
    except BaseException:
        env.close()
        raise
    return Plant(policy, env, calibration, {p.name: p.default for p in plant.line_parameters})


def record_calibration(calibration: Any, result: Any, part: int) -> int:
    """Append ``result`` to the cell's calibration file; returns the new version."""
    return calibration.append(result.values, part=part, method=result.method,
                              error_after=result.error_after, detail=result.detail)  # fmt: skip


def calibration_data(result: Any, version: int, trigger: str) -> dict[str, Any]:
    """A ``calibration`` event's data: what was found, its errors and its cost."""
    return _plain({
        "version": version, "trigger": trigger, "method": result.method,
        "values": result.values, "error_before": result.error_before,
        "error_after": result.error_after, "duration_s": result.duration_s,
        "energy_j": result.energy_j, "detail": result.detail,
    })  # fmt: skip


def check_cell(cell: CellEntry) -> None:
    """The bundle passes the gate and is for the cell; the scenario names plant parameters
    with values in their ranges."""
    from robocell.agents.bundle import load_bundle
    from robocell.envs.make import make_cell

    policy = load_bundle(cell.bundle)
    if policy.env_id != cell.env_id:
        raise RobocellError(
            f"cell {cell.id}: bundle {cell.bundle} is for {policy.env_id}, not {cell.env_id}"
        )
    env = make_cell(cell.env_id, policy.env_kwargs)
    try:
        plant = env.unwrapped
        names = {p.name for p in plant.line_parameters}
        for step in cell.scenario:
            if step.parameter not in names:
                raise RobocellError(
                    f"cell {cell.id}: scenario parameter {step.parameter!r} is not a plant "
                    f"parameter of {cell.env_id} (known: {', '.join(sorted(names)) or 'none'})"
                )
            for value in (step.value, None if step.ramp is None else step.ramp.to):
                if value is not None:
                    _check_value(plant, cell.id, step.parameter, value)
    finally:
        env.close()


def _check_value(plant: Any, cell: str, name: str, value: Any) -> None:
    try:
        plant.check_line_values(**{name: value})
    except ValueError as exc:
        raise RobocellError(f"cell {cell}: scenario: {exc}") from None


def run_cell(job: CellJob) -> dict[str, Any]:
    """Run one cell for ``job.parts`` parts (or the rest of them, resuming); a worker job."""
    from robocell.line.calibrate import ROUTINES
    from robocell.line.keys import cell_key
    from robocell.line.telemetry import open_telemetry

    cell, out = job.cell, Path(job.out_dir)
    plant = open_plant(cell, out)
    routine = ROUTINES.get(cell.env_id) if cell.calibration == "auto" else None
    key = cell_key(cell, out)
    store = open_telemetry(job.telemetry, create=True)
    try:
        writer = store.open_chain(line=job.line, cell=cell.id, private_key=key)
        state = _CellState(job, plant, routine, writer)
        state.replay(store.rows(job.line, cell.id), store.events(job.line, cell.id))
        state.run()
        return state.result()
    finally:
        store.close()
        plant.env.close()


class _CellState:
    """One cell's run: the plant, its detectors, the pending batch and the KPIs so far."""

    def __init__(self, job: CellJob, plant: Plant, routine: Any, writer: Any) -> None:
        self.job, self.cell = job, job.cell
        self.plant, self.policy, self.env = plant, plant.policy, plant.env
        self.calibration = plant.calibration
        self.routine, self.writer = routine, writer
        detectors = self.cell.detectors
        self.detectors = CellDetectors(
            list(detectors.streams), detectors.warmup_parts, detectors.false_alarm_parts
        )
        self.rows: list[dict[str, Any]] = []  # every row of the chain, recorded and pending
        self.events: list[dict[str, Any]] = []
        self.pending_rows: list[dict[str, Any]] = []
        self.pending_events: list[dict[str, Any]] = []
        self.sim_time_s = 0.0
        self.scalars = ScalarWriter(Path(job.out_dir) / "tb" / self.cell.id)
        self.learning = None
        if self.cell.learning is not None:
            from robocell.line.learning import LearningCycle

            self.learning = LearningCycle(self.cell.learning, self.cell.env_id, self.policy)
        self.canary = None
        if self.cell.canary is not None:
            from robocell.line.canary import Canary

            out = Path(job.out_dir)
            self.canary = Canary(self.cell.canary, self.cell.id, job.seed, out, self.policy)

    # ----------------------------------------------------------------- replay and run
    def replay(self, rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
        """Bring the detectors and the clock to where the recorded chain ends."""
        # A calibration or a new champion is a new reference for the detectors.
        restarts = {e["part"] for e in events if e["type"] in ("calibration", "promotion")}
        for row in rows:
            self.detectors.update(row["part"], row_kpis(row))
            if row["part"] in restarts:
                self.detectors.restart()
        self.rows, self.events = list(rows), list(events)
        if rows:
            self.sim_time_s = float(rows[-1]["sim_time_s"])
        version, _ = self.calibration.current()
        if self.learning is not None:
            self.learning.replay(events)
        if self.canary is not None:
            self.canary.replay(rows, events)
            self.policy = self.canary.champion
            if self.learning is not None:
                self.learning.follow(self.policy)
        # A chain that goes on with a bundle it never ran is a deployment of that bundle.
        ran = {row["bundle_sha256"] for row in rows}
        kind = "resume" if self.policy.onnx_sha256 in ran else "deployment"
        self._event(
            kind,
            self.writer.next_part,
            bundle_sha256=self.policy.onnx_sha256,
            env_id=self.policy.env_id,
            calibration_version=version,
        )

    def run(self) -> None:
        from tqdm import tqdm

        first = self.writer.next_part
        bar = None
        if self.job.progress_position is not None:
            bar = tqdm(
                total=self.job.parts,
                initial=first,
                desc=self.cell.id,
                unit="part",
                position=self.job.progress_position,
                leave=True,
                dynamic_ncols=True,
            )
        try:
            for part in range(first, self.job.parts):
                self._part(part)
                if len(self.pending_rows) >= self.job.batch_parts:
                    self._flush()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(self._live(), refresh=False)
            self._flush()
        finally:
            if bar is not None:
                bar.close()
            self.scalars.close()
            if self.canary is not None:
                self.canary.finish()
            if self.learning is not None:
                self.learning.close()

    def _part(self, part: int) -> None:
        from robocell.eval.runner import play_episode

        version = self.plant.set_part(self.cell, part)
        seed = episode_seed(self.job.seed, part, self.cell.id)
        policy, side = self.policy, "champion"
        if self.canary is not None:
            self.canary.step(part, self._event)
            policy, side = self.canary.policy_for(part)
        # As certification plays it: with the count of actions outside the bundle's bounds.
        metrics = play_episode(self.env, policy, seed)
        row = self._row(part, version, metrics, policy.onnx_sha256)
        self.rows.append(row)
        self.pending_rows.append(row)
        kpis = row_kpis(row)
        self.scalars.add(part, kpis)
        alarms = self.detectors.update(part, kpis)
        for alarm in alarms:
            self._event(
                "drift_alarm",
                part,
                stream=alarm.stream,
                statistic=alarm.statistic,
                threshold=alarm.threshold,
                direction=alarm.direction,
            )
        if alarms and self._clears(part, [alarm.stream for alarm in alarms]):
            self._calibrate(part)
        if self.learning is not None:
            self.learning.after_part(part, self.rows, self._event)
        if self.canary is not None:
            self.canary.record(part, side, row, self._event)
            if self.canary.champion is not self.policy:  # promoted: a new reference
                self.policy = self.canary.champion
                self.detectors.restart()
                if self.learning is not None:
                    self.learning.follow(self.policy)

    def _clears(self, part: int, streams: list[str]) -> bool:
        """Whether to calibrate for these alarms (with a learning cycle: while one may clear
        them, else the cycle is triggered)."""
        if self.learning is None:
            return True
        return self.learning.calibrate(part, streams, self.routine is not None, self._event)

    def _calibrate(self, part: int) -> None:
        if self.routine is None:
            return
        result = self.routine(self.env.unwrapped)
        version = record_calibration(self.calibration, result, part)
        self.sim_time_s += result.duration_s
        self._event("calibration", part, **calibration_data(result, version, "drift alarm"))
        self.detectors.restart()

    def _row(
        self, part: int, version: int, metrics: Mapping[str, float | None], bundle_sha256: str
    ) -> dict[str, Any]:
        energy_j = float(metrics["energy_j"])
        cycle_s = float(metrics["cycle_time_s"])
        self.sim_time_s += cycle_s
        return {
            "line": self.job.line,
            "cell": self.cell.id,
            "bundle_sha256": bundle_sha256,
            "calibration_version": version,
            "part": part,
            "sim_time_s": round(self.sim_time_s, 6),
            "success": bool(metrics["success"] > 0.5),
            "energy_j": energy_j,
            "co2e_g": energy_j / 3.6e6 * self.job.grid_g_co2e_per_kwh,
            "cycle_time_s": cycle_s,
            "quality": {
                k: float(v)
                for k, v in metrics.items()
                if k not in _COLUMNS and not k.startswith("return/") and v is not None
            },
            "conditions": {k: float(v) for k, v in self.env.unwrapped.line_conditions().items()},
        }

    def _event(self, kind: str, part: int, **data: Any) -> None:
        event = {"type": kind, "cell": self.cell.id, "part": part, "data": _plain(data)}
        self.events.append(event)
        self.pending_events.append(event)

    def _flush(self) -> None:
        if self.pending_rows or self.pending_events:
            self.writer.append(self.pending_rows, self.pending_events)
            self.pending_rows, self.pending_events = [], []

    # ------------------------------------------------------------------ summary
    def _live(self) -> dict[str, str]:
        recent = self.rows[-50:]
        return {
            "success": f"{np.mean([r['success'] for r in recent]):.2f}",
            "J/part": f"{np.mean([r['energy_j'] for r in recent]):.0f}",
            "cycle_s": f"{np.mean([r['cycle_time_s'] for r in recent]):.1f}",
        }

    def result(self) -> dict[str, Any]:
        return {
            "cell": self.cell.id,
            "kpis": {
                "env_id": self.policy.env_id,
                "bundle_sha256": self.policy.onnx_sha256,
                "calibration_version": self.calibration.current()[0],
                "thresholds": self.detectors.thresholds(),
                **window_kpis(self.rows),
            },
            "events": self.events,
            "windows": windows(self.cell.id, self.rows, self.events),
        }


def window_kpis(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Parts, successes, success rate with its 95 % Clopper–Pearson lower bound, mean energy,
    CO2e and cycle time over ``rows``."""
    from robocell.eval.stats import clopper_pearson_lower

    k, n = sum(r["success"] for r in rows), len(rows)
    if n == 0:
        return {"parts": 0}
    return {
        "parts": n,
        "successes": k,
        "success_rate": k / n,
        "success_cp_lower": clopper_pearson_lower(k, n, 0.05),
        "energy_j_per_part": float(np.mean([r["energy_j"] for r in rows])),
        "co2e_g_per_part": float(np.mean([r["co2e_g"] for r in rows])),
        "cycle_time_s": float(np.mean([r["cycle_time_s"] for r in rows])),
    }


def windows(cell: str, rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[dict]:
    """KPI windows of a cell: before the first alarm, from it to the last calibration, after
    it, and the last 300 parts."""
    alarms = [e["part"] for e in events if e["type"] == "drift_alarm"]
    calibrations = [e["part"] for e in events if e["type"] == "calibration"]
    cuts = [("before_first_alarm", 0, alarms[0] if alarms else len(rows))]
    if alarms and calibrations:
        cuts.append(("alarm_to_calibration", alarms[0], calibrations[-1] + 1))
    if calibrations:
        cuts.append(("after_last_calibration", calibrations[-1] + 1, len(rows)))
    cuts.append(("last_300", max(0, len(rows) - 300), len(rows)))
    return [
        {
            "cell": cell,
            "window": name,
            "first_part": a,
            "last_part": b - 1,
            **window_kpis(rows[a:b]),
        }
        for name, a, b in cuts
    ]


def row_kpis(row: Mapping[str, Any]) -> dict[str, float]:
    """The KPIs the detectors and TensorBoard see of one telemetry row."""
    kpis = {
        "success": float(row["success"]),
        "energy_j": row["energy_j"],
        "cycle_time_s": row["cycle_time_s"],
        "co2e_g": row["co2e_g"],
    }
    return kpis | dict(row["quality"])


def episode_seed(line_seed: int, part: int, cell_id: str) -> int:
    """The seed of a part's episode: distinct for every (line seed, part, cell) of a line
    (the cell's id picks one of 1000 offsets), above the certification and eval ranges."""
    return SEED_BASE + (line_seed * MAX_PARTS + part) * 1000 + zlib.crc32(cell_id.encode()) % 1000


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
