"""The Boxes page (admins): every off-site box by state, which may be destroyed now, and documents whose box is unknown."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, render_template

from pipeline.paper.boxes import overview
from pipeline.paper.rules import destroy_refusal
from web.auth import requires
from web.context import record, services

bp = Blueprint("boxes", __name__, url_prefix="/admin")


@bp.get("/boxes")
@requires("admin")
def boxes() -> str:
    config = services().config
    views, unknown = overview(config)
    today = date.today()
    rows = [
        (
            v,
            destroy_refusal(
                v.box.state, v.documents, config.retention.legal_holds, config.boxes.keep_paper_days, today
            ),
        )
        for v in views
    ]
    record(
        "box.list",
        doc_ids=[d.doc_id for d in unknown],
        mrns=[d.mrn for d in unknown],
        details={"boxes": len(views), "unknown": len(unknown)},
    )
    return render_template("boxes.html", rows=rows, unknown=unknown)
