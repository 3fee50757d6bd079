"""The sidecar: a document's record in the archive, typed, and read and written only here.

On disk it is the JSON written since schema 1 (keys sorted, 0600, atomic). Keys this
version does not know are kept in ``extra`` and written back unchanged, so a newer
writer's additions survive a move by an older one. Only the keys earlier versions
could not do without are required; the rest take their defaults when absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.core.fsutil import atomic_write_json, read_json

SIDECAR_SCHEMA = 1

Json = dict[str, Any]


def _extra(data: Mapping[str, Any], known: frozenset[str]) -> Json:
    # Nearly always nothing: a set comparison is much cheaper than building the dict.
    if data.keys() <= known:
        return {}
    return {k: v for k, v in data.items() if k not in known}


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict | Mapping):
        raise TypeError(f"{what} is {type(value).__name__}, not an object")
    return value


@dataclass(frozen=True)
class SourceRef:
    """The input a document was cut from: its file name, the pages taken, its SHA-256."""

    file: str
    sha256: str
    pages: tuple[int, ...] = ()
    label: str | None = None
    extra: Json = field(default_factory=dict, compare=False, repr=False)

    _KEYS = frozenset(("file", "pages", "sha256", "label"))

    @classmethod
    def from_json(cls, data: Any) -> SourceRef:
        data = _mapping(data, "source")
        return cls(
            data["file"], data["sha256"], tuple(data.get("pages") or ()), data.get("label"), _extra(data, cls._KEYS)
        )

    def to_json(self) -> Json:
        return {"file": self.file, "pages": list(self.pages), "sha256": self.sha256, "label": self.label, **self.extra}


@dataclass(frozen=True)
class PageRecord:
    """One page's text as stored: how it was obtained and what barcodes were read on it."""

    page: int | None
    text: str = ""
    source: str | None = None
    ocr_seconds: float | None = None
    rotation: int | None = None
    mean_conf: float | None = None
    error: str | None = None
    barcodes: tuple[Json, ...] = ()
    extra: Json = field(default_factory=dict, compare=False, repr=False)

    _KEYS = frozenset(("page", "source", "text", "ocr_seconds", "rotation", "mean_conf", "error", "barcodes"))

    @classmethod
    def from_json(cls, data: Any) -> PageRecord:
        data = _mapping(data, "a page text")
        return cls(
            data.get("page"),
            data.get("text") or "",
            data.get("source"),
            data.get("ocr_seconds"),
            data.get("rotation"),
            data.get("mean_conf"),
            data.get("error"),
            tuple(data.get("barcodes") or ()),
            _extra(data, cls._KEYS),
        )

    def to_json(self) -> Json:
        return {
            "page": self.page,
            "source": self.source,
            "text": self.text,
            "ocr_seconds": self.ocr_seconds,
            "rotation": self.rotation,
            "mean_conf": self.mean_conf,
            "error": self.error,
            "barcodes": [dict(b) for b in self.barcodes],
            **self.extra,
        }


@dataclass(frozen=True)
class MrnRead:
    """An MRN candidate as recorded: the value, what was on the page, where and how it was read."""

    value: str
    raw: str | None = None
    label: str | None = None
    page_no: int | None = None
    offset: int | None = None
    confidence: float | None = None
    source: str | None = None
    corrected: bool = False
    extra: Json = field(default_factory=dict, compare=False, repr=False)

    _KEYS = frozenset(("value", "raw", "label", "page_no", "offset", "confidence", "source", "corrected"))

    @classmethod
    def from_json(cls, data: Any) -> MrnRead:
        data = _mapping(data, "an MRN candidate")
        return cls(
            data.get("value"),
            data.get("raw"),
            data.get("label"),
            data.get("page_no"),
            data.get("offset"),
            data.get("confidence"),
            data.get("source"),
            bool(data.get("corrected", False)),
            _extra(data, cls._KEYS),
        )

    def to_json(self) -> Json:
        return {
            "value": self.value,
            "raw": self.raw,
            "label": self.label,
            "page_no": self.page_no,
            "offset": self.offset,
            "confidence": self.confidence,
            "source": self.source,
            "corrected": self.corrected,
            **self.extra,
        }


@dataclass(frozen=True)
class RecordedIdentifiers:
    """Everything extraction read from the document, kept for review and for learning."""

    mrn_candidates: tuple[MrnRead, ...] = ()
    name: str | None = None
    dob: str | None = None
    doc_date: str | None = None
    extra: Json = field(default_factory=dict, compare=False, repr=False)

    _KEYS = frozenset(("mrn_candidates", "name", "dob", "doc_date"))

    @classmethod
    def from_json(cls, data: Any) -> RecordedIdentifiers:
        data = _mapping(data, "identifiers")
        candidates = tuple(MrnRead.from_json(c) for c in data.get("mrn_candidates") or ())
        return cls(candidates, data.get("name"), data.get("dob"), data.get("doc_date"), _extra(data, cls._KEYS))

    def to_json(self) -> Json:
        return {
            "mrn_candidates": [c.to_json() for c in self.mrn_candidates],
            "name": self.name,
            "dob": self.dob,
            "doc_date": self.doc_date,
            **self.extra,
        }


