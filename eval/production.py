"""``robocell certify-production``: a certificate on a line cell's signed telemetry.

The site acceptance (a ``production`` milestone) and the ``retention`` after it are paid on
what the cell recorded in production, not on episodes the certifier runs. The contract fixes
the evidence in advance (:class:`~robocell.eval.release.contract.ProductionTerms`): the line,
the cell and the key it signs its telemetry batches with, the delivered bundle, and the window
of parts — ``parts`` consecutive parts starting ``start_after_deployment`` parts after the
bundle's first ``deployment`` on that cell (or its ``promotion`` from canary to champion).

:func:`certify_production` walks the cell's chain with the contract's cell key (every batch's
signature, hash link and content), finds the window, and judges it:

- ``production``: the spec's criteria and figures on the window's parts, with the decision
  rule of ``certify`` (:func:`robocell.eval.decision.evaluate`; n = the window's parts):
  Clopper–Pearson bounds at α/m, bootstrap intervals, the action gate, the robustness table;
- ``retention``: no ``drift_alarm`` and no ``rollback`` event in the window, and no alarm
  standing (not cleared by a calibration) when it starts.

Every part of the window must have run the contract's bundle. The certificate has the format
of a benchmark certificate (in-toto Statement v1 in a DSSE envelope, Ed25519) with its own
predicate type, :data:`PREDICATE_TYPE`; the predicate records the chain's head (batches and
hash) when it was certified, the cell's public key, the window and every result.
:func:`verify_production_certificate` reads the telemetry again, walks the chain, checks that
the certified head is still in it, and recomputes every figure from the rows.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from robocell.agents.bundle import ONNX_FILE, check_subject_digests, subject_digests
from robocell.errors import RobocellError, VerificationError
from robocell.eval.certify import (
    CERTIFICATE_NAME,
    LOG_NAME,
    OutputDirectory,
    episode_log_bytes,
    provenance,
    utc_now,
)
from robocell.eval.decision import FAILED, PASSED, Evaluation, evaluate
from robocell.eval.keys import public_key_fingerprint, public_key_pem
from robocell.eval.release.contract import (
    Contract,
    ProductionTerms,
    contract_relative,
    load_pinned_key,
)
from robocell.eval.spec import BenchmarkSpec, spec_data, spec_digest
from robocell.eval.verify import (
    RESULTS,
    RESULTS_SINCE_CONDITIONS,
    check_certifier,
    check_report,
    check_spec,
    check_statement,
    malformed_statement,
    open_certificate,
    predicate_field,
    same_values,
)
from robocell.schema import SchemaError
from robocell.util import read_error, sha256_bytes

PREDICATE_TYPE = "https://robocell.dev/attestations/production-certificate/v1"
KINDS = ("production", "retention")
#: The events that fail a retention window.
RETENTION_EVENTS = ("drift_alarm", "rollback")
#: The row columns a part's metrics take besides its quality figures and conditions.
_PART_FIGURES = ("energy_j", "cycle_time_s", "co2e_g")


@dataclass(frozen=True)
class Window:
    """Where the contract's window lies in a cell's chain."""

    line: str
    cell: str
    deployment_part: int
    """The part at which the bundle's first deployment event was recorded."""
    first_part: int
    last_part: int

    @property
    def parts(self) -> int:
        """Parts in the window."""
        return self.last_part - self.first_part + 1


@dataclass
class VerifiedProduction:
    """A production certificate whose every check passed against the telemetry."""

    path: Path
    predicate: dict[str, Any]
    kind: str
    verdict: str
    terms: dict[str, Any]
    """The contract terms the certificate was issued on (:func:`terms_data`)."""
    spec_digest: str
    """The benchmark spec's digest (``production``); '' for a retention."""
    subject_digests: dict[str, str]
    certificate_sha256: str
    key_fingerprint: str
    window: Window
    records: list[dict[str, Any]] = field(repr=False, default_factory=list)


