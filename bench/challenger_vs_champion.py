"""Challengers against the champion, paired by seed, from a ``robocell compare -o`` file.

``robocell compare`` pairs every policy with the scripted controller; a learning cycle's
question is each challenger against the champion on the same (drifted) plant. This reads the
episodes that ``compare -o OUT.json`` wrote and prints, per challenger, the paired differences
with the champion (:func:`robocell.train.compare.vs_scripted` with the champion as the
baseline): energy per good part, mean energy and cycle time relative, success absolute, each
with its paired percentile-bootstrap 95 % CI over the seeds.

    .venv/bin/python bench/challenger_vs_champion.py OUT.json CHAMPION_PATH
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from robocell.train.compare import vs_scripted


def main(path: str, champion: str) -> None:
    policies = json.loads(Path(path).read_text())["episodes"]["policies"]
    if champion not in policies:
        sys.exit(f"{path}: no policy {champion!r} (found: {', '.join(policies)})")
    for name, episodes in policies.items():
        if name == champion:
            continue
        print(f"{name} vs {champion}:")
        for figure, row in vs_scripted(episodes, policies[champion]).items():
            low, high = row["ci_low"], row["ci_high"]
            print(f"  {figure:24s} {row['value']:+.3f} [{low:+.3f}, {high:+.3f}]")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
