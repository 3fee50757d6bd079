"""`medarchive db ...`: the shared PostgreSQL database (schemas, moving an embedded deployment in)."""

from __future__ import annotations

import click

from pipeline.archive.audit import SCHEMA as AUDIT_SCHEMA
from pipeline.cli.common import with_config
from pipeline.core.config import Config
from pipeline.ehr.outbox import SCHEMA as OUTBOX_SCHEMA
from pipeline.identify.patients import SCHEMA as PATIENTS_SCHEMA
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


@db.command()
@with_config
def status(config: Config):
    """Each store's schema version in the database and the one this medarchive needs."""
    rows = schema_status(config, SCHEMAS)
    for row in rows:
        click.echo(f"{row.store:<10} database {row.database}  code {row.code}  {row.state}")
    if any(row.state != "current" for row in rows):
        raise SystemExit(3)


COMMANDS: list[click.Command] = [db]
