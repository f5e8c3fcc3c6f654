"""The release ledger on every store: hash chain, append-only, exactly-once under races and
crashes, and no write on a broken chain.

Each test taking ``ledger_backend`` runs twice: on an SQLite file and on a fresh database of a
throwaway PostgreSQL server (``conftest.py``; skipped with the reason where no server binary
is installed).
"""

from __future__ import annotations

import multiprocessing
import re
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

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
RACERS = 8


def _draft(
    kind: EventKind = "CERTIFIED", milestone: str = "M1", body: dict | None = None, cert=CERT
) -> Draft:
    return Draft(kind, "ACME-1", milestone, cert, T0, body if body is not None else {"n": "1"})


def _append(url: str, *drafts: Draft) -> None:
    with open_ledger(url) as ledger:
        ledger.record("ACME-1", "M1", lambda history, head, events: (list(drafts), None))


def _three_entries(url: str) -> None:
    _append(url, _draft("CERTIFIED", body={"amount": "10.00"}))
    _append(url, _draft("DISPUTED", body={"reason": "late", "certificates": [CERT]}))
    _append(url, _draft("REJECTED", body={"reason": "forged"}))


def _verify(url: str, anchor: str | None = None):
    with open_ledger(url, create=False) as ledger:
        return ledger.verify(anchor)


def _kinds(url: str) -> list[str]:
    with open_ledger(url, create=False) as ledger:
        assert ledger.verify().ok
        return [e.kind for e in ledger.events()]


def _rows(url: str) -> list[dict]:
    with open_ledger(url, create=False) as ledger:
        return list(ledger.store.records())


# ---------------------------------------------------------------- the chain
def test_entries_chain_by_hash(ledger_backend):
    _three_entries(ledger_backend.url)
    with open_ledger(ledger_backend.url) as ledger:
        events = ledger.events()
        report = ledger.verify()
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in events[1:]] == [e.row_hash for e in events[:-1]]
    assert all(e.row_hash == e.computed_hash() for e in events)
    assert report.ok and report.entries == 3 and report.head_hash == events[-1].row_hash


def test_failing_decision_writes_nothing(ledger_backend):
    def decide(history, head, events):
        raise RobocellError("changed my mind")

    with open_ledger(ledger_backend.url) as ledger:
        with pytest.raises(RobocellError, match="changed my mind"):
            ledger.record("ACME-1", "M1", decide)
        assert ledger.events() == []


def test_second_release_of_a_milestone_is_refused_by_the_store(ledger_backend):
    url = ledger_backend.url
    _append(url, _draft("CERTIFIED"), _draft("RELEASED"))
    with pytest.raises(LedgerConflict, match="RELEASED"):
        # Both drafts are refused together: the CERTIFIED before it is rolled back too.
        _append(url, _draft("CERTIFIED"), _draft("RELEASED"))
    with pytest.raises(LedgerConflict, match="RELEASED ACME-1/M2"):
        # One certificate, one payment: the store refuses it for another milestone too.
        _append(url, _draft("CERTIFIED", milestone="M2"), _draft("RELEASED", milestone="M2"))
    other = "d" * 64
    _append(
        url,
        _draft("CERTIFIED", milestone="M2", cert=other),
        _draft("RELEASED", milestone="M2", cert=other),
    )
    with open_ledger(url) as ledger:
        kinds = [(e.kind, e.milestone_id) for e in ledger.events()]
        assert ledger.verify().ok
    assert kinds == [
        ("CERTIFIED", "M1"),
        ("RELEASED", "M1"),
        ("CERTIFIED", "M2"),
        ("RELEASED", "M2"),
    ]


