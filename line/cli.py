"""``robocell line run``, ``robocell line report`` and ``robocell calibrate``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from robocell.cli_helpers import positive_int
from robocell.errors import RobocellError
from robocell.executor import add_executor_arguments, options_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``line`` (run, report) and ``calibrate`` to the CLI."""
    line = subparsers.add_parser("line", help="run a production line; report on it")
    line_sub = line.add_subparsers(dest="line_command", metavar="SUBCOMMAND")
    line_sub.required = True
    run = line_sub.add_parser("run", help="run a line file's cells part after part")
    run.add_argument("line_file", help="a line file (configs/lines/*.yaml)")
    run.add_argument("--parts", type=positive_int, help="parts per cell (default: the file's)")
    run.add_argument(
        "--telemetry", metavar="URL", help="telemetry store (default: OUT/telemetry.sqlite)"
    )
    run.add_argument("-o", "--out", type=Path, help="output folder (default: runs/lines/<line>)")
    run.add_argument("--resume", action="store_true", help="continue the line's chains")
    run.add_argument(
        "--calibration",
        choices=("auto", "off"),
        help="override every cell's calibration setting (off: alarms only, to see the loss)",
    )
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_executor_arguments(run)
    run.set_defaults(func=_run)
    report = line_sub.add_parser("report", help="write a line's HTML report from its telemetry")
    report.add_argument("telemetry", metavar="URL", help="telemetry store (path or URL)")
    report.add_argument("-o", "--output", type=Path, required=True, help="HTML file to write")
    report.add_argument("--force", action="store_true", help="replace an existing file")
    report.set_defaults(func=_report)
    calibrate = subparsers.add_parser(
        "calibrate", help="run a line cell's calibration routine in its plant, on demand"
    )
    calibrate.add_argument("line_file", help="the line file naming the cell")
    calibrate.add_argument("--cell", required=True, help="the cell's id in the line file")
    calibrate.add_argument(
        "-o", "--out", type=Path, help="the line's output folder (default: runs/lines/<line>)"
    )
    calibrate.add_argument(
        "--telemetry", metavar="URL", help="telemetry store (default: OUT/telemetry.sqlite)"
    )
    calibrate.set_defaults(func=_calibrate)


def _run(args: argparse.Namespace) -> int:
    from robocell.line.linefile import load_line
    from robocell.line.runtime import run_line

    line = load_line(args.line_file)
    if args.calibration is not None:
        cells = [dataclasses.replace(cell, calibration=args.calibration) for cell in line.cells]
        line = dataclasses.replace(line, cells=cells)
    out = args.out or Path("runs") / "lines" / line.line
    summary = run_line(line, out, args.telemetry, options_from_args(args), args.parts,
                       args.resume, progress=not args.no_progress)  # fmt: skip
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return 0
    for cell, kpis in summary["cells"].items():
        print(
            f"{cell}: {kpis['parts']} parts, success {kpis['success_rate']:.3f} "
            f"(CP lower {kpis['success_cp_lower']:.3f}), {kpis['energy_j_per_part']:.0f} J/part, "
            f"{kpis['cycle_time_s']:.1f} s/part"
        )
    for event in summary["events"]:
        if event["type"] not in ("deployment", "resume"):
            print(f"  part {event['part']}: {event['cell']} {event['type']} "
                  f"{json.dumps(event['data'], sort_keys=True)}")  # fmt: skip
    print(f"summary: {out / 'summary.json'}   telemetry: {summary['telemetry']}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from robocell.line.report import render_line_report
    from robocell.line.telemetry import open_telemetry, verify_telemetry
    from robocell.util import atomic_write_bytes

    if args.output.exists() and not args.force:
        raise RobocellError(f"{args.output}: exists (pass --force to replace it)")
    with open_telemetry(args.telemetry, create=False) as store:
        chains = verify_telemetry(store)
        html = render_line_report(store.rows(), store.events(), chains)
    atomic_write_bytes(args.output, html.encode(), mode=0o644)
    broken = [c for c in chains if not c.ok]
    print(f"wrote {args.output} ({len(chains)} chain(s), {len(broken)} broken)")
    for chain in broken:
        print(f"  {chain.line}/{chain.cell}: {chain.problem}", file=sys.stderr)
    return 1 if broken else 0


def _calibrate(args: argparse.Namespace) -> int:
    from robocell.line.linefile import load_line
    from robocell.line.runtime import calibrate_on_demand

    line = load_line(args.line_file)
    cell = next((c for c in line.cells if c.id == args.cell), None)
    if cell is None:
        known = ", ".join(c.id for c in line.cells)
        raise RobocellError(f"{args.line_file}: no cell {args.cell!r} (cells: {known})")
    out = args.out or Path("runs") / "lines" / line.line
    event = calibrate_on_demand(line, cell, out, args.telemetry)
    data = event["data"]
    print(f"{cell.id}: calibration version {data['version']} ({data['method']}) at part "
          f"{event['part']}: error before {data['error_before']}, after {data['error_after']}; "
          f"{data['duration_s']:.1f} s, {data['energy_j']:.0f} J")  # fmt: skip
    return 0
