"""Milestones paid on production evidence: ``certify-production``, its verification on the
telemetry, release in order and exactly once, and the attacks the issue names; telemetry and
ledger both on SQLite, then both on PostgreSQL.

The telemetry is written here through the store's own writer with the cell's key (rows as a
line writes them), so each case costs milliseconds; ``tests/test_line.py`` runs a real line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from certtools import read_statement
from releasetools import Certified, resigned, write_contract
from telemetrytools import Backend

from robocell.agents.bundle import ONNX_FILE, subject_digests
from robocell.cli import main
from robocell.eval.keys import (
    generate_keypair,
    load_private_key,
    load_public_key,
    public_key_fingerprint,
)
from robocell.eval.production import PREDICATE_TYPE
from robocell.eval.release.ledger import open_ledger
from robocell.eval.release.settlement import settlement_path
from robocell.line.telemetry import open_telemetry

LINE, CELL = "line-3", "weld-1"
OTHER_BUNDLE = "cd" * 32
START, PARTS, RETAIN = 2, 20, 10  # SAT: parts D+2 .. D+21; retention: D+22 .. D+31
DEPLOYED_AT = 4  # parts 0..3 ran another bundle


@dataclass
class Site:
    """A line cell's telemetry, its keys and the three milestones' contracts."""

    tmp: Path
    backend: Backend
    certified: Certified
    cell_key: Path
    cell_pub: Path
    bundle_sha256: str
    contracts: dict[str, Path]
    ledger: str
    """The ledger's path or URL: on the telemetry's kind of store."""

    @property
    def url(self) -> str:
        return self.backend.url


def row(part: int, bundle: str, success: bool = True, **quality: float) -> dict[str, Any]:
    """A weld part as a line records it."""
    figures = {"fault": 0.0, "invalid_actions": 0.0, "mean_lateral_error_mm": 0.05} | quality
    return {
        "line": LINE, "cell": CELL, "bundle_sha256": bundle, "calibration_version": 0,
        "part": part, "sim_time_s": 20.0 * (part + 1), "success": success,
        "energy_j": 40000.0 + 10 * part, "co2e_g": 2.7, "cycle_time_s": 19.5,
        "quality": figures, "conditions": {"calibration_error_mm": 0.5},
    }  # fmt: skip


def event(kind: str, part: int, **data: Any) -> dict[str, Any]:
    return {"type": kind, "cell": CELL, "part": part, "data": data}


def deployment(part: int, bundle: str) -> dict[str, Any]:
    return event("deployment", part, bundle_sha256=bundle, env_id="robocell/WeldSeam-v1")


def write_chain(
    url: str,
    key: Path,
    bundle: str,
    parts: int = 44,
    line: str = LINE,
    extra: dict[int, list[dict[str, Any]]] | None = None,
    rows_of: Any = None,
) -> None:
    """Parts 0..3 of another bundle, then ``bundle`` deployed at part 4 up to ``parts``, in
    batches of 10 (``extra`` events by part; ``rows_of(part)`` overrides a row)."""
    extra = extra or {}
    make = rows_of or (lambda p: row(p, bundle))
    with open_telemetry(url) as store:
        writer = store.open_chain(line=line, cell=CELL, private_key=load_private_key(key))
        writer.append(
            [dict(row(p, OTHER_BUNDLE), line=line) for p in range(DEPLOYED_AT)],
            [deployment(0, OTHER_BUNDLE)],
        )
        for first in range(DEPLOYED_AT, parts, 10):
            block = range(first, min(first + 10, parts))
            events = [deployment(DEPLOYED_AT, bundle)] if first == DEPLOYED_AT else []
            events += [e for p in block for e in extra.get(p, [])]
            writer.append([dict(make(p), line=line) for p in block], events)


def production_contract(site_root: Path, certified: Certified, name: str, **terms: Any) -> Path:
    """The production (SAT) or retention milestone of the contract M1 begins."""
    kind = terms.pop("kind", "production")
    data = {
        "line": LINE,
        "cell": CELL,
        "cell_key": {"public_key": str(terms.pop("cell_pub")), "fingerprint": terms.pop("fp")},
        "bundle_sha256": terms.pop("bundle"),
        "start_after_deployment": START if kind == "production" else START + PARTS,
        "parts": PARTS if kind == "production" else RETAIN,
    } | terms
    changes: dict[str, Any] = {
        "milestone_id": name,
        "kind": kind,
        "production": data,
        "seed_commitment": "",
        "follows": "M1" if kind == "production" else "M2",
        "amount": "2500.00",
    }
    if kind == "retention":
        changes["benchmark_spec_digest"] = ""
    return write_contract(site_root / name, certified, **changes)


@pytest.fixture
def site(request, tmp_path: Path, certified: Certified, backend: Backend) -> Site:
    cell_key, cell_pub = generate_keypair(
        tmp_path / "cell", key_name=f"cell-{CELL}.key", pub_name=f"cell-{CELL}.pub"
    )
    bundle = subject_digests(certified.scripted)[ONNX_FILE]
    write_chain(backend.url, cell_key, bundle)
    fp = public_key_fingerprint(load_public_key(cell_pub))
    contracts = {
        "M1": write_contract(tmp_path / "M1", certified),
        "M2": production_contract(tmp_path, certified, "M2", cell_pub=cell_pub, fp=fp,
                                  bundle=bundle),
        "M3": production_contract(tmp_path, certified, "M3", kind="retention",
                                  cell_pub=cell_pub, fp=fp, bundle=bundle),
    }  # fmt: skip
    ledger = (
        str(tmp_path / "ledger.sqlite")
        if backend.path is not None
        else request.getfixturevalue("postgres").new_database()
    )
    assert main(["ledger", "init", "--ledger", ledger]) == 0
    return Site(tmp_path, backend, certified, cell_key, cell_pub, bundle, contracts, ledger)


def certify_production(site: Site, contract: Path, out: str, url: str | None = None) -> int:
    argv = ["certify-production", str(site.certified.scripted), "--telemetry", url or site.url]
    argv += [
        "--contract",
        str(contract),
        "--key",
        str(site.certified.key),
        "-o",
        str(site.tmp / out),
    ]
    if yaml.safe_load(contract.read_text())["kind"] == "production":
        argv += ["--benchmark", str(site.certified.root / "spec.yaml")]
    return main(argv)


def release(site: Site, cert: Path, milestone: str, contract: Path | None = None) -> int:
    argv = ["release", str(cert), "--contract", str(contract or site.contracts[milestone])]
    argv += ["--bundle", str(site.certified.scripted), "--telemetry", site.url]
    argv += ["--ledger", site.ledger, "-o", str(site.tmp / f"payment-{milestone}.json")]
    return main(argv)


def cert(site: Site, out: str) -> Path:
    return site.tmp / out / "certificate.json"


def released(site: Site) -> list[str]:
    """The milestones released, after a walk of the ledger's chain."""
    with open_ledger(site.ledger, create=False) as ledger:
        assert ledger.verify().ok
        return [e.milestone_id for e in ledger.events() if e.kind == "RELEASED"]


