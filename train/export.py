"""``robocell export RUN``: a training run's checkpoint as a controller bundle.

The run directory is this package's format; the export itself (ONNX tracing, parity and
closed-loop checks) is :func:`robocell.agents.export.export_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robocell.agents.bundle.write import check_bundle_target
from robocell.agents.export import ExportReport, ExportSource, export_model
from robocell.train.rundir import load_run
from robocell.train.vec_env import residual_of


def export_run(
    run_dir: str | Path,
    bundle_dir: str | Path,
    checkpoint: str | Path = "best",
    **options: Any,
) -> ExportReport:
    """Export a run's checkpoint (``best``, ``last`` or a zip path) as a bundle.

    ``options`` go to :func:`export_model` (``parity_observations``, ``closed_loop_episodes``,
    ``overwrite``); either check failing raises RobocellError and writes nothing.
    """
    check_bundle_target(Path(bundle_dir), bool(options.get("overwrite", False)))
    run = load_run(run_dir, checkpoint)
    root = Path(run_dir).resolve()
    path = run.checkpoint_path.resolve()
    name = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
    source = ExportSource(
        run.model,
        run.normalizer,
        run.config.env_id,
        dict(run.config.env_kwargs),
        run.config.algo,
        run.run_id,
        run.config_digest,
        name,
        residual_of(run.config),
    )
    return export_model(source, bundle_dir, **options)
