"""WhooshIndex against small real indexes in tmp_path."""

from __future__ import annotations

import stat
import warnings
from pathlib import Path

import pytest

import indexers.whoosh.codec as whoosh_codec
import indexers.whoosh.facade as whoosh_module
from indexers.base import (
    BadQuery,
    IndexBusyError,
    IndexFailure,
    IndexOptions,
    IndexRecord,
    SearchFilters,
)
from indexers.whoosh.caches import SegmentCaches
from indexers.whoosh.facade import WhooshIndex
from indexers.whoosh.highlight import SNIPPET_FALLBACK_CHARS
from indexers.whoosh.query import filter_query, parse_query
from indexers.whoosh.ranking import ranked, whoosh_ranked
from indexers.whoosh.schema import ContentAnalyzer, fields_of
from tests.unit.test_index_engines import CLINIC, record

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from whoosh import index as whoosh_index
    from whoosh.filedb.filestore import FileStorage

FAST = IndexOptions(writer_timeout_seconds=0.3)


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "index"


@pytest.fixture
def ix(index_dir: Path) -> WhooshIndex:
    return WhooshIndex(index_dir, FAST)


@pytest.fixture
def clinic(ix: WhooshIndex) -> WhooshIndex:
    ix.add(CLINIC)
    return ix


def ids(hits) -> list[str]:
    return [hit.doc_id for hit in hits]


def test_missing_index_reads_as_empty(ix: WhooshIndex, index_dir: Path) -> None:
    assert ix.search("pain") == []
    assert ix.count() == 0
    assert list(ix.stored()) == []
    assert ix.doc_ids_for_source("src-x") == []
    assert ix.delete(["x"]) == 0
    assert not index_dir.exists()


def test_first_add_creates_a_private_folder(ix: WhooshIndex, index_dir: Path) -> None:
    assert ix.add([record("a")]) == 1
    assert stat.S_IMODE(index_dir.stat().st_mode) == 0o700
    assert ix.count() == 1


def test_search_ranks_and_highlights_matches(clinic: WhooshIndex) -> None:
    hits = clinic.search("hypertension")
    assert ids(hits) == ["cardio"]
    hit = hits[0]
    assert (hit.mrn, hit.patient_name, hit.doc_type, hit.doc_date, hit.status) == (
        "00482913",
        "DOE, JANE",
        "consultation",
        "2024-01-10",
        "filed",
    )
    assert hit.path == "archive/00482913/cardio.pdf"
    assert hit.score > 0
    assert "**hypertension**" in hit.snippet
    assert len(hit.snippet) <= 320


def test_stemming_matches_other_word_forms(clinic: WhooshIndex) -> None:
    hits = clinic.search("diabetes")
    assert sorted(ids(hits)) == ["lab", "smith"]
    assert "**Diabetic**" in next(h for h in hits if h.doc_id == "smith").snippet


def test_matches_deep_in_a_long_document_are_highlighted(ix: WhooshIndex) -> None:
    ix.add([record("long", content="filler words " * 4000 + "episode of tachycardia overnight")])
    assert "filler words episode of **tachycardia**" in ix.search("tachycardia")[0].snippet


def test_each_shown_hit_is_highlighted_with_its_own_matches(ix: WhooshIndex) -> None:
    ix.add([record(f"n{n}", content=f"note {n}: {'fever ' * (n + 1)}and cough") for n in range(5)])
    ix.add([record("other", content="rash only")], merge=False)
    hits = ix.search("fever", limit=2)
    assert ids(hits) == ["n4", "n3"]
    assert all(hit.snippet.startswith("4: **fever**" if hit.doc_id == "n4" else "3: **fever**") for hit in hits)
    snippets = {hit.doc_id: hit.snippet for hit in ix.search("fever OR rash", SearchFilters(status="filed"))}
    assert snippets["other"] == "**rash** only"
    assert all("**fever**" in snippets[f"n{n}"] for n in range(5))


def test_highlights_skip_replaced_documents(ix: WhooshIndex) -> None:
    ix.add([record("a", content="old wording about anemia"), record("b", content="anemia again")])
    ix.add([record("a", content="new wording about anemia")], merge=False)
    snippets = {hit.doc_id: hit.snippet for hit in ix.search("anemia wording")}
    assert snippets == {"a": "**wording** about **anemia**"}
    assert ix.search('"old wording"') == []


def test_phrase_and_wildcard_hits_are_highlighted(clinic: WhooshIndex) -> None:
    assert "**chest** **pain**" in clinic.search('"chest pain"')[0].snippet
    assert "**Diabetic**" in clinic.search("diab* AND ulcer")[0].snippet


