"""`medarchive requests`: requests for information, from receipt to release or denial (thin over pipeline.requests)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click

from pipeline.cli.common import actor, date_option, json_option, with_config
from pipeline.core.clock import today_local
from pipeline.core.config import Config
from pipeline.requests.records import CHANNELS, KINDS, STATUSES, Ask, Request, Requester, fee_text
from pipeline.requests.report import build_report
from pipeline.requests.service import NewRequest, RequestDesk


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _row(request: Request, today: date) -> dict:
    return {
        **asdict(request),
        "ref": request.ref,
        "overdue": request.overdue(today),
        "days_left": request.days_left(today) if request.is_open else None,
    }


def _when(request: Request, today: date) -> str:
    if not request.is_open:
        return f"{request.status} {request.closed_on}"
    left = request.days_left(today)
    return f"OVERDUE {-left}d" if left < 0 else f"{left}d left"


def _line(request: Request, today: date) -> str:
    return (
        f"{request.ref:<9} due {request.due}  {_when(request, today):<20} {request.status:<11} {request.kind:<9} "
        f"MRN {request.mrn:<10} {request.requester.label()}"
    )


def with_desk(command: Callable[..., None]) -> Callable[..., None]:
    """Give the command the records office's request desk, closed when the command ends."""

    @with_config
    @functools.wraps(command)
    def wrapper(config: Config, **kwargs: Any) -> None:
        with RequestDesk.for_config(config) as desk:
            command(desk, **kwargs)

    return wrapper


def _echo(request: Request, as_json: bool, today: date) -> None:
    click.echo(json.dumps(_row(request, today), ensure_ascii=False) if as_json else _line(request, today))


@click.group()
def requests():
    """Requests for information: logged, on the clock, checked against their authorization, fulfilled."""


@requests.command()
@click.option("--mrn", required=True, help="the patient whose records are asked for")
@click.option("--kind", required=True, type=click.Choice(KINDS), help="who asks (patient includes a representative)")
@click.option("--requester", required=True, help="the requester's name")
@click.option("--org", "organisation", default="", help="the requester's organisation")
@click.option("--address", default="", help="where letters and records go (use \\n between lines)")
@click.option("--purpose", required=True, help="why the records are asked for")
@click.option(
    "--all", "everything", is_flag=True, help="the whole record (otherwise name --type, --from/--to or --doc)"
)
@click.option("--type", "doc_types", multiple=True, help="only this document type (repeatable)")
@date_option("--from", "date_from", "documents dated on or after")
@date_option("--to", "date_to", "documents dated on or before")
@click.option("--doc", "doc_ids", multiple=True, help="this document of the patient (repeatable)")
@click.option("--via", "channel", type=click.Choice(CHANNELS), default="mail", show_default=True)
@date_option("--received", "received", "the day it arrived (default today)")
@date_option("--due", "due", "a due date set from outside, e.g. a court's return date (default: by the kind's rule)")
@json_option("the request as JSON")
@with_desk
def add(
    desk: RequestDesk,
    mrn,
    kind,
    requester,
    organisation,
    address,
    purpose,
    everything,
    doc_types,
    date_from,
    date_to,
    doc_ids,
    channel,
    received,
    due,
    as_json,
):
    """Log a request; its due date comes from the rule for its kind."""
    today = today_local()
    new = NewRequest(
        mrn=mrn.strip(),
        kind=kind,
        requester=Requester(requester.strip(), organisation.strip(), address.replace("\\n", "\n").strip()),
        purpose=purpose,
        ask=Ask(everything, tuple(doc_types), date_from, date_to, tuple(doc_ids)),
        channel=channel,
        received=_day(received) or today,
        due=_day(due),
    )
    request = desk.add(new, user=actor(), today=today)
    _echo(request, as_json, today)
    if not as_json:
        click.echo(f"request {request.id} logged; due {request.due}", err=True)


@requests.command(name="list")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--mrn")
@click.option("--open", "open_only", is_flag=True, help="only requests not yet closed")
@json_option()
@with_desk
def list_(desk: RequestDesk, status, mrn, open_only, as_json):
    """Requests by due date, overdue first; counts on stderr."""
    today = today_local()
    rows = desk.queue(user=actor(), status=status, mrn=mrn, open_only=open_only)
    rows.sort(key=lambda r: (not r.overdue(today), not r.is_open, r.due, r.id))
    for request in rows:
        _echo(request, as_json, today)
    overdue = sum(r.overdue(today) for r in rows)
    opened = sum(r.is_open for r in rows)
    click.echo(f"{len(rows)} request(s): {opened} open, {overdue} overdue", err=True)


@requests.command()
@click.argument("request_id", type=int)
@json_option("the request and its history as JSON")
@with_desk
def show(desk: RequestDesk, request_id: int, as_json: bool):
    """One request: what is asked, due, authorization, fee, release or letter, and its history."""
    today = today_local()
    view = desk.show(request_id, user=actor())
    r = view.request
    if as_json:
        body = {**_row(r, today), "history": [asdict(e) for e in view.history]}
        click.echo(json.dumps(body, ensure_ascii=False, indent=2))
        return
    auth = r.authorization
    fields = [
        ("request", r.ref),
        ("status", r.status),
        ("patient", f"MRN {r.mrn}"),
        ("kind", r.kind),
        ("requester", r.requester.label()),
        ("address", " / ".join(r.requester.address.splitlines()) or "-"),
        ("purpose", r.purpose),
        ("asks for", r.ask.describe()),
        ("came by", r.channel),
        ("received", r.received),
        ("due", f"{r.due} ({_when(r, today)})"),
        ("extension", f"to {r.extension.due}: {r.extension.reason} (told {r.extension.told})" if r.extension else "-"),
        (
            "authorization",
            f"document {auth.doc_id}, expires {auth.expires}"
            + (f", names {', '.join(auth.covers)}" if auth.covers else "")
            if auth
            else ("needed, none linked" if r.rule.get("needs_authorization") else "not needed"),
        ),
        ("fee", f"{fee_text(r.fee_cents)} ({r.fee_note})" if r.fee_cents is not None else "-"),
        ("release", f"{r.release_id}: {len(r.released_docs)} document(s)" if r.release_id else "-"),
        ("denial", r.denial_reason or "-"),
        ("letter", str(desk.config.root / r.letter) if r.letter else "-"),
    ]
    for key, value in fields:
        click.echo(f"{key:>14}: {value}")
    for event in view.history:
        click.echo(
            f"{'history':>14}: {event.at} {event.by}: {event.action} {event.from_status or '-'} -> {event.to_status}"
            + (f" ({event.note})" if event.note else "")
        )


