"""The telemetry store: chains of signed batches over one small backend interface.

:class:`TelemetryStore` holds every query (written once, with ``%(name)s`` parameters that
each backend adapts) and the chain rules; a backend (:mod:`.sqlite`, :mod:`.postgres`) only
opens the database, makes the schema and runs a write transaction that excludes every other
writer of the same chain, or a read snapshot. :class:`ChainWriter` appends one batch per
transaction, so a writer killed at any moment leaves whole batches only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from robocell.dbstore import StoreUnavailable, parse_url, retry_transient
from robocell.errors import RobocellError, VerificationError
from robocell.eval.keys import load_private_key, public_key_fingerprint, public_key_pem
from robocell.line.telemetry.chain import (
    BATCH_COLUMNS,
    EVENT_COLUMNS,
    ROW_COLUMNS,
    ChainRecords,
    ChainReport,
    Head,
    check_name,
    event_from_record,
    event_record,
    normalise_batch,
    row_from_record,
    row_record,
    seal_batch,
    verify_chain,
    walk_chain,
)

#: Written into every store's ``telemetry_meta``; a store with another format is refused.
TELEMETRY_FORMAT = "robocell-telemetry/1"
_CHAIN = "line = %(line)s AND cell = %(cell)s"
_CHAIN_SQL = (
    "SELECT line, cell, public_key_pem, key_fingerprint, batches FROM telemetry_chains "
    f"WHERE {_CHAIN}"
)
_HEAD_SQL = (
    f"SELECT seq, batch_hash, last_part FROM telemetry_batches WHERE {_CHAIN} "
    "ORDER BY seq DESC LIMIT 1"
)
_REGISTER_SQL = (
    "INSERT INTO telemetry_chains (line, cell, public_key_pem, key_fingerprint, batches) "
    "VALUES (%(line)s, %(cell)s, %(public_key_pem)s, %(key_fingerprint)s, 0)"
)
_ISSUE_SQL = f"UPDATE telemetry_chains SET batches = batches + 1 WHERE {_CHAIN}"
_CHAINS_SQL = (
    "SELECT line, cell FROM telemetry_chains UNION SELECT line, cell FROM telemetry_batches "
    "ORDER BY line, cell"
)


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    values = ", ".join(f"%({name})s" for name in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values})"


def _select_sql(table: str, columns: Sequence[str], where: str, order: str) -> str:
    return f"SELECT {', '.join(columns)} FROM {table}{where} ORDER BY {order}"


class TelemetryBroken(VerificationError):
    """The chain a writer would extend does not verify: nothing was written."""

    exit_code = 6


class Session(Protocol):
    """Queries inside one backend transaction; parameters are named (``%(name)s``)."""

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one statement; its rows as dicts (empty for a statement without rows)."""

    def execute_many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        """Run one statement once per parameter set."""


class TelemetryBackend(Protocol):
    """What a :class:`TelemetryStore` needs of a database."""

    location: str

    def write(self, line: str, cell: str) -> AbstractContextManager[Session]:
        """A transaction that no other writer of chain ``(line, cell)`` runs beside; all of it
        commits or none. May raise TransientConflict for one worth running again."""

    def snapshot(self) -> AbstractContextManager[Session]:
        """A read-only transaction that sees one committed state throughout."""

    def close(self) -> None:
        """Release the connection."""


