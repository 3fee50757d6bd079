"""A chart packet: one merged PDF per appointment — a cover page (patient, time, clinic, contents,
what is missing), then each chosen document, with a bookmark per document — and its manifest.

Packets are derived copies of archived documents (``archive/derived``): written under the
data root, destroyed with any of their source documents and after ``chart_prep.keep_days``.
The manifest (JSON beside the PDF) is read and written only here.
"""

from __future__ import annotations

import io
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pikepdf

from pipeline.archive.derived import packets_dir
from pipeline.clinic.appointments import Appointment
from pipeline.clinic.rules import OnFile, Pick
from pipeline.core.clock import now_utc
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.core.fsutil import atomic_write, atomic_write_json, fsync_dir, read_json, sha256_file
from pipeline.records.sheet import Sheet

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class PacketError(MedarchiveError):
    """A packet cannot be built or found (the message says which and why)."""


@dataclass(frozen=True)
class PacketEntry:
    doc_id: str
    doc_type: str
    doc_date: str | None
    pages: int
    first_page: int  # 1-based page of the packet where the document starts
    sha256: str


@dataclass(frozen=True)
class PacketManifest:
    appointment_id: str
    mrn: str
    patient: str | None
    starts_at: str
    clinic: str
    provider: str | None
    built_at: str
    built_by: str
    documents: tuple[PacketEntry, ...] = ()
    missing: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # chosen but not taken, each with why (missing, altered, unreadable)
    pages: int = 0

    @property
    def sha256s(self) -> list[str]:
        return [d.sha256 for d in self.documents]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "sha256s": self.sha256s}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PacketManifest:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        values["documents"] = tuple(PacketEntry(**d) for d in data.get("documents", ()))
        values["missing"] = tuple(data.get("missing", ()))
        values["skipped"] = tuple(data.get("skipped", ()))
        return cls(**values)


def packet_path(config: Config, appointment: Appointment) -> Path:
    return packets_dir(config) / appointment.starts_at[:10] / f"{_SAFE.sub('_', appointment.appointment_id)}.pdf"