def test_snippet_falls_back_to_the_start_of_the_text(ix: WhooshIndex) -> None:
    ix.add([record("long", content="word " * 100)])
    hit = ix.search("00482913")[0]
    assert hit.snippet == ("word " * 100)[:SNIPPET_FALLBACK_CHARS]


@pytest.mark.parametrize("query", ["doe", "jane doe", "DOE, JANE", "Jane", "name:doe", "patient_name:jane"])
def test_patient_name_matches_in_any_form(clinic: WhooshIndex, query: str) -> None:
    assert sorted(ids(clinic.search(query))) == ["cardio", "lab"]


def test_a_bare_mrn_finds_the_patient(clinic: WhooshIndex) -> None:
    assert sorted(ids(clinic.search("00771234"))) == ["smith", "undated"]


def test_phrase_needs_the_words_in_order(clinic: WhooshIndex) -> None:
    assert ids(clinic.search('"chest pain"')) == ["cardio"]
    assert sorted(ids(clinic.search("chest pain"))) == ["cardio", "lab"]


def test_phrases_across_segments_with_a_filter(ix: WhooshIndex) -> None:
    for batch in range(3):
        ix.add(
            [
                record(f"apart{batch}", content="pain pain chest chest"),
                record(f"phrase{batch}", content="chest pain noted", status="review" if batch else "filed"),
            ],
            merge=False,
        )
    assert sorted(ids(ix.search('"chest pain"'))) == ["phrase0", "phrase1", "phrase2"]
    assert sorted(ids(ix.search('"chest pain"', SearchFilters(status="review")))) == ["phrase1", "phrase2"]
    assert sorted(ids(ix.search('chest NOT "chest pain"'))) == ["apart0", "apart1", "apart2"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("mrn:00482913", ["cardio", "lab"]),
        ("doc_type:lab_result", ["lab"]),
        ("status:review", ["smith"]),
        ("diab*", ["lab", "smith"]),
        ("chest AND NOT glucose", ["cardio"]),
        ("hypertension OR ulcer", ["cardio", "smith"]),
        ("doc_date:[2024-02-01 TO 2024-02-29]", ["lab", "smith"]),
        ("smith referral", ["undated"]),
    ],
)
def test_whoosh_query_syntax(clinic: WhooshIndex, query: str, expected: list[str]) -> None:
    assert sorted(ids(clinic.search(query))) == expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (SearchFilters(mrn="00482913"), ["cardio", "lab"]),
        (SearchFilters(doc_type="lab_result"), ["lab"]),
        (SearchFilters(status="review"), ["smith"]),
        (SearchFilters(date_from="2024-02-01", date_to="2024-02-29"), ["lab", "smith"]),
        (SearchFilters(date_from="2024-02-02"), ["smith"]),
        (SearchFilters(date_to="2024-01-10"), ["cardio"]),
        (SearchFilters(mrn="00771234", status="filed"), ["undated"]),
        (SearchFilters(mrn="00482913", status="review"), []),
    ],
)
def test_filters_narrow_a_query(clinic: WhooshIndex, filters: SearchFilters, expected: list[str]) -> None:
    assert sorted(ids(clinic.search("patient OR summary OR letter OR glucose OR chest", filters))) == expected


def test_a_date_range_filter_spans_many_dates(ix: WhooshIndex) -> None:
    days = [f"2023-{month:02d}-{day:02d}" for month in range(1, 13) for day in (1, 15, 28)]
    ix.add([record(f"d{day}", doc_date=day, content="annual review") for day in days])
    ix.add([record("undated", doc_date=None, content="annual review")], merge=False)
    hits = ix.search("annual", SearchFilters(date_from="2023-03-15", date_to="2023-06-01", status="filed"), limit=50)
    assert sorted(ids(hits)) == [
        "d2023-03-15",
        "d2023-03-28",
        "d2023-04-01",
        "d2023-04-15",
        "d2023-04-28",
        "d2023-05-01",
        "d2023-05-15",
        "d2023-05-28",
        "d2023-06-01",
    ]


def test_filters_do_not_change_scores(clinic: WhooshIndex) -> None:
    plain = {hit.doc_id: hit.score for hit in clinic.search("diabetes")}
    narrowed = {hit.doc_id: hit.score for hit in clinic.search("diabetes", SearchFilters(status="review"))}
    assert narrowed == {"smith": plain["smith"]}


