"""`medarchive boxes ...`: the off-site boxes that hold the paper originals of scanned documents."""

from __future__ import annotations

import json
from datetime import date

import click

from pipeline.archive.audit import AuditLog
from pipeline.cli.common import actor, json_option, with_config
from pipeline.core.config import Config
from pipeline.paper import boxes as paper
from pipeline.paper.rules import STATES


@click.group()
def boxes():
    """Paper originals in numbered off-site boxes: list, show, assign, close, ship, recall, destroy."""


def _summary(view: paper.BoxView) -> dict:
    b = view.box
    return {
        "box": b.box,
        "state": b.state,
        "vendor": b.vendor,
        "since": b.since,
        "documents": len(view.documents),
        "pages": view.pages,
        "in_review": sum(d.status != "filed" for d in view.documents),
        "last_scan": view.last_scan.isoformat() if view.last_scan else None,
    }


@boxes.command(name="list")
@click.option("--state", type=click.Choice(STATES), help="only boxes in this state")
@json_option()
@with_config
def list_(config: Config, state: str | None, as_json: bool):
    """Every box with its state, documents and pages; and the documents whose box is unknown."""
    views, unknown = paper.overview(config)
    views = [v for v in views if state is None or v.box.state == state]
    shown = unknown if state is None else []
    AuditLog.for_config(config).record(
        "box.list",
        user=actor(),
        doc_ids=[d.doc_id for d in shown],
        mrns=[d.mrn for d in shown],
        details={"boxes": len(views), "unknown": len(unknown)},
    )
    for v in views:
        row = _summary(v)
        if as_json:
            click.echo(json.dumps(row))
        else:
            where = f" at {row['vendor']} since {row['since'][:10]}" if v.box.state == "shipped" else ""
            click.echo(
                f"{row['box']:<14} {row['state']:<9} {row['documents']:>4} document(s) {row['pages']:>5} page(s)"
                f"  last scan {row['last_scan'] or '-'}{where}"
            )
    if unknown and state is None:
        if as_json:
            click.echo(json.dumps({"box": None, "state": paper.UNKNOWN, "documents": [d.doc_id for d in unknown]}))
        else:
            click.echo(f"{paper.UNKNOWN}: {len(unknown)} document(s) whose box label could not be read: ", nl=False)
            click.echo(", ".join(d.doc_id for d in unknown[:20]) + (" ..." if len(unknown) > 20 else ""))
            click.echo("  (`medarchive boxes assign BOX DOC_ID...` records their box)")
    click.echo(f"{len(views)} box(es)", err=True)


@boxes.command()
@click.argument("box")
@json_option("as one JSON object")
@with_config
def show(config: Config, box: str, as_json: bool):
    """One box: where it is, its documents (MRN, pages, scan date) and its history."""
    view = paper.view(config, box)
    AuditLog.for_config(config).record(
        "box.show",
        user=actor(),
        doc_ids=[d.doc_id for d in view.documents],
        mrns=[d.mrn for d in view.documents],
        details={"box": box},
    )
    row = {
        **_summary(view),
        "contents": [d.__dict__ for d in view.documents],
        "failed": [f.__dict__ for f in view.failed],
        "history": [e.__dict__ for e in view.events],
    }
    if as_json:
        click.echo(json.dumps(row))
        return
    for key in ("box", "state", "vendor", "since", "documents", "pages", "in_review", "last_scan"):
        click.echo(f"{key:>10}: {row[key] if row[key] is not None else '-'}")
    for d in view.documents:
        click.echo(f"  {d.doc_id}  {d.status:<6} MRN {d.mrn or '-':<10} {d.pages:>3} p  scanned {d.scanned[:10]}")
    for f in view.failed:
        click.echo(f"  failed: {f.file}: {f.reason}")
    for e in view.events:
        click.echo(f"  {e.at}  {e.by:<12} {e.action:<12} {e.detail or ''}")


@boxes.command()
@click.argument("box")
@click.argument("doc_ids", nargs=-1, required=True)
@with_config
def assign(config: Config, box: str, doc_ids: tuple[str, ...]):
    """Record that the paper of these documents is in BOX (an open box)."""
    done = paper.assign(config, box, doc_ids, user=actor())
    click.echo(f"{len(done)} document(s) recorded in box {box}")


@boxes.command(name="close")
@click.argument("box")
@with_config
def close_(config: Config, box: str):
    """Close BOX (refused while any of its documents is in review or failed) and print its manifest PDF."""
    path = paper.close(config, box, user=actor())
    click.echo(f"box {box} closed; its manifest (print it and put it in the box): {path}")


@boxes.command()
@click.argument("box")
@click.option("--to", "vendor", required=True, help="the storage vendor it goes to")
@with_config
def ship(config: Config, box: str, vendor: str):
    """Record that BOX went to an off-site storage vendor."""
    paper.ship(config, box, vendor=vendor, user=actor())
    click.echo(f"box {box} shipped to {vendor}")


@boxes.command()
@click.argument("box")
@click.option("--reason", required=True, help="why the paper is needed back")
@click.option("--requested-by", required=True, help="who asked for it")
@with_config
def recall(config: Config, box: str, reason: str, requested_by: str):
    """Record a request to bring BOX back from storage."""
    paper.recall(config, box, reason=reason, requested_by=requested_by, user=actor())
    click.echo(f"box {box} recalled (requested by {requested_by})")


@boxes.command()
@click.argument("box")
@click.option("--confirm", is_flag=True, help="required: the paper is destroyed for good")
@with_config
def destroy(config: Config, box: str, confirm: bool):
    """Record that BOX's paper was destroyed (after boxes.keep_paper_days, never under a legal hold)."""
    if not confirm:
        raise click.UsageError("destroying a box's paper cannot be undone; add --confirm")
    paper.destroy(config, box, user=actor(), today=date.today())
    click.echo(f"box {box} destroyed; written to the destruction log")


COMMANDS: list[click.Command] = [boxes]
