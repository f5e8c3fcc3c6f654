"""False alarms of a cell's drift detectors on its own stationary production.

``python bench/line_false_alarms.py TELEMETRY [--parts 20000] [--repeats 5]``

Reads every chain of a telemetry store written by a stationary ``robocell line run`` (a line
file without a scenario), and measures:

- the false alarms on the recorded parts themselves, with the detectors as the line ran
  them (warm-up, thresholds, a standing alarm cleared as a calibration would clear it);
- the mean parts between false alarms over ``repeats`` streams of ``parts`` parts each,
  drawn with replacement from the recorded parts. The parts of a stationary line are
  independent episodes (each its own seed, the plant unchanged), so a resampled stream is
  a stationary stream of the same cell; the rarest outcomes it can hold are those the
  recording saw.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from robocell.line.detectors import CellDetectors
from robocell.line.linefile import Detectors
from robocell.line.runtime import row_kpis
from robocell.line.telemetry import open_telemetry


def false_alarms(kpis: list[dict[str, float]], settings: Detectors) -> tuple[int, int]:
    """(alarms, watched parts) of one stream; each alarm is cleared at once, as a
    calibration would, so repeated false alarms count."""
    detectors = CellDetectors(list(settings.streams), settings.warmup_parts,
                              settings.false_alarm_parts)  # fmt: skip
    alarms = 0
    for part, values in enumerate(kpis):
        if detectors.update(part, values):
            alarms += 1
            detectors.restart()
    return alarms, max(0, len(kpis) - settings.warmup_parts)


def measure(url: str, parts: int, repeats: int, seed: int = 0) -> dict[str, Any]:
    settings = Detectors()
    results: dict[str, Any] = {}
    with open_telemetry(url, create=False) as store:
        for line, cell in store.chains():
            rows = store.rows(line, cell)
            kpis = [row_kpis(row) for row in rows]
            recorded, watched = false_alarms(kpis, settings)
            rng = np.random.default_rng(seed)
            total_alarms, total_parts = 0, 0
            for _ in range(repeats):
                stream = [kpis[i] for i in rng.integers(0, len(kpis), parts)]
                alarms, count = false_alarms(stream, settings)
                total_alarms, total_parts = total_alarms + alarms, total_parts + count
            results[f"{line}/{cell}"] = {
                "recorded_parts": len(rows),
                "recorded_false_alarms": recorded,
                "recorded_watched_parts": watched,
                "resampled_parts": total_parts,
                "resampled_false_alarms": total_alarms,
                "mean_parts_between_false_alarms": (
                    total_parts / total_alarms if total_alarms else f"> {total_parts}"
                ),
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("telemetry")
    parser.add_argument("--parts", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(measure(args.telemetry, args.parts, args.repeats), indent=2))


if __name__ == "__main__":
    main()