def test_empty_query_lists_newest_first(clinic: WhooshIndex) -> None:
    assert ids(clinic.search("")) == ["smith", "lab", "cardio", "undated"]
    listed = clinic.search("  ", SearchFilters(mrn="00482913"))
    assert ids(listed) == ["lab", "cardio"]
    assert listed[0].snippet.startswith("Glucose 182 mg/dL")
    assert ids(clinic.search("*", limit=2)) == ["smith", "lab"]


def test_limit_caps_hits(clinic: WhooshIndex) -> None:
    assert len(clinic.search("00771234 OR 00482913", limit=3)) == 3


def test_stored_fields_are_not_searchable(clinic: WhooshIndex) -> None:
    with pytest.raises(IndexFailure, match=r"cannot understand the search 'pages:2'.*one of content, dob"):
        clinic.search("pages:2")


@pytest.mark.parametrize("query", ["(chest", "AND", "mrn:", "doc_date:[2024 TO"])
def test_broken_syntax_falls_back_without_raising(clinic: WhooshIndex, query: str) -> None:
    assert isinstance(clinic.search(query), list)


@pytest.mark.parametrize("query", ['"unclosed phrase', 'chest "pain" "again'])
def test_an_unclosed_phrase_is_refused_rather_than_guessed(clinic: WhooshIndex, query: str) -> None:
    # Whoosh would close it at the end of the search: another search than the one meant.
    with pytest.raises(BadQuery, match="unclosed double quote"):
        clinic.search(query)
    assert isinstance(clinic.search("o'brien"), list)


def test_add_replaces_by_doc_id(clinic: WhooshIndex) -> None:
    clinic.add([record("lab", content="Potassium 5.9 repeat ordered.", doc_type="lab_result")])
    assert clinic.count() == 4
    assert ids(clinic.search("potassium")) == ["lab"]
    assert clinic.search("glucose") == []


def test_a_doc_id_repeated_in_one_batch_keeps_the_last(ix: WhooshIndex) -> None:
    assert ix.add([record("a", content="first version"), record("a", content="second version")]) == 1
    assert ix.count() == 1
    assert ids(ix.search("second")) == ["a"]
    assert ix.search("first") == []


def test_delete_removes_only_those_given(clinic: WhooshIndex) -> None:
    assert clinic.delete(["lab", "missing"]) == 1
    assert clinic.count() == 3
    assert clinic.search("glucose") == []
    assert clinic.delete([]) == 0


def test_doc_ids_for_source(ix: WhooshIndex) -> None:
    ix.add([record("b", source_sha256="s1"), record("a", source_sha256="s1"), record("c", source_sha256="s2")])
    assert ix.doc_ids_for_source("s1") == ["a", "b"]
    assert ix.doc_ids_for_source("s3") == []


def test_get_returns_the_stored_record_by_doc_id(ix: WhooshIndex) -> None:
    assert ix.get("full") is None
    full = record("full", review_reason="low confidence MRN", status="review", pages=7)
    ix.add([full, record("other")])
    ix.add([record("later")], merge=False)
    assert ix.get("full") == full
    assert ix.get("later") == record("later")
    assert ix.get("missing") is None
    ix.delete(["full"])
    assert ix.get("full") is None


def test_stored_round_trips_every_field(ix: WhooshIndex) -> None:
    full = record("full", review_reason="low confidence MRN", status="review", pages=7)
    sparse = record("sparse", mrn=None, patient_name=None, dob=None, doc_date=None, content="")
    ix.add([full, sparse])
    assert sorted(ix.stored(), key=lambda r: r.doc_id) == [full, sparse]


def test_bulk_load_without_merging_then_optimize(ix: WhooshIndex, index_dir: Path) -> None:
    for n in range(3):
        ix.add([record(f"d{n}", content=f"batch {n} text")], merge=False)
    assert len(whoosh_index.open_dir(str(index_dir))._segments()) == 3
    ix.optimize()
    assert len(whoosh_index.open_dir(str(index_dir))._segments()) == 1
    assert sorted(ids(ix.search("batch"))) == ["d0", "d1", "d2"]
    assert ix.get("d1").content == "batch 1 text"
    ix.add([record("d1", content="replaced")])
    assert sorted(ids(ix.search("batch"))) == ["d0", "d2"]


def test_short_posting_lists_are_kept_in_the_term_table(ix: WhooshIndex, index_dir: Path) -> None:
    ix.add([record("a", content="rare words"), record("b", content="words")])
    with whoosh_index.open_dir(str(index_dir)).reader() as reader:
        assert reader.term_info("doc_id", "a").is_inlined()
        assert reader.term_info("content", "word").is_inlined()
    assert "**rare**" in ix.search("rare")[0].snippet


