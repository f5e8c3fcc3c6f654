"""``robocell release``, ``robocell dispute`` and ``robocell ledger show|verify``.

Exit codes of ``release``: 0 payment instruction written (first run or a retry), 1 certificate
rejected (recorded as REJECTED), 2 bad input (nothing recorded), 3 certified but waiting for
the dispute window, 4 stopped by a dispute, 5 released but the instruction file could not be
written (run again: the same instruction), 6 the ledger's chain is broken (nothing written),
7 the ledger could not be read or written: none made by ``robocell ledger init`` at that path
or URL, a read-only file, a full disk, a file removed while open, a server error (nothing
recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from datetime import datetime
from pathlib import Path

from robocell.errors import RobocellError, VerificationError
from robocell.eval.release.clock import MAX_CLOCK_SKEW_S, TEST_CLOCK_ENV, parse_time
from robocell.eval.release.contract import MILESTONE_KINDS
from robocell.eval.release.events import Event
from robocell.eval.release.ledger import DEFAULT_LEDGER

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class InstructionNotWritten(RobocellError):
    """The release is recorded, but its payment instruction file could not be written."""

    exit_code = 5


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the payment-release commands to the CLI."""
    release = subparsers.add_parser(
        "release", help="verify a certificate against a contract and release the payment once"
    )
    release.add_argument("cert", help="certificate.json written by `robocell certify`")
    release.add_argument("--contract", required=True, help="contract YAML")
    release.add_argument("--bundle", required=True, help="the delivered bundle directory")
    release.add_argument(
        "--telemetry",
        metavar="URL",
        help="production and retention milestones: the line's telemetry store (path, "
        "sqlite:///PATH or postgresql://...), where the certificate is verified",
    )
    _ledger_option(release)
    _now_option(release)
    release.add_argument(
        "-o",
        "--output",
        help="payment instruction JSON (default: payment-CONTRACT-MILESTONE.json)",
    )
    release.set_defaults(func=_release)

    dispute = subparsers.add_parser(
        "dispute", help="dispute a certified milestone inside its window: stops the release"
    )
    dispute.add_argument("contract_id", metavar="CONTRACT", help="contract id")
    dispute.add_argument("milestone_id", metavar="MILESTONE", help="milestone id")
    dispute.add_argument("--reason", required=True, help="why the buyer disputes (recorded)")
    _ledger_option(dispute)
    _now_option(dispute)
    dispute.set_defaults(func=_dispute)

    _register_contract(subparsers)
    ledger = subparsers.add_parser("ledger", help="show or verify the release ledger")
    actions = ledger.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    init = actions.add_parser(
        "init", help="create the ledger (release and dispute refuse one that does not exist)"
    )
    _ledger_option(init)
    init.set_defaults(func=_init)
    show = actions.add_parser("show", help="print every ledger entry")
    _ledger_option(show)
    show.add_argument("--json", action="store_true", help="one JSON object per entry")
    show.set_defaults(func=_show)
    verify = actions.add_parser("verify", help="walk the hash chain; report the first break")
    _ledger_option(verify)
    verify.add_argument(
        "--anchor", help="a head hash published earlier; fails unless it is still in the chain"
    )
    verify.set_defaults(func=_verify)


