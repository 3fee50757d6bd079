"""One patient's documents, one document's page, and its PDF, page images and download."""

from __future__ import annotations

from itertools import groupby

from flask import Blueprint, Response, abort, render_template, request, send_file

from indexers.base import SearchFilters, SearchHit
from pipeline.identify.type_source import type_source
from pipeline.paper.boxes import paper_line
from web.context import record, services
from web.documents import load, mrns_of, pdf_of, read_at
from web.thumbs import PREVIEW_DPI, THUMB_DPI, page_image

# Far more documents than one patient has; the page shows them all.
PATIENT_LIMIT = 10_000
_IMAGE_DPI = {"thumb": THUMB_DPI, "preview": PREVIEW_DPI}

bp = Blueprint("documents", __name__)


def is_mrn(text: str) -> bool:
    return services().config.extraction.is_mrn(text)


def patient_documents(mrn: str) -> list[SearchHit]:
    """The documents filed under an MRN, newest first (from the index: no path is built from the MRN)."""
    if not is_mrn(mrn):
        abort(404)
    return services().index.search("", SearchFilters(mrn=mrn, status="filed"), limit=PATIENT_LIMIT)


@bp.get("/patient/<mrn>")
def patient(mrn: str) -> str:
    hits = patient_documents(mrn)
    if not hits:
        abort(404)
    newest = read_at(services().config, hits[0].path)
    # A stable sort by type keeps each group newest first.
    by_type = [(t, list(g)) for t, g in groupby(sorted(hits, key=lambda h: h.doc_type), key=lambda h: h.doc_type)]
    record("patient", doc_ids=[h.doc_id for h in hits], mrns=[mrn], details={"documents": len(hits)})
    return render_template(
        "patient.html",
        mrn=mrn,
        name=hits[0].patient_name,
        dob=newest.dob if newest else None,
        groups=by_type,
        count=len(hits),
    )


@bp.get("/doc/<doc_id>")
def document(doc_id: str) -> str:
    sidecar = load(doc_id)
    record("view", doc_ids=[doc_id], mrns=mrns_of(sidecar), details={"what": "document page"})
    return render_template(
        "document.html",
        doc=sidecar,
        pages=range(1, sidecar.pages + 1),
        type_source=type_source(sidecar).label,
        paper=paper_line(services().config, sidecar),
    )


@bp.get("/doc/<doc_id>/pdf")
def pdf(doc_id: str) -> Response:
    sidecar = load(doc_id)
    path = pdf_of(sidecar)
    record("view", doc_ids=[doc_id], mrns=mrns_of(sidecar), details={"what": "pdf"})
    return send_file(path, mimetype="application/pdf", download_name=f"{doc_id}.pdf", conditional=False)


@bp.get("/doc/<doc_id>/download")
def download(doc_id: str) -> Response:
    sidecar = load(doc_id)
    path = pdf_of(sidecar)
    record("download", doc_ids=[doc_id], mrns=mrns_of(sidecar), details={"what": "pdf"})
    return send_file(path, mimetype="application/pdf", as_attachment=True, download_name=path.name, conditional=False)


@bp.get("/doc/<doc_id>/page/<int:page>.png")
def page_png(doc_id: str, page: int) -> Response:
    sidecar = load(doc_id)
    dpi = _IMAGE_DPI.get(request.args.get("size", "thumb"))
    if dpi is None or not 1 <= page <= sidecar.pages:
        abort(404)
    image = page_image(services().config, pdf_of(sidecar), sidecar.sha256, page, dpi)
    record("view", doc_ids=[doc_id], mrns=mrns_of(sidecar), details={"what": "page image", "page": page})
    return send_file(image, mimetype="image/png", conditional=False)