def test_rebuild_swaps_in_a_fresh_index(clinic: WhooshIndex, index_dir: Path) -> None:
    other_handle = WhooshIndex(index_dir, FAST)
    assert other_handle.count() == 4
    fresh = [record("new1", content="Echocardiogram normal."), record("new2", content="MRI of the knee.")]
    assert clinic.rebuild(iter(fresh)) == 2
    assert sorted(r.doc_id for r in clinic.stored()) == ["new1", "new2"]
    assert ids(other_handle.search("echocardiogram")) == ["new1"]
    assert other_handle.search("hypertension") == []
    assert sorted(p.name for p in index_dir.parent.iterdir()) == ["index"]
    assert stat.S_IMODE(index_dir.stat().st_mode) == 0o700
    clinic.add([record("new3", content="Added after the rebuild.")])
    assert clinic.count() == 3


def test_rebuild_of_a_missing_index(ix: WhooshIndex) -> None:
    assert ix.rebuild([record("a")]) == 1
    assert ids(ix.search("clinic")) == ["a"]


def test_a_failed_rebuild_leaves_the_live_index(clinic: WhooshIndex, index_dir: Path) -> None:
    def broken():
        # Past Whoosh's batch of 100, so the sub-processes are already working.
        yield from (record(f"x{n}") for n in range(150))
        raise RuntimeError("sidecar unreadable")

    with pytest.raises(RuntimeError):
        clinic.rebuild(broken())
    assert clinic.count() == 4
    assert sorted(p.name for p in index_dir.parent.iterdir()) == ["index"]


def test_a_large_batch_is_written_in_parallel(clinic: WhooshIndex, monkeypatch) -> None:
    monkeypatch.setattr(whoosh_module, "_PARALLEL_MIN_BATCH", 3)
    batch = [record("lab", content="Replaced lab text."), *(record(f"p{n}", content="parallel") for n in range(4))]
    assert clinic.add(batch) == 5
    assert clinic.count() == 8
    assert ids(clinic.search("replaced")) == ["lab"]
    assert sorted(ids(clinic.search("parallel"))) == ["p0", "p1", "p2", "p3"]


def test_a_failed_sub_process_is_reported(clinic: WhooshIndex, index_dir: Path) -> None:
    # The parent only hands documents over; a bad value fails in the child.
    with pytest.raises(IndexFailure, match="sub-process failed"):
        clinic.rebuild([record("bad", content=12345)])
    assert clinic.count() == 4
    assert sorted(p.name for p in index_dir.parent.iterdir()) == ["index"]


@pytest.fixture
def held_writer(clinic: WhooshIndex, index_dir: Path):
    """A writer of 'another process' holding the index lock mid-write."""
    writer = whoosh_index.open_dir(str(index_dir)).writer()
    writer.add_document(doc_id="pending", status="filed", doc_type="note", path="p", content="uncommitted words")
    yield writer
    if not writer.is_closed:
        writer.cancel()


def test_readers_see_the_last_commit_during_a_write(clinic: WhooshIndex, held_writer) -> None:
    assert clinic.count() == 4
    assert clinic.search("uncommitted") == []
    assert sorted(ids(clinic.search("diabetes"))) == ["lab", "smith"]
    held_writer.commit()
    assert ids(clinic.search("uncommitted")) == ["pending"]


def test_writing_while_another_writer_holds_the_lock(clinic: WhooshIndex, held_writer) -> None:
    with pytest.raises(IndexBusyError, match="another medarchive process is writing the index"):
        clinic.add([record("late")])
    with pytest.raises(IndexBusyError):
        clinic.delete(["lab"])
    with pytest.raises(IndexBusyError):
        clinic.rebuild([record("late")])
    held_writer.cancel()
    assert clinic.add([record("late")]) == 1
    assert clinic.count() == 5


def test_creating_the_index_waits_for_the_lock(ix: WhooshIndex, index_dir: Path) -> None:
    index_dir.mkdir(parents=True)
    lock = FileStorage(str(index_dir)).lock("MAIN_WRITELOCK")
    assert lock.acquire()
    try:
        with pytest.raises(IndexBusyError):
            ix.add([record("a")])
    finally:
        lock.release()
    assert ix.add([record("a")]) == 1


def test_close_drops_the_handle(clinic: WhooshIndex) -> None:
    clinic.close()
    assert clinic.count() == 4


# -- the schema's own analysis and encoding, and the bulk ranking ---------------

