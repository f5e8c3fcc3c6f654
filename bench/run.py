"""``make bench``: run every ``bench/bench_*.py`` module's ``run()`` and print one JSON object.

Each module measures one thing (env speed, render rate, inference latency, certification
time, training throughput) and returns a dict of figures; ``python bench/run.py NAME`` runs
only ``bench_NAME``. The object ends with ``summary``: the speed figures as ratios to their
limits, with their targets (``bench/summary.py``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(names: list[str]) -> None:
    """Run the selected benchmark modules (all when ``names`` is empty)."""
    results = {}
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if names and name not in names:
            continue
        module = _load(path.stem)
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        results[name] = module.run()
        print(json.dumps({name: results[name]}, indent=2), file=sys.stderr, flush=True)
    results["summary"] = _load("summary").summarize(results)
    print(json.dumps(results, indent=2, sort_keys=True))


def _load(name: str) -> object:
    """A module of this folder, loaded by path (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    main(sys.argv[1:])
