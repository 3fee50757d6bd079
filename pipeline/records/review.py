"""The clerk's side of identification: the review queue, assignment and reassignment.

Every change moves archive, sidecar history and index together, is audited, and
is kept in corrections.jsonl so that extraction and classification can learn
from what clerks fixed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

from indexers.base import Index
from pipeline.archive.audit import AuditLog
from pipeline.archive.store import (
    find_sidecar,
    iter_sidecars,
    move_document,
    record_from_sidecar,
)
from pipeline.core.clock import now_utc
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError


class ReviewError(MedarchiveError):
    pass


def waiting(config: Config) -> Iterator[dict]:
    """Documents in the review queue, oldest first."""
    queue = [s for s in iter_sidecars(config) if s["status"] == "review"]
    yield from sorted(queue, key=lambda s: s.get("history", [{}])[0].get("at", ""))


def _check_target(config: Config, mrn: str, doc_type: str | None) -> None:
    if not re.fullmatch(config.extraction.mrn_pattern, mrn):
        raise ReviewError(f"{mrn!r} does not look like an MRN (extraction.mrn_pattern is {config.extraction.mrn_pattern!r})")
    if doc_type is not None and doc_type not in config.classification.types and doc_type != "unclassified":
        raise ReviewError(f"unknown document type {doc_type!r}; use one of {', '.join(sorted(config.classification.types))}")


def _record_correction(config: Config, before: dict, after: dict, user: str, action: str) -> None:
    entry = {
        "at": now_utc(), "by": user, "action": action, "doc_id": after["doc_id"],
        "from": {"mrn": before.get("mrn"), "doc_type": before["doc_type"], "status": before["status"]},
        "to": {"mrn": after["mrn"], "doc_type": after["doc_type"]},
        "review_reason": before.get("review_reason"), "type_cues": before.get("type_cues", []),
        "mrn_candidates": [c.get("value") for c in before.get("identifiers", {}).get("mrn_candidates", [])],
    }
    fd = os.open(config.root / "corrections.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _move(config: Config, index: Index, audit: AuditLog, sidecar: dict, *, mrn: str, doc_type: str | None, user: str, action: str, reason: str | None) -> dict:
    _check_target(config, mrn, doc_type)
    new_type = doc_type or sidecar["doc_type"]
    event = {"by": user, "action": action, "reason": reason,
             "from": {"mrn": sidecar.get("mrn"), "doc_type": sidecar["doc_type"], "status": sidecar["status"]},
             "to": {"mrn": mrn, "doc_type": new_type}}
    audit.record(action, user=user, doc_ids=[sidecar["doc_id"]], mrns=[sidecar.get("mrn"), mrn], reason=reason,
                 details={"from": event["from"], "to": event["to"]})
    moved = move_document(config, sidecar, mrn=mrn, doc_type=new_type, event=event)
    index.add([record_from_sidecar(moved)])
    _record_correction(config, sidecar, moved, user, action)
    return moved


def assign(config: Config, index: Index, audit: AuditLog, doc_id: str, *, mrn: str, doc_type: str | None, user: str) -> dict:
    """File a document waiting in review under ``mrn``."""
    sidecar = find_sidecar(config, doc_id, index)
    if sidecar["status"] != "review":
        raise ReviewError(f"{doc_id} is not in the review queue (it is filed under MRN {sidecar.get('mrn')}); use reassign")
    return _move(config, index, audit, sidecar, mrn=mrn, doc_type=doc_type, user=user, action="review.assign", reason=None)


def reassign(config: Config, index: Index, audit: AuditLog, doc_id: str, *, mrn: str, doc_type: str | None, user: str, reason: str) -> dict:
    """Move a filed document to the right patient (or type)."""
    sidecar = find_sidecar(config, doc_id, index)
    if sidecar["status"] != "filed":
        raise ReviewError(f"{doc_id} is waiting in review; use review assign")
    if not reason.strip():
        raise ReviewError("a reassignment needs a reason (--reason)")
    if mrn == sidecar.get("mrn") and (doc_type or sidecar["doc_type"]) == sidecar["doc_type"]:
        raise ReviewError(f"{doc_id} is already filed under MRN {mrn} as {sidecar['doc_type']}")
    return _move(config, index, audit, sidecar, mrn=mrn, doc_type=doc_type, user=user, action="reassign", reason=reason)
