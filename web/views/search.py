"""The search page: one box plus filters, ranked hits with highlighted snippets and the page of each hit."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date

from flask import Blueprint, render_template, request
from markupsafe import Markup, escape

from indexers.base import SearchFilters, SearchHit
from pipeline.core.errors import MedarchiveError
from web.context import record, services
from web.documents import hit_page, read_at

MAX_PAGE = 50
_SITE = re.compile(
    r"[a-z0-9][a-z0-9_-]{0,31}"
)  # as config.site  # deeper than this, a clerk should narrow the search instead
STATUSES = ("filed", "review")
_MARKED = re.compile(r"\*\*(.+?)\*\*")

bp = Blueprint("search", __name__)


class BadSearch(ValueError):
    """A filter the clerk typed cannot be used (the message says which)."""


@dataclass(frozen=True)
class Row:
    hit: SearchHit
    snippet: Markup
    page: int | None


def highlight(snippet: str) -> Markup:
    """The index marks matches with **; shown as <mark>, with everything else escaped."""
    return Markup(_MARKED.sub(lambda m: f"<mark>{m.group(1)}</mark>", str(escape(snippet))))


def iso_date(value: str, label: str) -> str | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise BadSearch(f"{label} {value!r} is not a date; write it as YYYY-MM-DD") from None


def _filters(args) -> SearchFilters:
    status = args.get("status", "")
    if status and status not in STATUSES:
        raise BadSearch(f"unknown status {status!r}")
    doc_type = args.get("type", "")
    if doc_type and doc_type not in document_types():
        raise BadSearch(f"unknown document type {doc_type!r}")
    site = args.get("site", "").strip()
    if site and not _SITE.fullmatch(site):
        raise BadSearch(f"unknown site {site!r}")
    return SearchFilters(
        mrn=args.get("mrn", "").strip() or None,
        doc_type=doc_type or None,
        status=status or None,
        date_from=iso_date(args.get("from", ""), "from"),
        date_to=iso_date(args.get("to", ""), "to"),
        site=site or None,
    )


def query_text(text: str, name: str) -> str:
    """The box's query, narrowed to a patient name through the index's patient_name field."""
    words = re.findall(r"\w+", name)
    parts = [f"({text})" if text.strip() else "", " ".join(f"patient_name:{w}" for w in words)]
    return " ".join(p for p in parts if p)


def document_types() -> list[str]:
    return sorted({*services().config.classification.types, "unclassified"})


def _page_number(args) -> int:
    try:
        return min(max(int(args.get("page", "1")), 1), MAX_PAGE)
    except ValueError:
        return 1


def _rows(hits: list[SearchHit]) -> list[Row]:
    config = services().config
    # Only the shown hits' sidecars are read, and only when the snippet marks a match to look for.
    return [
        Row(h, highlight(h.snippet), hit_page(read_at(config, h.path), h.snippet) if "**" in h.snippet else None)
        for h in hits
    ]


@bp.get("/")
def search() -> tuple[str, int] | str:
    args = request.args
    text, name = args.get("q", "").strip(), args.get("name", "").strip()
    page, size = _page_number(args), services().config.web.page_size
    shared = services().config.database.url is not None  # several sites share the index
    context = {"args": args, "types": document_types(), "statuses": STATUSES, "page": page, "sites": shared}
    try:
        filters = _filters(args)
    except BadSearch as exc:
        return render_template("search.html", error=str(exc), **context), 400
    if not (text or name or any(dataclasses.asdict(filters).values())):
        return render_template("search.html", rows=None, **context)
    query = query_text(text, name)
    try:
        hits = services().index.search(query, filters, limit=page * size + 1)
    except MedarchiveError as exc:
        return render_template("search.html", error=str(exc), **context), 400
    shown = hits[(page - 1) * size : page * size]
    record(
        "search",
        doc_ids=[h.doc_id for h in shown],
        mrns=[filters.mrn, *(h.mrn for h in shown)],
        details={"query": query, "filters": dataclasses.asdict(filters), "page": page, "results": len(shown)},
    )
    return render_template(
        "search.html", rows=_rows(shown), has_next=len(hits) > page * size, first=(page - 1) * size + 1, **context
    )
