"""The interface every store backend meets (no engine imports here)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pipeline.core.errors import MedarchiveError

Row = Mapping[str, Any]
Params = Sequence[Any]
Dialect = Literal["sqlite", "postgres"]


class StoreError(MedarchiveError):
    """A store cannot be opened, migrated or used (the message names which and why)."""


class DatabaseUnavailable(StoreError):
    """The shared database cannot be reached now (down, restarting, network): wait and retry."""


@dataclass(frozen=True)
class Migration:
    """One schema step. ``sql`` runs on both engines unless ``postgres`` gives that engine its own text."""

    version: int
    sql: str
    postgres: str | None = None

    def for_dialect(self, dialect: Dialect) -> str:
        return self.postgres if dialect == "postgres" and self.postgres is not None else self.sql


@dataclass(frozen=True)
class Schema:
    """A store's name (its PostgreSQL schema and version-table key) and migrations in order.

    ``file`` is its SQLite file under the data root (default ``<name>.sqlite``).
    """

    name: str
    migrations: tuple[Migration, ...]
    file: str | None = None

    @property
    def sqlite_file(self) -> str:
        return self.file or f"{self.name}.sqlite"

    @property
    def version(self) -> int:
        return self.migrations[-1].version if self.migrations else 0


class Transaction(Protocol):
    def execute(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one statement; the rows it returns (empty for most writes)."""
        ...

    def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...

    def rowcount(self) -> int:
        """Rows changed by the last ``execute``."""
        ...

    def lock(self, name: str) -> None:
        """Be the only writer holding ``name`` until this transaction ends (a PostgreSQL advisory
        lock; SQLite's write lock already makes every writer alone)."""
        ...


class Database(Protocol):
    dialect: Dialect
    schema: Schema

    def transaction(self) -> AbstractContextManager[Transaction]:
        """All or nothing; writers queue for the write lock (never deadlock half-way)."""
        ...

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """One read outside any transaction."""
        ...

    def close(self) -> None: ...


def iter_rows(rows: Iterable[Row]) -> Iterator[dict[str, Any]]:
    """Plain dicts, for records built by ``**row``."""
    for row in rows:
        yield dict(row)
