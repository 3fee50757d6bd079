"""Requests for information end to end through the library and `medarchive requests`: due dates on a
fixed clock, authorizations, sensitive records, fees, letters, the report, and the audit trail."""

from __future__ import annotations

import json
import subprocess
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from pipeline.archive.audit import AuditFilters, AuditLog
from pipeline.core.clock import today_local
from pipeline.core.config import Config, load_config
from pipeline.core.errors import MedarchiveError
from pipeline.identify.patients import Patient, PatientIndex
from pipeline.records.release import disclosures
from pipeline.requests.checks import RequestRefused
from pipeline.requests.duedates import DueDateError
from pipeline.requests.records import Ask, Requester
from pipeline.requests.service import NewRequest, RequestDesk, RequestError
from pipeline.requests.store import RequestConflict
from tests.conftest import invoke_cli

from .test_audit import MRN, OTHER_MRN, add_document, make_config

TODAY = date(2026, 1, 2)  # a Friday
NO_DOCS_MRN = "00555123"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    config = make_config(tmp_path)
    add_document(config, 1, doc_type="lab_result", doc_date="2019-02-03")
    add_document(config, 2, doc_type="discharge_summary", doc_date="2021-07-08")
    add_document(config, 3, doc_type="psychotherapy_note", doc_date="2021-08-01")
    add_document(config, 4, doc_type="authorization", doc_date="2025-12-20")
    add_document(config, 5, mrn=OTHER_MRN, doc_type="authorization", doc_date="2025-12-20", name="ROE, RICHARD")
    add_document(config, 6, doc_type="hiv_sti_result", doc_date="2021-09-01")
    patients = PatientIndex.for_config(config)
    patients.upsert(Patient(NO_DOCS_MRN, "DOE", "JANE", "1980-01-01"))
    patients.close()
    return config


def _ids(config: Config) -> dict[str, str]:
    from pipeline.archive.store import iter_sidecars

    return {f"{s.mrn}/{s.doc_type}": s.doc_id for s in iter_sidecars(config)}


def _new(kind: str = "attorney", mrn: str = MRN, ask: Ask | None = None, **changes) -> NewRequest:
    base = {
        "mrn": mrn,
        "kind": kind,
        "requester": Requester("Lee Law", "Lee & Partners LLP", "1 Court Square\nRiverside"),
        "purpose": "personal injury claim",
        "ask": ask or Ask(everything=True),
        "channel": "mail",
        "received": TODAY,
    }
    return NewRequest(**{**base, **changes})