@dataclass(frozen=True)
class Placement:
    """Where a document was or is going in a move: patient and type (and status, where it came from)."""

    mrn: str | None
    doc_type: str | None
    status: str | None = None
    extra: Json = field(default_factory=dict, compare=False, repr=False)

    _KEYS = frozenset(("mrn", "doc_type", "status"))

    @classmethod
    def from_json(cls, data: Any) -> Placement:
        data = _mapping(data, "a placement")
        return cls(data.get("mrn"), data.get("doc_type"), data.get("status"), _extra(data, cls._KEYS))

    def to_json(self) -> Json:
        # "to" placements never had a status: leave it out rather than write a null.
        status = {} if self.status is None else {"status": self.status}
        return {"mrn": self.mrn, "doc_type": self.doc_type, **status, **self.extra}


@dataclass(frozen=True)
class HistoryEvent:
    """One line of a document's history: filed or queued by a run, assigned or reassigned by a person."""

    at: str
    by: str | None
    action: str
    reason: str | None = None
    moved_from: Placement | None = None
    moved_to: Placement | None = None
    extra: Json = field(default_factory=dict, compare=False, repr=False)

    _KEYS = frozenset(("at", "by", "action", "reason", "from", "to"))

    @classmethod
    def from_json(cls, data: Any) -> HistoryEvent:
        data = _mapping(data, "a history event")
        before, after = data.get("from"), data.get("to")
        return cls(
            data.get("at") or "",
            data.get("by"),
            data.get("action") or "",
            data.get("reason"),
            None if before is None else Placement.from_json(before),
            None if after is None else Placement.from_json(after),
            _extra(data, cls._KEYS),
        )

    def to_json(self) -> Json:
        moved = {}
        if self.moved_from is not None:
            moved["from"] = self.moved_from.to_json()
        if self.moved_to is not None:
            moved["to"] = self.moved_to.to_json()
        return {"at": self.at, "by": self.by, "action": self.action, "reason": self.reason, **moved, **self.extra}


@dataclass(frozen=True)
class PaperRef:
    """Where the paper original is kept: its off-site box (pipeline/paper), and how that became known.

    ``how`` is "label sheet", "drop folder", "assigned" or "label unreadable" (a box label
    sheet was scanned but its barcode could not be read: ``box`` is None, the box unknown).
    """

    box: str | None
    how: str
    at: str | None = None
    by: str | None = None

    @property
    def unknown(self) -> bool:
        return self.box is None

    @classmethod
    def from_json(cls, data: Any) -> PaperRef:
        data = _mapping(data, "paper")
        return cls(data.get("box"), data.get("how") or "assigned", data.get("at"), data.get("by"))

    def to_json(self) -> Json:
        return {"box": self.box, "how": self.how, "at": self.at, "by": self.by}


