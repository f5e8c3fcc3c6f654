"""The release decision: a verified certificate against a contract, recorded exactly once.

``release_milestone`` runs, in order:

1. a retry of a milestone already released with this certificate returns the first result
   (the payment instruction stored in the RELEASED entry), without checking anything again;
2. :func:`check_certificate`: the signature with the contract's key, the subject digests
   against the delivered bundle, verdict PASSED, spec digest and seed commitment equal to the
   contract's. Any failure appends REJECTED with the reason and raises VerificationError;
3. under the ledger's write lock (:meth:`Ledger.record`): CERTIFIED (once per certificate),
   then RELEASED with the payment instruction when the dispute window has passed and no
   dispute covers the certificate. Refused (REJECTED), looking at the whole ledger: a
   milestone already released; a certificate already recorded for another milestone; a seed
   that another certificate revealed first, in any milestone (its episodes are no longer
   secret); and a milestone whose contract names a seed commitment that another milestone's
   certification already named. One certificate, one seed, one payment. Concurrent processes
   serialise on the lock; the store's UNIQUE indexes are the last line: one RELEASED per
   milestone and one per certificate.

The payment instruction's idempotency key is ``sha256(canonical_json([contract_id,
milestone_id]))``: one milestone is paid once, so a payment system that dedupes on it pays
once even if a second instruction for the milestone ever reached it (a retry, or a ledger
restored behind the release).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from robocell.agents.bundle import check_subject_digests
from robocell.errors import RobocellError, VerificationError
from robocell.eval.release.clock import event_time, format_time, parse_time
from robocell.eval.release.contract import (
    Contract,
    contract_digest,
    load_contract,
    load_pinned_key,
    party_terms,
    public_key_path,
)
from robocell.eval.release.events import Draft, Event, EventKind
from robocell.eval.release.ledger import Ledger
from robocell.util import canonical_json, sha256_bytes, sha256_file

INSTRUCTION_FORMAT = "robocell-payment-instruction/1"
#: Exit codes of ``robocell release`` besides 0 (released), 1 (rejected) and 2 (bad input).
EXIT_PENDING = 3
EXIT_DISPUTED = 4


@dataclass(frozen=True)
class Evidence:
    """What a verified certificate proves, as recorded in the CERTIFIED entry."""

    certificate_sha256: str
    bundle_digests: dict[str, str]
    spec_digest: str
    seed_commitment: str
    """The master seed the certificate revealed ('' for production data: no seed)."""
    verdict: str
    kind: str = "certificate"
    """The milestone kind the certificate is for."""
    window: dict[str, Any] | None = None
    """Production and retention: the telemetry parts paid for (line, cell, first and last)."""


@dataclass(frozen=True)
class ReleaseOutcome:
    """The state of a milestone after a ``release`` run."""

    status: str
    """RELEASED, PENDING (inside the dispute window) or DISPUTED."""
    contract_id: str
    milestone_id: str
    certificate_sha256: str
    instruction: dict[str, Any] | None = None
    """The payment instruction (RELEASED only)."""
    release_due: str | None = None
    """When the dispute window closes (PENDING and DISPUTED)."""
    reason: str | None = None
    """The dispute's reason (DISPUTED only)."""
    replayed: bool = False
    """True when the milestone was already released with this certificate by an earlier run."""

    @property
    def exit_code(self) -> int:
        """0 released, 3 waiting for the dispute window, 4 stopped by a dispute."""
        return {"RELEASED": 0, "PENDING": EXIT_PENDING, "DISPUTED": EXIT_DISPUTED}[self.status]


class Rejection(VerificationError):
    """A verified certificate that must not be paid; it still revealed its master seed."""

    def __init__(self, reason: str, seed_commitment: str) -> None:
        super().__init__(reason)
        self.seed_commitment = seed_commitment


def idempotency_key(contract_id: str, milestone_id: str) -> str:
    """sha256 of the canonical JSON list ``[contract_id, milestone_id]``: one per milestone."""
    return sha256_bytes(canonical_json([contract_id, milestone_id]))


