"""The Prep page: a day's appointments by clinic, building the packets, opening one (audited)."""

from __future__ import annotations

import io

import pikepdf

from pipeline.archive.audit import AuditLog
from pipeline.clinic.appointments import Appointment, AppointmentBook
from tests.web.fixtures import app_for, csrf_of, data_site, filed, logged_in, site_config

DAY = "2030-01-15"


def test_prep_page_builds_and_opens_packets(tmp_path_factory):
    config = site_config(data_site(tmp_path_factory))
    app = app_for(config)
    mrn = filed(config)[0]["mrn"]
    book = AppointmentBook.for_config(config)
    book.save(Appointment("V1", mrn, f"{DAY}T09:00", "Cardiology", provider="SMITH, ANNA"))
    book.save(Appointment("V2", "99999999", f"{DAY}T08:00", "Cardiology"))
    book.close()
    client = logged_in(app, "cal")

    page = client.get(f"/prep?date={DAY}")
    assert page.status_code == 200
    assert "Cardiology" in page.text and mrn in page.text and "unknown patient" in page.text
    assert "Open packet" not in page.text
    built = client.post("/prep", data={"date": DAY, "csrf_token": csrf_of(page.text)})
    assert built.status_code == 302
    page = client.get(f"/prep?date={DAY}")
    assert page.text.count("Open packet") == 1

    pdf = client.get("/prep/packet/V1")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    with pikepdf.open(io.BytesIO(pdf.data)) as packet:
        assert len(packet.pages) >= 1
    assert client.get("/prep/packet/V2").status_code == 404
    assert client.get("/prep?date=tomorrow").status_code == 400
    actions = [
        (e["action"], e["user"]) for e in AuditLog.for_config(config).entries() if e["action"].startswith("prep.")
    ]
    assert ("prep.build", "cal") in actions and ("prep.open", "cal") in actions and ("prep.list", "cal") in actions
