"""Release of information: a patient's documents copied out with a manifest and a cover sheet.

A release is assembled in a private folder beside its destination, recorded in the
audit log, and only then renamed into place: the requester's folder either holds a
complete, recorded release or nothing. Every file is checked against the SHA-256 in
its sidecar first, so an altered record is never released.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pipeline.archive.audit import AuditFilters, AuditLog
from pipeline.archive.scratch import work_dir
from pipeline.archive.sidecar import Sidecar
from pipeline.archive.store import iter_sidecars
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.core.fsutil import (
    atomic_copy,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    ensure_dir,
    sha256_file,
)
from pipeline.core.models import UNCLASSIFIED
from pipeline.records.sheet import Sheet

log = logging.getLogger("medarchive")

COVER_SHEET = "cover_sheet.pdf"
MANIFEST_CSV = "manifest.csv"
MANIFEST_JSON = "manifest.json"
MANIFEST_COLUMNS = ("doc_id", "status", "doc_type", "doc_date", "pages", "sha256", "file")


class ReleaseError(MedarchiveError):
    """A release cannot be made as asked."""


@dataclass(frozen=True)
class ReleaseRequest:
    """What to release: one patient's documents, narrowed by type and document date (inclusive).

    ``doc_ids``, when given, names the very documents to release; each must also
    pass the other criteria, so none is silently left out. A release made for a
    request for information names it (``request``), shows its ``fee`` and ``notes``
    on the cover sheet, and its disclosure entry names the request.
    """

    mrn: str
    requester: str
    purpose: str
    doc_types: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None
    include_review: bool = False
    doc_ids: tuple[str, ...] = ()
    request: str | None = None
    fee: str | None = None
    notes: tuple[str, ...] = ()

    def criteria(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("requester", "purpose", "request", "fee", "notes")}


@dataclass(frozen=True)
class Release:
    release_id: str
    out_dir: Path
    released_at: str
    documents: list[dict]


def _patient_mrns(sidecar: Sidecar) -> set[str]:
    # A review-queue document has no confirmed MRN; the ones read from it are all it has.
    own = {sidecar.mrn} if sidecar.mrn else set()
    if sidecar.status == "filed":
        return own
    return own | {c.value for c in sidecar.identifiers.mrn_candidates}


def _in_range(doc_date: str | None, request: ReleaseRequest) -> bool:
    if not (request.date_from or request.date_to):
        return True
    if not doc_date:
        return False  # an undated document cannot be shown to fall in the range asked for
    return (request.date_from or "") <= doc_date <= (request.date_to or "9999")


def _wanted(sidecar: Sidecar, request: ReleaseRequest) -> bool:
    """Whether one of the patient's documents passes the status, type and date criteria."""
    return (
        (sidecar.status == "filed" or request.include_review)
        and (not request.doc_types or sidecar.doc_type in request.doc_types)
        and _in_range(sidecar.doc_date, request)
    )


def select_documents(config: Config, request: ReleaseRequest) -> list[Sidecar]:
    """The sidecars of the documents the request covers, oldest first (undated last)."""
    patients = [s for s in iter_sidecars(config) if request.mrn in _patient_mrns(s)]
    chosen = [s for s in patients if _wanted(s, request)]
    if request.doc_ids:
        chosen = _only_named(request, patients, chosen)
    return sorted(chosen, key=lambda s: (s.doc_date or "9999", s.doc_id))


def _only_named(request: ReleaseRequest, patients: list[Sidecar], chosen: list[Sidecar]) -> list[Sidecar]:
    """The chosen documents the request names; any id it names that is not among them refuses the release."""
    by_id = {s.doc_id: s for s in chosen}
    theirs = {s.doc_id for s in patients}
    for doc_id in request.doc_ids:
        if doc_id not in theirs:
            raise ReleaseError(f"document {doc_id} is not a document of MRN {request.mrn}; nothing was released")
        if doc_id not in by_id:
            raise ReleaseError(
                f"document {doc_id} is left out by the type, date or review-queue criteria; "
                "nothing was released (widen them or do not choose it)"
            )
    return [by_id[doc_id] for doc_id in dict.fromkeys(request.doc_ids)]


def _copy_checked(config: Config, sidecar: Sidecar, folder: Path) -> Path:
    """Copy one archived file, refusing it unless the copy matches the sidecar's SHA-256."""
    source = config.root / sidecar.path
    if source.is_file():
        copy = atomic_copy(source, folder / source.name)
        if sha256_file(copy) == sidecar.sha256:
            return copy
    raise ReleaseError(
        f"document {sidecar.doc_id} (MRN {sidecar.mrn or '-'}) is missing or does not match its recorded "
        "SHA-256, so it cannot be released; run `medarchive verify` and resolve it first"
    )


def _copy_documents(config: Config, sidecars: Iterable[Sidecar], folder: Path) -> list[dict]:
    rows = []
    for sidecar in sidecars:
        copy = _copy_checked(config, sidecar, folder)
        rows.append(
            {
                "doc_id": sidecar.doc_id,
                "status": sidecar.status,
                "doc_type": sidecar.doc_type,
                "doc_date": sidecar.doc_date,
                "pages": sidecar.pages,
                "sha256": sidecar.sha256,
                "file": copy.name,
            }
        )
    return rows


