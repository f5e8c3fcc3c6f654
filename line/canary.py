"""A challenger on a share of a cell's parts: certified first, then promoted or rolled back.

A cell's ``canary`` entry in the line file offers a challenger bundle from a given part on.
The line then, by itself:

1. **certifies** the challenger on the cell's benchmark spec run on the twin (the spec's env
   kwargs updated with what the line believes of the plant, ``twin``), with a fresh master
   seed and its commitment, in a separate ``robocell certify`` process while the champion goes
   on serving every part. Only a PASSED certificate lets the challenger run; any other
   outcome is a ``certificate`` event and nothing more;
2. from ``certify_parts`` parts after that (the line waits there for the certificate if it
   must, so which parts the canary makes is fixed in advance), runs it as a **canary** on
   ``share`` of the parts (a part's side is a hash of the line seed,
   the part and the cell, fixed in advance), the champion on the rest;
3. after every part, asks the sequential test (:class:`robocell.line.sequential.CanaryTest`)
   for a decision on the parts since the canary began: a **promotion** makes the challenger
   the champion for every later part, a **rollback** ends the canary; the champion never
   stops.

Each step is an event in the telemetry (``certificate``, ``canary``, ``promotion``,
``rollback``, with the part it happened at), and the cell's registry file
``OUT/registry/<cell>.json`` holds the aliases ``champion`` and ``canary`` (MLflow-style
aliases on bundle digests) and the history of which bundle served which parts. Everything is
rebuilt from the telemetry on ``--resume``: a killed certification is started again, a canary
goes on with its test replayed from the recorded rows.
"""

from __future__ import annotations

import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robocell.errors import RobocellError
from robocell.line.linefile import CanaryEntry
from robocell.line.sequential import CanaryTest
from robocell.util import atomic_write_json

Emit = Callable[..., None]


def canary_side(line_seed: int, part: int, cell_id: str, share: float) -> bool:
    """Whether ``part`` of this cell goes to the canary: a uniform draw from a hash of the
    line seed, the part and the cell, below ``share``."""
    draw = zlib.crc32(f"canary:{line_seed}:{cell_id}:{part}".encode()) / 2**32
    return draw < share


