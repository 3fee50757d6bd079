"""What a clinic wants in a chart, applied to what the archive holds: a pure function.

The clinic's rules (config ``chart_prep.packets``) are read in order. Each picks the
patient's filed documents of its type (the newest ``count``, or all; only those dated
within ``within_days`` before the visit when it says so). A document chosen by an
earlier rule is not repeated. A rule that finds nothing is named as missing, in words
a clerk can act on ("no discharge summary on file").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from pipeline.core.config import ChartPrepSettings, PacketRule


@dataclass(frozen=True)
class OnFile:
    """A filed document of the patient, as the rules see it."""

    doc_id: str
    doc_type: str
    doc_date: str | None  # ISO date, or None when undated
    pages: int
    path: str  # relative to the data root
    sha256: str


@dataclass(frozen=True)
class Pick:
    rule: PacketRule
    documents: tuple[OnFile, ...]

    @property
    def missing(self) -> str | None:
        if self.documents:
            return None
        what = self.rule.type.replace("_", " ")
        if self.rule.within_days:
            return f"no {what} in the {self.rule.within_days} days before the visit"
        return f"no {what} on file"


def rules_for(settings: ChartPrepSettings, clinic: str) -> list[PacketRule]:
    """The clinic's rules (its name matched without regard to case or spaces), else the default."""
    wanted = _key(clinic)
    for name, rules in settings.packets.items():
        if name != "default" and _key(name) == wanted:
            return rules
    return settings.packets["default"]


def _key(name: str) -> str:
    return "".join(name.lower().split())


def pick(rules: Sequence[PacketRule], on_file: Iterable[OnFile], visit: date) -> list[Pick]:
    """Each rule's documents, newest first, in the order of the rules."""
    documents = [d for d in on_file if d.doc_date is None or d.doc_date <= visit.isoformat()]
    # Newest first; undated last, and among equals by id so the packet is the same every time.
    documents.sort(key=lambda d: (d.doc_date is not None, d.doc_date or "", d.doc_id), reverse=True)
    taken: set[str] = set()
    picks = []
    for rule in rules:
        chosen = [
            d for d in documents if d.doc_type == rule.type and d.doc_id not in taken and _in_window(rule, d, visit)
        ]
        if rule.select == "latest":
            chosen = chosen[: rule.count]
        taken.update(d.doc_id for d in chosen)
        picks.append(Pick(rule, tuple(chosen)))
    return picks


def _in_window(rule: PacketRule, doc: OnFile, visit: date) -> bool:
    if rule.within_days is None:
        return True
    if doc.doc_date is None:
        return False
    return doc.doc_date >= (visit - timedelta(days=rule.within_days)).isoformat()