def _manifest_csv(rows: list[dict]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


def _patient_name(sidecars: list[Sidecar]) -> str | None:
    # Named on the cover only when every document agrees on the name.
    names = {s.patient_name for s in sidecars if s.patient_name}
    return names.pop() if len(names) == 1 else None


def _document_line(row: dict) -> str:
    return f"{row['doc_date'] or 'undated':<10}  {row['doc_type'][:22]:<22}  {row['doc_id']:<20} {row['pages'] or 0:>4}p  {row['sha256'][:16]}"


def _draw_cover(path: Path, manifest: dict) -> None:
    cover = Sheet(path)
    cover.overflow = f" ... (full text in {MANIFEST_JSON})"
    cover.line("Release of Information - Cover Sheet", "Helvetica-Bold", 16)
    cover.gap()
    name = manifest["patient_name"]
    cover.field("Patient", f"MRN {manifest['mrn']}" + (f" - {name}" if name else ""))
    cover.field("Released to", manifest["requester"])
    cover.field("Purpose", manifest["purpose"])
    cover.field("Released at", manifest["released_at"] + " (UTC)")
    cover.field("Released by", manifest["released_by"])
    cover.field("Release id", manifest["release_id"])
    if manifest.get("request"):
        cover.field("Request", manifest["request"])
    if manifest.get("fee"):
        cover.field("Fee", manifest["fee"])
    for note in manifest.get("notes", ()):
        cover.field("Note", note)
    docs = manifest["documents"]
    pages = sum(int(d["pages"] or 0) for d in docs)
    cover.field("Contents", f"{len(docs)} document(s), {pages} page(s); SHA-256 of each file in {MANIFEST_CSV}")
    cover.gap()
    cover.line(f"{'Date':<10}  {'Type':<22}  {'Document id':<20} {'Pages':>5}  SHA-256 (first 16)", "Courier-Bold", 8)
    room = cover.rows_left(72)
    shown = docs if len(docs) <= room else docs[: max(room - 1, 0)]
    for row in shown:
        cover.line(_document_line(row), "Courier", 8)
    if len(shown) < len(docs):
        cover.line(
            f"... and {len(docs) - len(shown)} more document(s), listed in {MANIFEST_CSV}", "Helvetica-Oblique", 9
        )
    cover.footer("Confidential health information, released under the purpose stated above.", at=cover.margin)
    cover.save()


def _zip_folder(folder: Path, target: Path) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)


def check_types(config: Config, doc_types: Iterable[str]) -> None:
    known = {*config.classification.types, UNCLASSIFIED}
    unknown = sorted(set(doc_types) - known)
    if unknown:
        raise ReleaseError(f"unknown document type {', '.join(unknown)}; the types are {', '.join(sorted(known))}")


def check_destination(config: Config, out_dir: Path) -> None:
    if out_dir.is_relative_to(config.root):
        raise ReleaseError(f"{out_dir} is inside the data root; release into a folder outside {config.root}")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ReleaseError(
            f"{out_dir} already exists and is not an empty folder; give a new or empty folder so releases never mix"
        )


def _release_id(now: datetime) -> str:
    return f"REL-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _build(config: Config, request: ReleaseRequest, sidecars: list[Sidecar], folder: Path, stamp: dict) -> dict:
    manifest = {
        **stamp,
        "mrn": request.mrn,
        "patient_name": _patient_name(sidecars),
        "requester": request.requester,
        "purpose": request.purpose,
        "criteria": request.criteria(),
        **({"request": request.request, "fee": request.fee, "notes": list(request.notes)} if request.request else {}),
        "documents": _copy_documents(config, sidecars, folder),
        "cover_sheet": COVER_SHEET,
    }
    atomic_write_bytes(folder / MANIFEST_CSV, _manifest_csv(manifest["documents"]))
    atomic_write_json(folder / MANIFEST_JSON, manifest)
    atomic_write(folder / COVER_SHEET, lambda temp: _draw_cover(temp, manifest))
    return manifest


def export(
    config: Config, request: ReleaseRequest, out_dir: Path, *, user: str, audit: AuditLog, as_zip: bool = False
) -> Release:
    """Copy the documents the request covers to ``out_dir`` (or one zip in it) and record the disclosure."""
    _check_request(config, request)
    out_dir = out_dir.resolve()
    check_destination(config, out_dir)
    return _export(config, request, out_dir, str(out_dir), user=user, audit=audit, as_zip=as_zip)


def export_zip(config: Config, request: ReleaseRequest, *, user: str, audit: AuditLog) -> tuple[Release, BinaryIO]:
    """The release as one zip, open for reading, to hand over a connection.

    Assembled in the data root's scratch space and removed before this returns
    (``out_dir`` of the result no longer exists): the open file is all that is left
    of it, and its data is gone when it is closed, whatever a server does with it.
    """
    _check_request(config, request)
    with work_dir(config.scratch_dir, "release") as folder:
        release = _export(config, request, Path(folder) / "release", "download", user=user, audit=audit, as_zip=True)
        handle = (release.out_dir / f"{release.release_id}.zip").open("rb")
    return release, handle