def test_amounts_stay_exact_decimal_strings(ledger_backend):
    amounts = ["0.10", "12345678901234567890.01", "0.00000001", "100"]
    _append(ledger_backend.url, *(_draft(body={"amount": a}) for a in amounts))
    with open_ledger(ledger_backend.url) as ledger:
        stored = [e.body["amount"] for e in ledger.events()]
    assert stored == amounts
    assert sum(map(Decimal, stored)) == Decimal("12345678901234567990.11000001")
    assert ledger_backend.query("SELECT body FROM events WHERE seq = 1") == [('{"amount":"0.10"}',)]


@pytest.mark.parametrize("amount", [0.1, Decimal("0.1")], ids=["float", "decimal-object"])
def test_amounts_that_are_not_strings_are_refused(ledger_backend, amount):
    with pytest.raises(TypeError):
        _append(ledger_backend.url, _draft(body={"lines": [{"amount": amount}]}))


# ---------------------------------------------------------------- time
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


# ---------------------------------------------------------------- tampering
def test_rows_cannot_be_updated_or_deleted(ledger_backend):
    _three_entries(ledger_backend.url)
    statements = ["UPDATE events SET body = '{}' WHERE seq = 1", "DELETE FROM events"]
    if ledger_backend.name == "postgresql":
        statements += ["TRUNCATE events", "UPDATE events_issued SET seq = 1"]
    for statement in statements:
        assert re.search("append-only|only grows", ledger_backend.attempt(statement)), statement
    assert _verify(ledger_backend.url).ok


BROKEN_LINKS = [
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
]


@pytest.mark.parametrize(
    ("statements", "broken_seq", "message"),
    BROKEN_LINKS,
    ids=["edited-amount", "edited-not-json", "deleted-middle", "deleted-last", "reordered"],
)
def test_verify_names_the_first_broken_link(ledger_backend, statements, broken_seq, message):
    _three_entries(ledger_backend.url)
    ledger_backend.tamper(*statements)
    report = _verify(ledger_backend.url)
    assert not report.ok
    assert report.broken_seq == broken_seq
    assert report.problem is not None
    assert re.search(message, report.problem), report.problem


def test_edit_with_a_recomputed_hash_breaks_the_next_link(ledger_backend):
    _three_entries(ledger_backend.url)
    with open_ledger(ledger_backend.url) as ledger:
        first = ledger.events()[0]
    forged = replace(first, body={"amount": "99999.00"})
    forged = replace(forged, row_hash=forged.computed_hash())
    ledger_backend.tamper(
        f"UPDATE events SET body = '{{\"amount\":\"99999.00\"}}', row_hash = '{forged.row_hash}' "
        "WHERE seq = 1",
    )
    report = _verify(ledger_backend.url)
    assert report.broken_seq == 2
    assert "entry 2 (DISPUTED ACME-1/M1) does not link to entry 1" in (report.problem or "")


def test_anchor_catches_a_rewritten_tail(ledger_backend):
    _three_entries(ledger_backend.url)
    anchor = _verify(ledger_backend.url).head_hash
    # Deleting the last row and its high-water mark hides it from the chain alone.
    ledger_backend.tamper("DELETE FROM events WHERE seq = 3", ledger_backend.set_issued(2))
    assert _verify(ledger_backend.url).ok
    report = _verify(ledger_backend.url, anchor=anchor)
    assert not report.ok and "anchor" in (report.problem or "")


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM events WHERE kind = 'RELEASED'",
        "DELETE FROM events WHERE seq = 1",
        'UPDATE events SET body = \'{"amount":"1.00"}\' WHERE seq = 1',
    ],
    ids=["deleted-last", "deleted-first", "edited"],
)
def test_a_write_never_extends_a_broken_chain(ledger_backend, statement):
    """Edited behind the triggers, the ledger must not take a new entry (a second release
    would then verify as intact)."""
    url = ledger_backend.url
    _append(url, _draft("CERTIFIED", body={"amount": "10.00"}), _draft("RELEASED"))
    ledger_backend.tamper(statement)
    before = _rows(url)
    with pytest.raises(LedgerBroken, match=r"chain is broken .* nothing was written"):
        _append(url, _draft("CERTIFIED", body={"amount": "10.00"}), _draft("RELEASED"))
    assert _rows(url) == before


