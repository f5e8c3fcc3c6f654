"""``robocell dispute``: a buyer stops a certified release inside its dispute window.

A DISPUTED entry names every certificate of the milestone still inside its window; a release
of any of them then stops with exit 4. A dispute cannot undo a release that already happened.
"""

from __future__ import annotations

from datetime import datetime

from robocell.errors import RobocellError
from robocell.eval.release.clock import event_time
from robocell.eval.release.events import Draft, Event
from robocell.eval.release.ledger import Ledger
from robocell.eval.release.release import released_entry


def dispute_milestone(
    ledger: Ledger, contract_id: str, milestone_id: str, reason: str, now: datetime | None = None
) -> Event:
    """Record DISPUTED for every certificate of the milestone still inside its window.

    Refused (RobocellError) when the milestone is already released or no certificate of it is
    inside its dispute window: a dispute stops a release, it cannot undo one.
    """
    if not reason.strip():
        raise RobocellError("a dispute needs a --reason")

    def decide(
        history: list[Event], head: Event | None, _events: list[Event]
    ) -> tuple[list[Draft], None]:
        at = event_time(now, head)
        released = released_entry(history)
        if released is not None:
            raise RobocellError(
                f"{contract_id}/{milestone_id} was already released at {released.recorded_at}; "
                "a dispute can only stop a release inside the dispute window"
            )
        open_certs = [e.certificate_sha256 for e in _open_certifications(history, at)]
        if not open_certs:
            raise RobocellError(
                f"no certificate of {contract_id}/{milestone_id} is inside its dispute window "
                f"at {at}"
            )
        body = {"reason": reason.strip(), "certificates": open_certs}
        return [Draft("DISPUTED", contract_id, milestone_id, None, at, body)], None

    ledger.record(contract_id, milestone_id, decide)
    return ledger.history(contract_id, milestone_id)[-1]


def _open_certifications(history: list[Event], at: str) -> list[Event]:
    disputed = {c for e in history if e.kind == "DISPUTED" for c in e.body["certificates"]}
    return [
        e
        for e in history
        if e.kind == "CERTIFIED"
        and at < e.body["release_due"]
        and e.certificate_sha256 not in disputed
    ]
