"""One control cycle of a robocell bundle with onnxruntime and numpy alone.

    python docs/examples/control_cycle.py models/weld [--fail FIELD]

Reads the manifest, builds the observation vector in the manifest's order and units from
named sensor readings, runs the graph, checks the ``fault`` output and turns the action into
physical commands (``output × scale`` in ``unit``). ``read_sensors`` stands in for the
controller's own inputs: here each field reads the middle of its range; ``--fail FIELD``
makes that sensor return NaN, as a failed one would.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort


def read_sensors(fields: list[dict], failed: str | None) -> dict[str, float]:
    """The controller's readings by field name, in the manifest's units."""
    return {
        f["name"]: float("nan") if f["name"] == failed else 0.5 * (f["low"] + f["high"])
        for f in fields
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--fail", metavar="FIELD", help="this sensor returns NaN")
    args = parser.parse_args()

    # 1. Read the manifest (once, at start-up) and open the graph with one thread.
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(args.bundle / "policy.onnx"), options, providers=["CPUExecutionProvider"]
    )
    (entry,) = manifest["observation"]  # one vector input, "obs", for weld and peg
    action_spec = manifest["action"]

    # 2. Build the observation vector in the manifest's field order; batch of one row.
    readings = read_sensors(entry["fields"], args.fail)
    obs = np.array([[readings[f["name"]] for f in entry["fields"]]], dtype=np.float32)

    # 3. Run: the graph returns the action and a fault flag per row.
    action, fault = session.run([action_spec["name"], manifest["fault"]["name"]], {"obs": obs})

    # 4. Check fault: the action is then the cell's safe action; raise an alarm.
    if fault[0]:
        print(f"FAULT: non-finite input; safe action: {action_spec['safe_action_description']}")

    # 5. Apply the action in physical units: output × scale, in each field's unit.
    for value, field in zip(action[0], action_spec["fields"], strict=True):
        print(f"{field['name']} = {value * field['scale']:.4g} {field['unit']}")


if __name__ == "__main__":
    main()
