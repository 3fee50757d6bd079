"""`medarchive patients ...`: the patient index (import a registration export, look up, list)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from pipeline.archive.audit import AuditLog
from pipeline.cli.common import actor, json_option, with_config
from pipeline.core.config import Config
from pipeline.identify.patients import PatientIndex, PatientIndexError
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
        counts = index.import_roster(rows)
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
    """One patient, and the MRNs merged into it."""
    index = PatientIndex.for_config(config)
    try:
        patient = index.get(mrn)
        survivor = index.survivor_of(mrn)
        retired = [r[0] for r in index.query("SELECT mrn FROM aliases WHERE survivor = ? ORDER BY mrn", (mrn,))]
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
    }
    if as_json:
        click.echo(json.dumps(row, ensure_ascii=False))
        return
    for key in ("mrn", "family", "given", "dob", "sex", "status", "merged_into", "updated_at"):
        if key in row:
            click.echo(f"{key:>12}: {row[key] if row[key] is not None else '-'}")
    click.echo(f"{'retired MRNs':>12}: {', '.join(retired) or '-'}")


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
            click.echo(json.dumps(asdict(p), ensure_ascii=False))
        else:
            merged = f"  -> {p.merged_into}" if p.merged_into else ""
            click.echo(f"{p.mrn:<12} {p.status:<7} {p.dob}  {p.sex or '-'}  {p.family}, {p.given}{merged}")
    if not as_json:
        click.echo(f"{len(rows)} patient(s)", err=True)


COMMANDS: list[click.Command] = [patients]
