"""Requests for information (roles release and admin): the queue by due date, one request with its
authorization beside what will be released, the actions, and the report with its chart."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, send_file, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from pipeline.core.clock import today_local
from pipeline.core.errors import MedarchiveError
from pipeline.requests.checks import AUTHORIZATION_TYPE, Plan, check_authorization
from pipeline.requests.fees import parse_cost
from pipeline.requests.records import CHANNELS, KINDS, Ask, Request, Requester, fee_text
from pipeline.requests.report import build_report, chart_svg
from pipeline.requests.service import NewRequest, RequestDesk
from pipeline.requests.store import RequestNotFound
from web.auth import requires
from web.context import current_user, services
from web.views.documents import is_mrn, patient_documents
from web.views.search import BadSearch, document_types, iso_date

bp = Blueprint("requests", __name__)
_DESK = "medarchive.requests"


def desk() -> RequestDesk:
    """One desk per app: its store's connection is shared by the server's threads under a lock."""
    if _DESK not in current_app.extensions:
        svc = services()
        current_app.extensions[_DESK] = RequestDesk.for_config(svc.config, svc.index)
    return current_app.extensions[_DESK]


@bp.errorhandler(RequestNotFound)
def _not_found(exc: RequestNotFound) -> tuple[str, int]:
    return render_template("error.html", title="No such request", message=str(exc)), 404


def _user() -> str:
    return current_user().name


def _queue_order(r: Request, today: date) -> tuple:
    return (not r.is_open, not r.overdue(today), r.due, r.id)


def _queue_page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    today = today_local()
    rows = sorted(
        desk().queue(user=_user(), open_only=request.args.get("all") != "1"), key=lambda r: _queue_order(r, today)
    )
    return render_template(
        "requests.html",
        rows=rows,
        today=today,
        kinds=KINDS,
        channels=CHANNELS,
        types=document_types(),
        form=request.form,
        overdue=sum(r.overdue(today) for r in rows),
        showing_all=request.args.get("all") == "1",
        error=error,
    ), status


@bp.get("/requests")
@requires("release", "admin")
def queue() -> tuple[str, int]:
    return _queue_page()


def _day(name: str) -> date | None:
    value = iso_date(request.form.get(name, ""), name)
    return date.fromisoformat(value) if value else None


def _new() -> NewRequest:
    form = request.form
    return NewRequest(
        mrn=form.get("mrn", "").strip(),
        kind=form.get("kind", ""),
        requester=Requester(
            form.get("requester", "").strip(), form.get("org", "").strip(), form.get("address", "").strip()
        ),
        purpose=form.get("purpose", ""),
        ask=Ask(
            everything=form.get("everything") == "on",
            doc_types=tuple(form.getlist("type")),
            date_from=iso_date(form.get("from", ""), "from"),
            date_to=iso_date(form.get("to", ""), "to"),
            doc_ids=tuple(form.get("docs", "").replace(",", " ").split()),
        ),
        channel=form.get("channel", "mail"),
        received=_day("received") or today_local(),
        due=_day("due"),
    )


@bp.post("/requests")
@requires("release", "admin")
def add() -> tuple[str, int] | Response:
    try:
        added = desk().add(_new(), user=_user(), today=today_local())
    except (BadSearch, MedarchiveError) as exc:
        return _queue_page(str(exc), 400)
    g.session.notice = f"Request {added.ref} logged; due {added.due}."
    return redirect(url_for("requests.item", request_id=added.id))


def _plan(r: Request, today: date) -> tuple[Plan | None, str | None]:
    """What fulfilling would release now, or why it would be refused."""
    if not r.is_open:
        return None, None
    try:
        auth = r.authorization
        check_authorization(r, desk().document(auth.doc_id) if auth else None, today)
        return desk().planned(r), None
    except MedarchiveError as exc:
        try:
            return desk().planned(r), str(exc)
        except MedarchiveError as refused:
            return None, str(refused)


def _item_page(request_id: int, error: str | None = None, status: int = 200) -> tuple[str, int]:
    today = today_local()
    view = desk().show(request_id, user=_user())
    r = view.request
    plan, blocked = _plan(r, today)
    authorizations = (
        [h for h in patient_documents(r.mrn) if h.doc_type == AUTHORIZATION_TYPE] if r.is_open and is_mrn(r.mrn) else []
    )
    sensitive = sorted(desk().sensitive)
    return render_template(
        "request.html",
        r=r,
        history=view.history,
        today=today,
        plan=plan,
        blocked=blocked,
        authorizations=authorizations,
        sensitive=sensitive,
        reasons=services().config.requests.denial_reasons,
        fee_text=fee_text,
        actual_cost=r.rule.get("fee", {}).get("method") == "actual_cost",
        error=error,
    ), status


@bp.get("/requests/<int:request_id>")
@requires("release", "admin")
def item(request_id: int) -> tuple[str, int]:
    return _item_page(request_id)


def _act(request_id: int, action) -> tuple[str, int] | Response:
    try:
        notice = action()
    except (BadSearch, MedarchiveError, ValueError) as exc:
        return _item_page(request_id, str(exc), 400)
    g.session.notice = notice
    return redirect(url_for("requests.item", request_id=request_id))


@bp.post("/requests/<int:request_id>/link-auth")
@requires("release", "admin")
def link_auth(request_id: int) -> tuple[str, int] | Response:
    def act() -> str:
        expires = _day("expires")
        if expires is None:
            raise BadSearch("give the authorization's expiry date")
        doc_id = request.form.get("doc", "").strip()
        desk().link_authorization(
            request_id,
            doc_id,
            expires=expires,
            covers=request.form.getlist("covers"),
            user=_user(),
            today=today_local(),
        )
        return f"Authorization {doc_id} linked, expires {expires}."

    return _act(request_id, act)


@bp.post("/requests/<int:request_id>/extend")
@requires("release", "admin")
def extend(request_id: int) -> tuple[str, int] | Response:
    def act() -> str:
        r = desk().extend(
            request_id, reason=request.form.get("reason", ""), told=_day("told"), user=_user(), today=today_local()
        )
        return f"Extended: now due {r.due}."

    return _act(request_id, act)


@bp.post("/requests/<int:request_id>/deny")
@requires("release", "admin")
def deny(request_id: int) -> tuple[str, int] | Response:
    def act() -> str:
        reason = request.form.get("reason", "")
        desk().deny(request_id, reason=reason, note=request.form.get("note"), user=_user(), today=today_local())
        return f"Denied ({reason}); the letter is ready to print."

    return _act(request_id, act)


@bp.post("/requests/<int:request_id>/withdraw")
@requires("release", "admin")
def withdraw(request_id: int) -> tuple[str, int] | Response:
    def act() -> str:
        desk().withdraw(request_id, note=request.form.get("note", ""), user=_user(), today=today_local())
        return "Withdrawn."

    return _act(request_id, act)


@bp.post("/requests/<int:request_id>/fulfil")
@requires("release", "admin")
def fulfil(request_id: int) -> tuple[str, int] | Response:
    try:
        cost = parse_cost(request.form.get("fee", ""))
        done = desk().fulfil(request_id, user=_user(), today=today_local(), actual_cost=cost)
    except (MedarchiveError, ValueError) as exc:
        return _item_page(request_id, str(exc), 400)
    if done.download is None:  # no records: the letter is on the request's page
        g.session.notice = "No records answer this request: it is fulfilled with a no-records letter."
        return redirect(url_for("requests.item", request_id=request_id))
    return send_file(
        done.download,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"{done.release.release_id}.zip" if done.release else "release.zip",
        conditional=False,
    )


@bp.get("/requests/<int:request_id>/letter")
@requires("release", "admin")
def letter(request_id: int) -> Response:
    try:
        path = desk().letter(request_id, user=_user())
    except MedarchiveError:
        abort(404)
    return send_file(path, mimetype="application/pdf", download_name=path.name, conditional=False)


@bp.get("/requests/report")
@requires("release", "admin")
def report() -> tuple[str, int]:
    today = today_local()
    error = None
    try:
        start = iso_date(request.args.get("from", ""), "from")
        end = iso_date(request.args.get("to", ""), "to")
    except BadSearch as exc:
        start, end, error = None, None, str(exc)
    first = date.fromisoformat(start) if start else today - timedelta(days=90)
    last = date.fromisoformat(end) if end else today
    if first > last:
        error = f"from {first} is after to {last}; showing the last 90 days"
        first, last = today - timedelta(days=90), today
    summary = build_report(desk().store.find(), first, last, today)
    services().audit.record(
        "request.report",
        user=_user(),
        details={"from": summary.date_from, "to": summary.date_to, "requests": summary.total},
    )
    # chart_svg escapes every text it writes: the markup is built from counts and fixed names.
    return render_template("requests_report.html", report=summary, chart=Markup(chart_svg(summary)), error=error), (
        400 if error else 200
    )
