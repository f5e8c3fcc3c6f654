"""The contract a payment release is checked against: one milestone, its price and its proof.

A contract is a YAML file (``configs/contracts/example.yaml``) parsed by :func:`load_contract`
into :class:`Contract`. It fixes what a certificate must show before money moves, and the
certifier's public key (a path, pinned by its fingerprint so a swapped key file is caught).
A milestone is one of three kinds (:data:`MILESTONE_KINDS`):

- ``certificate`` (factory acceptance): a benchmark certificate in simulation, on the spec
  (by digest) and the seed commitment published before delivery;
- ``production`` (site acceptance): a production certificate over the contract's window of
  parts of the delivered bundle on a named line cell (:class:`ProductionTerms`), judged by the
  spec's criteria;
- ``retention``: a production certificate that the window after the site acceptance ran with
  no drift alarm and no rollback.

``follows`` names the milestone of the same contract that must be released first, so the
stages are paid in order. The amount is a :class:`~decimal.Decimal` written as a string in
YAML — a YAML float is refused, because a float has already lost cents (``0.1 + 0.2``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from schwifty import BIC, IBAN
from schwifty import exceptions as iban_errors

from robocell.errors import RobocellError
from robocell.eval.release.currency import decimal_places, minor_units
from robocell.schema import SchemaError, parse, to_dict
from robocell.util import atomic_write_text, canonical_json, load_yaml, sha256_bytes

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")  # a line's or cell's name
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PLAIN_AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?")
#: What an IBAN looks like (spaces aside): country, two check digits, 1-30 letters/digits.
#: An account of this shape must be a valid IBAN; any other account stays an opaque id.
_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}")
#: A year: a longer dispute window is almost certainly hours typed as minutes or seconds.
MAX_DISPUTE_WINDOW_HOURS = 24.0 * 366
#: Digits of an amount, fraction included: ISO 20022's ActiveCurrencyAndAmount allows 18.
MAX_AMOUNT_DIGITS = 18
#: Characters of a party's name or account, and of each ``extra`` entry (ISO 20022 Max140Text).
MAX_TEXT_CHARS = 140
#: Characters of an account that is not an IBAN (ISO 20022 Othr/Id is Max34Text).
MAX_ACCOUNT_ID_CHARS = 34
MAX_DESCRIPTION_CHARS = 4000
MAX_EXTRA_ENTRIES = 32
#: Parts of a production window, and of the offset that starts it: a decade of one part a second.
MAX_WINDOW_PARTS = 10**9
MILESTONE_KINDS = ("certificate", "production", "retention")
MilestoneKind = Literal["certificate", "production", "retention"]
#: Fields the milestone kinds added, with the defaults a certificate milestone has.
_KIND_FIELDS: dict[str, Any] = {"kind": "certificate", "production": None, "follows": ""}
#: The failed IBAN check, named as an error message says it.
_IBAN_PROBLEMS: dict[type[Exception], str] = {
    iban_errors.InvalidChecksumDigits: "checksum",
    iban_errors.InvalidBBANChecksum: "national checksum",
    iban_errors.InvalidCountryCode: "country code",
    iban_errors.InvalidLength: "length",
    iban_errors.InvalidStructure: "structure",
    iban_errors.InvalidBankCode: "bank code",
    iban_errors.InvalidBranchCode: "branch code",
}


@dataclass
class Party:
    """A buyer or supplier."""

    name: str
    """Legal name, as it appears on the payment instruction."""
    account: str
    """Where money comes from or goes to. An IBAN-shaped value (``DE89 3704 ...``) must pass
    the IBAN checks (country, length, checksum); any other value is an opaque account id."""
    bic: str = ""
    """The bank's BIC (``COBADEFFXXX``), checked for structure and country; '' when the IBAN
    alone routes the payment (the bank file then says ``NOTPROVIDED``)."""


@dataclass
class CertifierKey:
    """The certifier's Ed25519 public key: where it is and which key it must be."""

    public_key: str
    """Path of the public key file; a relative path is relative to the contract file."""
    fingerprint: str
    """sha256 hex of the raw 32-byte key (``robocell.eval.keys.public_key_fingerprint``)."""