def _pdftotext(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def _trail(config: Config, action: str) -> list[dict]:
    return list(AuditLog.for_config(config).entries(AuditFilters(action=action)))


def test_due_dates_come_from_the_kind_and_a_rule_change_never_moves_them(config: Config):
    desk = RequestDesk.for_config(config)
    patient = desk.add(_new("patient"), user="clerk", today=TODAY)
    provider = desk.add(_new("provider"), user="clerk", today=TODAY)
    assert patient.due == "2026-02-01"  # 30 calendar days
    assert provider.due == "2026-01-16"  # 10 business days, weekends skipped

    body = yaml.safe_load(config.path.read_text())
    body["requests"] = {"rules": {"patient": {"days": 10, "extension_days": 5}}, "holidays": ["2026-01-05"]}
    config.path.write_text(yaml.safe_dump(body))
    changed = RequestDesk.for_config(load_config(config.path))
    assert changed.store.get(patient.id).due == "2026-02-01"
    assert changed.add(_new("patient"), user="clerk", today=TODAY).due == "2026-01-12"
    # The extension is the stored rule's (30 days), not the new one's (5).
    extended = changed.extend(patient.id, reason="records off site", told=TODAY, user="clerk", today=TODAY)
    assert extended.due == "2026-03-03" and extended.status == "in_progress"
    with pytest.raises(DueDateError, match="already extended once"):
        changed.extend(patient.id, reason="again", told=TODAY, user="clerk", today=TODAY)


def test_bad_input_is_refused_with_the_field_named(config: Config):
    desk = RequestDesk.for_config(config)
    with pytest.raises(RequestError, match="MRN 00999999 is not a patient"):
        desk.add(_new(mrn="00999999"), user="clerk", today=TODAY)
    with pytest.raises(RequestError, match="is not an MRN"):
        desk.add(_new(mrn="12-AB"), user="clerk", today=TODAY)
    with pytest.raises(DueDateError, match="in the past"):
        desk.add(_new("legal", due=date(2025, 12, 31)), user="clerk", today=TODAY)
    with pytest.raises(DueDateError, match="after today"):
        desk.add(_new(received=TODAY + timedelta(days=1)), user="clerk", today=TODAY)
    with pytest.raises(RequestError, match="say what the request asks for"):
        desk.add(_new(ask=Ask()), user="clerk", today=TODAY)
    with pytest.raises(RequestError, match=f"not a document of MRN {MRN}"):
        desk.add(_new(ask=Ask(doc_ids=(_ids(config)[f"{OTHER_MRN}/authorization"],))), user="clerk", today=TODAY)
    assert desk.store.find() == []


def test_an_attorney_request_waits_for_a_current_authorization_of_this_patient(config: Config, tmp_path: Path):
    ids = _ids(config)
    desk = RequestDesk.for_config(config)
    request = desk.add(_new(), user="clerk", today=TODAY)
    out = tmp_path / "out"
    with pytest.raises(RequestRefused, match=r"needs a signed authorization.*nothing was released"):
        desk.fulfil(request.id, user="clerk", today=TODAY, out_dir=out)
    with pytest.raises(RequestRefused, match=f"not a filed document of MRN {MRN}"):
        desk.link_authorization(
            request.id, ids[f"{OTHER_MRN}/authorization"], expires=date(2026, 6, 30), user="c", today=TODAY
        )
    with pytest.raises(RequestRefused, match="is a lab_result, not an authorization"):
        desk.link_authorization(request.id, ids[f"{MRN}/lab_result"], expires=date(2026, 6, 30), user="c", today=TODAY)
    with pytest.raises(RequestRefused, match="expired on 2026-01-01"):
        desk.link_authorization(
            request.id, ids[f"{MRN}/authorization"], expires=date(2026, 1, 1), user="c", today=TODAY
        )
    desk.link_authorization(request.id, ids[f"{MRN}/authorization"], expires=date(2026, 1, 31), user="c", today=TODAY)
    with pytest.raises(RequestRefused, match=r"expired on 2026-01-31.*nothing was released"):
        desk.fulfil(request.id, user="clerk", today=date(2026, 2, 2), out_dir=out)
    assert not out.exists() and _trail(config, "export") == []
    assert desk.store.get(request.id).status == "in_progress"


def test_fulfilling_releases_what_was_asked_leaves_sensitive_records_out_and_says_so(config: Config, tmp_path: Path):
    ids = _ids(config)
    desk = RequestDesk.for_config(config)
    request = desk.add(_new(), user="clerk", today=TODAY)
    desk.link_authorization(request.id, ids[f"{MRN}/authorization"], expires=date(2026, 6, 30), user="c", today=TODAY)
    done = desk.fulfil(request.id, user="rel.clerk", today=TODAY, out_dir=tmp_path / "out", as_zip=True)
    released = {d["doc_type"] for d in done.release.documents}
    assert released == {"lab_result", "discharge_summary", "authorization"}
    assert {s.doc_type for s in done.withheld} == {"psychotherapy_note", "hiv_sti_result"}
    (archive,) = (tmp_path / "out").iterdir()
    with zipfile.ZipFile(archive) as zipped:
        names = set(zipped.namelist())
        cover = tmp_path / "cover.pdf"
        cover.write_bytes(zipped.read("cover_sheet.pdf"))
    assert len([n for n in names if n.endswith(".pdf") and n != "cover_sheet.pdf"]) == 3
    text = " ".join(_pdftotext(cover).split())
    assert f"REQ-{request.id} (attorney, received 2026-01-02)" in text
    assert "16.50 (3 page(s) at 0.50 + 15.00)" in text
    assert "not released under this request unless an authorization names them specifically" in text
    closed = desk.store.get(request.id)
    assert closed.status == "fulfilled" and closed.fee_cents == 1650 and closed.release_id == done.release.release_id
    assert set(closed.released_docs) == {d["doc_id"] for d in done.release.documents}
    (row,) = disclosures(AuditLog.for_config(config), MRN)
    assert row["request"].startswith(f"REQ-{request.id}") and row["release_id"] == closed.release_id
    with pytest.raises(RequestRefused, match="already fulfilled"):
        desk.fulfil(request.id, user="clerk", today=TODAY, out_dir=tmp_path / "again")


def test_a_sensitive_type_asked_for_needs_an_authorization_naming_it(config: Config, tmp_path: Path):
    ids = _ids(config)
    desk = RequestDesk.for_config(config)
    request = desk.add(_new(ask=Ask(doc_types=("psychotherapy_note",))), user="clerk", today=TODAY)
    auth = ids[f"{MRN}/authorization"]
    desk.link_authorization(request.id, auth, expires=date(2026, 6, 30), user="c", today=TODAY)
    with pytest.raises(RequestRefused, match=r"asks for psychotherapy_note.*nothing was released"):
        desk.fulfil(request.id, user="clerk", today=TODAY, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    specific = desk.add(_new(ask=Ask(doc_types=("psychotherapy_note",))), user="clerk", today=TODAY)
    desk.link_authorization(
        specific.id, auth, expires=date(2026, 6, 30), covers=["psychotherapy_note"], user="c", today=TODAY
    )
    done = desk.fulfil(specific.id, user="clerk", today=TODAY, out_dir=tmp_path / "out")
    assert [d["doc_type"] for d in done.release.documents] == ["psychotherapy_note"]


def test_a_patient_with_no_documents_gets_a_no_records_letter(config: Config, tmp_path: Path):
    desk = RequestDesk.for_config(config)
    request = desk.add(_new("patient", mrn=NO_DOCS_MRN), user="clerk", today=TODAY)
    done = desk.fulfil(request.id, user="clerk", today=TODAY, out_dir=tmp_path / "letters")
    assert done.release is None and done.letter.parent == tmp_path / "letters"
    text = " ".join(_pdftotext(done.letter).split())
    assert "hold no records" in text and f"REQ-{request.id}" in text and NO_DOCS_MRN in text
    closed = desk.store.get(request.id)
    assert closed.status == "fulfilled" and closed.fee_cents == 0 and closed.letter
    assert (config.root / closed.letter).stat().st_mode & 0o077 == 0


def test_a_denial_writes_the_letter_with_the_reason_and_whether_it_is_reviewable(config: Config, tmp_path: Path):
    desk = RequestDesk.for_config(config)
    request = desk.add(_new("patient"), user="clerk", today=TODAY)
    with pytest.raises(RequestError, match="unknown denial reason 'because'"):
        desk.deny(request.id, reason="because", note=None, user="clerk", today=TODAY)
    done = desk.deny(request.id, reason="endangerment", note="Reviewed by Dr. Hale.", user="clerk", today=TODAY)
    text = " ".join(_pdftotext(done.letter).split())
    assert "Denial of your request" in text and "Lee & Partners LLP" in text and "1 Court Square" in text
    assert "reasonably likely to endanger the life" in text and "Reviewed by Dr. Hale." in text
    assert "You may ask for this decision to be reviewed" in text
    other = desk.add(_new("patient"), user="clerk", today=TODAY)
    text = " ".join(
        _pdftotext(desk.deny(other.id, reason="legal_proceeding", note=None, user="c", today=TODAY).letter).split()
    )
    assert "This decision is not subject to review." in text
    assert desk.store.get(request.id).denial_reason == "endangerment"


def test_every_change_is_in_the_history_and_the_audit_log(config: Config):
    ids = _ids(config)
    desk = RequestDesk.for_config(config)
    request = desk.add(_new(), user="clerk", today=TODAY)
    desk.link_authorization(request.id, ids[f"{MRN}/authorization"], expires=date(2026, 6, 30), user="ann", today=TODAY)
    desk.withdraw(request.id, note="letter of 2026-01-02", user="bob", today=TODAY)
    history = desk.show(request.id, user="eve").history
    assert [(e.action, e.by, e.from_status, e.to_status) for e in history] == [
        ("add", "clerk", None, "received"),
        ("link_auth", "ann", "received", "in_progress"),
        ("withdraw", "bob", "in_progress", "withdrawn"),
    ]
    for action, user in (
        ("request.add", "clerk"),
        ("request.link_auth", "ann"),
        ("request.withdraw", "bob"),
        ("request.show", "eve"),
    ):
        (entry,) = _trail(config, action)
        assert entry["user"] == user and entry["mrns"] == [MRN] and entry["details"]["request"] == request.id


def test_the_cli_adds_lists_shows_fulfils_and_reports(config: Config, tmp_path: Path):
    today = today_local()
    added = invoke_cli(
        config.path,
        "--user",
        "kim",
        "requests",
        "add",
        "--mrn",
        MRN,
        "--kind",
        "patient",
        "--requester",
        "Rosalind Quigley",
        "--purpose",
        "own copy",
        "--all",
        "--json",
        check=True,
    )
    request = json.loads(added.stdout)
    assert request["due"] == (today + timedelta(days=30)).isoformat() and request["status"] == "received"
    bad = invoke_cli(
        config.path,
        "requests",
        "add",
        "--mrn",
        "00999999",
        "--kind",
        "patient",
        "--requester",
        "x",
        "--purpose",
        "y",
        "--all",
    )
    assert bad.returncode == 1 and "MRN 00999999 is not a patient" in bad.stderr
    listed = invoke_cli(config.path, "requests", "list", check=True)
    assert f"REQ-{request['id']}" in listed.stdout and "1 request(s): 1 open, 0 overdue" in listed.stderr
    status = invoke_cli(config.path, "status", "--json", check=True)
    assert json.loads(status.stdout)["requests"] == {"overdue": [], "due_soon": []}
    done = invoke_cli(config.path, "requests", "fulfil", str(request["id"]), "--out", str(tmp_path / "out"), check=True)
    assert "withheld" in done.stdout and "fee 6.50 (flat fee)" in done.stderr
    shown = invoke_cli(config.path, "requests", "show", str(request["id"]), check=True)
    assert "fulfilled" in shown.stdout and "history" in shown.stdout
    report = json.loads(invoke_cli(config.path, "requests", "report", "--json", check=True).stdout)
    assert report["total"] == 1 and report["by_kind"]["patient"]["fulfilled"] == 1 and report["median_days"] == 0


def test_the_cli_refuses_unknown_requests_and_bad_input_in_one_line(config: Config, tmp_path: Path):
    desk = RequestDesk.for_config(config)
    order = desk.add(_new("legal", received=today_local()), user="c", today=today_local())
    desk.close()
    for args in (["show", "999"], ["withdraw", "999", "--note", "x"], ["fulfil", "999", "--out", str(tmp_path / "a")]):
        missing = invoke_cli(config.path, "requests", *args)
        assert missing.returncode == 1 and missing.stderr.startswith("error: there is no request 999"), missing.stderr
    for fee in ("inf", "nan", "-3"):
        refused = invoke_cli(
            config.path, "requests", "fulfil", str(order.id), "--out", str(tmp_path / "b"), "--fee", fee
        )
        assert refused.returncode == 1 and refused.stderr.startswith("error: "), refused.stderr
        assert "Traceback" not in refused.stderr and not (tmp_path / "b").exists()
    no_expiry = invoke_cli(config.path, "requests", "link-auth", str(order.id), "0123456789abcdef-1")
    assert no_expiry.returncode != 0 and "--expires" in no_expiry.stderr
    inside = invoke_cli(
        config.path, "requests", "deny", str(order.id), "--reason", "identity_not_verified", "--out", str(config.root)
    )
    assert inside.returncode == 1 and "inside the data root" in inside.stderr
    assert RequestDesk.for_config(config).store.get(order.id).status == "received"  # refused means not denied
    backwards = invoke_cli(config.path, "requests", "report", "--from", "2026-02-01", "--to", "2026-01-01")
    assert backwards.returncode != 0 and "is after" in backwards.stderr
    assert _trail(config, "export") == []


def test_status_shows_requests_due_soon_and_overdue(config: Config):
    today = today_local()
    desk = RequestDesk.for_config(config)
    soon = desk.add(_new("legal", received=today, due=today + timedelta(days=2)), user="c", today=today)
    desk.add(_new("legal", received=today, due=today + timedelta(days=20)), user="c", today=today)
    late = desk.add(_new("provider", received=today - timedelta(days=60)), user="c", today=today)
    state = json.loads(invoke_cli(config.path, "status", "--json", check=True).stdout)["requests"]
    assert state == {"overdue": [late.id], "due_soon": [soon.id]}
    text = invoke_cli(config.path, "status", check=True).stdout
    assert "requests:   1 overdue, 1 due in the next 3 days" in text and f"REQ-{late.id}" in text
    assert MRN not in text and _trail(config, "request.show") == []  # no patient shown, none to account for


def test_a_legal_order_is_charged_the_actual_cost_given_but_no_records_cost_nothing(config: Config, tmp_path: Path):
    desk = RequestDesk.for_config(config)
    order = desk.add(_new("legal", ask=Ask(doc_types=("lab_result",))), user="c", today=TODAY)
    with pytest.raises(MedarchiveError, match="actual cost"):
        desk.fulfil(order.id, user="c", today=TODAY, out_dir=tmp_path / "a")
    done = desk.fulfil(order.id, user="c", today=TODAY, out_dir=tmp_path / "a", actual_cost=12.4)
    assert [d["doc_type"] for d in done.release.documents] == ["lab_result"]
    assert done.request.fee_cents == 1240 and done.request.fee_note == "actual cost"
    empty = desk.add(_new("legal", mrn=NO_DOCS_MRN), user="c", today=TODAY)
    assert desk.fulfil(empty.id, user="c", today=TODAY, out_dir=tmp_path / "b").request.fee_cents == 0


def test_a_second_fulfilment_while_one_runs_is_refused_before_anything_is_released(config: Config, tmp_path: Path):
    desk = RequestDesk.for_config(config)
    request = desk.add(_new("patient"), user="c", today=TODAY)
    desk.store.claim(request, at="2999-01-01T00:00:00+00:00", stale_before="2000-01-01")  # another clerk's, running
    with pytest.raises(RequestConflict, match=r"being fulfilled by someone else.*nothing was released"):
        desk.fulfil(request.id, user="c", today=TODAY, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() and _trail(config, "export") == []
    desk.store.unclaim(request.id)
    desk.store.claim(request, at="2000-01-01T00:00:00+00:00", stale_before="2000-01-01")  # left by a dead process
    assert desk.fulfil(request.id, user="c", today=TODAY, out_dir=tmp_path / "out").request.status == "fulfilled"


def test_no_other_change_while_a_fulfilment_runs(config: Config, tmp_path: Path):
    # A release under way must not end as a denied or withdrawn request whose records went out anyway.
    desk = RequestDesk.for_config(config)
    request = desk.add(_new("patient"), user="c", today=TODAY)
    desk.store.claim(request, at="2999-01-01T00:00:00+00:00", stale_before="2000-01-01")
    first_reason = next(iter(config.requests.denial_reasons))
    with pytest.raises(RequestConflict, match="being fulfilled"):
        desk.deny(request.id, reason=first_reason, note=None, user="c", today=TODAY)
    with pytest.raises(RequestConflict, match="being fulfilled"):
        desk.withdraw(request.id, note="letter of withdrawal", user="c", today=TODAY)
    with pytest.raises(RequestConflict, match="being fulfilled"):
        desk.extend(request.id, reason="records off site", told=TODAY, user="c", today=TODAY)
    assert desk.store.get(request.id).status == "received" and not any((config.root / "requests").glob("*.pdf"))
    desk.store.unclaim(request.id)
    desk.store.claim(request, at="2000-01-01T00:00:00+00:00", stale_before="2000-01-01")  # left by a dead process
    assert desk.withdraw(request.id, note="letter", user="c", today=TODAY).status == "withdrawn"


def test_a_failed_fulfilment_lets_go_of_the_request(config: Config, tmp_path: Path):
    desk = RequestDesk.for_config(config)
    request = desk.add(_new("patient"), user="c", today=TODAY)
    inside = config.root / "release"
    with pytest.raises(MedarchiveError, match="inside the data root"):
        desk.fulfil(request.id, user="c", today=TODAY, out_dir=inside)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(MedarchiveError, match="not an empty folder"):
        desk.fulfil(request.id, user="c", today=TODAY, out_dir=tmp_path / "taken")
    assert desk.fulfil(request.id, user="c", today=TODAY, out_dir=tmp_path / "out").request.status == "fulfilled"


def test_the_daemon_logs_requests_overdue_and_due_soon_once_a_day(config: Config, caplog):
    from watch_folders.daemon import Daemon

    desk = RequestDesk.for_config(config)
    late = desk.add(_new("provider", received=TODAY - timedelta(days=40)), user="c", today=TODAY)
    soon = desk.add(_new("legal", due=TODAY + timedelta(days=1)), user="c", today=TODAY)
    daemon = Daemon(config, index=None)
    with caplog.at_level("WARNING", logger="medarchive.watch"):
        daemon.remind_requests(TODAY)
        daemon.remind_requests(TODAY)
    (line,) = [r.getMessage() for r in caplog.records if "requests for information" in r.getMessage()]
    assert line == f"requests for information: 1 overdue ({late.ref}), 1 due within 3 days ({soon.ref})"
    assert MRN not in line