# ---------------------------------------------------------------- the CLI
def test_cli_ledger_verify_fails_naming_the_edited_row(ledger_backend, capsys):
    _three_entries(ledger_backend.url)
    assert main(["ledger", "verify", "--ledger", ledger_backend.url]) == 0
    assert "chain intact, 3 entries" in capsys.readouterr().out
    ledger_backend.tamper("UPDATE events SET recorded_at = '2025-01-10T10:00:00Z' WHERE seq = 2")
    result = subprocess.run(
        [sys.executable, "-m", "robocell", "ledger", "verify", "--ledger", ledger_backend.url],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "entry 2 (DISPUTED ACME-1/M1) was edited" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_ledger_show_lists_entries(ledger_backend, capsys):
    _three_entries(ledger_backend.url)
    assert main(["ledger", "show", "--ledger", ledger_backend.url]) == 0
    out = capsys.readouterr().out
    assert "CERTIFIED" in out and "DISPUTED" in out and "forged" in out
    assert "3 entries; head" in out


# ---------------------------------------------------------------- races and crashes
def _race_worker(url: str, barrier, results, unconditional: bool) -> None:
    """One process racing to release milestone M1; reports what it managed to do."""

    def decide(history, head, events):
        if not unconditional and any(e.kind == "RELEASED" for e in history):
            return [], "saw-released"
        return [_draft("CERTIFIED"), _draft("RELEASED")], "released"

    with open_ledger(url) as ledger:
        barrier.wait()
        try:
            results.put(ledger.record("ACME-1", "M1", decide))
        except LedgerConflict:
            results.put("conflict")


@pytest.mark.parametrize("unconditional", [False, True], ids=["checked", "store-alone"])
def test_racing_processes_release_once(ledger_backend, unconditional):
    """Processes race; "store-alone" skips the check, so only the UNIQUE index stops them."""
    url = ledger_backend.url
    open_ledger(url).close()
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(RACERS), context.Queue()
    workers = [
        context.Process(target=_race_worker, args=(url, barrier, results, unconditional))
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
    assert _kinds(url) == ["CERTIFIED", "RELEASED"]


_CRASH_SCRIPT = textwrap.dedent(
    """
    import importlib, os, sys, time
    from robocell.eval.release.ledger import Draft, open_ledger

    url, how, target = sys.argv[1:4]
    module, name = target.split(":")
    transaction = getattr(importlib.import_module(module), name)
    original = transaction.insert

    def insert_then_die(self, event):
        original(self, event)
        if event.kind == "RELEASED":
            if how == "exit":
                os._exit(9)
            print("inserted", flush=True)
            time.sleep(120)

    transaction.insert = insert_then_die
    drafts = [
        Draft(kind, "ACME-1", "M1", "c" * 64, "2025-01-10T09:00:00Z", {"amount": "10.00"})
        for kind in ("CERTIFIED", "RELEASED")
    ]
    with open_ledger(url) as ledger:
        ledger.record("ACME-1", "M1", lambda history, head, events: (drafts, None))
    """
)


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_crash_inside_the_transaction_leaves_no_partial_entry(ledger_backend, how):
    url = ledger_backend.url
    _append(url, _draft("REJECTED", body={"reason": "earlier"}))
    command = [sys.executable, "-c", _CRASH_SCRIPT, url, how, ledger_backend.transaction_module]
    if how == "exit":
        assert subprocess.run(command, timeout=60).returncode == 9
    else:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None and process.stdout.readline() == "inserted\n"
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    # The killed process held the write lock with two uncommitted rows.
    assert _kinds(url) == ["REJECTED"]
    _append(url, _draft("CERTIFIED"), _draft("RELEASED"))
    with open_ledger(url) as ledger:
        assert [e.seq for e in ledger.events()] == [1, 2, 3]
        assert ledger.verify().ok
