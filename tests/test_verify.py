"""Verification: a certificate round trip, and every kind of tampering is caught."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from certtools import (
    certify_quietly,
    conditioned_weld_spec,
    read_statement,
    resign,
    write_random_weld_bundle,
    write_scripted_weld_bundle,
)

from robocell.cli import main
from robocell.errors import VerificationError
from robocell.eval.certify import certificate_bytes, episode_log_bytes
from robocell.eval.decision import evaluate
from robocell.eval.dsse import open_envelope, pae, sign_envelope
from robocell.eval.keys import generate_keypair, load_private_key, load_public_key
from robocell.eval.seeds import commitment
from robocell.eval.spec import parse_spec, spec_data, spec_digest
from robocell.eval.verify import verify_certificate
from robocell.util import canonical_json, sha256_bytes, sha256_file

MASTER_SEED = "5eed" * 16
EPISODES = 6


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("verify")
    key_path, pub_path = generate_keypair(root / "keys")
    other_key, other_pub = generate_keypair(root / "other_keys")
    scripted = write_scripted_weld_bundle(root / "scripted")
    # Conditions with a bucket criterion and one episode's stills: every kind of signed
    # result and report file is in the certificate the tampering tests below edit.
    spec = conditioned_weld_spec(EPISODES)
    cert_dir = certify_quietly(scripted, spec, MASTER_SEED, key_path, root / "cert", stills=1)
    return {
        "cert_dir": cert_dir,
        "key": key_path,
        "pub": pub_path,
        "other_key": other_key,
        "other_pub": other_pub,
        "scripted": scripted,
        "random": write_random_weld_bundle(root / "random"),
    }


@pytest.fixture
def cert(world: dict[str, Any], tmp_path: Path) -> Path:
    """A private copy of the certificate directory; returns its certificate.json."""
    shutil.copytree(world["cert_dir"], tmp_path / "cert")
    return tmp_path / "cert" / "certificate.json"


def _envelope(cert: Path) -> dict[str, Any]:
    return json.loads(cert.read_text())


def _write_unsigned(cert: Path, statement: dict[str, Any]) -> None:
    """Replace the payload, keeping the old signature (what a forger without the key can do)."""
    envelope = _envelope(cert)
    envelope["payload"] = base64.b64encode(canonical_json(statement)).decode()
    cert.write_bytes(certificate_bytes(envelope))


def _leaves(value: Any, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(value, dict):
        for key in value:
            yield from _leaves(value[key], (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value * 1.5 + 1
    if isinstance(value, str):
        return value + "0"
    return 0


def _set(tree: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def _get(tree: Any, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


# ---------------------------------------------------------------- DSSE
def test_pae_matches_the_dsse_spec_example() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_dsse_round_trip_and_strictness(world: dict[str, Any]) -> None:
    key, public = load_private_key(world["key"]), load_public_key(world["pub"])
    envelope = sign_envelope({"a": 1}, key, "application/x-test")
    assert open_envelope(envelope, public, "application/x-test") == {"a": 1}
    with pytest.raises(VerificationError, match="payload type"):
        open_envelope(envelope, public)
    doubled = {**envelope, "signatures": envelope["signatures"] * 2}
    with pytest.raises(VerificationError, match="exactly one signature"):
        open_envelope(doubled, public, "application/x-test")
    padded = {**envelope, "payload": envelope["payload"] + "\n"}
    with pytest.raises(VerificationError, match="base64"):
        open_envelope(padded, public, "application/x-test")


# ---------------------------------------------------------------- round trip
def test_certificate_round_trip(world: dict[str, Any], cert: Path) -> None:
    verified = verify_certificate(cert, world["pub"], world["scripted"])
    statement = verified.statement
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"].startswith("https://robocell.dev/")
    assert verified.subject_digests == {
        "policy.onnx": sha256_file(world["scripted"] / "policy.onnx"),
        "manifest.json": sha256_file(world["scripted"] / "manifest.json"),
    }
    assert verified.certificate_sha256 == sha256_file(cert)
    assert verified.commitment == commitment(MASTER_SEED)
    assert verified.verdict in ("PASSED", "FAILED")
    predicate = verified.predicate
    assert predicate["seeds"]["master_seed"] == MASTER_SEED
    assert predicate["episodes"]["log_sha256"] == sha256_file(cert.parent / "episodes.jsonl")
    for key in ("certifier", "packages", "platform", "benchmark", "criteria", "figures", "run"):
        assert predicate[key], key
    assert [c["name"] for c in predicate["robustness"]] == [
        "seam_shape",
        "calibration_error",
        "seam_length",
    ]
    assert [c["name"] for c in predicate["bucket_criteria"]] == ["success[seam_length=any]"]
    assert {"report.md", "report.html"} <= set(predicate["report"])
    assert sum(name.startswith("stills/") for name in predicate["report"]) == 2


# ---------------------------------------------------------------- forgery without the key
def test_unchanged_payload_rewritten_still_verifies(world: dict[str, Any], cert: Path) -> None:
    _write_unsigned(cert, read_statement(cert))  # the control for the tampering test below
    verify_certificate(cert, world["pub"])


def test_every_field_tampered_fails(world: dict[str, Any], cert: Path) -> None:
    original = read_statement(cert)
    paths = list(_leaves(original))
    assert len(paths) > 100
    for path in paths:
        statement = json.loads(json.dumps(original))
        _set(statement, path, _changed(_get(statement, path)))
        _write_unsigned(cert, statement)
        with pytest.raises(VerificationError, match="signature does not verify"):
            verify_certificate(cert, world["pub"])
    for key in original["predicate"]:
        statement = json.loads(json.dumps(original))
        del statement["predicate"][key]
        _write_unsigned(cert, statement)
        with pytest.raises(VerificationError, match="signature does not verify"):
            verify_certificate(cert, world["pub"])


def test_every_byte_flipped_fails(world: dict[str, Any], cert: Path) -> None:
    public = load_public_key(world["pub"])
    data = cert.read_bytes()
    for position in range(len(data)):
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        cert.write_bytes(bytes(flipped))
        with pytest.raises(VerificationError):
            verify_certificate(cert, public)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda e: e.update(payloadType="application/json"), "payload type"),
        (lambda e: e["signatures"][0].update(keyid="0" * 64), "key id"),
        (
            lambda e: e["signatures"][0].update(sig=base64.b64encode(bytes(64)).decode()),
            "signature does not verify",
        ),
        (lambda e: e.update(extra=1), "not a DSSE envelope"),
    ],
    ids=["payload-type", "keyid", "signature", "extra-key"],
)
def test_envelope_fields_tampered_fail(
    world: dict[str, Any], cert: Path, edit: Callable, message: str
) -> None:
    envelope = _envelope(cert)
    edit(envelope)
    cert.write_bytes(certificate_bytes(envelope))
    with pytest.raises(VerificationError, match=message):
        verify_certificate(cert, world["pub"])


def test_wrong_key_fails(world: dict[str, Any], cert: Path) -> None:
    with pytest.raises(VerificationError, match="key id"):
        verify_certificate(cert, world["other_pub"])
    resign(cert, world["other_key"], lambda s: None)  # signed by someone else entirely
    with pytest.raises(VerificationError, match="key id"):
        verify_certificate(cert, world["pub"])


def test_swapped_bundle_fails(world: dict[str, Any], cert: Path) -> None:
    with pytest.raises(VerificationError, match=r"policy\.onnx sha256"):
        verify_certificate(cert, world["pub"], world["random"])
    with pytest.raises(VerificationError, match="never opened"):
        verify_certificate(cert, world["pub"], cert.parent / "model.zip")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("episodes.jsonl", "episode log .* does not match its signed sha256"),
        ("report.md", "report file report.md does not match"),
        ("plots/criteria.png", "report file plots/criteria.png does not match"),
        ("report.html", "report file report.html does not match"),
        ("stills/episode_0000_last.png", "report file stills/episode_0000_last.png does not"),
    ],
)
def test_files_beside_the_certificate_tampered_fail(
    world: dict[str, Any], cert: Path, name: str, message: str
) -> None:
    path = cert.parent / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match=message):
        verify_certificate(cert, world["pub"])
    path.unlink()
    with pytest.raises(VerificationError, match="missing"):
        verify_certificate(cert, world["pub"])


# ---------------------------------------------------------------- a dishonest key holder
def _inflate_success(statement: dict[str, Any]) -> None:
    success = statement["predicate"]["criteria"][0]
    success["k"], success["verdict"] = EPISODES + 1, "PASS"


def _other_seed(statement: dict[str, Any]) -> None:
    statement["predicate"]["seeds"]["master_seed"] = "ab" * 32


def _easier_spec(statement: dict[str, Any]) -> None:
    statement["predicate"]["benchmark"]["spec"]["criteria"][0]["p0"] = 0.01


def _flip_verdict(statement: dict[str, Any]) -> None:
    predicate = statement["predicate"]
    predicate["verdict"] = "FAILED" if predicate["verdict"] == "PASSED" else "PASSED"


def _better_bucket(statement: dict[str, Any]) -> None:
    bucket = statement["predicate"]["robustness"][0]["buckets"][0]
    bucket["n"] += 1
    bucket["successes"] += 1


def _passed_bucket_criterion(statement: dict[str, Any]) -> None:
    criterion = statement["predicate"]["bucket_criteria"][0]
    criterion["p0"], criterion["verdict"] = 0.01, "PASS"


def _dropped_robustness(statement: dict[str, Any]) -> None:
    del statement["predicate"]["robustness"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_inflate_success, "criteria differ"),
        (_other_seed, "does not match the seed commitment"),
        (_easier_spec, "spec digest"),
        (_flip_verdict, "verdict differ"),
        (_better_bucket, "robustness differ"),
        (_passed_bucket_criterion, "bucket_criteria differ"),
        (_dropped_robustness, "robustness differ"),
    ],
    ids=[
        "inflated-k",
        "other-master-seed",
        "edited-spec",
        "flipped-verdict",
        "better-bucket",
        "eased-bucket-criterion",
        "dropped-robustness",
    ],
)
def test_resigned_lies_are_caught(
    world: dict[str, Any], cert: Path, edit: Callable, message: str
) -> None:
    resign(cert, world["key"], edit)
    with pytest.raises(VerificationError, match=message):
        verify_certificate(cert, world["pub"])


def _without_conditions(log: list[dict[str, Any]]) -> Callable[[dict[str, Any]], None]:
    """An edit that makes the statement look like one issued before conditions existed."""

    def edit(statement: dict[str, Any]) -> None:
        predicate = statement["predicate"]
        spec = parse_spec(predicate["benchmark"]["spec"])
        spec.conditions = []
        predicate["benchmark"]["spec"] = spec_data(spec)
        predicate["benchmark"]["spec_digest"] = spec_digest(spec)
        predicate.update(evaluate(spec, [r["metrics"] for r in log]).to_dict())
        del predicate["robustness"], predicate["bucket_criteria"]

    return edit


def test_certificates_from_before_conditions_still_verify(
    world: dict[str, Any], cert: Path
) -> None:
    log = [json.loads(line) for line in (cert.parent / "episodes.jsonl").read_text().splitlines()]
    resign(cert, world["key"], _without_conditions(log))
    predicate = verify_certificate(cert, world["pub"]).predicate
    assert "robustness" not in predicate and "conditions" not in predicate["benchmark"]["spec"]
    assert predicate["criteria"][0]["alpha"] == pytest.approx(0.05 / 2)


def _fabricate_log(cert: Path, key: Path) -> None:
    """A consistent certificate over an invented episode log (only a re-run can tell)."""
    log_path = cert.parent / "episodes.jsonl"
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    records[0]["metrics"]["energy_j"] *= 0.5
    log_path.write_bytes(episode_log_bytes(records))

    def edit(statement: dict[str, Any]) -> None:
        predicate = statement["predicate"]
        spec = parse_spec(predicate["benchmark"]["spec"])
        predicate.update(evaluate(spec, [r["metrics"] for r in records]).to_dict())
        predicate["episodes"]["log_sha256"] = sha256_bytes(log_path.read_bytes())

    resign(cert, key, edit)


def test_verify_cli_rerun_reproduces_and_catches_a_fabricated_log(
    world: dict[str, Any], cert: Path, capsys: pytest.CaptureFixture
) -> None:
    args = [
        "verify",
        str(cert),
        "--pubkey",
        str(world["pub"]),
        "--bundle",
        str(world["scripted"]),
        "--rerun",
        "--no-progress",
    ]
    assert main(args) == 0
    assert f"all {EPISODES} episodes reproduced exactly" in capsys.readouterr().out
    _fabricate_log(cert, world["key"])
    verify_certificate(cert, world["pub"], world["scripted"])  # consistent on its face
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "rerun differs: episode 0" in out and "energy_j" in out


def test_verify_cli_names_the_failure(
    world: dict[str, Any], cert: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["verify", str(cert), "--pubkey", str(world["pub"])]) == 0
    assert "certificate valid" in capsys.readouterr().out
    code = main(
        ["verify", str(cert), "--pubkey", str(world["pub"]), "--bundle", str(world["random"])]
    )
    assert code == 1
    assert "robocell verify: error: bundle policy.onnx sha256" in capsys.readouterr().err
    assert main(["verify", str(cert), "--pubkey", str(world["pub"]), "--rerun"]) == 2
