"""The typed request for information, as stored and as shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pipeline.core.config import REQUESTER_KINDS

KINDS = REQUESTER_KINDS
CHANNELS = ("mail", "fax", "portal", "in_person", "email")
OPEN_STATUSES = ("received", "in_progress")
CLOSED_STATUSES = ("fulfilled", "denied", "withdrawn")
STATUSES = OPEN_STATUSES + CLOSED_STATUSES


@dataclass(frozen=True)
class Requester:
    name: str
    organisation: str = ""
    address: str = ""

    def label(self) -> str:
        return f"{self.name} ({self.organisation})" if self.organisation else self.name


@dataclass(frozen=True)
class Ask:
    """What the request asks for: everything, or types, a range of document dates, named documents."""

    everything: bool = False
    doc_types: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None
    doc_ids: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (self.everything or self.doc_types or self.date_from or self.date_to or self.doc_ids)

    def describe(self) -> str:
        if self.everything and not (self.doc_types or self.date_from or self.date_to or self.doc_ids):
            return "all records"
        parts = []
        if self.doc_types:
            parts.append("types " + ", ".join(self.doc_types))
        if self.date_from or self.date_to:
            parts.append(f"dated {self.date_from or 'any'} to {self.date_to or 'any'}")
        if self.doc_ids:
            parts.append(f"{len(self.doc_ids)} named document(s)")
        return "; ".join(parts)


@dataclass(frozen=True)
class Authorization:
    """The signed authorization linked to a request: a document of the patient's, its expiry,
    and the sensitive categories it names specifically."""

    doc_id: str
    expires: str
    covers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Extension:
    due: str
    reason: str
    told: str


@dataclass(frozen=True)
class Request:
    id: int
    mrn: str
    kind: str
    requester: Requester
    purpose: str
    ask: Ask
    channel: str
    received: str
    due: str
    rule: dict[str, Any]
    status: str
    created_at: str
    created_by: str
    extension: Extension | None = None
    authorization: Authorization | None = None
    fee_cents: int | None = None
    fee_note: str | None = None
    release_id: str | None = None
    released_docs: tuple[str, ...] = ()
    denial_reason: str | None = None
    letter: str | None = None
    closed_on: str | None = None

    @property
    def ref(self) -> str:
        return f"REQ-{self.id}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def due_on(self) -> date:
        return date.fromisoformat(self.due)

    def overdue(self, today: date) -> bool:
        return self.is_open and self.due_on() < today

    def days_left(self, today: date) -> int:
        return (self.due_on() - today).days

    def turnaround_days(self) -> int | None:
        if self.closed_on is None or self.status == "withdrawn":
            return None
        return (date.fromisoformat(self.closed_on) - date.fromisoformat(self.received)).days


@dataclass(frozen=True)
class HistoryEvent:
    at: str
    by: str
    action: str
    from_status: str | None
    to_status: str
    note: str | None = None


@dataclass(frozen=True)
class RequestView:
    """A request with its history, as `requests show` and the request page give it."""

    request: Request
    history: list[HistoryEvent] = field(default_factory=list)


def fee_text(cents: int | None) -> str:
    return "-" if cents is None else f"{cents // 100}.{cents % 100:02d}"
