"""Payment release under attack: an edited ledger, a decision time off the clock, a reused
seed, a symlinked bundle file, an instruction file that cannot be written.

Each test is one way a dishonest supplier or a careless operator could get a milestone paid
twice or too early; the certificates come from the session fixture ``certified``.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from releasetools import MASTER_SEED, Certified, kinds, release_cli, write_contract

from robocell import util
from robocell.cli import main
from robocell.eval import seeds
from robocell.eval.release.clock import TEST_CLOCK_ENV, format_time
from robocell.eval.release.ledger import open_ledger
from robocell.eval.release.release import idempotency_key
from robocell.util import sha256_file


@pytest.fixture(autouse=True)
def real_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's setting: no test clock."""
    monkeypatch.delenv(TEST_CLOCK_ENV, raising=False)


def _delete_behind_the_triggers(ledger: Path, kind: str) -> None:
    conn = sqlite3.connect(ledger)
    conn.execute("DROP TRIGGER events_append_only_delete")
    conn.execute("DELETE FROM events WHERE kind = ?", (kind,))
    conn.commit()
    conn.close()


def _instruction(tmp: Path) -> dict:
    return json.loads((tmp / "payment.json").read_text())


# ---------------------------------------------------------------- an edited ledger
def test_release_refuses_to_extend_a_ledger_whose_released_row_was_deleted(
    tmp_path: Path, certified: Certified, capsys: pytest.CaptureFixture
) -> None:
    contract = write_contract(tmp_path, certified)
    assert release_cli(certified.passed, contract, certified.scripted, tmp_path) == 0
    first = (tmp_path / "payment.json").read_bytes()
    _delete_behind_the_triggers(tmp_path / "ledger.sqlite", "RELEASED")
    capsys.readouterr()
    assert release_cli(certified.passed_again, contract, certified.scripted, tmp_path) == 6
    err = capsys.readouterr().err
    assert "chain is broken" in err and "entry 2 is missing" in err and "Traceback" not in err
    assert release_cli(certified.passed, contract, certified.scripted, tmp_path) == 6
    assert (tmp_path / "payment.json").read_bytes() == first
    with open_ledger(tmp_path / "ledger.sqlite") as ledger:
        assert [e.kind for e in ledger.events()] == ["CERTIFIED"]  # nothing was appended


def test_a_second_instruction_for_a_milestone_carries_the_same_idempotency_key(
    tmp_path: Path, certified: Certified
) -> None:
    """Two ledgers (say, one restored from a backup taken before the release) each pay once:
    the payment system sees the same key twice and pays once."""
    contract = write_contract(tmp_path, certified)
    keys = []
    for name, cert in [("a", certified.passed), ("b", certified.passed_again)]:
        assert release_cli(cert, contract, certified.scripted, tmp_path / name) == 0
        keys.append(_instruction(tmp_path / name)["idempotency_key"])
    assert keys[0] == keys[1] == idempotency_key("ACME-WELD-7", "M1")


# ---------------------------------------------------------------- the decision time
def _hours_from_now(hours: float) -> str:
    return format_time(datetime.now(timezone.utc) + timedelta(hours=hours))


def test_now_ahead_of_the_clock_cannot_skip_the_dispute_window(
    tmp_path: Path, certified: Certified, capsys: pytest.CaptureFixture
) -> None:
    contract = write_contract(tmp_path, certified, dispute_window_hours=72)
    args = (certified.passed, contract, certified.scripted, tmp_path)
    assert release_cli(*args) == 3  # CERTIFIED now, the window open for 72 h
    assert release_cli(*args, "--now", _hours_from_now(72)) == 2
    assert "from the system clock" in capsys.readouterr().err
    assert kinds(tmp_path) == ["CERTIFIED"] and not (tmp_path / "payment.json").exists()


def test_a_backdated_certification_cannot_skip_the_dispute_window(
    tmp_path: Path, certified: Certified, capsys: pytest.CaptureFixture
) -> None:
    contract = write_contract(tmp_path, certified, dispute_window_hours=72)
    args = (certified.passed, contract, certified.scripted, tmp_path)
    assert release_cli(*args, "--now", _hours_from_now(-80)) == 2
    assert "from the system clock" in capsys.readouterr().err
    assert kinds(tmp_path) == []
    assert release_cli(*args) == 3  # dated back, the window would have closed already
    assert kinds(tmp_path) == ["CERTIFIED"] and not (tmp_path / "payment.json").exists()


def test_now_within_the_skew_is_accepted(tmp_path: Path, certified: Certified) -> None:
    contract = write_contract(tmp_path, certified)
    nudged = _hours_from_now(1 / 60)
    args = (certified.passed, contract, certified.scripted, tmp_path)
    assert release_cli(*args, "--now", nudged) == 0
    assert _instruction(tmp_path)["released_at"] == nudged


