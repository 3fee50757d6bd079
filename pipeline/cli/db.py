"""`medarchive db ...`: the shared PostgreSQL database (schemas, moving an embedded deployment in)."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.archive.audit import SCHEMA as AUDIT_SCHEMA
from pipeline.archive.audit import AuditLog
from pipeline.archive.index import open_index
from pipeline.archive.store import iter_sidecars, record_from_sidecar
from pipeline.cli.common import actor, with_config
from pipeline.clinic.appointments import SCHEMA as APPOINTMENTS_SCHEMA
from pipeline.core.config import Config
from pipeline.ehr.outbox import SCHEMA as OUTBOX_SCHEMA
from pipeline.identify.patients import SCHEMA as PATIENTS_SCHEMA
from pipeline.paper.store import SCHEMA as BOXES_SCHEMA
from pipeline.records.db_import import import_embedded
from pipeline.requests.store import SCHEMA as REQUESTS_SCHEMA
from pipeline.runs.journal import SCHEMA as JOURNAL_SCHEMA
from pipeline.stores import Schema
from pipeline.stores.admin import status as schema_status
from pipeline.stores.admin import upgrade_all
from web.shared_logins import SCHEMA as SESSIONS_SCHEMA
from web.users import SCHEMA as USERS_SCHEMA

# Every store kept in the shared database; a new store adds its schema here.
SCHEMAS: tuple[Schema, ...] = (
    PATIENTS_SCHEMA,
    OUTBOX_SCHEMA,
    JOURNAL_SCHEMA,
    USERS_SCHEMA,
    SESSIONS_SCHEMA,
    AUDIT_SCHEMA,
    APPOINTMENTS_SCHEMA,
    BOXES_SCHEMA,
    REQUESTS_SCHEMA,
)


@click.group()
def db():
    """The shared database of a several-site deployment (database.url)."""


@db.command()
@with_config
def upgrade(config: Config):
    """Create or migrate every store's schema to this medarchive's version (safe to repeat)."""
    for done in upgrade_all(config, SCHEMAS):
        change = "created" if done.database == 0 else ("current" if done.database == done.code else "migrated")
        click.echo(
            f"{done.store:<10} schema {done.code} ({change}{'' if change != 'migrated' else f' from {done.database}'})"
        )
    index = open_index(config)  # the search index makes or checks its own schema (indexers/postgres)
    try:
        click.echo(f"{'index':<10} ready ({index.count()} document(s))")
    finally:
        index.close()


@db.command()
@with_config
def status(config: Config):
    """Each store's schema version in the database and the one this medarchive needs."""
    rows = schema_status(config, SCHEMAS)
    from pipeline.stores.postgres_backend import server_version, target  # psycopg: loaded only here

    click.echo(f"database {target(config).shown} (PostgreSQL {server_version(config)}), site {config.site}")
    for row in rows:
        click.echo(f"{row.store:<10} database {row.database}  code {row.code}  {row.state}")
    if any(row.state != "current" for row in rows):
        raise SystemExit(3)


@db.command(name="import")
@click.option(
    "--from",
    "source_root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="the embedded deployment's data root (default: this config's data root)",
)
@click.option("--skip-index", is_flag=True, help="leave the index alone (rebuild it later with `medarchive reindex`)")
@with_config
def import_(config: Config, source_root: Path | None, skip_index: bool):
    """Move an embedded deployment's stores (patient index, outbox, journal, users, audit chains)
    into the shared database, then rebuild the index from the sidecars. Safe to stop and run again."""

    def rebuild() -> int:
        return open_index(config).rebuild(record_from_sidecar(s) for s in iter_sidecars(config))

    report = import_embedded(
        config,
        [s for s in SCHEMAS if s not in (SESSIONS_SCHEMA, AUDIT_SCHEMA)],
        source_root=source_root,
        rebuild_index=None if skip_index else rebuild,
        progress=lambda line: click.echo(line, err=True),
    )
    copied = sum(report.rows.values())
    AuditLog.for_config(config).record(
        "db.import",
        user=actor(),
        details={"rows": copied, "documents": report.documents, "from": str(source_root or config.root)},
    )
    heads = ", ".join(
        f"{chain} {check.entries} entries (head {check.head[:12]})" for chain, check in report.chains.items()
    )
    click.echo(f"imported {copied} row(s); chains verified: {heads}")
    if report.documents is not None:
        click.echo(f"index rebuilt: {report.documents} document(s)")


COMMANDS: list[click.Command] = [db]