def _register_contract(subparsers: argparse._SubParsersAction) -> None:
    contract = subparsers.add_parser("contract", help="write a milestone contract")
    actions = contract.add_subparsers(dest="contract_command", metavar="ACTION", required=True)
    new = actions.add_parser(
        "new", help="write a contract YAML; digests come from the spec, commitment and key"
    )
    for name, text in [
        ("--contract-id", "contract reference"),
        ("--milestone-id", "milestone within the contract"),
        ("--buyer", "payer's legal name"),
        ("--buyer-account", "payer's account"),
        ("--supplier", "payee's legal name"),
        ("--supplier-account", "payee's account"),
        ("--amount", "price, a decimal such as 12500.00"),
        ("--currency", "ISO 4217 code, e.g. EUR"),
        ("--certifier-key", "certifier's public key (PEM)"),
    ]:
        new.add_argument(name, required=True, help=text)
    new.add_argument(
        "--kind",
        choices=MILESTONE_KINDS,
        default="certificate",
        help="certificate (simulation, the default), production (site acceptance on the "
        "line's telemetry) or retention (no alarm, no rollback over a later window)",
    )
    new.add_argument(
        "--benchmark", help="benchmark spec YAML or a packaged name (weld); not for retention"
    )
    new.add_argument(
        "--commitment",
        action="append",
        help="certificate milestones: seed commitment printed by `robocell seeds new`; repeat "
        "it to pre-commit one seed per certification attempt",
    )
    new.add_argument("--follows", default="", help="milestone that must be released first")
    for party in ("buyer", "supplier"):
        new.add_argument(f"--{party}-bic", default="", help=f"{party}'s bank BIC (optional)")
    production = new.add_argument_group("production and retention milestones")
    production.add_argument("--line", help="the line (its line file's `line`)")
    production.add_argument("--cell", help="the cell's id on that line")
    production.add_argument("--cell-key", help="the cell's telemetry public key (cell-ID.pub)")
    production.add_argument("--bundle", help="the delivered bundle directory")
    production.add_argument(
        "--start-after-deployment",
        type=int,
        default=0,
        metavar="PARTS",
        help="parts between the bundle's deployment and the window (default 0)",
    )
    production.add_argument("--parts", type=int, help="the window's length in parts")
    new.add_argument(
        "--dispute-window-hours", type=float, default=72.0, help="hours to dispute (default 72)"
    )
    new.add_argument("-o", "--output", required=True, help="contract YAML to write")
    new.set_defaults(func=_contract_new)


def _contract_new(args: argparse.Namespace) -> int:
    from robocell.eval.keys import load_public_key, public_key_fingerprint
    from robocell.eval.release.contract import Contract, contract_digest, write_contract
    from robocell.eval.spec import load_spec, resolve_spec_path, spec_digest
    from robocell.schema import SchemaError, parse

    out = Path(args.output)
    if out.exists():
        raise RobocellError(f"{out}: already exists; a contract is never overwritten")
    _check_kind_options(args)
    key_path = Path(args.certifier_key).resolve()
    data = {
        "contract_id": args.contract_id,
        "milestone_id": args.milestone_id,
        "kind": args.kind,
        "buyer": {"name": args.buyer, "account": args.buyer_account, "bic": args.buyer_bic},
        "supplier": {
            "name": args.supplier,
            "account": args.supplier_account,
            "bic": args.supplier_bic,
        },
        "amount": args.amount,
        "currency": args.currency,
        "certifier": {
            "public_key": os.path.relpath(key_path, out.resolve().parent),
            "fingerprint": public_key_fingerprint(load_public_key(key_path)),
        },
        "dispute_window_hours": args.dispute_window_hours,
        "follows": args.follows,
    }
    header = ""
    if args.benchmark is not None:
        spec = load_spec(args.benchmark)
        data["benchmark_spec_digest"] = spec_digest(spec)
        header = f"Benchmark: {resolve_spec_path(args.benchmark)}"
    if args.commitment:
        data["seed_commitment"] = _commitments(args.commitment)
    if args.kind != "certificate":
        data["production"] = _production_terms(args, out)
    try:
        contract = parse(Contract, data)
    except SchemaError as exc:
        raise RobocellError(f"contract: {exc}") from None
    if args.kind == "production":
        from robocell.eval.production import window_spec

        window_spec(spec, args.parts)  # a window too short for the spec could never pass
    write_contract(out, contract, header)
    print(
        f"contract {out}: {contract.contract_id}/{contract.milestone_id} ({contract.kind}), "
        f"{contract.amount} {contract.currency}; sha256 {contract_digest(contract)}"
    )
    return 0


def _check_kind_options(args: argparse.Namespace) -> None:
    """Each kind's options, and none of another kind's."""
    needed = {
        "certificate": ("--benchmark", "--commitment"),
        "production": ("--benchmark", "--line", "--cell", "--cell-key", "--bundle", "--parts"),
        "retention": ("--line", "--cell", "--cell-key", "--bundle", "--parts"),
    }[args.kind]
    for option in needed:
        if getattr(args, option[2:].replace("-", "_")) is None:
            raise RobocellError(f"contract new --kind {args.kind} needs {option}")
    if args.kind != "certificate" and args.commitment:
        raise RobocellError("--commitment is for certificate milestones: production has no seed")
    if args.kind == "retention" and args.benchmark is not None:
        raise RobocellError("--benchmark: a retention is paid on alarms and rollbacks, not a spec")


