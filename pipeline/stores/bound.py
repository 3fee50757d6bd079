"""A store class bound to one schema: opened from the config, closed by ``with`` or ``close``."""

from __future__ import annotations

from types import TracebackType
from typing import ClassVar, Self

from pipeline.core.config import Config
from pipeline.stores.base import Database, Schema
from pipeline.stores.opening import open_store


class SchemaStore:
    """Subclasses set ``SCHEMA`` and read and write through ``self.db``."""

    SCHEMA: ClassVar[Schema]

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def for_config(cls, config: Config) -> Self:
        return cls(open_store(config, cls.SCHEMA))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
