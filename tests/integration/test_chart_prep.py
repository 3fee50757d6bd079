"""Chart preparation end to end: appointments in (CSV and SIU over the real MLLP listener), the
packet for each (exactly the documents the rules pick, in order, with what is missing named),
the merged PDF (cover, bookmarks, page counts), packets destroyed with their sources and when old."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pikepdf
import pytest
from reportlab.pdfgen import canvas

from pipeline.archive.audit import AuditLog
from pipeline.archive.dataroot import open_data_root
from pipeline.archive.derived import packets_dir
from pipeline.archive.index import open_index
from pipeline.archive.store import record_from_sidecar
from pipeline.clinic.appointments import Appointment, AppointmentBook
from pipeline.clinic.packets import expire_packets, packet_path
from pipeline.clinic.prep import open_packet, plan_day, prepare_day
from pipeline.core.config import load_config
from pipeline.identify.patients import PatientIndex
from pipeline.identify.roster import RosterPatient
from pipeline.records import review
from tests.conftest import invoke_cli, write_config
from tests.ehr_servers import file_document
from tests.integration.test_hl7_inbound import Running, _ack

DAY = date(2026, 12, 9)
KNOWN, OTHER, STRANGER = "20000001", "20000002", "29999999"


def pdf_of(pages: int, label: str) -> bytes:
    import io

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    for n in range(pages):
        page.drawString(72, 720, f"{label} page {n + 1}")
        page.showPage()
    page.save()
    return buffer.getvalue()


@pytest.fixture
def config(tmp_path: Path):
    cfg = load_config(
        write_config(
            tmp_path,
            hl7_listener={"port": 0},
            chart_prep={
                "packets": {
                    "default": [{"type": "discharge_summary"}],
                    "Cardiology": [
                        {"type": "discharge_summary"},
                        {"type": "lab_result", "select": "all", "within_days": 90},
                        {"type": "consent_form", "select": "all"},
                        {"type": "operative_report"},
                    ],
                }
            },
        )
    )
    open_data_root(cfg)
    patients = PatientIndex.for_config(cfg)
    patients.import_roster(
        [RosterPatient(KNOWN, "DOE", "JANE", "1961-04-12"), RosterPatient(OTHER, "ROE", "RICHARD", "1970-01-01")]
    )
    patients.close()
    return cfg


@pytest.fixture
def archive(config):
    """Documents of KNOWN (and one of OTHER), written straight into the archive and indexed."""
    docs = {
        "ds-old": file_document(config, 1, mrn=KNOWN, doc_type="discharge_summary", doc_date="2024-02-01"),
        "ds-new": file_document(
            config, 2, mrn=KNOWN, doc_type="discharge_summary", doc_date="2026-10-01", pdf_bytes=pdf_of(3, "ds")
        ),
        "lab-1": file_document(config, 3, mrn=KNOWN, doc_type="lab_result", doc_date="2026-12-01"),
        "lab-2": file_document(
            config, 4, mrn=KNOWN, doc_type="lab_result", doc_date="2026-11-01", pdf_bytes=pdf_of(2, "lab")
        ),
        "lab-old": file_document(config, 5, mrn=KNOWN, doc_type="lab_result", doc_date="2026-01-01"),
        "consent": file_document(config, 6, mrn=KNOWN, doc_type="consent_form", doc_date="2025-05-05"),
        "other": file_document(config, 7, mrn=OTHER, doc_type="discharge_summary", doc_date="2026-11-20"),
    }
    index = open_index(config)
    index.add([record_from_sidecar(s) for s in docs.values()])
    index.close()
    return docs


def book(config, *appointments: Appointment) -> None:
    store = AppointmentBook.for_config(config)
    for a in appointments:
        store.save(a)
    store.close()


def visit(appointment_id: str, mrn: str, clinic: str, at: str = "09:30") -> Appointment:
    return Appointment(appointment_id, mrn, f"{DAY.isoformat()}T{at}", clinic, provider="SMITH, ANNA")


def test_the_packet_holds_exactly_what_the_clinic_wants_in_order(config, archive):
    book(config, visit("A1", KNOWN, "Cardiology"), visit("A2", OTHER, "Dermatology", "10:00"))
    visits = prepare_day(config, DAY, user="clerk", today=DAY)
    first, second = visits
    ids = {s.doc_id: name for name, s in archive.items()}
    assert [ids[d.doc_id] for d in first.documents] == ["ds-new", "lab-1", "lab-2", "consent"]
    assert first.state == "incomplete"
    assert first.missing == ["no operative report on file"]
    assert (second.state, [ids[d.doc_id] for d in second.documents]) == ("ready", ["other"])

    path = packet_path(config, first.appointment)
    assert path.stat().st_mode & 0o777 == 0o600
    with pikepdf.open(path) as pdf:
        # cover + 3 + 1 + 2 + 1 pages
        assert len(pdf.pages) == 1 + 3 + 1 + 2 + 1
        with pdf.open_outline() as outline:
            marks = [(item.title, pdf.pages.index(item.destination[0])) for item in outline.root]
    assert marks == [
        ("Cover and contents", 0),
        ("Discharge summary - 2026-10-01", 1),
        ("Lab result - 2026-12-01", 4),
        ("Lab result - 2026-11-01", 5),
        ("Consent form - 2025-05-05", 7),
    ]
    built = [e for e in AuditLog.for_config(config).entries() if e["action"] == "prep.build"]
    assert [e["mrns"] for e in built] == [[KNOWN], [OTHER]]


def test_a_document_that_is_no_readable_pdf_is_left_out_and_the_day_goes_on(config, archive):
    broken = file_document(
        config, 8, mrn=OTHER, doc_type="discharge_summary", doc_date="2026-12-01", pdf_bytes=b"%PDF-1.4 torn"
    )
    book(config, visit("A2", OTHER, "Dermatology", "08:00"), visit("A1", KNOWN, "Cardiology"))
    first, second = prepare_day(config, DAY, user="clerk", today=DAY)
    assert first.packet is not None and second.packet is not None
    assert first.packet.documents == () and first.packet.skipped[0].startswith(f"{broken.doc_id}: not a readable PDF")
    assert len(second.packet.documents) == 4


def test_an_unknown_patient_is_shown_and_gets_no_packet(config, archive):
    book(config, visit("A9", STRANGER, "Cardiology"))
    (only,) = prepare_day(config, DAY, user="clerk", today=DAY)
    assert only.state == "unknown patient" and only.packet is None
    assert not packet_path(config, only.appointment).exists()


def test_packets_go_with_their_source_documents_and_when_old(config, archive):
    book(config, visit("A1", KNOWN, "Cardiology"), visit("A2", OTHER, "Dermatology"))
    prepare_day(config, DAY, user="clerk", today=DAY)
    first, second = (packet_path(config, visit(i, "x", "y")) for i in ("A1", "A2"))
    assert first.exists() and second.exists()
    index = open_index(config)
    try:
        review.reassign(
            config,
            index,
            AuditLog.for_config(config),
            archive["lab-1"].doc_id,
            mrn=OTHER,
            doc_type=None,
            user="clerk",
            reason="misfiled",
        )
    finally:
        index.close()
    assert not first.exists() and not first.with_suffix(".json").exists()
    assert second.exists()
    assert expire_packets(config, DAY + timedelta(days=config.chart_prep.keep_days)) == 0
    assert expire_packets(config, DAY + timedelta(days=config.chart_prep.keep_days + 1)) == 1
    assert not any(packets_dir(config).iterdir())


def test_opening_a_packet_is_audited_and_a_missing_one_explained(config, archive):
    book(config, visit("A1", KNOWN, "Cardiology"))
    with pytest.raises(Exception, match="no packet for appointment A1"):
        open_packet(config, "A1", user="clerk")
    prepare_day(config, DAY, user="clerk", today=DAY)
    assert open_packet(config, "A1", user="nurse").is_file()
    opened = [e for e in AuditLog.for_config(config).entries() if e["action"] == "prep.open"]
    assert [(e["user"], e["mrns"]) for e in opened] == [("nurse", [KNOWN])]


def test_csv_import_and_prep_commands(config, archive, tmp_path):
    csv_file = tmp_path / "schedule.csv"
    csv_file.write_text(
        "appointment_id,mrn,start,clinic,provider\n"
        f"C1,{KNOWN},{DAY} 08:15,cardiology,Dr Who\n"
        f"C2,../../etc,{DAY} 09:00,cardiology,\n"
        f"C3,{OTHER},tomorrow,cardiology,\n"
        f"C4,{STRANGER},{DAY} 11:00,Podiatry,\n"
    )
    done = invoke_cli(config.path, "appointments", "import", str(csv_file))
    assert done.returncode == 2
    assert "imported 2 appointment(s)" in done.stdout
    assert "line 3: mrn is not an MRN" in done.stderr and "line 4: start is not a date" in done.stderr
    again = invoke_cli(config.path, "appointments", "import", str(csv_file))
    assert "2 unchanged" in again.stdout

    listed = invoke_cli(config.path, "prep", "--date", DAY.isoformat(), "--dry-run", "--json", check=True)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["appointment_id"], r["state"]) for r in rows] == [("C1", "incomplete"), ("C4", "unknown patient")]
    assert not packets_dir(config).exists() or not any(packets_dir(config).rglob("*.pdf"))
    built = invoke_cli(config.path, "prep", "--date", DAY.isoformat(), check=True)
    assert "missing: no operative report on file" in built.stdout
    assert "2 appointment(s) on 2026-12-09: 0 ready, 1 incomplete, 1 unknown patient" in built.stderr
    assert packet_path(config, visit("C1", KNOWN, "x")).is_file()


def test_a_schedule_export_that_cannot_be_read_is_refused_whole(config, tmp_path):
    no_clinic = tmp_path / "no-clinic.csv"
    no_clinic.write_text(f"appointment_id,mrn,start\nC1,{KNOWN},{DAY} 08:15\n")
    refused = invoke_cli(config.path, "appointments", "import", str(no_clinic))
    assert refused.returncode == 1 and "no-clinic.csv has no column clinic" in refused.stderr
    binary = tmp_path / "export.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81binary")
    unreadable = invoke_cli(config.path, "appointments", "import", str(binary))
    assert unreadable.returncode == 1 and "cannot read export.csv" in unreadable.stderr
    bad_day = invoke_cli(config.path, "prep", "--date", "09/12/2026")
    assert bad_day.returncode != 0 and "YYYY-MM-DD" in bad_day.stderr
    with AppointmentBook.for_config(config) as store:
        assert store.on(DAY, include_cancelled=True) == []


def _siu(event: str, control: str, appointment_id: str, mrn: str, start: str | None, clinic: str = "Cardiology") -> str:
    lines = [
        f"MSH|^~\\&|SCHED|HOSP|MEDARCHIVE|HOSP|20261208120000||SIU^{event}^SIU_S12|{control}|P|2.5",
        f"SCH||{appointment_id}^SCHED|||||ROUTINE|||^^^{start or ''}",
        f"PID|1||{mrn}^^^HOSP^MR||DOE^JANE||19610412|F",
        "RGS|1",
        f"AIS|1||CARDIO-FU|{start or ''}",
        f"AIL|1||{clinic}^^^HOSP",
        "AIP|1||1234^SMITH^ANNA",
    ]
    return "\r".join(lines) + "\r"


def test_siu_messages_book_move_and_cancel_appointments(config):
    server = Running(config)
    try:
        acks = server.send(
            _siu("S12", "m1", "APT-1", KNOWN, "202612090930"),
            _siu("S12", "m2", "APT-2", STRANGER, "202612091000"),
            _siu("S13", "m3", "APT-1", KNOWN, "202612091415"),
            _siu("S15", "m4", "APT-2", STRANGER, None),
            _siu("S12", "m5", "APT-3", KNOWN, "not-a-time"),
            _siu("S12", "m6", "", KNOWN, "202612090800"),
        )
    finally:
        server.close()
    answers = [_ack(a)[0] for a in acks]
    assert answers == ["AA", "AA", "AA", "AA", "AE", "AE"]
    store = AppointmentBook.for_config(config)
    try:
        booked = store.on(DAY)
        everything = store.on(DAY, include_cancelled=True)
        assert store.get("APT-3") is None
    finally:
        store.close()
    assert [(a.appointment_id, a.starts_at, a.clinic, a.provider) for a in booked] == [
        ("APT-1", "2026-12-09T14:15", "Cardiology", "SMITH, ANNA")
    ]
    assert {a.appointment_id: a.status for a in everything} == {"APT-1": "booked", "APT-2": "cancelled"}
    (unknown,) = [v for v in plan_day(config, DAY) if v.appointment.appointment_id == "APT-1"]
    assert unknown.patient == "DOE, JANE"


def test_the_daemon_builds_tomorrows_packets_once_after_run_at(config, archive):
    from datetime import datetime

    from pipeline.clinic.schedule import maybe_prepare

    scheduled = config.model_copy(update={"chart_prep": config.chart_prep.model_copy(update={"run_at": "18:00"})})
    book(scheduled, visit("A1", KNOWN, "Cardiology"))
    eve = datetime(2026, 12, 8, 17, 59)
    assert maybe_prepare(scheduled, eve) is not None  # never run before: the last run time has passed
    packet = packet_path(scheduled, visit("A1", KNOWN, "x"))
    assert packet.is_file()
    packet.unlink()
    assert maybe_prepare(scheduled, eve.replace(minute=59, hour=17)) is None
    message = maybe_prepare(scheduled, datetime(2026, 12, 8, 18, 1))
    assert message == "chart preparation for 2026-12-09: 1 appointment(s), 1 packet(s) built"
    assert packet.is_file()
    assert maybe_prepare(scheduled, datetime(2026, 12, 8, 23, 0)) is None
    assert maybe_prepare(config, datetime(2026, 12, 9, 19, 0)) is None  # no run_at: never


def test_a_packets_documents_not_yet_sent_are_queued_for_the_ehr(tmp_path):
    from tests.ehr_servers import outbox_messages

    cfg = load_config(
        write_config(
            tmp_path,
            chart_prep={"send_to_ehr": True, "packets": {"default": [{"type": "lab_result", "select": "all"}]}},
            ehr={"destinations": [{"name": "ehr-mdm", "kind": "hl7v2", "host": "127.0.0.1", "port": 9}]},
        )
    )
    open_data_root(cfg)
    labs = [file_document(cfg, n, mrn=KNOWN, doc_type="lab_result", doc_date=f"2026-11-0{n}") for n in (1, 2)]
    file_document(cfg, 3, mrn=KNOWN, doc_type="consent_form")
    # left out of the packet (altered since filing), so not sent either
    altered = file_document(cfg, 4, mrn=KNOWN, doc_type="lab_result", doc_date="2026-11-04")
    (cfg.root / altered.path).write_bytes(b"%PDF-1.4 changed after filing")
    book(cfg, visit("A1", KNOWN, "Any"))
    prepare_day(cfg, DAY, user="clerk", today=DAY)
    queued = outbox_messages(cfg)
    assert sorted(m.doc_id for m in queued) == sorted(s.doc_id for s in labs)
    assert {m.state for m in queued} == {"pending"}
    prepare_day(cfg, DAY, user="clerk", today=DAY)
    assert len(outbox_messages(cfg)) == 2  # already queued: nothing twice