def terms_data(terms: ProductionTerms) -> dict[str, Any]:
    """The terms as the predicate records them: the cell key by fingerprint (its file's path
    is the buyer's business)."""
    return {
        "line": terms.line,
        "cell": terms.cell,
        "cell_key_fingerprint": terms.cell_key.fingerprint,
        "bundle_sha256": terms.bundle_sha256,
        "start_after_deployment": terms.start_after_deployment,
        "parts": terms.parts,
    }


def certify_production(
    telemetry: str | Path,
    contract: Contract,
    contract_path: str | Path,
    bundle_dir: str | Path,
    spec: BenchmarkSpec | None,
    private_key: Ed25519PrivateKey,
    out_dir: str | Path,
) -> tuple[Path, dict[str, Any]]:
    """Certify the contract's window of production parts; the certificate's path and
    predicate. ``spec`` is required for a ``production`` milestone (its digest must be the
    contract's) and not used for a ``retention``."""
    terms = _production_terms(contract)
    cell_key = contract_cell_key(contract, contract_path)
    subjects = _bundle_subjects(bundle_dir, terms)
    spec = _contract_spec(contract, spec)
    started, start_s = utc_now(), time.perf_counter()
    chain = _read_chain(telemetry, terms, cell_key)
    window = find_window(chain, terms.bundle_sha256, terms.start_after_deployment, terms.parts)
    records = part_records(chain.rows, window)
    predicate = {
        **provenance(private_key),
        "milestone_kind": contract.kind,
        "terms": terms_data(terms),
        "telemetry": _telemetry_data(chain, window, cell_key),
    }
    judged, evaluation = None, None
    if spec is None:
        predicate |= retention_result(chain.events, window)
    else:
        _check_cell(chain.events, window, spec)
        judged = window_spec(spec, window.parts)
        evaluation = evaluate(judged, [record["metrics"] for record in records])
        predicate["benchmark"] = _benchmark(spec)
        predicate |= evaluation.to_dict()
    predicate["run"] = {
        "started_at": started,
        "finished_at": utc_now(),
        "telemetry_read_s": round(time.perf_counter() - start_s, 3),
    }
    with OutputDirectory(Path(out_dir)) as output:
        output.write(
            judged, evaluation, records, subjects, predicate, {}, private_key, PREDICATE_TYPE
        )
        output.publish()
    return output.path / CERTIFICATE_NAME, predicate


def _production_terms(contract: Contract) -> ProductionTerms:
    if contract.kind not in KINDS or contract.production is None:
        raise RobocellError(
            f"contract {contract.contract_id}/{contract.milestone_id} is a {contract.kind} "
            "milestone: `robocell certify` certifies it in simulation, not on production data"
        )
    return contract.production


def contract_cell_key(contract: Contract, contract_path: str | Path) -> Ed25519PublicKey:
    """The cell's telemetry key the contract names, checked against its fingerprint."""
    terms = _production_terms(contract)
    path = contract_relative(terms.cell_key.public_key, contract_path)
    return load_pinned_key(path, terms.cell_key.fingerprint, "cell key")


def _bundle_subjects(bundle_dir: str | Path, terms: ProductionTerms) -> dict[str, str]:
    if not Path(bundle_dir).is_dir():
        raise RobocellError(f"{bundle_dir}: no bundle directory here")
    subjects = subject_digests(bundle_dir)
    if subjects[ONNX_FILE] != terms.bundle_sha256:
        raise VerificationError(
            f"{bundle_dir}: {ONNX_FILE} has sha256 {subjects[ONNX_FILE]}, the contract's bundle "
            f"is {terms.bundle_sha256}"
        )
    return subjects


