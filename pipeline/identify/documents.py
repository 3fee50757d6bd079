"""From the pages of one input to its documents: split, identify, classify, decide.

Pure: page texts and barcodes in, Document records out. Each document of a batch
(a chart cut at separator sheets or, optionally, where a new document starts) is
identified and decided on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from pipeline.archive.store import doc_id_for
from pipeline.core.config import Config
from pipeline.core.models import (
    UNCLASSIFIED,
    Classification,
    Decision,
    Document,
    FiledPatient,
    Identifiers,
    MrnCandidate,
    PageText,
)
from pipeline.identify import model_store
from pipeline.identify.classify import classify, review_reason
from pipeline.identify.decide import decide, mrns_to_look_up
from pipeline.identify.extract import extract_identifiers, layout_identifiers
from pipeline.identify.layout import title_lines
from pipeline.identify.patients import PatientRoster, resolve_mrn
from pipeline.identify.roster import Roster
from pipeline.identify.split import boxes_of, page_signals, split_pages
from pipeline.pages.barcodes import doc_type_from, mrn_values

# The archive's history of some MRNs (pipeline.archive.history.filed_patients, bound to a config).
HistoryLookup = Callable[[Iterable[str]], Mapping[str, FiledPatient]]


@dataclass(frozen=True)
class SourceFacts:
    """What is known of the input itself."""

    name: str
    sha256: str
    label: str | None = None
    type_hint: str | None = None
    box: str | None = None  # the drop folder's box


def page_groups(pages: Sequence[PageText], config: Config) -> list[tuple[list[int], str | None, str | None]]:
    """Each document's page numbers, with the box of its paper and how that is known (box label sheets)."""
    signals = [
        page_signals(
            p.page_no,
            p.text,
            p.barcodes,
            extraction=config.extraction,
            classification=config.classification,
            barcodes=config.barcodes,
            boxes=config.boxes,
        )
        for p in pages
    ]
    groups = split_pages(signals, separator_sheets=config.split.separator_sheets, automatic=config.split.automatic)
    return [(group, box, how) for group, (box, how) in zip(groups, boxes_of(groups, signals), strict=True)]


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
    titles = title_lines(pages[0].words) if pages else []
    found = classify([p.text for p in pages], config.classification, stored.model if stored else None, titles)
    if found.doc_type == UNCLASSIFIED and source.type_hint:
        return Classification(source.type_hint, found.confidence, (*found.cues, f"folder hint:{source.type_hint}"))
    return found


def _type_checked(decision: Decision, found: Classification, config: Config) -> Decision:
    reason = review_reason(found, config.classification) if decision.status == "filed" else None
    return Decision("review", None, reason, suggested_mrn=decision.mrn) if reason else decision


def _identify(pages: Sequence[PageText], config: Config) -> Identifiers:
    ids = extract_identifiers([(p.page_no, p.text) for p in pages], config.extraction)
    # A form's labelled boxes read by position beat the text layer's reading order.
    name, dob = layout_identifiers(pages[0].words, config.extraction) if pages else (None, None)
    if dob and ids.doc_date and ids.doc_date <= dob:
        dob = None
    return replace(
        ids,
        name=name or ids.name,
        dob=dob or ids.dob,
        mrn_candidates=[*_barcode_candidates(pages, config), *ids.mrn_candidates],
    )


def _follow_merges(decision: Decision, roster: Roster | PatientRoster | None) -> Decision:
    """A document read with a retired MRN is filed under the patient who survived the merge."""
    if decision.status != "filed" or not isinstance(roster, PatientRoster):
        return decision
    mrn, note = resolve_mrn(roster.index, decision.mrn)
    return decision if note is None else replace(decision, mrn=mrn, corrections=(*decision.corrections, note))


def build_documents(
    pages: Sequence[PageText],
    source: SourceFacts,
    config: Config,
    roster: Roster | PatientRoster | None,
    history: HistoryLookup | None = None,
) -> list[Document]:
    """The documents in one input, in page order (separator sheets belong to none).

    ``history`` looks up what the archive already holds under a few MRNs; it is asked
    only when there is no patient index (the index, when there is one, is the authority).
    """
    by_no = {p.page_no: p for p in pages}
    documents = []
    for group, box, how in page_groups(pages, config):
        if how is None and source.box:
            box, how = source.box, "drop folder"
        doc_pages = [by_no[n] for n in group]
        ids = _identify(doc_pages, config)
        found = _classify(doc_pages, source, config)
        known = history(mrns_to_look_up(doc_pages, ids, config.filing)) if history and roster is None else None
        decision = _follow_merges(decide(doc_pages, ids, config.filing, config.roster, roster, known), roster)
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
                box=box,
                box_how=how,
            )
        )
    return documents
