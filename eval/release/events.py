"""Ledger entries: an :class:`Event` is a :class:`Draft` placed in the chain and sealed by hash.

Each event carries ``prev_hash``, the hash of the entry before it, and ``row_hash``, the
sha256 of its own canonical JSON (every field but ``row_hash``), so editing, deleting or
reordering any entry breaks the chain at that point (:mod:`robocell.eval.release.chain`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from robocell.util import canonical_json, sha256_bytes

EventKind = Literal["CERTIFIED", "RELEASED", "REJECTED", "DISPUTED"]
EVENT_KINDS: tuple[str, ...] = ("CERTIFIED", "RELEASED", "REJECTED", "DISPUTED")
#: ``prev_hash`` of the first entry.
GENESIS_HASH = "0" * 64
#: What a store keeps of an event, column by column (:meth:`Event.to_record`).
RECORD_COLUMNS = (
    "seq",
    "kind",
    "contract_id",
    "milestone_id",
    "certificate_sha256",
    "recorded_at",
    "body",
    "prev_hash",
    "row_hash",
)


@dataclass(frozen=True)
class Draft:
    """An event before it has a place in the chain."""

    kind: EventKind
    contract_id: str
    milestone_id: str
    certificate_sha256: str | None
    recorded_at: str
    """ISO 8601 UTC, e.g. ``2025-01-10T09:00:00Z`` (see :func:`~.clock.format_time`)."""
    body: dict[str, Any] = field(default_factory=dict)
    """Details; amounts are decimal strings, never floats (floats are refused)."""


@dataclass(frozen=True)
class Event(Draft):
    """An entry of the ledger: a draft plus its position and its links in the chain."""

    seq: int = 0
    prev_hash: str = GENESIS_HASH
    row_hash: str = ""

    def chained_fields(self) -> dict[str, Any]:
        """Everything the row hash covers: all fields but ``row_hash`` itself."""
        return {
            "seq": self.seq,
            "kind": self.kind,
            "contract_id": self.contract_id,
            "milestone_id": self.milestone_id,
            "certificate_sha256": self.certificate_sha256,
            "recorded_at": self.recorded_at,
            "body": self.body,
            "prev_hash": self.prev_hash,
        }

    def computed_hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`chained_fields`."""
        return sha256_bytes(canonical_json(self.chained_fields()))

    def to_record(self) -> dict[str, Any]:
        """Column values for a store: the body as canonical JSON text."""
        record = self.chained_fields()
        record["body"] = canonical_json(self.body).decode()
        record["row_hash"] = self.row_hash
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Event:
        """Rebuild an event from a store's column values; ValueError when malformed."""
        try:
            body = json.loads(record["body"])
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"body is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise ValueError("body is not a JSON object")
        return cls(
            kind=record["kind"],
            contract_id=record["contract_id"],
            milestone_id=record["milestone_id"],
            certificate_sha256=record["certificate_sha256"],
            recorded_at=record["recorded_at"],
            body=body,
            seq=record["seq"],
            prev_hash=record["prev_hash"],
            row_hash=record["row_hash"],
        )


def chain(previous: Event | None, draft: Draft) -> Event:
    """Place ``draft`` after ``previous`` (None: first entry) and seal it with its hash."""
    if draft.kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {draft.kind!r}")
    _refuse_floats(draft.body, "body")
    unsealed = Event(
        **{name: getattr(draft, name) for name in Draft.__dataclass_fields__},
        seq=previous.seq + 1 if previous else 1,
        prev_hash=previous.row_hash if previous else GENESIS_HASH,
    )
    return replace(unsealed, row_hash=unsealed.computed_hash())


def _refuse_floats(value: Any, path: str) -> None:
    # Money must never pass through binary floating point on its way into the ledger.
    if isinstance(value, float):
        raise TypeError(f"{path} is a float; store amounts and figures as decimal strings")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_floats(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse_floats(item, f"{path}[{index}]")
