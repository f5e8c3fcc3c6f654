"""What each ledger store does with a location it is given: URLs, files and databases that
are not ledgers, unreachable servers, and the retry of a transaction the server aborted."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from ledgertools import PostgresBackend

from robocell.errors import RobocellError
from robocell.eval.release.events import Draft
from robocell.eval.release.ledger import WRITE_ATTEMPTS, open_ledger

CERTIFIED = Draft("CERTIFIED", "ACME-1", "M1", "c" * 64, "2025-01-10T09:00:00Z", {"n": "1"})


def _robocell(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "robocell", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------- SQLite
def test_ledger_urls_and_bad_locations(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_ledger("sqlite:///rel/ledger.sqlite") as ledger:
        assert ledger.store.location == "rel/ledger.sqlite"
    with open_ledger(f"sqlite:///{tmp_path}/abs.sqlite") as ledger:
        assert Path(ledger.store.location) == tmp_path / "abs.sqlite"
    assert (tmp_path / "rel" / "ledger.sqlite").is_file() and (tmp_path / "abs.sqlite").is_file()
    with pytest.raises(RobocellError, match="no backend for 'mysql'"):
        open_ledger("mysql://db.example/ledger")
    with pytest.raises(RobocellError, match="no ledger here"):
        open_ledger(tmp_path / "missing.sqlite", create=False)
    (tmp_path / "notes.txt").write_text("not a database, just text " * 100)
    with pytest.raises(RobocellError, match="not a ledger"):
        open_ledger(tmp_path / "notes.txt")


def test_an_unrelated_sqlite_database_is_not_made_a_ledger(tmp_path):
    path = tmp_path / "finance.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(RobocellError, match=r"other tables \(invoices\), not a ledger"):
        open_ledger(path)
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("invoices",)]


@pytest.mark.parametrize(("where", "code"), [("a-directory", 2), ("under-a-file", 7)])
def test_a_ledger_path_that_cannot_be_a_file_is_a_clear_error(tmp_path, where, code):
    (tmp_path / "file").write_text("x")
    path = tmp_path if where == "a-directory" else tmp_path / "file" / "ledger.sqlite"
    show = _robocell("ledger", "show", "--ledger", str(path))
    dispute = _robocell("dispute", "C", "M", "--reason", "x", "--ledger", str(path))
    for run in (show, dispute):
        assert run.returncode == code, run.stderr
        assert str(path) in run.stderr and "Traceback" not in run.stderr


# ---------------------------------------------------------------- PostgreSQL
@pytest.fixture
def pg_url(postgres) -> str:
    return postgres.new_database()


def test_a_postgres_database_with_a_foreign_events_table_is_refused(pg_url):
    PostgresBackend(pg_url).tamper("CREATE TABLE events (id INTEGER)")
    with pytest.raises(RobocellError, match="has an events table but no ledger"):
        open_ledger(pg_url)
    with pytest.raises(RobocellError, match="no ledger here"):
        open_ledger(pg_url, create=False)


def test_an_unreachable_server_is_a_clear_error_without_the_password(postgres):
    url = f"postgresql://robocell:s3cret@127.0.0.1:{postgres.port + 1}/nowhere"
    result = _robocell("ledger", "verify", "--ledger", url)
    assert result.returncode == 7 and "cannot connect" in result.stderr
    assert "robocell:***@127.0.0.1" in result.stderr and "s3cret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_serialisation_failure_runs_the_decision_again(pg_url):
    calls = []

    with open_ledger(pg_url) as ledger:

        def decide(history, head, events):
            calls.append(len(history))
            if len(calls) == 1:  # what the server raises when two transactions collide
                ledger.store._conn.execute(
                    "DO $$ BEGIN RAISE EXCEPTION 'collision' "
                    "USING ERRCODE = 'serialization_failure'; END $$"
                )
            return [CERTIFIED], "done"

        assert ledger.record("ACME-1", "M1", decide) == "done"
        assert calls == [0, 0] and [e.kind for e in ledger.events()] == ["CERTIFIED"]


def test_a_deadlock_every_time_gives_up_with_a_clear_error(pg_url):
    calls = []

    with open_ledger(pg_url) as ledger:

        def decide(history, head, events):
            calls.append(1)
            ledger.store._conn.execute(
                "DO $$ BEGIN RAISE EXCEPTION 'cycle' USING ERRCODE = 'deadlock_detected'; END $$"
            )
            return [CERTIFIED], None

        with pytest.raises(RobocellError, match=f"gave up after {WRITE_ATTEMPTS} conflicting"):
            ledger.record("ACME-1", "M1", decide)
        assert len(calls) == WRITE_ATTEMPTS and ledger.events() == []