@dataclass
class CellKey:
    """A line cell's telemetry key: where its public half is and which key it must be."""

    public_key: str
    """Path of the cell's public key file (``robocell keys new --cell``); relative to the
    contract file."""
    fingerprint: str
    """sha256 hex of the raw 32-byte key; telemetry signed by any other key pays nothing."""


@dataclass
class ProductionTerms:
    """The production evidence a ``production`` or ``retention`` milestone is paid on."""

    line: str
    """The line whose telemetry counts (``line`` of the line file)."""
    cell: str
    """The cell on that line (its ``id``)."""
    cell_key: CellKey
    """The key the cell signs its telemetry batches with."""
    bundle_sha256: str
    """sha256 of the delivered bundle's ``policy.onnx``: every part of the window must have
    run it, and the window counts from its deployment on the cell."""
    start_after_deployment: int
    """Parts between the deployment event and the window's first part (0: the first part
    after deployment). Fixed in the contract, so nobody chooses a window after the results."""
    parts: int
    """The window's length: N parts for a site acceptance, K for a retention."""

    def validate(self) -> None:
        """Names, digests and the window's bounds."""
        for name in ("line", "cell"):
            if not _NAME.fullmatch(getattr(self, name)):
                raise SchemaError(
                    f"production.{name}", "use 1-100 letters, digits or ._:- (as the line file)"
                )
        for name, value in (
            ("bundle_sha256", self.bundle_sha256),
            ("cell_key.fingerprint", self.cell_key.fingerprint),
        ):
            if not _HEX64.fullmatch(value):
                raise SchemaError(f"production.{name}", "must be 64 lowercase hex digits (sha256)")
        if not 0 <= self.start_after_deployment <= MAX_WINDOW_PARTS:
            raise SchemaError(
                "production.start_after_deployment", f"must be within 0..{MAX_WINDOW_PARTS}"
            )
        if not 1 <= self.parts <= MAX_WINDOW_PARTS:
            raise SchemaError("production.parts", f"must be within 1..{MAX_WINDOW_PARTS}")

    @property
    def first_part(self) -> int:
        """The window's first part, counted from the deployment's part."""
        return self.start_after_deployment