class TelemetryStore:
    """Rows and events of every chain in one store; see :func:`open_telemetry`."""

    def __init__(self, backend: TelemetryBackend) -> None:
        self.backend = backend
        self.location = backend.location

    def open_chain(
        self, line: str, cell: str, private_key: Ed25519PrivateKey | str | Path
    ) -> ChainWriter:
        """A writer of chain ``(line, cell)``, registering ``private_key``'s public key on first
        use. Another key than the registered one, or a chain that does not verify, is refused."""
        check_name(line, "line")
        check_name(cell, "cell")
        if not isinstance(private_key, Ed25519PrivateKey):
            private_key = load_private_key(private_key)
        public_key = private_key.public_key()
        retry_transient(lambda: self._register(line, cell, public_key), self.location)
        with self.backend.snapshot() as session:
            report = verify_chain(_chain_records(session, line, cell), public_key)
        if not report.ok:
            raise TelemetryBroken(
                f"{self.location}: {report.describe()}; refusing to extend it (nothing written)"
            )
        head = Head(report.batches, report.head_hash, report.rows)
        return ChainWriter(self, line, cell, private_key, head)

    def _register(self, line: str, cell: str, public_key: Ed25519PublicKey) -> None:
        fingerprint = public_key_fingerprint(public_key)
        with self.backend.write(line, cell) as session:
            found = session.query(_CHAIN_SQL, {"line": line, "cell": cell})
            if not found:
                pem = public_key_pem(public_key).decode("ascii")
                session.query(
                    _REGISTER_SQL,
                    {
                        "line": line,
                        "cell": cell,
                        "public_key_pem": pem,
                        "key_fingerprint": fingerprint,
                    },
                )
            elif found[0]["key_fingerprint"] != fingerprint:
                raise RobocellError(
                    f"chain {line}/{cell} is registered to the key with fingerprint "
                    f"{found[0]['key_fingerprint']}; this writer's key is {fingerprint}: "
                    "refusing to write (use the cell's own key)"
                )

    def rows(self, line: str | None = None, cell: str | None = None) -> list[dict[str, Any]]:
        """Rows as they were appended, by line, cell and part."""
        where, params = _where(line, cell)
        sql = _select_sql("telemetry_rows", ROW_COLUMNS, where, "line, cell, part")
        with self.backend.snapshot() as session:
            return [row_from_record(record) for record in session.query(sql, params)]

    def events(self, line: str | None = None, cell: str | None = None) -> list[dict[str, Any]]:
        """Events as they were appended (each with its ``line``), in chain order."""
        where, params = _where(line, cell)
        sql = _select_sql("telemetry_events", EVENT_COLUMNS, where, "line, cell, seq, position")
        with self.backend.snapshot() as session:
            return [event_from_record(record) for record in session.query(sql, params)]

    def verified_chain(self, line: str, cell: str, public_key: Ed25519PublicKey) -> VerifiedChain:
        """Chain ``(line, cell)`` walked with ``public_key``, and its rows and events as the
        same snapshot holds them. Raises VerificationError naming the first break (a chain
        signed by another key breaks at its first batch) or a chain that does not exist."""
        with self.backend.snapshot() as session:
            records = _chain_records(session, line, cell)
        if not records.batches:
            raise VerificationError(f"{self.location}: no telemetry chain {line}/{cell}")
        report, hashes = walk_chain(records, public_key)
        if not report.ok:
            raise VerificationError(f"{self.location}: {report.describe()}")
        rows = [row_from_record(record) for record in records.rows]
        events = [event_from_record(record) for record in records.events]
        return VerifiedChain(report, hashes, rows, events)

    def chains(self) -> list[tuple[str, str]]:
        """Every chain ``(line, cell)`` in the store, sorted."""
        with self.backend.snapshot() as session:
            return [(chain["line"], chain["cell"]) for chain in session.query(_CHAINS_SQL)]

    def close(self) -> None:
        """Close the store's connection."""
        self.backend.close()

    def __enter__(self) -> TelemetryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class VerifiedChain:
    """A chain whose every batch verified, with its rows and events in chain order."""

    report: ChainReport
    batch_hashes: list[str]
    """The hash of batch ``n`` is ``batch_hashes[n - 1]``."""
    rows: list[dict[str, Any]]
    """Every row, by part (part ``p`` is ``rows[p]``)."""
    events: list[dict[str, Any]]
    """Every event (each with its ``line``), in chain order."""


def _head(found: list[dict[str, Any]]) -> str:
    return found[0]["batch_hash"] if found else Head().batch_hash


