"""The index as the pipeline opens it: the index's failures come out as MedarchiveErrors
(which the CLI prints on one line and the web shows as a message)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import indexers.base as indexing
from indexers.base import IndexRecord
from pipeline.archive.index import ArchiveIndex, open_index
from pipeline.core.config import Config, load_config
from pipeline.core.errors import IndexBusyError, MedarchiveError, SearchIndexError
from tests.conftest import write_config

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from whoosh import index as whoosh_index
    from whoosh.fields import ID, TEXT, Schema
    from whoosh.filedb.filestore import FileStorage


def record(doc_id: str, content: str = "chest pain") -> IndexRecord:
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
        source_sha256="t",
        source_file="f.pdf",
        review_reason=None,
        content=content,
    )


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write_config(tmp_path, index={"writer_timeout_seconds": 0.3}))


def test_open_index_gives_the_interface_with_the_configured_options(config: Config) -> None:
    index = open_index(config)
    assert isinstance(index, ArchiveIndex)
    assert index.engine._options.writer_timeout_seconds == 0.3
    assert index.add([record("a")]) == 1
    assert [hit.doc_id for hit in index.search("chest")] == ["a"]
    assert [r.doc_id for r in index.stored()] == ["a"]


def test_a_bad_query_is_a_medarchive_error(config: Config) -> None:
    index = open_index(config)
    index.add([record("a")])
    with pytest.raises(SearchIndexError, match="cannot understand the search 'pages:2'") as caught:
        index.search("pages:2")
    assert isinstance(caught.value, MedarchiveError) and isinstance(caught.value.__cause__, indexing.IndexFailure)


def test_an_older_index_is_a_medarchive_error(config: Config) -> None:
    config.index_dir.mkdir(parents=True)
    whoosh_index.create_in(str(config.index_dir), Schema(doc_id=ID(unique=True, stored=True), content=TEXT()))
    index = open_index(config)
    for call in (lambda: index.search("old"), index.count, lambda: list(index.stored()), lambda: index.get("a")):
        with pytest.raises(MedarchiveError, match="medarchive reindex"):
            call()


def test_a_held_writer_is_the_pipelines_busy_error(config: Config) -> None:
    index = open_index(config)
    index.add([record("a")])
    lock = FileStorage(str(config.index_dir)).lock("MAIN_WRITELOCK")
    assert lock.acquire()
    try:
        with pytest.raises(IndexBusyError, match="another medarchive process is writing the index"):
            index.add([record("b")])
    finally:
        lock.release()
