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
    Decision,
    Document,
    Identifiers,
    MrnCandidate,
    PageText,
)
from pipeline.identify import model_store
from pipeline.identify.classify import classify, review_reason
from pipeline.identify.decide import decide
from pipeline.identify.extract import extract_identifiers
from pipeline.identify.patients import PatientRoster, resolve_mrn
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
        page_signals(
            p.page_no,
            p.text,
            p.barcodes,
            extraction=config.extraction,
            classification=config.classification,
            barcodes=config.barcodes,
        )
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
    stored = model_store.current(config)  # read once per process, not per document
    found = classify([p.text for p in pages], config.classification, stored.model if stored else None)
    if found.doc_type == UNCLASSIFIED and source.type_hint:
        return Classification(source.type_hint, found.confidence, (*found.cues, f"folder hint:{source.type_hint}"))
    return found


def _type_checked(decision: Decision, found: Classification, config: Config) -> Decision:
    reason = review_reason(found, config.classification) if decision.status == "filed" else None
    return Decision("review", None, reason, suggested_mrn=decision.mrn) if reason else decision


def _identify(pages: Sequence[PageText], config: Config) -> Identifiers:
    ids = extract_identifiers([(p.page_no, p.text) for p in pages], config.extraction)
    return replace(ids, mrn_candidates=[*_barcode_candidates(pages, config), *ids.mrn_candidates])


def _follow_merges(decision: Decision, roster: Roster | PatientRoster | None) -> Decision:
    """A document read with a retired MRN is filed under the patient who survived the merge."""
    if decision.status != "filed" or decision.mrn is None or not isinstance(roster, PatientRoster):
        return decision
    mrn, note = resolve_mrn(roster.index, decision.mrn)
    return decision if note is None else replace(decision, mrn=mrn, corrections=(*decision.corrections, note))


def build_documents(
    pages: Sequence[PageText], source: SourceFacts, config: Config, roster: Roster | PatientRoster | None
) -> list[Document]:
    """The documents in one input, in page order (separator sheets belong to none)."""
    by_no = {p.page_no: p for p in pages}
    documents = []
    for group in page_groups(pages, config):
        doc_pages = [by_no[n] for n in group]
        ids = _identify(doc_pages, config)
        found = _classify(doc_pages, source, config)
        decision = _follow_merges(decide(doc_pages, ids, config.filing, config.roster, roster), roster)
        documents.append(
            Document(
                doc_id=doc_id_for(source.sha256, group[0]),
                source_file=source.name,
                source_pages=group,
                sha256=source.sha256,
                pages=doc_pages,
                identifiers=ids,
                classification=found,
                decision=_type_checked(decision, found, config),
                source_label=source.label,
            )
        )
    return documents