class ChainWriter:
    """Appends batches to one chain; made by :meth:`TelemetryStore.open_chain`."""

    def __init__(
        self,
        store: TelemetryStore,
        line: str,
        cell: str,
        private_key: Ed25519PrivateKey,
        head: Head,
    ) -> None:
        self.store = store
        self.line = line
        self.cell = cell
        self._private_key = private_key
        self._head = head

    @property
    def next_part(self) -> int:
        """Parts recorded so far in this chain: the part number the next row must carry."""
        return self._head.next_part

    @property
    def batches(self) -> int:
        """Batches recorded so far in this chain."""
        return self._head.seq

    def append(
        self, rows: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]] = ()
    ) -> int:
        """Record one batch in one transaction; returns its batch number. A malformed row or
        event, or a part number other than the next ones, is refused with nothing written."""
        clean_rows, clean_events = normalise_batch(
            self.line, self.cell, self.next_part, rows, events
        )
        location = self.store.location
        self._head = retry_transient(lambda: self._append_once(clean_rows, clean_events), location)
        return self._head.seq

    def _append_once(self, rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> Head:
        chain = {"line": self.line, "cell": self.cell}
        with self.store.backend.write(self.line, self.cell) as session:
            found = session.query(_HEAD_SQL, chain)
            stored = found[0]["seq"] if found else 0
            if stored != self._head.seq or _head(found) != self._head.batch_hash:
                raise RobocellError(
                    f"{self.store.location}: chain {self.line}/{self.cell} holds batch {stored}, "
                    f"this writer's last is {self._head.seq}: another writer is extending it"
                )
            batch, head = seal_batch(
                self.line, self.cell, self._head, rows, events, self._private_key
            )
            session.query(_insert_sql("telemetry_batches", BATCH_COLUMNS), batch)
            row_sql = _insert_sql("telemetry_rows", ROW_COLUMNS)
            session.execute_many(row_sql, [row_record(row, head.seq) for row in rows])
            event_sql = _insert_sql("telemetry_events", EVENT_COLUMNS)
            session.execute_many(
                event_sql,
                [event_record(event, self.line, head.seq, i) for i, event in enumerate(events)],
            )
            session.query(_ISSUE_SQL, chain)
        return head


def verify_telemetry(
    store: TelemetryStore, public_keys: Mapping[str, Ed25519PublicKey] | None = None
) -> list[ChainReport]:
    """Walk every chain of ``store``, one report each. Signatures are checked with the key the
    chain registered, or, when ``public_keys`` is given, with ``public_keys[cell]`` (then a
    cell without a key there, or a registered key that differs, fails)."""
    with store.backend.snapshot() as session:
        chains = session.query(_CHAINS_SQL)
        return [_verify_one(session, chain["line"], chain["cell"], public_keys) for chain in chains]


def _verify_one(
    session: Session, line: str, cell: str, public_keys: Mapping[str, Ed25519PublicKey] | None
) -> ChainReport:
    records = _chain_records(session, line, cell)
    found = session.query(_CHAIN_SQL, {"line": line, "cell": cell})
    key, problem = _chain_key(found[0] if found else None, cell, public_keys)
    if key is None:
        return ChainReport(line, cell, 0, 0, problem)
    return verify_chain(records, key)


def _chain_key(
    chain: dict[str, Any] | None, cell: str, public_keys: Mapping[str, Ed25519PublicKey] | None
) -> tuple[Ed25519PublicKey | None, str | None]:
    if chain is None:
        return None, "the chain has batches but no registered key (its record was deleted)"
    try:
        registered = serialization.load_pem_public_key(chain["public_key_pem"].encode())
    except (ValueError, UnsupportedAlgorithm, AttributeError):
        registered = None
    if not isinstance(registered, Ed25519PublicKey):
        return None, "the registered public key is not an Ed25519 PEM key (edited)"
    if public_keys is None:
        return registered, None
    given = public_keys.get(cell)
    if given is None:
        return None, f"no public key was given for cell {cell}"
    if public_key_fingerprint(given) != public_key_fingerprint(registered):
        return None, (
            f"the registered key {public_key_fingerprint(registered)} is not the given key "
            f"{public_key_fingerprint(given)}"
        )
    return given, None


def _chain_records(session: Session, line: str, cell: str) -> ChainRecords:
    chain = {"line": line, "cell": cell}
    where = f" WHERE {_CHAIN}"
    found = session.query(_CHAIN_SQL, chain)

    def select(table: str, columns: Sequence[str], order: str) -> list[dict[str, Any]]:
        return session.query(_select_sql(table, columns, where, order), chain)

    return ChainRecords(
        line,
        cell,
        issued=int(found[0]["batches"]) if found else 0,
        batches=select("telemetry_batches", BATCH_COLUMNS, "seq"),
        rows=select("telemetry_rows", ROW_COLUMNS, "seq, part"),
        events=select("telemetry_events", EVENT_COLUMNS, "seq, position"),
    )


def _where(line: str | None, cell: str | None) -> tuple[str, dict[str, Any]]:
    params = {name: value for name, value in (("line", line), ("cell", cell)) if value is not None}
    if not params:
        return "", params
    return " WHERE " + " AND ".join(f"{name} = %({name})s" for name in params), params


def open_telemetry(url: str | Path, create: bool = True) -> TelemetryStore:
    """Open the telemetry store at a path or URL (``sqlite:///PATH``, ``postgresql://...``).

    ``create=False`` refuses a missing store (:class:`StoreUnavailable`, exit 7) and creates
    nothing; for show, export and verify.
    """
    target = parse_url(str(url), "telemetry store")
    if target.backend == "sqlite":
        from robocell.line.telemetry.sqlite import SqliteBackend

        return TelemetryStore(SqliteBackend(target.path, create=create))
    from robocell.line.telemetry.postgres import PostgresBackend

    return TelemetryStore(PostgresBackend(target.url, create=create))


__all__ = [
    "TELEMETRY_FORMAT",
    "ChainWriter",
    "StoreUnavailable",
    "TelemetryBroken",
    "TelemetryStore",
    "VerifiedChain",
    "open_telemetry",
    "verify_telemetry",
]
