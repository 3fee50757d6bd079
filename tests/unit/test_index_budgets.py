"""Search budgets: no single search may hold a core (issue 16, item 4)."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

from indexers.base import IndexOptions, IndexRecord, SearchTooBroad
from indexers.whoosh.facade import WhooshIndex
from pipeline.archive.index import open_index
from pipeline.cli.main import main
from pipeline.core.config import load_config
from pipeline.core.errors import MedarchiveError, SearchTooBroadError
from tests.conftest import write_config
from tests.web.fixtures import app_for, login
from web.users import UserStore


def record(doc_id: str, content: str) -> IndexRecord:
    return IndexRecord(
        doc_id=doc_id,
        status="filed",
        mrn="00482913",
        patient_name="DOE, JANE",
        dob=None,
        doc_type="consultation",
        doc_date="2024-01-10",
        pages=1,
        path=f"archive/{doc_id}.pdf",
        sha256="s",
        source_sha256=f"src-{doc_id}",
        source_file="f.pdf",
        review_reason=None,
        content=content,
    )


@pytest.fixture
def ix(tmp_path: Path) -> WhooshIndex:
    index = WhooshIndex(tmp_path / "index", IndexOptions(writer_timeout_seconds=0.3))
    # 2,000 different words starting "wo", a few in every document, in two segments.
    words = [f"wo{n:04d}x" for n in range(2000)]
    index.add([record(f"d{n:02d}", "chest pain " + " ".join(words[n::40])) for n in range(20)])
    index.add([record(f"e{n:02d}", f"diabetic foot ulcer, chest pain {words[n]}") for n in range(20, 40)], merge=False)
    return index


@pytest.mark.parametrize("query", ["?*", "*xy*", "pain AND *ab", "w*", "name:?oe", "mrn:*482913"])
def test_a_wildcard_needs_letters_before_it(ix: WhooshIndex, query: str) -> None:
    with pytest.raises(SearchTooBroad, match=r"the search is too broad: a wildcard needs at least 2 letters before it"):
        ix.search(query)


def test_a_hundred_leading_wildcards_are_refused(ix: WhooshIndex) -> None:
    query = " ".join(["*xy*"] * 100)
    assert len(query) <= IndexOptions().max_query_chars
    with pytest.raises(SearchTooBroad, match="a wildcard needs at least 2 letters"):
        ix.search(query)


def test_an_overlong_query_is_refused_before_it_is_read(ix: WhooshIndex) -> None:
    with pytest.raises(SearchTooBroad, match=r"the search is too long \(501 characters, at most 500\)"):
        ix.search("p" * 501)
    assert ix.search("pain " * 99 + "pain")  # 499 characters


def test_a_wildcard_matching_thousands_of_words_is_refused(ix: WhooshIndex) -> None:
    with pytest.raises(SearchTooBroad, match=r"wo\* matches more than 300 different words; write more letters before"):
        ix.search("wo*")
    with pytest.raises(SearchTooBroad, match="matches more than 300 different words"):
        ix.search("chest wo?*")
    with pytest.raises(SearchTooBroad, match=r"content:\[a TO z\] matches more than 300 .*; use a shorter range"):
        ix.search("content:[a TO z]")
    with pytest.raises(
        SearchTooBroad, match=r": \* matches more than 300 different words; leave the \* on its own out"
    ):
        ix.search("chest *")


def test_narrow_wildcards_and_date_ranges_still_work(ix: WhooshIndex) -> None:
    assert sorted(hit.doc_id for hit in ix.search("wo001*", limit=100)) == [f"d{n:02d}" for n in range(10, 20)]
    assert [hit.doc_id for hit in ix.search("wo1979x")] == ["d19"]
    assert len(ix.search("diab* AND ulcer", limit=100)) == 20
    assert len(ix.search("doc_date:[2000-01-01 TO 2030-12-31] chest", limit=100)) == 40
    assert ix.search("*", limit=3) and ix.search("")  # listing, not a wildcard


def test_the_budgets_are_options(tmp_path: Path) -> None:
    index = WhooshIndex(tmp_path / "index", IndexOptions(min_wildcard_prefix=5, max_expansions=10, max_query_chars=30))
    index.add([record("a", "diabetes diabetic " + " ".join(f"patie{n:02d}" for n in range(20)))])
    with pytest.raises(SearchTooBroad, match="at least 5 letters"):
        index.search("diab*")
    assert [hit.doc_id for hit in index.search("diabe*")] == ["a"]
    with pytest.raises(SearchTooBroad, match="more than 10 different words"):
        index.search("patie*")
    with pytest.raises(SearchTooBroad, match="at most 30"):
        index.search("diabetes " * 4)


def test_a_search_past_its_time_budget_is_stopped(tmp_path: Path) -> None:
    ticks = itertools.count()

    def slow_clock() -> float:
        return float(next(ticks))

    index = WhooshIndex(tmp_path / "index", IndexOptions(search_seconds=4), clock=slow_clock)
    index.add([record(f"a{n}", f"fever cough rash note{n}") for n in range(10)])
    index.add([record(f"b{n}", f"fever cough rash note{n}") for n in range(10)], merge=False)
    with pytest.raises(SearchTooBroad, match=r"the search took longer than 4 s and was stopped: narrow it"):
        index.search("fever OR cough OR rash OR note1 OR note2 OR note3")
    # The same search on a real clock.
    assert len(WhooshIndex(tmp_path / "index").search("fever OR cough OR rash OR note1", limit=50)) == 20


def test_budgets_come_from_the_config_and_are_medarchive_errors(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, index={"min_wildcard_prefix": 3, "max_query_chars": 40}))
    index = open_index(config)
    index.add([record("a", "diabetes")])
    with pytest.raises(SearchTooBroadError, match="at least 3 letters") as refused:
        index.search("di*")
    assert isinstance(refused.value, MedarchiveError)
    assert [hit.doc_id for hit in index.search("dia*")] == ["a"]
    with pytest.raises(SearchTooBroadError, match="at most 40"):
        index.search("x" * 41)


def test_the_cli_refuses_a_broad_search_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    config_path = write_config(tmp_path)
    open_index(load_config(config_path)).add([record("a", "diabetes")])
    monkeypatch.setattr(sys, "argv", ["medarchive", "--config", str(config_path), "search", "?*"])
    umask = os.umask(0o077)  # main() sets it for the process; put it back after
    try:
        with pytest.raises(SystemExit) as exited:
            main()
    finally:
        os.umask(umask)
    assert exited.value.code != 0
    out, err = capsys.readouterr()
    assert err.strip() == (
        "error: the search is too broad: a wildcard needs at least 2 letters before it (such as diab*), not ?*"
    )
    assert out == ""


def test_the_web_refuses_a_broad_search_with_the_message(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, web={"secure_cookies": False}))
    open_index(config).add([record("a", "diabetes")])
    UserStore.for_config(config).add("cal", "clerk", "cal-clerk-pass")
    client = app_for(config).test_client()
    assert login(client, "cal", "cal-clerk-pass").status_code == 302
    refused = client.get("/?q=" + "%3F%2A")  # ?*
    assert refused.status_code == 400
    assert "a wildcard needs at least 2 letters before it" in refused.text
    assert "diabetes" not in refused.text.split("<main>", 1)[1].split("</form>", 1)[1]
    assert client.get("/?q=diab%2A").status_code == 200
