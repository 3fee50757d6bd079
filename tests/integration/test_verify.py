"""Integrity: archived files against their sidecars, the index against the archive."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.archive.index import open_index
from pipeline.archive.sidecar import Sidecar, read_sidecar
from pipeline.archive.store import record_from_sidecar
from pipeline.core.config import Config
from pipeline.core.fsutil import atomic_write_json, read_json

from .test_audit import (  # noqa: F401
    MRN,
    OTHER_MRN,
    add_document,
    index_archive,
    invoke,
    make_config,
    private_umask,
)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    config = make_config(tmp_path)
    for seed in range(3):
        add_document(config, seed, doc_date=f"202{seed}-01-01")
    add_document(config, 3, mrn=OTHER_MRN)
    add_document(config, 4, status="review")
    index_archive(config)
    return config


def _pdf(config: Config, sidecar: Sidecar) -> Path:
    return config.root / sidecar.path


def _sidecars(config: Config) -> list[Sidecar]:
    return [read_sidecar(p) for p in sorted((config.archive_dir / MRN).glob("*.json"))]


def _problems(config: Config, *args: str) -> tuple[int, list[dict]]:
    result = invoke(config, "verify", "--json", *args)
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines()]


def test_a_sound_archive_passes(config: Config):
    result = invoke(config, "verify")
    assert result.exit_code == 0, result.stdout
    assert result.stdout == "" and "5 document(s) checked: 0 problem(s)" in result.stderr


def test_a_flipped_byte_is_found(config: Config):
    victim = _sidecars(config)[1]
    data = bytearray(_pdf(config, victim).read_bytes())
    data[100] ^= 0x01
    _pdf(config, victim).write_bytes(bytes(data))
    code, problems = _problems(config)
    assert code == 3
    assert [(p["kind"], p["doc_id"], p["mrn"]) for p in problems] == [("altered_file", victim.doc_id, MRN)]


def test_a_deleted_sidecar_leaves_an_orphaned_file_and_a_stale_index_record(config: Config):
    victim = _sidecars(config)[0]
    _pdf(config, victim).with_suffix(".json").unlink()
    code, problems = _problems(config)
    assert code == 3
    assert {(p["kind"], p["doc_id"]) for p in problems} == {
        ("orphan_file", victim.doc_id),
        ("index_only", victim.doc_id),
    }


def test_a_deleted_pdf_is_missing(config: Config):
    victim = _sidecars(config)[2]
    _pdf(config, victim).unlink()
    code, problems = _problems(config)
    assert code == 3 and [(p["kind"], p["doc_id"]) for p in problems] == [("missing_file", victim.doc_id)]


def test_stray_files_are_orphans(config: Config):
    (config.archive_dir / MRN / "copy of scan.pdf").write_bytes(b"%PDF-1.4")
    (config.archive_dir / MRN / "notes.txt").write_text("x")
    (config.archive_dir / "loose.pdf").write_bytes(b"%PDF-1.4")
    (config.archive_dir / MRN / ".tmp-123-in-progress.pdf").write_bytes(b"%PDF")  # a write in progress
    code, problems = _problems(config)
    assert code == 3
    assert sorted(p["path"] for p in problems if p["kind"] == "orphan_file") == [
        "archive/00482913/copy of scan.pdf",
        "archive/00482913/notes.txt",
        "archive/loose.pdf",
    ]


def test_a_sidecar_in_the_wrong_patient_folder_is_misfiled(config: Config):
    sidecar_file = next((config.archive_dir / OTHER_MRN).glob("*.json"))
    atomic_write_json(sidecar_file, {**read_json(sidecar_file), "mrn": MRN})
    code, problems = _problems(config)
    assert code == 3 and {p["kind"] for p in problems} == {"misfiled", "index_differs"}


def test_a_document_missing_from_the_index_is_found_and_repaired(config: Config):
    victim = _sidecars(config)[0]
    open_index(config).delete([victim.doc_id])
    code, problems = _problems(config)
    assert code == 3 and [(p["kind"], p["doc_id"]) for p in problems] == [("not_indexed", victim.doc_id)]
    result = invoke(config, "verify", "--repair-index")
    assert result.exit_code == 0 and "1 index record(s) repaired" in result.stderr
    assert _problems(config) == (0, [])
    assert open_index(config).search("anaemia", limit=10)


def test_index_metadata_that_disagrees_is_repaired_and_extra_records_dropped(config: Config):
    index = open_index(config)
    victim = _sidecars(config)[1]
    ghost = replace(record_from_sidecar(victim), doc_id="f" * 16 + "-1", path="archive/x/gone.pdf")
    index.add([replace(record_from_sidecar(victim), doc_date="1999-12-31"), ghost])
    code, problems = _problems(config)
    # the replaced entry stays in the index files until a background expunge: a remnant
    assert code == 3 and sorted(p["kind"] for p in problems) == ["index_differs", "index_only", "index_remnant"]
    assert "doc_date" in next(p["detail"] for p in problems if p["kind"] == "index_differs")
    assert invoke(config, "verify", "--repair-index").exit_code == 0
    assert {r.doc_id: r.doc_date for r in open_index(config).stored()}[victim.doc_id] == victim.doc_date


def test_repair_fixes_the_index_only_never_the_archive(config: Config):
    victim = _sidecars(config)[0]
    altered = _pdf(config, victim).read_bytes() + b"%tampered"
    _pdf(config, victim).write_bytes(altered)
    open_index(config).delete([victim.doc_id])
    result = invoke(config, "verify", "--repair-index", "--json")
    assert result.exit_code == 3
    assert [json.loads(line)["kind"] for line in result.stdout.splitlines()] == ["altered_file"]
    assert _pdf(config, victim).read_bytes() == altered and _pdf(config, victim).with_suffix(".json").exists()