# ------------------------------------------------------------------------ the contract
def test_three_milestones_are_paid_in_order_each_exactly_once(site: Site, capsys) -> None:
    assert certify_production(site, site.contracts["M2"], "sat") == 0
    assert certify_production(site, site.contracts["M3"], "retention") == 0
    out = capsys.readouterr().out
    first, last = DEPLOYED_AT + START, DEPLOYED_AT + START + PARTS - 1
    assert f"production window: parts {first}..{last} of {LINE}/{CELL}" in out
    assert "verdict: PASSED" in out

    # The site acceptance before the factory acceptance is refused (and may come again).
    assert release(site, cert(site, "sat"), "M2") == 1
    assert "milestones are paid in order" in capsys.readouterr().err
    assert release(site, site.certified.passed, "M1") == 0
    assert release(site, cert(site, "sat"), "M2") == 0
    payment = site.tmp / "payment-M2.json"
    first_bytes = payment.read_bytes()
    assert release(site, cert(site, "sat"), "M2") == 0  # a retry: the same instruction
    assert payment.read_bytes() == first_bytes
    assert release(site, cert(site, "retention"), "M3") == 0
    assert len(released(site)) == 3
    for milestone in ("M1", "M2", "M3"):
        instruction = json.loads((site.tmp / f"payment-{milestone}.json").read_text())
        assert instruction["milestone_id"] == milestone
        assert settlement_path(site.tmp / f"payment-{milestone}.json").is_file()
    assert json.loads(first_bytes)["amount"] == "2500.00"


