"""What a telemetry batch is, and walking a chain of them: the rules both backends share.

A chain is one cell on one line, ``(line, cell)``. Each batch holds rows (one per part, parts
numbered from 0 without gaps) and events, and is sealed by a signed statement::

    {"_type", "line", "cell", "seq", "prev_hash", "first_part", "last_part", "rows_sha256"}

``rows_sha256`` is the sha256 of the canonical JSON of ``{"rows": [...], "events": [...]}``,
``prev_hash`` the previous batch's hash (the sha256 of its statement's canonical JSON, all
zeros for the first) and the statement travels in a DSSE envelope signed with the cell's
Ed25519 key. :func:`verify_chain` re-hashes the rows and events as the store holds them now, so
an edited, deleted or reordered row breaks the chain at its batch.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from robocell.errors import RobocellError
from robocell.eval.dsse import open_envelope, sign_envelope
from robocell.util import canonical_json, load_json_strict, sha256_bytes

PAYLOAD_TYPE = "application/vnd.robocell.telemetry-batch+json"
STATEMENT_TYPE = "robocell-telemetry-batch/1"
GENESIS_HASH = "0" * 64
EVENT_TYPES = (
    "deployment",
    "drift_alarm",
    "calibration",
    "learning",
    "twin",
    "certificate",
    "canary",
    "promotion",
    "rollback",
    "resume",
)
#: Columns of the rows table, in this order (``seq`` is the batch the row came in).
ROW_COLUMNS = (
    "line",
    "cell",
    "part",
    "seq",
    "bundle_sha256",
    "calibration_version",
    "sim_time_s",
    "success",
    "energy_j",
    "co2e_g",
    "cycle_time_s",
    "quality",
    "conditions",
)
EVENT_COLUMNS = ("line", "cell", "seq", "position", "type", "part", "data")
ROW_KEYS = frozenset(ROW_COLUMNS) - {"seq"}
EVENT_KEYS = frozenset({"type", "cell", "part", "data"})
_FIGURES = ("sim_time_s", "energy_j", "co2e_g", "cycle_time_s")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Largest part number or calibration version: both stores keep 64-bit integers.
MAX_INT = 2**63 - 1


def check_name(value: Any, what: str) -> str:
    """A line or cell name: letters, digits and ``._:-``, at most 100 characters."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise RobocellError(
            f"{what} {value!r}: expected 1-100 letters, digits or ._:- (starting alphanumeric)"
        )
    return value


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise RobocellError(f"{where}: expected an integer >= 0, got {value!r}")
    return value


def _finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RobocellError(f"{where}: expected a finite number, got {value!r}")
    return float(value) + 0.0  # + 0.0 turns -0.0 into 0.0: SQLite does not keep the sign


