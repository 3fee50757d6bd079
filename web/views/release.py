"""Release of information (roles release and admin): one patient's documents, all or the ticked ones, exported as a zip."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request, send_file

from pipeline.core.errors import MedarchiveError
from pipeline.records.release import ReleaseRequest, export_zip
from web.auth import requires
from web.context import current_user, record, services
from web.views.documents import is_mrn, patient_documents
from web.views.search import BadSearch, document_types, iso_date

bp = Blueprint("release", __name__)


def _form(error: str | None = None, status: int = 200) -> tuple[str, int]:
    values = request.values
    mrn = values.get("mrn", "").strip()
    hits = []
    if mrn and not is_mrn(mrn):
        error = error or f"{mrn!r} is not an MRN"
    elif mrn:
        hits = patient_documents(mrn)
        record(
            "patient",
            doc_ids=[h.doc_id for h in hits],
            mrns=[mrn],
            details={"what": "release form", "documents": len(hits)},
        )
    return render_template(
        "release.html",
        mrn=mrn,
        hits=hits,
        types=document_types(),
        form=values,
        chosen=set(values.getlist("type")),
        ticked=set(values.getlist("doc")),
        error=error,
    ), status


@bp.get("/release")
@requires("release", "admin")
def form() -> tuple[str, int]:
    return _form()


def _request() -> ReleaseRequest:
    form = request.form
    return ReleaseRequest(
        mrn=form.get("mrn", "").strip(),
        requester=form.get("requester", "").strip(),
        purpose=form.get("purpose", "").strip(),
        doc_types=tuple(form.getlist("type")),
        date_from=iso_date(form.get("from", ""), "from"),
        date_to=iso_date(form.get("to", ""), "to"),
        include_review=form.get("include_review") == "on",
        doc_ids=tuple(form.getlist("doc")),
    )


@bp.post("/release")
@requires("release", "admin")
def make() -> tuple[str, int] | Response:
    try:
        wanted = _request()
    except BadSearch as exc:
        return _form(str(exc), 400)
    try:
        # Nothing of it is left on disk by now: only the open file, gone when the response is.
        release, archive = export_zip(services().config, wanted, user=current_user().name, audit=services().audit)
    except MedarchiveError as exc:
        return _form(str(exc), 400)
    return send_file(
        archive,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"{release.release_id}.zip",
        conditional=False,
    )