@dataclass
class Contract:
    """One milestone of a supply contract: who pays whom, how much, for which proof."""

    contract_id: str
    """Contract reference; letters, digits, ``.``, ``_``, ``-``."""
    milestone_id: str
    """Milestone within the contract; at most one release per (contract_id, milestone_id)."""
    buyer: Party
    """The payer."""
    supplier: Party
    """The payee."""
    amount: Decimal
    """Price of the milestone, a decimal string such as ``"12500.00"`` (never a YAML float)."""
    currency: str
    """ISO 4217 code, e.g. ``EUR``; the amount has at most as many decimals as its minor unit."""
    certifier: CertifierKey
    """The key the certificate must be signed with."""
    dispute_window_hours: float
    """Hours between certification and release in which the buyer may dispute; 0 = at once."""
    kind: MilestoneKind = "certificate"
    """What pays: ``certificate``, ``production`` or ``retention`` (module docstring)."""
    benchmark_spec_digest: str = ""
    """sha256 of the benchmark spec whose criteria must hold (``certificate``: the spec the
    certificate ran; ``production``: the criteria judged on the window's parts)."""
    seed_commitment: str | list[str] = ""
    """``certificate`` only: sha256 commitment to the master seed, published before the bundle
    was delivered; or a list of them, one per certification attempt (:attr:`seed_commitments`)."""
    production: ProductionTerms | None = None
    """``production`` and ``retention``: the line cell, its key, the bundle and the window."""
    follows: str = ""
    """The milestone of this contract that must be released before this one ('' = none)."""
    description: str = ""
    """Free text for people; not used by any check."""
    extra: dict[str, str] = field(default_factory=dict)
    """Free-form string annotations (purchase order number, ...), copied to the instruction."""

    @property
    def seed_commitments(self) -> list[str]:
        """Every committed seed. Each certificate reveals its seed, so each attempt (a first
        certification, a re-certification after a FAILED one) needs a seed of its own."""
        if isinstance(self.seed_commitment, str):
            return [self.seed_commitment] if self.seed_commitment else []
        return list(self.seed_commitment)

    def validate(self) -> None:
        """Ids, parties, currency, amount, digests and window must be well formed."""
        # Nested parts are checked here so that messages carry the full dotted path.
        for name in ("contract_id", "milestone_id"):
            if not _ID.fullmatch(getattr(self, name)):
                raise SchemaError(name, "use 1-128 letters, digits, '.', '_' or '-'")
        for party in ("buyer", "supplier"):
            for name in ("name", "account"):
                _check_text(f"{party}.{name}", getattr(getattr(self, party), name))
            _check_iban(f"{party}.account", getattr(self, party).account)
            _check_bic(f"{party}.bic", getattr(self, party).bic)
        self._check_free_text()
        _check_amount(self.amount, self.currency)
        self._check_kind()
        digests = {"certifier.fingerprint": self.certifier.fingerprint}
        if self.kind != "retention":
            digests["benchmark_spec_digest"] = self.benchmark_spec_digest
        for name, value in digests.items():
            if not _HEX64.fullmatch(value):
                raise SchemaError(name, "must be 64 lowercase hex digits (sha256)")
        if not 0.0 <= self.dispute_window_hours <= MAX_DISPUTE_WINDOW_HOURS:
            raise SchemaError(
                "dispute_window_hours", f"must be within 0..{MAX_DISPUTE_WINDOW_HOURS:g} hours"
            )

    def _check_kind(self) -> None:
        """Each kind has its proof's terms and no other kind's."""
        if self.follows and not _ID.fullmatch(self.follows):
            raise SchemaError("follows", "a milestone id: 1-128 letters, digits, '.', '_' or '-'")
        if self.follows == self.milestone_id:
            raise SchemaError("follows", "a milestone cannot follow itself")
        if self.kind == "certificate":
            if self.production is not None:
                raise SchemaError("production", "only production and retention milestones")
            _check_commitments(self.seed_commitment)
            return
        if self.production is None:
            raise SchemaError("production", f"a {self.kind} milestone needs its production terms")
        if self.seed_commitments:
            raise SchemaError(
                "seed_commitment", "only certificate milestones: production data has no seed"
            )
        if self.kind == "retention" and self.benchmark_spec_digest:
            raise SchemaError(
                "benchmark_spec_digest", "a retention is paid on alarms and rollbacks, not a spec"
            )

    def _check_free_text(self) -> None:
        if len(self.description) > MAX_DESCRIPTION_CHARS:
            raise SchemaError("description", f"longer than {MAX_DESCRIPTION_CHARS} characters")
        if len(self.extra) > MAX_EXTRA_ENTRIES:
            raise SchemaError("extra", f"{len(self.extra)} entries, at most {MAX_EXTRA_ENTRIES}")
        for key, value in self.extra.items():
            if len(key) > MAX_TEXT_CHARS or len(value) > MAX_TEXT_CHARS:
                raise SchemaError(f"extra.{key[:40]}", f"over {MAX_TEXT_CHARS} characters")


def _check_text(where: str, text: str) -> None:
    if not text.strip():
        raise SchemaError(where, "must not be empty")
    if len(text) > MAX_TEXT_CHARS:
        raise SchemaError(where, f"{len(text)} characters, at most {MAX_TEXT_CHARS}")


def is_iban_shaped(account: str) -> bool:
    """Whether ``account`` looks like an IBAN (and so must be one), spaces ignored."""
    return bool(_IBAN_SHAPE.fullmatch(account.replace(" ", "")))


def _check_iban(where: str, account: str) -> None:
    if not is_iban_shaped(account):
        if len(account) > MAX_ACCOUNT_ID_CHARS:  # the bank file's Othr/Id is Max34Text
            raise SchemaError(where, f"an account id of at most {MAX_ACCOUNT_ID_CHARS} characters")
        return
    try:
        IBAN(account)
    except iban_errors.SchwiftyException as exc:
        raise SchemaError(where, f"invalid IBAN ({_iban_problem(exc)})") from None


def _check_bic(where: str, bic: str) -> None:
    if not bic:
        return
    try:
        BIC(bic)
    except iban_errors.SchwiftyException as exc:
        raise SchemaError(where, f"invalid BIC ({_iban_problem(exc)})") from None


