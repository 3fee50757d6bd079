"""The review queue: each waiting document's first page beside what was read from it, and one form to file it."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from indexers.base import SearchFilters
from pipeline.archive.sidecar import Sidecar
from pipeline.core.errors import MedarchiveError
from pipeline.records.review import assign
from web.context import current_user, record, services
from web.documents import load, mrns_of, read_at
from web.views.search import document_types

# The queue page lists at most this many; a longer queue is worked from the top.
QUEUE_LIMIT = 500

bp = Blueprint("review", __name__)


def _queue() -> list[Sidecar]:
    # From the index rather than pipeline.review.waiting, which reads every
    # sidecar of the archive; only the waiting documents' sidecars are read here.
    config = services().config
    hits = services().index.search("", SearchFilters(status="review"), limit=QUEUE_LIMIT)
    sidecars = [s for s in (read_at(config, h.path) for h in hits) if s and s.status == "review"]
    return sorted(sidecars, key=lambda s: s.since or "")


@bp.get("/review")
def queue() -> str:
    waiting = _queue()
    record(
        "review.view",
        doc_ids=[s.doc_id for s in waiting],
        mrns=[m for s in waiting for m in mrns_of(s)],
        details={"what": "queue", "documents": len(waiting)},
    )
    return render_template("review_queue.html", waiting=waiting, limit=QUEUE_LIMIT)


def _item(sidecar: Sidecar, error: str | None = None, status: int = 200) -> tuple[str, int]:
    record("review.view", doc_ids=[sidecar.doc_id], mrns=mrns_of(sidecar), details={"what": "item"})
    form = {
        "mrn": request.form.get("mrn", sidecar.suggested_mrn or ""),
        "doc_type": request.form.get("doc_type", sidecar.doc_type),
    }
    return render_template("review_item.html", doc=sidecar, types=document_types(), form=form, error=error), status


@bp.get("/review/<doc_id>")
def item(doc_id: str) -> tuple[str, int] | Response:
    sidecar = load(doc_id)
    if sidecar.status != "review":
        return redirect(url_for("documents.document", doc_id=doc_id))
    return _item(sidecar)


@bp.post("/review/<doc_id>")
def file_item(doc_id: str) -> tuple[str, int] | Response:
    sidecar = load(doc_id)
    mrn = request.form.get("mrn", "").strip()
    doc_type = request.form.get("doc_type", "").strip() or None
    svc = services()
    try:
        moved = assign(svc.config, svc.index, svc.audit, doc_id, mrn=mrn, doc_type=doc_type, user=current_user().name)
    except MedarchiveError as exc:
        return _item(sidecar, error=str(exc), status=400)
    g.session.notice = f"Filed {doc_id} under MRN {moved.mrn} as {moved.doc_type}."
    return redirect(url_for("review.queue"))
