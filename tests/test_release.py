"""Payment release: contracts, certificate checks, exactly-once release, disputes, crashes.

The certificates are real: the session fixture ``certified`` (``conftest.py``) certifies
hand-built weld bundles with ``robocell certify`` on a short spec (the scripted welder passes,
an untrained policy fails).
"""

from __future__ import annotations

import json
import multiprocessing
import re
import subprocess
import sys
import textwrap
from collections import Counter
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest
from releasetools import (
    MASTER_SEED,
    Certified,
    at,
    kinds,
    release_cli,
    resigned,
    write_contract,
)

from robocell.cli import main
from robocell.errors import RobocellError
from robocell.eval import seeds
from robocell.eval.keys import (
    generate_keypair,
    load_public_key,
    public_key_fingerprint,
)
from robocell.eval.release.clock import TEST_CLOCK_ENV
from robocell.eval.release.contract import contract_digest, load_contract
from robocell.eval.release.ledger import open_ledger
from robocell.eval.release.release import idempotency_key, release_milestone
from robocell.eval.spec import load_spec, spec_digest
from robocell.util import canonical_json, sha256_bytes, sha256_file


@pytest.fixture(autouse=True)
def test_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests travel in time with --now (2025 dates, 72-hour windows)."""
    monkeypatch.setenv(TEST_CLOCK_ENV, "1")


# ---------------------------------------------------------------- contracts
def test_example_contract_is_valid_and_cites_the_weld_spec():
    path = Path(str(resources.files("robocell.configs") / "contracts" / "example.yaml"))
    contract = load_contract(path)
    assert contract.amount == Decimal("12500.00") and str(contract.amount) == "12500.00"
    assert contract.benchmark_spec_digest == spec_digest(load_spec("weld"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount": 12500.1}, "amount: expected a decimal written as a string"),
        ({"amount": "1e4"}, "amount: write a plain positive decimal"),
        ({"amount": "-5.00"}, "amount: write a plain positive decimal"),
        ({"amount": "0.00"}, "amount: must be greater than zero"),
        ({"amount": "1.000000001"}, "amount: EUR has 2 decimal places, 1.000000001 has 9"),
        ({"amount": "12.345"}, "amount: EUR has 2 decimal places, 12.345 has 3"),
        ({"amount": "100.5", "currency": "JPY"}, "amount: JPY has 0 decimal places"),
        ({"currency": "euro"}, "currency: 'euro' is not an ISO 4217 currency code"),
        ({"currency": "EUX"}, "currency: 'EUX' is not an ISO 4217 currency code"),
        ({"currency": "XAU"}, "currency: 'XAU' is not an ISO 4217 currency code"),
        ({"seed_commitment": []}, "seed_commitment: needs at least one commitment"),
        ({"seed_commitment": ["ab" * 32, "xy"]}, r"seed_commitment\[1\]: must be 64 lowercase"),
        ({"seed_commitment": ["ab" * 32] * 2}, "seed_commitment: lists a commitment twice"),
        ({"seed_commitment": "abc"}, "seed_commitment: must be 64 lowercase hex digits"),
        ({"buyer": {"name": " ", "account": "x"}}, "buyer.name: must not be empty"),
        ({"milestone_id": "M 1/2"}, "milestone_id: use 1-128 letters"),
        ({"dispute_window_hours": -1}, "dispute_window_hours: must be within"),
        ({"payee": "me"}, "payee: unknown key"),
    ],
)
def test_bad_contracts_are_refused_naming_the_field(tmp_path, certified, change, message):
    with pytest.raises(RobocellError, match=message):
        load_contract(write_contract(tmp_path, certified, **change))


@pytest.mark.parametrize(
    ("amount", "currency"), [("12.34", "EUR"), ("1.234", "KWD"), ("1500", "JPY"), ("7", "USD")]
)
def test_amounts_within_the_currency_minor_unit_are_accepted(tmp_path, certified, amount, currency):
    contract = load_contract(write_contract(tmp_path, certified, amount=amount, currency=currency))
    assert str(contract.amount) == amount and contract.currency == currency


def test_contract_new_writes_a_contract_the_certificate_satisfies(tmp_path, certified, capsys):
    out = tmp_path / "buyer" / "contract.yaml"
    argv = ["contract", "new", "--contract-id", "ACME-WELD-7", "--milestone-id", "M1"]
    argv += ["--buyer", "ACME", "--buyer-account", "DE1", "--supplier", "Cellworks"]
    argv += ["--supplier-account", "GB1", "--amount", "0.10", "--currency", "EUR"]
    argv += ["--benchmark", str(certified.root / "spec.yaml")]
    argv += ["--commitment", seeds.commitment(MASTER_SEED), "--certifier-key", str(certified.pub)]
    assert main([*argv, "--dispute-window-hours", "0", "-o", str(out)]) == 0
    assert "amount: '0.10'" in out.read_text()
    assert not Path(load_contract(out).certifier.public_key).is_absolute()
    assert release_cli(certified.passed, out, certified.scripted, tmp_path) == 0
    assert json.loads((tmp_path / "payment.json").read_text())["amount"] == "0.10"
    assert main([*argv, "-o", str(out)]) == 2  # never overwritten


# ---------------------------------------------------------------- the happy path
def test_passing_certificate_releases_once_with_an_exact_instruction(tmp_path, certified, capsys):
    contract = write_contract(tmp_path, certified)
    assert release_cli(certified.passed, contract, certified.scripted, tmp_path) == 0
    first = (tmp_path / "payment.json").read_bytes()
    instruction = json.loads(first)
    cert_sha = sha256_file(certified.passed)
    assert instruction["amount"] == "12500.10" and instruction["currency"] == "EUR"
    assert instruction["payee"] == {
        "name": "Cellworks Robotics Ltd",
        "account": "GB29NWBK60161331926819",
    }
    assert instruction["certificate_sha256"] == cert_sha
    assert instruction["idempotency_key"] == sha256_bytes(canonical_json(["ACME-WELD-7", "M1"]))
    assert instruction["idempotency_key"] == idempotency_key("ACME-WELD-7", "M1")
    assert instruction["contract_sha256"] == contract_digest(load_contract(contract))
    assert instruction["bundle_sha256"]["policy.onnx"] == sha256_file(
        certified.scripted / "policy.onnx"
    )
    assert kinds(tmp_path) == ["CERTIFIED", "RELEASED"]
    assert "RELEASED ACME-WELD-7/M1: 12500.10 EUR" in capsys.readouterr().out

    # A retry, even after the instruction file is lost, returns the first result again.
    (tmp_path / "payment.json").unlink()
    assert release_cli(certified.passed, contract, certified.scripted, tmp_path) == 0
    assert (tmp_path / "payment.json").read_bytes() == first
    assert "already released" in capsys.readouterr().out
    assert kinds(tmp_path) == ["CERTIFIED", "RELEASED"]


def test_second_certificate_for_a_released_milestone_is_refused(tmp_path, certified, capsys):
    contract = write_contract(tmp_path, certified)
    assert release_cli(certified.passed, contract, certified.scripted, tmp_path) == 0
    first = (tmp_path / "payment.json").read_bytes()
    assert release_cli(certified.passed_again, contract, certified.scripted, tmp_path) == 1
    assert "already released" in capsys.readouterr().err
    assert (tmp_path / "payment.json").read_bytes() == first
    assert kinds(tmp_path) == ["CERTIFIED", "RELEASED", "REJECTED"]


# ---------------------------------------------------------------- refusals
def _pass_verdict(statement: dict) -> None:
    statement["predicate"]["verdict"] = "PASSED"


def _case(name: str, certified: Certified, tmp: Path) -> tuple[Path, Path, Path, str]:
    """(certificate, contract, bundle, expected reason) for one refusal."""
    good = (certified.passed, write_contract(tmp / "c", certified), certified.scripted)
    other_key, other_pub = generate_keypair(tmp / "other")
    other_fingerprint = public_key_fingerprint(load_public_key(other_pub))
    if name == "failed-verdict":
        return certified.failed, good[1], certified.random, "verdict is FAILED, not PASSED"
    if name == "forged-verdict":
        cert = resigned(certified.pub, certified.failed, tmp / "forged", _pass_verdict, None)
        return cert, good[1], certified.random, "signature does not verify"
    if name == "signed-by-another-key":
        cert = resigned(certified.pub, certified.passed, tmp / "forged", lambda s: None, other_key)
        return cert, good[1], good[2], "key id .* is not the given public key's fingerprint"
    if name == "contract-names-another-certifier":
        certifier = {"public_key": str(other_pub), "fingerprint": other_fingerprint}
        contract = write_contract(tmp / "c2", certified, certifier=certifier)
        return good[0], contract, good[2], "key id .* is not the given public key's fingerprint"
    if name == "swapped-key-file":
        certifier = {"public_key": str(other_pub), "fingerprint": certified_fingerprint(certified)}
        contract = write_contract(tmp / "c2", certified, certifier=certifier)
        return good[0], contract, good[2], "has fingerprint .* the contract pins"
    if name == "other-bundle":
        return good[0], good[1], certified.random, "bundle policy.onnx sha256 .* differs"
    if name == "other-spec":
        contract = write_contract(tmp / "c2", certified, benchmark_spec_digest="ab" * 32)
        return good[0], contract, good[2], "benchmark spec digest .* is not the contract's"
    contract = write_contract(tmp / "c2", certified, seed_commitment="cd" * 32)
    return good[0], contract, good[2], "seed commitment .* is not the contract's"


def certified_fingerprint(certified: Certified) -> str:
    return public_key_fingerprint(load_public_key(certified.pub))


@pytest.mark.parametrize(
    "name",
    [
        "failed-verdict",
        "forged-verdict",
        "signed-by-another-key",
        "contract-names-another-certifier",
        "swapped-key-file",
        "other-bundle",
        "other-spec",
        "other-commitment",
    ],
)
def test_certificate_that_must_not_be_paid_is_rejected(tmp_path, certified, capsys, name):
    cert, contract, bundle, reason = _case(name, certified, tmp_path)
    assert release_cli(cert, contract, bundle, tmp_path) == 1
    assert re.search(reason, capsys.readouterr().err)
    assert not (tmp_path / "payment.json").exists()
    with open_ledger(tmp_path / "ledger.sqlite") as ledger:
        events = ledger.events()
    assert [e.kind for e in events] == ["REJECTED"]
    assert events[0].certificate_sha256 == sha256_file(cert)
    # A retry of the same rejection does not grow the ledger.
    assert release_cli(cert, contract, bundle, tmp_path) == 1
    assert kinds(tmp_path) == ["REJECTED"]


def test_bad_input_records_nothing(tmp_path, certified):
    contract = write_contract(tmp_path, certified)
    missing = tmp_path / "missing"
    assert release_cli(missing / "certificate.json", contract, certified.scripted, tmp_path) == 2
    assert release_cli(certified.passed, contract, missing, tmp_path) == 2
    assert (
        release_cli(certified.passed, missing / "contract.yaml", certified.scripted, tmp_path) == 2
    )
    assert kinds(tmp_path) == []


# ---------------------------------------------------------------- dispute window
def test_release_waits_for_the_dispute_window(tmp_path, certified, capsys):
    contract = write_contract(tmp_path, certified, dispute_window_hours=72)
    args = (certified.passed, contract, certified.scripted, tmp_path)
    assert release_cli(*args, "--now", at(0)) == 3
    assert f"dispute window open until {at(72)}" in capsys.readouterr().out
    assert release_cli(*args, "--now", at(71.9)) == 3
    assert kinds(tmp_path) == ["CERTIFIED"] and not (tmp_path / "payment.json").exists()
    assert release_cli(*args, "--now", at(72)) == 0
    assert json.loads((tmp_path / "payment.json").read_text())["released_at"] == at(72)
    assert kinds(tmp_path) == ["CERTIFIED", "RELEASED"]
    ledger = ["--ledger", str(tmp_path / "ledger.sqlite")]
    assert main(["dispute", "ACME-WELD-7", "M1", "--reason", "late", *ledger]) == 2
    assert "already released" in capsys.readouterr().err


def test_dispute_inside_the_window_stops_the_release(tmp_path, certified, capsys):
    contract = write_contract(tmp_path, certified, dispute_window_hours=72)
    args = (certified.passed, contract, certified.scripted, tmp_path)
    ledger = ["--ledger", str(tmp_path / "ledger.sqlite")]
    dispute = ["dispute", "ACME-WELD-7", "M1", "--reason", "seam porosity on part 17", *ledger]
    assert main(["ledger", "init", *ledger]) == 0
    assert main([*dispute, "--now", at(0)]) == 2  # nothing certified yet: nothing to stop
    assert release_cli(*args, "--now", at(0)) == 3
    assert main([*dispute, "--now", at(24)]) == 0
    assert release_cli(*args, "--now", at(100)) == 4
    assert "seam porosity on part 17" in capsys.readouterr().out
    assert kinds(tmp_path) == ["CERTIFIED", "DISPUTED"]
    assert not (tmp_path / "payment.json").exists()


def test_dispute_after_the_window_is_refused(tmp_path, certified, capsys):
    contract = write_contract(tmp_path, certified, dispute_window_hours=1)
    assert (
        release_cli(certified.passed, contract, certified.scripted, tmp_path, "--now", at(0)) == 3
    )
    ledger = ["--ledger", str(tmp_path / "ledger.sqlite")]
    assert main(["dispute", "ACME-WELD-7", "M1", "--reason", "x", "--now", at(2), *ledger]) == 2
    assert "inside its dispute window" in capsys.readouterr().err
    assert release_cli(certified.passed, contract, certified.scripted, tmp_path) == 0


def test_time_cannot_be_wound_back_and_terms_cannot_change(tmp_path, certified, capsys):
    contract = write_contract(tmp_path, certified, dispute_window_hours=1)
    args = (certified.passed, contract, certified.scripted, tmp_path)
    assert release_cli(*args, "--now", at(5)) == 3
    assert release_cli(*args, "--now", at(0)) == 2
    assert "before the ledger's last entry" in capsys.readouterr().err
    write_contract(tmp_path, certified, dispute_window_hours=1, amount="99999.00")
    assert release_cli(*args, "--now", at(7)) == 1
    assert "terms changed" in capsys.readouterr().err
    assert kinds(tmp_path) == ["CERTIFIED", "REJECTED"]


# ---------------------------------------------------------------- races and crashes
def _release_worker(cert, contract, bundle, ledger_path, barrier, results) -> None:
    """One process releasing the milestone; all of them reach the ledger lock together."""
    from robocell.eval.release.ledger import Ledger

    record = Ledger.record

    def record_after_barrier(self, *args, **kwargs):
        barrier.wait()
        return record(self, *args, **kwargs)

    Ledger.record = record_after_barrier
    with open_ledger(ledger_path) as ledger:
        outcome = release_milestone(cert, contract, bundle, ledger)
    results.put((outcome.status, outcome.replayed, json.dumps(outcome.instruction, sort_keys=True)))


def test_racing_release_processes_release_once(tmp_path, certified, ledger_backend):
    racers = 4
    contract = write_contract(tmp_path, certified)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(racers), context.Queue()
    args = (certified.passed, contract, certified.scripted, ledger_backend.url)
    workers = [
        context.Process(target=_release_worker, args=(*args, barrier, results))
        for _ in range(racers)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    outcomes = [results.get(timeout=5) for _ in workers]
    assert Counter((status, replayed) for status, replayed, _ in outcomes) == {
        ("RELEASED", False): 1,
        ("RELEASED", True): racers - 1,
    }
    assert len({instruction for _, _, instruction in outcomes}) == 1
    with open_ledger(ledger_backend.url, create=False) as ledger:
        assert ledger.verify().ok
        assert [event.kind for event in ledger.events()] == ["CERTIFIED", "RELEASED"]


def test_release_on_a_postgresql_ledger_named_by_the_environment(
    tmp_path, certified, postgres, monkeypatch, capsys
):
    url = postgres.new_database()
    monkeypatch.setenv("ROBOCELL_LEDGER", url)
    monkeypatch.chdir(tmp_path)  # where the default ledger.sqlite would appear
    contract = write_contract(tmp_path, certified)
    argv = ["release", str(certified.passed), "--contract", str(contract)]
    argv += ["--bundle", str(certified.scripted), "-o", str(tmp_path / "payment.json")]
    assert main(argv) == 7  # no ledger there yet: nothing is created behind the user's back
    assert main(["ledger", "init"]) == 0
    assert main(argv) == 0
    first = (tmp_path / "payment.json").read_bytes()
    assert main(argv) == 0 and (tmp_path / "payment.json").read_bytes() == first
    assert main(["ledger", "verify"]) == 0
    assert "chain intact, 2 entries" in capsys.readouterr().out
    assert not (tmp_path / "ledger.sqlite").exists()


_KILL_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from robocell.cli import main
    from robocell import util
    from robocell.eval.release import store_sqlite as ledger_sqlite

    where = sys.argv[1]
    insert = ledger_sqlite._SqliteTransaction.insert

    def insert_then_die(self, event):
        insert(self, event)
        if event.kind == "RELEASED" and where == "inside-transaction":
            os._exit(9)

    def die_before_writing(path, obj):
        os._exit(9)

    ledger_sqlite._SqliteTransaction.insert = insert_then_die
    if where == "before-instruction-file":
        util.atomic_write_json = die_before_writing
    main(sys.argv[2:])
    """
)


@pytest.mark.parametrize("where", ["inside-transaction", "before-instruction-file"])
def test_killed_release_leaves_no_partial_entry(tmp_path, certified, where):
    contract = write_contract(tmp_path, certified)
    argv = ["release", str(certified.passed), "--contract", str(contract)]
    argv += ["--bundle", str(certified.scripted), "--ledger", str(tmp_path / "ledger.sqlite")]
    argv += ["-o", str(tmp_path / "payment.json")]
    assert main(["ledger", "init", "--ledger", str(tmp_path / "ledger.sqlite")]) == 0
    killed = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, where, *argv], timeout=300)
    assert killed.returncode == 9
    assert not (tmp_path / "payment.json").exists()
    if where == "inside-transaction":
        assert kinds(tmp_path) == []  # CERTIFIED and RELEASED were one transaction
    else:
        assert kinds(tmp_path) == ["CERTIFIED", "RELEASED"]
    assert main(argv) == 0
    assert kinds(tmp_path) == ["CERTIFIED", "RELEASED"]
    assert json.loads((tmp_path / "payment.json").read_text())["amount"] == "12500.10"
