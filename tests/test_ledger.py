"""The release ledger: hash chain, append-only storage, exactly-once under races and crashes."""

from __future__ import annotations

import multiprocessing
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from robocell.cli import main
from robocell.errors import RobocellError
from robocell.eval.release.clock import MAX_CLOCK_SKEW_S, TEST_CLOCK_ENV, event_time
from robocell.eval.release.ledger import (
    GENESIS_HASH,
    Draft,
    EventKind,
    LedgerBroken,
    LedgerConflict,
    chain,
    open_ledger,
)

CERT = "c" * 64
T0 = "2025-01-10T09:00:00Z"
RACERS = 6


def _draft(kind: EventKind = "CERTIFIED", milestone: str = "M1", body: dict | None = None) -> Draft:
    return Draft(kind, "ACME-1", milestone, CERT, T0, body if body is not None else {"n": "1"})


def _append(path: Path, *drafts: Draft) -> None:
    with open_ledger(path) as ledger:
        ledger.record("ACME-1", "M1", lambda history, head: (list(drafts), None))


def _three_entries(path: Path) -> None:
    _append(path, _draft("CERTIFIED", body={"amount": "10.00"}))
    _append(path, _draft("DISPUTED", body={"reason": "late", "certificates": [CERT]}))
    _append(path, _draft("REJECTED", body={"reason": "forged"}))


def _tamper(path: Path, *statements: str) -> None:
    # A determined editor: drop the append-only triggers, then change rows by hand.
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_append_only_update")
    conn.execute("DROP TRIGGER events_append_only_delete")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def _rows(path: Path) -> list[dict]:
    with open_ledger(path, create=False) as ledger:
        return list(ledger.store.records())


def _robocell(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "robocell", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _verify(path: Path):
    with open_ledger(path, create=False) as ledger:
        return ledger.verify()


def test_entries_chain_by_hash(tmp_path):
    path = tmp_path / "ledger.sqlite"
    _three_entries(path)
    with open_ledger(path) as ledger:
        events = ledger.events()
        report = ledger.verify()
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in events[1:]] == [e.row_hash for e in events[:-1]]
    assert all(e.row_hash == e.computed_hash() for e in events)
    assert report.ok and report.entries == 3 and report.head_hash == events[-1].row_hash


def test_failing_decision_writes_nothing(tmp_path):
    path = tmp_path / "ledger.sqlite"

    def decide(history, head):
        raise RobocellError("changed my mind")

    with open_ledger(path) as ledger:
        with pytest.raises(RobocellError, match="changed my mind"):
            ledger.record("ACME-1", "M1", decide)
        assert ledger.events() == []


def test_second_release_of_a_milestone_is_refused_by_the_store(tmp_path):
    path = tmp_path / "ledger.sqlite"
    _append(path, _draft("CERTIFIED"), _draft("RELEASED"))
    with pytest.raises(LedgerConflict, match="RELEASED"):
        # Both drafts are refused together: the CERTIFIED before it is rolled back too.
        _append(path, _draft("CERTIFIED"), _draft("RELEASED"))
    _append(path, _draft("CERTIFIED", milestone="M2"), _draft("RELEASED", milestone="M2"))
    with open_ledger(path) as ledger:
        kinds = [(e.kind, e.milestone_id) for e in ledger.events()]
        assert ledger.verify().ok
    assert kinds == [
        ("CERTIFIED", "M1"),
        ("RELEASED", "M1"),
        ("CERTIFIED", "M2"),
        ("RELEASED", "M2"),
    ]


def test_amounts_stay_exact_decimal_strings(tmp_path):
    path = tmp_path / "ledger.sqlite"
    amounts = ["0.10", "12345678901234567890.01", "0.00000001", "100"]
    _append(path, *(_draft(body={"amount": a}) for a in amounts))
    with open_ledger(path) as ledger:
        stored = [e.body["amount"] for e in ledger.events()]
    assert stored == amounts
    assert sum(map(Decimal, stored)) == Decimal("12345678901234567990.11000001")
    raw = sqlite3.connect(path).execute("SELECT body FROM events WHERE seq = 1").fetchone()[0]
    assert raw == '{"amount":"0.10"}'


@pytest.mark.parametrize("amount", [0.1, Decimal("0.1")], ids=["float", "decimal-object"])
def test_amounts_that_are_not_strings_are_refused(tmp_path, amount):
    with pytest.raises(TypeError):
        _append(tmp_path / "ledger.sqlite", _draft(body={"lines": [{"amount": amount}]}))


def test_time_never_goes_backwards(monkeypatch):
    monkeypatch.setenv(TEST_CLOCK_ENV, "1")
    head = chain(None, _draft())
    later = datetime(2025, 1, 11, tzinfo=timezone.utc)
    assert event_time(later, head) == "2025-01-11T00:00:00Z"
    with pytest.raises(RobocellError, match="before the ledger's last entry"):
        event_time(datetime(2025, 1, 9, tzinfo=timezone.utc), head)


