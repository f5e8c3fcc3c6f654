"""Crafted specs, certificates, bundles and files against certify and verify.

Each case is one way an earlier robocell answered with a traceback, a hang, a wrong fingerprint
or a second certificate on a revealed seed; each must now be a one-line error, a non-zero exit
and nothing half-written. The ledger's cases are in ``test_one_payment.py``.
"""

from __future__ import annotations

import base64
import fcntl
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from certtools import read_statement, resign, small_weld_spec, write_scripted_weld_bundle
from releasetools import Certified

from robocell.cli import main
from robocell.eval import certify as certify_module
from robocell.eval import seeds
from robocell.eval.certify import certificate_bytes
from robocell.eval.dsse import IN_TOTO_PAYLOAD_TYPE, pae
from robocell.eval.keys import generate_keypair, load_private_key, public_key_fingerprint

SEED = "c0ffee00" * 8
EPISODES = 6


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """A fresh key (and so a fresh revealed-seed record), a seed file, a spec, a bundle."""
    key, pub = generate_keypair(tmp_path / "keys")
    (tmp_path / "seed").write_text(SEED + "\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(small_weld_spec(EPISODES)))
    bundle = write_scripted_weld_bundle(tmp_path / "bundle")
    return {"key": key, "pub": pub, "seed": tmp_path / "seed", "spec": spec, "bundle": bundle}


def _certify(world: dict[str, Path], out: Path, spec: Path | None = None, bundle=None) -> int:
    argv = ["certify", str(bundle or world["bundle"]), "--benchmark", str(spec or world["spec"])]
    argv += ["--master-seed-file", str(world["seed"]), "--commitment", seeds.commitment(SEED)]
    return main(
        [*argv, "--key", str(world["key"]), "-o", str(out), "--no-progress", "--stills", "0"]
    )


def _spec_text(world: dict[str, Path], old: str, new: str) -> Path:
    text = world["spec"].read_text()
    assert old in text
    path = world["spec"].with_name("edited.yaml")
    path.write_text(text.replace(old, new, 1))
    return path


# ---------------------------------------------------------------- a revealed seed
def test_certify_refuses_to_reveal_a_seed_twice(world, tmp_path, capsys):
    assert _certify(world, tmp_path / "first") == 0
    capsys.readouterr()
    assert _certify(world, tmp_path / "second") == 2
    err = capsys.readouterr().err
    assert "already revealed" in err and str(tmp_path / "first") in err
    assert not (tmp_path / "second").exists()


def test_an_interrupted_certify_does_not_reveal_its_seed(world, tmp_path, monkeypatch):
    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(certify_module.OutputDirectory, "publish", interrupted)
    assert _certify(world, tmp_path / "cert") == 130
    assert not (tmp_path / "cert").exists()
    monkeypatch.undo()
    assert _certify(world, tmp_path / "cert") == 0


# ---------------------------------------------------------------- specs
@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            f"episodes: {EPISODES}",
            f"episodes: 500\nepisodes: {EPISODES}",
            "duplicate key 'episodes'",
        ),
        (f"episodes: {EPISODES}", "episodes: 1000000000000", "episodes: must be within 1..100000"),
        ("resamples: 999", "resamples: 1000000000", "bootstrap.resamples: must be within"),
        ("value: 1\n", "value: .nan\n", "not a finite number"),
        (
            "name: weld-test",
            "name: weld-test\nenv_kwargs: {max_episode_steps: 100000}",
            "own limit of",
        ),
    ],
    ids=["duplicate-key", "episodes-1e12", "resamples-1e9", "nan-criterion", "episode-limit"],
)
def test_a_bad_spec_is_refused_before_any_episode_runs(world, tmp_path, capsys, old, new, message):
    spec = _spec_text(world, old, new)
    assert _certify(world, tmp_path / "cert", spec) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "cert").exists()


def test_a_nan_figure_limit_is_refused(world, tmp_path, capsys):
    data = small_weld_spec(EPISODES)
    data["figures"] = [{"name": "energy", "metric": "energy_j", "limit": float("nan")}]
    spec = tmp_path / "nan.yaml"
    spec.write_text(yaml.safe_dump(data))
    assert _certify(world, tmp_path / "cert", spec) == 2
    assert "not a finite number" in capsys.readouterr().err


