"""``robocell seeds new``, ``keys new``, ``certify``, ``verify`` and ``report``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from robocell.cli_helpers import count, positive_int
from robocell.errors import RobocellError
from robocell.executor import add_executor_arguments, options_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the certification commands to the CLI."""
    seeds = subparsers.add_parser("seeds", help="create a secret master seed and its commitment")
    seeds_sub = seeds.add_subparsers(dest="seeds_command", metavar="ACTION", required=True)
    seeds_new = seeds_sub.add_parser("new", help="write a new master seed; print its commitment")
    seeds_new.add_argument("-o", "--output", required=True, help="master seed file to create")
    seeds_new.set_defaults(func=_seeds_new)

    keys = subparsers.add_parser("keys", help="create an Ed25519 key pair (certifier or cell)")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    keys_new = keys_sub.add_parser(
        "new", help="write certifier.key (0600) and certifier.pub, or a cell's pair with --cell"
    )
    keys_new.add_argument("-o", "--output", required=True, help="directory for the key pair")
    keys_new.add_argument(
        "--cell", metavar="ID", help="a line cell's telemetry key: cell-ID.key and cell-ID.pub"
    )
    keys_new.set_defaults(func=_keys_new)

    _register_certify(subparsers)
    _register_certify_production(subparsers)
    _register_verify(subparsers)
    _register_report(subparsers)


def _register_certify(subparsers: argparse._SubParsersAction) -> None:
    certify = subparsers.add_parser(
        "certify", help="run a benchmark on a bundle and write a signed certificate"
    )
    certify.add_argument("bundle", help="exported bundle directory (policy.onnx + manifest.json)")
    certify.add_argument(
        "--benchmark",
        required=True,
        help="benchmark spec YAML, or a packaged one: weld, peg, vision",
    )
    certify.add_argument("--master-seed-file", required=True, help="the secret master seed")
    certify.add_argument("--commitment", required=True, help="published sha256 of the seed")
    certify.add_argument("--key", required=True, help="certifier's private key (PEM)")
    certify.add_argument("-o", "--output", required=True, help="certificate directory")
    certify.add_argument("--workers", type=positive_int, default=1, help="worker processes")
    certify.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    certify.add_argument(
        "--stills",
        type=count(0),
        default=3,
        metavar="N",
        help="episodes replayed for report.html's rollout stills (first and last frame; "
        "0: none; default 3, about 1.5 s each for a weld seam)",
    )
    add_executor_arguments(certify)
    certify.set_defaults(func=_certify)


def _register_certify_production(subparsers: argparse._SubParsersAction) -> None:
    certify = subparsers.add_parser(
        "certify-production",
        help="certify a production or retention milestone on a line cell's signed telemetry",
    )
    certify.add_argument("bundle", help="the delivered bundle directory")
    certify.add_argument(
        "--telemetry", required=True, metavar="URL", help="the line's telemetry store"
    )
    certify.add_argument(
        "--contract",
        required=True,
        help="the milestone's contract: its cell, cell key, bundle and window",
    )
    certify.add_argument(
        "--benchmark", help="production milestones: the spec whose criteria judge the window"
    )
    certify.add_argument("--key", required=True, help="certifier's private key (PEM)")
    certify.add_argument("-o", "--output", required=True, help="certificate directory")
    certify.set_defaults(func=_certify_production)


def _register_verify(subparsers: argparse._SubParsersAction) -> None:
    verify = subparsers.add_parser("verify", help="check a certificate's signature and digests")
    verify.add_argument("certificate", help="CERT_DIR/certificate.json (or CERT_DIR)")
    verify.add_argument("--pubkey", required=True, help="certifier's public key (PEM)")
    verify.add_argument("--bundle", help="bundle directory to check against the subjects")
    verify.add_argument(
        "--telemetry",
        metavar="URL",
        help="a production certificate: the telemetry store it was certified on",
    )
    verify.add_argument(
        "--rerun", action="store_true", help="re-run every episode with --bundle and compare"
    )
    verify.add_argument("--workers", type=positive_int, default=1, help="worker processes")
    verify.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    verify.set_defaults(func=_verify)