@pytest.mark.parametrize("seconds", [MAX_CLOCK_SKEW_S + 5, -MAX_CLOCK_SKEW_S - 5])
def test_a_decision_time_off_the_clock_needs_the_test_clock(monkeypatch, seconds):
    monkeypatch.delenv(TEST_CLOCK_ENV, raising=False)
    moved = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    with pytest.raises(RobocellError, match=f"more than {MAX_CLOCK_SKEW_S} s from the system"):
        event_time(moved, None)
    monkeypatch.setenv(TEST_CLOCK_ENV, "1")
    assert event_time(moved, None) == moved.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_rows_cannot_be_updated_or_deleted(tmp_path):
    path = tmp_path / "ledger.sqlite"
    _three_entries(path)
    conn = sqlite3.connect(path)
    for statement in ("UPDATE events SET body = '{}' WHERE seq = 1", "DELETE FROM events"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(statement)
    conn.close()
    assert _verify(path).ok


@pytest.mark.parametrize(
    ("statements", "broken_seq", "message"),
    [
        (
            ['UPDATE events SET body = \'{"amount":"99999.00"}\' WHERE seq = 1'],
            1,
            r"entry 1 \(CERTIFIED ACME-1/M1\) was edited",
        ),
        (["UPDATE events SET body = 'not json' WHERE seq = 2"], 2, "entry 2 .* was edited"),
        (["DELETE FROM events WHERE seq = 2"], 2, r"entry 2 is missing \(deleted\) before entry 3"),
        (["DELETE FROM events WHERE seq = 3"], 3, "entry 3 is missing: deleted from the end"),
        (
            [
                "UPDATE events SET seq = 99 WHERE seq = 2",
                "UPDATE events SET seq = 2 WHERE seq = 3",
                "UPDATE events SET seq = 3 WHERE seq = 99",
            ],
            2,
            r"entry 2 \(REJECTED .*\) is out of order: it follows entry 3, not entry 1",
        ),
    ],
    ids=["edited-amount", "edited-not-json", "deleted-middle", "deleted-last", "reordered"],
)
def test_verify_names_the_first_broken_link(tmp_path, statements, broken_seq, message):
    path = tmp_path / "ledger.sqlite"
    _three_entries(path)
    _tamper(path, *statements)
    report = _verify(path)
    assert not report.ok
    assert report.broken_seq == broken_seq
    assert report.problem is not None
    assert re.search(message, report.problem), report.problem


def test_edit_with_a_recomputed_hash_breaks_the_next_link(tmp_path):
    path = tmp_path / "ledger.sqlite"
    _three_entries(path)
    with open_ledger(path) as ledger:
        first = ledger.events()[0]
    forged = replace(first, body={"amount": "99999.00"})
    forged = replace(forged, row_hash=forged.computed_hash())
    _tamper(
        path,
        f"UPDATE events SET body = '{{\"amount\":\"99999.00\"}}', row_hash = '{forged.row_hash}' "
        "WHERE seq = 1",
    )
    report = _verify(path)
    assert report.broken_seq == 2
    assert "entry 2 (DISPUTED ACME-1/M1) does not link to entry 1" in (report.problem or "")


def test_anchor_catches_a_rewritten_tail(tmp_path):
    path = tmp_path / "ledger.sqlite"
    _three_entries(path)
    anchor = _verify(path).head_hash
    # Deleting the last row and its sequence high-water mark hides it from the chain alone.
    _tamper(
        path,
        "DELETE FROM events WHERE seq = 3",
        "UPDATE sqlite_sequence SET seq = 2 WHERE name = 'events'",
    )
    assert _verify(path).ok
    with open_ledger(path, create=False) as ledger:
        report = ledger.verify(anchor=anchor)
    assert not report.ok and "anchor" in (report.problem or "")


def test_cli_ledger_verify_fails_naming_the_edited_row(tmp_path, capsys):
    path = tmp_path / "ledger.sqlite"
    _three_entries(path)
    assert main(["ledger", "verify", "--ledger", str(path)]) == 0
    assert "chain intact, 3 entries" in capsys.readouterr().out
    _tamper(path, "UPDATE events SET recorded_at = '2025-01-10T10:00:00Z' WHERE seq = 2")
    result = subprocess.run(
        [sys.executable, "-m", "robocell", "ledger", "verify", "--ledger", f"sqlite:///{path}"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "entry 2 (DISPUTED ACME-1/M1) was edited" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_ledger_show_lists_entries(tmp_path, capsys):
    path = tmp_path / "ledger.sqlite"
    _three_entries(path)
    assert main(["ledger", "show", "--ledger", str(path)]) == 0
    out = capsys.readouterr().out
    assert "CERTIFIED" in out and "DISPUTED" in out and "forged" in out
    assert "3 entries; head" in out


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


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM events WHERE kind = 'RELEASED'",
        "DELETE FROM events WHERE seq = 1",
        'UPDATE events SET body = \'{"amount":"1.00"}\' WHERE seq = 1',
    ],
    ids=["deleted-last", "deleted-first", "edited"],
)
def test_a_write_never_extends_a_broken_chain(tmp_path, statement):
    """Edited behind the triggers, the ledger must not take a new entry (a second release
    would then verify as intact)."""
    path = tmp_path / "ledger.sqlite"
    _append(path, _draft("CERTIFIED", body={"amount": "10.00"}), _draft("RELEASED"))
    _tamper(path, statement)
    before = _rows(path)
    with pytest.raises(LedgerBroken, match=r"chain is broken .* nothing was written"):
        _append(path, _draft("CERTIFIED", body={"amount": "10.00"}), _draft("RELEASED"))
    assert _rows(path) == before


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


@pytest.mark.parametrize("where", ["a-directory", "under-a-file"])
def test_a_ledger_path_that_cannot_be_a_file_is_a_clear_error(tmp_path, where):
    (tmp_path / "file").write_text("x")
    path = tmp_path if where == "a-directory" else tmp_path / "file" / "ledger.sqlite"
    show = _robocell("ledger", "show", "--ledger", str(path))
    dispute = _robocell("dispute", "C", "M", "--reason", "x", "--ledger", str(path))
    for run in (show, dispute):
        assert run.returncode == 2, run.stderr
        assert str(path) in run.stderr and "Traceback" not in run.stderr


def _race_worker(path: str, barrier, results, unconditional: bool) -> None:
    """One process racing to release milestone M1; reports what it managed to do."""

    def decide(history, head):
        if not unconditional and any(e.kind == "RELEASED" for e in history):
            return [], "saw-released"
        return [_draft("CERTIFIED"), _draft("RELEASED")], "released"

    with open_ledger(path) as ledger:
        barrier.wait()
        try:
            results.put(ledger.record("ACME-1", "M1", decide))
        except LedgerConflict:
            results.put("conflict")


@pytest.mark.parametrize("unconditional", [False, True], ids=["checked", "store-alone"])
def test_racing_processes_release_once(tmp_path, unconditional):
    """Processes race; "store-alone" skips the check, so only the UNIQUE index stops them."""
    path = str(tmp_path / "ledger.sqlite")
    open_ledger(path).close()
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(RACERS), context.Queue()
    workers = [
        context.Process(target=_race_worker, args=(path, barrier, results, unconditional))
        for _ in range(RACERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    outcomes = Counter(results.get(timeout=5) for _ in workers)
    loser = "conflict" if unconditional else "saw-released"
    assert outcomes == {"released": 1, loser: RACERS - 1}
    with open_ledger(path) as ledger:
        assert [e.kind for e in ledger.events()] == ["CERTIFIED", "RELEASED"]
        assert ledger.verify().ok


_CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from robocell.eval.release import store_sqlite as ledger_sqlite
    from robocell.eval.release.ledger import Draft, open_ledger

    original = ledger_sqlite._SqliteTransaction.insert

    def insert_then_die(self, event):
        original(self, event)
        if event.kind == "RELEASED":
            if sys.argv[2] == "exit":
                os._exit(9)
            print("inserted", flush=True)
            time.sleep(120)

    ledger_sqlite._SqliteTransaction.insert = insert_then_die
    drafts = [
        Draft(kind, "ACME-1", "M1", "c" * 64, "2025-01-10T09:00:00Z", {"amount": "10.00"})
        for kind in ("CERTIFIED", "RELEASED")
    ]
    with open_ledger(sys.argv[1]) as ledger:
        ledger.record("ACME-1", "M1", lambda history, head: (drafts, None))
    """
)


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_crash_inside_the_transaction_leaves_no_partial_entry(tmp_path, how):
    path = tmp_path / "ledger.sqlite"
    _append(path, _draft("REJECTED", body={"reason": "earlier"}))
    command = [sys.executable, "-c", _CRASH_SCRIPT, str(path), how]
    if how == "exit":
        assert subprocess.run(command, timeout=60).returncode == 9
    else:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None and process.stdout.readline() == "inserted\n"
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    # The killed process held the write lock with two uncommitted rows in its journal.
    with open_ledger(path) as ledger:
        assert [e.kind for e in ledger.events()] == ["REJECTED"]
        assert ledger.verify().ok
    _append(path, _draft("CERTIFIED"), _draft("RELEASED"))
    with open_ledger(path) as ledger:
        assert [e.seq for e in ledger.events()] == [1, 2, 3]
        assert ledger.verify().ok