def _production_terms(args: argparse.Namespace, out: Path) -> dict[str, object]:
    from robocell.agents.bundle import ONNX_FILE, subject_digests
    from robocell.eval.keys import load_public_key, public_key_fingerprint

    if not Path(args.bundle).is_dir():
        raise RobocellError(f"--bundle {args.bundle}: no bundle directory here")
    cell_key = Path(args.cell_key).resolve()
    return {
        "line": args.line,
        "cell": args.cell,
        "cell_key": {
            "public_key": os.path.relpath(cell_key, out.resolve().parent),
            "fingerprint": public_key_fingerprint(load_public_key(cell_key)),
        },
        "bundle_sha256": subject_digests(args.bundle)[ONNX_FILE],
        "start_after_deployment": args.start_after_deployment,
        "parts": args.parts,
    }


def _commitments(values: list[str]) -> str | list[str]:
    commitments = [value.strip().lower() for value in values]
    return commitments[0] if len(commitments) == 1 else commitments


def _ledger_option(parser: argparse.ArgumentParser) -> None:
    default = os.environ.get("ROBOCELL_LEDGER", DEFAULT_LEDGER)
    parser.add_argument(
        "--ledger",
        default=default,
        help="ledger path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB URL "
        f"(default: $ROBOCELL_LEDGER or {DEFAULT_LEDGER})",
    )


def _now_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--now",
        type=_time_argument,
        help=f"decision time, ISO 8601 (default: the clock; no zone = UTC): within "
        f"{MAX_CLOCK_SKEW_S} s of the system clock unless {TEST_CLOCK_ENV}=1 (tests and "
        "replays on a scratch ledger); never before the ledger's last entry",
    )


def _time_argument(text: str) -> datetime:
    try:
        return parse_time(text)
    except RobocellError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _release(args: argparse.Namespace) -> int:
    from robocell.eval.release.contract import load_contract
    from robocell.eval.release.ledger import open_ledger
    from robocell.eval.release.release import release_milestone
    from robocell.eval.release.settlement import (
        check_own_settlement,
        pain001_xml,
        settlement_path,
        write_settlement,
    )
    from robocell.util import atomic_write_json

    contract = load_contract(args.contract)
    out = Path(args.output or _default_output(contract.contract_id, contract.milestone_id))
    _check_writable(out, contract.contract_id, contract.milestone_id)
    check_own_settlement(settlement_path(out), contract.contract_id, contract.milestone_id)
    with open_ledger(args.ledger, create=False) as ledger:
        outcome = release_milestone(
            args.cert, args.contract, args.bundle, ledger, args.now, args.telemetry
        )
    ids = f"{outcome.contract_id}/{outcome.milestone_id}"
    if outcome.status == "PENDING":
        print(f"CERTIFIED {ids}; dispute window open until {outcome.release_due}: run again then")
    elif outcome.status == "DISPUTED":
        print(f"DISPUTED {ids}: release stopped ({outcome.reason})")
    else:
        instruction = outcome.instruction or {}
        try:
            atomic_write_json(out, instruction)
            write_settlement(settlement_path(out), pain001_xml(instruction, contract))
        except OSError as exc:
            raise InstructionNotWritten(
                f"RELEASED {ids} is recorded in the ledger, but the payment instruction could "
                f"not be written to {out} ({exc.strerror or exc}); run `robocell release` again "
                "with a writable -o: it writes the same instruction"
            ) from None
        again = " (already released; the first result again)" if outcome.replayed else ""
        print(
            f"RELEASED {ids}: {instruction['amount']} {instruction['currency']} to "
            f"{instruction['payee']['name']}{again}\n"
            f"payment instruction {out} (idempotency key {instruction['idempotency_key']}), "
            f"bank file {settlement_path(out)}"
        )
    return outcome.exit_code


