"""``robocell verify``: check a certificate end to end, optionally re-running its episodes.

:func:`verify_certificate` checks, in order, and raises VerificationError naming the first
failure: the file is the canonical serialisation of a DSSE envelope; the payload type; the
Ed25519 signature over the PAE with the given key; the in-toto Statement type, subjects and
predicate type; the benchmark spec against its digest; the master seed against its
commitment; the per-episode log against its digest, its episode count and every derived seed;
every criterion, bucket criterion, figure, the robustness table and the verdict recomputed from
the log; the report files (``report.md``, ``report.html``, plots, stills) against their
digests; and, given a bundle, its files against the subject digests.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from robocell.agents.bundle import SUBJECT_NAMES, check_subject_digests
from robocell.errors import RobocellError, VerificationError
from robocell.eval.certify import (
    CERTIFICATE_NAME,
    LOG_NAME,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    certificate_bytes,
    episode_log_bytes,
)
from robocell.eval.decision import evaluate
from robocell.eval.dsse import IN_TOTO_PAYLOAD_TYPE, open_envelope
from robocell.eval.keys import load_public_key, public_key_fingerprint
from robocell.eval.runner import EpisodeJob, intake_bundle, run_episodes
from robocell.eval.seeds import DERIVATION_RULE, commitment, episode_seed
from robocell.eval.spec import BenchmarkSpec, parse_spec, spec_digest
from robocell.util import load_json_strict, read_error, sha256_bytes, sha256_file

# Recomputed statistics may differ from the signed ones in the last bits on another platform.
RELATIVE_TOLERANCE = 1e-9
# Results that certificates issued before operating conditions existed do not carry: absent,
# they must recompute to an empty list (a spec without conditions).
RESULTS = ("criteria", "figures", "actions", "verdict")
RESULTS_SINCE_CONDITIONS = ("bucket_criteria", "robustness")


@dataclass
class VerifiedCertificate:
    """A certificate whose every check passed (see the module docstring)."""

    path: Path
    statement: dict[str, Any]
    predicate: dict[str, Any]
    verdict: str
    spec_digest: str
    commitment: str
    subject_digests: dict[str, str]
    certificate_sha256: str
    spec: BenchmarkSpec
    key_fingerprint: str
    """Fingerprint of the key that checked the signature (and that the predicate names)."""
    episodes: list[dict[str, Any]] = field(repr=False, default_factory=list)


def verify_certificate(
    cert_path: str | Path,
    public_key: Ed25519PublicKey | str | Path,
    bundle_dir: str | Path | None = None,
    report_optional: bool = False,
) -> VerifiedCertificate:
    """Verify ``cert_path`` (a ``certificate.json`` beside its log and report) with the key.

    ``public_key`` is a key or the path of a PEM file. With ``bundle_dir`` the bundle's files
    must match the certificate's subjects. With ``report_optional`` a missing report file is
    accepted (the report is rebuilt from the certificate and its log); one that is present
    must still match its signed digest.
    """
    cert_path, raw, statement, public_key = open_certificate(cert_path, public_key)
    with malformed_statement(cert_path):
        verified = _check_content(cert_path, raw, statement, public_key, report_optional)
    if bundle_dir is not None:
        check_subject_digests(bundle_dir, verified.subject_digests)
    return verified


def _check_content(
    cert_path: Path,
    raw: bytes,
    statement: dict[str, Any],
    public_key: Ed25519PublicKey,
    report_optional: bool,
) -> VerifiedCertificate:
    subjects = check_statement(statement)
    predicate = statement["predicate"]
    fingerprint = check_certifier(predicate, public_key)
    spec = check_spec(predicate)
    _check_seeds(predicate)
    episodes = _check_log(cert_path.parent, predicate, spec)
    _check_decision(predicate, spec, episodes)
    check_report(cert_path.parent, predicate, report_optional)
    return VerifiedCertificate(
        path=cert_path,
        statement=statement,
        predicate=predicate,
        verdict=predicate["verdict"],
        spec_digest=predicate["benchmark"]["spec_digest"],
        commitment=predicate["seeds"]["commitment"],
        subject_digests=subjects,
        certificate_sha256=sha256_bytes(raw),
        spec=spec,
        key_fingerprint=fingerprint,
        episodes=episodes,
    )


@contextmanager
def malformed_statement(cert_path: Path) -> Iterator[None]:
    """A validly signed statement can still be of the wrong shape: a lookup or conversion
    that fails on it inside this block is a VerificationError naming it, not a crash."""
    try:
        yield
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        raise VerificationError(
            f"{cert_path}: the signed statement is malformed ({type(exc).__name__}: {exc})"
        ) from None


def rerun_differences(
    verified: VerifiedCertificate, bundle_dir: str | Path, workers: int = 1, progress: bool = True
) -> list[str]:
    """Re-run every certified episode with the bundle; one line per episode that differs."""
    check_subject_digests(bundle_dir, verified.subject_digests)
    spec = verified.spec
    policy = intake_bundle(bundle_dir, spec)
    job = EpisodeJob(str(bundle_dir), policy.onnx_sha256, spec.env_id, spec.env_kwargs)
    master_seed = verified.predicate["seeds"]["master_seed"]
    rerun = run_episodes(job, master_seed, spec.episodes, workers, progress)
    differences = []
    for logged, fresh in zip(verified.episodes, rerun, strict=True):
        changed = sorted(
            key
            for key in set(logged["metrics"]) | set(fresh["metrics"])
            if logged["metrics"].get(key) != fresh["metrics"].get(key)
        )
        if changed:
            details = ", ".join(
                f"{k}: {logged['metrics'].get(k)} -> {fresh['metrics'].get(k)}" for k in changed
            )
            differences.append(f"episode {logged['index']} (seed {logged['seed']}): {details}")
    return differences


def open_certificate(
    cert_path: str | Path, public_key: Ed25519PublicKey | str | Path
) -> tuple[Path, bytes, dict[str, Any], Ed25519PublicKey]:
    """Read a certificate file (or ``CERT_DIR/certificate.json``), check its canonical form
    and its signature with the key; its path, bytes, signed statement and the key."""
    cert_path = Path(cert_path)
    if cert_path.is_dir():  # CERT_DIR given for CERT_DIR/certificate.json
        cert_path = cert_path / CERTIFICATE_NAME
    if isinstance(public_key, str | Path):
        public_key = load_public_key(public_key)
    raw = _read_certificate(cert_path)
    statement = open_envelope(_parse_envelope(raw, cert_path), public_key, IN_TOTO_PAYLOAD_TYPE)
    return cert_path, raw, statement, public_key


def _read_certificate(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise read_error(path, exc, "a certificate") from None


def _parse_envelope(raw: bytes, path: Path) -> dict[str, Any]:
    envelope = load_json_strict(raw, str(path), VerificationError)
    if not isinstance(envelope, dict):
        raise VerificationError(f"{path}: not a DSSE envelope")
    try:
        canonical = certificate_bytes(envelope)
    except (TypeError, ValueError):
        canonical = b""
    # Every byte counts: whitespace or key order edits are tampering too.
    if canonical != raw:
        raise VerificationError(f"{path}: not in the canonical certificate form (bytes edited)")
    return envelope


def check_statement(
    statement: dict[str, Any], predicate_type: str = PREDICATE_TYPE
) -> dict[str, str]:
    """The statement's type, predicate type and the bundle subjects; ``{name: sha256}``."""
    if statement.get("_type") != STATEMENT_TYPE:
        raise VerificationError(f"statement _type is {statement.get('_type')!r}")
    if statement.get("predicateType") != predicate_type:
        raise VerificationError(
            f"predicateType is {statement.get('predicateType')!r}, expected {predicate_type!r}"
        )
    if not isinstance(statement.get("predicate"), dict):
        raise VerificationError("statement has no predicate object")
    subjects = {}
    for entry in statement.get("subject") or []:
        try:
            subjects[entry["name"]] = entry["digest"]["sha256"]
        except (TypeError, KeyError):
            raise VerificationError(f"malformed subject {entry!r}") from None
    if sorted(subjects) != sorted(SUBJECT_NAMES) or len(statement["subject"]) != 2:
        raise VerificationError(f"subjects are {sorted(subjects)}, expected {list(SUBJECT_NAMES)}")
    return subjects


