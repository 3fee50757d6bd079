"""When a box may be closed or destroyed: pure functions over what the archive and the box store say.

Every refusal is a sentence a records clerk can act on, naming the documents in the way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

State = Literal["open", "closed", "shipped", "recalled", "destroyed"]
STATES: tuple[State, ...] = ("open", "closed", "shipped", "recalled", "destroyed")


@dataclass(frozen=True)
class BoxedDocument:
    """A document whose paper is in the box, as the rules see it."""

    doc_id: str
    status: str  # "filed" or "review"
    mrn: str | None
    pages: int
    scanned: str  # date of the first filing or queueing, ISO


@dataclass(frozen=True)
class FailedInput:
    file: str
    reason: str


def close_refusal(state: State, documents: Sequence[BoxedDocument], failed: Sequence[FailedInput]) -> str | None:
    """Why the box cannot be closed (None: it can). Nothing in review or failed may be sealed away."""
    if state != "open":
        return f"the box is {state}, not open"
    if not documents and not failed:
        return "the box holds no scanned document"
    waiting = [d.doc_id for d in documents if d.status != "filed"]
    problems = []
    if waiting:
        problems.append(f"{len(waiting)} document(s) still in review: {', '.join(waiting[:10])}")
    if failed:
        problems.append(f"{len(failed)} input(s) set aside as failed: {', '.join(f.file for f in failed[:10])}")
    if problems:
        return "; ".join(problems) + "; file or resolve them first (the paper may be needed again)"
    return None


def last_scan(documents: Sequence[BoxedDocument]) -> date | None:
    return max((date.fromisoformat(d.scanned[:10]) for d in documents), default=None)


def destroy_refusal(
    state: State, documents: Sequence[BoxedDocument], legal_holds: Sequence[str], keep_days: int, today: date
) -> str | None:
    """Why the box's paper may not be destroyed yet (None: it may)."""
    if state in ("open", "recalled"):
        return f"the box is {state}; close it (and get it back from storage) before destroying it"
    if state == "destroyed":
        return "the box was destroyed already"
    held = sorted({d.mrn for d in documents if d.mrn in set(legal_holds)})
    if held:
        return f"a legal hold covers MRN {', '.join(held)} in this box (retention.legal_holds)"
    scanned = last_scan(documents)
    if scanned is not None and today < scanned + timedelta(days=keep_days):
        return (
            f"paper is kept {keep_days} days after the last scan ({scanned}); "
            f"it may be destroyed from {scanned + timedelta(days=keep_days)}"
        )
    not_filed = [d.doc_id for d in documents if d.status != "filed"]
    if not_filed:
        return f"{len(not_filed)} document(s) are back in review: {', '.join(not_filed[:10])}"
    return None
