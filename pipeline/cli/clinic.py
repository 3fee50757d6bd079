"""`medarchive appointments ...` and `medarchive prep`: charts ready for upcoming appointments."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

import click

from pipeline.archive.audit import AuditLog
from pipeline.cli.common import EXIT_FAILED_INPUTS, actor, date_option, json_option, with_config
from pipeline.clinic.appointments import AppointmentBook, read_csv
from pipeline.clinic.prep import Visit, plan_day, prepare_day
from pipeline.core.config import Config


def _day(value: str | None) -> date:
    return date.fromisoformat(value) if value else date.today() + timedelta(days=1)


@click.group()
def appointments():
    """Upcoming appointments (from the scheduling system's SIU feed, or a CSV export)."""


@appointments.command(name="import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_config
def import_(config: Config, csv_file: Path):
    """Create or update appointments from a CSV: appointment_id, mrn, start, clinic[, provider, patient_name, status]."""
    found = read_csv(csv_file, config.extraction.is_mrn)
    counts: dict[str, int] = {}
    with AppointmentBook.for_config(config) as book:
        for appointment in found.appointments:
            change = book.save(appointment)
            counts[change] = counts.get(change, 0) + 1
    AuditLog.for_config(config).record(
        "appointments.import",
        user=actor(),
        mrns=[a.mrn for a in found.appointments],
        details={"file": csv_file.name, **counts, "rejected": len(found.problems)},
    )
    for problem in found.problems:
        click.echo(f"skipped {problem}", err=True)
    summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing new"
    click.echo(f"imported {len(found.appointments)} appointment(s) from {csv_file.name}: {summary}")
    if found.problems:
        sys.exit(EXIT_FAILED_INPUTS)  # some rows were not taken: a script must notice


@appointments.command(name="list")
@date_option("--date", "day", "the day (default tomorrow)")
@click.option("--all", "include_cancelled", is_flag=True, help="also cancelled appointments")
@json_option()
@with_config
def list_(config: Config, day: str | None, include_cancelled: bool, as_json: bool):
    """One day's appointments, by time."""
    when = _day(day)
    with AppointmentBook.for_config(config) as book:
        rows = book.on(when, include_cancelled=include_cancelled)
    AuditLog.for_config(config).record(
        "appointments.list", user=actor(), mrns=[a.mrn for a in rows], details={"date": when.isoformat()}
    )
    for a in rows:
        if as_json:
            click.echo(json.dumps(asdict(a), ensure_ascii=False))
        else:
            click.echo(f"{a.starts_at[11:]}  {a.clinic:<20} MRN {a.mrn:<12} {a.status:<9} {a.appointment_id}")
    click.echo(f"{len(rows)} appointment(s) on {when}", err=True)


@click.command()
@date_option("--date", "day", "the day of the appointments (default tomorrow)")
@click.option("--clinic", help="only this clinic's appointments")
@click.option("--dry-run", is_flag=True, help="show what each packet would hold; build nothing")
@json_option()
@with_config
def prep(config: Config, day: str | None, clinic: str | None, dry_run: bool, as_json: bool):
    """Build the chart packet of each appointment: what the clinic wants, and what is missing."""
    when = _day(day)
    if dry_run:
        visits = plan_day(config, when, clinic=clinic)
        AuditLog.for_config(config).record(
            "prep.list", user=actor(), mrns=[v.appointment.mrn for v in visits], details={"date": when.isoformat()}
        )
    else:
        visits = prepare_day(config, when, user=actor(), clinic=clinic)
    for visit in visits:
        click.echo(json.dumps(_row(visit), ensure_ascii=False) if as_json else _line(visit))
    states = {s: sum(v.state == s for v in visits) for s in ("ready", "incomplete", "unknown patient")}
    click.echo(f"{len(visits)} appointment(s) on {when}: " + ", ".join(f"{n} {s}" for s, n in states.items()), err=True)


def _row(visit: Visit) -> dict:
    a = visit.appointment
    return {
        "appointment_id": a.appointment_id,
        "mrn": a.mrn,
        "patient": visit.patient,
        "starts_at": a.starts_at,
        "clinic": a.clinic,
        "provider": a.provider,
        "state": visit.state,
        "documents": [d.doc_id for d in visit.documents],
        "missing": visit.missing,
        "packet_pages": visit.packet.pages if visit.packet else None,
    }


def _line(visit: Visit) -> str:
    a = visit.appointment
    head = f"{a.starts_at[11:]}  {a.clinic:<18} MRN {a.mrn:<10} {visit.state:<15} {len(visit.documents)} document(s)"
    return head + "".join(f"\n        missing: {m}" for m in visit.missing)


COMMANDS: list[click.Command] = [appointments, prep]