def release_milestone(
    cert_path: str | Path,
    contract_path: str | Path,
    bundle_dir: str | Path,
    ledger: Ledger,
    now: datetime | None = None,
    telemetry: str | Path | None = None,
) -> ReleaseOutcome:
    """Verify ``cert_path`` against the contract and the delivered bundle; record the result.

    A production or retention milestone's certificate is verified against ``telemetry`` (the
    store's path or URL), which it is then required. Raises VerificationError (after recording
    REJECTED) for a certificate that must not be paid, and RobocellError (recording nothing)
    for missing or malformed inputs.
    """
    contract = load_contract(contract_path)
    if contract.kind != "certificate" and telemetry is None:
        raise RobocellError(
            f"{contract.contract_id}/{contract.milestone_id} is a {contract.kind} milestone: it "
            "is verified on the cell's telemetry; give the store (--telemetry URL)"
        )
    cert_sha = _certificate_digest(cert_path)
    if not Path(bundle_dir).is_dir():
        raise RobocellError(f"{bundle_dir}: no bundle directory here")
    ledger.check_chain()  # a replay below hands out what the ledger holds: it must be intact
    history = ledger.history(contract.contract_id, contract.milestone_id)
    earlier = released_entry(history)
    if earlier is not None and earlier.certificate_sha256 == cert_sha:
        return _replay(earlier)
    try:
        if contract.kind == "certificate":
            evidence = check_certificate(cert_path, contract, contract_path, bundle_dir)
        else:
            evidence = check_production_certificate(
                cert_path, contract, contract_path, bundle_dir, telemetry or ""
            )
    except VerificationError as exc:
        revealed = exc.seed_commitment if isinstance(exc, Rejection) else None
        record_rejection(ledger, contract, cert_sha, str(exc), now, revealed)
        raise
    if evidence.certificate_sha256 != cert_sha:
        raise RobocellError(f"{cert_path}: the certificate changed while it was being checked")
    outcome = ledger.record(
        contract.contract_id, contract.milestone_id, partial(_decide, contract, evidence, now)
    )
    if isinstance(outcome, str):
        raise VerificationError(outcome)
    return outcome


def check_certificate(
    cert_path: str | Path, contract: Contract, contract_path: str | Path, bundle_dir: str | Path
) -> Evidence:
    """Every check a payment needs; raises VerificationError naming the first that fails.

    Once the signature and the certificate's content verify, a failure is a :class:`Rejection`
    that carries the seed commitment the certificate revealed.
    """
    from robocell.eval.verify import verify_certificate

    key = contract_public_key(contract, contract_path)
    verified = verify_certificate(cert_path, key)
    try:
        return _evidence(verified, contract, bundle_dir)
    except VerificationError as exc:
        raise Rejection(str(exc), verified.commitment) from None


def _check_verdict_and_spec(verified: Any, contract: Contract) -> None:
    """Verdict PASSED, on the contract's benchmark spec."""
    if verified.verdict != "PASSED":
        raise VerificationError(f"certificate verdict is {verified.verdict}, not PASSED")
    if verified.spec_digest != contract.benchmark_spec_digest:
        raise VerificationError(
            f"certificate's benchmark spec digest {verified.spec_digest} is not the contract's "
            f"{contract.benchmark_spec_digest}"
        )


def _evidence(verified: Any, contract: Contract, bundle_dir: str | Path) -> Evidence:
    _check_verdict_and_spec(verified, contract)
    if verified.commitment not in contract.seed_commitments:
        raise VerificationError(
            f"certificate's seed commitment {verified.commitment} is not the contract's "
            f"{' or '.join(contract.seed_commitments)}"
        )
    # The digests paid for are the delivered bundle's, checked against the signed subjects.
    bundle_digests = check_subject_digests(bundle_dir, verified.subject_digests)
    return Evidence(
        certificate_sha256=verified.certificate_sha256,
        bundle_digests=bundle_digests,
        spec_digest=verified.spec_digest,
        seed_commitment=verified.commitment,
        verdict=verified.verdict,
    )


