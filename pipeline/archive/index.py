"""The archive's search index, opened as the configuration says.

The index package knows nothing of the pipeline: its failures are
IndexFailures. Here they become MedarchiveErrors, which the CLI prints on one
line, the web shows as a message, and runs record as the reason an input failed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import indexers.base as indexing
from indexers.base import (
    Index,
    IndexFailure,
    IndexOptions,
    IndexRecord,
    SearchFilters,
    SearchHit,
)
from indexers.whoosh.facade import WhooshIndex
from pipeline.core.config import Config, IndexSettings
from pipeline.core.errors import IndexBusyError, MedarchiveError, SearchIndexError, SearchTooBroadError
from pipeline.stores import DatabaseUnavailable

_NO_FILTERS = SearchFilters()
PASSWORD_ENV = "MEDARCHIVE_DB_PASSWORD"
# Most specific first.
_AS_PIPELINE_ERRORS: tuple[tuple[type[IndexFailure], type[MedarchiveError]], ...] = (
    # A database that went away is waited out like the other stores' (the daemon restarts).
    (indexing.IndexUnavailable, DatabaseUnavailable),
    (indexing.IndexBusyError, IndexBusyError),
    (indexing.SearchTooBroad, SearchTooBroadError),
    (IndexFailure, SearchIndexError),
)


def open_index(config: Config) -> Index:
    """The shared PostgreSQL index when database.url is set, else the Whoosh index under the data root."""
    options = index_options(config.index)
    if config.database.url is None:
        return ArchiveIndex(WhooshIndex(config.index_dir, options))
    from indexers.postgres.facade import PostgresIndex  # psycopg only where it is used

    engine = PostgresIndex(config.database.url, options, database_password(config), config.database.pool_size)
    return ArchiveIndex(engine)


def database_password(config: Config) -> str | None:
    """The database password: database.password_file, else MEDARCHIVE_DB_PASSWORD (never the config file)."""
    settings = config.database
    if settings.password_file is not None:
        path = config.resolve(settings.password_file)
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise SearchIndexError(f"cannot read database.password_file {path}: {exc.strerror}") from None
    return os.environ.get(PASSWORD_ENV) or None


def index_options(settings: IndexSettings) -> IndexOptions:
    return IndexOptions(
        writer_timeout_seconds=settings.writer_timeout_seconds,
        limitmb=settings.limitmb,
        max_query_chars=settings.max_query_chars,
        min_wildcard_prefix=settings.min_wildcard_prefix,
        max_expansions=settings.max_expansions,
        search_seconds=settings.search_seconds,
        type_synonyms={doc_type: tuple(words) for doc_type, words in settings.type_synonyms.items()},
        text_edit_min_letters=settings.text_edit_min_letters,
    )


@contextmanager
def _as_pipeline_errors() -> Iterator[None]:
    try:
        yield
    except IndexFailure as exc:
        kind = next(ours for theirs, ours in _AS_PIPELINE_ERRORS if isinstance(exc, theirs))
        raise kind(str(exc)) from exc


class ArchiveIndex(Index):
    """An index whose failures are raised as the pipeline's errors."""

    def __init__(self, engine: Index) -> None:
        self.engine = engine

    def add(self, records: Iterable[IndexRecord], merge: bool = True) -> int:
        with _as_pipeline_errors():
            return self.engine.add(records, merge)

    def delete(self, doc_ids: Iterable[str]) -> int:
        with _as_pipeline_errors():
            return self.engine.delete(doc_ids)

    def optimize(self) -> None:
        with _as_pipeline_errors():
            self.engine.optimize()

    def remnants(self) -> int:
        with _as_pipeline_errors():
            return self.engine.remnants()

    def expunge(self) -> None:
        with _as_pipeline_errors():
            self.engine.expunge()

    def rebuild(self, records: Iterable[IndexRecord], site: str | None = None) -> int:
        with _as_pipeline_errors():
            return self.engine.rebuild(records, site)

    def search(self, query: str, filters: SearchFilters = _NO_FILTERS, limit: int = 20) -> list[SearchHit]:
        with _as_pipeline_errors():
            return self.engine.search(query, filters, limit)

    def get(self, doc_id: str) -> IndexRecord | None:
        with _as_pipeline_errors():
            return self.engine.get(doc_id)

    def doc_ids_for_source(self, source_sha256: str) -> list[str]:
        with _as_pipeline_errors():
            return self.engine.doc_ids_for_source(source_sha256)

    def stored(self, site: str | None = None) -> Iterator[IndexRecord]:
        with _as_pipeline_errors():
            yield from self.engine.stored(site)

    def count(self) -> int:
        with _as_pipeline_errors():
            return self.engine.count()

    def warm(self) -> None:
        with _as_pipeline_errors():
            self.engine.warm()

    def close(self) -> None:
        self.engine.close()
