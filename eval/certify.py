"""``robocell certify``: run a benchmark on a bundle and sign the outcome.

The certificate (``certificate.json``) is a DSSE envelope, signed with the certifier's Ed25519
key, around an in-toto Statement v1 whose subjects are the bundle's ``policy.onnx`` and
``manifest.json`` and whose predicate records the benchmark, the seeds, every criterion's
count and bound, the continuous figures, the robustness table per operating condition and the
bucket criteria, the digests of the per-episode log and of the report files (``report.md``,
``report.html``, plots and rollout stills), the software and platform, and the overall verdict.
Field by field in ``docs/CERTIFICATION.md``.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from robocell import __version__
from robocell.agents.bundle import ONNX_FILE, subject_digests
from robocell.errors import RobocellError, VerificationError
from robocell.eval.decision import Evaluation, evaluate
from robocell.eval.dsse import IN_TOTO_PAYLOAD_TYPE, sign_envelope
from robocell.eval.keys import public_key_fingerprint
from robocell.eval.report import DEFAULT_STILL_EPISODES, render_stills, write_report
from robocell.eval.revealed import RevealedSeeds
from robocell.eval.runner import EpisodeJob, intake_bundle, run_episodes
from robocell.eval.seeds import DERIVATION_RULE, check_commitment, commitment
from robocell.eval.spec import BenchmarkSpec, spec_data, spec_digest
from robocell.executor import ExecutorOptions, parallelism
from robocell.util import atomic_write_bytes, canonical_json, sha256_bytes

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://robocell.dev/attestations/benchmark-certificate/v1"
CERTIFICATE_NAME = "certificate.json"
LOG_NAME = "episodes.jsonl"
PACKAGES = ("numpy", "scipy", "gymnasium", "pybullet", "onnx", "onnxruntime", "cryptography")


@dataclass
class CertifyResult:
    """What :func:`certify` wrote and decided."""

    certificate_path: Path
    verdict: str
    evaluation: Evaluation
    statement: dict[str, Any]


def certify(
    bundle_dir: str | Path,
    spec: BenchmarkSpec,
    master_seed_hex: str,
    commitment_hex: str,
    private_key: Ed25519PrivateKey,
    out_dir: str | Path,
    workers: int = 1,
    progress: bool = True,
    stills: int = DEFAULT_STILL_EPISODES,
    executor: ExecutorOptions | None = None,
    revealed: RevealedSeeds | None = None,
) -> CertifyResult:
    """Certify the bundle on ``spec`` and write certificate, episode log and report to ``out_dir``.

    ``stills`` episodes are replayed with the bundle for the report's rollout stills (their
    first and last frame; 0: none). Refuses, before running anything, a master seed that does
    not match the commitment or that ``revealed`` (the key's record) says was revealed before,
    an ``out_dir`` that exists and is not empty, is being written by another certify or cannot
    be written, and anything that is not a fitting bundle. The directory appears complete or
    not at all; with ``revealed`` the seed is recorded as revealed when it appears. The
    episodes run on ``workers`` local processes, or on Ray when ``executor`` says so: the
    certificate is the same but for the ``run`` section (times and parallel workers) and the
    report line that repeats it.
    """
    check_commitment(master_seed_hex, commitment_hex)
    if revealed is not None:
        revealed.check_unrevealed(commitment(master_seed_hex))
    policy = intake_bundle(bundle_dir, spec)
    subjects = subject_digests(bundle_dir)
    if subjects[ONNX_FILE] != policy.onnx_sha256:
        raise VerificationError(f"{bundle_dir}: {ONNX_FILE} changed after it was loaded")
    with OutputDirectory(Path(out_dir)) as output:
        # An absolute path: Ray workers need not share the working directory.
        bundle_path = str(Path(bundle_dir).resolve())
        job = EpisodeJob(bundle_path, policy.onnx_sha256, spec.env_id, spec.env_kwargs)
        started_at, start_s = utc_now(), time.perf_counter()
        options = executor or ExecutorOptions(workers=workers)
        records = run_episodes(job, master_seed_hex, spec.episodes, workers, progress, options)
        run = {
            "started_at": started_at,
            "finished_at": utc_now(),
            "episodes_wall_time_s": round(time.perf_counter() - start_s, 3),
            "workers": parallelism(options),
        }
        evaluation = evaluate(spec, [record["metrics"] for record in records])
        still_images = render_stills(policy, spec, records, stills)
        predicate = {
            **provenance(private_key),
            **_inputs(spec, policy, master_seed_hex),
            **evaluation.to_dict(),
            "run": run,
        }
        statement = output.write(
            spec, evaluation, records, subjects, predicate, still_images, private_key
        )
        revealing = revealed.revealing if revealed else _nothing_to_record
        with revealing(commitment(master_seed_hex), output.path):
            output.publish()
    return CertifyResult(output.path / CERTIFICATE_NAME, evaluation.verdict, evaluation, statement)


class OutputDirectory:
    """A certificate directory written in a staging folder beside it, then renamed into place.

    Entering checks the location before any episode runs: ``path`` must be absent or an empty
    directory, the folder above must be writable (the staging folder is made there at once),
    and no other certify may be writing to ``path`` (a lock file beside it, held until exit).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: Any = None
        self.staging: Path | None = None

    def __enter__(self) -> OutputDirectory:
        path = self.path
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise RobocellError(f"{path}: exists and is not an empty directory; choose a new -o")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = open(path.parent / f".{path.name}.certify-lock", "a")
            self.staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
        except OSError as exc:
            self.__exit__()
            raise RobocellError(f"-o {path}: cannot write there ({exc.strerror or exc})") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.__exit__()
            raise RobocellError(f"-o {path}: another certify is writing there") from None
        return self

    def write(
        self,
        spec: BenchmarkSpec | None,
        evaluation: Evaluation | None,
        records: list[dict[str, Any]],
        subjects: dict[str, str],
        predicate: dict[str, Any],
        still_images: dict[str, bytes],
        private_key: Ed25519PrivateKey,
        predicate_type: str = PREDICATE_TYPE,
    ) -> dict[str, Any]:
        """Write log, report (none without a spec) and signed certificate into the staging
        folder."""
        staging = self.staging
        assert staging is not None, "write() outside the with block"
        try:
            log_bytes = episode_log_bytes(records)
            atomic_write_bytes(staging / LOG_NAME, log_bytes, mode=0o644)
            predicate["episodes"] = {
                "count": len(records),
                "log": LOG_NAME,
                "log_sha256": sha256_bytes(log_bytes),
            }
            predicate["report"] = (
                {}
                if spec is None or evaluation is None
                else write_report(
                    staging, spec, evaluation, records, subjects, predicate, still_images
                )
            )
            statement = make_statement(subjects, predicate, predicate_type)
            envelope = sign_envelope(statement, private_key, IN_TOTO_PAYLOAD_TYPE)
            certificate = certificate_bytes(envelope)
            atomic_write_bytes(staging / CERTIFICATE_NAME, certificate, mode=0o644)
        except OSError as exc:
            raise RobocellError(
                f"-o {self.path}: cannot write the certificate ({exc.strerror or exc}); "
                "nothing was written and the seed is not revealed"
            ) from None
        return statement

    def publish(self) -> None:
        """Rename the staging folder to ``path`` (replacing an empty directory)."""
        assert self.staging is not None, "publish() outside the with block"
        try:
            os.chmod(self.staging, 0o755)  # mkdtemp makes it private; a certificate is for all
            os.replace(self.staging, self.path)
        except OSError as exc:
            raise RobocellError(
                f"-o {self.path}: cannot put the certificate in place ({exc.strerror or exc}); "
                "nothing was written and the seed is not revealed"
            ) from None

    def __exit__(self, *exc: object) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
        if self._lock is not None:
            Path(self._lock.name).unlink(missing_ok=True)
            self._lock.close()


@contextmanager
def _nothing_to_record(commitment_hex: str, output: Path) -> Iterator[None]:
    yield


def make_statement(
    subjects: dict[str, str], predicate: dict[str, Any], predicate_type: str = PREDICATE_TYPE
) -> dict[str, Any]:
    """An in-toto Statement v1 over the named subjects with a robocell predicate."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": name, "digest": {"sha256": digest}} for name, digest in subjects.items()
        ],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def certificate_bytes(envelope: dict[str, Any]) -> bytes:
    """The one accepted file form of an envelope: indented, sorted keys, trailing newline."""
    return (json.dumps(envelope, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode()


def episode_log_bytes(records: list[dict[str, Any]]) -> bytes:
    """The per-episode log: one canonical JSON object per line, in episode order."""
    return b"".join(canonical_json(record) + b"\n" for record in records)


def _inputs(spec: BenchmarkSpec, policy: Any, master_seed_hex: str) -> dict[str, Any]:
    return {
        "benchmark": {"name": spec.name, "spec_digest": spec_digest(spec), "spec": spec_data(spec)},
        "bundle": {"env_id": policy.env_id, "env_kwargs": policy.env_kwargs},
        "seeds": {
            "commitment": commitment(master_seed_hex),
            "master_seed": master_seed_hex,
            "derivation": DERIVATION_RULE,
        },
    }


def provenance(private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """Who certified, with which software, on which platform."""
    fingerprint = public_key_fingerprint(private_key.public_key())
    return {
        "certifier": {"name": "robocell", "version": __version__, "key_fingerprint": fingerprint},
        "packages": {name: _version(name) for name in PACKAGES},
        "platform": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "platform": platform.platform(),
        },
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def utc_now() -> str:
    """The time now, UTC, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