ANALYSED_TEXTS = [
    "The patient was seen. Chest pain radiating to the left arm!",
    "a I x of the and: U.S.A. 3.5mg e.g. x-ray 12/03/2024 O'Brien naïve café MRN:00482913",
    "Running runs ran runner's; stemming-tests\tand\nnewlines  in   between",
    "",
    "   ",
    "the of and",
    "İstanbul STRASSE straße ΣΊΣΥΦΟΣ 日本語のテキスト",
]


@pytest.mark.parametrize("text", ANALYSED_TEXTS)
def test_fast_index_analysis_matches_the_analyzer(text: str) -> None:
    analyzer = ContentAnalyzer()
    expected: dict[str, list[int]] = {}
    for token in analyzer(text, positions=True, chars=True, mode="index"):
        expected.setdefault(token.text, []).extend((token.pos, token.startchar, token.endchar))
    assert analyzer.index_tokens(text) == expected


def test_postings_keep_positions_and_characters(ix: WhooshIndex, index_dir: Path) -> None:
    ix.add([record("a", content="Pain, then chest pain again")])
    with whoosh_index.open_dir(str(index_dir)).searcher() as searcher:
        postings = searcher.postings("content", "pain")
        assert postings.value_as("positions") == [0, 3]
        assert postings.value_as("characters") == [(0, 0, 4), (3, 17, 21)]
        assert postings.weight() == 2


def phrase_corpus() -> list[IndexRecord]:
    texts = {
        "exact": "Noted shortness of breath on exertion.",
        "stopword": "shortness and breath",  # stop words do not count, as in Whoosh
        "apart": "shortness noted, breath normal",
        "reversed": "breath shortness",
        "twice": "shortness of breath at rest and shortness of breath walking",
        "across": "Patient reports shortness\nof breath.",
        "three": "follow up in two weeks",
        "three-broken": "follow up later, in two weeks time we follow",
    }
    return [record(doc_id, content=text) for doc_id, text in texts.items()]


def test_phrase_finds_exactly_the_documents_with_the_words_in_a_row(ix: WhooshIndex) -> None:
    corpus = phrase_corpus()
    # Spread over segments, with a replaced document among them.
    ix.add(corpus[:3])
    ix.add(corpus[3:6], merge=False)
    ix.add([*corpus[6:], record("apart", content="breath shortness noted")], merge=False)
    assert sorted(ids(ix.search('"shortness of breath"'))) == ["across", "exact", "stopword", "twice"]
    assert sorted(ids(ix.search('"breath shortness"'))) == ["apart", "reversed"]
    assert ids(ix.search('"follow up in two weeks"')) == ["three"]
    assert sorted(ids(ix.search('"shortness of breath" OR "two weeks"'))) == [
        "across",
        "exact",
        "stopword",
        "three",
        "three-broken",
        "twice",
    ]
    assert sorted(ids(ix.search('shortness NOT "shortness of breath"'))) == ["apart", "reversed"]
    hit = next(h for h in ix.search('"shortness of breath"') if h.doc_id == "exact")
    assert "**shortness** of **breath**" in hit.snippet


def test_phrase_hits_are_checked_until_the_limit_is_filled(ix: WhooshIndex) -> None:
    # The documents with both words apart score higher (more occurrences), so
    # they come first among the candidates and must be passed over.
    ix.add([record(f"apart{n}", content="chest chest chest noted pain pain pain") for n in range(30)])
    ix.add([record(f"phrase{n}", content="chest pain") for n in range(3)], merge=False)
    assert sorted(ids(ix.search('"chest pain"', limit=2))) == ["phrase0", "phrase1"]
    assert sorted(ids(ix.search('"chest pain"', limit=10))) == ["phrase0", "phrase1", "phrase2"]


def test_common_term_with_a_date_range_ranks_by_relevance(ix: WhooshIndex) -> None:
    # Every text five words long, so that only the count of the word decides.
    records = [
        record(
            f"d{n:02d}",
            doc_date=f"2023-{1 + n % 12:02d}-10",
            content=("cough " * (1 + n % 4) + "fever " * (4 - n % 4)).strip(),
        )
        for n in range(48)
    ]
    ix.add(records[:20])
    ix.add(records[20:], merge=False)
    hits = ix.search("cough", SearchFilters(date_from="2023-03-01", date_to="2023-05-31"), limit=50)
    expected = [r.doc_id for r in records if "2023-03-01" <= r.doc_date <= "2023-05-31"]
    assert sorted(ids(hits)) == expected
    # More occurrences of the word first; equal scores keep the index order.
    assert ids(hits) == sorted(expected, key=lambda d: (-records[int(d[1:])].content.count("cough"), d))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all("**cough**" in h.snippet for h in hits)