def _figures(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise RobocellError(f"{where}: expected a mapping of names to numbers, got {value!r}")
    return {name: _finite(v, f"{where}.{name}") for name, v in sorted(value.items())}


def normalise_row(row: Any, where: str) -> dict[str, Any]:
    """A row with every key checked and each value in the one form that is hashed."""
    if not isinstance(row, dict) or set(row) != ROW_KEYS:
        keys = sorted(row) if isinstance(row, dict) else type(row).__name__
        raise RobocellError(f"{where}: expected exactly the keys {sorted(ROW_KEYS)}, got {keys}")
    if not isinstance(row["bundle_sha256"], str) or not _SHA256.fullmatch(row["bundle_sha256"]):
        raise RobocellError(f"{where}: bundle_sha256 must be 64 lowercase hex digits")
    if not isinstance(row["success"], bool):
        raise RobocellError(f"{where}: success must be true or false, got {row['success']!r}")
    clean = {
        "line": check_name(row["line"], f"{where}: line"),
        "cell": check_name(row["cell"], f"{where}: cell"),
        "part": _count(row["part"], f"{where}: part"),
        "bundle_sha256": row["bundle_sha256"],
        "calibration_version": _count(row["calibration_version"], f"{where}: calibration_version"),
        "success": row["success"],
        "quality": _figures(row["quality"], f"{where}: quality"),
        "conditions": _figures(row["conditions"], f"{where}: conditions"),
    }
    clean.update({name: _finite(row[name], f"{where}: {name}") for name in _FIGURES})
    return clean


def normalise_event(event: Any, where: str) -> dict[str, Any]:
    """An event with every key checked; ``data`` as it reads back from its JSON text."""
    keys = set(event) - {"line"} if isinstance(event, dict) else None
    if keys != EVENT_KEYS:
        found = sorted(event) if isinstance(event, dict) else type(event).__name__
        raise RobocellError(f"{where}: expected the keys {sorted(EVENT_KEYS)}, got {found}")
    if event["type"] not in EVENT_TYPES:
        raise RobocellError(f"{where}: type {event['type']!r} is not one of {list(EVENT_TYPES)}")
    if not isinstance(event["data"], dict):
        raise RobocellError(f"{where}: data must be a JSON object, got {event['data']!r}")
    try:
        text = json.dumps(event["data"], allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise RobocellError(f"{where}: data is not finite JSON ({exc})") from None
    return {
        "type": event["type"],
        "cell": check_name(event["cell"], f"{where}: cell"),
        "part": _count(event["part"], f"{where}: part"),
        "data": load_json_strict(text, f"{where}: data"),
    }


def normalise_batch(
    line: str, cell: str, next_part: int, rows: Iterable[Any], events: Iterable[Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Check a batch for chain ``(line, cell)`` whose first row must be part ``next_part``."""
    rows, events = list(rows), list(events)
    clean_rows = [normalise_row(row, f"row {i}") for i, row in enumerate(rows)]
    clean_events = [normalise_event(event, f"event {i}") for i, event in enumerate(events)]
    for i, row in enumerate(clean_rows):
        if (row["line"], row["cell"]) != (line, cell):
            raise RobocellError(
                f"row {i}: belongs to {row['line']}/{row['cell']}, not {line}/{cell}"
            )
        if row["part"] != next_part + i:
            raise RobocellError(
                f"row {i}: part {row['part']}, expected {next_part + i} "
                f"(parts follow on from {next_part} without gaps or repeats)"
            )
    for i, event in enumerate(events):
        if event["cell"] != cell or event.get("line", line) != line:
            raise RobocellError(f"event {i}: belongs to another chain than {line}/{cell}")
    if not clean_rows and not clean_events:
        raise RobocellError(f"{line}/{cell}: an empty batch (no rows, no events)")
    return clean_rows, clean_events


def content_sha256(rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> str:
    """The digest a batch's statement signs over its rows and events."""
    return sha256_bytes(canonical_json({"events": events, "rows": rows}))


def statement_hash(statement: dict[str, Any]) -> str:
    """A batch's hash: the one the next batch's ``prev_hash`` names."""
    return sha256_bytes(canonical_json(statement))


@dataclass(frozen=True)
class Head:
    """Where a chain ends: the last batch's number and hash, and the next part expected."""

    seq: int = 0
    batch_hash: str = GENESIS_HASH
    next_part: int = 0


def seal_batch(
    line: str,
    cell: str,
    head: Head,
    rows: list[dict[str, Any]],
    events: list[dict[str, Any]],
    private_key: Ed25519PrivateKey,
) -> tuple[dict[str, Any], Head]:
    """The batch record to store after ``head`` (statement columns, hash, envelope text) and
    the chain's head once it is stored."""
    statement = {
        "_type": STATEMENT_TYPE,
        "line": line,
        "cell": cell,
        "seq": head.seq + 1,
        "prev_hash": head.batch_hash,
        "first_part": head.next_part,
        "last_part": head.next_part + len(rows) - 1,
        "rows_sha256": content_sha256(rows, events),
    }
    envelope = sign_envelope(statement, private_key, PAYLOAD_TYPE)
    record = {key: statement[key] for key in _STATEMENT_COLUMNS}
    record.update(batch_hash=statement_hash(statement), envelope=json.dumps(envelope))
    return record, Head(record["seq"], record["batch_hash"], record["last_part"] + 1)


_STATEMENT_COLUMNS = ("line", "cell", "seq", "prev_hash", "first_part", "last_part", "rows_sha256")
BATCH_COLUMNS = (*_STATEMENT_COLUMNS, "batch_hash", "envelope")


def row_record(row: dict[str, Any], seq: int) -> dict[str, Any]:
    """A normalised row as rows-table column values (figures as JSON text)."""
    record = dict(row, seq=seq)
    record["quality"] = json.dumps(row["quality"], sort_keys=True)
    record["conditions"] = json.dumps(row["conditions"], sort_keys=True)
    return record


def row_from_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row back as the dict that was appended; raises RobocellError if malformed."""
    row = {key: record[key] for key in ROW_KEYS}
    where = f"row part {record.get('part')!r}"
    if row["success"] in (0, 1):  # SQLite keeps booleans as 0 and 1
        row["success"] = bool(row["success"])
    for name in ("quality", "conditions"):
        text = row[name]
        row[name] = load_json_strict(text, f"{where}: {name}") if isinstance(text, str) else text
    return normalise_row(row, where)


def event_record(event: dict[str, Any], line: str, seq: int, position: int) -> dict[str, Any]:
    """A normalised event as events-table column values."""
    data = json.dumps(event["data"], sort_keys=True)
    return {"line": line, "seq": seq, "position": position, **event, "data": data}


def event_from_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A stored event back as a dict (its line included); raises RobocellError if malformed."""
    where = f"event {record.get('position')!r} of batch {record.get('seq')!r}"
    text = record["data"]
    data = load_json_strict(text, f"{where}: data") if isinstance(text, str) else text
    event = {key: record[key] for key in ("type", "cell", "part")}
    return {"line": record["line"], **normalise_event(dict(event, data=data), where)}


@dataclass(frozen=True)
class ChainReport:
    """The outcome of walking one chain: what held before the first break, and the break."""

    line: str
    cell: str
    batches: int
    rows: int
    problem: str | None = None
    head_hash: str = GENESIS_HASH

    @property
    def ok(self) -> bool:
        """True when every batch of the chain holds."""
        return self.problem is None

    def describe(self) -> str:
        """One line: ``line/cell: N rows in M batches, chain holds`` or the first break."""
        held = f"{self.rows} rows in {self.batches} batches"
        if self.ok:
            return f"{self.line}/{self.cell}: {held}, chain holds"
        return f"{self.line}/{self.cell}: BROKEN after {held}: {self.problem}"


@dataclass
class ChainRecords:
    """Everything the store holds about one chain, as raw column values."""

    line: str
    cell: str
    issued: int
    batches: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    events: list[dict[str, Any]]


def verify_chain(records: ChainRecords, public_key: Ed25519PublicKey) -> ChainReport:
    """Walk one chain in order and report the first batch that does not hold."""
    return walk_chain(records, public_key)[0]


def walk_chain(
    records: ChainRecords, public_key: Ed25519PublicKey
) -> tuple[ChainReport, list[str]]:
    """:func:`verify_chain`'s report and the hash of every batch that held, in order (the
    hash of batch ``n`` is item ``n - 1``)."""
    walk = _Walk(records, public_key)
    for batch in records.batches:
        problem = walk.step(batch)
        if problem:
            return walk.report(f"batch {walk.head.seq + 1}: {problem}"), walk.hashes
    return walk.report(walk.final_problem()), walk.hashes


class _Walk:
    """The state of a walk along one chain: one :meth:`step` per stored batch."""

    def __init__(self, records: ChainRecords, public_key: Ed25519PublicKey) -> None:
        self.records = records
        self.public_key = public_key
        self.head = Head()
        self.hashes: list[str] = []
        self.rows = 0
        self.rows_by_seq = _grouped(records.rows, "part")
        self.events_by_seq = _grouped(records.events, "position")

    def report(self, problem: str | None) -> ChainReport:
        records = self.records
        head = self.head
        return ChainReport(
            records.line, records.cell, head.seq, self.rows, problem, head.batch_hash
        )

    def step(self, batch: dict[str, Any]) -> str | None:
        """Check one batch; return the problem, or None and advance the head."""
        if batch["seq"] != self.head.seq + 1:
            return f"missing (deleted): the next batch stored is {batch['seq']}"
        try:
            statement = open_envelope(
                load_json_strict(batch["envelope"], "envelope"), self.public_key, PAYLOAD_TYPE
            )
        except RobocellError as exc:
            return f"its signature does not hold ({exc})"
        problem = self._statement_problem(statement, batch) or self._content_problem(statement)
        if problem:
            return problem
        self.rows += statement["last_part"] - statement["first_part"] + 1
        self.head = Head(statement["seq"], statement_hash(statement), statement["last_part"] + 1)
        self.hashes.append(self.head.batch_hash)
        return None

    def _statement_problem(self, statement: dict[str, Any], batch: dict[str, Any]) -> str | None:
        expected = {
            "_type": STATEMENT_TYPE,
            "line": self.records.line,
            "cell": self.records.cell,
            "seq": self.head.seq + 1,
        }
        for key, value in expected.items():
            if statement.get(key) != value:
                return f"the signed statement names {key} {statement.get(key)!r}, not {value!r}"
        if statement.get("prev_hash") != self.head.batch_hash:
            return (
                f"does not link to batch {self.head.seq}: a batch before it was edited, "
                "replaced or deleted"
            )
        if statement.get("first_part") != self.head.next_part:
            return f"starts at part {statement.get('first_part')!r}, expected {self.head.next_part}"
        for key in _STATEMENT_COLUMNS:
            if batch[key] != statement.get(key):
                return f"its {key} column was edited (it is not what was signed)"
        return None

    def _content_problem(self, statement: dict[str, Any]) -> str | None:
        seq, first, last = statement["seq"], statement["first_part"], statement["last_part"]
        stored = self.rows_by_seq.pop(seq, [])
        parts = [record["part"] for record in stored]
        if parts != list(range(first, last + 1)):
            missing = sorted(set(range(first, last + 1)) - set(parts))
            what = f"row part {missing[0]} is missing (deleted)" if missing else "extra rows"
            return f"parts {first}..{last}: {what}; the rows table holds parts {_span(parts)}"
        try:
            rows = [row_from_record(record) for record in stored]
            events = [event_from_record(record) for record in self.events_by_seq.pop(seq, [])]
        except RobocellError as exc:
            return f"{exc} (edited)"
        for event in events:
            del event["line"]
        if content_sha256(rows, events) != statement["rows_sha256"]:
            return (
                f"parts {first}..{last}: the stored rows or events were edited or reordered "
                "(their sha256 is not the signed one)"
            )
        return None

    def final_problem(self) -> str | None:
        """After the last batch: batches deleted from the end, rows left without a batch."""
        first, issued = self.head.seq + 1, self.records.issued
        if issued >= first:
            span = f"{first}..{issued}" if issued > first else f"{first}"
            return f"batch {span} missing: deleted from the end of the chain"
        orphans = sorted({*self.rows_by_seq, *self.events_by_seq})
        if orphans:
            return f"rows or events of batch {orphans[0]} have no batch record"
        return None


def _grouped(records: list[dict[str, Any]], order: str) -> dict[int, list[dict[str, Any]]]:
    groups: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["seq"], []).append(record)
    for group in groups.values():
        group.sort(key=lambda record: record[order])
    return groups


def _span(parts: list[int]) -> str:
    if not parts:
        return "none"
    return f"{parts[0]}..{parts[-1]} ({len(parts)} rows)"
