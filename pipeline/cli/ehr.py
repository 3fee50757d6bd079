"""`medarchive ehr`: the outbox to the EHR, delivered once, looked at, and retried."""

from __future__ import annotations

import json

import click

from pipeline.archive.audit import AuditLog
from pipeline.archive.store import iter_sidecars
from pipeline.cli.common import actor, json_option, with_config
from pipeline.core.config import Config
from pipeline.ehr.enqueue import enqueue_filed
from pipeline.ehr.outbox import STATES, Outbox


def _require_destinations(config: Config) -> None:
    if not config.ehr.enabled:
        raise click.ClickException(f"no EHR destinations are configured (ehr.destinations in {config.path})")


@click.group(name="ehr")
def ehr_group():
    """Documents handed to the EHR (FHIR DocumentReference, HL7 v2 MDM)."""


@ehr_group.command(name="send")
@with_config
def ehr_send(config: Config):
    """Deliver what is ready in the outbox once, then stop (for cron and after a backlog)."""
    from pipeline.ehr.sender import send_once  # httpx, FHIR models: loaded only to send

    _require_destinations(config)
    for r in send_once(config, user=actor()):
        if r.busy:
            click.echo(f"{r.destination}: another sender is delivering (the daemon?); skipped")
            continue
        click.echo(f"{r.destination}: {r.sent} sent, {r.retry} to retry, {r.dead} dead, {r.waiting} still pending")


@ehr_group.command(name="enqueue")
@click.argument("doc_ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="every filed document in the archive")
@with_config
def ehr_enqueue(config: Config, doc_ids: tuple[str, ...], every: bool):
    """Queue filed documents that are not yet queued (after turning a destination on, or to catch up).

    Documents already queued in their current version are left alone, so this is safe to repeat."""
    _require_destinations(config)
    if bool(doc_ids) == every:
        raise click.UsageError("give document ids or --all")
    items = (s for s in iter_sidecars(config) if s.status == "filed") if every else doc_ids
    click.echo(f"{enqueue_filed(config, items)} message(s) queued")


@ehr_group.command(name="status")
@click.option("--state", type=click.Choice(STATES), help="only messages in this state")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000), help="newest first")
@json_option()
@with_config
def ehr_status(config: Config, state: str | None, limit: int, as_json: bool):
    """Messages in the outbox: destination, document, state, attempts, last answer, when sent."""
    with Outbox.for_config(config) as outbox:
        counts = outbox.counts()
        rows = [m.status_row() for m in outbox.messages(state=state, limit=limit)]
    AuditLog.for_config(config).record(
        "ehr.status",
        user=actor(),
        doc_ids=[r["doc_id"] for r in rows],
        mrns=[r["mrn"] for r in rows],
        details={"state": state, "results": len(rows)},
    )
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    for name, by_state in sorted(counts.items()):
        click.echo(f"{name}: " + ", ".join(f"{by_state[s]} {s}" for s in STATES), err=True)
    for r in rows:
        when = r["sent_at"] or "-"
        error = f"  {r['last_error']}" if r["last_error"] else ""
        click.echo(
            f"{r['id']:>6} {r['destination']:<12} {r['doc_id']} {r['action']:<6} v{r['version']} "
            f"{r['state']:<7} {r['attempts']:>2} tries  {when}{error}"
        )


@ehr_group.command(name="retry")
@click.argument("message_id", required=False, type=int)
@click.option("--all-dead", is_flag=True, help="every dead message (after the receiver was fixed)")
@with_config
def ehr_retry(config: Config, message_id: int | None, all_dead: bool):
    """Put a dead message (ID from `ehr status`), or all of them, back in the queue."""
    if (message_id is None) == (not all_dead):
        raise click.UsageError("give one message ID or --all-dead")
    with Outbox.for_config(config) as outbox:
        revived = outbox.retry(None if all_dead or message_id is None else [message_id])
    AuditLog.for_config(config).record(
        "ehr.retry",
        user=actor(),
        doc_ids=[m.doc_id for m in revived],
        mrns=[m.mrn for m in revived],
        details={"messages": [m.id for m in revived], "all_dead": all_dead},
    )
    click.echo(
        f"{len(revived)} message(s) queued again; the sender in `watch` (or `medarchive ehr send`) delivers them"
    )


COMMANDS: list[click.Command] = [ehr_group]
