"""The ledger's time: one format, and the rule for the decision time of a new entry.

A dispute window is measured on the ledger's clock, so the time of an entry must be the real
time. ``--now`` (``now=`` here) can only nudge it within :data:`MAX_CLOCK_SKEW_S` of the
system clock; a decision time further away in either direction would let a release skip the
window (a time ahead releases at once, a certification dated back opens a window that has
already closed). Tests and replays on a scratch ledger set ``ROBOCELL_TEST_CLOCK=1``
(:data:`TEST_CLOCK_ENV`) and may then name any time. In every mode the ledger's time only
moves forward, and an entry is never appended after one dated in the future.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from robocell.errors import RobocellError
from robocell.eval.release.events import Event

#: How far (s) a given decision time may lie from the system clock outside the test clock:
#: enough for hosts whose clocks drift apart by minutes, far less than any dispute window.
MAX_CLOCK_SKEW_S = 300
#: Set to ``1`` to allow any ``--now``: for tests and replays on a scratch ledger only.
TEST_CLOCK_ENV = "ROBOCELL_TEST_CLOCK"


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second: the ledger's one time format."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Read an ISO 8601 time; a time without a zone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RobocellError(f"not an ISO 8601 time: {text!r} (e.g. 2025-01-10T09:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def using_test_clock() -> bool:
    """True when ``ROBOCELL_TEST_CLOCK=1``: any decision time is accepted."""
    return os.environ.get(TEST_CLOCK_ENV, "") == "1"


def event_time(now: datetime | None, head: Event | None) -> str:
    """The time of a new entry: ``now`` (or the clock), never before the ledger's last entry.

    Raises RobocellError for a ``now`` off the system clock by more than the skew (unless the
    test clock is on), a ``now`` before the last entry, and a last entry dated in the future.
    """
    clock = datetime.now(timezone.utc)
    if now is not None and not using_test_clock():
        _check_skew(now, clock)
    if head is not None and not using_test_clock():
        _check_head_not_ahead(head, clock)
    if now is None:
        # The clock is read under the write lock; max() guards against a clock stepped back.
        stamp = format_time(clock)
        return max(stamp, head.recorded_at) if head else stamp
    stamp = format_time(now)
    if head and stamp < head.recorded_at:
        raise RobocellError(
            f"--now {stamp} is before the ledger's last entry ({head.recorded_at}); "
            "ledger time only moves forward"
        )
    return stamp


def _check_skew(now: datetime, clock: datetime) -> None:
    if abs((now - clock).total_seconds()) > MAX_CLOCK_SKEW_S:
        raise RobocellError(
            f"--now {format_time(now)} is more than {MAX_CLOCK_SKEW_S} s from the system clock "
            f"({format_time(clock)}): a decision time off the clock would move the dispute "
            f"window; set {TEST_CLOCK_ENV}=1 only for tests and replays on a scratch ledger"
        )


def _check_head_not_ahead(head: Event, clock: datetime) -> None:
    if parse_time(head.recorded_at) > clock + timedelta(seconds=MAX_CLOCK_SKEW_S):
        raise RobocellError(
            f"the ledger's last entry (entry {head.seq}) is dated {head.recorded_at}, in the "
            f"future of the system clock ({format_time(clock)}): the clock or the ledger is "
            "wrong; nothing was written"
        )
