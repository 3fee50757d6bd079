"""`medarchive db upgrade` and `db status`: the shared database's schemas against this code's."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.core.config import Config
from pipeline.stores.base import Schema, StoreError


@dataclass(frozen=True)
class StoreVersion:
    store: str
    database: int  # 0 = not created yet
    code: int

    @property
    def state(self) -> str:
        if self.database == self.code:
            return "current"
        if self.database == 0:
            return "missing: run `medarchive db upgrade`"
        if self.database < self.code:
            return "older: run `medarchive db upgrade`"
        return "newer than this medarchive: upgrade medarchive"


def _require_database(config: Config) -> None:
    if config.database.url is None:
        raise StoreError(
            "database.url is not set: this deployment keeps its stores under the data root, "
            "where they are migrated when opened"
        )


def status(config: Config, schemas: Iterable[Schema]) -> list[StoreVersion]:
    _require_database(config)
    from pipeline.stores.postgres_backend import pool_for, versions

    pool, where = pool_for(config)
    found = versions(pool, where)
    return [StoreVersion(s.name, found.get(s.name, 0), s.version) for s in schemas]


def upgrade_all(config: Config, schemas: Iterable[Schema]) -> list[StoreVersion]:
    """Migrate every store to this code's schema; what each was at before."""
    _require_database(config)
    from pipeline.stores.postgres_backend import pool_for, upgrade

    pool, where = pool_for(config)
    done = []
    for schema in schemas:
        before, after = upgrade(pool, where, schema)
        done.append(StoreVersion(schema.name, before, after))
    return done
