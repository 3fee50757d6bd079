"""The admin page of the EHR outbox: counts, messages, retry of dead ones (admins only, audited)."""

from __future__ import annotations

from pipeline.archive.audit import AuditFilters, AuditLog
from pipeline.archive.dataroot import open_data_root
from pipeline.core.config import load_config
from pipeline.ehr.enqueue import enqueue_filed
from pipeline.ehr.outbox import Outbox
from tests.conftest import write_config
from tests.ehr_servers import file_document
from tests.web.fixtures import PASSWORDS, ROLES, app_for, csrf_of, logged_in
from web.users import UserStore

FHIR = {
    "name": "ehr-fhir",
    "kind": "fhir",
    "base_url": "http://127.0.0.1:9/fhir",
    "patient_identifier_system": "urn:oid:1.2",
}


def test_admin_sees_the_outbox_and_retries_a_dead_message(tmp_path):
    config = load_config(write_config(tmp_path, web={"secure_cookies": False}, ehr={"destinations": [FHIR]}))
    open_data_root(config)
    store = UserStore.for_config(config)
    for name in ("ada", "cal"):
        store.add(name, ROLES[name], PASSWORDS[name])
    docs = [file_document(config, n, mrn="1000001") for n in (1, 2)]
    enqueue_filed(config, docs)
    with Outbox.for_config(config) as outbox:
        dead = outbox.ready("ehr-fhir")[0]
        outbox.failed(dead.id, "HTTP 422: no such patient", retry_at=None)
    app = app_for(config)

    assert logged_in(app, "cal").get("/admin/ehr").status_code == 403
    client = logged_in(app, "ada")
    page = client.get("/admin/ehr")
    assert page.status_code == 200
    assert "HTTP 422: no such patient" in page.text and docs[1].doc_id in page.text
    assert "<td>ehr-fhir</td><td>1</td><td>0</td><td>1</td>" in page.text.replace("\n", "")
    done = client.post("/admin/ehr/retry", data={"csrf_token": csrf_of(page.text), "message": str(dead.id)})
    assert done.status_code == 302
    with Outbox.for_config(config) as outbox:
        assert outbox.get(dead.id).state == "pending"
    again = client.post("/admin/ehr/retry", data={"csrf_token": csrf_of(page.text), "message": str(dead.id)})
    assert again.status_code == 400 and "not dead" in again.text
    actions = [e["action"] for e in AuditLog.for_config(config).entries(AuditFilters(user="ada"))]
    assert "ehr.status" in actions and "ehr.retry" in actions
