"""The Boxes page (admins only) and the box line on the document page."""

from __future__ import annotations

from dataclasses import replace

from pipeline.archive.audit import AuditLog
from pipeline.archive.sidecar import PaperRef, write_sidecar
from pipeline.archive.store import find_sidecar, sidecar_path
from pipeline.paper import boxes as paper
from tests.conftest import invoke_cli
from tests.web.fixtures import app_for, data_site, filed, logged_in, site_config


def test_boxes_page_and_the_document_paper_line(tmp_path_factory):
    config = site_config(data_site(tmp_path_factory))
    app = app_for(config)
    doc_id = filed(config)[0]["doc_id"]
    paper.assign(config, "BOX-000321", [doc_id], user="ada")
    paper.close(config, "BOX-000321", user="ada")
    paper.ship(config, "BOX-000321", vendor="Iron Vault", user="ada")

    admin = logged_in(app, "ada")
    page = admin.get("/admin/boxes")
    assert page.status_code == 200
    assert "BOX-000321" in page.text and "Iron Vault since" in page.text and "paper is kept 90 days" in page.text
    doc = admin.get(f"/doc/{doc_id}")
    assert "paper original in box BOX-000321, at Iron Vault since" in doc.text
    assert logged_in(app, "cal").get("/admin/boxes").status_code == 403


def test_the_documents_whose_box_is_unknown_are_shown_and_audited(tmp_path_factory):
    config = site_config(data_site(tmp_path_factory))
    app = app_for(config)
    doc = find_sidecar(config, filed(config)[1]["doc_id"])
    unread = replace(doc, paper=PaperRef(None, "label unreadable", "2030-01-01T00:00:00+00:00", "scanner"))
    write_sidecar(sidecar_path(config.root / doc.path), unread)

    page = logged_in(app, "ada").get("/admin/boxes")
    assert page.status_code == 200 and doc.doc_id in page.text and f"MRN {doc.mrn}" in page.text
    (entry,) = [e for e in AuditLog.for_config(config).entries() if e["action"] == "box.list"]
    assert entry["doc_ids"] == [doc.doc_id] and entry["mrns"] == [doc.mrn]
    invoke_cli(config.path, "boxes", "list", check=True)
    cli_entry = [e for e in AuditLog.for_config(config).entries() if e["action"] == "box.list"][-1]
    assert cli_entry["doc_ids"] == [doc.doc_id] and cli_entry["mrns"] == [doc.mrn]