def _die_with_parent() -> None:
    """In the certify process: be killed when the line's process dies (Linux
    ``PR_SET_PDEATHSIG``), so a ``kill -9`` of the line leaves no certifier behind; ``--resume``
    certifies again."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


class Canary:
    """One cell's canary: its certification, the champion and canary policies, the test."""

    def __init__(
        self, entry: CanaryEntry, cell_id: str, line_seed: int, out_dir: Path, champion: Any
    ) -> None:
        self.entry, self.cell_id, self.line_seed = entry, cell_id, line_seed
        self.root = out_dir / "learning" / cell_id
        self.registry_path = out_dir / "registry" / f"{cell_id}.json"
        self.champion, self.challenger, self.canary = champion, None, None
        self.test: CanaryTest | None = None
        self.done = False  # the offered challenger was decided on (or refused)
        self.process: subprocess.Popen[bytes] | None = None
        self.history: list[dict[str, Any]] = []

    # --------------------------------------------------------------- the policy of a part
    def policy_for(self, part: int) -> tuple[Any, str]:
        """The policy that makes ``part`` and its side (``champion`` or ``canary``)."""
        if self.canary is not None and canary_side(
            self.line_seed, part, self.cell_id, self.entry.share
        ):
            return self.canary, "canary"
        return self.champion, "champion"

    # ------------------------------------------------------------------- replay and steps
    def replay(self, rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
        """Rebuild the state the recorded chain ends in: the policies, the test and the
        registry's history."""
        self._alias_change(0, "deployment")
        for event in events:
            kind, part, data = event["type"], event["part"], event["data"]
            if kind == "certificate":
                self.done = data["verdict"] != "PASSED"
                if self.done:
                    self._alias_change(part, "certificate")
            elif kind == "canary":
                self._start(part)
            elif kind in ("promotion", "rollback"):
                self._end(kind, part)
        if self.canary is not None:
            start = self.history[-1]["part"]
            for row in rows[start:]:
                side = "canary" if row["bundle_sha256"] == self.canary.onnx_sha256 else "champion"
                self.test.add(side, row["success"], row["energy_j"])  # type: ignore[union-attr]

    def step(self, part: int, emit: Emit) -> None:
        """Before ``part``: start the certification at ``at_part``, and take its outcome at
        ``at_part + certify_parts`` (waiting for it there if it is not done): the parts a
        canary makes never depend on how fast the certifier ran."""
        if self.done or self.canary is not None or part < self.entry.at_part:
            return
        if self.process is None:
            self._certify()
        if part >= self.entry.at_part + self.entry.certify_parts:
            self.process.wait()  # type: ignore[union-attr]
            self._collect(part, emit)

    def record(self, part: int, side: str, row: dict[str, Any], emit: Emit) -> None:
        """After ``part`` (made on ``side``): update the test and act on its decision."""
        if self.canary is None or self.test is None:
            return
        self.test.add(side, row["success"], row["energy_j"])
        decision, reason = self.test.decision()
        if decision is None:
            return
        kind = "promotion" if decision == "promote" else "rollback"
        emit(kind, part, bundle_sha256=self.canary.onnx_sha256, reason=reason,
             statistics=self.test.statistics())  # fmt: skip
        self._end(kind, part)

    def finish(self) -> None:
        """The line stops: a certification still running is stopped (``--resume`` starts it
        again), and the registry is written."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._save()

    # ---------------------------------------------------------------- certification
    def _certify(self) -> None:
        from robocell.eval.keys import generate_keypair
        from robocell.eval.seeds import commitment, new_master_seed, write_master_seed
        from robocell.util import canonical_json

        attempt = len(list(self.root.glob("attempt-*")))
        folder = self.root / f"attempt-{attempt}"
        folder.mkdir(parents=True)
        keys = self.root.parent / "certifier"
        if not (keys / "certifier.key").exists():
            generate_keypair(keys)
        seed = new_master_seed()
        write_master_seed(folder / "master.seed", seed)
        spec_path = folder / "twin-spec.json"
        spec_path.write_bytes(canonical_json(self._twin_spec()))
        command = [
            sys.executable, "-m", "robocell", "certify", str(self.entry.bundle),
            "--benchmark", str(spec_path), "--master-seed-file", str(folder / "master.seed"),
            "--commitment", commitment(seed), "--key", str(keys / "certifier.key"),
            "-o", str(folder / "certificate"), "--no-progress", "--stills", "0",
        ]  # fmt: skip
        log = open(folder / "certify.log", "wb")  # noqa: SIM115 - the process writes it
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
        log.close()
        self.attempt = folder

    def _twin_spec(self) -> dict[str, Any]:
        from robocell.eval.spec import load_spec, spec_data

        data = spec_data(load_spec(self.entry.benchmark))
        data["env_kwargs"] = {**data["env_kwargs"], **self.entry.twin}
        return data

    def _collect(self, part: int, emit: Emit) -> None:
        from robocell.agents.bundle import load_bundle
        from robocell.eval.verify import verify_certificate

        cert = self.attempt / "certificate" / "certificate.json"
        pub = self.root.parent / "certifier" / "certifier.pub"
        self.process = None
        if not cert.is_file():
            log = (self.attempt / "certify.log").read_text(errors="replace").strip()
            last = log.splitlines()[-1] if log else "no output"
            emit("certificate", part, bundle_sha256=None, verdict="ERROR", reason=last,
                 certificate=str(cert))  # fmt: skip
            self.done = True
            self._alias_change(part, "certificate")
            return
        verified = verify_certificate(cert, pub, self.entry.bundle)
        challenger = load_bundle(self.entry.bundle)
        emit("certificate", part, bundle_sha256=challenger.onnx_sha256, verdict=verified.verdict,
             certificate=str(cert), certificate_sha256=verified.certificate_sha256,
             seed_commitment=verified.commitment, spec_digest=verified.spec_digest,
             twin=dict(self.entry.twin))  # fmt: skip
        if verified.verdict != "PASSED":
            self.done = True
            self._alias_change(part, "certificate")
            return
        emit("canary", part, bundle_sha256=challenger.onnx_sha256, share=self.entry.share)
        self._start(part)

    # --------------------------------------------------------------------- aliases
    def _start(self, part: int) -> None:
        from robocell.agents.bundle import load_bundle

        challenger = load_bundle(self.entry.bundle)
        if challenger.env_id != self.champion.env_id:
            raise RobocellError(
                f"canary {self.entry.bundle} is for {challenger.env_id}, the cell runs "
                f"{self.champion.env_id}"
            )
        self.canary = challenger
        self.test = CanaryTest(self.entry.alpha, self.entry.margin, self.entry.max_parts)
        self._alias_change(part, "canary")

    def _end(self, kind: str, part: int) -> None:
        if kind == "promotion" and self.canary is not None:
            self.champion = self.canary
        self.canary, self.test, self.done = None, None, True
        self._alias_change(part + 1, kind)

    def _alias_change(self, part: int, event: str) -> None:
        canary = self.canary.onnx_sha256 if self.canary is not None else None
        self.history.append({"part": part, "event": event,
                             "champion": self.champion.onnx_sha256, "canary": canary})  # fmt: skip
        self._save()

    def _save(self) -> None:
        last = self.history[-1]
        atomic_write_json(self.registry_path, {
            "format": "robocell-line-registry/1",
            "cell": self.cell_id,
            "aliases": {"champion": last["champion"], "canary": last["canary"]},
            "history": self.history,
        })  # fmt: skip
