"""Certification: seeds, keys, specs, intake refusals and verdicts of real weld bundles."""

from __future__ import annotations

import json
import os
import pickle
import stat
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import onnx
import pytest
import yaml
from certtools import (
    VISION_ID,
    WELD_ID,
    scaled_weld_graph,
    small_weld_spec,
    write_nan_vision_bundle,
    write_random_weld_bundle,
    write_scripted_weld_bundle,
    write_weld_bundle,
)

from robocell.agents.bundle import load_bundle
from robocell.agents.scripted import scripted_weld_graph
from robocell.cli import main
from robocell.envs import ENV_IDS
from robocell.envs.weld.controller import ScriptedWelder
from robocell.errors import RobocellError, VerificationError
from robocell.eval import seeds
from robocell.eval.certify import CertifyResult, certify
from robocell.eval.keys import (
    generate_keypair,
    load_private_key,
    load_public_key,
    public_key_fingerprint,
)
from robocell.eval.runner import intake_bundle
from robocell.eval.spec import load_spec, parse_spec, spec_digest
from robocell.eval.verify import verify_certificate
from robocell.util import sha256_bytes

FIXED_SEED = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bundles")
    return {
        "scripted": write_scripted_weld_bundle(root / "scripted"),
        "random": write_random_weld_bundle(root / "random"),
    }


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh key per test: each key keeps its own record of the seeds it revealed."""
    return generate_keypair(tmp_path / "keys")


def _certify(
    bundle: Path, spec: dict, keys: tuple[Path, Path], out: Path, workers: int = 1
) -> CertifyResult:
    """Certify with the fixed master seed and the module's key."""
    return certify(
        bundle,
        parse_spec(spec),
        FIXED_SEED,
        seeds.commitment(FIXED_SEED),
        load_private_key(keys[0]),
        out,
        workers=workers,
        progress=False,
    )


