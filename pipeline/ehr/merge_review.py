"""A clerk's decisions on merges: confirm or reject one the feed held, undo one by hand.

Shared by `medarchive patients merges|unmerge` and the web admin page. Each decision is
recorded in the patient index and audited in one step; the documents then move through
the merge journal (pipeline/ehr/merge.py), carried out by the running listener or by
``carry_out`` here.
"""

from __future__ import annotations

from pipeline.archive.audit import AuditLog
from pipeline.archive.index import open_index
from pipeline.core.config import Config
from pipeline.ehr.merge import resume_merges
from pipeline.identify.patients import Merge, PatientIndex, PatientIndexError, Review, index_path


def confirm_held(config: Config, patients: PatientIndex, review_id: int, *, user: str) -> Merge:
    """Apply a held merge or unmerge: its journal entry is opened; the documents move next."""
    review = patients.review(review_id)
    merge = patients.confirm(review_id, user=user)
    AuditLog.for_config(config).record(
        f"patient.{review.kind}",
        user=user,
        mrns=[review.prior, review.survivor],
        outcome="confirmed",
        details={"review": review_id, "merge": merge.id, "control_id": review.control_id},
    )
    return merge


def reject_held(config: Config, patients: PatientIndex, review_id: int, *, user: str, reason: str) -> Review:
    """Refuse a held merge or unmerge: nothing changes, and the reason is kept."""
    review = patients.reject(review_id, user=user, reason=reason)
    AuditLog.for_config(config).record(
        f"patient.{review.kind}",
        user=user,
        mrns=[review.prior, review.survivor],
        outcome="rejected",
        reason=review.decision_reason,
        details={"review": review_id, "control_id": review.control_id},
    )
    return review


def unmerge_by_hand(config: Config, patients: PatientIndex, prior: str, *, user: str, reason: str) -> Merge:
    """Undo the merge that retired ``prior``: it is a patient of its own again and its documents go back."""
    if not reason.strip():
        raise PatientIndexError("say why the merge is undone (--reason)")
    applied = [m for m in patients.merges() if m.kind == "merge" and m.prior == prior and m.undone_by is None]
    if not applied:
        raise PatientIndexError(f"MRN {prior} is not merged into another MRN; nothing to undo")
    merge = applied[-1]
    unmerge = patients.record_unmerge(merge, requested_by=user, control_id=None, reason=reason.strip())
    AuditLog.for_config(config).record(
        "patient.unmerge",
        user=user,
        mrns=[merge.prior, merge.survivor],
        outcome="accepted",
        reason=reason.strip(),
        details={"merge": unmerge.id, "undoes": merge.id},
    )
    return unmerge


def carry_out(config: Config, patients: PatientIndex) -> int:
    """Move the documents of every open journal entry now; 0 when a running listener is doing it."""
    index = open_index(config)
    try:
        return resume_merges(config, patients, index, AuditLog.for_config(config))
    finally:
        index.close()


def hl7_status(config: Config) -> dict[str, object]:
    """What `medarchive status` says about the registration feed: where, how carried, what waits."""
    settings = config.hl7_listener
    held = 0
    if index_path(config).exists():
        patients = PatientIndex.for_config(config)
        try:
            held = len(patients.reviews("pending"))
        finally:
            patients.close()
    return {
        "enabled": settings.enabled,
        "listen": f"{settings.host}:{settings.port}",
        "transport": settings.transport(),
        "allowed_sources": settings.allowed_sources or "any",
        "merge_policy": settings.merge_policy,
        "held_merges": held,
    }
