"""The Prep page: one day's appointments by clinic and time, each chart's state, its packet to open or print."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import groupby

from flask import Blueprint, Response, abort, redirect, render_template, request, send_file, url_for

from pipeline.clinic.packets import PacketError
from pipeline.clinic.prep import open_packet, plan_day, prepare_day
from web.context import current_user, record, services

bp = Blueprint("prep", __name__)


def _day(value: str | None) -> date:
    if not value:
        return date.today() + timedelta(days=1)
    try:
        return date.fromisoformat(value)
    except ValueError:
        abort(400, "the date must be YYYY-MM-DD")


@bp.get("/prep")
def day() -> str:
    when = _day(request.args.get("date"))
    visits = plan_day(services().config, when)
    record("prep.list", mrns=[v.appointment.mrn for v in visits], details={"date": when.isoformat()})
    clinics = [
        (clinic, list(group))
        for clinic, group in groupby(
            sorted(visits, key=lambda v: (v.appointment.clinic, v.appointment.starts_at)),
            key=lambda v: v.appointment.clinic,
        )
    ]
    return render_template("prep.html", day=when, clinics=clinics, count=len(visits))


@bp.post("/prep")
def build() -> Response:
    when = _day(request.form.get("date"))
    prepare_day(services().config, when, user=current_user().name)
    return redirect(url_for("prep.day", date=when.isoformat()))


@bp.get("/prep/packet/<appointment_id>")
def packet(appointment_id: str) -> Response:
    try:
        path = open_packet(services().config, appointment_id, user=current_user().name)
    except PacketError as exc:
        abort(404, str(exc))
    return send_file(path, mimetype="application/pdf", download_name=path.name, conditional=False)