def _register_report(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser("report", help="rebuild report.html from a verified certificate")
    report.add_argument("certificate", help="CERT_DIR (or CERT_DIR/certificate.json)")
    report.add_argument("--pubkey", required=True, help="certifier's public key (PEM)")
    report.add_argument("-o", "--output", help="HTML file to write (default: CERT_DIR/report.html)")
    report.set_defaults(func=_report)


def _seeds_new(args: argparse.Namespace) -> int:
    from robocell.eval.seeds import commitment, new_master_seed, write_master_seed

    seed = new_master_seed()
    write_master_seed(args.output, seed)
    print(f"master seed written to {args.output} (keep it secret; give it to the certifier)")
    print(f"commitment: {commitment(seed)}")
    return 0


def _keys_new(args: argparse.Namespace) -> int:
    from robocell.eval.keys import generate_keypair, load_public_key, public_key_fingerprint

    names = {}
    if args.cell is not None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}", args.cell):
            raise RobocellError(f"--cell {args.cell!r}: expected letters, digits or ._:-")
        names = {"key_name": f"cell-{args.cell}.key", "pub_name": f"cell-{args.cell}.pub"}
    key_path, pub_path = generate_keypair(args.output, **names)
    fingerprint = public_key_fingerprint(load_public_key(pub_path))
    print(f"private key: {key_path} (mode 0600, keep it secret)")
    print(f"public key:  {pub_path}")
    print(f"fingerprint: {fingerprint}")
    return 0


def _certify(args: argparse.Namespace) -> int:
    from robocell.eval.certify import certify
    from robocell.eval.keys import load_private_key, public_key_fingerprint
    from robocell.eval.revealed import RevealedSeeds
    from robocell.eval.seeds import read_master_seed
    from robocell.eval.spec import load_spec, resolve_spec_path

    spec = load_spec(args.benchmark)
    key = load_private_key(args.key)
    result = certify(
        args.bundle,
        spec,
        read_master_seed(args.master_seed_file),
        args.commitment,
        key,
        args.output,
        workers=args.workers,
        progress=not args.no_progress,
        stills=args.stills,
        executor=options_from_args(args, args.workers),
        revealed=RevealedSeeds(args.key, public_key_fingerprint(key.public_key())),
    )
    print(f"benchmark: {spec.name} ({resolve_spec_path(args.benchmark)})")
    _print_results(result.statement["predicate"])
    print(f"certificate: {result.certificate_path}")
    print(f"report: {result.certificate_path.parent / 'report.html'}")
    print(f"verdict: {result.verdict}")
    return 0


def _certify_production(args: argparse.Namespace) -> int:
    from robocell.eval.keys import load_private_key
    from robocell.eval.production import certify_production
    from robocell.eval.release.contract import load_contract
    from robocell.eval.spec import load_spec

    contract = load_contract(args.contract)
    spec = load_spec(args.benchmark) if args.benchmark else None
    path, predicate = certify_production(
        args.telemetry,
        contract,
        args.contract,
        args.bundle,
        spec,
        load_private_key(args.key),
        args.output,
    )
    telemetry = predicate["telemetry"]
    print(
        f"{contract.kind} window: parts {telemetry['first_part']}..{telemetry['last_part']} of "
        f"{telemetry['line']}/{telemetry['cell']} (deployed at part "
        f"{telemetry['deployment_part']}; telemetry head batch {telemetry['head']['batches']})"
    )
    _print_results(predicate)
    print(f"certificate: {path}")
    print(f"verdict: {predicate['verdict']}")
    return 0


def _print_results(predicate: dict) -> None:
    """The criteria, figures and action gate of a predicate, or a retention's findings."""
    retention = predicate.get("retention")
    if retention is not None:
        print(f"  drift alarms in the window: {retention['drift_alarms'] or 'none'}")
        print(f"  rollbacks in the window:    {retention['rollbacks'] or 'none'}")
        standing = retention["standing_alarm_part"]
        print(f"  alarm standing at the start: {'none' if standing is None else standing}")
        return
    for c in [*predicate["criteria"], *predicate["bucket_criteria"]]:
        print(
            f"  {c['name']:24s} k={c['k']}/{c['n']}  CP lower={c['clopper_pearson_lower']:.4f}  "
            f"p0={c['p0']:g}  {c['verdict']}"
        )
    for f in predicate["figures"]:
        print(
            f"  {f['name']:24s} {f['statistic']}={f['value']}  CI=[{f['ci_low']}, "
            f"{f['ci_high']}]  {f['verdict']}"
        )
    gate = predicate["actions"]
    print(
        f"  {'actions within bounds':24s} {gate['n'] - gate['episodes_with_invalid_actions']}/"
        f"{gate['n']} episodes  {gate['verdict']}"
    )


