"""One place that opens every store's database: SQLite under the data root, or PostgreSQL.

A store (patient index, outbox, journal, users, requests, appointments, boxes …) names
itself and its schema; ``open_store`` returns a ``Database`` for it. The SQL a store
writes is the portable subset both engines run:

- ``?`` placeholders, values always as parameters (the PostgreSQL backend rewrites
  ``?`` to ``%s``; so a literal ``?`` or ``%`` never appears in a store's SQL);
- rows read by column name (``row["mrn"]``), never by position;
- ``INSERT … ON CONFLICT … DO UPDATE/NOTHING`` for upserts (in ``DO UPDATE`` name the
  existing row's columns with the table's name, ``n = things.n + 1``: PostgreSQL finds a bare
  ``n`` ambiguous), ``RETURNING id`` instead of ``lastrowid``;
- ``tx.lock(name)`` where a writer must be alone between a read and its write (a PostgreSQL
  advisory lock until the transaction ends; SQLite's write lock already is one);
- types ``TEXT``, ``INTEGER``, ``REAL``, ``BLOB`` and ``id INTEGER PRIMARY KEY``
  (an identity column on PostgreSQL); timestamps as ISO-8601 text in UTC.

A schema is an ordered list of migrations; the database keeps the version it is at and
``open_store`` refuses one newer than the code knows.
"""

from pipeline.stores.base import Database, DatabaseUnavailable, Migration, Row, Schema, StoreError, Transaction
from pipeline.stores.bound import SchemaStore
from pipeline.stores.opening import open_store, shared

__all__ = [
    "Database",
    "DatabaseUnavailable",
    "Migration",
    "Row",
    "Schema",
    "SchemaStore",
    "StoreError",
    "Transaction",
    "open_store",
    "shared",
]
