"""Line telemetry on both stores: round trips, the chain rules, tampering that verify must
catch, concurrent writers, a writer killed mid-batch, and the ``robocell telemetry`` commands."""

from __future__ import annotations

import base64
import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from telemetrytools import Backend

from robocell.cli import main
from robocell.dbstore import StoreUnavailable
from robocell.errors import RobocellError
from robocell.eval.keys import load_private_key, load_public_key, public_key_fingerprint
from robocell.line.telemetry import (
    TelemetryBroken,
    open_telemetry,
    verify_telemetry,
)

LINE, CELL = "line-a", "vision-1"
BATCH = 5


def make_row(line: str, cell: str, part: int) -> dict[str, Any]:
    """A well-formed row for part ``part``."""
    return {
        "line": line,
        "cell": cell,
        "bundle_sha256": "ab" * 32,
        "calibration_version": part // 10,
        "part": part,
        "sim_time_s": 1.25 * part,
        "success": part % 4 != 0,
        "energy_j": 310.5 + part,
        "co2e_g": 0.125 * part,
        "cycle_time_s": 2.5,
        "quality": {"iou": 0.9 - part / 1000},
        "conditions": {"lux": 480.0 + part, "belt_speed": 0.2},
    }


def make_event(part: int, kind: str = "deployment") -> dict[str, Any]:
    return {"type": kind, "cell": CELL, "part": part, "data": {"bundle": "ab" * 32, "n": [1, 2]}}


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def fill(url: str, key: Ed25519PrivateKey, batches: int = 3, line: str = LINE) -> None:
    """``batches`` batches of BATCH rows, the first with a deployment event."""
    with open_telemetry(url) as store:
        writer = store.open_chain(line=line, cell=CELL, private_key=key)
        for i in range(batches):
            rows = [make_row(line, CELL, writer.next_part + j) for j in range(BATCH)]
            writer.append(rows, [make_event(writer.next_part)] if i == 0 else [])


def only_report(url: str, public_keys: dict[str, Any] | None = None) -> Any:
    with open_telemetry(url, create=False) as store:
        (report,) = verify_telemetry(store, public_keys)
    return report


# ---------------------------------------------------------------- writing and reading
def test_rows_and_events_read_back_as_written_and_a_writer_resumes(backend, key):
    fill(backend.url, key)
    with open_telemetry(backend.url) as store:
        assert store.rows() == [make_row(LINE, CELL, part) for part in range(3 * BATCH)]
        assert store.events() == [{"line": LINE, **make_event(0)}]
        assert store.chains() == [(LINE, CELL)]
        writer = store.open_chain(line=LINE, cell=CELL, private_key=key)
        assert (writer.next_part, writer.batches) == (3 * BATCH, 3)
        writer.append([make_row(LINE, CELL, 15)], [make_event(15, "resume")])
        assert store.rows(cell="other") == [] and len(store.rows(line=LINE, cell=CELL)) == 16
    report = only_report(backend.url)
    assert report.ok and (report.batches, report.rows) == (4, 16)
    assert report.describe() == f"{LINE}/{CELL}: 16 rows in 4 batches, chain holds"


def test_reopening_a_chain_with_another_key_names_both_fingerprints(backend, key):
    fill(backend.url, key, batches=1)
    other = Ed25519PrivateKey.generate()
    with open_telemetry(backend.url) as store, pytest.raises(RobocellError) as caught:
        store.open_chain(line=LINE, cell=CELL, private_key=other)
    message = str(caught.value)
    assert f"{LINE}/{CELL}" in message
    assert public_key_fingerprint(key.public_key()) in message
    assert public_key_fingerprint(other.public_key()) in message


def _bad(field: str, value: Any) -> dict[str, Any]:
    return {**make_row(LINE, CELL, 0), field: value}


