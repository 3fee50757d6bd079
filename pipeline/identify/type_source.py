"""Where a document's type came from, read from its sidecar.

A clerk's decision (review assign --type, reassign --type: kept in the history), a
patient-label barcode, a printed title, the learned model, body keywords or a drop
folder's hint. Clerks, barcodes and titles are trusted: those filed documents are the
model's training examples. The model's own guesses never are, so it cannot teach itself
its mistakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from pipeline.archive.sidecar import Sidecar
from pipeline.core.models import UNCLASSIFIED, Classification

Kind = Literal["clerk", "barcode", "title", "model", "keywords", "folder", "none"]
TRUSTED: frozenset[str] = frozenset({"clerk", "barcode", "title"})


@dataclass(frozen=True)
class TypeSource:
    kind: Kind
    detail: str = ""  # the title, barcode value or clerk
    confidence: float | None = None

    @property
    def label(self) -> str:
        """As shown to clerks: "title: Operative Note", "model, 0.93", "clerk: jdoe"."""
        if self.kind in ("model", "keywords"):
            return f"{self.kind}, {self.confidence:.2f}" if self.confidence is not None else self.kind
        if self.kind == "none":
            return "none (unclassified)"
        if self.kind == "folder":
            return "drop folder's hint"
        return f"{self.kind}: {self.detail}" if self.detail else self.kind

    @classmethod
    def parse(cls, label: str) -> TypeSource | None:
        """The source back from its label (the sidecar's ``type_source``), None if not one."""
        head, sep, rest = label.partition(": ")
        if sep and head in ("clerk", "barcode", "title"):
            return cls(cast(Kind, head), rest)
        head, sep, rest = label.partition(", ")
        if sep and head in ("model", "keywords"):
            try:
                return cls(cast(Kind, head), confidence=float(rest))
            except ValueError:
                return None
        return {"none (unclassified)": cls("none"), "drop folder's hint": cls("folder")}.get(label)


def model_cue(probability: float) -> str:
    return f"model:{probability:.2f}"


def _clerk(sidecar: Sidecar) -> TypeSource | None:
    """The clerk who last set the type, if the type is still theirs (a later move may keep it)."""
    for event in reversed(sidecar.history):
        before, after = event.moved_from, event.moved_to
        if after is not None and after.doc_type and after.doc_type != (before.doc_type if before else None):
            return TypeSource("clerk", event.by or "") if after.doc_type == sidecar.doc_type else None
    return None


def from_classification(found: Classification) -> TypeSource:
    """What decided a type, from the cues the classifier gave with it."""
    cues = list(found.cues)
    kind, _, detail = (cues[0] if cues else "").partition(":")
    if found.doc_type == UNCLASSIFIED:
        return TypeSource("none", confidence=found.confidence)
    if kind in ("barcode", "title"):
        return TypeSource(cast(Kind, kind), detail, found.confidence)
    if kind == "model":
        return TypeSource("model", confidence=found.confidence)
    if f"folder hint:{found.doc_type}" in cues:
        return TypeSource("folder", found.doc_type, found.confidence)
    return TypeSource("keywords", confidence=found.confidence)


def type_source(sidecar: Sidecar) -> TypeSource:
    """A clerk's decision first; else what the sidecar records, or its cues say."""
    recorded = TypeSource.parse(sidecar.type_source) if sidecar.type_source else None
    return (
        _clerk(sidecar)
        or recorded
        or from_classification(Classification(sidecar.doc_type, sidecar.type_confidence or 0.0, sidecar.type_cues))
    )


def trusted_type(sidecar: Sidecar) -> str | None:
    """The type of a filed document when a clerk, a barcode or a printed title gave it."""
    if sidecar.status != "filed" or sidecar.doc_type == UNCLASSIFIED:
        return None
    return sidecar.doc_type if type_source(sidecar).kind in TRUSTED else None