def test_a_ledger_dated_in_the_future_is_not_extended(
    tmp_path: Path, certified: Certified, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    contract = write_contract(tmp_path, certified, dispute_window_hours=72)
    args = (certified.passed, contract, certified.scripted, tmp_path)
    ahead = _hours_from_now(30 * 24)
    monkeypatch.setenv(TEST_CLOCK_ENV, "1")
    assert release_cli(*args, "--now", ahead) == 3
    monkeypatch.delenv(TEST_CLOCK_ENV)
    capsys.readouterr()
    assert release_cli(*args) == 2
    assert "in the future of the system clock" in capsys.readouterr().err
    assert kinds(tmp_path) == ["CERTIFIED"]


# ---------------------------------------------------------------- a revealed seed
def test_a_seed_revealed_by_a_failed_certificate_cannot_be_paid(
    tmp_path: Path, certified: Certified, capsys: pytest.CaptureFixture
) -> None:
    """``failed`` and ``passed`` were certified on the same master seed: once the FAILED
    certificate revealed it, a certificate on it proves nothing."""
    contract = write_contract(tmp_path, certified)
    assert release_cli(certified.failed, contract, certified.random, tmp_path) == 1
    capsys.readouterr()
    assert release_cli(certified.passed, contract, certified.scripted, tmp_path) == 1
    assert "was already revealed by certificate" in capsys.readouterr().err
    assert kinds(tmp_path) == ["REJECTED", "REJECTED"]
    assert sha256_file(certified.failed) in _reasons(tmp_path)[-1]
    assert not (tmp_path / "payment.json").exists()


def _reasons(tmp: Path) -> list[str]:
    with open_ledger(tmp / "ledger.sqlite") as ledger:
        return [event.body["reason"] for event in ledger.events()]


def test_a_contract_pre_commits_one_seed_per_attempt(tmp_path: Path, certified: Certified) -> None:
    commitments = [seeds.commitment("ab" * 32), seeds.commitment(MASTER_SEED)]
    contract = write_contract(tmp_path, certified, seed_commitment=commitments)
    assert release_cli(certified.passed, contract, certified.scripted, tmp_path) == 0
    assert kinds(tmp_path) == ["CERTIFIED", "RELEASED"]


def test_contract_new_takes_a_commitment_per_attempt(tmp_path: Path, certified: Certified) -> None:
    out = tmp_path / "contract.yaml"
    argv = ["contract", "new", "--contract-id", "C1", "--milestone-id", "M1", "--buyer", "B"]
    argv += ["--buyer-account", "DE1", "--supplier", "S", "--supplier-account", "GB1"]
    argv += ["--amount", "10.00", "--currency", "EUR", "--benchmark", "weld"]
    argv += ["--certifier-key", str(certified.pub), "-o", str(out)]
    first, second = seeds.commitment("ab" * 32), seeds.commitment("cd" * 32)
    assert main([*argv, "--commitment", first, "--commitment", second.upper()]) == 0
    assert f"- {first}\n- {second}\n" in out.read_text()


# ---------------------------------------------------------------- the bundle and the output
def test_a_symlinked_policy_file_is_refused(tmp_path: Path, certified: Certified, capsys) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "policy.onnx").symlink_to(certified.scripted / "policy.onnx")
    (bundle / "manifest.json").write_bytes((certified.scripted / "manifest.json").read_bytes())
    contract = write_contract(tmp_path, certified)
    assert release_cli(certified.passed, contract, bundle, tmp_path) == 1
    assert "no regular file policy.onnx" in capsys.readouterr().err
    assert kinds(tmp_path) == ["REJECTED"] and not (tmp_path / "payment.json").exists()


@pytest.mark.parametrize("where", ["a-directory", "under-a-file"])
def test_an_unwritable_instruction_path_is_refused_before_anything_is_recorded(
    tmp_path: Path, certified: Certified, capsys: pytest.CaptureFixture, where: str
) -> None:
    contract = write_contract(tmp_path, certified)
    (tmp_path / "file").write_text("x")
    out = tmp_path / "out" if where == "a-directory" else tmp_path / "file" / "payment.json"
    (tmp_path / "out").mkdir()
    argv = ["release", str(certified.passed), "--contract", str(contract)]
    argv += ["--bundle", str(certified.scripted), "--ledger", str(tmp_path / "ledger.sqlite")]
    assert main([*argv, "-o", str(out)]) == 2
    assert f"-o {out}" in capsys.readouterr().err
    assert kinds(tmp_path) == []


def test_an_instruction_that_cannot_be_written_after_the_release_is_not_a_rejection(
    tmp_path: Path, certified: Certified, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract = write_contract(tmp_path, certified)
    args = (certified.passed, contract, certified.scripted, tmp_path)

    def disk_full(path: Path, obj: object) -> None:
        raise OSError(28, "No space left on device")

    write_json = util.atomic_write_json
    monkeypatch.setattr(util, "atomic_write_json", disk_full)
    assert release_cli(*args) == 5
    err = capsys.readouterr().err
    assert "is recorded in the ledger" in err and "No space left on device" in err
    assert kinds(tmp_path) == ["CERTIFIED", "RELEASED"]
    monkeypatch.setattr(util, "atomic_write_json", write_json)
    assert release_cli(*args) == 0  # the same instruction, written now
    assert _instruction(tmp_path)["amount"] == "12500.10"