def test_the_production_certificate_verifies_on_the_telemetry_and_has_the_report(
    site: Site, capsys
) -> None:
    assert certify_production(site, site.contracts["M2"], "sat") == 0
    pub = str(site.certified.pub)
    argv = ["verify", str(cert(site, "sat")), "--pubkey", pub, "--telemetry", site.url]
    assert main([*argv, "--bundle", str(site.certified.scripted)]) == 0
    out = capsys.readouterr().out
    assert "certified head is in it" in out and "verdict: PASSED" in out
    statement = read_statement(cert(site, "sat"))
    predicate = statement["predicate"]
    assert statement["predicateType"] == PREDICATE_TYPE
    assert predicate["telemetry"]["head"]["batches"] == 5  # 1 + 40 parts in batches of 10
    assert predicate["criteria"][0]["n"] == PARTS and predicate["criteria"][0]["k"] == PARTS
    html = (site.tmp / "sat" / "report.html").read_text()
    assert "Production certificate report" in html and "telemetry head" in html
    # Without the telemetry a production certificate cannot be checked.
    assert main(["verify", str(cert(site, "sat")), "--pubkey", pub]) == 2
    assert "--telemetry" in capsys.readouterr().err
    # A line that goes on writing does not invalidate the certificate.
    with open_telemetry(site.url) as store:
        writer = store.open_chain(LINE, CELL, load_private_key(site.cell_key))
        writer.append([row(writer.next_part, site.bundle_sha256)])
    assert main([*argv]) == 0


# ------------------------------------------------------------------------------ attacks
def _tamper_sql(site: Site, sql: str) -> None:
    site.backend.tamper(sql.format(line=LINE, cell=CELL))


EDITS = {
    "row edited": (
        "UPDATE telemetry_rows SET energy_j = 1.0 WHERE cell = '{cell}' AND part = 10",
        "edited",
    ),
    "row dropped": ("DELETE FROM telemetry_rows WHERE cell = '{cell}' AND part = 10", "missing"),
    "rows reordered": (
        "UPDATE telemetry_rows SET energy_j = 80000.0 - energy_j "
        "WHERE cell = '{cell}' AND part IN (10, 11)",
        "edited or reordered",
    ),
    "row duplicated": (
        "INSERT INTO telemetry_rows SELECT line, cell, 99, seq, bundle_sha256, "
        "calibration_version, sim_time_s, success, energy_j, co2e_g, cycle_time_s, quality, "
        "conditions FROM telemetry_rows WHERE cell = '{cell}' AND part = 10",
        "extra rows",
    ),
    "batch dropped": (
        "DELETE FROM telemetry_batches WHERE cell = '{cell}' AND seq = 3",
        "missing (deleted)",
    ),
}


@pytest.mark.parametrize("attack", sorted(EDITS))
def test_edited_telemetry_pays_nothing(site: Site, attack: str, capsys) -> None:
    assert release(site, site.certified.passed, "M1") == 0
    assert certify_production(site, site.contracts["M2"], "sat") == 0
    sql, message = EDITS[attack]
    _tamper_sql(site, sql)
    assert release(site, cert(site, "sat"), "M2") == 1
    assert message in capsys.readouterr().err
    assert len(released(site)) == 1
    # and no certificate is issued on such telemetry
    assert certify_production(site, site.contracts["M2"], "again") == 1


def test_a_batch_replayed_from_another_cell_breaks_the_chain(site: Site, capsys) -> None:
    other_key, _ = generate_keypair(site.tmp / "other", key_name="k.key", pub_name="k.pub")
    with open_telemetry(site.url) as store:
        writer = store.open_chain(LINE, "weld-2", load_private_key(other_key))
        for first in range(0, 20, 10):
            rows = [
                dict(row(p, site.bundle_sha256), cell="weld-2") for p in range(first, first + 10)
            ]
            writer.append(rows)
    assert release(site, site.certified.passed, "M1") == 0
    assert certify_production(site, site.contracts["M2"], "sat") == 0
    _tamper_sql(
        site,
        "UPDATE telemetry_batches SET envelope = (SELECT envelope FROM telemetry_batches "
        "WHERE cell = 'weld-2' AND seq = 2) WHERE cell = '{cell}' AND seq = 2",
    )
    assert release(site, cert(site, "sat"), "M2") == 1
    assert "signature does not hold" in capsys.readouterr().err
    assert len(released(site)) == 1


