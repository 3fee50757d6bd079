"""The admin page of merges held from the registration feed: confirm or reject (admins only, audited)."""

from __future__ import annotations

from pipeline.archive.audit import AuditFilters, AuditLog
from pipeline.archive.dataroot import open_data_root
from pipeline.core.config import load_config
from pipeline.identify.patients import Patient, PatientIndex
from pipeline.identify.roster import RosterPatient
from tests.conftest import write_config
from tests.web.fixtures import PASSWORDS, ROLES, app_for, csrf_of, logged_in
from web.users import UserStore


def test_admin_confirms_one_held_merge_and_rejects_another(tmp_path):
    config = load_config(write_config(tmp_path, web={"secure_cookies": False}))
    open_data_root(config)
    store = UserStore.for_config(config)
    for name in ("ada", "cal"):
        store.add(name, ROLES[name], PASSWORDS[name])
    patients = PatientIndex.for_config(config)
    patients.import_roster(
        [RosterPatient("1000001", "DOE", "JOHN", "1980-01-02"), RosterPatient("1000003", "ROE", "RICH", "1975-02-03")]
    )
    spoof, _ = patients.hold(
        "merge", "1000003", "1000001", patient=None, control_id="X1", requested_by="hl7:R@H", held_because="differs"
    )
    unknown, _ = patients.hold(
        "merge",
        "1000003",
        "1999999",
        patient=Patient("1999999", "NEW", "PERSON", "1990-01-01"),
        control_id="X2",
        requested_by="hl7:R@H",
        held_because="the surviving MRN 1999999 is not in the patient index",
    )
    app = app_for(config)

    assert logged_in(app, "cal").get("/admin/merges").status_code == 403
    client = logged_in(app, "ada")
    page = client.get("/admin/merges")
    assert page.status_code == 200 and "the surviving MRN 1999999 is not in the patient index" in page.text
    token = csrf_of(page.text)
    no_reason = client.post(f"/admin/merges/{spoof.id}", data={"csrf_token": token, "decision": "reject"})
    assert no_reason.status_code == 400 and "say why" in no_reason.text
    rejected = client.post(
        f"/admin/merges/{spoof.id}", data={"csrf_token": token, "decision": "reject", "reason": "not the same person"}
    )
    assert rejected.status_code == 302
    confirmed = client.post(f"/admin/merges/{unknown.id}", data={"csrf_token": token, "decision": "confirm"})
    assert confirmed.status_code == 302
    twice = client.post(f"/admin/merges/{unknown.id}", data={"csrf_token": token, "decision": "confirm"})
    assert twice.status_code == 400 and "already confirmed by ada" in twice.text

    assert patients.survivor_of("1000003") == "1999999" and patients.get("1999999").family == "NEW"
    assert [m.survivor for m in patients.open_merges()] == ["1999999"]  # the listener moves the documents
    patients.close()
    entries = AuditLog.for_config(config).entries(AuditFilters(user="ada"))
    decided = [(e["action"], e["outcome"], e["details"].get("review")) for e in entries if e["action"] != "login"]
    assert ("patient.merge", "rejected", spoof.id) in decided and ("patient.merge", "confirmed", unknown.id) in decided
    assert any(a == "patients.merges" for a, _, _ in decided)