def read_manifest(pdf: Path) -> PacketManifest | None:
    try:
        return PacketManifest.from_json(read_json(pdf.with_suffix(".json")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise PacketError(f"unreadable packet manifest {pdf.with_suffix('.json').name}: {exc}") from None


def build_packet(
    config: Config, appointment: Appointment, patient: str | None, picks: list[Pick], *, user: str
) -> PacketManifest:
    """Write the appointment's packet (replacing an older one) and return its manifest."""
    sources, skipped = _opened(config, [d for p in picks for d in p.documents])
    try:
        entries, page = [], 2  # the cover is page 1
        for doc, pdf in sources:
            entries.append(PacketEntry(doc.doc_id, doc.doc_type, doc.doc_date, len(pdf.pages), page, doc.sha256))
            page += len(pdf.pages)
        manifest = PacketManifest(
            appointment_id=appointment.appointment_id,
            mrn=appointment.mrn,
            patient=patient,
            starts_at=appointment.starts_at,
            clinic=appointment.clinic,
            provider=appointment.provider,
            built_at=now_utc(),
            built_by=user,
            documents=tuple(entries),
            missing=tuple(m for p in picks if (m := p.missing)),
            skipped=tuple(skipped),
            pages=page - 1,
        )
        target = packet_path(config, appointment)
        # Manifest first: a crash between the two leaves a manifest naming the sources, so the
        # packet is still found and destroyed with them; a PDF without a manifest never exists.
        atomic_write_json(target.with_suffix(".json"), manifest.to_json())
        atomic_write(target, lambda temp: _merge(temp, manifest, [pdf for _, pdf in sources]))
    finally:
        for _, pdf in sources:
            pdf.close()
    return manifest


def _opened(config: Config, documents: list[OnFile]) -> tuple[list[tuple[OnFile, pikepdf.Pdf]], list[str]]:
    """The documents' PDFs, open; one that is missing, altered or unreadable is left out with why,
    so one bad file costs its own pages, not the whole day's packets."""
    good, skipped = [], []
    for doc in documents:
        path = config.root / doc.path
        if not path.is_file() or sha256_file(path) != doc.sha256:
            skipped.append(f"{doc.doc_id}: file missing or altered; run `medarchive verify`")
            continue
        try:
            good.append((doc, pikepdf.open(path)))
        except pikepdf.PdfError:
            skipped.append(f"{doc.doc_id}: not a readable PDF; run `medarchive verify`")
    return good, skipped


def _merge(target: Path, manifest: PacketManifest, sources: list[pikepdf.Pdf]) -> None:
    with pikepdf.open(io.BytesIO(_cover(manifest))) as cover, pikepdf.new() as out:
        out.pages.extend(cover.pages)
        for pdf in sources:
            out.pages.extend(pdf.pages)
        with out.open_outline() as outline:
            outline.root.append(pikepdf.OutlineItem("Cover and contents", 0))
            for entry in manifest.documents:
                outline.root.append(pikepdf.OutlineItem(_title(entry), entry.first_page - 1))
        out.save(target)


def _title(entry: PacketEntry) -> str:
    return f"{entry.doc_type.replace('_', ' ').capitalize()} - {entry.doc_date or 'undated'}"


def _cover(manifest: PacketManifest) -> bytes:
    buffer = io.BytesIO()
    sheet = Sheet(buffer, leading=14)

    def line(text: str, font: str = "Helvetica", size: float = 10, indent: float = 0) -> None:
        sheet.line(text[:110], font, size, indent)  # past 110 characters a line runs off the page

    line("Chart for appointment", "Helvetica-Bold", 16)
    sheet.gap(0.5)
    line(f"Patient:   {manifest.patient or '(not in the patient index)'}   MRN {manifest.mrn}", "Helvetica-Bold", 11)
    line(f"When:      {manifest.starts_at.replace('T', ' ')}")
    line(f"Clinic:    {manifest.clinic}" + (f"   Provider: {manifest.provider}" if manifest.provider else ""))
    line(f"Prepared:  {manifest.built_at} (UTC) by {manifest.built_by}")
    sheet.gap(0.5)
    line("Contents", "Helvetica-Bold", 12)
    room = sheet.rows_left(sheet.margin, keep=3 + len(manifest.missing) + len(manifest.skipped))
    shown = manifest.documents if len(manifest.documents) <= room else manifest.documents[: max(room - 1, 0)]
    for entry in shown:
        line(f"page {entry.first_page:>4}   {_title(entry)}   ({entry.pages} p, {entry.doc_id})", "Courier", 9, 8)
    if len(shown) < len(manifest.documents):
        line(f"... and {len(manifest.documents) - len(shown)} more (see the bookmarks)", "Helvetica-Oblique", 9, 8)
    if not manifest.documents:
        line("No document on file matches this clinic's rules.", "Helvetica-Oblique", 10, 8)
    for text in manifest.missing:
        line(f"Missing: {text}", "Helvetica-Bold", 10)
    for text in manifest.skipped:
        line(f"Left out: {text}", "Helvetica-Oblique", 9)
    sheet.footer("Confidential health information: a copy for this visit, destroyed after it.")
    sheet.save()
    return buffer.getvalue()


def expire_packets(config: Config, today: date) -> int:
    """Remove the packets of visits more than ``chart_prep.keep_days`` ago; return how many days went."""
    folder = packets_dir(config)
    cutoff = (today - timedelta(days=config.chart_prep.keep_days)).isoformat()
    removed = 0
    for day in sorted(folder.iterdir()) if folder.is_dir() else ():
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", day.name) and day.name < cutoff:
            shutil.rmtree(day)
            removed += 1
    if removed:
        fsync_dir(folder)
    return removed