def test_another_bundle_in_the_window_is_refused(site: Site, capsys) -> None:
    url = f"sqlite:///{site.tmp / 'switched.sqlite'}"
    switch = DEPLOYED_AT + START + 5
    write_chain(url, site.cell_key, site.bundle_sha256,
                rows_of=lambda p: row(p, OTHER_BUNDLE if p >= switch else site.bundle_sha256),
                extra={switch: [deployment(switch, OTHER_BUNDLE)]})  # fmt: skip
    assert certify_production(site, site.contracts["M2"], "sat", url=url) == 1
    assert f"part {switch} of the window ran bundle {OTHER_BUNDLE}" in capsys.readouterr().err


def test_a_certificate_from_another_line_pays_nothing(site: Site, capsys) -> None:
    write_chain(site.url, site.cell_key, site.bundle_sha256, line="line-4")
    terms = yaml.safe_load(site.contracts["M2"].read_text())
    terms["production"]["line"] = "line-4"
    other = site.tmp / "line4.yaml"
    other.write_text(yaml.safe_dump(terms))
    assert certify_production(site, other, "sat4") == 0
    assert release(site, site.certified.passed, "M1") == 0
    assert release(site, cert(site, "sat4"), "M2") == 1
    assert "other terms than the contract's (line: 'line-4'" in capsys.readouterr().err


def test_parts_from_before_the_deployment_never_count(site: Site, capsys) -> None:
    assert release(site, site.certified.passed, "M1") == 0
    assert certify_production(site, site.contracts["M2"], "sat") == 0

    def earlier(statement: dict) -> None:  # a certifier talked into counting parts 0..19
        statement["predicate"]["telemetry"]["first_part"] = 0
        statement["predicate"]["telemetry"]["last_part"] = PARTS - 1

    forged = resigned(site.certified.pub, cert(site, "sat"), site.tmp / "early",
                      earlier, site.certified.key)  # fmt: skip
    assert release(site, forged, "M2") == 1
    first = DEPLOYED_AT + START
    err = capsys.readouterr().err
    assert f"window is parts 0..{PARTS - 1}, its terms give {first}..{first + PARTS - 1}" in err
    assert len(released(site)) == 1


def test_a_window_chosen_after_the_results_pays_nothing(site: Site, capsys) -> None:
    terms = yaml.safe_load(site.contracts["M2"].read_text())
    terms["production"]["start_after_deployment"] = START + 7
    chosen = site.tmp / "chosen.yaml"
    chosen.write_text(yaml.safe_dump(terms))
    assert certify_production(site, chosen, "chosen") == 0
    assert release(site, site.certified.passed, "M1") == 0
    assert release(site, cert(site, "chosen"), "M2") == 1
    assert "start_after_deployment: 9, the contract: 2" in capsys.readouterr().err
    assert len(released(site)) == 1


def test_telemetry_signed_by_a_key_the_contract_does_not_name(site: Site, capsys) -> None:
    _, stranger = generate_keypair(site.tmp / "stranger")
    terms = yaml.safe_load(site.contracts["M2"].read_text())
    terms["production"]["cell_key"] = {
        "public_key": str(stranger),
        "fingerprint": public_key_fingerprint(load_public_key(stranger)),
    }
    named = site.tmp / "stranger.yaml"
    named.write_text(yaml.safe_dump(terms))
    assert certify_production(site, named, "stranger") == 1
    err = capsys.readouterr().err
    assert "does not verify with the cell key the contract names" in err
    assert "signature does not hold" in err


