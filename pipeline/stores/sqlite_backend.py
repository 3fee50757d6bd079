"""The embedded backend: one SQLite file per store under the data root (pipeline.core.sqlite)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.core import sqlite
from pipeline.stores.base import Dialect, Params, Row, Schema, StoreError


class _SqliteTransaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._rowcount = 0

    def execute(self, sql: str, params: Params = ()) -> list[Row]:
        cursor = self._db.execute(sql, tuple(params))
        self._rowcount = cursor.rowcount
        return cursor.fetchall()

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self._rowcount = self._db.executemany(sql, (tuple(r) for r in rows)).rowcount

    def rowcount(self) -> int:
        return self._rowcount

    def lock(self, name: str) -> None:
        """BEGIN IMMEDIATE already made this the only writer."""


class SqliteDatabase:
    """One connection, shared by the threads of one process under a lock."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path, schema: Schema, *, durable: bool = True) -> None:
        self.path = path
        self.schema = schema
        self._lock = threading.RLock()
        try:
            self._db = sqlite.connect(path, durable=durable)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open {path}: {exc}") from None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > self.schema.version:
            raise StoreError(
                f"{self.path} was written by a newer medarchive (schema {version}, this one knows "
                f"{self.schema.version}); upgrade medarchive"
            )
        for migration in self.schema.migrations:
            if migration.version > version:
                with sqlite.immediate(self._db) as db:
                    for statement in _statements(migration.for_dialect("sqlite")):
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {int(migration.version)}")

    @contextmanager
    def transaction(self) -> Iterator[_SqliteTransaction]:
        with self._lock, sqlite.immediate(self._db) as db:
            yield _SqliteTransaction(db)

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _statements(script: str) -> list[str]:
    """A migration's statements (sqlite3 runs one per execute; executescript would commit early)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