@pytest.mark.parametrize(
    ("rows", "events", "message"),
    [
        ([_bad("energy_j", float("nan"))], [], "energy_j: expected a finite number"),
        ([_bad("quality", {"iou": float("inf")})], [], r"quality.iou: expected a finite"),
        ([_bad("success", 1)], [], "success must be true or false"),
        ([_bad("bundle_sha256", "XYZ")], [], "bundle_sha256 must be 64"),
        ([_bad("calibration_version", -1)], [], "calibration_version: expected an integer"),
        ([{k: v for k, v in make_row(LINE, CELL, 0).items() if k != "co2e_g"}], [], "keys"),
        ([make_row(LINE, CELL, 1)], [], "part 1, expected 0"),
        ([make_row(LINE, CELL, 0), make_row(LINE, CELL, 0)], [], "part 0, expected 1"),
        ([make_row(LINE, "weld-1", 0)], [], "belongs to line-a/weld-1"),
        ([], [{**make_event(0), "type": "party"}], "type 'party' is not one of"),
        ([], [{**make_event(0), "data": {"x": float("nan")}}], "data is not finite JSON"),
        ([], [], "an empty batch"),
    ],
    ids=[
        "nan",
        "inf-quality",
        "int-success",
        "sha",
        "version",
        "missing-key",
        "gap",
        "repeat",
        "other-cell",
        "event-type",
        "event-nan",
        "empty",
    ],
)
def test_a_malformed_batch_is_refused_with_nothing_written(tmp_path, key, rows, events, message):
    url = str(tmp_path / "t.sqlite")
    with open_telemetry(url) as store:
        writer = store.open_chain(line=LINE, cell=CELL, private_key=key)
        with pytest.raises(RobocellError, match=message):
            writer.append(rows, events)
        assert writer.next_part == 0 and store.rows() == [] and store.events() == []


def test_the_tables_refuse_updates_and_deletes(backend, key):
    fill(backend.url, key, batches=1)
    for statement in (
        "UPDATE telemetry_rows SET energy_j = 0",
        "DELETE FROM telemetry_rows",
        "DELETE FROM telemetry_batches",
        "UPDATE telemetry_events SET data = '{}'",
        "UPDATE telemetry_chains SET batches = 0",
        "DELETE FROM telemetry_chains",
    ):
        error = backend.attempt(statement)
        assert "append-only" in error or "one more batch" in error, statement
    assert only_report(backend.url).ok


# ---------------------------------------------------------------- tampering
def _edited_signature(backend: Backend) -> str:
    with open_telemetry(backend.url) as store, store.backend.snapshot() as session:
        (found,) = session.query("SELECT envelope FROM telemetry_batches WHERE seq = 2")
    envelope = json.loads(found["envelope"])
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[0] ^= 1
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    return f"UPDATE telemetry_batches SET envelope = '{json.dumps(envelope)}' WHERE seq = 2"