def _check_writable(out: Path, contract_id: str, milestone_id: str) -> None:
    """Refuse, before anything is recorded, an instruction path that cannot be written, or
    that holds any file but this milestone's own instruction (which a retry writes again)."""
    folder = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise RobocellError(f"-o {out}: is a directory; name the instruction file to write")
    if out.exists() or out.is_symlink():
        _check_own_instruction(out, contract_id, milestone_id)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise RobocellError(f"-o {out}: cannot write in {existing}; nothing was recorded")


def _check_own_instruction(out: Path, contract_id: str, milestone_id: str) -> None:
    from robocell.eval.release.release import INSTRUCTION_FORMAT
    from robocell.util import load_json_strict, read_text_capped

    refusal = RobocellError(
        f"-o {out}: exists and is not the payment instruction of {contract_id}/{milestone_id}; "
        "refusing to overwrite it (nothing was recorded)"
    )
    if out.is_symlink() or not out.is_file():
        raise refusal
    try:
        data = load_json_strict(read_text_capped(out, 1024 * 1024, "an instruction"), str(out))
    except RobocellError:
        raise refusal from None
    mine = {"format": INSTRUCTION_FORMAT, "contract_id": contract_id, "milestone_id": milestone_id}
    if not isinstance(data, dict) or any(data.get(k) != v for k, v in mine.items()):
        raise refusal


def _default_output(contract_id: str, milestone_id: str) -> str:
    return f"payment-{_SAFE_NAME.sub('_', contract_id)}-{_SAFE_NAME.sub('_', milestone_id)}.json"


def _dispute(args: argparse.Namespace) -> int:
    from robocell.eval.release.dispute import dispute_milestone
    from robocell.eval.release.ledger import open_ledger

    now: datetime | None = args.now
    with open_ledger(args.ledger, create=False) as ledger:
        event = dispute_milestone(ledger, args.contract_id, args.milestone_id, args.reason, now)
    count = len(event.body["certificates"])
    print(
        f"DISPUTED {args.contract_id}/{args.milestone_id} (entry {event.seq}): stops {count} "
        f"pending release(s)"
    )
    return 0


def _init(args: argparse.Namespace) -> int:
    from robocell.eval.release.ledger import open_ledger

    with open_ledger(args.ledger, create=True) as ledger:
        entries = ledger.verify().entries
    state = f"a ledger with {entries} entries" if entries else "an empty ledger"
    print(f"{args.ledger}: {state}, ready for `robocell release --ledger {args.ledger}`")
    return 0


def _show(args: argparse.Namespace) -> int:
    from robocell.eval.release.ledger import open_ledger

    with open_ledger(args.ledger, create=False) as ledger:
        events = ledger.events()
    for event in events:
        if args.json:
            print(json.dumps(event.to_record() | {"body": event.body}, sort_keys=True))
        else:
            print(_show_line(event))
    if not args.json:
        head = events[-1].row_hash if events else "(empty)"
        print(f"{len(events)} entries; head {head}")
    return 0


def _show_line(event: Event) -> str:
    cert = (event.certificate_sha256 or "-")[:12]
    return (
        f"{event.seq:>5}  {event.recorded_at}  {event.kind:<9}  "
        f"{event.contract_id}/{event.milestone_id}  cert {cert}  {_detail(event)}"
    )


def _detail(event: Event) -> str:
    # Tolerant of any body shape: show is what a person reads while looking for a problem.
    body = event.body
    instruction = body.get("instruction")
    if event.kind == "RELEASED" and isinstance(instruction, dict):
        payee = instruction.get("payee") or {}
        return (
            f"{instruction.get('amount')} {instruction.get('currency')} to "
            f"{payee.get('name')} (key {str(instruction.get('idempotency_key'))[:12]})"
        )
    if event.kind == "CERTIFIED" and "release_due" in body:
        return f"{body.get('amount')} {body.get('currency')}; release due {body['release_due']}"
    if "reason" in body:
        return str(body["reason"])
    return json.dumps(body, sort_keys=True)


def _verify(args: argparse.Namespace) -> int:
    from robocell.eval.release.ledger import open_ledger

    with open_ledger(args.ledger, create=False) as ledger:
        report = ledger.verify(anchor=args.anchor)
    if not report.ok:
        raise VerificationError(
            f"{args.ledger}: chain broken after {report.entries} good entries: {report.problem}"
        )
    print(f"{args.ledger}: chain intact, {report.entries} entries, head {report.head_hash}")
    return 0
