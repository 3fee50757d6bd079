"""`medarchive patients ...`: the patient index (import a registration export, look up, list)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from pipeline.archive.audit import AuditLog
from pipeline.cli.common import actor, json_option, with_config
from pipeline.core.config import Config
from pipeline.core.printable import printable, printable_json
from pipeline.ehr.merge_review import carry_out, confirm_held, reject_held, unmerge_by_hand
from pipeline.identify.patients import Merge, PatientIndex, PatientIndexError, Review
from pipeline.identify.roster import Roster


@click.group()
def patients():
    """The patient index that documents are checked against (kept current by `hl7 listen`)."""


@patients.command(name="import")
@click.argument("roster", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_config
def import_(config: Config, roster: Path):
    """Create or update patients from a CSV export (columns as roster.columns says)."""
    rows = list(Roster.load(roster, config.roster, config.extraction.is_mrn))
    index = PatientIndex.for_config(config)
    try:
        counts = index.import_roster(rows, changed_by=actor())
    finally:
        index.close()
    AuditLog.for_config(config).record("patients.import", user=actor(), details={"file": roster.name, **counts})
    click.echo(
        f"imported {len(rows)} patient(s) from {roster.name}: " + ", ".join(f"{n} {what}" for what, n in counts.items())
    )


@patients.command()
@click.argument("mrn")
@json_option("as one JSON object")
@with_config
def show(config: Config, mrn: str, as_json: bool):
    """One patient, the MRNs merged into it, and every earlier name and date of birth."""
    index = PatientIndex.for_config(config)
    try:
        patient = index.get(mrn)
        survivor = index.survivor_of(mrn)
        retired = [r["mrn"] for r in index.query("SELECT mrn FROM aliases WHERE survivor = ? ORDER BY mrn", (mrn,))]
        history = index.history(mrn)
    finally:
        index.close()
    if patient is None and survivor is None:
        AuditLog.for_config(config).record("patients.show", user=actor(), mrns=[mrn], outcome="not found")
        raise PatientIndexError(f"no patient with MRN {mrn} in the patient index")
    AuditLog.for_config(config).record("patients.show", user=actor(), mrns=[mrn, survivor, *retired])
    row = {
        **(asdict(patient) if patient else {"mrn": mrn, "status": "merged"}),
        "merged_into": survivor,
        "retired_mrns": retired,
        "history": [asdict(change) for change in history],
    }
    if as_json:
        click.echo(printable_json(json.dumps(row, ensure_ascii=False)))
        return
    for key in ("mrn", "family", "given", "dob", "sex", "status", "merged_into", "updated_at"):
        if key in row:
            click.echo(printable(f"{key:>12}: {row[key] if row[key] is not None else '-'}"))
    click.echo(f"{'retired MRNs':>12}: {', '.join(retired) or '-'}")
    for change in history:
        (family, given, dob, sex), (new_family, new_given, new_dob, new_sex) = change.old, change.new
        click.echo(
            printable(
                f"{'was':>12}: {family}, {given}  {dob}  {sex or '-'}  (until {change.changed_at}, "
                f"changed by {change.changed_by}{f' message {change.source}' if change.source else ''} "
                f"to {new_family}, {new_given}  {new_dob}  {new_sex or '-'})"
            )
        )


@patients.command(name="list")
@click.option("--status", type=click.Choice(["active", "merged"]), help="only patients in this state")
@json_option()
@with_config
def list_(config: Config, status: str | None, as_json: bool):
    """Every patient in the index, by MRN."""
    index = PatientIndex.for_config(config)
    try:
        rows = index.patients(status)
    finally:
        index.close()
    AuditLog.for_config(config).record(
        "patients.list", user=actor(), mrns=[p.mrn for p in rows], details={"status": status, "results": len(rows)}
    )
    for p in rows:
        if as_json:
            click.echo(printable_json(json.dumps(asdict(p), ensure_ascii=False)))
        else:
            merged = f"  -> {p.merged_into}" if p.merged_into else ""
            click.echo(printable(f"{p.mrn:<12} {p.status:<7} {p.dob}  {p.sex or '-'}  {p.family}, {p.given}{merged}"))
    if not as_json:
        click.echo(f"{len(rows)} patient(s)", err=True)


def _review_row(review: Review) -> dict:
    row = asdict(review)
    row["patient"] = asdict(review.patient) if review.patient else None
    return row


@patients.group(invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="also those already confirmed or rejected")
@json_option()
@with_config
@click.pass_context
def merges(ctx: click.Context, config: Config, show_all: bool, as_json: bool):
    """Merges and unmerges from the registration feed held for a clerk (confirm or reject them)."""
    if ctx.invoked_subcommand is not None:
        return
    index = PatientIndex.for_config(config)
    try:
        held = index.reviews(None if show_all else "pending")
    finally:
        index.close()
    AuditLog.for_config(config).record(
        "patients.merges",
        user=actor(),
        mrns=sorted({m for r in held for m in (r.prior, r.survivor)}),
        details={"results": len(held), "all": show_all},
    )
    for review in held:
        if as_json:
            click.echo(printable_json(json.dumps(_review_row(review), ensure_ascii=False)))
            continue
        decided = f"  {review.state} by {review.decided_by}" if review.state != "pending" else ""
        click.echo(
            printable(
                f"#{review.id:<5} {review.kind:<7} {review.prior} -> {review.survivor}  {review.received_at}  "
                f"{review.requested_by}  {review.control_id or '-'}{decided}"
            )
        )
        click.echo(printable(f"        held: {review.held_because}"))
    if not as_json:
        click.echo(f"{len(held)} held merge(s)", err=True)


def _moved(config: Config, index: PatientIndex, merge: Merge) -> str:
    if carry_out(config, index):
        done = index.merge(merge.id)
        return f"{done.moved} document(s) re-filed"
    return "the running HL7 listener re-files the documents"


@merges.command()
@click.argument("review_id", type=int)
@with_config
def confirm(config: Config, review_id: int):
    """Apply held merge REVIEW_ID: the retired MRN's documents move to the survivor (or back, for an unmerge)."""
    index = PatientIndex.for_config(config)
    try:
        merge = confirm_held(config, index, review_id, user=actor())
        click.echo(
            f"{merge.kind} of MRN {merge.prior} into MRN {merge.survivor} applied: {_moved(config, index, merge)}"
        )
    finally:
        index.close()


@merges.command()
@click.argument("review_id", type=int)
@click.option("--reason", required=True, help="why it is refused (kept and audited)")
@with_config
def reject(config: Config, review_id: int, reason: str):
    """Refuse held merge REVIEW_ID: nothing changes."""
    index = PatientIndex.for_config(config)
    try:
        review = reject_held(config, index, review_id, user=actor(), reason=reason)
    finally:
        index.close()
    click.echo(f"{review.kind} of MRN {review.prior} into MRN {review.survivor} rejected")


@patients.command()
@click.argument("prior")
@click.option("--reason", required=True, help="why the merge is undone (kept and audited)")
@with_config
def unmerge(config: Config, prior: str, reason: str):
    """Undo the merge that retired MRN PRIOR: it is a patient again and its documents go back."""
    index = PatientIndex.for_config(config)
    try:
        merge = unmerge_by_hand(config, index, prior, user=actor(), reason=reason)
        click.echo(f"merge of MRN {merge.prior} into MRN {merge.survivor} undone: {_moved(config, index, merge)}")
    finally:
        index.close()


COMMANDS: list[click.Command] = [patients]
