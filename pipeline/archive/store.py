"""The archive on disk: one PDF + one JSON sidecar per document, the source of truth.

``archive/<MRN>/<date>_<type>_<doc_id>.pdf`` for filed documents and
``review/<date>_<type>_<doc_id>.pdf`` for the review queue. The sidecar is written
last: a PDF without a sidecar is an interrupted write and is simply written again.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterator
from pathlib import Path

from indexers.base import DEFAULT_SITE, Index, IndexRecord
from pipeline.archive.sidecar import (
    HistoryEvent,
    PageRecord,
    PaperRef,
    RecordedIdentifiers,
    Sidecar,
    SourceRef,
    read_sidecar,
    write_sidecar,
)
from pipeline.core.clock import now_utc
from pipeline.core.config import Config
from pipeline.core.errors import ArchiveError
from pipeline.core.fsutil import (
    atomic_copy,
    atomic_write,
    atomic_write_json,
    fsync_dir,
    read_json,
    sha256_file,
)
from pipeline.core.models import Document

_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def _safe(segment: str, what: str) -> str:
    if not _SAFE_SEGMENT.match(segment):
        raise ArchiveError(f"{what} {segment!r} cannot be used as a folder or file name")
    return segment


def doc_id_for(source_sha256: str, first_page: int) -> str:
    """Stable id: the same input pages always make the same document id."""
    return f"{source_sha256[:16]}-{first_page}"


def document_dir(config: Config, status: str, mrn: str | None) -> Path:
    if status == "filed":
        return config.archive_dir / _safe(mrn or "", "MRN")
    return config.review_dir


def base_name(doc_date: str | None, doc_type: str, doc_id: str) -> str:
    return f"{doc_date or 'undated'}_{_safe(doc_type, 'document type')}_{doc_id}"


def sidecar_path(pdf_path: Path) -> Path:
    return pdf_path.with_suffix(".json")


def _sidecar(config: Config, doc: Document, pdf_path: Path, pdf_sha: str) -> Sidecar:
    ids, cls, decision = doc.identifiers, doc.classification, doc.decision
    action = "filed" if decision.status == "filed" else "queued for review"
    return Sidecar(
        doc_id=doc.doc_id,
        status=decision.status,
        mrn=decision.mrn,
        patient_name=ids.name,
        dob=ids.dob,
        doc_type=cls.doc_type,
        type_confidence=round(cls.confidence, 3),
        type_cues=tuple(cls.cues),
        doc_date=ids.doc_date,
        pages=len(doc.pages),
        sha256=pdf_sha,
        path=pdf_path.relative_to(config.root).as_posix(),
        review_reason=decision.reason,
        suggested_mrn=decision.suggested_mrn or (ids.distinct_mrns[0] if len(ids.distinct_mrns) == 1 else None),
        corrections=tuple(decision.corrections),
        corroboration=tuple(decision.corroboration),
        candidate_mrns=tuple(decision.candidates),
        source=SourceRef(doc.source_file, doc.sha256, tuple(doc.source_pages), doc.source_label),
        identifiers=RecordedIdentifiers.from_json(doc.identifiers_json()),
        page_texts=tuple(PageRecord.from_json(p.to_json()) for p in doc.pages),
        history=(HistoryEvent(now_utc(), getpass.getuser(), action, decision.reason),),
        paper=PaperRef(doc.box, doc.box_how, now_utc()) if doc.box_how else None,
        site=config.site,
    )


def document_pdf_path(config: Config, doc: Document) -> Path:
    """Where ``doc``'s PDF goes: known before anything is written, so a run journal can
    record it and find (or clear) what a crash left half-written."""
    folder = document_dir(config, doc.decision.status, doc.decision.mrn)
    return folder / (base_name(doc.identifiers.doc_date, doc.classification.doc_type, doc.doc_id) + ".pdf")


def write_document(config: Config, doc: Document, source_pdf: Path) -> Sidecar:
    """Write the searchable PDF, then its sidecar, both atomically; return the sidecar."""
    from pipeline.archive.textlayer import build_pdf  # (pikepdf: not for the commands that only read)

    pdf_path = document_pdf_path(config, doc)
    atomic_write(pdf_path, lambda temp: build_pdf(source_pdf, doc.pages, temp))
    sidecar = _sidecar(config, doc, pdf_path, sha256_file(pdf_path))
    write_sidecar(sidecar_path(pdf_path), sidecar)
    return sidecar


def move_document(config: Config, sidecar: Sidecar, *, mrn: str, doc_type: str, event: HistoryEvent) -> Sidecar:
    """File a document under ``mrn`` as ``doc_type``; return its new sidecar.

    The new copy and sidecar are durable before the old ones go, so a crash leaves
    at worst two sidecars with one doc_id, which reconcile resolves by history.
    """
    old_pdf = config.root / sidecar.path
    new_pdf = document_dir(config, "filed", mrn) / (base_name(sidecar.doc_date, doc_type, sidecar.doc_id) + ".pdf")
    moved = sidecar.moved(mrn=mrn, doc_type=doc_type, path=new_pdf.relative_to(config.root).as_posix(), event=event)
    if new_pdf != old_pdf:
        atomic_copy(old_pdf, new_pdf)
    write_sidecar(sidecar_path(new_pdf), moved)
    if new_pdf != old_pdf:
        sidecar_path(old_pdf).unlink()
        old_pdf.unlink()
        fsync_dir(old_pdf.parent)
    return moved


def record_from_sidecar(sidecar: Sidecar) -> IndexRecord:
    """The index's view of a document, derived from its sidecar alone."""
    return IndexRecord(
        doc_id=sidecar.doc_id,
        status=sidecar.status,
        mrn=sidecar.mrn,
        patient_name=sidecar.patient_name,
        dob=sidecar.dob,
        doc_type=sidecar.doc_type,
        doc_date=sidecar.doc_date,
        pages=sidecar.pages,
        path=sidecar.path,
        sha256=sidecar.sha256,
        source_sha256=sidecar.source.sha256,
        source_file=sidecar.source.file,
        review_reason=sidecar.review_reason,
        content=sidecar.text,
        site=sidecar_site(sidecar),
    )


