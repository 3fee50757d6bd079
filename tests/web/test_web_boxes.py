"""The Boxes page (admins only) and the box line on the document page."""

from __future__ import annotations

from pipeline.paper import boxes as paper
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
