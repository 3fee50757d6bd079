"""The SQLite patient index: the Roster's answers, merges and aliases, ADT reading, resumable merges."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from indexers.base import SearchFilters
from pipeline.archive.audit import AuditLog
from pipeline.archive.dataroot import open_data_root
from pipeline.archive.index import open_index
from pipeline.archive.sidecar import read_sidecar
from pipeline.archive.store import doc_id_for, record_from_sidecar, write_document
from pipeline.cli.main import cli as main_cli
from pipeline.core.config import load_config
from pipeline.core.models import (
    Classification,
    Decision,
    Document,
    Identifiers,
    PageText,
)
from pipeline.ehr import adt
from pipeline.ehr.listener_settings import HL7ListenerSettings
from pipeline.ehr.merge import run_merge
from pipeline.identify.documents import SourceFacts, build_documents
from pipeline.identify.patients import (
    Patient,
    PatientIndex,
    PatientIndexError,
    PatientRoster,
    load_patient_index,
    resolve_mrn,
)
from pipeline.identify.roster import Roster, RosterPatient
from pipeline.samples import scans as samples
from tests.conftest import write_config

ROSTER_ROWS = [
    RosterPatient("10000001", "DOE", "JOHN ALBERT", "1980-01-02"),
    RosterPatient("10000002", "DOE", "JANE", "1981-03-04"),
    RosterPatient("20000000", "O'BRIEN", "MARY", "1970-05-06"),
    RosterPatient("20000001", "SMITH", "FRANCIS", "1990-07-08"),
    RosterPatient("20000002", "SMITH", "FRANCES", "1990-07-08"),
    RosterPatient("30000001", "LEE", "ANN", "1955-09-10"),
    RosterPatient("30000002", "LEE", "ANN", "1955-09-10"),
]


@pytest.fixture
def config(tmp_path: Path, backend):
    """Every patient index test runs on both store backends."""
    cfg = load_config(write_config(tmp_path, **backend))
    open_data_root(cfg)
    return cfg


@pytest.fixture
def index(config) -> PatientIndex:
    idx = PatientIndex.for_config(config)
    idx.import_roster(ROSTER_ROWS)
    yield idx
    idx.close()


def test_the_file_is_private_and_in_wal_mode(config, index):
    if config.database.url is not None:
        pytest.skip("a property of the SQLite file")
    assert stat.S_IMODE(os.stat(index.path).st_mode) == 0o600
    assert index.path.parent == config.root
    with sqlite3.connect(index.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for sibling in index.path.parent.glob("patients.sqlite-*"):
        assert stat.S_IMODE(os.stat(sibling).st_mode) == 0o600


def test_sqlite_roster_answers_as_the_csv_roster_does(index):
    csv_roster, sql_roster = Roster(ROSTER_ROWS), PatientRoster(index)
    assert len(sql_roster) == len(csv_roster) == len(ROSTER_ROWS)
    for mrn in ("10000001", "1000-0001", "99999999", "2OOOOOOO", "1OOOOOO2", "3000000l"):
        assert sql_roster.get(mrn) == csv_roster.get(mrn), mrn
        assert sql_roster.confusable(mrn) == csv_roster.confusable(mrn), mrn
    for name, dob in [
        ("DOE, JOHN", "1980-01-02"),
        ("John A. Doe", "1980-01-02"),
        ("OBRIEN, MARY", "1970-05-06"),
        ("LEE, ANN", "1955-09-10"),
        ("SMITH, FRANCIS", "1990-07-08"),
        ("DOE, JOHN", "1980-01-03"),
        ("Cher", "1946-05-20"),
    ]:
        assert sql_roster.by_name_dob(name, dob) == csv_roster.by_name_dob(name, dob), name


def test_upsert_creates_updates_and_leaves_unchanged(index):
    assert index.upsert(Patient("40000001", "Roe", "Rick", "2000-01-01", "M")) == "created"
    assert index.upsert(Patient("40000001", "Roe", "Rick", "2000-01-01", None)) == "unchanged"  # empty sex keeps it
    assert index.upsert(Patient("40000001", "Roe-Smith", "Rick", "2000-01-01", "M")) == "updated"
    assert index.get("40000001") == Patient(
        "40000001", "ROE-SMITH", "RICK", "2000-01-01", "M", "active", None, index.get("40000001").updated_at
    )
    assert PatientRoster(index).by_name_dob("RICK ROE-SMITH", "2000-01-01")[0].mrn == "40000001"


def test_a_merge_retires_the_prior_mrn(index):
    merge, new = index.record_merge(
        "10000002", "10000001", survivor_patient=None, control_id="C1", requested_by="hl7:REG@H"
    )
    assert new and (merge.prior, merge.survivor, merge.state) == ("10000002", "10000001", "moving")
    assert index.get("10000002").status == "merged" and index.get("10000002").merged_into == "10000001"
    assert resolve_mrn(index, "10000002") == (
        "10000001",
        "MRN 10000002 was retired by a merge into MRN 10000001; filed under 10000001",
    )
    assert resolve_mrn(index, "10000001") == ("10000001", None)
    assert index.count() == len(ROSTER_ROWS) - 1
    # A resent A40 is the same merge; a different survivor, or an update of the retired MRN, is refused.
    assert index.record_merge("10000002", "10000001", survivor_patient=None, control_id="C1", requested_by="x") == (
        merge,
        False,
    )
    with pytest.raises(PatientIndexError, match="already merged into 10000001"):
        index.record_merge("10000002", "20000000", survivor_patient=None, control_id="C2", requested_by="x")
    with pytest.raises(PatientIndexError, match="send updates for the surviving MRN"):
        index.upsert(Patient("10000002", "DOE", "JANE", "1981-03-04"))
    with pytest.raises(PatientIndexError, match="itself retired"):
        index.record_merge("20000000", "10000002", survivor_patient=None, control_id="C3", requested_by="x")
    with pytest.raises(PatientIndexError, match="into itself"):
        index.record_merge("20000000", "20000000", survivor_patient=None, control_id="C4", requested_by="x")
    with pytest.raises(PatientIndexError, match="not in the patient index"):
        index.record_merge("20000000", "55555555", survivor_patient=None, control_id="C5", requested_by="x")


def test_merges_of_merges_lead_to_the_last_survivor(index):
    index.record_merge("10000002", "10000001", survivor_patient=None, control_id=None, requested_by="x")
    index.record_merge("10000001", "20000000", survivor_patient=None, control_id=None, requested_by="x")
    assert resolve_mrn(index, "10000002")[0] == "20000000"
    assert index.get("10000002").merged_into == "20000000"
    # The retired record still answers for its MRN; by name and DOB only the active one counts.
    roster = PatientRoster(index)
    assert roster.get("10000002").name == "DOE, JANE"
    assert roster.by_name_dob("DOE, JANE", "1981-03-04") == []


def test_import_skips_retired_mrns(index):
    index.record_merge("30000002", "30000001", survivor_patient=None, control_id=None, requested_by="x")
    counts = index.import_roster([*ROSTER_ROWS, RosterPatient("50000001", "NEW", "PERSON", "2001-02-03")])
    assert counts == {"created": 1, "updated": 0, "unchanged": 6, "skipped (merged)": 1}


def test_load_patient_index_prefers_sqlite_then_the_csv(tmp_path):
    csv = tmp_path / "roster.csv"
    csv.write_text("mrn,last_name,first_name,dob\n10000001,DOE,JOHN,1980-01-02\n")
    cfg = load_config(write_config(tmp_path, roster={"path": str(csv)}))
    open_data_root(cfg)
    assert isinstance(load_patient_index(cfg), Roster)
    assert not (cfg.root / "patients.sqlite").exists()  # looking does not create it
    PatientIndex.for_config(cfg).close()
    assert isinstance(load_patient_index(cfg), Roster)  # an empty index is no index
    PatientIndex.for_config(cfg).upsert(Patient("10000009", "ROE", "RICK", "2000-01-01"))
    loaded = load_patient_index(cfg)
    assert isinstance(loaded, PatientRoster) and loaded.get("10000009") and loaded.get("10000001") is None
    (tmp_path / "bare").mkdir()
    assert load_patient_index(load_config(write_config(tmp_path / "bare"))) is None


def _page(text: str) -> PageText:
    return PageText(1, text, "text-layer", mean_conf=95.0)


def test_a_document_read_with_a_retired_mrn_is_filed_under_the_survivor(config, index):
    index.record_merge("10000002", "10000001", survivor_patient=None, control_id="C1", requested_by="x")
    page = _page(
        "PROGRESS NOTE\nPatient Name: DOE, JANE\nMRN: 10000002\nDOB: 03/04/1981\nDate of Service: 05/06/2024\n"
    )
    roster = PatientRoster(index)
    [doc] = build_documents([page], SourceFacts("note.pdf", "a" * 64), config, roster)
    assert doc.decision.status == "filed" and doc.decision.mrn == "10000001"
    assert doc.decision.corrections == ("MRN 10000002 was retired by a merge into MRN 10000001; filed under 10000001",)
    [plain] = build_documents([page], SourceFacts("note.pdf", "a" * 64), config, Roster(ROSTER_ROWS))
    assert plain.decision.mrn == "10000002"  # the CSV roster knows no merges


# -- ADT messages ---------------------------------------------------------------


def _msg(event: str, *segments: str, facility: str = "HOSP", kind: str = "ADT") -> str:
    structure = {"A40": "ADT_A39", "A28": "ADT_A05", "A31": "ADT_A05"}.get(event, "ADT_A01")
    return (
        "\r".join(
            [
                f"MSH|^~\\&|REG|{facility}|MEDARCHIVE|HOSP|20240101120000||{kind}^{event}^{structure}|CTRL{event}|P|2.5",
                f"EVN|{event}|20240101120000",
                *segments,
            ]
        )
        + "\r"
    )


def _read(text: str, settings: HL7ListenerSettings | None = None) -> adt.AdtMessage:
    return adt.read_adt(
        adt.parse(text), adt.read_header(text), settings or HL7ListenerSettings(), lambda m: m.isdigit() and len(m) == 8
    )


def test_read_an_a08():
    message = _read(_msg("A08", "PID|1||999^^^SSA^SS~12345678^^^HOSP^MR||O\\S\\BRIEN^MARY^ANN||19700506|F"))
    assert message.mrn == "12345678" and message.prior_mrn is None
    assert message.patient == Patient("12345678", "O^BRIEN", "MARY ANN", "1970-05-06", "F")
    assert message.header.control_id == "CTRLA08" and message.header.sender == "hl7:REG@HOSP"


def test_the_legal_name_wins_over_aliases():
    message = _read(_msg("A08", "PID|1||12345678||SMITH^MARY^^^^^M~JONES^MARY^^^^^L||19700506|F"))
    assert (message.patient.family, message.patient.given) == ("JONES", "MARY")


def test_read_an_a40():
    message = _read(_msg("A40", "PID|1||12345678^^^HOSP^MR||DOE^JOHN||19800102|M", "MRG|87654321^^^HOSP^MR"))
    assert (message.mrn, message.prior_mrn, message.patient.family) == ("12345678", "87654321", "DOE")
    bare = _read(_msg("A40", "PID|1||12345678", "MRG|87654321"))
    assert bare.patient is None and bare.prior_mrn == "87654321"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("garbage", "not a readable HL7 v2 message"),
        (_msg("A08", "PID|1||12345678||DOE^JOHN||19800102", kind="ORU"), "message type ORU is not handled"),
        (_msg("A08"), "no PID segment"),
        (_msg("A08", "PID|1||||DOE^JOHN||19800102"), "PID-3 (patient identifier) is empty"),
        (_msg("A08", "PID|1||ABC||DOE^JOHN||19800102"), "PID-3 does not hold an MRN of this archive"),
        (_msg("A08", "PID|1||12345678||DOE^JOHN||1980-13-02"), "not a date"),
        (_msg("A08", "PID|1||12345678||DOE^JOHN||19801302"), "not a date"),
        (_msg("A08", "PID|1||12345678||DOE^JOHN"), "PID-7 (date of birth) is empty"),
        (_msg("A08", "PID|1||12345678||^JOHN||19800102"), "no family name"),
        (_msg("A08", "PID|1||12345678||DOE^JOHN||19800102|Q"), "table 0001"),
        (_msg("A40", "PID|1||12345678||DOE^JOHN||19800102"), "MRG segment"),
        (_msg("A40", "PID|1||12345678", "MRG|12345678"), "same MRN"),
        (_msg("A40", "PID|1||12345678", "MRG|11111111", "MRG|22222222"), "one merge per A40"),
    ],
)
def test_messages_that_cannot_be_acted_on(text, reason):
    with pytest.raises(adt.AdtError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        _read(text)


def test_facilities_and_assigning_authority_from_the_settings():
    settings = HL7ListenerSettings(allowed_facilities=["HOSP"], assigning_authority="HOSP")
    with pytest.raises(adt.AdtError, match="facility OTHER is not allowed"):
        _read(_msg("A08", "PID|1||12345678^^^HOSP||DOE^JOHN||19800102", facility="OTHER"), settings)
    with pytest.raises(adt.AdtError, match="no identifier of assigning authority HOSP"):
        _read(_msg("A08", "PID|1||12345678^^^CLINIC||DOE^JOHN||19800102"), settings)
    assert (
        _read(_msg("A08", "PID|1||11111111^^^CLINIC~22222222^^^HOSP||DOE^JOHN||19800102"), settings).mrn == "22222222"
    )


def test_unused_events_are_read_without_a_patient():
    assert _read(_msg("A01", "PID|1||12345678||DOE^JOHN||19800102")).patient is None


def test_acknowledgements_validate_and_escape_the_reason():
    header = adt.read_header(_msg("A08", "PID|1"))
    for code, error in (("AA", None), ("AE", adt.REQUIRED_FIELD_MISSING)):
        text = adt.build_ack(
            header,
            code,
            text="field | with ^ separators & such",
            error_code=error,
            control_id="ACK1",
            application="MEDARCHIVE",
        )
        ack = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT)
        assert ack.validate()
        assert (ack.msa.msa_1.value, ack.msa.msa_2.value, ack.msh.msh_5.value) == (code, "CTRLA08", "REG")
        assert "field \\F\\ with \\S\\ separators \\T\\ such" in text
    assert adt.read_header("not hl7") == adt.Header()
    assert adt.read_header("MSH|bad|X").control_id == ""


# -- resuming a merge --------------------------------------------------------------


def _filed(config, mrn: str, n: int, tmp: Path) -> dict:
    text = f"PROGRESS NOTE {n}\nPatient Name: DOE, JANE\nMRN: {mrn}\nnote number {n}"
    pdf = tmp / f"src-{n}.pdf"
    samples.write_born_digital_pdf(pdf, [text.splitlines()])
    sha = f"{n:016x}" + "0" * 48
    doc = Document(
        doc_id_for(sha, 1),
        pdf.name,
        [1],
        sha,
        [_page(text)],
        Identifiers(name="DOE, JANE", dob="1981-03-04", doc_date="2024-05-06"),
        Classification("progress_note", 0.9),
        Decision("filed", mrn),
    )
    return write_document(config, doc, pdf)


def test_a_merge_interrupted_between_copy_and_removal_moves_each_document_once(config, index, tmp_path):
    sidecars = [_filed(config, "10000002", n, tmp_path) for n in range(3)]
    search = open_index(config)
    search.add(record_from_sidecar(s) for s in sidecars)
    merge, _ = index.record_merge(
        "10000002", "10000001", survivor_patient=None, control_id="C9", requested_by="hl7:REG@HOSP"
    )
    # The crash: document 0's copy and sidecar are in the survivor's folder, the originals not yet removed,
    # and its journal row says moving.
    old = config.root / sidecars[0].path
    (config.archive_dir / "10000001").mkdir(mode=0o700)
    for suffix in (".pdf", ".json"):
        shutil.copy(old.with_suffix(suffix), config.archive_dir / "10000001" / old.with_suffix(suffix).name)
    with index.transaction() as db:
        db.execute(
            "INSERT INTO merge_moves (merge_id, doc_id, state) VALUES (?, ?, 'moving')", (merge.id, sidecars[0].doc_id)
        )
    audit = AuditLog.for_config(config)
    assert run_merge(config, index, search, audit, merge)
    assert not (config.archive_dir / "10000002").exists()
    moved = sorted((config.archive_dir / "10000001").glob("*.json"))
    assert len(moved) == 3
    for path in moved:
        sidecar = read_sidecar(path)
        assert sidecar.mrn == "10000001" and [e.action for e in sidecar.history].count("merged") == 1
        assert search.get(sidecar.doc_id).mrn == "10000001"
    assert len(search.search("", SearchFilters(mrn="10000002"), 100)) == 0
    assert index.merge(merge.id).state == "done" and index.merge(merge.id).moved == 3
    entries = list(audit.entries())
    assert {d for e in entries if e["action"] == "patient.merge.move" for d in e["doc_ids"]} == {
        s.doc_id for s in sidecars
    }
    assert [e["outcome"] for e in entries if e["action"] == "patient.merge"] == ["done"]


def test_the_patients_commands(tmp_path):
    config_path = write_config(tmp_path)
    (tmp_path / "roster.csv").write_text(
        "mrn,last_name,first_name,dob\n10000001,Doe,John,1980-01-02\n10000002,Doe,Jon,1980-01-02\n"
    )
    cli = CliRunner()

    def run(*args: str) -> str:
        result = cli.invoke(main_cli, ["--config", str(config_path), "patients", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "2 created" in run("import", str(tmp_path / "roster.csv"))
    index = PatientIndex.for_config(load_config(config_path))
    index.record_merge("10000002", "10000001", survivor_patient=None, control_id="C1", requested_by="x")
    index.close()
    listed = [json.loads(line) for line in run("list", "--json").splitlines()]
    assert [(p["mrn"], p["status"], p["merged_into"]) for p in listed] == [
        ("10000001", "active", None),
        ("10000002", "merged", "10000001"),
    ]
    assert [json.loads(line)["mrn"] for line in run("list", "--status", "active", "--json").splitlines()] == [
        "10000001"
    ]
    shown = json.loads(run("show", "10000001", "--json"))
    assert (shown["family"], shown["given"], shown["retired_mrns"]) == ("DOE", "JOHN", ["10000002"])
    assert "merged_into: 10000001" in run("show", "10000002")
    with pytest.raises(PatientIndexError, match="no patient with MRN 99999999"):
        cli.invoke(main_cli, ["--config", str(config_path), "patients", "show", "99999999"], catch_exceptions=False)
    audited = [e["action"] for e in AuditLog.for_config(load_config(config_path)).entries()]
    assert audited == [
        "patients.import",
        "patients.list",
        "patients.list",
        "patients.show",
        "patients.show",
        "patients.show",
    ]