def _check_request(config: Config, request: ReleaseRequest) -> None:
    if not request.requester.strip() or not request.purpose.strip():
        raise ReleaseError("a release needs the requester and the purpose (--requester, --purpose)")
    check_types(config, request.doc_types)


def _export(
    config: Config,
    request: ReleaseRequest,
    out_dir: Path,
    delivered_to: str,
    *,
    user: str,
    audit: AuditLog,
    as_zip: bool,
) -> Release:
    sidecars = select_documents(config, request)
    if not sidecars:
        raise ReleaseError(
            f"no document of MRN {request.mrn} matches the request; nothing was released (check the MRN, --type, --from/--to)"
        )
    now = datetime.now(UTC)
    stamp = {"release_id": _release_id(now), "released_at": now.isoformat(timespec="seconds"), "released_by": user}
    staging = Path(tempfile.mkdtemp(prefix=".release-", dir=ensure_dir(out_dir.parent)))
    try:
        content = ensure_dir(staging / "content")
        manifest = _build(config, request, sidecars, content, stamp)
        final = content
        if as_zip:
            final = ensure_dir(staging / "zipped")
            atomic_write(final / f"{stamp['release_id']}.zip", lambda temp: _zip_folder(content, temp))
        # Recorded before it is handed over: a crash may leave a recorded release
        # that was never delivered, never a delivered one that was not recorded.
        # A review-queue document may be another patient's: it is accounted under every MRN read from it.
        accounted = {s.doc_id: sorted(_patient_mrns(s) - {None}) for s in sidecars}
        _record(audit, request, manifest, accounted, delivered_to, as_zip)
        _deliver(final, out_dir, audit, manifest, sorted({m for ms in accounted.values() for m in ms}))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("release %s: %d document(s) of MRN %s", stamp["release_id"], len(sidecars), request.mrn)
    return Release(stamp["release_id"], out_dir, stamp["released_at"], manifest["documents"])


def _deliver(final: Path, out_dir: Path, audit: AuditLog, manifest: dict, mrns: list[str]) -> None:
    try:
        os.rename(final, out_dir)  # replaces an empty folder; same filesystem as the staging folder
    except OSError as exc:
        audit.record(
            "export",
            user=manifest["released_by"],
            mrns=mrns,
            outcome="not delivered",
            details={"release_id": manifest["release_id"], "error": exc.strerror},
        )
        raise ReleaseError(
            f"cannot move the release into {out_dir} ({exc.strerror}); it was not delivered, try another folder"
        ) from None


def _record(
    audit: AuditLog,
    request: ReleaseRequest,
    manifest: dict,
    accounted: dict[str, list[str]],
    delivered_to: str,
    as_zip: bool,
) -> None:
    docs = manifest["documents"]
    audit.record(
        "export",
        user=manifest["released_by"],
        doc_ids=[d["doc_id"] for d in docs],
        mrns=[request.mrn, *(m for mrns in accounted.values() for m in mrns)],
        reason=request.purpose,
        details={
            "release_id": manifest["release_id"],
            "requester": request.requester,
            "purpose": request.purpose,
            "criteria": request.criteria(),
            **({"request": request.request} if request.request else {}),
            "documents": [
                {
                    **{k: d[k] for k in ("doc_id", "doc_type", "doc_date", "pages", "sha256")},
                    "mrns": accounted[d["doc_id"]],
                }
                for d in docs
            ],
            "out": delivered_to,
            "zip": as_zip,
        },
    )


def disclosures(audit: AuditLog, mrn: str) -> list[dict]:
    """The accounting of disclosures of one patient, oldest first; ``outcome`` is "ok" once delivered."""
    rows: dict[str, dict] = {}
    for entry in audit.entries(AuditFilters(mrn=mrn, action="export")):
        details = entry["details"]
        if details["release_id"] in rows:  # a later entry about the same release changes its outcome
            rows[details["release_id"]]["outcome"] = entry["outcome"]
            continue
        rows[details["release_id"]] = {
            "at": entry["at"],
            "release_id": details["release_id"],
            "requester": details["requester"],
            "purpose": details["purpose"],
            "released_by": entry["user"],
            "outcome": entry["outcome"],
            "request": details.get("request"),
            # Only the documents that may be this patient's (entries before per-document MRNs name one patient).
            "documents": [d for d in details["documents"] if mrn in d.get("mrns", [mrn])],
        }
    return list(rows.values())


def disclosure_summary(row: dict) -> str:
    """What was disclosed, in words: the types and the span of document dates."""
    types = sorted({d["doc_type"] for d in row["documents"]})
    dates = sorted(d["doc_date"] for d in row["documents"] if d["doc_date"])
    span = "" if not dates else f", dated {dates[0]}" + (f" to {dates[-1]}" if dates[-1] != dates[0] else "")
    return f"{len(row['documents'])} document(s): {', '.join(types)}{span}"
