"""Searches the way clerks type them (issue 15): a plain word matches the text,
the patient's name, the MRN or the document's type; names also within one edit."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from indexers.base import IndexOptions, IndexRecord
from indexers.whoosh.caches import SegmentCaches
from indexers.whoosh.clerk import TypeWords, widen
from indexers.whoosh.facade import WhooshIndex
from indexers.whoosh.query import parse_query
from indexers.whoosh.ranking import ranked, whoosh_ranked
from pipeline.archive.index import open_index
from pipeline.core.config import DEFAULT_TYPE_SYNONYMS, load_config
from tests.conftest import write_config

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from whoosh import index as whoosh_index

SYNONYMS = {doc_type: tuple(words) for doc_type, words in DEFAULT_TYPE_SYNONYMS.items()}


def record(doc_id: str, name: str, mrn: str, doc_type: str, content: str) -> IndexRecord:
    return IndexRecord(
        doc_id=doc_id,
        status="filed",
        mrn=mrn,
        patient_name=name,
        dob=None,
        doc_type=doc_type,
        doc_date="2024-03-05",
        pages=1,
        path=f"archive/{mrn}/{doc_id}.pdf",
        sha256=f"s-{doc_id}",
        source_sha256=f"src-{doc_id}",
        source_file=f"{doc_id}.pdf",
        review_reason=None,
        content=content,
    )


CORPUS = [
    record(
        "cal-xr",
        "CALDERON, CHRISTINE",
        "10000001",
        "radiology_report",
        "Chest two views. Impression: no acute cardiopulmonary process.",
    ),
    record(
        "cal-note",
        "CALDERON, CHRISTINE",
        "10000001",
        "progress_note",
        "Seen in clinic for cough. Chest clear. Return in two weeks.",
    ),
    record(
        "cal-lab",
        "CALDERON, CHRISTINE",
        "10000001",
        "lab_result",
        "Glucose 98. Radiology follow-up requested by the ordering physician.",
    ),
    record("kim-xr", "KIM, DAVID", "10000002", "radiology_report", "Left knee three views: no fracture."),
    record(
        "mcc-consult",
        "MCCLAIN, JOHN",
        "10000003",
        "consultation",
        "Thank you for asking me to see this patient with atrial fibrillation.",
    ),
    record(
        "mec-consult",
        "MECLAIN, JOHN",
        "10000003",
        "consultation",
        "Asked to see this patient for syncope. Recommendations below.",
    ),
    record("mcc-note", "MCCLAIN, JOHN", "10000003", "progress_note", "Atrial fibrillation, rate controlled."),
    record(
        "ruiz-op",
        "RUIZ, ANA",
        "10000004",
        "operative_report",
        "Laparoscopic cholecystectomy. Estimated blood loss minimal. Specimen to pathology.",
    ),
    record("ruiz-note", "RUIZ, ANA", "10000004", "progress_note", "Post op check, wound clean, note the staples."),
    record("ruiz-visit", "RUIZ, ANA", "10000004", "progress_note", "Wound healed, staples out."),
    record("lee-note", "LEE, MAY", "10000005", "progress_note", "Annual visit, well."),
    record("leo-note", "LEO, MAX", "10000006", "progress_note", "Annual visit, well."),
    record("king-hp", "KING, ROSE", "10000007", "history_physical", "Chief complaint: chest pain. H&P on admission."),
]


@pytest.fixture
def ix(tmp_path: Path) -> WhooshIndex:
    index = WhooshIndex(tmp_path / "index", IndexOptions(type_synonyms=SYNONYMS))
    index.add(CORPUS[:6])
    index.add(CORPUS[6:], merge=False)  # two segments
    return index


def ids(hits) -> list[str]:
    return [hit.doc_id for hit in hits]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("calderon radiology", ["cal-lab", "cal-xr"]),  # the report by its type, the lab by its text
        ("radiology", ["cal-lab", "cal-xr", "kim-xr"]),
        ("x-ray kim", ["kim-xr"]),
        ("consult", ["mcc-consult", "mec-consult"]),
        ("consultation john", ["mcc-consult", "mec-consult"]),
        ("op note", ["ruiz-note", "ruiz-op"]),  # the report by its type, the note by its text
        ("surgery ruiz", ["ruiz-op"]),
        ("calderon consult", []),  # every word must match somewhere
        ("10000004 operative", ["ruiz-op"]),
        ("king h and p", ["king-hp"]),  # initials joined as clerks write them
        ("king h&p", ["king-hp"]),
        ("king H/P", ["king-hp"]),
    ],
)
def test_a_plain_word_matches_the_document_type(ix: WhooshIndex, query: str, expected: list[str]) -> None:
    assert sorted(ids(ix.search(query))) == expected


def test_the_type_outranks_a_passing_mention(ix: WhooshIndex) -> None:
    assert ids(ix.search("calderon radiology")) == ["cal-xr", "cal-lab"]
    assert ids(ix.search("op note")) == ["ruiz-op", "ruiz-note"]


def test_a_name_read_one_edit_off_is_found_below_the_exact_name(ix: WhooshIndex) -> None:
    assert ids(ix.search("mcclain consultation")) == ["mcc-consult", "mec-consult"]
    assert ids(ix.search("meclain consultation")) == ["mec-consult", "mcc-consult"]
    assert ids(ix.search("mcclain"))[-1] == "mec-consult"
    assert sorted(ids(ix.search("name:mcclain"))) == ["mcc-consult", "mcc-note"]  # a field keeps its meaning
    # Short names have too many neighbours one edit away.
    assert ids(ix.search("lee")) == ["lee-note"]


def test_whoosh_syntax_keeps_its_meaning(ix: WhooshIndex) -> None:
    assert ids(ix.search("text:radiology")) == ["cal-lab"]  # the text only
    assert ids(ix.search("doc_type:radiology_report mrn:10000002")) == ["kim-xr"]
    assert sorted(ids(ix.search("radiology NOT calderon"))) == ["kim-xr"]
    # Words after NOT do not complete a type's name for the others ("radiology report").
    assert sorted(ids(ix.search("radiology NOT report"))) == ["cal-lab", "cal-xr", "kim-xr"]
    assert sorted(ids(ix.search("consult OR surgery"))) == ["mcc-consult", "mec-consult", "ruiz-op"]
    assert ids(ix.search('"atrial fibrillation" consult')) == ["mcc-consult"]
    assert ids(ix.search('"op note"')) == []  # a phrase is words of the text, in a row


def test_without_synonyms_a_type_is_found_by_its_own_name(tmp_path: Path) -> None:
    index = WhooshIndex(tmp_path / "index")
    index.add(CORPUS)
    assert sorted(ids(index.search("radiology report"))) == ["cal-xr", "kim-xr"]  # all the words of the name
    assert ids(index.search("radiology")) == ["cal-lab"]
    assert sorted(ids(index.search("consultation"))) == ["mcc-consult", "mec-consult"]
    assert ids(index.search("op note")) == ["ruiz-note"]


def test_a_word_of_a_longer_synonym_alone_names_no_type(ix: WhooshIndex) -> None:
    # "op note" names operative reports; "note" (also of "consult note", "clinic note") alone does not.
    assert ids(ix.search("note")) == ["ruiz-note"]
    assert ids(ix.search("report")) == []


@pytest.mark.parametrize(
    "query",
    [
        "calderon radiology",
        "mcclain consultation",
        "op note",
        "radiology OR lab",
        "consult NOT syncope",
        "mcclain OR kim",
    ],
)
def test_widened_queries_rank_as_whoosh_ranks_them(ix: WhooshIndex, tmp_path: Path, query: str) -> None:
    with whoosh_index.open_dir(str(tmp_path / "index")).searcher() as searcher:
        widened = widen(parse_query(query, searcher.schema), searcher, TypeWords(SYNONYMS), SegmentCaches())
        fast = ranked(searcher, widened, None, 100, SegmentCaches())
        slow = whoosh_ranked(searcher, widened, None, 100, SegmentCaches())
    assert slow
    assert {docnum: pytest.approx(score, rel=1e-9) for score, docnum in slow} == {
        docnum: score for score, docnum in fast
    }


def test_the_synonyms_come_from_the_config(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, index={"type_synonyms": {"operative_report": ["cutting"]}}))
    index = open_index(config)
    index.add(CORPUS)
    assert ids(index.search("cutting")) == ["ruiz-op"]
    assert ids(index.search("surgery")) == []  # the configured list replaces the defaults
    assert ids(open_index(load_config(write_config(tmp_path))).search("surgery")) == ["ruiz-op"]  # the defaults


SLIPS = [
    record("pna", "ROSS, EVE", "10000011", "radiology_report", "Community acquired pneumonia of the right lower lobe."),
    record("pna-slip", "DUNN, AMY", "10000012", "radiology_report", "Findings suggest pneumonla in the left base."),
    record("pna-slip2", "COLE, IAN", "10000013", "radiology_report", "No pnuemonia; a small effusion. Cough."),
    record("cough", "WEST, BEN", "10000014", "progress_note", "Couqh for two weeks, otherwise well."),
]


@pytest.fixture
def slips(tmp_path: Path) -> WhooshIndex:
    index = WhooshIndex(tmp_path / "index", IndexOptions(type_synonyms=SYNONYMS))
    index.add(SLIPS)
    return index


def test_a_long_word_of_the_text_finds_it_read_one_edit_off_below_the_exact_word(slips: WhooshIndex) -> None:
    assert ids(slips.search("pneumonia")) == ["pna", "pna-slip"]
    assert ids(slips.search("pneumonla")) == ["pna-slip", "pna"]  # the slip itself first
    assert ids(slips.search("pneumonia dunn")) == ["pna-slip"]  # every word still has to match
    # Two edits (a swap of letters) is not one OCR slip; a short word has too many neighbours.
    assert "pna-slip2" not in ids(slips.search("pneumonia"))
    assert ids(slips.search("cough")) == ["pna-slip2"]
    # A word given a field, and a phrase, keep their exact meaning.
    assert ids(slips.search("text:pneumonia")) == ["pna"]
    assert ids(slips.search('"acquired pneumonia"')) == ["pna"]


def test_one_edit_in_the_text_can_be_turned_off_and_keeps_to_the_expansion_budget(tmp_path: Path) -> None:
    off = WhooshIndex(tmp_path / "off", IndexOptions(text_edit_min_letters=0))
    off.add(SLIPS)
    assert ids(off.search("pneumonia")) == ["pna"]
    many = [
        record(f"v{i}", "ROSS, EVE", f"200000{i:02d}", "lab_result", f"pneumo{c}ia") for i, c in enumerate("bcdfgh")
    ]
    budget = WhooshIndex(tmp_path / "budget", IndexOptions(max_expansions=10))
    budget.add([*SLIPS, *many])
    assert len(ids(budget.search("pneumonia", limit=50))) == 1 + 1 + 6
    tight = WhooshIndex(tmp_path / "tight", IndexOptions(max_expansions=2))
    tight.add([*SLIPS, *many])
    assert len(ids(tight.search("pneumonia", limit=50))) == 1 + 2
