"""Line telemetry: what each part of a production line did, signed and hash-chained.

A **chain** is one cell on one line, ``(line, cell)``. Its writer appends **batches**: rows
(one per part, parts numbered from 0 without gaps or repeats) and events (deployment,
drift_alarm, calibration, certificate, canary, promotion, rollback, resume), each batch in
one transaction, linked to the one before by hash and signed with the cell's Ed25519 key in a
DSSE envelope. The store is SQLite (a path or ``sqlite:///PATH``) or PostgreSQL
(``postgresql://...``), with the same tables, rules and tests on both::

    store = open_telemetry(url, create=True)
    writer = store.open_chain(line="line-a", cell="vision-1", private_key=key)
    writer.append(rows, events)   # writer.next_part: the part the next row must carry
    reports = verify_telemetry(store)   # one ChainReport per chain: .ok, .problem

The rules of a batch and of walking a chain live in :mod:`.chain`; the queries and the
writer in :mod:`.store`; each backend (:mod:`.sqlite`, :mod:`.postgres`) only connects,
creates the schema and runs transactions. ``robocell telemetry verify|show|export``
(:mod:`.cli`) read a store from the command line.
"""

from robocell.line.telemetry.chain import EVENT_TYPES, PAYLOAD_TYPE, ChainReport
from robocell.line.telemetry.store import (
    ChainWriter,
    TelemetryBroken,
    TelemetryStore,
    open_telemetry,
    verify_telemetry,
)

__all__ = [
    "EVENT_TYPES",
    "PAYLOAD_TYPE",
    "ChainReport",
    "ChainWriter",
    "TelemetryBroken",
    "TelemetryStore",
    "open_telemetry",
    "verify_telemetry",
]