TAMPERING = {
    "edited-row": (
        ["UPDATE telemetry_rows SET energy_j = energy_j + 1 WHERE part = 7"],
        "batch 2: parts 5..9: the stored rows or events were edited",
    ),
    "deleted-row": (
        ["DELETE FROM telemetry_rows WHERE part = 7"],
        "batch 2: parts 5..9: row part 7 is missing",
    ),
    "swapped-rows": (
        [
            "UPDATE telemetry_rows SET part = -1 WHERE part = 7",
            "UPDATE telemetry_rows SET part = 7 WHERE part = 8",
            "UPDATE telemetry_rows SET part = 8 WHERE part = -1",
        ],
        "batch 2: parts 5..9: the stored rows or events were edited or reordered",
    ),
    "deleted-batch": (["DELETE FROM telemetry_batches WHERE seq = 2"], "batch 2: missing"),
    "deleted-last-batch": (
        ["DELETE FROM telemetry_batches WHERE seq = 3", "DELETE FROM telemetry_rows WHERE seq = 3"],
        "batch 3 missing: deleted from the end",
    ),
    "edited-event": (["UPDATE telemetry_events SET part = 3"], "batch 1: parts 0..4: the stored"),
    "edited-signature": (None, "batch 2: its signature does not hold"),
    "edited-column": (
        ["UPDATE telemetry_batches SET last_part = 8 WHERE seq = 2"],
        "batch 2: its last_part column was edited",
    ),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_verify_names_the_first_break(backend, key, kind):
    fill(backend.url, key)
    statements, problem = TAMPERING[kind]
    backend.tamper(*(statements or [_edited_signature(backend)]))
    report = only_report(backend.url)
    assert not report.ok
    assert report.problem.startswith(problem), report.problem
    with open_telemetry(backend.url) as store, pytest.raises(TelemetryBroken, match=problem):
        store.open_chain(line=LINE, cell=CELL, private_key=key)


def test_given_public_keys_override_the_registered_one(backend, key):
    fill(backend.url, key, batches=1)
    assert only_report(backend.url, {CELL: key.public_key()}).ok
    other = Ed25519PrivateKey.generate().public_key()
    report = only_report(backend.url, {CELL: other})
    assert not report.ok and public_key_fingerprint(other) in report.problem
    assert "no public key was given for cell" in only_report(backend.url, {"x": other}).problem


# ---------------------------------------------------------------- processes
WRITER = """
import sys
sys.path.insert(0, sys.argv[4])
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from robocell.line.telemetry import open_telemetry
from test_telemetry import CELL, make_row
url, line, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open_telemetry(url) as store:
    writer = store.open_chain(line=line, cell=CELL, private_key=Ed25519PrivateKey.generate())
    done = 0
    while batches < 0 or done < batches:
        writer.append([make_row(line, CELL, writer.next_part + j) for j in range(10)])
        done += 1
        print(done, flush=True)
"""


def _writer(url: str, line: str, batches: int) -> subprocess.Popen[str]:
    tests = str(Path(__file__).parent)
    command = [sys.executable, "-c", WRITER, url, line, str(batches), tests]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_lines_written_at_once_both_verify(backend):
    fill(backend.url, Ed25519PrivateKey.generate(), batches=1, line="line-0")  # schema first
    writers = [_writer(backend.url, line, 25) for line in ("line-a", "line-b")]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    with open_telemetry(backend.url, create=False) as store:
        reports = verify_telemetry(store)
    assert [(r.line, r.ok, r.batches, r.rows) for r in reports] == [
        ("line-0", True, 1, BATCH),
        ("line-a", True, 25, 250),
        ("line-b", True, 25, 250),
    ]


def test_a_writer_killed_mid_batch_leaves_whole_batches(backend):
    fill(backend.url, Ed25519PrivateKey.generate(), batches=1, line="line-0")
    writer = _writer(backend.url, LINE, -1)
    assert writer.stdout is not None
    while int(writer.stdout.readline() or 0) < 20:
        assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""
    time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    writer.stdout.close()
    if writer.stderr:
        writer.stderr.close()
    with open_telemetry(backend.url, create=False) as store:
        report = next(r for r in verify_telemetry(store) if r.line == LINE)
        assert report.ok and report.batches >= 20 and report.rows == 10 * report.batches
        assert len(store.rows(line=LINE)) == report.rows


# ---------------------------------------------------------------- opening
def test_a_missing_store_is_unavailable_and_not_created(tmp_path, postgres):
    with pytest.raises(StoreUnavailable, match="no telemetry store here"):
        open_telemetry(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()
    with pytest.raises(StoreUnavailable, match="no telemetry store here"):
        open_telemetry(postgres.new_database(), create=False)
    unreachable = "postgresql://robocell:secret@127.0.0.1:1/nothing"
    with pytest.raises(StoreUnavailable, match="cannot connect") as caught:
        open_telemetry(unreachable, create=False)
    assert "secret" not in str(caught.value)


def test_a_database_holding_other_tables_is_not_made_a_store(tmp_path):
    path = tmp_path / "ledger.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE events (seq INTEGER)").connection.commit()
    with pytest.raises(RobocellError, match=r"other tables \(events\)"):
        open_telemetry(path)
    with pytest.raises(RobocellError, match="not a telemetry store"):
        open_telemetry(path, create=False)


# ---------------------------------------------------------------- the commands
def test_verify_command_prints_one_line_per_chain_and_exits_by_the_result(backend, key, capsys):
    fill(backend.url, key)
    fill(backend.url, key, batches=1, line="line-b")
    assert main(["telemetry", "verify", backend.url]) == 0
    out = capsys.readouterr().out
    assert f"{LINE}/{CELL}: 15 rows in 3 batches, chain holds" in out
    assert f"line-b/{CELL}: 5 rows in 1 batches, chain holds" in out
    backend.tamper("DELETE FROM telemetry_rows WHERE part = 7 AND line = 'line-a'")
    assert main(["telemetry", "verify", backend.url]) == 1
    captured = capsys.readouterr()
    assert f"{LINE}/{CELL}: BROKEN after 5 rows in 1 batches: batch 2" in captured.out
    assert "line-b/vision-1: 5 rows in 1 batches, chain holds" in captured.out
    assert "1 of 2 chains do not verify" in captured.err


def test_verify_command_with_pubkeys(tmp_path, capsys):
    assert main(["keys", "new", "--cell", CELL, "-o", str(tmp_path / "keys")]) == 0
    key_path, pub_path = (
        tmp_path / "keys" / f"cell-{CELL}.key",
        tmp_path / "keys" / f"cell-{CELL}.pub",
    )
    assert (key_path.stat().st_mode & 0o777) == 0o600 and pub_path.is_file()
    url = str(tmp_path / "t.sqlite")
    fill(url, load_private_key(key_path), batches=2)
    assert load_public_key(pub_path) is not None
    assert main(["telemetry", "verify", url, "--pubkey", f"{CELL}={pub_path}"]) == 0
    assert main(["keys", "new", "--cell", "other", "-o", str(tmp_path / "keys")]) == 0
    other = tmp_path / "keys" / "cell-other.pub"
    assert main(["telemetry", "verify", url, "--pubkey", f"{CELL}={other}"]) == 1
    assert "is not the given key" in capsys.readouterr().out
    assert main(["keys", "new", "--cell", "../x", "-o", str(tmp_path / "keys")]) == 2


@pytest.mark.parametrize("action", ["verify", "show"])
def test_commands_on_a_missing_store_exit_7_and_create_nothing(tmp_path, capsys, action):
    path = tmp_path / "missing.sqlite"
    assert main(["telemetry", action, str(path)]) == 7
    assert "no telemetry store here" in capsys.readouterr().err and not path.exists()
    unreachable = "postgresql://robocell@127.0.0.1:1/nothing"
    assert main(["telemetry", action, unreachable]) == 7


def test_show_command_table_json_and_last(backend, key, capsys):
    fill(backend.url, key)
    assert main(["telemetry", "show", backend.url, "--last", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "line",
        "cell",
        "part",
        "success",
        "energy_j",
        "co2e_g",
        "cycle_time_s",
        "calibration_version",
        "sim_time_s",
    ]
    assert [line.split()[2] for line in lines[1:]] == ["13", "14"]
    assert main(["telemetry", "show", backend.url, "--json", "--cell", CELL]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows == [make_row(LINE, CELL, part) for part in range(15)]


def test_export_command_csv_and_parquet(backend, key, tmp_path, capsys):
    fill(backend.url, key)
    out = tmp_path / "rows.csv"
    assert main(["telemetry", "export", backend.url, "-o", str(out)]) == 0
    with out.open() as handle:
        records = list(csv.DictReader(handle))
    assert len(records) == 15 and records[7]["part"] == "7"
    assert float(records[7]["energy_j"]) == make_row(LINE, CELL, 7)["energy_j"]
    assert float(records[7]["quality.iou"]) == make_row(LINE, CELL, 7)["quality"]["iou"]
    assert float(records[7]["conditions.lux"]) == 487.0
    assert main(["telemetry", "export", backend.url, "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["telemetry", "export", backend.url, "-o", str(out), "--force"]) == 0
    pq = pytest.importorskip("pyarrow.parquet")
    parquet = tmp_path / "rows.parquet"
    assert main(["telemetry", "export", backend.url, "-o", str(parquet), "--line", LINE]) == 0
    table = pq.read_table(parquet).to_pylist()
    assert len(table) == 15 and table[3]["conditions.belt_speed"] == 0.2
    assert table[3]["success"] is True


def test_export_without_pyarrow_or_with_an_unknown_format_is_a_clear_error(
    tmp_path, key, capsys, monkeypatch
):
    url = str(tmp_path / "t.sqlite")
    fill(url, key, batches=1)
    assert main(["telemetry", "export", url, "-o", str(tmp_path / "rows.xlsx")]) == 2
    assert "unknown export format" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert main(["telemetry", "export", url, "-o", str(tmp_path / "rows.parquet")]) == 2
    assert "needs pyarrow" in capsys.readouterr().err
    assert not (tmp_path / "rows.parquet").exists()
