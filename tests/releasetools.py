"""Helpers of the release tests: real certificates of weld bundles, contracts, the CLI.

``make_certified`` certifies hand-built weld bundles with ``robocell certify`` on a short spec
(the scripted welder passes, an untrained policy fails); ``conftest.py`` runs it once per
session as the ``certified`` fixture.
"""

from __future__ import annotations

import base64
import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml
from certtools import (
    certify_quietly,
    small_weld_spec,
    write_random_weld_bundle,
    write_scripted_weld_bundle,
)

from robocell.cli import main
from robocell.eval import seeds
from robocell.eval.certify import certificate_bytes
from robocell.eval.dsse import open_envelope, sign_envelope
from robocell.eval.keys import (
    generate_keypair,
    load_private_key,
    load_public_key,
    public_key_fingerprint,
)
from robocell.eval.release.ledger import open_ledger
from robocell.eval.spec import parse_spec, spec_digest
from robocell.util import canonical_json, sha256_file

EPISODES = 6  # the fewest that can pass p0 = 0.5 at α/m = 0.025 (0.5**6 < 0.025)
MASTER_SEED = "5eed" * 16
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)


@dataclass
class Certified:
    """Everything the release tests share: keys, spec, bundles and certificates."""

    root: Path
    key: Path
    pub: Path
    spec_digest: str
    scripted: Path
    random: Path
    passed: Path
    passed_again: Path
    failed: Path


def write_contract(directory: Path, certified: Certified, **changes) -> Path:
    """A contract that the ``passed`` certificate satisfies, with ``changes`` applied."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {
        "contract_id": "ACME-WELD-7",
        "milestone_id": "M1",
        "buyer": {"name": "ACME Fabrication GmbH", "account": "DE89370400440532013000"},
        "supplier": {"name": "Cellworks Robotics Ltd", "account": "GB29NWBK60161331926819"},
        "amount": "12500.10",
        "currency": "EUR",
        "benchmark_spec_digest": certified.spec_digest,
        "seed_commitment": seeds.commitment(MASTER_SEED),
        "certifier": {
            "public_key": str(certified.pub),
            "fingerprint": public_key_fingerprint(load_public_key(certified.pub)),
        },
        "dispute_window_hours": 0,
    }
    data.update(changes)
    path = directory / "contract.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def release_cli(cert: Path, contract: Path, bundle: Path, tmp: Path, *extra: str) -> int:
    """``robocell release`` through the real CLI, with the ledger and output under ``tmp``."""
    argv = ["release", str(cert), "--contract", str(contract), "--bundle", str(bundle)]
    ledger = tmp / "ledger.sqlite"
    if not ledger.exists():
        assert main(["ledger", "init", "--ledger", str(ledger)]) == 0
    argv += ["--ledger", str(ledger), "-o", str(tmp / "payment.json"), *extra]
    return main(argv)


def kinds(tmp: Path) -> list[str]:
    with open_ledger(tmp / "ledger.sqlite") as ledger:
        assert ledger.verify().ok
        return [event.kind for event in ledger.events()]


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_certified(root: Path) -> Certified:
    """Keys, a spec, the scripted and random weld bundles and their certificates in ``root``."""
    key, pub = generate_keypair(root / "certifier")
    seed_file = root / "master.seed"
    seeds.write_master_seed(seed_file, MASTER_SEED)
    spec_path = root / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(small_weld_spec(EPISODES)))
    scripted = write_scripted_weld_bundle(root / "scripted")
    random = write_random_weld_bundle(root / "random")
    commitment = seeds.commitment(MASTER_SEED)
    argv = ["certify", str(scripted), "--benchmark", str(spec_path), "--no-progress"]
    argv += ["--master-seed-file", str(seed_file), "--commitment", commitment]
    assert main([*argv, "--key", str(key), "-o", str(root / "passed")]) == 0
    # ``certify`` now refuses the revealed seed: a FAILED certificate on the same seed is what
    # a certifier without its revealed-seed record (another machine) would still sign, and
    # the ledger must refuse to pay on it all the same.
    certify_quietly(random, small_weld_spec(EPISODES), MASTER_SEED, key, root / "failed")
    # A second valid certificate of the same delivery, as a re-run of the certifier would
    # sign it (same episodes, another finishing time): cheaper than certifying twice.
    passed_again = resigned(
        pub, root / "passed" / "certificate.json", root / "passed_again", later_finish, key
    )
    certs = {
        "passed": root / "passed" / "certificate.json",
        "passed_again": passed_again,
        "failed": root / "failed" / "certificate.json",
    }
    assert len({sha256_file(path) for path in certs.values()}) == 3
    return Certified(
        root,
        key,
        pub,
        spec_digest(parse_spec(small_weld_spec(EPISODES))),
        scripted,
        random,
        **certs,
    )


def resigned(pub: Path, source: Path, folder: Path, edit, key: Path | None) -> Path:
    """A copy of ``source``'s certificate folder with an edited statement.

    With ``key`` the statement is signed again with it; without, the old signature is kept
    (a forger who edits a certificate but lacks the certifier's key).
    """
    shutil.copytree(source.parent, folder)
    envelope = json.loads(source.read_bytes())
    statement = open_envelope(envelope, load_public_key(pub))
    edit(statement)
    if key is None:
        envelope["payload"] = base64.b64encode(canonical_json(statement)).decode()
    else:
        envelope = sign_envelope(statement, load_private_key(key))
    (folder / "certificate.json").write_bytes(certificate_bytes(envelope))
    return folder / "certificate.json"


def later_finish(statement: dict) -> None:
    statement["predicate"]["run"]["finished_at"] = "2099-01-01T00:00:00Z"