@dataclass(frozen=True)
class Sidecar:
    """One archived document: who it is about, what it is, where its PDF is, and its history.

    ``path`` is the PDF's path relative to the data root. ``type_source`` says what
    decided ``doc_type`` (a title, a model and its confidence), when that is known.
    ``corroboration`` says what confirmed the MRN of a filing ("barcode", "second_page",
    "patient_index:dob", "archive:name"...); ``candidate_mrns`` the MRNs a doubtful read
    may be, for the clerk. Both are written only when set, so older sidecars read as before.
    """

    doc_id: str
    status: str
    doc_type: str
    path: str
    sha256: str
    source: SourceRef
    mrn: str | None = None
    patient_name: str | None = None
    dob: str | None = None
    doc_date: str | None = None
    pages: int = 0
    type_confidence: float | None = None
    type_cues: tuple[str, ...] = ()
    type_source: str | None = None
    review_reason: str | None = None
    suggested_mrn: str | None = None
    corrections: tuple[str, ...] = ()
    corroboration: tuple[str, ...] = ()
    candidate_mrns: tuple[str, ...] = ()
    identifiers: RecordedIdentifiers = field(default_factory=RecordedIdentifiers)
    page_texts: tuple[PageRecord, ...] = ()
    history: tuple[HistoryEvent, ...] = ()
    paper: PaperRef | None = None
    site: str | None = None  # the site that filed it (several sites on one archive)
    schema: int = SIDECAR_SCHEMA
    extra: Json = field(default_factory=dict, compare=False, repr=False)

    _KEYS = frozenset(
        (
            "schema",
            "paper",
            "site",
            "doc_id",
            "status",
            "mrn",
            "patient_name",
            "dob",
            "doc_type",
            "type_confidence",
            "type_cues",
            "type_source",
            "doc_date",
            "pages",
            "sha256",
            "path",
            "review_reason",
            "suggested_mrn",
            "corrections",
            "corroboration",
            "candidate_mrns",
            "source",
            "identifiers",
            "page_texts",
            "history",
        )
    )

    @property
    def since(self) -> str | None:
        """When the document was first filed or queued."""
        return self.history[0].at if self.history else None

    @property
    def text(self) -> str:
        """The whole text, pages separated by form feeds (as the index holds it)."""
        return "\n\f\n".join(p.text for p in self.page_texts)

    def moved(self, *, mrn: str, doc_type: str, path: str, event: HistoryEvent) -> Sidecar:
        """This document filed under ``mrn`` as ``doc_type`` at ``path``, with ``event`` in its history."""
        return replace(
            self,
            status="filed",
            mrn=mrn,
            doc_type=doc_type,
            review_reason=None,
            path=path,
            history=(*self.history, event),
        )

    @classmethod
    def from_json(cls, data: Any) -> Sidecar:
        """Raises KeyError, TypeError or ValueError for a sidecar that is not one."""
        data = _mapping(data, "the sidecar")
        schema = data.get("schema", SIDECAR_SCHEMA)
        if not isinstance(schema, int) or schema > SIDECAR_SCHEMA:
            raise ValueError(
                f"sidecar schema {schema!r} is newer than this medarchive reads ({SIDECAR_SCHEMA}); upgrade medarchive"
            )
        return cls(
            doc_id=data["doc_id"],
            status=data["status"],
            doc_type=data["doc_type"],
            path=data["path"],
            sha256=data["sha256"],
            source=SourceRef.from_json(data["source"]),
            mrn=data.get("mrn"),
            patient_name=data.get("patient_name"),
            dob=data.get("dob"),
            doc_date=data.get("doc_date"),
            pages=int(data.get("pages") or 0),
            type_confidence=data.get("type_confidence"),
            type_cues=tuple(data.get("type_cues") or ()),
            type_source=data.get("type_source"),
            review_reason=data.get("review_reason"),
            suggested_mrn=data.get("suggested_mrn"),
            corrections=tuple(data.get("corrections") or ()),
            corroboration=tuple(data.get("corroboration") or ()),
            candidate_mrns=tuple(data.get("candidate_mrns") or ()),
            identifiers=RecordedIdentifiers.from_json(data.get("identifiers") or {}),
            page_texts=tuple(PageRecord.from_json(p) for p in data.get("page_texts") or ()),
            history=tuple(HistoryEvent.from_json(e) for e in data.get("history") or ()),
            paper=PaperRef.from_json(data["paper"]) if data.get("paper") else None,
            site=data.get("site"),
            schema=schema,
            extra=_extra(data, cls._KEYS),
        )

    def to_json(self) -> Json:
        # type_source is left out until something sets it, so sidecars without it read as before.
        type_source = {} if self.type_source is None else {"type_source": self.type_source}
        paper = {} if self.paper is None else {"paper": self.paper.to_json()}
        site = {} if self.site is None else {"site": self.site}
        witnesses = {"corroboration": list(self.corroboration)} if self.corroboration else {}
        candidates = {"candidate_mrns": list(self.candidate_mrns)} if self.candidate_mrns else {}
        return {
            "schema": self.schema,
            "doc_id": self.doc_id,
            "status": self.status,
            "mrn": self.mrn,
            "patient_name": self.patient_name,
            "dob": self.dob,
            "doc_type": self.doc_type,
            "type_confidence": self.type_confidence,
            "type_cues": list(self.type_cues),
            **type_source,
            "doc_date": self.doc_date,
            "pages": self.pages,
            "sha256": self.sha256,
            "path": self.path,
            "review_reason": self.review_reason,
            "suggested_mrn": self.suggested_mrn,
            "corrections": list(self.corrections),
            **witnesses,
            **candidates,
            "source": self.source.to_json(),
            "identifiers": self.identifiers.to_json(),
            "page_texts": [p.to_json() for p in self.page_texts],
            "history": [e.to_json() for e in self.history],
            **paper,
            **site,
            **self.extra,
        }


def read_sidecar(path: Path) -> Sidecar:
    """Raises OSError for a file that cannot be read, ValueError, KeyError or TypeError for one that is not a sidecar."""
    return Sidecar.from_json(read_json(path))


def write_sidecar(path: Path, sidecar: Sidecar) -> Path:
    return atomic_write_json(path, sidecar.to_json())
