"""The release ledger: append-only, hash-chained events behind one small storage interface.

Every entry is one :class:`Event` (CERTIFIED, RELEASED, REJECTED or DISPUTED for a contract
milestone). Each carries ``prev_hash``, the hash of the entry before it, and ``row_hash``, the
sha256 of its own canonical JSON (every field but ``row_hash``), so editing, deleting or
reordering any entry breaks the chain at that point; :meth:`Ledger.verify` finds the first
broken link. The chain logic lives here, once; a storage backend only has to offer an
exclusive transaction, ordered reads and inserts (:class:`LedgerStore`). SQLite is the
embedded default (:mod:`robocell.eval.release.store_sqlite`); :func:`open_ledger` picks the backend
from a path or URL.

Exactly once: :meth:`Ledger.record` runs the caller's decision and its inserts inside one
exclusive transaction, so two processes cannot both see "not released yet"; the store also
refuses a second RELEASED entry for a milestone by itself (a UNIQUE index in SQLite).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from robocell.errors import RobocellError, VerificationError
from robocell.util import canonical_json, sha256_bytes

EventKind = Literal["CERTIFIED", "RELEASED", "REJECTED", "DISPUTED"]
EVENT_KINDS: tuple[str, ...] = ("CERTIFIED", "RELEASED", "REJECTED", "DISPUTED")
#: ``prev_hash`` of the first entry.
GENESIS_HASH = "0" * 64
#: Where ``--ledger`` points when it is not given.
DEFAULT_LEDGER = "ledger.sqlite"
T = TypeVar("T")


class LedgerConflict(VerificationError):
    """The store refused an entry that would break an invariant (a second RELEASED)."""


@dataclass(frozen=True)
class Draft:
    """An event before it has a place in the chain."""

    kind: EventKind
    contract_id: str
    milestone_id: str
    certificate_sha256: str | None
    recorded_at: str
    """ISO 8601 UTC, e.g. ``2025-01-10T09:00:00Z`` (see :func:`format_time`)."""
    body: dict[str, Any] = field(default_factory=dict)
    """Details; amounts are decimal strings, never floats (floats are refused)."""


@dataclass(frozen=True)
class Event(Draft):
    """An entry of the ledger: a draft plus its position and its links in the chain."""

    seq: int = 0
    prev_hash: str = GENESIS_HASH
    row_hash: str = ""

    def chained_fields(self) -> dict[str, Any]:
        """Everything the row hash covers: all fields but ``row_hash`` itself."""
        return {
            "seq": self.seq,
            "kind": self.kind,
            "contract_id": self.contract_id,
            "milestone_id": self.milestone_id,
            "certificate_sha256": self.certificate_sha256,
            "recorded_at": self.recorded_at,
            "body": self.body,
            "prev_hash": self.prev_hash,
        }

    def computed_hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`chained_fields`."""
        return sha256_bytes(canonical_json(self.chained_fields()))

    def to_record(self) -> dict[str, Any]:
        """Column values for a store: the body as canonical JSON text."""
        record = self.chained_fields()
        record["body"] = canonical_json(self.body).decode()
        record["row_hash"] = self.row_hash
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Event:
        """Rebuild an event from a store's column values; ValueError when malformed."""
        try:
            body = json.loads(record["body"])
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"body is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise ValueError("body is not a JSON object")
        return cls(
            kind=record["kind"],
            contract_id=record["contract_id"],
            milestone_id=record["milestone_id"],
            certificate_sha256=record["certificate_sha256"],
            recorded_at=record["recorded_at"],
            body=body,
            seq=record["seq"],
            prev_hash=record["prev_hash"],
            row_hash=record["row_hash"],
        )


def chain(previous: Event | None, draft: Draft) -> Event:
    """Place ``draft`` after ``previous`` (None: first entry) and seal it with its hash."""
    if draft.kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {draft.kind!r}")
    _refuse_floats(draft.body, "body")
    unsealed = Event(
        **{name: getattr(draft, name) for name in Draft.__dataclass_fields__},
        seq=previous.seq + 1 if previous else 1,
        prev_hash=previous.row_hash if previous else GENESIS_HASH,
    )
    return replace(unsealed, row_hash=unsealed.computed_hash())