def _verify(args: argparse.Namespace) -> int:
    from robocell.eval.production import PREDICATE_TYPE
    from robocell.eval.verify import open_certificate, rerun_differences, verify_certificate

    if args.rerun and not args.bundle:
        raise RobocellError("--rerun needs --bundle (the bundle to run)")
    statement = open_certificate(args.certificate, args.pubkey)[2]
    if statement.get("predicateType") == PREDICATE_TYPE:
        return _verify_production(args)
    if args.telemetry:
        raise RobocellError("--telemetry is for production certificates; this is a benchmark one")
    verified = verify_certificate(args.certificate, args.pubkey, args.bundle)
    print(f"signature: valid (key {verified.key_fingerprint})")
    print(f"benchmark spec sha256: {verified.spec_digest}")
    print(f"seed commitment: {verified.commitment} (revealed seed matches)")
    for name, digest in verified.subject_digests.items():
        checked = "matches --bundle" if args.bundle else "bundle not checked"
        print(f"subject {name}: {digest} ({checked})")
    print("episode log, statistics and report: match the signed digests")
    if args.rerun:
        differences = rerun_differences(
            verified, args.bundle, args.workers, progress=not args.no_progress
        )
        for line in differences:
            print(f"rerun differs: {line}")
        if differences:
            print(f"rerun: {len(differences)} of {verified.spec.episodes} episodes differ")
            return 1
        print(f"rerun: all {verified.spec.episodes} episodes reproduced exactly")
    print(f"certificate valid; verdict: {verified.verdict}")
    return 0


def _verify_production(args: argparse.Namespace) -> int:
    from robocell.eval.production import verify_production_certificate

    if not args.telemetry:
        raise RobocellError(
            "a production certificate is verified on its telemetry: give --telemetry URL"
        )
    if args.rerun:
        raise RobocellError("--rerun: a production certificate's parts ran on the line")
    verified = verify_production_certificate(
        args.certificate, args.pubkey, args.telemetry, args.bundle
    )
    window = verified.window
    print(f"signature: valid (key {verified.key_fingerprint})")
    print(
        f"telemetry: {window.line}/{window.cell} chain holds with the cell key "
        f"{verified.terms['cell_key_fingerprint']}; the certified head is in it"
    )
    print(
        f"{verified.kind} window: parts {window.first_part}..{window.last_part} (deployed at "
        f"part {window.deployment_part}), every one ran bundle {verified.terms['bundle_sha256']}"
    )
    for name, digest in verified.subject_digests.items():
        checked = "matches --bundle" if args.bundle else "bundle not checked"
        print(f"subject {name}: {digest} ({checked})")
    print("parts log, statistics and report: recomputed from the telemetry, as signed")
    print(f"certificate valid; verdict: {verified.verdict}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from robocell.eval.report import HTML_NAME, rebuild_html
    from robocell.eval.verify import verify_certificate
    from robocell.util import atomic_write_bytes, sha256_bytes

    verified = verify_certificate(args.certificate, args.pubkey, report_optional=True)
    data = rebuild_html(verified).encode()
    output = Path(args.output) if args.output else verified.path.parent / HTML_NAME
    if output.is_dir():
        raise RobocellError(f"-o {output}: is a directory; give an HTML file name")
    if output.exists() and output.read_bytes() != data:
        raise RobocellError(
            f"{output}: exists and differs from the rebuilt report; choose another -o"
        )
    atomic_write_bytes(output, data, mode=0o644)
    signed = verified.predicate["report"].get(HTML_NAME)
    if signed is None:
        note = "the certificate signs no report.html"
    elif signed == sha256_bytes(data):
        note = "identical to the signed report.html"
    else:
        note = "differs from the signed report.html (made by another robocell version)"
    print(f"certificate valid; verdict: {verified.verdict}")
    print(f"report: {output} ({note})")
    return 0