def _contract_spec(contract: Contract, spec: BenchmarkSpec | None) -> BenchmarkSpec | None:
    if contract.kind == "retention":
        return None
    if spec is None:
        raise RobocellError("a production milestone is judged on a benchmark spec: give one")
    if spec_digest(spec) != contract.benchmark_spec_digest:
        raise RobocellError(
            f"benchmark spec {spec.name} has digest {spec_digest(spec)}, the contract names "
            f"{contract.benchmark_spec_digest}"
        )
    return spec


def _read_chain(telemetry: str | Path, terms: ProductionTerms, key: Ed25519PublicKey) -> Any:
    from robocell.line.telemetry import open_telemetry

    with open_telemetry(telemetry, create=False) as store:
        try:
            return store.verified_chain(terms.line, terms.cell, key)
        except VerificationError as exc:
            raise VerificationError(
                f"the telemetry of {terms.line}/{terms.cell} does not verify with the cell key "
                f"the contract names ({public_key_fingerprint(key)}): {exc}"
            ) from None


def find_window(chain: Any, bundle_sha256: str, start_after: int, parts: int) -> Window:
    """The window of ``parts`` parts ``start_after`` parts after the bundle's first deployment
    on the chain (a ``deployment`` event, or a ``promotion`` of the bundle as canary). Refuses
    a bundle never deployed there, a window not recorded in full yet, and a window with a
    part that ran another bundle."""
    report = chain.report
    # A promotion after part p deploys the canary's bundle on every part from p + 1.
    deployments = [
        event["part"] + (event["type"] == "promotion")
        for event in chain.events
        if event["type"] in ("deployment", "promotion")
        and event["data"].get("bundle_sha256") == bundle_sha256
    ]
    if not deployments:
        raise VerificationError(
            f"{report.line}/{report.cell}: the telemetry records no deployment of bundle "
            f"{bundle_sha256}"
        )
    deployed = deployments[0]
    first = deployed + start_after
    last = first + parts - 1
    if last >= len(chain.rows):
        raise VerificationError(
            f"{report.line}/{report.cell}: the window is parts {first}..{last}, the telemetry "
            f"holds parts 0..{len(chain.rows) - 1}: not all of it is recorded yet"
        )
    for row in chain.rows[first : last + 1]:
        if row["bundle_sha256"] != bundle_sha256:
            raise VerificationError(
                f"{report.line}/{report.cell}: part {row['part']} of the window ran bundle "
                f"{row['bundle_sha256']}, not the contract's {bundle_sha256}"
            )
    return Window(report.line, report.cell, deployed, first, last)


def part_metrics(row: dict[str, Any]) -> dict[str, float]:
    """A telemetry row as an episode's metrics: its conditions, quality figures and KPIs."""
    metrics = {**row["conditions"], **row["quality"], "success": float(row["success"])}
    return metrics | {name: row[name] for name in _PART_FIGURES}


def part_records(rows: list[dict[str, Any]], window: Window) -> list[dict[str, Any]]:
    """The window's parts as the certificate's log holds them: index, part and metrics."""
    return [
        {"index": i, "part": row["part"], "metrics": part_metrics(row)}
        for i, row in enumerate(rows[window.first_part : window.last_part + 1])
    ]


def window_spec(spec: BenchmarkSpec, parts: int) -> BenchmarkSpec:
    """The spec judged on ``parts`` production parts instead of its episodes; refuses a
    window that could never pass one of its criteria."""
    judged = dataclasses.replace(spec, episodes=parts)
    try:
        judged.validate()
    except SchemaError as exc:
        raise RobocellError(f"a window of {parts} parts on spec {spec.name}: {exc}") from None
    return judged


