"""An A40 carried out in the archive: every document of the retired MRN re-filed under the survivor.

The merge itself (alias, retired patient, journal entry) is recorded in one SQLite
transaction before the sender is answered; the documents then move one at a time,
each in its own step: journal row → move (new copy and sidecar durable, old ones
removed) → index → audit → journal row done. A crash at any point is resumed by
``run_merge`` on the same journal entry:

* a document still in the prior folder (moved or not, even with a copy already in
  the survivor's folder) is moved again; move_document replaces the half-made copy,
  so its history gets the merge event once;
* a document already moved whose row is not done gets its index record and audit
  entry (the audit entry may then be written twice, never not at all).

New documents read with the prior MRN are filed under the survivor from the moment the
merge is recorded (patients.resolve_mrn); the prior folder is swept again at the end
for any that were being written at that moment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from indexers.base import Index
from pipeline.archive.audit import AuditLog
from pipeline.archive.sidecar import HistoryEvent, Placement, read_sidecar
from pipeline.archive.store import move_document, record_from_sidecar
from pipeline.core.clock import now_utc
from pipeline.core.config import Config
from pipeline.core.errors import ArchiveError
from pipeline.identify.patients import Merge, PatientIndex

log = logging.getLogger("medarchive.hl7")


def _sidecars_of(config: Config, mrn: str) -> list[Path]:
    folder = config.archive_dir / mrn
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")) if folder.is_dir() else []


def _begin(patients: PatientIndex, merge: Merge, doc_id: str) -> None:
    with patients.transaction() as db:
        db.execute(
            "INSERT INTO merge_moves (merge_id, doc_id, state) VALUES (?, ?, 'moving') ON CONFLICT DO NOTHING",
            (merge.id, doc_id),
        )


def _done(patients: PatientIndex, merge: Merge, doc_id: str) -> None:
    with patients.transaction() as db:
        db.execute(
            "UPDATE merge_moves SET state = 'done' WHERE merge_id = ? AND doc_id = ? AND state = 'moving'",
            (merge.id, doc_id),
        )
        changed = db.rowcount()
        db.execute("UPDATE merges SET moved = moved + ? WHERE id = ?", (changed, merge.id))


def _event(merge: Merge, doc_type: str) -> HistoryEvent:
    message = f"ADT^A40 message {merge.control_id}" if merge.control_id else "ADT^A40"
    return HistoryEvent(
        now_utc(),
        merge.requested_by,
        "merged",
        reason=f"MRN {merge.prior} was merged into MRN {merge.survivor} by the registration system ({message})",
        moved_from=Placement(merge.prior, doc_type, "filed"),
        moved_to=Placement(merge.survivor, doc_type),
    )


def _indexed(index: Index, audit: AuditLog, merge: Merge, sidecar) -> None:
    index.add([record_from_sidecar(sidecar)])
    audit.record(
        "patient.merge.move",
        user=merge.requested_by,
        doc_ids=[sidecar.doc_id],
        mrns=[merge.prior, merge.survivor],
        details={"merge": merge.id, "control_id": merge.control_id, "path": sidecar.path},
    )


def _move_one(config: Config, patients: PatientIndex, index: Index, audit: AuditLog, merge: Merge, path: Path) -> None:
    try:
        sidecar = read_sidecar(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArchiveError(f"merge {merge.id}: unreadable sidecar {path.relative_to(config.root)}: {exc}") from None
    _begin(patients, merge, sidecar.doc_id)
    moved = move_document(
        config, sidecar, mrn=merge.survivor, doc_type=sidecar.doc_type, event=_event(merge, sidecar.doc_type)
    )
    _indexed(index, audit, merge, moved)
    _done(patients, merge, sidecar.doc_id)


def _finish_interrupted(config: Config, patients: PatientIndex, index: Index, audit: AuditLog, merge: Merge) -> None:
    """Documents a crash left moved but not yet indexed and audited."""
    rows = patients.query("SELECT doc_id FROM merge_moves WHERE merge_id = ? AND state = 'moving'", (merge.id,))
    for doc_id in (row["doc_id"] for row in rows):
        found = sorted((config.archive_dir / merge.survivor).glob(f"*_{doc_id}.json"))
        if found:
            _indexed(index, audit, merge, read_sidecar(found[0]))
        else:
            log.warning(
                "merge %d: document %s is in neither MRN's folder any more; left to `medarchive verify`",
                merge.id,
                doc_id,
            )
        _done(patients, merge, doc_id)


def run_merge(
    config: Config,
    patients: PatientIndex,
    index: Index,
    audit: AuditLog,
    merge: Merge,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    after_move: Callable[[int], None] | None = None,
) -> bool:
    """Carry out (or resume) one recorded merge; False when stopped before the end."""
    moved = 0
    while batch := _sidecars_of(config, merge.prior):
        for path in batch:
            if should_stop():
                log.info(
                    "merge %d of MRN %s into %s paused after %d document(s); it resumes at the next start",
                    merge.id,
                    merge.prior,
                    merge.survivor,
                    moved,
                )
                return False
            _move_one(config, patients, index, audit, merge, path)
            moved += 1
            if after_move is not None:
                after_move(moved)
    _finish_interrupted(config, patients, index, audit, merge)
    with patients.transaction() as db:
        db.execute("UPDATE merges SET state = 'done', finished_at = ? WHERE id = ?", (now_utc(), merge.id))
    total = patients.merge(merge.id).moved
    audit.record(
        "patient.merge",
        user=merge.requested_by,
        mrns=[merge.prior, merge.survivor],
        outcome="done",
        details={"merge": merge.id, "control_id": merge.control_id, "documents": total},
    )
    _remove_empty(config.archive_dir / merge.prior)
    log.info("merge %d of MRN %s into %s done: %d document(s) re-filed", merge.id, merge.prior, merge.survivor, total)
    return True


def resume_merges(
    config: Config,
    patients: PatientIndex,
    index: Index,
    audit: AuditLog,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    after_move: Callable[[int], None] | None = None,
) -> int:
    """Carry out every merge not yet done, oldest first; return how many finished."""
    finished = 0
    for merge in patients.open_merges():
        if not run_merge(config, patients, index, audit, merge, should_stop=should_stop, after_move=after_move):
            break
        finished += 1
    return finished


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (a file being written), or already gone
        pass