def _write_spec(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


# ---------------------------------------------------------------- seeds and keys
def test_commitment_and_episode_seeds_follow_the_documented_rule() -> None:
    zero = "00" * 32
    assert seeds.commitment(zero) == sha256_bytes(bytes(32))
    derived = [seeds.episode_seed(FIXED_SEED, i) for i in range(200)]
    assert derived == [seeds.episode_seed(FIXED_SEED, i) for i in range(200)]
    assert len(set(derived)) == 200
    assert all(0 <= s < 2**63 for s in derived)
    assert derived[:5] != [seeds.episode_seed(zero, i) for i in range(5)]
    import hashlib
    import hmac

    mac = hmac.new(bytes.fromhex(FIXED_SEED), b"robocell/episode-seed/v1:7", hashlib.sha256)
    assert derived[7] == int.from_bytes(mac.digest()[:8], "big") >> 1


def test_new_master_seeds_are_fresh_and_readable(tmp_path: Path) -> None:
    first, second = seeds.new_master_seed(), seeds.new_master_seed()
    assert first != second and len(first) == 64
    seeds.write_master_seed(tmp_path / "seed", first)
    assert stat.S_IMODE((tmp_path / "seed").stat().st_mode) == 0o600
    assert seeds.read_master_seed(tmp_path / "seed") == first
    with pytest.raises(RobocellError, match="refusing to overwrite"):
        seeds.write_master_seed(tmp_path / "seed", second)
    (tmp_path / "bad").write_text("not hex\n")
    with pytest.raises(RobocellError, match="64 hex digits"):
        seeds.read_master_seed(tmp_path / "bad")


def test_keypair_files_permissions_and_fingerprint(tmp_path: Path) -> None:
    key_path, pub_path = generate_keypair(tmp_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert key_path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    private, public = load_private_key(key_path), load_public_key(pub_path)
    assert public_key_fingerprint(private.public_key()) == public_key_fingerprint(public)
    with pytest.raises(RobocellError, match="refusing to overwrite"):
        generate_keypair(tmp_path)
    os.chmod(key_path, 0o644)
    with pytest.raises(RobocellError, match="readable by others"):
        load_private_key(key_path)
    with pytest.raises(RobocellError, match="not a PEM public key"):
        load_public_key(key_path)


def test_cli_creates_keys_and_seed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["keys", "new", "-o", str(tmp_path / "k")]) == 0
    assert main(["seeds", "new", "-o", str(tmp_path / "seed")]) == 0
    out = capsys.readouterr().out
    printed = out.split("commitment: ")[1].split()[0]
    assert printed == seeds.commitment(seeds.read_master_seed(tmp_path / "seed"))
    assert (tmp_path / "k" / "certifier.pub").is_file()


# ---------------------------------------------------------------- benchmark specs
def test_packaged_weld_spec_is_valid() -> None:
    spec = load_spec("weld")
    assert spec.env_id == WELD_ID and spec.episodes == 100
    assert len(spec_digest(spec)) == 64


def _packaged_specs() -> dict[str, Path]:
    folder = Path(__file__).resolve().parents[1] / "configs" / "benchmarks"
    return {load_spec(path).env_id: path for path in sorted(folder.glob("*.yaml"))}


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_cell_has_a_benchmark_whose_metrics_it_reports(env_id: str) -> None:
    specs = _packaged_specs()
    assert env_id in specs, f"no spec in configs/benchmarks for {env_id}"
    spec = load_spec(specs[env_id])
    assert spec.episodes >= 59 and spec.alpha <= 0.05
    env = gym.make(env_id, **spec.env_kwargs)
    env.action_space.seed(0)
    env.reset(seed=0)
    while True:
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        if terminated or truncated:
            break
    env.close()
    reported = set(info["episode_metrics"])
    needed = {c.metric for c in spec.criteria if c.if_missing is None}
    needed |= {f.metric for f in spec.figures} | {c.metric for c in spec.conditions}
    assert needed <= reported, sorted(needed - reported)


def test_spec_digest_ignores_formatting(tmp_path: Path) -> None:
    data = small_weld_spec(12)
    reordered = dict(reversed(list(data.items())))
    a = load_spec(_write_spec(tmp_path / "a.yaml", data))
    b = load_spec(_write_spec(tmp_path / "b.yaml", reordered))
    assert spec_digest(a) == spec_digest(b)
    data["criteria"][0]["p0"] = 0.55
    assert spec_digest(parse_spec(data)) != spec_digest(a)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(episodez=3), "episodez: unknown key"),
        (lambda d: d.pop("alpha"), "alpha: required key is missing"),
        (lambda d: d["criteria"][0].update(op="~"), "criteria[0].op: must be one of"),
        (lambda d: d["criteria"][0].update(p0=1.5), "p0: must be in (0, 1)"),
        (lambda d: d.update(episodes=3), "can never pass criterion 'success'"),
        (lambda d: d.update(criteria=[]), "at least one pass/fail criterion"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(tmp_path: Path, edit, message: str) -> None:
    data = small_weld_spec(12)
    edit(data)
    with pytest.raises(RobocellError) as error:
        load_spec(_write_spec(tmp_path / "spec.yaml", data))
    assert message in str(error.value)


# ---------------------------------------------------------------- the scripted bundle
def test_scripted_bundle_acts_exactly_like_the_scripted_welder(bundles: dict) -> None:
    policy = load_bundle(bundles["scripted"])
    env = gym.make(WELD_ID)
    welder = ScriptedWelder(env.unwrapped)
    observations, obs = [], env.reset(seed=5)[0]
    for _ in range(400):
        observations.append(obs)
        obs, _, terminated, truncated, _ = env.step(welder(obs))
        if terminated or truncated:
            obs = env.reset(seed=len(observations))[0]
    env.close()
    expected = np.array([welder(o) for o in observations])
    actual = np.array([policy.act(o) for o in observations])
    assert np.array_equal(actual, expected)
    assert len({tuple(a) for a in expected[:, 3:]}) == 2  # both arc states were exercised


# ---------------------------------------------------------------- verdicts
def test_scripted_bundle_passes_via_the_cli(
    bundles: dict, keys: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    spec_path = _write_spec(tmp_path / "spec.yaml", small_weld_spec(12))
    (tmp_path / "seed").write_text(FIXED_SEED + "\n")
    code = main(
        [
            "certify",
            str(bundles["scripted"]),
            "--benchmark",
            str(spec_path),
            "--master-seed-file",
            str(tmp_path / "seed"),
            "--commitment",
            seeds.commitment(FIXED_SEED),
            "--key",
            str(keys[0]),
            "-o",
            str(tmp_path / "cert"),
            "--workers",
            "2",
            "--no-progress",
        ]
    )
    assert code == 0
    assert "verdict: PASSED" in capsys.readouterr().out
    verified = verify_certificate(
        tmp_path / "cert" / "certificate.json", keys[1], bundles["scripted"]
    )
    assert verified.verdict == "PASSED"
    log = [
        json.loads(line) for line in (tmp_path / "cert" / "episodes.jsonl").read_text().splitlines()
    ]
    assert [r["seed"] for r in log] == [seeds.episode_seed(FIXED_SEED, i) for i in range(12)]
    assert all(r["metrics"]["invalid_actions"] == 0 for r in log)
    success = next(c for c in verified.predicate["criteria"] if c["name"] == "success")
    assert success["n"] == 12 and success["k"] == sum(r["metrics"]["success"] for r in log)
    markdown = (tmp_path / "cert" / "report.md").read_text()
    assert markdown.count("PASS") >= 2
    assert "Input guard: 0 episodes with a faulted observation (0 steps" in markdown
    html = (tmp_path / "cert" / "report.html").read_text()
    assert "Input guard: 0 episodes with a faulted observation (0 steps" in html
    assert (tmp_path / "cert" / "plots" / "energy_per_part_j.png").stat().st_size > 1000


def test_random_bundle_fails(bundles: dict, keys: tuple[Path, Path], tmp_path: Path) -> None:
    result = _certify(bundles["random"], small_weld_spec(12), keys, tmp_path / "cert")
    assert result.verdict == "FAILED"
    success = next(c for c in result.evaluation.criteria if c.name == "success")
    assert success.k == 0 and success.verdict == "FAIL"
    assert verify_certificate(result.certificate_path, keys[1]).verdict == "FAILED"
    log = (tmp_path / "cert" / "episodes.jsonl").read_text().splitlines()
    assert len(log) == 12  # every episode ran and counts, failed or not


def test_the_certificate_does_not_depend_on_the_worker_count(
    bundles: dict, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    # Two workers run the episodes in another order and each of their envs sees other
    # episodes before; only the run's timing and worker count may differ.
    contents = []
    for workers in (1, 2):
        out = tmp_path / f"cert_{workers}"
        result = _certify(bundles["scripted"], small_weld_spec(6), keys, out, workers)
        statement = json.loads(json.dumps(result.statement))
        predicate = statement["predicate"]
        assert predicate.pop("run")["workers"] == workers
        for page in ("report.md", "report.html"):  # both pages show the run: timing, workers
            predicate["report"].pop(page)
        contents.append((statement, (out / "episodes.jsonl").read_bytes()))
    assert contents[0] == contents[1]


def test_certify_refuses_a_used_output_directory(
    bundles: dict, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    (tmp_path / "cert").mkdir()
    (tmp_path / "cert" / "notes.txt").write_text("keep me")
    spec = parse_spec(small_weld_spec(12))
    with pytest.raises(RobocellError, match="not an empty directory"):
        certify(
            bundles["scripted"],
            spec,
            FIXED_SEED,
            seeds.commitment(FIXED_SEED),
            load_private_key(keys[0]),
            tmp_path / "cert",
            progress=False,
        )
    assert sorted(p.name for p in (tmp_path / "cert").iterdir()) == ["notes.txt"]


def test_wrong_master_seed_is_refused(
    bundles: dict, keys: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "seed").write_text(FIXED_SEED + "\n")
    other = seeds.commitment("ab" * 32)
    code = main(
        [
            "certify",
            str(bundles["scripted"]),
            "--benchmark",
            "weld",
            "--master-seed-file",
            str(tmp_path / "seed"),
            "--commitment",
            other,
            "--key",
            str(keys[0]),
            "-o",
            str(tmp_path / "cert"),
        ]
    )
    assert code == 2
    assert "does not match the commitment" in capsys.readouterr().err
    assert not (tmp_path / "cert").exists()


# ---------------------------------------------------------------- malicious intake
class _Payload:
    """Unpickling this creates the marker file: the stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _malicious_files(root: Path, marker: Path, manifest_from: Path) -> list[Path]:
    payload = pickle.dumps(_Payload(marker))
    files = []
    for name in ("model.pkl", "policy.pt", "policy.pth", "checkpoint.ckpt"):
        (root / name).write_bytes(payload)
        files.append(root / name)
    with zipfile.ZipFile(root / "model.zip", "w") as archive:  # the SB3 save format
        archive.writestr("data", "{}")
        archive.writestr("policy.pth", payload)
    files.append(root / "model.zip")
    (root / "model.bin").write_bytes(payload)  # a pickle under an innocent name
    files.append(root / "model.bin")
    # A bundle directory whose ONNX file is a pickle, with a valid manifest naming its digest.
    disguised = root / "disguised_bundle"
    disguised.mkdir()
    (disguised / "policy.onnx").write_bytes(payload)
    manifest = json.loads((manifest_from / "manifest.json").read_text())
    manifest["onnx_sha256"] = sha256_bytes(payload)
    (disguised / "manifest.json").write_text(json.dumps(manifest))
    files.append(disguised)
    return files


def test_the_malicious_pickle_really_runs_code_when_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "proof"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


def test_malicious_files_are_refused_and_run_no_code(
    bundles: dict, keys: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    marker = tmp_path / "code_ran"
    (tmp_path / "seed").write_text(FIXED_SEED + "\n")
    for path in _malicious_files(tmp_path, marker, bundles["scripted"]):
        code = main(
            [
                "certify",
                str(path),
                "--benchmark",
                "weld",
                "--master-seed-file",
                str(tmp_path / "seed"),
                "--commitment",
                seeds.commitment(FIXED_SEED),
                "--key",
                str(keys[0]),
                "-o",
                str(tmp_path / f"cert_{path.name}"),
            ]
        )
        err = capsys.readouterr().err
        assert code == 1, (path, err)
        assert "robocell certify: error:" in err and str(path) in err
        if path.name == "disguised_bundle":
            assert "not an ONNX model" in err
        assert not marker.exists(), path
        assert not (tmp_path / f"cert_{path.name}").exists()


def _rewrite_onnx(bundle: Path, edit) -> None:
    model = onnx.load_from_string((bundle / "policy.onnx").read_bytes())
    edit(model)
    data = model.SerializeToString()
    (bundle / "policy.onnx").write_bytes(data)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["onnx_sha256"] = sha256_bytes(data)
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _custom_domain(model: onnx.ModelProto) -> None:
    model.opset_import.append(onnx.helper.make_opsetid("com.evil", 1))
    model.graph.node.append(onnx.helper.make_node("Run", ["obs"], ["x"], domain="com.evil"))


def _external_data(model: onnx.ModelProto) -> None:
    tensor = model.graph.initializer[0]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="/etc/passwd")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_custom_domain, "domain"),
        (_external_data, "external data"),
        (lambda model: None, None),
    ],
    ids=["custom-op-domain", "external-data", "digest-mismatch"],
)
def test_unsafe_onnx_bundles_are_refused(tmp_path: Path, edit, message: str | None) -> None:
    bundle = write_scripted_weld_bundle(tmp_path / "bundle")
    spec = parse_spec(small_weld_spec(12))
    if message is None:  # edit the graph after the manifest was written
        (bundle / "policy.onnx").write_bytes((bundle / "policy.onnx").read_bytes() + b"\0")
        message = "does not match the manifest"
    else:
        _rewrite_onnx(bundle, edit)
    with pytest.raises(VerificationError, match=message):
        intake_bundle(bundle, spec)


def test_oversized_onnx_is_refused(bundles: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import robocell.agents.bundle.policy as export

    monkeypatch.setattr(export.load_bundle, "__defaults__", (256,))
    with pytest.raises(VerificationError, match="over the cap"):
        intake_bundle(bundles["scripted"], parse_spec(small_weld_spec(12)))


def test_bundle_for_another_cell_is_refused(bundles: dict) -> None:
    spec = parse_spec(small_weld_spec(12, env_id="robocell/PegInsert-v0"))
    with pytest.raises(VerificationError, match="bundle is for 'robocell/WeldSeam-v1'"):
        intake_bundle(bundles["scripted"], spec)


# ---------------------------------------------------------------- action bounds, bad actions
def _widen_bounds(manifest: dict) -> None:
    for field in manifest["action"]["fields"]:
        field["low"], field["high"] = -1e6, 1e6


def test_manifest_claiming_wider_bounds_than_the_cell_is_refused(tmp_path: Path) -> None:
    bundle = write_weld_bundle(tmp_path / "wide", scripted_weld_graph(), _widen_bounds)
    with pytest.raises(VerificationError, match=r"acts in box \[4\] within \[-1000000.0"):
        intake_bundle(bundle, parse_spec(small_weld_spec(6)))


def test_outputs_beyond_the_bounds_fail_the_certificate(
    keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """The arc command × 1e6: the cell clips it and welds like the scripted welder, but a
    controller that scales the raw output would command a million times the arc."""
    bundle = write_weld_bundle(tmp_path / "loud", scaled_weld_graph([1.0, 1.0, 1.0, 1e6]))
    spec = parse_spec(small_weld_spec(6))
    commitment = seeds.commitment(FIXED_SEED)
    key = load_private_key(keys[0])
    result = certify(bundle, spec, FIXED_SEED, commitment, key, tmp_path / "cert", progress=False)
    assert all(c.verdict == "PASS" for c in result.evaluation.criteria)  # welds like the reference
    assert result.evaluation.actions.verdict == "FAIL"
    assert result.evaluation.actions.episodes_with_invalid_actions == 6
    assert result.verdict == "FAILED"
    log = (tmp_path / "cert" / "episodes.jsonl").read_text().splitlines()
    assert all(json.loads(line)["metrics"]["invalid_actions"] > 0 for line in log)
    assert verify_certificate(result.certificate_path, keys[1]).verdict == "FAILED"


def test_nan_actions_give_a_failed_certificate_not_a_crash(
    keys: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bundle = write_nan_vision_bundle(tmp_path / "nan")
    success = {"name": "success", "metric": "success", "op": ">=", "value": 1, "p0": 0.5}
    spec = {"name": "vision-test", "env_id": VISION_ID, "episodes": 6, "alpha": 0.05,
            "env_kwargs": {"action_mode": "continuous"}}  # fmt: skip
    spec_path = _write_spec(tmp_path / "spec.yaml", {**spec, "criteria": [success]})
    (tmp_path / "seed").write_text(FIXED_SEED + "\n")
    argv = ["certify", str(bundle), "--benchmark", str(spec_path), "--no-progress"]
    argv += ["--master-seed-file", str(tmp_path / "seed"), "--key", str(keys[0])]
    argv += ["--commitment", seeds.commitment(FIXED_SEED), "-o", str(tmp_path / "cert")]
    assert main(argv) == 0, capsys.readouterr().err
    assert "verdict: FAILED" in capsys.readouterr().out
    log = [json.loads(line) for line in (tmp_path / "cert" / "episodes.jsonl").open()]
    assert all(r["metrics"]["fault"] == 1.0 for r in log)
    assert all(r["metrics"]["invalid_actions"] == 1.0 for r in log)  # the first step ends it