def retention_result(events: list[dict[str, Any]], window: Window) -> dict[str, Any]:
    """The retention's findings and verdict: alarms and rollbacks inside the window, and an
    alarm standing when it starts (raised before it and not cleared by a calibration)."""
    inside = {
        kind: [
            e["part"]
            for e in events
            if e["type"] == kind and window.first_part <= e["part"] <= window.last_part
        ]
        for kind in RETENTION_EVENTS
    }
    standing = None  # events come in chain order: a calibration clears the alarms before it
    for event in (e for e in events if e["part"] < window.first_part):
        if event["type"] == "drift_alarm" and standing is None:
            standing = event["part"]
        elif event["type"] == "calibration":
            standing = None
    clean = standing is None and not any(inside.values())
    return {
        "retention": {
            "drift_alarms": inside["drift_alarm"],
            "rollbacks": inside["rollback"],
            "standing_alarm_part": standing,
        },
        "verdict": PASSED if clean else FAILED,
    }


def _check_cell(events: list[dict[str, Any]], window: Window, spec: BenchmarkSpec) -> None:
    env_id = next(e["data"]["env_id"] for e in events if "env_id" in e["data"])
    if env_id != spec.env_id:
        raise VerificationError(
            f"{window.line}/{window.cell} runs {env_id}, the spec {spec.name} is for {spec.env_id}"
        )


def _telemetry_data(chain: Any, window: Window, key: Ed25519PublicKey) -> dict[str, Any]:
    report = chain.report
    return {
        "line": window.line,
        "cell": window.cell,
        "cell_key_fingerprint": public_key_fingerprint(key),
        "cell_public_key_pem": public_key_pem(key).decode("ascii"),
        "head": {"batches": report.batches, "batch_hash": report.head_hash, "parts": report.rows},
        "deployment_part": window.deployment_part,
        "first_part": window.first_part,
        "last_part": window.last_part,
    }


def _benchmark(spec: BenchmarkSpec) -> dict[str, Any]:
    return {"name": spec.name, "spec_digest": spec_digest(spec), "spec": spec_data(spec)}


# ----------------------------------------------------------------------------- verify
def verify_production_certificate(
    cert_path: str | Path,
    public_key: Ed25519PublicKey | str | Path,
    telemetry: str | Path,
    bundle_dir: str | Path | None = None,
    report_optional: bool = False,
) -> VerifiedProduction:
    """Verify a production certificate against the telemetry it was issued on.

    Checks the signature, the statement, the certifier named in the predicate, the cell key
    against the one recorded, the chain (walked in full with that key), that the certified
    head is still its batch of that number, the window, the log against the telemetry's rows,
    every result recomputed, the report files and, given a bundle, its files.
    """
    cert_path, raw, statement, public_key = open_certificate(cert_path, public_key)
    with malformed_statement(cert_path):
        verified = _check_production(cert_path, raw, statement, public_key, telemetry)
        check_report(cert_path.parent, verified.predicate, report_optional)
    if bundle_dir is not None:
        check_subject_digests(bundle_dir, verified.subject_digests)
    return verified