def check_certifier(predicate: dict[str, Any], public_key: Ed25519PublicKey) -> str:
    """The key that checked the signature must be the one the predicate names."""
    fingerprint = public_key_fingerprint(public_key)
    named = predicate_field(predicate, "certifier", "key_fingerprint")
    if named != fingerprint:
        raise VerificationError(
            f"the predicate names certifier key {named}, but the signature was checked with "
            f"key {fingerprint}"
        )
    return fingerprint


def predicate_field(predicate: dict[str, Any], *path: str) -> Any:
    """``predicate[path[0]][path[1]]...``; VerificationError naming the missing path."""
    value: Any = predicate
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise VerificationError(f"predicate has no {'.'.join(path)}")
        value = value[key]
    return value


def check_spec(predicate: dict[str, Any]) -> BenchmarkSpec:
    """The spec the predicate carries, valid and matching its digest."""
    try:
        spec = parse_spec(predicate_field(predicate, "benchmark", "spec"), "benchmark.spec")
    except RobocellError as exc:
        raise VerificationError(f"predicate benchmark spec is invalid: {exc}") from None
    digest = spec_digest(spec)
    if digest != predicate_field(predicate, "benchmark", "spec_digest"):
        raise VerificationError(
            f"benchmark spec digest {predicate_field(predicate, 'benchmark', 'spec_digest')} "
            f"does not match the spec it carries ({digest})"
        )
    return spec


