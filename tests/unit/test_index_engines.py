"""The index's behaviour and search semantics on both engines (issue 26): every test here runs
against a Whoosh index in tmp_path and a PostgreSQL index in a fresh database of a real cluster."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from indexers.base import Index, IndexFailure, IndexOptions, IndexRecord, SearchFilters, SearchTooBroad
from indexers.postgres.facade import PostgresIndex
from indexers.whoosh.facade import WhooshIndex
from pipeline.core.config import DEFAULT_TYPE_SYNONYMS

SYNONYMS = {doc_type: tuple(words) for doc_type, words in DEFAULT_TYPE_SYNONYMS.items()}
OPTIONS = IndexOptions(writer_timeout_seconds=2, type_synonyms=SYNONYMS)


@pytest.fixture(params=["whoosh", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path):
    """A factory of empty indexes of one engine: engine(options) -> Index."""
    made: list[Index] = []

    def make(options: IndexOptions = OPTIONS) -> Index:
        if request.param == "whoosh":
            index: Index = WhooshIndex(tmp_path / f"index{len(made)}", options)
        else:
            index = PostgresIndex(request.getfixturevalue("pg_url"), options)
        made.append(index)
        return index

    yield make
    for index in made:
        index.close()


def record(doc_id: str, **overrides) -> IndexRecord:
    values: dict[str, object] = {
        "doc_id": doc_id,
        "status": "filed",
        "mrn": "00482913",
        "patient_name": "DOE, JANE",
        "dob": "1961-04-12",
        "doc_type": "progress_note",
        "doc_date": "2024-03-05",
        "pages": 2,
        "path": f"archive/00482913/{doc_id}.pdf",
        "sha256": f"sha-{doc_id}",
        "source_sha256": f"src-{doc_id}",
        "source_file": f"scan-{doc_id}.pdf",
        "review_reason": None,
        "content": f"Progress note {doc_id}. Patient seen in clinic today.",
    }
    values.update(overrides)
    return IndexRecord(**values)


CLINIC = [
    record(
        "cardio",
        doc_type="consultation",
        doc_date="2024-01-10",
        content="Consultation for chest pain radiating to the left arm. History of hypertension.",
    ),
    record(
        "lab",
        doc_type="lab_result",
        doc_date="2024-02-01",
        content="Glucose 182 mg/dL flagged high. Pain in the chest was not reported. Diabetes follow-up.",
    ),
    record(
        "smith",
        mrn="00771234",
        patient_name="SMITH, JOHN",
        status="review",
        review_reason="MRN unreadable",
        doc_date="2024-02-29",
        content="Discharge summary. Diabetic foot ulcer, healing well.",
    ),
    record(
        "undated",
        mrn="00771234",
        patient_name="SMITH, JOHN",
        doc_date=None,
        content="Referral letter without a date.",
    ),
]


def clerk(doc_id: str, name: str, mrn: str, doc_type: str, content: str) -> IndexRecord:
    return record(doc_id, patient_name=name, mrn=mrn, doc_type=doc_type, dob=None, content=content)


CLERK_CORPUS = [
    clerk(
        "cal-xr",
        "CALDERON, CHRISTINE",
        "10000001",
        "radiology_report",
        "Chest two views. Impression: no acute process.",
    ),
    clerk("cal-note", "CALDERON, CHRISTINE", "10000001", "progress_note", "Seen in clinic for cough. Chest clear."),
    clerk("cal-lab", "CALDERON, CHRISTINE", "10000001", "lab_result", "Glucose 98. Radiology follow-up requested."),
    clerk("kim-xr", "KIM, DAVID", "10000002", "radiology_report", "Left knee three views: no fracture."),
    clerk(
        "mcc-consult",
        "MCCLAIN, JOHN",
        "10000003",
        "consultation",
        "Asked to see this patient with atrial fibrillation.",
    ),
    clerk("mec-consult", "MECLAIN, JOHN", "10000003", "consultation", "Asked to see this patient for syncope."),
    clerk("mcc-note", "MCCLAIN, JOHN", "10000003", "progress_note", "Atrial fibrillation, rate controlled."),
    clerk("ruiz-op", "RUIZ, ANA", "10000004", "operative_report", "Laparoscopic cholecystectomy. Blood loss minimal."),
    clerk("ruiz-note", "RUIZ, ANA", "10000004", "progress_note", "Post op check, wound clean, note the staples."),
    clerk("ruiz-visit", "RUIZ, ANA", "10000004", "progress_note", "Wound healed, staples out."),
    clerk("lee-note", "LEE, MAY", "10000005", "progress_note", "Annual visit, well."),
    clerk("leo-note", "LEO, MAX", "10000006", "progress_note", "Annual visit, well."),
    clerk("king-hp", "KING, ROSE", "10000007", "history_physical", "Chief complaint: chest pain. H&P on admission."),
]


@pytest.fixture
def clinic(engine) -> Index:
    index = engine()
    index.add(CLINIC)
    return index


@pytest.fixture
def corpus(engine) -> Index:
    index = engine()
    index.add(CLERK_CORPUS[:6])
    index.add(CLERK_CORPUS[6:], merge=False)
    return index


def ids(hits) -> list[str]:
    return [hit.doc_id for hit in hits]


# -- writing and reading back ----------------------------------------------------------


def test_an_empty_index_reads_as_empty(engine) -> None:
    index = engine()
    assert index.search("pain") == []
    assert index.search("") == []
    assert index.count() == 0
    assert list(index.stored()) == []
    assert index.doc_ids_for_source("src-x") == []
    assert index.delete(["x"]) == 0
    assert index.get("x") is None


def test_records_round_trip(engine) -> None:
    index = engine()
    full = record("full", review_reason="low confidence MRN", status="review", pages=7)
    sparse = record("sparse", mrn=None, patient_name=None, dob=None, doc_date=None, content="")
    index.add([full, sparse])
    assert sorted(index.stored(), key=lambda r: r.doc_id) == [full, sparse]
    assert index.get("full") == full
    assert index.count() == 2


def test_add_replaces_by_doc_id_and_delete_removes(clinic: Index) -> None:
    clinic.add([record("lab", content="Potassium 5.9 repeat ordered.", doc_type="lab_result")])
    assert clinic.count() == 4
    assert ids(clinic.search("potassium")) == ["lab"]
    assert clinic.search("glucose") == []
    assert clinic.delete(["lab", "missing"]) == 1
    assert clinic.search("potassium") == []
    assert clinic.count() == 3


def test_a_doc_id_repeated_in_one_batch_keeps_the_last(engine) -> None:
    index = engine()
    assert index.add([record("a", content="first version"), record("a", content="second version")]) == 1
    assert ids(index.search("second")) == ["a"]
    assert index.search("first") == []


def test_doc_ids_for_source(engine) -> None:
    index = engine()
    index.add([record("b", source_sha256="s1"), record("a", source_sha256="s1"), record("c", source_sha256="s2")])
    assert index.doc_ids_for_source("s1") == ["a", "b"]


def test_rebuild_replaces_everything(clinic: Index) -> None:
    assert clinic.rebuild([record("fresh", content="only this one")]) == 1
    assert clinic.count() == 1
    assert ids(clinic.search("only")) == ["fresh"]
    assert clinic.search("glucose") == []
    clinic.optimize()
    assert ids(clinic.search("only")) == ["fresh"]


# -- search semantics --------------------------------------------------------------------


def test_search_ranks_and_highlights(clinic: Index) -> None:
    hits = clinic.search("hypertension")
    assert ids(hits) == ["cardio"]
    hit = hits[0]
    assert (hit.mrn, hit.patient_name, hit.doc_type, hit.doc_date, hit.status, hit.path) == (
        "00482913",
        "DOE, JANE",
        "consultation",
        "2024-01-10",
        "filed",
        "archive/00482913/cardio.pdf",
    )
    assert hit.score > 0
    assert "**hypertension**" in hit.snippet
    assert len(hit.snippet) <= 320


def test_stemming_and_highlighting_of_other_word_forms(clinic: Index) -> None:
    hits = clinic.search("diabetes")
    assert sorted(ids(hits)) == ["lab", "smith"]
    assert "**Diabetic**" in next(h for h in hits if h.doc_id == "smith").snippet


def test_a_match_deep_in_a_long_document_is_highlighted(engine) -> None:
    index = engine()
    index.add([record("long", content="filler words " * 4000 + "episode of tachycardia overnight")])
    assert "words episode of **tachycardia**" in index.search("tachycardia")[0].snippet


def test_phrase_and_wildcard_hits_are_highlighted(clinic: Index) -> None:
    assert "**chest** **pain**" in clinic.search('"chest pain"')[0].snippet
    assert "**Diabetic**" in clinic.search("diab* AND ulcer")[0].snippet


def test_the_snippet_falls_back_to_the_start_of_the_text(engine) -> None:
    index = engine()
    index.add([record("long", content="word " * 100)])
    assert index.search("00482913")[0].snippet == ("word " * 100)[:160]


@pytest.mark.parametrize("query", ["doe", "jane doe", "DOE, JANE", "Jane", "name:doe", "patient_name:jane"])
def test_a_patient_name_in_any_form(clinic: Index, query: str) -> None:
    assert sorted(ids(clinic.search(query))) == ["cardio", "lab"]


def test_phrases_need_the_words_in_order(clinic: Index) -> None:
    assert ids(clinic.search('"chest pain"')) == ["cardio"]
    assert sorted(ids(clinic.search("chest pain"))) == ["cardio", "lab"]
    assert sorted(ids(clinic.search('chest NOT "chest pain"'))) == ["lab"]


def test_a_phrase_of_three_words_and_stop_words(engine) -> None:
    index = engine()
    index.add(
        [
            record("row", content="pain in the left arm"),
            record("apart", content="left pain arm"),
            record("other", content="arm left pain"),
            record("pairs", content="pain left then left arm"),  # both pairs, not in a row
        ]
    )
    assert ids(index.search('"pain in the left arm"')) == ["row"]
    assert ids(index.search('"pain left arm"')) == ["row"]
    assert sorted(ids(index.search('"left arm"'))) == ["pairs", "row"]
    assert ids(index.search('"pain left arm" OR nothing')) == ["row"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("00771234", ["smith", "undated"]),
        ("mrn:00482913", ["cardio", "lab"]),
        ("doc_type:lab_result", ["lab"]),
        ("status:review", ["smith"]),
        ("diab*", ["lab", "smith"]),
        ("chest AND NOT glucose", ["cardio"]),
        ("hypertension OR ulcer", ["cardio", "smith"]),
        ("hypertension OR ulcer AND diabetic", ["cardio", "smith"]),
        ("doc_date:[2024-02-01 TO 2024-02-29]", ["lab", "smith"]),
        ("smith referral", ["undated"]),
        ("text:smith", []),
        ("(chest OR referral) smith", ["undated"]),
        ("NOT chest", ["smith", "undated"]),
    ],
)
def test_query_syntax(clinic: Index, query: str, expected: list[str]) -> None:
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
def test_filters_narrow_a_query(clinic: Index, filters: SearchFilters, expected: list[str]) -> None:
    assert sorted(ids(clinic.search("patient OR summary OR letter OR glucose OR chest", filters))) == expected


def test_filters_do_not_change_scores(clinic: Index) -> None:
    plain = {hit.doc_id: hit.score for hit in clinic.search("diabetes")}
    narrowed = {hit.doc_id: hit.score for hit in clinic.search("diabetes", SearchFilters(status="review"))}
    assert narrowed == {"smith": plain["smith"]}


def test_an_empty_query_lists_newest_first(clinic: Index) -> None:
    assert ids(clinic.search("")) == ["smith", "lab", "cardio", "undated"]
    listed = clinic.search("  ", SearchFilters(mrn="00482913"))
    assert ids(listed) == ["lab", "cardio"]
    assert listed[0].snippet.startswith("Glucose 182 mg/dL")
    assert ids(clinic.search("*", limit=2)) == ["smith", "lab"]


def test_limit_caps_hits(clinic: Index) -> None:
    assert len(clinic.search("00771234 OR 00482913", limit=3)) == 3


def test_an_unknown_field_is_refused_with_the_fields(clinic: Index) -> None:
    with pytest.raises(IndexFailure, match=r"cannot understand the search 'pages:2'.*one of content, dob"):
        clinic.search("pages:2")


def test_an_unclosed_quote_is_refused_on_both_engines(clinic: Index) -> None:
    with pytest.raises(IndexFailure, match="unclosed double quote"):
        clinic.search('"unclosed phrase')


@pytest.mark.parametrize("query", ["(chest", "AND", "mrn:", "doc_date:[2024 TO", "chest)", "OR OR"])
def test_broken_syntax_is_read_leniently(clinic: Index, query: str) -> None:
    assert isinstance(clinic.search(query), list)


# -- the clerk's words ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("calderon radiology", ["cal-lab", "cal-xr"]),
        ("radiology", ["cal-lab", "cal-xr", "kim-xr"]),
        ("x-ray kim", ["kim-xr"]),
        ("consult", ["mcc-consult", "mec-consult"]),
        ("op note", ["ruiz-note", "ruiz-op"]),
        ("surgery ruiz", ["ruiz-op"]),
        ("calderon consult", []),
        ("10000004 operative", ["ruiz-op"]),
        ("king h and p", ["king-hp"]),
        ("king h&p", ["king-hp"]),
        ("text:radiology", ["cal-lab"]),
        ("doc_type:radiology_report mrn:10000002", ["kim-xr"]),
        ("radiology NOT calderon", ["kim-xr"]),
        ("radiology NOT report", ["cal-lab", "cal-xr", "kim-xr"]),
        ("consult OR surgery", ["mcc-consult", "mec-consult", "ruiz-op"]),
        ('"atrial fibrillation" consult', ["mcc-consult"]),
        ('"op note"', []),
        ("note", ["ruiz-note"]),
        ("lee", ["lee-note"]),
        ("name:mcclain", ["mcc-consult", "mcc-note"]),
    ],
)
def test_plain_words_name_types_and_fields_keep_their_meaning(corpus: Index, query: str, expected: list[str]) -> None:
    assert sorted(ids(corpus.search(query))) == expected


def test_the_type_outranks_a_passing_mention(corpus: Index) -> None:
    assert ids(corpus.search("calderon radiology")) == ["cal-xr", "cal-lab"]
    assert ids(corpus.search("op note")) == ["ruiz-op", "ruiz-note"]


def test_a_name_one_edit_off_ranks_below_the_exact_name(corpus: Index) -> None:
    assert ids(corpus.search("mcclain consultation")) == ["mcc-consult", "mec-consult"]
    assert ids(corpus.search("meclain consultation")) == ["mec-consult", "mcc-consult"]
    assert ids(corpus.search("mcclain"))[-1] == "mec-consult"


# -- budgets -------------------------------------------------------------------------------


@pytest.fixture
def wide(engine) -> Index:
    index = engine(IndexOptions(writer_timeout_seconds=2))
    words = [f"wo{n:04d}x" for n in range(2000)]
    index.add([record(f"d{n:02d}", content="chest pain " + " ".join(words[n::40])) for n in range(20)])
    index.add([record(f"e{n:02d}", content=f"diabetic foot ulcer, chest pain {words[n]}") for n in range(20, 40)])
    return index


@pytest.mark.parametrize("query", ["?*", "*xy*", "pain AND *ab", "w*", "name:?oe", "mrn:*482913"])
def test_a_wildcard_needs_letters_before_it(wide: Index, query: str) -> None:
    with pytest.raises(SearchTooBroad, match=r"the search is too broad: a wildcard needs at least 2 letters before it"):
        wide.search(query)


def test_an_overlong_query_is_refused(wide: Index) -> None:
    with pytest.raises(SearchTooBroad, match=r"the search is too long \(501 characters, at most 500\)"):
        wide.search("p" * 501)
    assert wide.search("pain " * 99 + "pain")


def test_a_wildcard_or_range_matching_too_many_words_is_refused(wide: Index) -> None:
    with pytest.raises(SearchTooBroad, match=r"wo\* matches more than 300 different words; write more letters"):
        wide.search("wo*")
    with pytest.raises(SearchTooBroad, match="matches more than 300 different words"):
        wide.search("chest wo?*")
    with pytest.raises(SearchTooBroad, match=r"content:\[a TO z\] matches more than 300 .*; use a shorter range"):
        wide.search("content:[a TO z]")
    with pytest.raises(SearchTooBroad, match=r": \* matches more than 300 different words; leave the \* on its own"):
        wide.search("chest *")


def test_narrow_wildcards_and_ranges_still_work(wide: Index) -> None:
    assert sorted(ids(wide.search("wo001*", limit=100))) == [f"d{n:02d}" for n in range(10, 20)]
    assert sorted(ids(wide.search("wo001?x", limit=100))) == [f"d{n:02d}" for n in range(10, 20)]
    assert ids(wide.search("wo1979x")) == ["d19"]
    assert len(wide.search("diab* AND ulcer", limit=100)) == 20
    assert len(wide.search("doc_date:[2000-01-01 TO 2030-12-31] chest", limit=100)) == 40


def test_the_budgets_are_options(engine) -> None:
    index = engine(IndexOptions(min_wildcard_prefix=5, max_expansions=10, max_query_chars=30))
    index.add([record("a", content="diabetes diabetic " + " ".join(f"patie{n:02d}" for n in range(20)))])
    with pytest.raises(SearchTooBroad, match="at least 5 letters"):
        index.search("diab*")
    assert ids(index.search("diabe*")) == ["a"]
    with pytest.raises(SearchTooBroad, match="more than 10 different words"):
        index.search("patie*")
    with pytest.raises(SearchTooBroad, match="at most 30"):
        index.search("diabetes " * 4)


# -- hostile input -------------------------------------------------------------------------

HOSTILE = [
    "'; DROP TABLE medarchive_index.documents; --",
    "x' OR '1'='1",
    "\\'",
    "a\\",
    "') | ('b",
    "%s %(x)s {0}",
    "name:'); DELETE FROM medarchive_index.documents; --",
    "mrn:1' OR 1=1 --",
    'doc_type:"x\'; DROP TABLE x; --"',
    "doc_date:[2024' TO 2025']",
    "ab%_\\* ",
    "!(a) & b:* <-> c",
    "$$ $1 :: ::tsquery",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_in_every_field_is_only_ever_a_value(clinic: Index, text: str) -> None:
    for query in (text, f"name:{text}", f"text:{text}", f'"{text}"', f"mrn:{text}", f"chest {text}"):
        try:
            clinic.search(query)
        except SearchTooBroad:
            pass  # a wildcard budget: refused, not run
    for filters in (
        SearchFilters(mrn=text),
        SearchFilters(doc_type=text),
        SearchFilters(status=text),
        SearchFilters(date_from=text, date_to=text),
        SearchFilters(site=text),
    ):
        assert clinic.search("chest", filters) == []
    clinic.add([record(text, patient_name=text, mrn=text, content=text, source_sha256=text)])
    assert clinic.get(text) is not None
    assert clinic.doc_ids_for_source(text) == [text]
    assert clinic.delete([text]) == 1
    assert clinic.count() == len(CLINIC)
    assert sorted(ids(clinic.search("chest"))) == ["cardio", "lab"]


# -- sites (PostgreSQL) ----------------------------------------------------------------------


def test_sites_share_one_index_and_rebuild_apart(pg_url: str) -> None:
    index = PostgresIndex(pg_url, OPTIONS)
    try:
        index.add(
            [record("n1", site="north", content="north chest"), record("s1", site="south", content="south chest")]
        )
        assert sorted(ids(index.search("chest"))) == ["n1", "s1"]
        assert ids(index.search("chest", SearchFilters(site="south"))) == ["s1"]
        assert index.rebuild([record("n2", site="north", content="north again chest")], site="north") == 1
        assert sorted(ids(index.search("chest"))) == ["n2", "s1"]
        assert [r.doc_id for r in index.stored(site="north")] == ["n2"]
        assert index.get("s1").site == "south"  # type: ignore[union-attr]
    finally:
        index.close()


def test_whoosh_keeps_no_sites(tmp_path: Path) -> None:
    with pytest.raises(IndexFailure, match="keeps no sites"):
        WhooshIndex(tmp_path / "ix").rebuild([record("a")], site="north")


def test_a_search_past_its_time_budget_is_stopped(pg_url: str) -> None:
    index = PostgresIndex(pg_url, IndexOptions(search_seconds=0.001))
    try:
        index.add(
            [record(f"a{n}", content=" ".join(f"fever{n % 7} cough rash" for _ in range(300))) for n in range(400)]
        )
        with pytest.raises(SearchTooBroad, match=r"took longer than 0.001 s and was stopped"):
            for _ in itertools.repeat(None, 20):
                index.search("fever0 OR fever1 OR fever2 OR cough OR rash", limit=100)
    finally:
        index.close()


def test_a_database_that_is_not_there_is_a_clear_failure(tmp_path: Path) -> None:
    index = PostgresIndex(f"postgresql://nobody@/none?host={tmp_path}&port=1", OPTIONS)
    with pytest.raises(IndexFailure, match=r"cannot connect to the index database postgresql://nobody@/none: .*"):
        index.search("x")


def test_a_refused_password_is_named_without_the_password(pg_url: str, pg_cluster) -> None:
    pg_cluster.psql(
        "DO $$ BEGIN CREATE ROLE clerkdb LOGIN PASSWORD 'right-horse'; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )
    # trust auth lets every role in; a role that may not log in is refused as a bad password would be
    pg_cluster.psql("ALTER ROLE clerkdb NOLOGIN")
    url = pg_url.replace("postgres@", "clerkdb@")
    with pytest.raises(
        IndexFailure, match=r"cannot connect to the index database postgresql://clerkdb@/t_\w+: .*clerkdb"
    ) as refused:
        PostgresIndex(url, OPTIONS, password="wrong-battery").count()
    assert "wrong-battery" not in str(refused.value)


def test_a_newer_schema_is_refused(pg_url: str, pg_cluster) -> None:
    index = PostgresIndex(pg_url, OPTIONS)
    index.count()
    index.close()
    dbname = pg_url.split("@/", 1)[1].split("?", 1)[0]
    pg_cluster.psql("UPDATE medarchive_index.meta SET value = '99' WHERE key = 'version'", dbname)
    with pytest.raises(IndexFailure, match="schema version 99, newer than this medarchive knows"):
        PostgresIndex(pg_url, OPTIONS).count()


def test_a_long_page_of_hits_gets_every_match(engine) -> None:
    index = engine()
    index.add([record(f"f{n:03d}", content=f"fever {'cough ' * (n % 5)}") for n in range(260)])
    assert len(index.search("fever", limit=1000)) == 260
    assert len(index.search("fever", limit=250)) == 250


def test_a_very_long_document_is_indexed_whole(engine) -> None:
    index = engine()
    words = [f"w{n}x" for n in range(60_000)]
    index.add([record("long", content="early chest pain " + " ".join(words) + " late rare finding"), record("b")])
    assert ids(index.search('"chest pain"')) == ["long"]
    assert ids(index.search("w59999x")) == ["long"]
    assert ids(index.search("late finding")) == ["long"]


def test_concurrent_writers_and_a_rebuild_lose_nothing(pg_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    indexes = [PostgresIndex(pg_url, OPTIONS) for _ in range(3)]
    try:
        indexes[0].add([record("seed", content="first")])

        def write(n: int) -> None:
            # overlapping batches, in opposite orders
            batch = [record(f"d{i:03d}", content=f"fever {n}") for i in range(0, 120, 1 + n % 2)]
            for start in range(0, len(batch), 20):
                indexes[n % 2].add(batch[start : start + 20][:: 1 if n % 2 else -1])

        with ThreadPoolExecutor(4) as pool:
            writes = [pool.submit(write, n) for n in range(4)]
            # the archive holds every document: a rebuild in the middle loses none of them
            archive = [record("seed", content="rebuilt"), *(record(f"d{i:03d}") for i in range(120))]
            rebuilt = pool.submit(indexes[2].rebuild, archive)
            for future in [*writes, rebuilt]:
                future.result()
        assert sorted(r.doc_id for r in indexes[2].stored()) == ["d000", *(f"d{i:03d}" for i in range(1, 120)), "seed"]
        assert indexes[1].add([record("after", content="later")]) == 1  # the swapped-in table takes writes
        assert ids(indexes[0].search("later")) == ["after"]
    finally:
        for index in indexes:
            index.close()


def test_a_site_rebuild_takes_over_a_document_indexed_under_another_site(pg_url: str) -> None:
    index = PostgresIndex(pg_url, OPTIONS)
    try:
        index.add([record("moved", site="south", content="chest"), record("s2", site="south", content="chest")])
        assert index.rebuild([record("moved", site="north", content="chest again")], site="north") == 1
        assert index.get("moved").site == "north"  # type: ignore[union-attr]
        assert sorted(ids(index.search("chest"))) == ["moved", "s2"]
    finally:
        index.close()
