"""Administration (role admin): accounts and roles, and the audit log."""

from __future__ import annotations

import dataclasses
from collections import deque

from flask import Blueprint, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from pipeline.archive.audit import ACTIONS, AuditFilters
from pipeline.ehr.merge_review import confirm_held, reject_held
from pipeline.ehr.outbox import STATES, Outbox, OutboxError
from pipeline.identify.patients import PatientIndex, PatientIndexError
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
            changed = store.set_enabled(name, change == "enable")
            record(f"user.{change}", details={"name": name})
        elif change == "password":
            changed = store.set_password(name, form.get("password", ""))
            record("user.passwd", details={"name": name})
        elif change == "role":
            changed = store.set_role(name, form.get("role", ""))
            record("user.role", details={"name": name, "role": form.get("role")})
        else:
            raise UserError(f"unknown change {change!r}")
    except UserError as exc:
        return _users_page(str(exc), 400)
    if name == current_user().name:
        g.session.version = changed.version  # the change ends the account's other sessions, not this one
    return _done(f"Changed {name}: {change}.")


def _done(notice: str) -> Response:
    g.session.notice = notice
    return redirect(url_for("admin.users"))


def _audit_filters(args) -> AuditFilters:
    action = args.get("action", "") or None
    if action and action not in ACTIONS:
        raise BadSearch(f"unknown action {action!r}")
    return AuditFilters(
        mrn=args.get("mrn", "").strip() or None,
        user=args.get("user", "").strip() or None,
        action=action,
        date_from=iso_date(args.get("from", ""), "from"),
        date_to=iso_date(args.get("to", ""), "to"),
    )


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


# The EHR outbox: counts per destination and state, the newest messages, retry of dead ones.
EHR_ROWS = 200


def _ehr_page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    config = services().config
    state = request.args.get("state") or None
    if state not in (None, *STATES):
        error, status, state = f"unknown state {state!r}", 400, None
    with Outbox.for_config(config) as outbox:
        counts, rows = outbox.counts(), [m.status_row() for m in outbox.messages(state=state, limit=EHR_ROWS)]
    record(
        "ehr.status",
        doc_ids=[r["doc_id"] for r in rows],
        mrns=[r["mrn"] for r in rows],
        details={"state": state, "results": len(rows)},
    )
    return render_template(
        "admin_ehr.html",
        counts=counts,
        rows=rows,
        states=STATES,
        state=state,
        destinations=[d.name for d in config.ehr.destinations],
        error=error,
    ), status


@bp.get("/ehr")
@requires("admin")
def ehr() -> tuple[str, int]:
    return _ehr_page()


@bp.post("/ehr/retry")
@requires("admin")
def ehr_retry() -> tuple[str, int] | Response:
    which = request.form.get("message", "")
    try:
        ids = None if which == "all-dead" else [int(which)]
        with Outbox.for_config(services().config) as outbox:
            revived = outbox.retry(ids)
    except (ValueError, OutboxError) as exc:
        return _ehr_page(str(exc) if isinstance(exc, OutboxError) else f"{which!r} is not a message number", 400)
    record(
        "ehr.retry",
        doc_ids=[m.doc_id for m in revived],
        mrns=[m.mrn for m in revived],
        details={"messages": [m.id for m in revived], "all_dead": ids is None},
    )
    g.session.notice = f"{len(revived)} message(s) queued again."
    return redirect(url_for("admin.ehr"))


# Merges and unmerges from the registration feed held for a person (hl7_listener.merge_policy).
MERGE_ROWS = 200


def _merges_page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    patients = PatientIndex.for_config(services().config)
    try:
        pending = patients.reviews("pending")
        decided = [r for r in reversed(patients.reviews(None)) if r.state != "pending"][:MERGE_ROWS]
    finally:
        patients.close()
    shown = pending + decided
    record(
        "patients.merges",
        mrns=sorted({m for r in shown for m in (r.prior, r.survivor)}),
        details={"results": len(shown)},
    )
    return render_template("admin_merges.html", pending=pending, decided=decided, error=error), status


@bp.get("/merges")
@requires("admin")
def merges() -> tuple[str, int]:
    return _merges_page()


@bp.post("/merges/<int:review_id>")
@requires("admin")
def decide_merge(review_id: int) -> tuple[str, int] | Response:
    decision, reason = request.form.get("decision", ""), request.form.get("reason", "")
    patients = PatientIndex.for_config(services().config)
    try:
        if decision == "confirm":
            merge = confirm_held(services().config, patients, review_id, user=current_user().name)
            notice = (
                f"{merge.kind.capitalize()} of MRN {merge.prior} into MRN {merge.survivor} confirmed; "
                "the HL7 listener re-files the documents."
            )
        elif decision == "reject":
            review = reject_held(services().config, patients, review_id, user=current_user().name, reason=reason)
            notice = f"{review.kind.capitalize()} of MRN {review.prior} into MRN {review.survivor} rejected."
        else:
            raise PatientIndexError(f"unknown decision {decision!r}")
    except PatientIndexError as exc:
        patients.close()
        return _merges_page(str(exc), 400)
    patients.close()
    g.session.notice = notice
    return redirect(url_for("admin.merges"))