def party_terms(party: Party) -> dict[str, str]:
    """A party as plain data; no ``bic`` key when none is given (as before BICs existed)."""
    terms = to_dict(party)
    if not terms["bic"]:
        del terms["bic"]
    return terms


def _iban_problem(exc: iban_errors.SchwiftyException) -> str:
    for kind, problem in _IBAN_PROBLEMS.items():
        if isinstance(exc, kind):
            return problem
    return str(exc)


def _check_amount(amount: Decimal, currency: str) -> None:
    try:
        places = minor_units(currency)
    except ValueError as exc:
        raise SchemaError("currency", f"{exc} (e.g. EUR, USD, JPY)") from None
    text = str(amount)
    if not _PLAIN_AMOUNT.fullmatch(text):
        raise SchemaError("amount", f"write a plain positive decimal such as '1250.00', got {text}")
    if amount <= 0:
        raise SchemaError("amount", "must be greater than zero")
    digits = len(text.replace(".", "").lstrip("0"))
    if digits > MAX_AMOUNT_DIGITS:
        raise SchemaError("amount", f"{digits} digits, at most {MAX_AMOUNT_DIGITS}")
    if decimal_places(amount) > places:
        raise SchemaError(
            "amount", f"{currency} has {places} decimal places, {text} has {decimal_places(amount)}"
        )


def _check_commitments(value: str | list[str]) -> None:
    commitments = [value] if isinstance(value, str) else value
    if not commitments:
        raise SchemaError("seed_commitment", "needs at least one commitment")
    for index, commitment in enumerate(commitments):
        where = "seed_commitment" if isinstance(value, str) else f"seed_commitment[{index}]"
        if not _HEX64.fullmatch(commitment):
            raise SchemaError(where, "must be 64 lowercase hex digits (sha256)")
    if len(set(commitments)) != len(commitments):
        raise SchemaError("seed_commitment", "lists a commitment twice; one seed per attempt")


def load_contract(path: str | Path) -> Contract:
    """Read and validate a contract YAML; every problem names the file and the field."""
    path = Path(path)
    try:
        return parse(Contract, load_yaml(path))
    except SchemaError as exc:
        raise RobocellError(f"{path}: {exc}") from None


def contract_terms(contract: Contract) -> dict[str, Any]:
    """The contract as plain data; the fields milestone kinds added are left out at their
    defaults, so a certificate milestone reads (and hashes) as it did before them."""
    terms = to_dict(contract)
    for name, default in _KIND_FIELDS.items():
        if terms[name] == default:
            del terms[name]
    terms["buyer"], terms["supplier"] = party_terms(contract.buyer), party_terms(contract.supplier)
    return terms


def contract_digest(contract: Contract) -> str:
    """sha256 of the contract's canonical JSON: changes whenever any term changes."""
    return sha256_bytes(canonical_json(contract_terms(contract)))


def public_key_path(contract: Contract, contract_path: str | Path) -> Path:
    """The certifier key file, resolved against the contract file's folder."""
    return contract_relative(contract.certifier.public_key, contract_path)


def contract_relative(path: str, contract_path: str | Path) -> Path:
    """A path the contract names, resolved against the contract file's folder."""
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = Path(contract_path).parent / resolved
    return resolved


def load_pinned_key(path: Path, fingerprint: str, what: str) -> Any:
    """The Ed25519 public key at ``path``, which must have the contract's ``fingerprint``."""
    from robocell.errors import VerificationError
    from robocell.eval.keys import load_public_key, public_key_fingerprint

    key = load_public_key(path)
    found = public_key_fingerprint(key)
    if found != fingerprint:
        raise VerificationError(
            f"{what} {path} has fingerprint {found}, the contract pins {fingerprint}"
        )
    return key


def write_contract(path: str | Path, contract: Contract, header: str = "") -> None:
    """Write ``contract`` as YAML (amount as a quoted string), atomically; ``header`` = comments."""
    lines = "".join(f"# {line}\n" for line in header.splitlines())
    text = yaml.safe_dump(contract_terms(contract), sort_keys=False, allow_unicode=True)
    atomic_write_text(path, lines + text)