# ---------------------------------------------------------------- the output location
def test_an_unwritable_output_is_refused_before_any_episode_runs(
    world, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(certify_module, "run_episodes", pytest.fail)
    (tmp_path / "file").write_text("x")
    assert _certify(world, tmp_path / "file" / "cert") == 2
    assert "cannot write there" in capsys.readouterr().err


def test_two_certify_runs_to_one_output_are_refused_at_the_start(
    world, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "cert"
    with open(tmp_path / ".cert.certify-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # what a running certify holds
        monkeypatch.setattr(certify_module, "run_episodes", pytest.fail)
        assert _certify(world, out) == 2
    assert "another certify is writing there" in capsys.readouterr().err
    assert not out.exists()


def test_a_full_disk_while_writing_is_a_clear_error_and_reveals_nothing(
    world, tmp_path, capsys, monkeypatch
):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(certify_module, "atomic_write_bytes", full)
    assert _certify(world, tmp_path / "cert") == 2
    assert "No space left on device" in capsys.readouterr().err
    assert not (tmp_path / "cert").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cert")] == []
    monkeypatch.undo()
    assert _certify(world, tmp_path / "cert") == 0  # the seed was not revealed


def test_certificate_files_are_readable_by_everyone(world, tmp_path):
    assert _certify(world, tmp_path / "cert") == 0
    for path in [tmp_path / "cert", *(tmp_path / "cert").rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o444 == 0o444, f"{path} is {oct(mode)}"


# ---------------------------------------------------------------- bundles
def test_a_manifest_nested_100000_deep_is_refused(world, tmp_path, capsys):
    bundle = tmp_path / "deep"
    shutil.copytree(world["bundle"], bundle)
    (bundle / "manifest.json").write_text('{"a":' + "[" * 100_000 + "]" * 100_000 + "}")
    assert _certify(world, tmp_path / "cert", bundle=bundle) == 1
    assert "nested more than 64 deep" in capsys.readouterr().err
    assert not (tmp_path / "cert").exists()


def test_a_bundle_directory_that_is_a_symlink_is_refused(world, tmp_path, capsys):
    link = tmp_path / "link"
    link.symlink_to(world["bundle"], target_is_directory=True)
    assert _certify(world, tmp_path / "cert", bundle=link) == 1
    assert "a symbolic link, not a bundle directory" in capsys.readouterr().err


# ---------------------------------------------------------------- certificates
def _verify(cert: Path, pub: Path) -> int:
    return main(["verify", str(cert), "--pubkey", str(pub)])


def _copy(certified: Certified, tmp: Path) -> Path:
    shutil.copytree(certified.passed.parent, tmp / "cert")
    return tmp / "cert" / "certificate.json"


def _sign_payload(cert: Path, key: Path, payload: bytes) -> None:
    signature = load_private_key(key).sign(pae(IN_TOTO_PAYLOAD_TYPE, payload))
    fingerprint = public_key_fingerprint(load_private_key(key).public_key())
    envelope = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "signatures": [{"keyid": fingerprint, "sig": base64.b64encode(signature).decode()}],
    }
    cert.write_bytes(certificate_bytes(envelope))


@pytest.mark.parametrize(
    "payload",
    [
        b'{"_type":' + b"9" * 5000 + b"}",
        b'{"_type":' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        b'{"_type":1,"_type":2}',
    ],
    ids=["5000-digit-integer", "200000-deep", "duplicate-key"],
)
def test_a_crafted_signed_payload_is_refused(certified, tmp_path, capsys, payload):
    cert = _copy(certified, tmp_path)
    _sign_payload(cert, certified.key, payload)
    assert _verify(cert, certified.pub) == 1
    err = capsys.readouterr().err
    assert "signed payload" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s["predicate"].__setitem__("report", ["report.md"]),
        lambda s: s["predicate"]["seeds"].__setitem__("master_seed", 5),
        lambda s: s["predicate"].__setitem__("criteria", "all"),
        lambda s: s.__setitem__("subject", {"name": "x"}),
    ],
    ids=["report-list", "seed-int", "criteria-str", "subject-dict"],
)
def test_a_validly_signed_predicate_of_the_wrong_shape_is_refused(
    certified, tmp_path, capsys, edit
):
    cert = _copy(certified, tmp_path)
    resign(cert, certified.key, edit)
    assert _verify(cert, certified.pub) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_verify_names_the_key_that_checked_the_signature(certified, tmp_path, capsys):
    cert = _copy(certified, tmp_path)
    other_key, other_pub = generate_keypair(tmp_path / "other")
    resign(cert, other_key, lambda statement: None)  # the predicate still names the first key
    assert read_statement(cert)["predicate"]["certifier"]["key_fingerprint"] != (
        public_key_fingerprint(load_private_key(other_key).public_key())
    )
    assert _verify(cert, other_pub) == 1
    assert "but the signature was checked with key" in capsys.readouterr().err
    assert _verify(certified.passed, certified.pub) == 0
    fingerprint = public_key_fingerprint(load_private_key(certified.key).public_key())
    assert f"signature: valid (key {fingerprint})" in capsys.readouterr().out


# ---------------------------------------------------------------- unreadable files
def _as_nobody(*argv: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "robocell", *argv]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot drop to another user")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_unreadable_files_are_clear_errors(certified, tmp_path):
    """Files of another user, mode 0600, as the buyer running ``verify`` would meet them."""
    shared = Path(f"/tmp/robocell-unreadable-{os.getpid()}")
    shutil.rmtree(shared, ignore_errors=True)
    shutil.copytree(certified.passed.parent, shared / "cert")
    shutil.copy(certified.pub, shared / "certifier.pub")
    shutil.copytree(certified.scripted, shared / "bundle")
    try:
        for path in [shared, *shared.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        cases = {
            "cert/certificate.json": ["verify", "cert", "--pubkey", "certifier.pub"],
            "certifier.pub": ["verify", "cert", "--pubkey", "certifier.pub"],
            "bundle/manifest.json": [
                "verify",
                "cert",
                "--pubkey",
                "certifier.pub",
                "--bundle",
                "bundle",
            ],
        }
        for name, argv in cases.items():
            (shared / name).chmod(0o600)
            result = _as_nobody(*[str(shared / a) if (shared / a).exists() else a for a in argv])
            (shared / name).chmod(0o644)
            assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
            assert name.split("/")[-1] in result.stderr
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_an_unreadable_master_seed_file_is_a_clear_error(world, tmp_path, monkeypatch, capsys):
    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", denied)
    assert _certify(world, tmp_path / "cert") == 2
    assert "permission denied reading a master seed file" in capsys.readouterr().err