def test_certificates_of_one_kind_never_pay_a_milestone_of_another(site: Site, capsys) -> None:
    assert certify_production(site, site.contracts["M2"], "sat") == 0
    assert release(site, cert(site, "sat"), "M1") == 1  # a production cert for M1
    assert "expected 'https://robocell.dev/attestations/benchmark-certificate/v1'" in (
        capsys.readouterr().err
    )
    assert release(site, site.certified.passed, "M1") == 0
    assert release(site, site.certified.passed_again, "M2") == 1  # a benchmark cert for M2
    assert f"expected {PREDICATE_TYPE!r}" in capsys.readouterr().err
    assert certify_production(site, site.contracts["M3"], "retention") == 0
    assert release(site, cert(site, "retention"), "M2") == 1
    assert "a retention certificate cannot pay a production milestone" in capsys.readouterr().err
    assert len(released(site)) == 1


@pytest.mark.parametrize(
    ("where", "findings"),
    [
        ("standing", "alarm standing at the start: 10"),
        ("inside", f"drift alarms in the window: [{DEPLOYED_AT + START + PARTS + 3}]"),
    ],
)
def test_a_retention_while_an_alarm_stands_pays_nothing(site: Site, where, findings, capsys):
    url = f"sqlite:///{site.tmp / 'alarm.sqlite'}"
    part = 10 if where == "standing" else DEPLOYED_AT + START + PARTS + 3
    alarm = event("drift_alarm", part, stream="success", statistic=9.0, threshold=5.0)
    write_chain(url, site.cell_key, site.bundle_sha256, extra={part: [alarm]})
    assert certify_production(site, site.contracts["M3"], "retention", url=url) == 0
    out = capsys.readouterr().out
    assert findings in out and "verdict: FAILED" in out


def test_a_calibration_clears_the_alarm_before_the_retention(site: Site, capsys) -> None:
    url = f"sqlite:///{site.tmp / 'cleared.sqlite'}"
    alarm = event("drift_alarm", 10, stream="success", statistic=9.0, threshold=5.0)
    calibration = event("calibration", 10, version=1)
    write_chain(url, site.cell_key, site.bundle_sha256, extra={10: [alarm, calibration]})
    assert certify_production(site, site.contracts["M3"], "retention", url=url) == 0
    assert "verdict: PASSED" in capsys.readouterr().out


def test_a_window_not_yet_recorded_and_a_window_too_short_for_the_spec(site, capsys) -> None:
    terms = yaml.safe_load(site.contracts["M2"].read_text())
    terms["production"]["parts"] = 500
    long = site.tmp / "long.yaml"
    long.write_text(yaml.safe_dump(terms))
    assert certify_production(site, long, "long") == 1
    assert "not all of it is recorded yet" in capsys.readouterr().err
    terms["production"]["parts"] = 3  # 3 parts can never show p0 = 0.5 at alpha/m
    short = site.tmp / "short.yaml"
    short.write_text(yaml.safe_dump(terms))
    assert certify_production(site, short, "short") == 2  # a contract that cannot pass
    assert "can never pass criterion" in capsys.readouterr().err


def test_one_window_of_parts_pays_one_milestone(site: Site, capsys) -> None:
    terms = yaml.safe_load(site.contracts["M2"].read_text())
    terms["milestone_id"] = "M2b"
    twin = site.tmp / "twin.yaml"
    twin.write_text(yaml.safe_dump(terms))
    assert release(site, site.certified.passed, "M1") == 0
    assert certify_production(site, site.contracts["M2"], "sat") == 0
    assert release(site, cert(site, "sat"), "M2") == 0
    assert certify_production(site, twin, "sat-b") == 0
    assert release(site, cert(site, "sat-b"), "M2b", contract=twin) == 1
    first = DEPLOYED_AT + START
    assert f"parts {first}..{first + PARTS - 1} of that cell already pay milestone" in (
        capsys.readouterr().err
    )
    assert len(released(site)) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"production": None}, "a production milestone needs its production terms"),
        ({"seed_commitment": "ab" * 32}, "production data has no seed"),
        ({"follows": "M2"}, "a milestone cannot follow itself"),
        ({"kind": "sat"}, "must be one of"),
    ],
)
def test_bad_production_contracts_are_refused_naming_the_field(site, change, message, capsys):
    terms = yaml.safe_load(site.contracts["M2"].read_text()) | change
    bad = site.tmp / "bad.yaml"
    bad.write_text(yaml.safe_dump(terms))
    assert certify_production(site, bad, "bad") == 2
    assert message in capsys.readouterr().err