RANKED_QUERIES = [
    ("pain", SearchFilters()),
    ("pain", SearchFilters(date_from="2023-02-01", date_to="2023-09-30")),
    ('"chest pain"', SearchFilters()),
    ('"chest pain" AND fever', SearchFilters(status="review")),
    ('chest NOT "chest pain"', SearchFilters()),
    ('"chest pain fever"', SearchFilters()),
    ('"pain of the chest" OR "fever rash"', SearchFilters()),
    ('"noted left" AND NOT "left chest"', SearchFilters()),
    ("jane doe", SearchFilters(doc_type="lab_result")),
    ("fever OR cough OR rash", SearchFilters()),
    ("diab* AND pain", SearchFilters()),
    ("(chest OR fever) AND NOT cough", SearchFilters(mrn="00482913")),
    ("name:smith^3 pain", SearchFilters()),
    ('"pain in the chest"~2', SearchFilters()),
    ("doc_type:lab_result fever", SearchFilters()),
]


@pytest.fixture
def ranked_corpus(ix: WhooshIndex) -> WhooshIndex:
    import random

    rng = random.Random(7)
    words = ["chest", "pain", "fever", "cough", "rash", "diabetes", "diabetic", "the", "of", "in", "noted", "left"]
    names = ["DOE, JANE", "SMITH, JOHN", "PAIN, ANNA"]
    batch = []
    for n in range(240):
        batch.append(
            record(
                f"r{n:03d}",
                patient_name=rng.choice(names),
                mrn=rng.choice(["00482913", "00771234"]),
                status=rng.choice(["filed", "filed", "review"]),
                doc_type=rng.choice(["lab_result", "consultation", "progress_note"]),
                doc_date=f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                content=" ".join(rng.choices(words, k=rng.randint(3, 40))),
            )
        )
        if len(batch) == 60:
            ix.add(batch, merge=False)
            batch = []
    ix.delete([f"r{n:03d}" for n in range(0, 240, 7)])
    return ix


@pytest.mark.parametrize(("query", "filters"), RANKED_QUERIES)
def test_bulk_ranking_gives_whooshs_ranking(
    ranked_corpus: WhooshIndex, index_dir: Path, query: str, filters: SearchFilters
) -> None:
    with whoosh_index.open_dir(str(index_dir)).searcher() as searcher:
        parsed = parse_query(query, searcher.schema)
        narrowing = filter_query(filters)
        # All matches: at the limit Whoosh's collector breaks ties of equal
        # scores inconsistently.
        fast = ranked(searcher, parsed, narrowing, 1000, SegmentCaches())
        slow = whoosh_ranked(searcher, parsed, narrowing, 1000, SegmentCaches())
    assert slow, "the query should match something"
    assert fast == sorted(fast, key=lambda pair: (-pair[0], pair[1]))
    if '"' in query.replace('NOT "', ""):
        # Phrases match the same documents, ranked by how often the phrase
        # (not each of its words) occurs in them.
        assert sorted(docnum for _, docnum in fast) == sorted(docnum for _, docnum in slow)
    else:
        assert {docnum: pytest.approx(score, rel=1e-9) for score, docnum in slow} == {
            docnum: score for score, docnum in fast
        }


def test_an_index_of_an_older_schema_asks_for_a_reindex(ix: WhooshIndex, index_dir: Path) -> None:
    from whoosh.fields import ID, TEXT, Schema

    index_dir.mkdir(parents=True)
    old = whoosh_index.create_in(
        str(index_dir), Schema(doc_id=ID(unique=True, stored=True), content=TEXT(stored=True, chars=True))
    )
    with old.writer() as writer:
        writer.add_document(doc_id="a", content="old index")
    for call in (lambda: ix.search("old"), ix.count, lambda: ix.add([record("b")]), lambda: ix.get("a")):
        with pytest.raises(IndexFailure, match="medarchive reindex"):
            call()
    assert ix.rebuild([record("b", content="rebuilt")]) == 1
    assert ids(ix.search("rebuilt")) == ["b"]


def test_kept_posting_lists_follow_deletions_and_new_documents(ix: WhooshIndex) -> None:
    ix.caches.list_kept_from = 1
    many = whoosh_codec.INLINE_POSTINGS + 5  # a posting list of its own, not inline
    ix.add([record(f"d{n:03d}", content=f"Patient seen, visit {n}.") for n in range(many)])
    first = {h.doc_id for h in ix.search("patient", limit=1000)}
    assert len(first) == many and ix.caches.lists
    ix.delete(["d002"])
    ix.add([record("new", content="Patient seen again.")])
    assert {h.doc_id for h in ix.search("patient", limit=1000)} == first - {"d002"} | {"new"}