def _check_production(
    cert_path: Path,
    raw: bytes,
    statement: dict[str, Any],
    public_key: Ed25519PublicKey,
    telemetry: str | Path,
) -> VerifiedProduction:
    subjects = check_statement(statement, PREDICATE_TYPE)
    predicate = statement["predicate"]
    fingerprint = check_certifier(predicate, public_key)
    kind = predicate_field(predicate, "milestone_kind")
    if kind not in KINDS:
        raise VerificationError(f"milestone_kind {kind!r} is not one of {list(KINDS)}")
    terms = predicate_field(predicate, "terms")
    cell_key = _recorded_cell_key(predicate, terms)
    if subjects[ONNX_FILE] != terms["bundle_sha256"]:
        raise VerificationError("the certificate's subject is not the bundle its terms name")
    chain = _read_chain(telemetry, _terms_object(terms), cell_key)
    _check_head(chain, predicate_field(predicate, "telemetry", "head"))
    window = find_window(
        chain, terms["bundle_sha256"], terms["start_after_deployment"], terms["parts"]
    )
    recorded = predicate["telemetry"]
    if (recorded["first_part"], recorded["last_part"]) != (window.first_part, window.last_part):
        raise VerificationError(
            f"the certificate's window is parts {recorded['first_part']}..{recorded['last_part']}"
            f", its terms give {window.first_part}..{window.last_part} in the telemetry"
        )
    if window.last_part >= recorded["head"]["parts"]:
        raise VerificationError("the certificate's window lies beyond the head it certified")
    records = part_records(chain.rows, window)
    _check_log(cert_path.parent, predicate, records)
    digest = ""
    if kind == "retention":
        recomputed = retention_result(chain.events, window)
        signed = {key: predicate_field(predicate, key) for key in recomputed}
    else:
        spec = check_spec(predicate)
        _check_cell(chain.events, window, spec)
        digest = predicate["benchmark"]["spec_digest"]
        evaluation: Evaluation = evaluate(
            window_spec(spec, window.parts), [r["metrics"] for r in records]
        )
        recomputed = evaluation.to_dict()
        keys = (*RESULTS, *RESULTS_SINCE_CONDITIONS)
        signed = {key: predicate_field(predicate, key) for key in keys}
    for key, value in signed.items():
        if not same_values(recomputed[key], value):
            raise VerificationError(
                f"predicate {key} differ from those recomputed from the telemetry"
            )
    return VerifiedProduction(
        path=cert_path,
        predicate=predicate,
        kind=kind,
        verdict=predicate["verdict"],
        terms=terms,
        spec_digest=digest,
        subject_digests=subjects,
        certificate_sha256=sha256_bytes(raw),
        key_fingerprint=fingerprint,
        window=window,
        records=records,
    )


def _recorded_cell_key(predicate: dict[str, Any], terms: dict[str, Any]) -> Ed25519PublicKey:
    pem = predicate_field(predicate, "telemetry", "cell_public_key_pem")
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise VerificationError("the recorded cell public key is not an Ed25519 PEM key")
    found = public_key_fingerprint(key)
    if (
        found != terms["cell_key_fingerprint"]
        or found != predicate["telemetry"]["cell_key_fingerprint"]
    ):
        raise VerificationError(
            f"the recorded cell key has fingerprint {found}, the terms name "
            f"{terms['cell_key_fingerprint']}"
        )
    return key


def _terms_object(terms: dict[str, Any]) -> ProductionTerms:
    from robocell.eval.release.contract import CellKey

    key = CellKey(public_key="", fingerprint=terms["cell_key_fingerprint"])
    fields = {k: terms[k] for k in ("line", "cell", "bundle_sha256", "start_after_deployment")}
    return ProductionTerms(**fields, cell_key=key, parts=terms["parts"])


def _check_head(chain: Any, head: dict[str, Any]) -> None:
    batches = head["batches"]
    if not isinstance(batches, int) or not 1 <= batches <= len(chain.batch_hashes):
        raise VerificationError(
            f"the certified head is batch {batches!r}; the chain holds "
            f"{len(chain.batch_hashes)} batches: batches were removed"
        )
    if chain.batch_hashes[batches - 1] != head["batch_hash"]:
        raise VerificationError(
            f"batch {batches} of the chain is not the certified head {head['batch_hash']}: the "
            "telemetry was rewritten after certification"
        )


def _check_log(cert_dir: Path, predicate: dict[str, Any], records: list[dict[str, Any]]) -> None:
    if predicate_field(predicate, "episodes", "log") != LOG_NAME:
        raise VerificationError(f"the parts log is not named {LOG_NAME}")
    expected = episode_log_bytes(records)
    if predicate["episodes"]["log_sha256"] != sha256_bytes(expected):
        raise VerificationError("the certificate's parts log is not the telemetry's window")
    if predicate["episodes"]["count"] != len(records):
        raise VerificationError("the certificate's parts count is not the window's")
    path = cert_dir / LOG_NAME
    try:
        stored = path.read_bytes()
    except OSError as exc:
        raise read_error(path, exc, "a parts log") from None
    if stored != expected:
        raise VerificationError(f"{path} is not the telemetry's window (edited)")
