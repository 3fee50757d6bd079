"""Administration (role admin): accounts and roles, and the audit log."""

from __future__ import annotations

import dataclasses
from collections import deque

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from pipeline.archive.audit import ACTIONS, AuditFilters
from web.auth import requires
from web.context import current_user, record, services
from web.users import ROLES, UserError
from web.views.search import BadSearch, iso_date

# The newest entries that match; older ones are for `medarchive audit`.
AUDIT_ROWS = 200

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _users_page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    return render_template("admin_users.html", users=services().users.all(), roles=ROLES, error=error), status


@bp.get("/users")
@requires("admin")
def users() -> tuple[str, int]:
    return _users_page()


@bp.post("/users")
@requires("admin")
def add_user() -> tuple[str, int] | Response:
    form = request.form
    name = form.get("name", "").strip()
    try:
        services().users.add(name, form.get("role", ""), form.get("password", ""))
    except UserError as exc:
        return _users_page(str(exc), 400)
    record("user.add", details={"name": name, "role": form.get("role")})
    return _done(f"Added {name}.")


@bp.post("/users/<name>")
@requires("admin")
def change_user(name: str) -> tuple[str, int] | Response:
    form, store = request.form, services().users
    change = form.get("change", "")
    try:
        if change in ("enable", "disable"):
            if name == current_user().name:
                raise UserError("you cannot disable or enable your own account")
            store.set_enabled(name, change == "enable")
            record(f"user.{change}", details={"name": name})
        elif change == "password":
            store.set_password(name, form.get("password", ""))
            record("user.passwd", details={"name": name})
        elif change == "role":
            store.set_role(name, form.get("role", ""))
            record("user.role", details={"name": name, "role": form.get("role")})
        else:
            raise UserError(f"unknown change {change!r}")
    except UserError as exc:
        return _users_page(str(exc), 400)
    return _done(f"Changed {name}: {change}.")


def _done(notice: str) -> Response:
    g.session.notice = notice
    return redirect(url_for("admin.users"))


def _audit_filters(args) -> AuditFilters:
    action = args.get("action", "") or None
    if action and action not in ACTIONS:
        raise BadSearch(f"unknown action {action!r}")
    return AuditFilters(mrn=args.get("mrn", "").strip() or None, user=args.get("user", "").strip() or None, action=action,
                        date_from=iso_date(args.get("from", ""), "from"), date_to=iso_date(args.get("to", ""), "to"))


@bp.get("/audit")
@requires("admin")
def audit() -> tuple[str, int]:
    context = {"args": request.args, "actions": sorted(ACTIONS)}
    try:
        filters = _audit_filters(request.args)
    except BadSearch as exc:
        return render_template("admin_audit.html", rows=[], error=str(exc), **context), 400
    newest = list(reversed(deque(services().audit.entries(filters), maxlen=AUDIT_ROWS)))
    # Reading the trail shows who saw which patient: that is itself an access.
    record("audit", mrns=[filters.mrn], details={"filters": dataclasses.asdict(filters), "results": len(newest)})
    return render_template("admin_audit.html", rows=newest, error=None, **context), 200