def test_long_posting_lists_read_documents_and_weights_without_positions(
    ix: WhooshIndex, index_dir: Path, monkeypatch
) -> None:
    # Several blocks (Whoosh writes 128 postings a block), each word count and position different.
    texts = {f"d{n:03d}": "filler " * (n % 7) + "pain " * (1 + n % 3) for n in range(300)}
    ix.add([record(doc_id, content=text) for doc_id, text in texts.items()])
    unpacked: list[int] = []
    real_decompress = whoosh_codec.zlib.decompress
    monkeypatch.setattr(
        whoosh_codec.zlib, "decompress", lambda data: unpacked.append(len(real := real_decompress(data))) or real
    )
    with whoosh_index.open_dir(str(index_dir)).reader() as reader:
        docnums = {reader.stored_fields(d)["doc_id"]: d for d in range(reader.doc_count_all())}
        matcher = reader._terms.matcher("content", b"pain", reader.schema["content"].format)
        assert isinstance(matcher, whoosh_codec.SplitBlockMatcher)
        unpacked.clear()
        ids, weights, _ = whoosh_codec.read_all(matcher, values=False)
        assert sum(unpacked) == 8 * len(texts)  # a document number and a weight each, nothing more
        assert dict(zip(ids, weights, strict=True)) == {docnums[d]: 1 + int(d[1:]) % 3 for d in texts}
        matcher.reset()
        ids, _, values = whoosh_codec.read_all(matcher, values=True)
        fmt = reader.schema["content"].format
        assert {d: fmt.decode_positions(v) for d, v in zip(ids, values, strict=True)} == {
            docnums[d]: list(range(int(d[1:]) % 7, int(d[1:]) % 7 + 1 + int(d[1:]) % 3)) for d in texts
        }
    assert len(ix.search("pain", limit=500)) == len(texts)


def test_warm_reads_each_segments_lengths_and_dates_ahead(ix: WhooshIndex, index_dir: Path) -> None:
    ix.warm()  # nothing to read yet
    ix.add([record("a", doc_date="2024-01-02")], merge=False)
    ix.add([record("b", doc_date="2023-05-06")], merge=False)
    ix.warm()
    segments = {segment.segment_id() for segment in whoosh_index.open_dir(str(index_dir))._segments()}
    assert len(segments) == 2
    assert set(ix.caches.lengths) == {(s, f) for s in segments for f in ("content", "patient_name")}
    assert {key[:2] for key in ix.caches.norms} == set(ix.caches.lengths)
    assert set(ix.caches.sorted_columns) == {(s, "doc_date") for s in segments}


def _merge_corpus(ix: WhooshIndex) -> None:
    """Three segments: long lists (several blocks), short (inline) ones, absent
    fields, a replaced document, deleted ones, a term left only in deleted ones."""
    words = ["chest", "pain", "fever", "cough", "rash", "edema", "nausea"]
    for batch in range(3):
        ix.add(
            [
                record(
                    f"d{batch}-{n:03d}",
                    mrn=f"{n % 9:08d}",
                    patient_name=None if n % 5 == 0 else f"DOE, JANE{n % 4}",
                    doc_date=None if n % 7 == 0 else f"20{10 + n % 13}-0{1 + n % 9}-1{n % 10}",
                    content=" ".join(words[(n + k) % 7] for k in range(n % 11 + 1)) + f" note{batch}x{n % 13}",
                )
                for n in range(150)
            ],
            merge=False,
        )
    ix.add([record("d0-004", content="replaced with a new text")], merge=False)
    ix.add([record("solo", content="onlyhere once")], merge=False)
    ix.delete(["d1-010", "d2-149", "d0-000", "solo"])


def _everything(index_dir: Path) -> dict:
    ix = whoosh_index.open_dir(str(index_dir))
    with ix.reader() as reader:
        docs = list(reader.all_doc_ids())
        return {
            "segments": len(ix._segments()),
            "postings": list(reader.iter_postings()),
            "terms": [
                (term, reader.doc_frequency(*term), reader.frequency(*term), reader.term_info(*term).max_weight())
                for term in reader.all_terms()
            ],
            "stored": list(reader.all_stored_fields()),
            "lengths": {
                f: ([reader.doc_field_length(d, f) for d in docs], reader.field_length(f), reader.max_field_length(f))
                for f in ("content", "patient_name")
            },
            "dates": list(reader.column_reader("doc_date")),
        }


