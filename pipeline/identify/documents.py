"""From the pages of one input to its documents: split, identify, classify, decide.

Pure: page texts and barcodes in, Document records out. Each document of a batch
(a chart cut at separator sheets or, optionally, where a new document starts) is
identified and decided on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from pipeline.archive.store import doc_id_for
from pipeline.core.config import Config
from pipeline.core.models import (
    UNCLASSIFIED,
    Classification,
    Document,
    Identifiers,
    MrnCandidate,
    PageText,
)
from pipeline.identify.classify import classify
from pipeline.identify.decide import decide
from pipeline.identify.extract import extract_identifiers
from pipeline.identify.roster import Roster
from pipeline.identify.split import page_signals, split_pages
from pipeline.pages.barcodes import doc_type_from, mrn_values


@dataclass(frozen=True)
class SourceFacts:
    """What is known of the input itself."""

    name: str
    sha256: str
    label: str | None = None
    type_hint: str | None = None


def page_groups(pages: Sequence[PageText], config: Config) -> list[list[int]]:
    signals = [
        page_signals(p.page_no, p.text, p.barcodes, extraction=config.extraction,
                     classification=config.classification, barcodes=config.barcodes)
        for p in pages
    ]
    return split_pages(signals, separator_sheets=config.split.separator_sheets, automatic=config.split.automatic)


def _barcode_candidates(pages: Sequence[PageText], config: Config) -> list[MrnCandidate]:
    if not config.barcodes.enabled:
        return []
    return [
        MrnCandidate(value=value, raw=value, label="barcode", page_no=p.page_no, offset=0, source="barcode")
        for p in pages
        for value in mrn_values(p.barcodes, config.extraction.mrn_pattern)
    ]


def _classify(pages: Sequence[PageText], source: SourceFacts, config: Config) -> Classification:
    reads = [r for p in pages for r in p.barcodes]
    coded = doc_type_from(reads, config.barcodes.doc_types) if config.barcodes.enabled else None
    if coded:
        return Classification(coded, 1.0, (f"barcode:{coded}",))
    found = classify([p.text for p in pages], config.classification)
    if found.doc_type == UNCLASSIFIED and source.type_hint:
        return Classification(source.type_hint, found.confidence, (*found.cues, f"folder hint:{source.type_hint}"))
    return found


def _identify(pages: Sequence[PageText], config: Config) -> Identifiers:
    ids = extract_identifiers([(p.page_no, p.text) for p in pages], config.extraction)
    return replace(ids, mrn_candidates=[*_barcode_candidates(pages, config), *ids.mrn_candidates])


def build_documents(pages: Sequence[PageText], source: SourceFacts, config: Config, roster: Roster | None) -> list[Document]:
    """The documents in one input, in page order (separator sheets belong to none)."""
    by_no = {p.page_no: p for p in pages}
    documents = []
    for group in page_groups(pages, config):
        doc_pages = [by_no[n] for n in group]
        ids = _identify(doc_pages, config)
        documents.append(Document(
            doc_id=doc_id_for(source.sha256, group[0]),
            source_file=source.name,
            source_pages=group,
            sha256=source.sha256,
            pages=doc_pages,
            identifiers=ids,
            classification=_classify(doc_pages, source, config),
            decision=decide(doc_pages, ids, config.filing, config.roster, roster),
            source_label=source.label,
        ))
    return documents
