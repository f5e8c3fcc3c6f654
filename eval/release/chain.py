"""Walking the ledger's hash chain: every link, hash and invariant in order, first break named.

:func:`verify_records` runs over a store's raw rows, so it also catches rows that no longer
parse; :class:`~robocell.eval.release.ledger.Ledger` runs it before every write and for
``robocell ledger verify``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from robocell.eval.release.events import EVENT_KINDS, GENESIS_HASH, Event


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
