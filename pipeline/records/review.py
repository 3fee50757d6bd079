"""The clerk's side of identification: the review queue, assignment and reassignment.

Every change moves archive, sidecar history and index together, is audited, and
is kept in corrections.jsonl so that extraction and classification can learn
from what clerks fixed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

from indexers.base import Index
from pipeline.archive.audit import AuditLog
from pipeline.archive.derived import remove_derived
from pipeline.archive.sidecar import HistoryEvent, Placement, Sidecar
from pipeline.archive.store import (
    find_sidecar,
    iter_sidecars,
    move_document,
    record_from_sidecar,
)
from pipeline.core.clock import now_utc
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.ehr.enqueue import enqueue_filed


class ReviewError(MedarchiveError):
    pass


def waiting(config: Config) -> Iterator[Sidecar]:
    """Documents in the review queue, oldest first."""
    queue = [s for s in iter_sidecars(config) if s.status == "review"]
    yield from sorted(queue, key=lambda s: s.since or "")


def _check_target(config: Config, mrn: str, doc_type: str | None) -> None:
    if not config.extraction.is_mrn(mrn):
        raise ReviewError(
            f"{mrn!r} does not look like an MRN (extraction.mrn_pattern is {config.extraction.mrn_pattern!r})"
        )
    if doc_type is not None and doc_type not in config.classification.types and doc_type != "unclassified":
        raise ReviewError(
            f"unknown document type {doc_type!r}; use one of {', '.join(sorted(config.classification.types))}"
        )


def _record_correction(config: Config, before: Sidecar, after: Sidecar, user: str, action: str) -> None:
    entry = {
        "at": now_utc(),
        "by": user,
        "action": action,
        "doc_id": after.doc_id,
        "from": _placement(before).to_json(),
        "to": Placement(after.mrn, after.doc_type).to_json(),
        "review_reason": before.review_reason,
        "type_cues": list(before.type_cues),
        "mrn_candidates": [c.value for c in before.identifiers.mrn_candidates],
    }
    fd = os.open(config.root / "corrections.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _placement(sidecar: Sidecar) -> Placement:
    return Placement(sidecar.mrn, sidecar.doc_type, sidecar.status)


def _move(
    config: Config,
    index: Index,
    audit: AuditLog,
    sidecar: Sidecar,
    *,
    mrn: str,
    doc_type: str | None,
    user: str,
    action: str,
    reason: str | None,
) -> Sidecar:
    new_type = doc_type or sidecar.doc_type
    before, after = _placement(sidecar), Placement(mrn, new_type)
    event = HistoryEvent(now_utc(), user, action, reason, moved_from=before, moved_to=after)
    details = {"from": before.to_json(), "to": after.to_json()}
    try:
        _check_target(config, mrn, doc_type)
        moved = move_document(config, sidecar, mrn=mrn, doc_type=new_type, event=event)
    except MedarchiveError as exc:
        # Only what happened: a refusal, never the move that did not take place.
        audit.record(
            action,
            user=user,
            doc_ids=[sidecar.doc_id],
            mrns=[sidecar.mrn],
            reason=reason,
            outcome="refused",
            details={**details, "error": str(exc)},
        )
        raise
    audit.record(action, user=user, doc_ids=[sidecar.doc_id], mrns=[sidecar.mrn, mrn], reason=reason, details=details)
    # Its page images belong to the patient it left; they are made again on the next view.
    remove_derived(config, [sidecar.sha256])
    index.add([record_from_sidecar(moved)])
    # The EHR follows: a first filing is sent; a document already sent is cancelled there and sent anew.
    enqueue_filed(config, [moved])
    _record_correction(config, sidecar, moved, user, action)
    return moved


def assign(
    config: Config, index: Index, audit: AuditLog, doc_id: str, *, mrn: str, doc_type: str | None, user: str
) -> Sidecar:
    """File a document waiting in review under ``mrn``."""
    sidecar = find_sidecar(config, doc_id, index)
    if sidecar.status != "review":
        raise ReviewError(f"{doc_id} is not in the review queue (it is filed under MRN {sidecar.mrn}); use reassign")
    return _move(
        config, index, audit, sidecar, mrn=mrn, doc_type=doc_type, user=user, action="review.assign", reason=None
    )


def reassign(
    config: Config,
    index: Index,
    audit: AuditLog,
    doc_id: str,
    *,
    mrn: str,
    doc_type: str | None,
    user: str,
    reason: str,
) -> Sidecar:
    """Move a filed document to the right patient (or type)."""
    sidecar = find_sidecar(config, doc_id, index)
    if sidecar.status != "filed":
        raise ReviewError(f"{doc_id} is waiting in review; use review assign")
    if not reason.strip():
        raise ReviewError("a reassignment needs a reason (--reason)")
    if mrn == sidecar.mrn and (doc_type or sidecar.doc_type) == sidecar.doc_type:
        raise ReviewError(f"{doc_id} is already filed under MRN {mrn} as {sidecar.doc_type}")
    return _move(config, index, audit, sidecar, mrn=mrn, doc_type=doc_type, user=user, action="reassign", reason=reason)
