"""Choose the backend for a store from the config."""

from __future__ import annotations

from pipeline.core.config import Config
from pipeline.stores.base import Database, Schema
from pipeline.stores.sqlite_backend import SqliteDatabase


def open_store(config: Config, schema: Schema, *, durable: bool = True) -> Database:
    """The store's database: its schema in the shared PostgreSQL database when ``database.url``
    is set, else ``<data root>/<schema.sqlite_file>`` (0600, WAL, migrated on open).

    ``durable=False`` skips the fsync per commit where a lost commit only repeats harmless work
    (SQLite; PostgreSQL commits are the server's to make durable).
    """
    if config.database.url:
        from pipeline.stores.postgres_backend import open_postgres

        return open_postgres(config, schema)
    return SqliteDatabase(config.root / schema.sqlite_file, schema, durable=durable)


def shared(config: Config) -> bool:
    """Whether this deployment keeps its stores in the shared database."""
    return config.database.url is not None
