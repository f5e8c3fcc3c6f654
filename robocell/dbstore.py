"""The database layer shared by the release ledger and line telemetry.

Both keep append-only, hash-chained records in SQLite (the embedded default, a file path) or
PostgreSQL (a ``postgresql://`` URL). What is generic lives here once: telling the two apart from
a path or URL, opening an SQLite file with the settings that make a commit durable, connecting
to PostgreSQL with a serialisable default and a bounded lock wait, and running a write again
when the server aborts it as a transient conflict. The tables, rules and messages that belong
to one store stay with that store.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from robocell.errors import RobocellError

__all__ = [
    "CONNECT_TIMEOUT_S",
    "LOCK_TIMEOUT_S",
    "SQLITE_BUSY_TIMEOUT_S",
    "WRITE_ATTEMPTS",
    "DbTarget",
    "StoreUnavailable",
    "TransientConflict",
    "first_line",
    "import_psycopg",
    "parse_url",
    "postgres_connect",
    "postgres_errors",
    "redacted",
    "retry_transient",
    "sqlite_connect",
    "sqlite_open",
]

#: Seconds an SQLite writer waits for another process's transaction before giving up.
SQLITE_BUSY_TIMEOUT_S = 60.0
#: Seconds a PostgreSQL write waits for another writer's transaction before giving up.
LOCK_TIMEOUT_S = 60
#: Seconds to wait for the PostgreSQL server when connecting.
CONNECT_TIMEOUT_S = 10
#: Tries of a write that the store aborted for a transient conflict (serialisation, deadlock).
WRITE_ATTEMPTS = 8
T = TypeVar("T")


class StoreUnavailable(RobocellError):
    """The store could not be read or written (no such store, a read-only file, a full disk,
    a server that does not answer): nothing was recorded."""

    exit_code = 7


class TransientConflict(RobocellError):
    """The store aborted a write transaction that may succeed when run again (serialisation
    failure, deadlock); :func:`retry_transient` runs the whole write again."""


@dataclass(frozen=True)
class DbTarget:
    """Where a store lives: an SQLite file (``path``) or a PostgreSQL URL (``url``)."""

    backend: str  # "sqlite" or "postgresql"
    path: Path | None = None
    url: str | None = None


def parse_url(text: str, what: str) -> DbTarget:
    """A path or URL as a :class:`DbTarget`: a bare path or ``sqlite:///PATH`` is SQLite,
    ``postgresql://`` (or ``postgres://``) is PostgreSQL. ``what`` names the store in errors."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return DbTarget("sqlite", path=Path(text))
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise RobocellError(f"{what} URL {text!r}: expected sqlite:///PATH")
        return DbTarget("sqlite", path=Path(rest[1:]))
    if scheme in ("postgresql", "postgres"):
        return DbTarget("postgresql", url=text)
    raise RobocellError(
        f"{what} URL {scheme}://…: no backend for {scheme!r} (available: sqlite, postgresql)"
    )


def sqlite_connect(target: str, uri: bool) -> sqlite3.Connection:
    """An SQLite connection for explicit ``BEGIN IMMEDIATE`` writes; raises ``sqlite3.Error``.

    ``isolation_level=None``: no implicit transactions, the store begins and commits itself.
    ``synchronous=FULL`` with the rollback journal makes a commit all-or-nothing across a crash.
    """
    conn = sqlite3.connect(target, uri=uri, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def sqlite_open(
    path: Path,
    create: bool,
    what: str,
    missing: StoreUnavailable,
    folder_error: type[RobocellError],
    error: Callable[[sqlite3.Error], RobocellError],
) -> sqlite3.Connection:
    """Open a store's SQLite file (``what`` names the store in messages).

    With ``create`` its folder and file are made as needed; without, a missing file raises
    ``missing`` and an existing one opens read-write (not read-only: opening must be able to
    roll back a journal left by a crash). A folder that cannot be made raises
    ``folder_error``; an SQLite failure raises ``error(exc)``.
    """
    if path.is_dir():
        raise RobocellError(f"{path}: is a directory; a {what} is a file")
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise folder_error(
                f"{path}: cannot create the {what}'s folder ({exc.strerror})"
            ) from None
        target, uri = str(path), False
    else:
        if not path.is_file():
            raise missing
        target, uri = f"{path.resolve().as_uri()}?mode=rw", True
    try:
        return sqlite_connect(target, uri=uri)
    except sqlite3.Error as exc:
        raise error(exc) from None


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and ``location``."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (server errors run to several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def import_psycopg(what: str) -> Any:
    """The psycopg 3 module, or a clear error naming the extra to install."""
    try:
        import psycopg
    except ImportError:
        raise RobocellError(
            f"a postgresql:// {what} needs psycopg 3: pip install 'robocell[postgres]'"
        ) from None
    return psycopg


def postgres_connect(
    psycopg: Any, url: str, location: str, unavailable: type[StoreUnavailable] = StoreUnavailable
) -> Any:
    """An autocommit, serialisable psycopg connection with dict rows and a bounded lock wait;
    ``psycopg`` is the module from :func:`import_psycopg`. A server that cannot be reached
    raises ``unavailable`` (the calling store's own kind of :class:`StoreUnavailable`)."""
    from psycopg.rows import dict_row

    try:
        conn = psycopg.connect(
            url, autocommit=True, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S
        )
        conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'")
    except psycopg.Error as exc:
        raise unavailable(f"{location}: cannot connect ({first_line(exc)})") from None
    return conn


@contextmanager
def postgres_errors(
    psycopg: Any,
    location: str,
    held: str,
    unavailable: type[StoreUnavailable],
    refused_write: bool = False,
) -> Iterator[None]:
    """PostgreSQL errors as one-line messages: a serialisation failure or deadlock as
    :class:`TransientConflict`, a lock held too long (on ``held``, e.g. "the ledger") and any
    other server error as ``unavailable``; with ``refused_write`` a constraint violation is a
    plain refusal of the write instead."""
    errors = psycopg.errors
    try:
        yield
    except (errors.SerializationFailure, errors.DeadlockDetected) as exc:
        raise TransientConflict(first_line(exc)) from None
    except errors.LockNotAvailable:
        raise unavailable(
            f"{location}: another writer held {held} for over {LOCK_TIMEOUT_S} s"
        ) from None
    except psycopg.Error as exc:
        if refused_write and isinstance(exc, psycopg.IntegrityError):
            raise RobocellError(
                f"{location}: the store refused the write ({first_line(exc)})"
            ) from None
        raise unavailable(f"{location}: database error ({first_line(exc)})") from None


def retry_transient(write: Callable[[], T], location: str, attempts: int = WRITE_ATTEMPTS) -> T:
    """Run ``write()``; when it raises :class:`TransientConflict`, back off and run it again."""
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except TransientConflict as exc:
            if attempt == attempts:
                raise RobocellError(
                    f"{location}: gave up after {attempt} conflicting tries ({exc})"
                ) from None
            time.sleep(random.uniform(0.0, 0.05 * 2**attempt))  # back off, out of step
    raise AssertionError("unreachable")
