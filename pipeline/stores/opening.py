"""Choose the backend for a store from the config."""

from __future__ import annotations

from pipeline.core.config import Config
from pipeline.stores.base import Database, Schema
from pipeline.stores.sqlite_backend import SqliteDatabase


def open_store(config: Config, schema: Schema, *, durable: bool = True) -> Database:
    """The store's database: ``<data root>/<schema.name>.sqlite`` (0600, WAL).

    ``durable=False`` skips the fsync per commit where a lost commit only repeats harmless work.
    """
    return SqliteDatabase(config.root / f"{schema.name}.sqlite", schema, durable=durable)