def sidecar_site(sidecar: Sidecar) -> str:
    """The site that filed the document: its sidecar's "site", or the default for archives
    from before sites (and from one-site deployments)."""
    return sidecar.site or DEFAULT_SITE


def _sidecars_in(folder: Path) -> list[Path]:
    # Dot-names are writes in progress (fsutil's temp files).
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def iter_sidecar_paths(config: Config) -> Iterator[Path]:
    """Every sidecar in the archive and the review queue, folder by folder."""
    if config.archive_dir.is_dir():
        for patient in sorted(config.archive_dir.iterdir()):
            if patient.is_dir():
                yield from _sidecars_in(patient)
    if config.review_dir.is_dir():
        yield from _sidecars_in(config.review_dir)


def iter_sidecars(config: Config) -> Iterator[Sidecar]:
    for path in iter_sidecar_paths(config):
        try:
            yield read_sidecar(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArchiveError(f"unreadable sidecar {path.relative_to(config.root)}: {exc}") from None


def find_sidecar(config: Config, doc_id: str, index: Index | None = None, *, scan: bool = True) -> Sidecar:
    """The sidecar of one document by id: where the index says it is, else (with ``scan``) by
    scanning the archive (the index may lag a move the daemon just made, or be rebuilding).
    Without ``scan`` an unknown id costs one index lookup, not a walk of every patient folder."""
    if not re.fullmatch(r"[0-9a-f]{16}-\d+", doc_id):
        raise ArchiveError(f"{doc_id!r} is not a document id (expected 16 hex digits, a dash and a page number)")
    record = index.get(doc_id) if index is not None else None
    if record is not None:
        indexed = sidecar_path(config.root / record.path)
        if indexed.is_file() and indexed.stem.endswith("_" + doc_id):
            return read_sidecar(indexed)
    for path in iter_sidecar_paths(config) if scan else ():
        if path.stem.endswith("_" + doc_id):
            return read_sidecar(path)
    raise ArchiveError(f"no document with id {doc_id} in the archive or the review queue")


def set_aside_failed(
    config: Config, source: Path, name: str, reason: str, sha256: str | None, box: str | None = None
) -> Path:
    """Copy an input that cannot be taken into failed/, with its reason (and its paper's box) beside it."""
    stem = f"{(sha256 or 'unreadable')[:16]}_{safe_file_name(name)}"
    target = config.failed_dir / stem
    if source.exists() and source.is_file():
        atomic_copy(source, target)
    atomic_write_json(
        config.failed_dir / (stem + ".reason.json"),
        {
            "file": name,
            "reason": reason,
            "at": now_utc(),
            "sha256": sha256,
            "path": target.relative_to(config.root).as_posix(),
            **({"box": box} if box else {}),
        },
    )
    return target


def safe_file_name(name: str) -> str:
    """A name from outside (a scanner's file name) made safe to use in the data root."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".")
    return cleaned[:120] or "unnamed"


def iter_failed(config: Config) -> Iterator[dict]:
    if config.failed_dir.is_dir():
        for path in sorted(config.failed_dir.glob("*.reason.json")):
            if not path.name.startswith("."):
                yield read_json(path)
