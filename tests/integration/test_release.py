"""Release of information: files, manifests, cover sheet, and the accounting of disclosures."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

import pikepdf
import pytest

from pipeline.archive.audit import AuditLog
from pipeline.archive.store import iter_sidecars
from pipeline.core.config import Config
from pipeline.records.release import ReleaseError, ReleaseRequest, disclosures, export

from .test_audit import (  # noqa: F401
    MRN,
    NAME,
    OTHER_MRN,
    add_document,
    audit_entries,
    invoke,
    make_config,
    private_umask,
)

REQUESTER = "Dr. Ada Ames, Riverside Clinic"
PURPOSE = "Continuity of care after transfer"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    config = make_config(tmp_path)
    add_document(config, 1, doc_type="lab_result", doc_date="2019-02-03")
    add_document(config, 2, doc_type="discharge_summary", doc_date="2021-07-08")
    add_document(config, 3, doc_type="lab_result", doc_date=None)
    add_document(config, 4, mrn=OTHER_MRN, doc_type="lab_result", doc_date="2020-01-01", name="ROE, RICHARD")
    add_document(config, 5, doc_type="consent_form", doc_date="2022-01-01", status="review")
    return config


def _export(config: Config, out: Path, *extra: str, user: str | None = None):
    return invoke(
        config,
        "export",
        "--mrn",
        MRN,
        "--out",
        str(out),
        "--requester",
        REQUESTER,
        "--purpose",
        PURPOSE,
        *extra,
        user=user,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pdftotext(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def test_a_release_holds_the_documents_a_manifest_and_a_cover_sheet(config: Config, tmp_path: Path):
    out = tmp_path / "release"
    result = _export(config, out, user="him.clerk")
    assert result.exit_code == 0, result.exception
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert [(r["doc_type"], r["doc_date"]) for r in rows] == [
        ("lab_result", "2019-02-03"),
        ("discharge_summary", "2021-07-08"),
        ("lab_result", ""),
    ]
    for row in rows:
        assert _sha256(out / row["file"]) == row["sha256"] and row["pages"] == "1" and row["status"] == "filed"
    manifest = json.loads((out / "manifest.json").read_text())
    assert (
        manifest["requester"] == REQUESTER and manifest["purpose"] == PURPOSE and manifest["released_by"] == "him.clerk"
    )
    assert [d["sha256"] for d in manifest["documents"]] == [r["sha256"] for r in rows]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [r["file"] for r in rows] + ["cover_sheet.pdf", "manifest.csv", "manifest.json"]
    )
    with pikepdf.open(out / "cover_sheet.pdf") as cover:
        assert len(cover.pages) == 1
    text = _pdftotext(out / "cover_sheet.pdf")
    for expected in (
        REQUESTER,
        PURPOSE,
        MRN,
        NAME,
        manifest["release_id"],
        "him.clerk",
        "3 document(s)",
        rows[0]["doc_id"],
    ):
        assert expected in text


def test_the_disclosure_is_recorded_and_listed(config: Config, tmp_path: Path):
    _export(config, tmp_path / "release", "--type", "lab_result")
    entry = audit_entries(config, action="export")[0]
    assert entry["mrns"] == [MRN] and len(entry["doc_ids"]) == 2 and entry["details"]["requester"] == REQUESTER
    listed = invoke(config, "disclosures", "--mrn", MRN)
    assert listed.exit_code == 0
    assert (
        REQUESTER in listed.stdout
        and PURPOSE in listed.stdout
        and "2 document(s): lab_result, dated 2019-02-03" in listed.stdout
    )
    assert invoke(config, "disclosures", "--mrn", OTHER_MRN).stdout == ""
    rows = [json.loads(line) for line in invoke(config, "disclosures", "--mrn", MRN, "--json").stdout.splitlines()]
    assert [(r["requester"], r["purpose"], r["outcome"], len(r["documents"])) for r in rows] == [
        (REQUESTER, PURPOSE, "ok", 2)
    ]


def test_type_and_date_narrow_the_release(config: Config, tmp_path: Path):
    request = ReleaseRequest(
        MRN,
        REQUESTER,
        PURPOSE,
        doc_types=("lab_result", "discharge_summary"),
        date_from="2019-01-01",
        date_to="2020-12-31",
    )
    done = export(config, request, tmp_path / "out", user="u", audit=AuditLog.for_config(config))
    # The undated lab result cannot be shown to fall in the range, so it stays.
    assert [d["doc_date"] for d in done.documents] == ["2019-02-03"]


def test_review_queue_documents_only_when_asked_for(config: Config, tmp_path: Path):
    _export(config, tmp_path / "plain")
    assert not any("consent_form" in p.name for p in (tmp_path / "plain").iterdir())
    assert _export(config, tmp_path / "with-review", "--include-review").exit_code == 0
    rows = list(csv.DictReader((tmp_path / "with-review" / "manifest.csv").open()))
    assert [r["status"] for r in rows if r["doc_type"] == "consent_form"] == ["review"]


def test_a_zip_release_is_one_file_with_everything_inside(config: Config, tmp_path: Path):
    out = tmp_path / "zipped"
    assert _export(config, out, "--zip").exit_code == 0
    (archive,) = list(out.iterdir())
    assert archive.suffix == ".zip" and archive.name.startswith("REL-")
    with zipfile.ZipFile(archive) as package:
        rows = list(csv.DictReader(package.read("manifest.csv").decode().splitlines()))
        assert len(rows) == 3 and {"cover_sheet.pdf", "manifest.json"} <= set(package.namelist())
        for row in rows:
            assert hashlib.sha256(package.read(row["file"])).hexdigest() == row["sha256"]


def test_an_altered_record_is_never_released(config: Config, tmp_path: Path):
    victim = next((config.archive_dir / MRN).glob("*discharge_summary*.pdf"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    result = _export(config, tmp_path / "out")
    assert result.exit_code == 1 and "does not match its recorded SHA-256" in str(result.exception)
    assert not (tmp_path / "out").exists() and not audit_entries(config, action="export")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".release-")]


def test_requests_that_cannot_be_met_are_refused(config: Config, tmp_path: Path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "old.pdf").write_bytes(b"x")
    assert "not an empty folder" in str(_export(config, busy).exception)
    assert "nothing was released" in str(_export(config, tmp_path / "a", "--from", "2030-01-01").exception)
    assert "unknown document type" in str(_export(config, tmp_path / "b", "--type", "lab").exception)
    assert "inside the data root" in str(_export(config, config.root / "out").exception)
    blank = ReleaseRequest(MRN, " ", PURPOSE)
    with pytest.raises(ReleaseError, match="requester"):
        export(config, blank, tmp_path / "c", user="u", audit=AuditLog.for_config(config))
    assert not disclosures(AuditLog.for_config(config), MRN)


def test_the_cover_sheet_stays_one_page_for_a_long_release(tmp_path: Path):
    config = make_config(tmp_path)
    for seed in range(70):
        add_document(config, seed, doc_date=f"20{10 + seed // 12:02d}-{seed % 12 + 1:02d}-01")
    assert _export(config, tmp_path / "out").exit_code == 0
    with pikepdf.open(tmp_path / "out" / "cover_sheet.pdf") as cover:
        assert len(cover.pages) == 1
    assert "more document(s), listed in manifest.csv" in _pdftotext(tmp_path / "out" / "cover_sheet.pdf")


def _doc_id(config: Config, **match) -> str:
    return next(s.doc_id for s in iter_sidecars(config) if all(getattr(s, k) == v for k, v in match.items()))


def test_only_the_chosen_documents_are_released_and_recorded(config: Config, tmp_path: Path):
    chosen = [_doc_id(config, doc_type="discharge_summary"), _doc_id(config, doc_type="lab_result", doc_date=None)]
    result = _export(config, tmp_path / "out", "--doc", chosen[0], "--doc", chosen[1])
    assert result.exit_code == 0, result.exception
    rows = list(csv.DictReader((tmp_path / "out" / "manifest.csv").open()))
    assert sorted(r["doc_id"] for r in rows) == sorted(chosen)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["criteria"]["doc_ids"] == chosen
    entry = audit_entries(config, action="export")[0]
    assert sorted(entry["doc_ids"]) == sorted(chosen) and entry["details"]["criteria"]["doc_ids"] == chosen


def test_a_chosen_document_of_another_patient_or_outside_the_criteria_refuses_the_release(
    config: Config, tmp_path: Path
):
    mine, theirs = _doc_id(config, mrn=MRN, doc_type="lab_result"), _doc_id(config, mrn=OTHER_MRN)
    waiting = _doc_id(config, status="review")
    for n, (extra, message) in enumerate(
        [
            (("--doc", mine, "--doc", theirs), f"document {theirs} is not a document of MRN {MRN}"),
            (("--doc", "ffffffffffffffff-1"), "document ffffffffffffffff-1 is not a document of MRN"),
            (("--doc", waiting), f"document {waiting} is left out"),
            (("--doc", mine, "--type", "discharge_summary"), f"document {mine} is left out"),
        ]
    ):
        result = _export(config, tmp_path / f"out{n}", *extra)
        assert result.exit_code == 1 and isinstance(result.exception, ReleaseError) and message in str(result.exception)
        assert not (tmp_path / f"out{n}").exists()
    assert not audit_entries(config, action="export")
    assert _export(config, tmp_path / "with-review", "--doc", waiting, "--include-review").exit_code == 0