def _refuse_floats(value: Any, path: str) -> None:
    # Money must never pass through binary floating point on its way into the ledger.
    if isinstance(value, float):
        raise TypeError(f"{path} is a float; store amounts and figures as decimal strings")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_floats(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse_floats(item, f"{path}[{index}]")


class LedgerTransaction(Protocol):
    """What a decision sees inside the store's exclusive write transaction."""

    def head(self) -> Event | None:
        """The last entry, or None for an empty ledger."""

    def history(self, contract_id: str, milestone_id: str) -> list[Event]:
        """The milestone's entries in chain order."""

    def insert(self, event: Event) -> None:
        """Append one sealed event; raises LedgerConflict when an invariant forbids it."""


class LedgerStore(Protocol):
    """The storage a :class:`Ledger` needs; a server database implements the same five calls.

    ``transaction`` must exclude every other writer from its first read to its commit (SQLite:
    ``BEGIN IMMEDIATE``; PostgreSQL: ``LOCK TABLE events IN EXCLUSIVE MODE``), and ``insert``
    must refuse a second RELEASED entry per milestone by itself (a partial UNIQUE index).
    """

    location: str

    def transaction(self) -> AbstractContextManager[LedgerTransaction]:
        """An exclusive write transaction: all of its inserts commit together or not at all."""

    def records(self) -> Iterator[dict[str, Any]]:
        """Every stored row as column values (body as text), in sequence order."""

    def history(self, contract_id: str, milestone_id: str) -> list[Event]:
        """A read-only snapshot of one milestone's entries in chain order."""

    def issued_count(self) -> int:
        """The highest sequence number ever issued, even if its row has since gone."""

    def close(self) -> None:
        """Release the connection."""


@dataclass(frozen=True)
class ChainReport:
    """The outcome of walking the chain: entry count, head hash and the first broken link."""

    entries: int
    head_hash: str
    problem: str | None = None
    broken_seq: int | None = None

    @property
    def ok(self) -> bool:
        """True when every link holds."""
        return self.problem is None


class Ledger:
    """The hash-chained event log over any :class:`LedgerStore`."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    def record(
        self,
        contract_id: str,
        milestone_id: str,
        decide: Callable[[list[Event], Event | None], tuple[list[Draft], T]],
    ) -> T:
        """Run ``decide(history, head)`` and append the drafts it returns, in one transaction.

        ``decide`` sees the milestone's entries and the ledger head while holding the write
        lock, so check-then-append is atomic across processes. If it raises, nothing is written.
        """
        with self.store.transaction() as txn:
            head = txn.head()
            drafts, result = decide(txn.history(contract_id, milestone_id), head)
            for draft in drafts:
                head = chain(head, draft)
                txn.insert(head)
        return result

    def history(self, contract_id: str, milestone_id: str) -> list[Event]:
        """The milestone's entries in chain order (a snapshot; decide inside :meth:`record`)."""
        return self.store.history(contract_id, milestone_id)

    def events(self) -> list[Event]:
        """Every entry in chain order; a malformed row is a VerificationError."""
        events = []
        for record in self.store.records():
            try:
                events.append(Event.from_record(record))
            except (ValueError, KeyError) as exc:
                raise VerificationError(
                    f"ledger entry {record.get('seq')} is malformed ({exc}); "
                    "run `robocell ledger verify`"
                ) from None
        return events

    def verify(self, anchor: str | None = None) -> ChainReport:
        """Walk the chain; ``anchor`` is a head hash published earlier that must still be in it."""
        return verify_records(self.store.records(), self.store.issued_count(), anchor)

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def verify_records(
    records: Iterable[dict[str, Any]], issued_count: int, anchor: str | None = None
) -> ChainReport:
    """Check every link, hash and invariant in order; report the first broken one."""
    rows = list(records)
    walk = _ChainWalk({row.get("row_hash"): row.get("seq") for row in rows})
    for record in rows:
        problem = walk.step(record)
        if problem:
            return ChainReport(walk.count, walk.head_hash, problem, walk.expected_seq)
    if issued_count > walk.count:
        missing = f"{walk.count + 1}" + (
            f"..{issued_count}" if issued_count > walk.count + 1 else ""
        )
        problem = f"entry {missing} is missing: deleted from the end of the ledger"
        return ChainReport(walk.count, walk.head_hash, problem, walk.count + 1)
    if anchor is not None and anchor not in walk.hashes:
        problem = f"anchor {anchor} is not in the chain: entries were removed or rewritten"
        return ChainReport(walk.count, walk.head_hash, problem)
    return ChainReport(walk.count, walk.head_hash)


class _ChainWalk:
    """State of a walk along the chain: one :meth:`step` per stored row."""

    def __init__(self, stored_hashes: dict[Any, Any]) -> None:
        self.stored_hashes = stored_hashes
        self.count = 0
        self.head_hash = GENESIS_HASH
        self.head_time = ""
        self.hashes: dict[str, int] = {}
        self.released: set[tuple[str, str]] = set()
        self.certified: set[tuple[str, str, str | None]] = set()

    @property
    def expected_seq(self) -> int:
        return self.count + 1

    def step(self, record: dict[str, Any]) -> str | None:
        """Check one row; return the problem, or None and advance."""
        where = _describe(record)
        problem = self._link_problem(record, where)
        if problem:
            return problem
        try:
            event = Event.from_record(record)
        except (ValueError, KeyError) as exc:
            return f"{where} was edited: {exc}"
        if event.computed_hash() != event.row_hash:
            return f"{where} was edited: its content does not match its hash"
        problem = self._invariant_problem(event, where)
        if problem:
            return problem
        self.count += 1
        self.head_hash, self.head_time = event.row_hash, event.recorded_at
        self.hashes[event.row_hash] = event.seq
        return None

    def _link_problem(self, record: dict[str, Any], where: str) -> str | None:
        seq = record.get("seq")
        if seq != self.expected_seq:
            if isinstance(seq, int) and seq > self.expected_seq:
                last = f"..{seq - 1}" if seq - 1 > self.expected_seq else ""
                return f"entry {self.expected_seq}{last} is missing (deleted) before {where}"
            return f"{where} has sequence number {seq!r}, expected {self.expected_seq}"
        prev_hash = record.get("prev_hash")
        if prev_hash == self.head_hash:
            return None
        if prev_hash in self.stored_hashes:
            return (
                f"{where} is out of order: it follows entry {self.stored_hashes[prev_hash]}, "
                f"not entry {self.count} (reordered)"
            )
        return (
            f"{where} does not link to entry {self.count}: "
            f"an entry before it was edited, replaced or deleted"
        )

    def _invariant_problem(self, event: Event, where: str) -> str | None:
        if event.kind not in EVENT_KINDS:
            return f"{where} has unknown kind {event.kind!r}"
        if event.recorded_at < self.head_time:
            return f"{where} is dated {event.recorded_at}, before entry {self.count}"
        milestone = (event.contract_id, event.milestone_id)
        if event.kind == "CERTIFIED":
            self.certified.add((*milestone, event.certificate_sha256))
        elif event.kind == "RELEASED":
            if milestone in self.released:
                return f"{where} is a second release of the milestone"
            if (*milestone, event.certificate_sha256) not in self.certified:
                return f"{where} releases a certificate that was never recorded as CERTIFIED"
            self.released.add(milestone)
        return None


def _describe(record: dict[str, Any]) -> str:
    return (
        f"entry {record.get('seq')!r} ({record.get('kind')} "
        f"{record.get('contract_id')}/{record.get('milestone_id')})"
    )


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second: the ledger's one time format."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Read an ISO 8601 time; a time without a zone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RobocellError(f"not an ISO 8601 time: {text!r} (e.g. 2025-01-10T09:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def event_time(now: datetime | None, head: Event | None) -> str:
    """The time of a new entry: ``now`` (or the clock), never before the ledger's last entry."""
    if now is None:
        # The clock is read under the write lock; max() guards against a clock stepped back.
        stamp = format_time(datetime.now(timezone.utc))
        return max(stamp, head.recorded_at) if head else stamp
    stamp = format_time(now)
    if head and stamp < head.recorded_at:
        raise RobocellError(
            f"--now {stamp} is before the ledger's last entry ({head.recorded_at}); "
            "ledger time only moves forward"
        )
    return stamp


def open_ledger(url: str | Path | None = None, create: bool = True) -> Ledger:
    """Open the ledger at a path or URL (``sqlite:///rel.db``, ``sqlite:////abs.db``).

    ``create=False`` refuses a missing ledger instead of creating one (for show and verify).
    """
    from robocell.eval.release.store_sqlite import SqliteStore

    text = str(url if url is not None else DEFAULT_LEDGER)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return Ledger(SqliteStore(Path(text), create=create))
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise RobocellError(f"ledger URL {text!r}: expected sqlite:///PATH")
        return Ledger(SqliteStore(Path(rest[1:]), create=create))
    raise RobocellError(f"ledger URL {text!r}: no backend for {scheme!r} (available: sqlite)")