def _check_seeds(predicate: dict[str, Any]) -> None:
    master_seed = predicate_field(predicate, "seeds", "master_seed")
    try:
        actual = commitment(master_seed)
    except (ValueError, AttributeError):
        raise VerificationError("revealed master seed is not 64 hex digits") from None
    if actual != predicate_field(predicate, "seeds", "commitment"):
        raise VerificationError("revealed master seed does not match the seed commitment")
    if predicate_field(predicate, "seeds", "derivation") != DERIVATION_RULE:
        raise VerificationError("unknown seed derivation rule")


def _check_log(cert_dir: Path, predicate: dict[str, Any], spec: BenchmarkSpec) -> list[Any]:
    if predicate_field(predicate, "episodes", "log") != LOG_NAME:
        raise VerificationError(f"episode log is not named {LOG_NAME}")
    log_path = cert_dir / LOG_NAME
    if not log_path.is_file():
        raise VerificationError(f"episode log {log_path} is missing")
    try:
        data = log_path.read_bytes()
    except OSError as exc:
        raise read_error(log_path, exc, "an episode log") from None
    if sha256_bytes(data) != predicate_field(predicate, "episodes", "log_sha256"):
        raise VerificationError(f"episode log {log_path} does not match its signed sha256")
    where = f"episode log {log_path}"
    records = [load_json_strict(line, where, VerificationError) for line in data.splitlines()]
    try:
        canonical = episode_log_bytes(records)
    except (TypeError, ValueError):
        raise VerificationError(f"{where} is not JSON lines") from None
    if canonical != data or not all(_is_record(r) for r in records):
        raise VerificationError(f"episode log {log_path} is not in canonical form")
    if (
        len(records) != spec.episodes
        or predicate_field(predicate, "episodes", "count") != spec.episodes
    ):
        raise VerificationError(
            f"episode log has {len(records)} episodes, spec needs {spec.episodes}"
        )
    master_seed = predicate["seeds"]["master_seed"]
    for index, record in enumerate(records):
        if record.get("index") != index or record.get("seed") != episode_seed(master_seed, index):
            raise VerificationError(f"episode log line {index + 1}: wrong index or seed")
    return records


def _check_decision(predicate: dict[str, Any], spec: BenchmarkSpec, episodes: list[Any]) -> None:
    recomputed = evaluate(spec, [record["metrics"] for record in episodes]).to_dict()
    signed = {key: predicate_field(predicate, key) for key in RESULTS}
    signed |= {key: predicate.get(key, []) for key in RESULTS_SINCE_CONDITIONS}
    for key, value in signed.items():
        if not same_values(recomputed[key], value):
            raise VerificationError(f"predicate {key} differ from those recomputed from the log")


def check_report(cert_dir: Path, predicate: dict[str, Any], optional: bool) -> None:
    """Every report file against its signed digest (a missing one too, unless optional)."""
    report = predicate_field(predicate, "report")
    if not isinstance(report, dict) or not all(isinstance(k, str) for k in report):
        raise VerificationError("predicate report is not a mapping of file names to digests")
    for relative, expected in report.items():
        path = cert_dir / relative
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise VerificationError(f"report file {relative} is outside the certificate")
        if not path.is_file():
            if optional and not path.exists() and not path.is_symlink():
                continue
            raise VerificationError(f"report file {relative} is missing")
        if sha256_file(path) != expected:
            raise VerificationError(f"report file {relative} does not match its signed sha256")


def same_values(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
        )
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same_values, a, b))
    if isinstance(a, float) and isinstance(b, int | float) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)
    return type(a) is type(b) and a == b


def _is_record(record: Any) -> bool:
    return isinstance(record, dict) and isinstance(record.get("metrics"), dict)