def check_production_certificate(
    cert_path: str | Path,
    contract: Contract,
    contract_path: str | Path,
    bundle_dir: str | Path,
    telemetry: str | Path,
) -> Evidence:
    """A production or retention certificate, verified on the telemetry, against the
    contract: the same kind, the contract's terms (cell, key, bundle, window), its spec,
    verdict PASSED, and the delivered bundle's files."""
    from robocell.eval.production import terms_data, verify_production_certificate

    key = contract_public_key(contract, contract_path)
    verified = verify_production_certificate(cert_path, key, telemetry)
    assert contract.production is not None, "a production milestone has its terms"
    if verified.kind != contract.kind:
        raise VerificationError(
            f"a {verified.kind} certificate cannot pay a {contract.kind} milestone"
        )
    expected = terms_data(contract.production)
    changed = sorted(k for k in expected if verified.terms.get(k) != expected[k])
    if changed or verified.terms.keys() != expected.keys():
        first = changed[0] if changed else "keys"
        raise VerificationError(
            f"the certificate was issued on other terms than the contract's ({first}: "
            f"{verified.terms.get(first)!r}, the contract: {expected.get(first)!r}); the "
            "window and the evidence are the contract's, fixed before the parts ran"
        )
    _check_verdict_and_spec(verified, contract)
    return Evidence(
        certificate_sha256=verified.certificate_sha256,
        bundle_digests=check_subject_digests(bundle_dir, verified.subject_digests),
        spec_digest=verified.spec_digest,
        seed_commitment="",
        verdict=verified.verdict,
        kind=verified.kind,
        window=dataclasses.asdict(verified.window),
    )


def contract_public_key(contract: Contract, contract_path: str | Path) -> Any:
    """The certifier's public key named by the contract, checked against its fingerprint."""
    path = public_key_path(contract, contract_path)
    return load_pinned_key(path, contract.certifier.fingerprint, "certifier key")


def _certificate_digest(cert_path: str | Path) -> str:
    path = Path(cert_path)
    if not path.is_file():
        raise RobocellError(f"{path}: no certificate file here")
    return sha256_file(path)


def record_rejection(
    ledger: Ledger,
    contract: Contract,
    cert_sha: str,
    reason: str,
    now: datetime | None,
    revealed_seed: str | None = None,
) -> None:
    """Append REJECTED with ``reason`` (and the seed commitment a verified certificate
    revealed), unless this certificate was rejected for it before."""
    body = {"reason": reason} | ({"seed_commitment": revealed_seed} if revealed_seed else {})

    def decide(
        history: list[Event], head: Event | None, _events: list[Event]
    ) -> tuple[list[Draft], None]:
        return _rejection(contract, cert_sha, body, history, event_time(now, head)), None

    ledger.record(contract.contract_id, contract.milestone_id, decide)


def _rejection(
    contract: Contract, cert_sha: str, body: dict[str, str], history: list[Event], at: str
) -> list[Draft]:
    for event in history:
        same_cert = event.certificate_sha256 == cert_sha
        if event.kind == "REJECTED" and same_cert and event.body.get("reason") == body["reason"]:
            return []
    return [_draft("REJECTED", contract, cert_sha, at, body)]


def _decide(
    contract: Contract,
    evidence: Evidence,
    now: datetime | None,
    history: list[Event],
    head: Event | None,
    events: list[Event],
) -> tuple[list[Draft], ReleaseOutcome | str]:
    """The decision under the write lock; a str result is a refusal (recorded as REJECTED)."""
    cert_sha = evidence.certificate_sha256
    at = event_time(now, head)
    earlier = released_entry(history)
    if earlier is not None and earlier.certificate_sha256 == cert_sha:
        return [], _replay(earlier)
    certified = _certified(history, cert_sha)
    reason = _refusal(contract, evidence, history, certified) or _ledger_wide_refusal(
        contract, evidence, events
    )
    if reason is not None:
        body = {"reason": reason} | _seed(evidence.seed_commitment)
        return _rejection(contract, cert_sha, body, history, at), reason
    drafts: list[Draft] = []
    if certified is None:
        certified = _draft(
            "CERTIFIED", contract, cert_sha, at, _certified_body(contract, evidence, at)
        )
        drafts.append(certified)
    outcome = _outcome_at(contract, evidence, certified, history, at)
    if outcome.instruction is not None:
        drafts.append(
            _draft("RELEASED", contract, cert_sha, at, {"instruction": outcome.instruction})
        )
    return drafts, outcome