@requests.command()
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="why more time is needed (goes into the request's history)")
@date_option("--told", "told", "the day the requester was told in writing")
@with_desk
def extend(desk: RequestDesk, request_id: int, reason: str, told):
    """Give a request the one extension its rule allows."""
    request = desk.extend(request_id, reason=reason, told=_day(told), user=actor(), today=today_local())
    click.echo(f"request {request.id} extended: due {request.due}")


@requests.command(name="link-auth")
@click.argument("request_id", type=int)
@click.argument("doc_id")
@date_option("--expires", "expires", "the day the authorization expires")
@click.option("--covers", multiple=True, help="a sensitive type the authorization names specifically (repeatable)")
@with_desk
def link_auth(desk: RequestDesk, request_id: int, doc_id: str, expires, covers):
    """Link the patient's signed authorization (a filed document of type authorization) to a request."""
    if not expires:
        raise click.UsageError("give the authorization's expiry date with --expires YYYY-MM-DD")
    request = desk.link_authorization(
        request_id, doc_id, expires=date.fromisoformat(expires), covers=covers, user=actor(), today=today_local()
    )
    click.echo(f"request {request.id}: authorization {doc_id} linked, expires {expires}")


@requests.command()
@click.argument("request_id", type=int)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="a new or empty folder outside the data root",
)
@click.option("--zip", "as_zip", is_flag=True, help="one zip in --out instead of loose files")
@click.option("--fee", "actual_cost", type=float, help="the actual cost, for kinds charged at cost")
@with_desk
def fulfil(desk: RequestDesk, request_id: int, out_dir: Path, as_zip: bool, actual_cost: float | None):
    """Release exactly what the request covers (or a "no records" letter) and close it."""
    done = desk.fulfil(
        request_id, user=actor(), today=today_local(), out_dir=out_dir, as_zip=as_zip, actual_cost=actual_cost
    )
    r = done.request
    if done.release:
        for row in done.release.documents:
            click.echo(
                f"released  {row['doc_date'] or 'undated':<10} {row['doc_type']:<18} {row['doc_id']}  {row['pages']}p"
            )
    for sidecar in done.withheld:
        click.echo(
            f"withheld  {sidecar.doc_date or 'undated':<10} {sidecar.doc_type:<18} {sidecar.doc_id}  (sensitive: needs an authorization naming it)"
        )
    if done.letter:
        click.echo(f"no records: letter {done.letter}")
    click.echo(f"request {r.id} fulfilled; fee {fee_text(r.fee_cents)} ({r.fee_note})", err=True)


@requests.command()
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="a reason code from requests.denial_reasons in the config")
@click.option("--note", help="a sentence added to the letter")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="also copy the letter into this folder"
)
@with_desk
def deny(desk: RequestDesk, request_id: int, reason: str, note: str | None, out_dir: Path | None):
    """Deny a request for a configured reason and write the denial letter."""
    done = desk.deny(request_id, reason=reason, note=note, user=actor(), today=today_local(), out_dir=out_dir)
    click.echo(f"request {done.request.id} denied ({reason}); letter {done.letter}")


@requests.command()
@click.argument("request_id", type=int)
@click.option("--note", required=True, help="why (e.g. the requester's letter of withdrawal)")
@with_desk
def withdraw(desk: RequestDesk, request_id: int, note: str):
    """Close a request the requester withdrew."""
    request = desk.withdraw(request_id, note=note, user=actor(), today=today_local())
    click.echo(f"request {request.id} withdrawn")


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:g} days"


@requests.command()
@date_option("--from", "date_from", "received on or after (default 90 days ago)")
@date_option("--to", "date_to", "received on or before (default today)")
@json_option("the report as one JSON object")
@with_desk
def report(desk: RequestDesk, date_from, date_to, as_json: bool):
    """Counts by kind and outcome, median and 90th-percentile turnaround, overdue."""
    today = today_local()
    start, end = _day(date_from) or today - timedelta(days=90), _day(date_to) or today
    if start > end:
        raise click.UsageError(f"--from {start} is after --to {end}")
    summary = build_report(desk.store.find(), start, end, today)
    desk.audit.record(
        "request.report",
        user=actor(),
        details={"from": summary.date_from, "to": summary.date_to, "requests": summary.total},
    )
    if as_json:
        click.echo(json.dumps(asdict(summary), ensure_ascii=False))
        return
    click.echo(f"requests received {summary.date_from} to {summary.date_to}: {summary.total}")
    for kind, counts in summary.by_kind.items():
        click.echo(f"  {kind:<9} " + ", ".join(f"{n} {status}" for status, n in counts.items() if n))
    click.echo(f"turnaround: median {_days(summary.median_days)}, 90th percentile {_days(summary.p90_days)}")
    click.echo(f"overdue now: {summary.overdue}; closed after their due date: {summary.closed_late}")


COMMANDS: list[click.Command] = [requests]
