"""``robocell telemetry verify|show|export``: read a line's telemetry store.

Exit codes: 0 done (``verify``: every chain holds), 1 a chain does not verify, 2 bad input
(an existing output without ``--force``, an unknown output format), 7 no store at that path
or URL, or a server that does not answer (nothing is created).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

from robocell.cli_helpers import positive_int
from robocell.errors import RobocellError, VerificationError
from robocell.line.telemetry.chain import ROW_COLUMNS

#: Columns of ``show`` (beyond line, cell and part), in order.
SHOW_COLUMNS = (
    "success",
    "energy_j",
    "co2e_g",
    "cycle_time_s",
    "calibration_version",
    "sim_time_s",
)
#: Columns of ``export`` before the flattened ``quality.*`` and ``conditions.*``: the rows
#: table's, less the batch number and the two mappings.
EXPORT_COLUMNS = tuple(c for c in ROW_COLUMNS if c not in ("seq", "quality", "conditions"))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``robocell telemetry`` and its actions to the CLI."""
    telemetry = subparsers.add_parser("telemetry", help="verify, show or export line telemetry")
    actions = telemetry.add_subparsers(dest="telemetry_command", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="walk every chain; report the first break of each")
    _store_argument(verify)
    verify.add_argument(
        "--pubkey",
        action="append",
        default=[],
        metavar="CELL=PEM",
        help="check CELL's batches with this public key, not the registered "
        "one (repeat per cell; given any, every cell needs one)",
    )
    verify.set_defaults(func=_verify)

    show = actions.add_parser("show", help="print rows as a table")
    _store_argument(show)
    _filter_arguments(show)
    show.add_argument("--last", type=positive_int, metavar="N", help="only the last N rows")
    show.add_argument("--json", action="store_true", help="one JSON object per row")
    show.set_defaults(func=_show)

    export = actions.add_parser("export", help="write rows to CSV or Parquet, one per part")
    _store_argument(export)
    _filter_arguments(export)
    export.add_argument("-o", "--output", required=True, help="FILE.csv or FILE.parquet")
    export.add_argument("--force", action="store_true", help="replace an existing output")
    export.set_defaults(func=_export)


def _store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL", help="a path, sqlite:///PATH or postgresql://...")


def _filter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--line", help="only this line")
    parser.add_argument("--cell", help="only this cell")


def _verify(args: argparse.Namespace) -> int:
    from robocell.line.telemetry.store import open_telemetry, verify_telemetry

    public_keys = _public_keys(args.pubkey) if args.pubkey else None
    with open_telemetry(args.url, create=False) as store:
        reports = verify_telemetry(store, public_keys)
    for report in reports:
        print(report.describe())
    if not reports:
        print(f"{args.url}: no chains")
    broken = [report for report in reports if not report.ok]
    if broken:
        raise VerificationError(f"{len(broken)} of {len(reports)} chains do not verify")
    return 0


def _public_keys(specs: list[str]) -> dict[str, Any]:
    from robocell.eval.keys import load_public_key

    keys = {}
    for spec in specs:
        cell, sep, path = spec.partition("=")
        if not sep or not cell or not path:
            raise RobocellError(f"--pubkey {spec!r}: expected CELL=PEM")
        keys[cell] = load_public_key(path)
    return keys


def _show(args: argparse.Namespace) -> int:
    from robocell.line.telemetry.store import open_telemetry

    with open_telemetry(args.url, create=False) as store:
        rows = store.rows(line=args.line, cell=args.cell)
    if args.last:
        rows = rows[-args.last :]
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return 0
    print(_table(rows))
    return 0


def _table(rows: list[dict[str, Any]]) -> str:
    header = ("line", "cell", "part", *SHOW_COLUMNS)
    cells = [header, *([_show_value(row[name]) for name in header] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = ("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells)
    return "\n".join(line.rstrip() for line in lines)


def _show_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _export(args: argparse.Namespace) -> int:
    from robocell.line.telemetry.store import open_telemetry
    from robocell.util import atomic_write_bytes

    output = Path(args.output)
    encode = _encoder(output)
    if output.exists() and not args.force:
        raise RobocellError(f"{output}: already exists (pass --force to replace it)")
    with open_telemetry(args.url, create=False) as store:
        rows = store.rows(line=args.line, cell=args.cell)
    records, columns = flatten(rows)
    atomic_write_bytes(output, encode(records, columns), mode=0o644)
    print(f"{output}: {len(records)} rows, {len(columns)} columns")
    return 0


def flatten(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """One flat record per part (``quality.<name>``, ``conditions.<name>``) and the columns:
    the fixed ones first, then every figure name any row has, sorted."""
    records = []
    for row in rows:
        record = {name: row[name] for name in EXPORT_COLUMNS}
        for group in ("quality", "conditions"):
            record.update({f"{group}.{name}": value for name, value in row[group].items()})
        records.append(record)
    extra = sorted({name for record in records for name in record} - set(EXPORT_COLUMNS))
    return records, [*EXPORT_COLUMNS, *extra]


def _encoder(output: Path) -> Any:
    suffix = output.suffix.lower()
    if suffix == ".csv":
        return _csv_bytes
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise RobocellError(
                f"{output}: Parquet export needs pyarrow (pip install pyarrow); or write .csv"
            ) from None
        return _parquet_bytes
    raise RobocellError(f"{output}: unknown export format {suffix!r} (use .csv or .parquet)")


def _csv_bytes(records: list[dict[str, Any]], columns: list[str]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return text.getvalue().encode()


def _parquet_bytes(records: list[dict[str, Any]], columns: list[str]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({name: [record.get(name) for record in records] for name in columns})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()