def _term_table(index_dir: Path) -> list[tuple[bytes, bytes]]:
    with whoosh_index.open_dir(str(index_dir)).reader() as reader:
        return [item for sub in reader.leaf_readers() for item in sub[0]._terms._tindex.items()]


def test_bulk_writes_what_whooshs_writer_and_merge_write(tmp_path: Path, monkeypatch) -> None:
    by_whoosh, bulk = WhooshIndex(tmp_path / "whoosh", FAST), WhooshIndex(tmp_path / "bulk", FAST)
    with monkeypatch.context() as whoosh_only:  # a posting at a time, through Whoosh's own calls
        whoosh_only.setattr(whoosh_codec.Codec, "field_writer", whoosh_codec.W3Codec.field_writer)
        _merge_corpus(by_whoosh)
        unmerged = _term_table(tmp_path / "whoosh")
        by_whoosh._lock_writer(by_whoosh._open()).commit(optimize=True)

    def refuse(writer, segments):
        raise AssertionError("merged by Whoosh, not in bulk")

    monkeypatch.setattr(whoosh_codec, "OPTIMIZE", refuse)
    _merge_corpus(bulk)
    assert _term_table(tmp_path / "bulk") == unmerged  # the same bytes, term infos and all
    bulk.optimize()
    assert _term_table(tmp_path / "bulk") == _term_table(tmp_path / "whoosh")
    expected, merged = _everything(tmp_path / "whoosh"), _everything(tmp_path / "bulk")
    assert (
        merged["segments"] == 1
        and merged["stored"]
        and ("content", b"onlyher") not in dict.fromkeys(term for term, *_ in merged["terms"])
    )
    assert merged == expected
    for query in ("chest", '"pain fever"', "note1x3 OR rash", "replaced", "jane2"):
        assert bulk.search(query, limit=500) == by_whoosh.search(query, limit=500)


def test_bulk_merge_leaves_new_documents_to_whoosh(ix: WhooshIndex, index_dir: Path) -> None:
    ix.add([record("a", content="first segment")], merge=False)
    ix.add([record("b", content="second segment")], merge=False)
    with ix._writer(ix._open(), merge=True) as writer:
        writer.add_document(**fields_of(record("c", content="third segment")))
        writer.mergetype = whoosh_codec.merge_all
    assert len(whoosh_index.open_dir(str(index_dir))._segments()) == 1
    assert sorted(ids(ix.search("segment"))) == ["a", "b", "c"]


def test_values_and_inlined_postings_are_pickled_with_a_bytes_opcode(ix: WhooshIndex, index_dir: Path) -> None:
    # Protocol 2 (Whoosh's) would pickle each bytes value through codecs.encode.
    ix.add([record(f"d{n:03d}", content="pain " * (1 + n % 3)) for n in range(200)])
    with whoosh_index.open_dir(str(index_dir)).reader() as reader:
        inlined = reader._terms._tindex[reader._terms._keycoder("doc_id", b"d007")]
        assert inlined[whoosh_codec.TermInfo._struct.size :][:2] == b"\x80\x05"
        matcher = reader._terms.matcher("content", b"pain", reader.schema["content"].format)
        start = matcher._dataoffset + whoosh_codec._HEAD_SIZE.size + matcher._head_size()
        values = whoosh_codec.zlib.decompress(matcher._postfile.get(start, matcher._nextoffset - start))
        assert values[:2] == b"\x80\x05"
        matcher._read_values()
        assert [len(value) for value in matcher._values] == [12 * (1 + n % 3) for n in range(128)]


def test_lookups_through_kept_block_directories_find_the_same_documents(ix: WhooshIndex) -> None:
    texts = {
        f"d{n:03d}": ("chest pain again" if n % 7 == 0 else "again chest and then pain") + f" visit{n % 5}"
        for n in range(400)
    }  # lists of several blocks each
    ix.add([record(doc_id, content=text) for doc_id, text in texts.items()])
    expected = {doc_id for doc_id, text in texts.items() if "chest pain again" in text}
    found = {}
    for kept_from in (10**9, 1):  # without directories, then with them for every list
        ix.caches.list_kept_from = kept_from
        found[kept_from] = [hit.doc_id for hit in ix.search('"chest pain again" visit3', limit=500)]
    assert ix.caches.blocks
    assert found[1] == found[10**9] and set(found[1]) == {d for d in expected if texts[d].endswith("visit3")}
