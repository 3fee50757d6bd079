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

An unmerge (A37, or `medarchive patients unmerge`) is a journal entry of its own and
runs the same steps the other way: the documents the merge moved, and those filed
under the survivor meanwhile because they were read with the retired MRN, go back.

One process at a time carries out the journal (``merges.lock`` in the data root): the
listener's merge thread, or a clerk's `patients merges confirm` / `patients unmerge`.
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
from pipeline.core.locks import AlreadyRunning, DaemonLock
from pipeline.identify.patients import Merge, PatientIndex, retired_note

log = logging.getLogger("medarchive.hl7")


LOCK_NAME = "merges.lock"


def _source(merge: Merge) -> str:
    return merge.survivor if merge.kind == "unmerge" else merge.prior


def _target(merge: Merge) -> str:
    return merge.prior if merge.kind == "unmerge" else merge.survivor


def _sidecars_of(config: Config, mrn: str) -> list[Path]:
    folder = config.archive_dir / mrn
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")) if folder.is_dir() else []


def _to_move(config: Config, patients: PatientIndex, merge: Merge) -> list[Path]:
    """The sidecars this entry still has to move: all of the prior folder for a merge; for an
    unmerge, those the undone merge moved and those filed under the survivor by the retired MRN."""
    paths = _sidecars_of(config, _source(merge))
    if merge.kind == "merge":
        return paths
    moved = {r["doc_id"] for r in patients.query("SELECT doc_id FROM merge_moves WHERE merge_id = ?", (merge.undoes,))}
    done = {
        r["doc_id"]
        for r in patients.query("SELECT doc_id FROM merge_moves WHERE merge_id = ? AND state = 'done'", (merge.id,))
    }
    note = retired_note(merge.prior, merge.survivor)
    wanted = []
    for path in paths:
        doc_id = path.stem.rsplit("_", 1)[-1]
        if doc_id in done:
            continue
        if doc_id in moved or note in _read(config, merge, path).corrections:
            wanted.append(path)
    return wanted


def _read(config: Config, merge: Merge, path: Path):
    try:
        return read_sidecar(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArchiveError(f"merge {merge.id}: unreadable sidecar {path.relative_to(config.root)}: {exc}") from None


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
    if merge.kind == "unmerge":
        how = f"ADT^A37 message {merge.control_id}" if merge.control_id else (merge.reason or "by hand")
        reason = f"the merge of MRN {merge.prior} into MRN {merge.survivor} was undone ({how})"
    else:
        message = f"ADT^A40 message {merge.control_id}" if merge.control_id else "ADT^A40"
        reason = f"MRN {merge.prior} was merged into MRN {merge.survivor} by the registration system ({message})"
    return HistoryEvent(
        now_utc(),
        merge.requested_by,
        "unmerged" if merge.kind == "unmerge" else "merged",
        reason=reason,
        moved_from=Placement(_source(merge), doc_type, "filed"),
        moved_to=Placement(_target(merge), doc_type),
    )


def _indexed(index: Index, audit: AuditLog, merge: Merge, sidecar) -> None:
    index.add([record_from_sidecar(sidecar)])
    audit.record(
        f"patient.{merge.kind}.move",
        user=merge.requested_by,
        doc_ids=[sidecar.doc_id],
        mrns=[merge.prior, merge.survivor],
        details={"merge": merge.id, "control_id": merge.control_id, "path": sidecar.path},
    )


def _move_one(config: Config, patients: PatientIndex, index: Index, audit: AuditLog, merge: Merge, path: Path) -> None:
    sidecar = _read(config, merge, path)
    _begin(patients, merge, sidecar.doc_id)
    moved = move_document(
        config, sidecar, mrn=_target(merge), doc_type=sidecar.doc_type, event=_event(merge, sidecar.doc_type)
    )
    _indexed(index, audit, merge, moved)
    _done(patients, merge, sidecar.doc_id)


def _finish_interrupted(config: Config, patients: PatientIndex, index: Index, audit: AuditLog, merge: Merge) -> None:
    """Documents a crash left moved but not yet indexed and audited."""
    rows = patients.query("SELECT doc_id FROM merge_moves WHERE merge_id = ? AND state = 'moving'", (merge.id,))
    for doc_id in (row["doc_id"] for row in rows):
        found = sorted((config.archive_dir / _target(merge)).glob(f"*_{doc_id}.json"))
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
    """Carry out (or resume) one journal entry (merge or unmerge); False when stopped before the end."""
    moved = 0
    while batch := _to_move(config, patients, merge):
        for path in batch:
            if should_stop():
                log.info(
                    "%s %d of MRN %s into %s paused after %d document(s); it resumes at the next start",
                    merge.kind,
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
        f"patient.{merge.kind}",
        user=merge.requested_by,
        mrns=[merge.prior, merge.survivor],
        outcome="done",
        details={"merge": merge.id, "control_id": merge.control_id, "documents": total},
    )
    if merge.kind == "merge":
        _remove_empty(config.archive_dir / merge.prior)
    log.info(
        "%s %d of MRN %s into %s done: %d document(s) re-filed",
        merge.kind,
        merge.id,
        merge.prior,
        merge.survivor,
        total,
    )
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
    """Carry out every merge and unmerge not yet done, oldest first; return how many finished.

    Returns 0 at once when another process is carrying out the journal (it will do these too).
    """
    if not patients.open_merges():
        return 0
    lock = DaemonLock(config.root / LOCK_NAME)
    try:
        lock.acquire()
    except AlreadyRunning:
        return 0
    try:
        finished = 0
        for merge in patients.open_merges():
            if not run_merge(config, patients, index, audit, merge, should_stop=should_stop, after_move=after_move):
                break
            finished += 1
        if finished:
            index.expunge()  # once for all the documents moved, not once per document
        return finished
    finally:
        lock.release()


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (a file being written), or already gone
        pass
