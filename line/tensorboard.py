"""Production KPIs as TensorBoard scalars, written without torch.

:class:`ScalarWriter` writes an event file with TensorBoard's own writer and protobufs, so
``robocell tb OUT`` shows a line's KPIs (tag ``line/<kpi>``, step = part index) beside the
training curves, and the line's process never imports torch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path


class ScalarWriter:
    """Appends scalar summaries to an event file under ``logdir``."""

    def __init__(self, logdir: Path) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        logdir.mkdir(parents=True, exist_ok=True)
        self._writer = EventFileWriter(str(logdir))

    def add(self, step: int, values: Mapping[str, float]) -> None:
        """One event at ``step`` holding ``line/<name>`` for every value."""
        from tensorboard.compat.proto import event_pb2, summary_pb2

        summary = summary_pb2.Summary(
            value=[
                summary_pb2.Summary.Value(tag=f"line/{name}", simple_value=float(value))
                for name, value in values.items()
            ]
        )
        self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    def close(self) -> None:
        self._writer.close()