def _refusal(
    contract: Contract, evidence: Evidence, history: list[Event], certified: Draft | None
) -> str | None:
    released = released_entry(history)
    if released is not None:
        return (
            f"milestone {contract.contract_id}/{contract.milestone_id} was already released at "
            f"{released.recorded_at} under another certificate ({released.certificate_sha256})"
        )
    revealer = _first_revealer(history, evidence.seed_commitment)
    if (
        evidence.seed_commitment
        and revealer is not None
        and revealer.certificate_sha256 != evidence.certificate_sha256
    ):
        return (
            f"the certificate's master seed (commitment {evidence.seed_commitment}) was already "
            f"revealed by certificate {revealer.certificate_sha256} (ledger entry {revealer.seq}"
            "): its episodes are no longer secret; certify again on another committed seed"
        )
    if certified is not None and certified.body["contract_sha256"] != contract_digest(contract):
        return (
            f"the contract's terms changed since this certificate was recorded at "
            f"{certified.recorded_at} (then: contract sha256 {certified.body['contract_sha256']})"
        )
    return None


def _ledger_wide_refusal(contract: Contract, evidence: Evidence, events: list[Event]) -> str | None:
    """One certificate, one seed, one window of parts, one payment, in the contract's order:
    what other milestones' entries forbid."""
    milestone = (contract.contract_id, contract.milestone_id)
    others = [e for e in events if (e.contract_id, e.milestone_id) != milestone]
    cert_sha, seed = evidence.certificate_sha256, evidence.seed_commitment
    if contract.follows and not any(
        e.kind == "RELEASED" and (e.contract_id, e.milestone_id) == (milestone[0], contract.follows)
        for e in others
    ):
        return (
            f"milestone {contract.milestone_id} follows {contract.contract_id}/"
            f"{contract.follows}, which is not released yet: milestones are paid in order"
        )
    for event in others:
        where = f"{event.contract_id}/{event.milestone_id} (ledger entry {event.seq})"
        if event.kind == "CERTIFIED" and event.certificate_sha256 == cert_sha:
            return (
                f"the certificate was already recorded for milestone {where}: one certificate "
                "pays one milestone"
            )
        overlap = _overlap(evidence.window, event)
        if overlap:
            return (
                f"parts {overlap} of that cell already pay milestone {where}: one part's "
                "evidence pays one milestone"
            )
        if not seed:
            continue
        if event.body.get("seed_commitment") == seed and event.certificate_sha256 != cert_sha:
            return (
                f"the certificate's master seed (commitment {seed}) was already revealed by "
                f"certificate {event.certificate_sha256} for milestone {where}: its episodes are "
                "no longer secret; certify again on another committed seed"
            )
        named = set(_named_commitments(event)) & set(contract.seed_commitments)
        if event.kind == "CERTIFIED" and named:
            return (
                f"the contract names seed commitment {sorted(named)[0]}, which milestone {where} "
                "already names: one seed commitment belongs to one milestone"
            )
    return None


def _overlap(window: dict[str, Any] | None, event: Event) -> str | None:
    """The parts ``window`` shares with a CERTIFIED entry's window on the same cell, if any."""
    other = event.body.get("telemetry_window")
    if window is None or event.kind != "CERTIFIED" or not isinstance(other, dict):
        return None
    if (other.get("line"), other.get("cell")) != (window["line"], window["cell"]):
        return None
    first = max(window["first_part"], other["first_part"])
    last = min(window["last_part"], other["last_part"])
    return f"{first}..{last}" if first <= last else None


def _seed(seed_commitment: str) -> dict[str, str]:
    """A body's ``seed_commitment`` entry: none when the evidence revealed no seed."""
    return {"seed_commitment": seed_commitment} if seed_commitment else {}


