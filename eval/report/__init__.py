"""The human report of a certificate: ``report.md``, ``report.html``, plots and stills.

Every file is derived from the same numbers as the signed predicate, and the predicate carries
the sha256 of every one (``predicate.report``), so an edited report fails verification too.
``report.html`` (:mod:`robocell.eval.report.html`) is self-contained; it is a pure function of
the predicate, the subjects, the episode log and the signed images, so :func:`rebuild_html`
makes it again from a verified certificate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robocell.eval.decision import Evaluation
from robocell.eval.report.html import HTML_NAME, render_html
from robocell.eval.report.markdown import markdown_report
from robocell.eval.report.plots import PLOTS_DIR, plot_files
from robocell.eval.report.stills import DEFAULT_STILL_EPISODES, STILLS_DIR, render_stills
from robocell.eval.spec import BenchmarkSpec
from robocell.util import atomic_write_bytes, canonical_json, sha256_bytes

if TYPE_CHECKING:  # verify imports certify, which imports this package
    from robocell.eval.verify import VerifiedCertificate

REPORT_NAME = "report.md"

__all__ = [
    "DEFAULT_STILL_EPISODES",
    "HTML_NAME",
    "PLOTS_DIR",
    "REPORT_NAME",
    "STILLS_DIR",
    "rebuild_html",
    "render_stills",
    "write_report",
]


def write_report(
    out_dir: str | Path,
    spec: BenchmarkSpec,
    evaluation: Evaluation,
    records: list[dict[str, Any]],
    subjects: dict[str, str],
    predicate: dict[str, Any],
    stills: dict[str, bytes],
) -> dict[str, str]:
    """Write plots, stills, ``report.md`` and ``report.html``; ``{relative path: sha256}``.

    ``predicate`` is the statement's predicate so far (everything but ``report``).
    """
    out_dir = Path(out_dir)
    images = {**plot_files(spec, evaluation, records), **stills}
    files = dict(images)
    files[REPORT_NAME] = markdown_report(
        spec, evaluation, subjects, predicate, sorted(images)
    ).encode()
    # The page sees the predicate as a verifier will: through JSON.
    plain = json.loads(canonical_json(predicate))
    files[HTML_NAME] = render_html(plain, subjects, records, images).encode()
    digests = {}
    for relative, data in files.items():
        atomic_write_bytes(out_dir / relative, data, mode=0o644)
        digests[relative] = sha256_bytes(data)
    return digests


def rebuild_html(verified: VerifiedCertificate) -> str:
    """``report.html`` of a verified certificate.

    The plots and stills come from the certificate directory, whose files the verification
    has just checked against their signed digests.
    """
    cert_dir = verified.path.parent
    images = {
        relative: (cert_dir / relative).read_bytes()
        for relative in sorted(verified.predicate["report"])
        if relative.endswith(".png")
    }
    predicate = {k: v for k, v in verified.predicate.items() if k != "report"}
    return render_html(predicate, verified.subject_digests, verified.episodes, images)
