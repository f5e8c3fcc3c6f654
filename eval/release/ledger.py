"""The release ledger: append-only, hash-chained events behind one small storage interface.

Every entry is one :class:`~robocell.eval.release.events.Event` (CERTIFIED, RELEASED, REJECTED
or DISPUTED for a contract milestone), linked to the one before by hash. The chain logic lives
in :mod:`.events` and :mod:`.chain`, once; a storage backend only has to offer an exclusive
transaction, ordered reads and inserts (:class:`LedgerStore`). SQLite is the embedded default
(:mod:`robocell.eval.release.store_sqlite`), PostgreSQL the server backend
(:mod:`robocell.eval.release.store_postgres`); :func:`open_ledger` picks one from a path or URL.

Exactly once: :meth:`Ledger.record` runs the caller's decision and its inserts inside one
exclusive transaction, so two processes cannot both see "not released yet"; the decision sees
the whole ledger, so one certificate or one seed pays at most one milestone in it, ever; and
the store refuses a second RELEASED entry for a milestone, or for a certificate, by itself
(UNIQUE indexes). Before it writes,
it walks the whole chain and refuses to extend a broken one, so a row deleted or edited behind
the store's back cannot be papered over by the next entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from robocell.dbstore import (
    WRITE_ATTEMPTS,
    StoreUnavailable,
    TransientConflict,
    parse_url,
    retry_transient,
)
from robocell.errors import VerificationError
from robocell.eval.release.chain import ChainReport, verify_records
from robocell.eval.release.events import GENESIS_HASH, Draft, Event, EventKind, chain

__all__ = [
    "DEFAULT_LEDGER",
    "GENESIS_HASH",
    "LEDGER_FORMAT",
    "WRITE_ATTEMPTS",
    "ChainReport",
    "Draft",
    "Event",
    "EventKind",
    "Ledger",
    "LedgerBroken",
    "LedgerConflict",
    "LedgerStore",
    "LedgerTransaction",
    "LedgerUnavailable",
    "TransientConflict",
    "chain",
    "open_ledger",
]

#: Where ``--ledger`` points when it is not given.
DEFAULT_LEDGER = "ledger.sqlite"
#: Written into every store's ``ledger_meta``; a store with another format is refused.
LEDGER_FORMAT = "robocell-ledger/1"
#: The store's own guard of "one certificate, one payment" (the same SQL on every backend).
#: Added after the first ledgers were made: ``ledger init`` on an existing ledger adds it.
CERTIFICATE_INDEX_SQL = """CREATE UNIQUE INDEX IF NOT EXISTS one_release_per_certificate
    ON events (certificate_sha256) WHERE kind = 'RELEASED'"""
T = TypeVar("T")
#: A decision under the write lock: (milestone's history, head, every entry) → (drafts, result).
Decide = Callable[[list[Event], Event | None, list[Event]], tuple[list[Draft], T]]


class LedgerConflict(VerificationError):
    """The store refused an entry that would break an invariant (a second RELEASED)."""


class LedgerBroken(VerificationError):
    """The chain a write would extend is broken: nothing was written."""

    exit_code = 6


class LedgerUnavailable(StoreUnavailable):
    """The store could not be read or written (no such ledger, a read-only file, a full disk,
    a file removed while open, a server error): nothing was recorded."""


class LedgerTransaction(Protocol):
    """What a decision sees inside the store's exclusive write transaction."""

    def head(self) -> Event | None:
        """The last entry, or None for an empty ledger."""

    def records(self) -> Iterator[dict[str, Any]]:
        """Every stored row as column values (body as text), in sequence order."""

    def issued_count(self) -> int:
        """The highest sequence number ever issued, even if its row has since gone."""

    def history(self, contract_id: str, milestone_id: str) -> list[Event]:
        """The milestone's entries in chain order."""

    def insert(self, event: Event) -> None:
        """Append one sealed event; raises LedgerConflict when an invariant forbids it."""


class LedgerStore(Protocol):
    """The storage a :class:`Ledger` needs; every backend implements the same five calls.

    ``transaction`` must exclude every other writer from its first read to its commit (SQLite:
    ``BEGIN IMMEDIATE``; PostgreSQL: ``LOCK TABLE events IN EXCLUSIVE MODE``) and may raise
    :class:`TransientConflict` for a transaction worth running again; ``insert`` must refuse a
    second RELEASED entry per milestone by itself (a partial UNIQUE index).
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


class Ledger:
    """The hash-chained event log over any :class:`LedgerStore`."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    def record(
        self,
        contract_id: str,
        milestone_id: str,
        decide: Decide[T],
    ) -> T:
        """Run ``decide(history, head, events)`` and append the drafts it returns, in one
        transaction.

        ``decide`` sees the milestone's entries, the ledger head and every entry of the ledger
        while holding the write lock, so check-then-append is atomic across processes. If it
        raises, nothing is written.
        The chain is walked first (LedgerBroken if it does not hold). A transaction the store
        aborts as a transient conflict runs again, ``decide`` included.
        """
        return retry_transient(
            lambda: self._record_once(contract_id, milestone_id, decide), self.store.location
        )

    def _record_once(self, contract_id: str, milestone_id: str, decide: Decide[T]) -> T:
        with self.store.transaction() as txn:
            records = list(txn.records())
            self._refuse_broken(verify_records(records, txn.issued_count()))
            events = [Event.from_record(record) for record in records]
            head = txn.head()
            drafts, result = decide(txn.history(contract_id, milestone_id), head, events)
            for draft in drafts:
                head = chain(head, draft)
                txn.insert(head)
        return result

    def check_chain(self) -> None:
        """Raise LedgerBroken unless the whole chain holds (read-only)."""
        self._refuse_broken(self.verify())

    def _refuse_broken(self, report: ChainReport) -> None:
        if not report.ok:
            raise LedgerBroken(
                f"{self.store.location}: the ledger's chain is broken after {report.entries} "
                f"good entries ({report.problem}); nothing was written. Restore the ledger from "
                "a backup and check it with `robocell ledger verify`"
            )

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


def open_ledger(url: str | Path | None = None, create: bool = True) -> Ledger:
    """Open the ledger at a path or URL (``sqlite:///rel.db``, ``sqlite:////abs.db``,
    ``postgresql://user@host:5432/dbname``; ``postgres://`` too).

    ``create=False`` refuses a missing ledger instead of creating one (for show and verify).
    """
    target = parse_url(str(url if url is not None else DEFAULT_LEDGER), "ledger")
    if target.backend == "sqlite":
        from robocell.eval.release.store_sqlite import SqliteStore

        return Ledger(SqliteStore(target.path, create=create))
    from robocell.eval.release.store_postgres import PostgresStore

    return Ledger(PostgresStore(target.url, create=create))
