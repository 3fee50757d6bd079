"""Destroyed means gone from the index: no deleted entry keeps its text in the index files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from pipeline.archive.audit import AuditLog
from pipeline.archive.index import open_index
from pipeline.archive.store import iter_sidecars, record_from_sidecar
from pipeline.core.config import Config
from pipeline.records.review import reassign

from .test_audit import (  # noqa: F401
    MRN,
    OTHER_MRN,
    add_document,
    index_archive,
    invoke,
    make_config,
    private_umask,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from whoosh import index as whoosh_index

# What only the document to be destroyed carries: its patient, MRN, birth date and words.
DOOMED_NAME = "ZANZIBAR, OTTOLINE"
DOOMED_MRN = "00313131"
DOOMED_DOB = "1933-03-13"
DOOMED_WORDS = "xylophonist quintessential borborygmi"


def _index_bytes(config: Config) -> bytes:
    """The index folder's files, raw (their terms are plain), and every stored record (compressed
    in the files), deleted or not."""
    raw = b"".join(p.read_bytes() for p in sorted(config.index_dir.rglob("*")) if p.is_file())
    with whoosh_index.open_dir(str(config.index_dir)).reader() as reader:
        stored = [sub.stored_fields(n) for sub, _ in reader.leaf_readers() for n in range(sub.doc_count_all())]
    return raw.lower() + repr(stored).lower().encode()


def _needles() -> list[bytes]:
    words = [DOOMED_NAME.split(", ")[0], DOOMED_MRN, DOOMED_DOB, *DOOMED_WORDS.split()]
    return [word.lower().encode() for word in words]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    config = make_config(tmp_path, retention={"default_years": 10})
    for seed in range(4):
        add_document(config, seed, doc_date="2024-01-01")
    add_document(config, 9, mrn=DOOMED_MRN, name=DOOMED_NAME, dob=DOOMED_DOB, text=DOOMED_WORDS, doc_date="1990-02-02")
    index_archive(config)
    # A later segment of its own, so the purge has a segment to rewrite and one to keep.
    index = open_index(config)
    index.add([record_from_sidecar(add_document(config, 20, doc_date="2024-06-01", text="later arrival"))])
    return config


def test_a_purge_leaves_no_byte_of_the_destroyed_document_in_the_index(config: Config):
    before = _index_bytes(config)
    assert all(needle in before for needle in _needles())  # (so the check below can fail)
    result = invoke(config, "retention", "purge", "--confirm", user="Records Manager")
    assert result.exit_code == 0, result.exception
    after = _index_bytes(config)
    assert [needle for needle in _needles() if needle in after] == []
    index = open_index(config)
    assert index.remnants() == 0 and index.count() == 5
    assert {hit.doc_id for hit in index.search("later arrival")} and not index.search("xylophonist")
    assert invoke(config, "verify").exit_code == 0


def test_a_reassignment_leaves_no_deleted_copy_behind(config: Config):
    index = open_index(config)
    doc_id = next(r.doc_id for r in index.stored() if r.mrn == DOOMED_MRN)
    reassign(
        config, index, AuditLog.for_config(config), doc_id, mrn=OTHER_MRN, doc_type=None, user="cal", reason="misfiled"
    )
    assert index.remnants() == 0
    with whoosh_index.open_dir(str(config.index_dir)).reader() as reader:
        copies = [
            sub.stored_fields(n)["mrn"]
            for sub, _ in reader.leaf_readers()
            for n in range(sub.doc_count_all())
            if sub.stored_fields(n)["doc_id"] == doc_id
        ]
    assert copies == [OTHER_MRN]
    assert index.get(doc_id).mrn == OTHER_MRN


def _plant_deleted_entry(config: Config) -> None:
    """Delete a document the way a crash between Whoosh's commit and the rewrite would leave it."""
    ix = whoosh_index.open_dir(str(config.index_dir))
    writer = ix.writer()
    writer.delete_by_term("patient_name", "zanzibar")
    writer.commit(merge=False)


def test_verify_flags_a_deleted_entry_that_still_holds_text_and_repair_removes_it(config: Config):
    _plant_deleted_entry(config)
    assert open_index(config).remnants() == 1
    result = invoke(config, "verify", "--json")
    assert result.exit_code == 3
    problems = [json.loads(line) for line in result.stdout.splitlines()]
    remnant = next(p for p in problems if p["kind"] == "index_remnant")
    assert "1 deleted document" in remnant["detail"] and "--repair-index" in remnant["detail"]
    repaired = invoke(config, "verify", "--repair-index")
    assert open_index(config).remnants() == 0 and b"xylophonist" in _index_bytes(config)
    # The planted deletion had no archive behind it: the document is indexed again, the remnant gone.
    assert "index_remnant" not in repaired.stdout
    assert invoke(config, "verify").exit_code == 0


def test_the_daemon_rewrites_what_review_assignments_left_deleted(config: Config):
    from watch_folders.daemon import Daemon

    index = open_index(config)
    doc = next(s for s in iter_sidecars(config))
    index.add([record_from_sidecar(doc)])  # replaced in place, as filing a reviewed document does
    assert index.remnants() >= 1
    Daemon(config, index)._expunge_index()
    assert open_index(config).remnants() == 0