def _named_commitments(event: Event) -> list[str]:
    """The seed commitments a CERTIFIED entry's contract named (older entries: the one used)."""
    named = event.body.get("contract_seed_commitments")
    if isinstance(named, list):
        return [str(item) for item in named]
    seed = event.body.get("seed_commitment")
    return [seed] if isinstance(seed, str) else []


def _outcome_at(
    contract: Contract, evidence: Evidence, certified: Draft, history: list[Event], at: str
) -> ReleaseOutcome:
    """RELEASED once the window has passed with no dispute; PENDING or DISPUTED otherwise."""
    ids = (contract.contract_id, contract.milestone_id, evidence.certificate_sha256)
    due = certified.body["release_due"]
    dispute = _dispute_of(history, evidence.certificate_sha256)
    if dispute is not None:
        return ReleaseOutcome("DISPUTED", *ids, release_due=due, reason=dispute.body["reason"])
    if at < due:
        return ReleaseOutcome("PENDING", *ids, release_due=due)
    return ReleaseOutcome("RELEASED", *ids, instruction=payment_instruction(contract, evidence, at))


def payment_instruction(contract: Contract, evidence: Evidence, released_at: str) -> dict[str, Any]:
    """The instruction a payment system executes; amounts as decimal strings."""
    return {
        "format": INSTRUCTION_FORMAT,
        "idempotency_key": idempotency_key(contract.contract_id, contract.milestone_id),
        "contract_id": contract.contract_id,
        "milestone_id": contract.milestone_id,
        "payer": party_terms(contract.buyer),
        "payee": party_terms(contract.supplier),
        "amount": str(contract.amount),
        "currency": contract.currency,
        "certificate_sha256": evidence.certificate_sha256,
        "contract_sha256": contract_digest(contract),
        "bundle_sha256": dict(evidence.bundle_digests),
        "released_at": released_at,
        "reference": dict(contract.extra),
    }


def _certified_body(contract: Contract, evidence: Evidence, at: str) -> dict[str, Any]:
    window = timedelta(hours=contract.dispute_window_hours)
    return {
        "contract_sha256": contract_digest(contract),
        "amount": str(contract.amount),
        "currency": contract.currency,
        "payee": contract.supplier.name,
        "benchmark_spec_digest": evidence.spec_digest,
        **_seed(evidence.seed_commitment),
        "contract_seed_commitments": contract.seed_commitments,
        "verdict": evidence.verdict,
        **_kind_body(evidence),
        "bundle_sha256": dict(evidence.bundle_digests),
        # Stored as text: the ledger holds no floats.
        "dispute_window_hours": repr(contract.dispute_window_hours),
        "release_due": format_time(parse_time(at) + window),
    }


def _kind_body(evidence: Evidence) -> dict[str, Any]:
    """What a production or retention entry records besides a certificate's fields."""
    if evidence.kind == "certificate":
        return {}
    return {"milestone_kind": evidence.kind, "telemetry_window": evidence.window}


def _draft(
    kind: EventKind, contract: Contract, cert_sha: str | None, at: str, body: dict[str, Any]
) -> Draft:
    return Draft(kind, contract.contract_id, contract.milestone_id, cert_sha, at, body)


def released_entry(history: list[Event]) -> Event | None:
    """The milestone's RELEASED entry, if any."""
    return next((e for e in history if e.kind == "RELEASED"), None)


def _certified(history: list[Event], cert_sha: str) -> Event | None:
    return next(
        (e for e in history if e.kind == "CERTIFIED" and e.certificate_sha256 == cert_sha), None
    )


def _first_revealer(history: list[Event], seed_commitment: str) -> Event | None:
    """The first entry of a certificate that revealed this seed (CERTIFIED or REJECTED)."""
    return next((e for e in history if e.body.get("seed_commitment") == seed_commitment), None)


def _dispute_of(history: list[Event], cert_sha: str) -> Event | None:
    return next(
        (e for e in history if e.kind == "DISPUTED" and cert_sha in e.body["certificates"]), None
    )


def _replay(released: Event) -> ReleaseOutcome:
    return ReleaseOutcome(
        "RELEASED",
        released.contract_id,
        released.milestone_id,
        released.certificate_sha256 or "",
        instruction=released.body["instruction"],
        replayed=True,
    )
