"""One certificate, one seed, one payment: the ledger-wide rule and the ledger's own failures.

Every case runs on SQLite and on PostgreSQL (``ledger_backend``), through the real CLI. Each one
is a way an attacker or an accident got money out of an earlier robocell: a certificate paid for
several milestones, a seed revealed by a FAILED certificate paid elsewhere, a duplicated key in
a contract, a ledger removed during a release, a failing disk, an ``-o`` that named the contract.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from certtools import certify_quietly, small_weld_spec
from releasetools import EPISODES, MASTER_SEED, Certified, write_contract

from robocell.cli import main
from robocell.eval import seeds
from robocell.eval.release import release as release_module
from robocell.eval.release import store_sqlite
from robocell.eval.release.ledger import open_ledger


def _release(cert: Path, contract: Path, bundle: Path, url: str, out: Path) -> int:
    argv = ["release", str(cert), "--contract", str(contract), "--bundle", str(bundle)]
    return main([*argv, "--ledger", url, "-o", str(out)])


def _kinds(url: str) -> list[tuple[str, str]]:
    with open_ledger(url, create=False) as ledger:
        assert ledger.verify().ok
        return [
            (event.kind, f"{event.contract_id}/{event.milestone_id}") for event in ledger.events()
        ]


@pytest.fixture
def url(ledger_backend) -> str:
    """An initialised, empty ledger on each backend."""
    assert main(["ledger", "init", "--ledger", ledger_backend.url]) == 0
    return ledger_backend.url


def _contract(tmp: Path, certified: Certified, contract_id: str, milestone_id: str) -> Path:
    return write_contract(tmp / contract_id / milestone_id, certified,
                          contract_id=contract_id, milestone_id=milestone_id)  # fmt: skip


def test_one_certificate_pays_one_milestone_in_the_whole_ledger(tmp_path, certified, url, capsys):
    a1 = _contract(tmp_path, certified, "A", "M1")
    assert _release(certified.passed, a1, certified.scripted, url, tmp_path / "a1.json") == 0
    capsys.readouterr()
    for other in (
        _contract(tmp_path, certified, "A", "M2"),
        _contract(tmp_path, certified, "B", "M1"),
    ):
        out = tmp_path / f"{other.parent.parent.name}-{other.parent.name}.json"
        assert _release(certified.passed, other, certified.scripted, url, out) == 1
        assert "already recorded for milestone A/M1" in capsys.readouterr().err
        assert not out.exists()
    released = [k for k in _kinds(url) if k[0] == "RELEASED"]
    assert released == [("RELEASED", "A/M1")]


def test_a_second_certificate_on_a_paid_seed_pays_no_other_milestone(
    tmp_path, certified, url, capsys
):
    """``passed_again`` is another certificate on the same seed, as a certifier without its
    revealed-seed record would sign it; the contract A/M2 names the same commitment."""
    a1 = _contract(tmp_path, certified, "A", "M1")
    assert _release(certified.passed, a1, certified.scripted, url, tmp_path / "a1.json") == 0
    capsys.readouterr()
    a2 = _contract(tmp_path, certified, "A", "M2")
    assert _release(certified.passed_again, a2, certified.scripted, url, tmp_path / "a2.json") == 1
    assert "was already revealed by certificate" in capsys.readouterr().err
    assert [k for k in _kinds(url) if k[0] == "RELEASED"] == [("RELEASED", "A/M1")]


def test_a_seed_a_failed_certificate_revealed_pays_in_no_other_contract(
    tmp_path, certified, url, capsys
):
    a1 = _contract(tmp_path, certified, "A", "M1")
    assert _release(certified.failed, a1, certified.random, url, tmp_path / "a1.json") == 1
    capsys.readouterr()
    b1 = _contract(tmp_path, certified, "B", "M1")
    assert _release(certified.passed, b1, certified.scripted, url, tmp_path / "b1.json") == 1
    assert "was already revealed by certificate" in capsys.readouterr().err
    assert not (tmp_path / "b1.json").exists()
    assert ("RELEASED", "B/M1") not in _kinds(url)


def test_a_contract_whose_commitment_another_milestone_named_is_refused(
    tmp_path, certified, url, capsys
):
    """B/M1 names A/M1's commitment and a fresh one; a certificate on the fresh seed would
    otherwise be paid, while A/M1 already holds the first commitment."""
    a1 = _contract(tmp_path, certified, "A", "M1")
    assert _release(certified.passed, a1, certified.scripted, url, tmp_path / "a1.json") == 0
    fresh = "f00d" * 16
    cert = certify_quietly(
        certified.scripted, small_weld_spec(EPISODES), fresh, certified.key, tmp_path / "fresh"
    )
    both = [seeds.commitment(fresh), seeds.commitment(MASTER_SEED)]
    b1 = write_contract(tmp_path / "B", certified, contract_id="B", seed_commitment=both)
    capsys.readouterr()
    out = tmp_path / "b1.json"
    assert _release(cert / "certificate.json", b1, certified.scripted, url, out) == 1
    err = capsys.readouterr().err
    assert "which milestone A/M1 (ledger entry 1) already names" in err
    assert not out.exists()


def test_duplicate_keys_in_a_contract_are_refused_and_nothing_is_recorded(
    tmp_path, certified, url, capsys
):
    contract = _contract(tmp_path, certified, "A", "M1")
    text = contract.read_text().replace(
        "amount: '12500.10'", "amount: '12500.10'\namount: '99999.00'"
    )
    assert text.count("amount:") == 2
    contract.write_text(text)
    assert _release(certified.passed, contract, certified.scripted, url, tmp_path / "p.json") == 2
    err = capsys.readouterr().err
    assert "duplicate key 'amount'" in err and "Traceback" not in err
    assert _kinds(url) == []


def test_an_88_digit_amount_is_refused(tmp_path, certified, url, capsys):
    contract = write_contract(tmp_path, certified, amount="1" * 88)
    assert _release(certified.passed, contract, certified.scripted, url, tmp_path / "p.json") == 2
    assert "88 digits, at most 18" in capsys.readouterr().err
    assert _kinds(url) == []


def test_release_refuses_a_ledger_that_ledger_init_did_not_make(tmp_path, certified, capsys):
    contract = write_contract(tmp_path, certified)
    missing = tmp_path / "nowhere.sqlite"
    assert (
        _release(certified.passed, contract, certified.scripted, str(missing), tmp_path / "p.json")
        == 7
    )
    assert "robocell ledger init" in capsys.readouterr().err
    assert not missing.exists() and not (tmp_path / "p.json").exists()


def test_release_o_never_overwrites_another_file(tmp_path, certified, url, capsys):
    contract = write_contract(tmp_path, certified)
    before = contract.read_bytes()
    assert _release(certified.passed, contract, certified.scripted, url, contract) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert contract.read_bytes() == before and _kinds(url) == []
    out = tmp_path / "payment.json"
    assert _release(certified.passed, contract, certified.scripted, url, out) == 0
    first = out.read_bytes()
    assert _release(certified.passed, contract, certified.scripted, url, out) == 0  # a retry
    assert out.read_bytes() == first


def test_a_ledger_removed_during_a_release_is_never_paid_from(
    tmp_path, certified, ledger_backend, url, monkeypatch, capsys
):
    contract = write_contract(tmp_path, certified)
    check = release_module.check_certificate

    def check_then_remove_the_ledger(*args):
        evidence = check(*args)
        if ledger_backend.url.startswith("postgresql"):
            ledger_backend.tamper("DROP TABLE events CASCADE", "DROP TABLE ledger_meta")
        else:
            ledger_backend.path.unlink()
        return evidence

    monkeypatch.setattr(release_module, "check_certificate", check_then_remove_the_ledger)
    out = tmp_path / "payment.json"
    assert _release(certified.passed, contract, certified.scripted, url, out) == 7
    assert "Traceback" not in capsys.readouterr().err and not out.exists()
    monkeypatch.setattr(release_module, "check_certificate", check)
    assert _release(certified.passed, contract, certified.scripted, url, out) == 7  # not re-made
    assert not out.exists()


# ---------------------------------------------------------------- SQLite's own failures
def test_a_full_disk_is_a_clear_error_with_nothing_recorded(
    tmp_path, certified, monkeypatch, capsys
):
    ledger = tmp_path / "ledger.sqlite"
    assert main(["ledger", "init", "--ledger", str(ledger)]) == 0
    connect = store_sqlite.sqlite_open

    def connect_to_a_full_disk(*args):
        conn = connect(*args)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL on the next new page
        return conn

    monkeypatch.setattr(store_sqlite, "sqlite_open", connect_to_a_full_disk)
    # Annotations copied into the instruction: an entry larger than a page needs a new one.
    extra = {f"note{i}": "x" * 140 for i in range(30)}
    contract = write_contract(tmp_path, certified, extra=extra)
    out = tmp_path / "payment.json"
    assert _release(certified.passed, contract, certified.scripted, str(ledger), out) == 7
    err = capsys.readouterr().err
    assert "full" in err and "Traceback" not in err and not out.exists()
    monkeypatch.undo()
    assert _kinds(str(ledger)) == []


def test_an_immutable_ledger_file_is_a_clear_error(tmp_path, certified, capsys):
    ledger = tmp_path / "ledger.sqlite"
    assert main(["ledger", "init", "--ledger", str(ledger)]) == 0
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(ledger)]).returncode:
        pytest.skip("chattr +i is not available on this file system")
    try:
        contract = write_contract(tmp_path, certified)
        out = tmp_path / "payment.json"
        assert _release(certified.passed, contract, certified.scripted, str(ledger), out) == 7
        err = capsys.readouterr().err
        assert "cannot open or write the ledger" in err and "Traceback" not in err
    finally:
        subprocess.run(["chattr", "-i", str(ledger)], check=True)
    assert _kinds(str(ledger)) == []


def test_the_store_refuses_a_second_release_of_one_certificate(tmp_path, certified, url):
    """Behind the decision, the store's own UNIQUE index: one RELEASED per certificate."""
    a1 = _contract(tmp_path, certified, "A", "M1")
    assert _release(certified.passed, a1, certified.scripted, url, tmp_path / "a1.json") == 0
    released = json.loads((tmp_path / "a1.json").read_text())
    from robocell.eval.release.events import Draft
    from robocell.eval.release.ledger import LedgerConflict

    draft = Draft("RELEASED", "Z", "M9", released["certificate_sha256"], released["released_at"],
                  {"instruction": "x"})  # fmt: skip
    with open_ledger(url, create=False) as ledger, pytest.raises(LedgerConflict):
        ledger.record("Z", "M9", lambda history, head, events: ([draft], None))
