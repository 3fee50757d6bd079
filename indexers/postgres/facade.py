"""The archive's search index on PostgreSQL, for several sites sharing one database.

Readers see the last commit (MVCC), any number of processes may add at once, and a
rebuild builds a fresh table beside the live one and swaps it in, holding the writers
off meanwhile (as the Whoosh index's rebuild holds its write lock). The parts: schema.py
(tables, versions), vectors.py (a record's words as tsvectors), compile.py (the query tree
as SQL). Queries are parsed by indexers/query_tree.py, the same tree the Whoosh index reads.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from indexers.base import (
    Index,
    IndexBusyError,
    IndexFailure,
    IndexOptions,
    IndexRecord,
    IndexUnavailable,
    SearchFilters,
    SearchHit,
    SearchTooBroad,
)
from indexers.postgres import schema
from indexers.postgres.compile import Compiler, Lookups, check_length
from indexers.postgres.schema import SCHEMA
from indexers.postgres.vectors import NAME, Vectors
from indexers.query_tree import check_quotes, parse
from indexers.whoosh.clerk import TypeWords, _within_one_edit
from indexers.whoosh.schema import COMMON_SAMPLE, ContentAnalyzer, common_words

# The stored fields, in the order of IndexRecord (and of the COPY into the table).
FIELDS = (
    "doc_id",
    "site",
    "status",
    "mrn",
    "patient_name",
    "dob",
    "doc_type",
    "doc_date",
    "pages",
    "path",
    "sha256",
    "source_sha256",
    "source_file",
    "review_reason",
    "content",
)
_STORED = ", ".join(FIELDS)
_HIT = "doc_id, mrn, patient_name, doc_type, doc_date, status, path, site"
# A broad search ranks its matches by the small head vector first, then this many of them
# (or as many as were asked for, if more) by the whole text: ranking reads each candidate's
# whole vector out of TOAST, which no index can make cheap.
CANDIDATES = 200
# Added to the score of a document with a name the query gives exactly (not one edit off),
# and of one whose type the query names (as Whoosh's ranker weighs names and types).
NAME_BONUS, TYPE_BONUS = 1.0, 2.0
# Writers share this advisory lock; a rebuild holds it alone.
_WRITERS = 0x6D65_6477_7274
_HEADLINE = 'StartSel=**, StopSel=**, MaxFragments=2, MaxWords=18, MinWords=6, FragmentDelimiter=" ... "'
_TYPES_KEPT_SECONDS = 30.0
SNIPPET_FALLBACK_CHARS = 160
_COPY_BATCH = 2000
_CONNECT_SECONDS = 10
_DEFAULTS = IndexOptions()
# Analysing the text is most of the cost of a bulk load: past this many records, in processes.
_PARALLEL_FROM = 2000
_PROCS = min(2, os.cpu_count() or 1)
_CHUNK = 250
_Row = tuple  # the stored fields, head and terms, as COPY takes them
_NO_FILTERS = SearchFilters()


class PostgresIndex(Index):
    def __init__(
        self,
        url: str,
        options: IndexOptions = _DEFAULTS,
        password: str | None = None,
        pool_size: int = 5,
    ) -> None:
        self._url, self._password, self._options = url, password, options
        self._pool_size = pool_size
        self._pool: ConnectionPool | None = None
        self._type_words = TypeWords(options.type_synonyms)
        self._types: tuple[float, tuple[str, ...]] = (0.0, ())

    # -- connections -------------------------------------------------------------------

    def _open_pool(self) -> ConnectionPool:
        if self._pool is None:
            kwargs: dict[str, Any] = {"application_name": "medarchive-index", "connect_timeout": _CONNECT_SECONDS}
            if self._password:
                kwargs["password"] = self._password
            try:
                # One plain connection first: a refused password or a server that is not there
                # is told now, in the server's words, rather than as a pool that never fills.
                psycopg.connect(self._url, **kwargs).close()
            except psycopg.OperationalError as exc:
                raise IndexFailure(f"cannot connect to the index database {self.shown}: {self._scrub(exc)}") from None
            pool = ConnectionPool(
                self._url,
                kwargs=kwargs,
                min_size=1,
                max_size=self._pool_size,
                open=False,
                name="medarchive-index",
                timeout=self._options.writer_timeout_seconds,
                # A connection the server dropped (a restart, a failover) is replaced, not handed out.
                check=ConnectionPool.check_connection,
            )
            try:
                pool.open(wait=True, timeout=_CONNECT_SECONDS)
                with pool.connection() as conn:
                    schema.check(conn)
            except PoolTimeout:
                pool.close()
                raise IndexUnavailable(
                    f"cannot reach the index database {self.shown}; is PostgreSQL running?"
                ) from None
            except BaseException:
                pool.close()
                raise
            self._pool = pool
        return self._pool

    @property
    def shown(self) -> str:
        """The database, as messages name it (never with a password)."""
        return re.sub(r"//[^@/]*:[^@/]*@", "//", self._url.split("?", 1)[0])

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        try:
            with self._open_pool().connection() as conn:
                yield conn
        except PoolTimeout:
            raise IndexUnavailable(f"cannot reach the index database {self.shown}; is PostgreSQL running?") from None
        except pg_errors.QueryCanceled:
            raise SearchTooBroad(
                f"the search took longer than {self._options.search_seconds:g} s and was stopped: narrow it "
                "with more words, a patient, a document type or dates"
            ) from None
        except pg_errors.LockNotAvailable:
            raise self._busy() from None
        except psycopg.OperationalError as exc:
            raise IndexFailure(f"the index database {self.shown} failed: {self._scrub(exc)}") from None
        except psycopg.Error as exc:
            raise IndexFailure(f"the index database {self.shown} refused: {self._scrub(exc)}") from None

    def _scrub(self, exc: Exception) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        return text.replace(self._password, "***") if self._password else text

    def _busy(self) -> IndexBusyError:
        return IndexBusyError(
            f"another medarchive process is rebuilding the index in {self.shown} "
            f"(waited {self._options.writer_timeout_seconds:g} s); try again when it has finished"
        )

    @contextmanager
    def _writing(self, conn: psycopg.Connection, alone: bool = False) -> Iterator[None]:
        """A transaction that holds the writers' lock (shared, or alone for a rebuild)."""
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = {int(self._options.writer_timeout_seconds * 1000)}")
            lock = "pg_advisory_xact_lock" if alone else "pg_advisory_xact_lock_shared"
            conn.execute(f"SELECT {lock}(%s)", (_WRITERS,))
            yield

    # -- writing -----------------------------------------------------------------------

    def add(self, records: Iterable[IndexRecord], merge: bool = True) -> int:
        latest = {record.doc_id: record for record in records}
        if not latest:
            return 0
        with self._connection() as conn, self._writing(conn):
            self._upsert(conn, latest.values(), Vectors(self._settled_common_words(conn, latest.values())))
        return len(latest)

    def _upsert(self, conn: psycopg.Connection, records: Iterable[IndexRecord], vectors: Vectors) -> int:
        """Add or replace records by doc_id (each once in records); returns how many."""
        conn.execute(f"CREATE TEMP TABLE incoming (LIKE {SCHEMA}.documents INCLUDING DEFAULTS) ON COMMIT DROP")
        count, words = self._copy_counted(conn, "incoming", records, vectors)
        assignments = ", ".join(f"{c} = excluded.{c}" for c in (*FIELDS[1:], "head", "terms"))
        # In doc_id order (as the words, sorted): writers lock rows in one order, never deadlock.
        conn.execute(
            f"INSERT INTO {SCHEMA}.documents SELECT * FROM incoming ORDER BY doc_id "
            f"ON CONFLICT (doc_id) DO UPDATE SET {assignments}"
        )
        self._add_words(conn, "words", "names", words)
        return count

    def _copy(self, conn: psycopg.Connection, table: str, records: Iterable[IndexRecord], vectors: Vectors) -> set[str]:
        """COPY the records into a table; returns their words (text and names)."""
        words: set[str] = set()
        with conn.cursor().copy(f"COPY {table} ({_STORED}, head, terms) FROM STDIN") as copy:
            for row, found in _rows(records, vectors):
                words.update(found)
                copy.write_row(row)
        return words

    def _common_words(self, conn: psycopg.Connection) -> frozenset[str] | None:
        row = conn.execute(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'common_words'").fetchone()
        return None if row is None else frozenset(row[0].split())

    def _settled_common_words(self, conn: psycopg.Connection, first: Iterable[IndexRecord]) -> frozenset[str]:
        """The archive's common words; the first documents given an index decide them (as in Whoosh)."""
        common = self._common_words(conn)
        if common is None:
            self._keep_common_words(conn, first, replace=False)
            common = self._common_words(conn) or frozenset()
        return common

    def _keep_common_words(
        self, conn: psycopg.Connection, sample: Iterable[IndexRecord], replace: bool
    ) -> frozenset[str]:
        common = common_words(itertools.islice(sample, COMMON_SAMPLE), ContentAnalyzer())
        conflict = "DO UPDATE SET value = excluded.value" if replace else "DO NOTHING"
        conn.execute(
            f"INSERT INTO {SCHEMA}.meta (key, value) VALUES ('common_words', %s) ON CONFLICT (key) {conflict}",
            (" ".join(sorted(common)),),
        )
        return common

    def _add_words(self, conn: psycopg.Connection, words_table: str, names_table: str, words: set[str]) -> None:
        if not words:
            return
        conn.execute(
            f"INSERT INTO {SCHEMA}.{words_table} SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
            (sorted(words),),
        )
        names = sorted(w[len(NAME) :] for w in words if w.startswith(NAME))
        if names:
            conn.execute(
                f"INSERT INTO {SCHEMA}.{names_table} SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                (names,),
            )

    def delete(self, doc_ids: Iterable[str]) -> int:
        wanted = sorted(set(doc_ids))
        if not wanted:
            return 0
        with self._connection() as conn, self._writing(conn):
            return conn.execute(f"DELETE FROM {SCHEMA}.documents WHERE doc_id = ANY(%s)", (wanted,)).rowcount

    def optimize(self) -> None:
        """Fold the GIN index's pending entries in and refresh the planner's statistics."""
        with self._connection() as conn:
            conn.autocommit = True
            try:
                conn.execute(f"VACUUM (ANALYZE) {SCHEMA}.documents")
            finally:
                conn.autocommit = False

    def rebuild(self, records: Iterable[IndexRecord], site: str | None = None) -> int:
        """Replace the whole index (or, given a site, that site's documents) with these records.
        The whole index is built in a fresh table with its indexes made once at the end, then
        swapped in; readers see the old one until then, and writers wait."""
        records = iter(records)
        sample = list(itertools.islice(records, COMMON_SAMPLE))
        records = itertools.chain(sample, records)
        with self._connection() as conn, self._writing(conn, alone=True):
            if site is not None:
                vectors = Vectors(self._settled_common_words(conn, sample))
                conn.execute(f"DELETE FROM {SCHEMA}.documents WHERE site = %s", (site,))
                # Upserted: a document may have been indexed under another site before.
                return self._upsert(conn, _first_of_each(records), vectors)
            vectors = Vectors(self._keep_common_words(conn, sample, replace=True))
            conn.execute(f"DROP TABLE IF EXISTS {SCHEMA}.documents_new")
            conn.execute(f"CREATE TABLE {SCHEMA}.documents_new (LIKE {SCHEMA}.documents INCLUDING STORAGE)")
            count, words = self._copy_counted(conn, f"{SCHEMA}.documents_new", _first_of_each(records), vectors)
            conn.execute(f"ALTER TABLE {SCHEMA}.documents_new ADD PRIMARY KEY (doc_id)")
            for statement in schema.documents_indexes("documents_new"):
                conn.execute(statement)
            conn.execute(f"TRUNCATE {SCHEMA}.words, {SCHEMA}.names")
            self._add_words(conn, "words", "names", words)
            conn.execute(f"DROP TABLE {SCHEMA}.documents")
            conn.execute(f"ALTER TABLE {SCHEMA}.documents_new RENAME TO documents")
        self.optimize()
        return count

    def _copy_counted(
        self, conn: psycopg.Connection, table: str, records: Iterable[IndexRecord], vectors: Vectors
    ) -> tuple[int, set[str]]:
        count = 0

        def counted() -> Iterator[IndexRecord]:
            nonlocal count
            for record in records:
                count += 1
                yield record

        words = self._copy(conn, table, counted(), vectors)
        return count, words

    # -- reading -----------------------------------------------------------------------

    def search(self, query: str, filters: SearchFilters = _NO_FILTERS, limit: int = 20) -> list[SearchHit]:
        check_length(query, self._options)
        check_quotes(query)
        tree = parse(query)
        narrowing, narrowing_params = _filters(filters)
        with self._connection() as conn, conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {max(1, int(self._options.search_seconds * 1000))}")
            if tree is None:
                rows = conn.execute(
                    f"SELECT {_HIT}, 0.0, left(content, 2000) FROM {SCHEMA}.documents WHERE {narrowing} "
                    "ORDER BY doc_date DESC NULLS LAST, doc_id LIMIT %s",
                    (*narrowing_params, limit),
                ).fetchall()
                return [_hit(row, _fallback(row[9])) for row in rows]
            compiled = Compiler(self._options, self._type_words, self._lookups(conn)).compile(tree)
            rank = compiled.rank
            shown = " | ".join(compiled.shown)
            # One pass, no join back to the table: the candidates carry their columns (large
            # ones as TOAST pointers, read only by the ranking of these few, and the headline
            # of the shown ones).
            rows = conn.execute(
                f"""
                SELECT {_HIT}, score,
                       ts_headline('english', content, to_tsquery('english', %s), %s), left(content, 400)
                FROM (
                    SELECT {_HIT}, content,
                           coalesce(ts_rank_cd(terms, %s::tsquery) + ts_rank(head, %s::tsquery), 0)
                           + CASE WHEN head @@ %s::tsquery THEN {NAME_BONUS} ELSE 0 END
                           + CASE WHEN head @@ %s::tsquery THEN {TYPE_BONUS} ELSE 0 END AS score
                    FROM (
                        SELECT {_HIT}, content, head, terms FROM {SCHEMA}.documents
                        WHERE ({compiled.where}) AND {narrowing}
                        ORDER BY coalesce(ts_rank(head, %s::tsquery), 0) DESC, doc_date DESC NULLS LAST
                        LIMIT %s
                    ) candidates
                    WHERE %s::tsquery IS NULL OR terms @@ %s::tsquery
                    ORDER BY score DESC, doc_id LIMIT %s
                ) ranked
                ORDER BY score DESC, doc_id
                """,
                (
                    shown,
                    _HEADLINE,
                    rank,
                    rank,
                    compiled.names,
                    compiled.types,
                    *compiled.params,
                    *narrowing_params,
                    rank,
                    max(CANDIDATES, limit),
                    compiled.verify,
                    compiled.verify,
                    limit,
                ),
            ).fetchall()
            return [_hit(row, _snippet(row[9], row[10])) for row in rows]

    def _lookups(self, conn: psycopg.Connection) -> Lookups:
        def words_like(pattern: str, most: int) -> list[str]:
            rows = conn.execute(
                f"SELECT word FROM {SCHEMA}.words WHERE word LIKE %s LIMIT %s", (pattern, most + 1)
            ).fetchall()
            return [row[0] for row in rows]

        def words_between(label: str, low: str | None, high: str | None, most: int) -> list[str]:
            # A word of the text never has a label's colon; names all have theirs.
            rows = conn.execute(
                f"SELECT word FROM {SCHEMA}.words WHERE word >= %s AND (%s::text IS NULL OR word <= %s) "
                "AND (word LIKE %s) = %s LIMIT %s",
                (low or label, high, high, NAME + "%", bool(label), most + 1),
            ).fetchall()
            return [row[0] for row in rows]

        def name_variants(word: str) -> list[str]:
            conn.execute("SET LOCAL pg_trgm.similarity_threshold = 0.2")
            rows = conn.execute(
                f"SELECT word FROM {SCHEMA}.names WHERE word %% %s AND length(word) BETWEEN %s AND %s",
                (word, len(word) - 1, len(word) + 1),
            ).fetchall()
            return sorted(row[0] for row in rows if row[0] != word and _within_one_edit(word, row[0]))

        def lexicon_size(most: int) -> int:
            row = conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {SCHEMA}.words LIMIT %s) w", (most + 1,)
            ).fetchone()
            return int(row[0]) if row else 0

        @functools.cache
        def common() -> frozenset[str]:
            return self._common_words(conn) or frozenset()

        return Lookups(self._doc_types_of(conn), words_like, words_between, name_variants, lexicon_size, common)

    def _doc_types_of(self, conn: psycopg.Connection):
        def doc_types() -> tuple[str, ...]:
            at, types = self._types
            if time.monotonic() - at > _TYPES_KEPT_SECONDS:
                # The distinct types by skipping through the btree, one probe per type.
                rows = conn.execute(
                    f"""
                    WITH RECURSIVE t(doc_type) AS (
                        (SELECT min(doc_type) FROM {SCHEMA}.documents)
                        UNION ALL
                        SELECT (SELECT min(doc_type) FROM {SCHEMA}.documents WHERE doc_type > t.doc_type)
                        FROM t WHERE t.doc_type IS NOT NULL
                    ) SELECT doc_type FROM t WHERE doc_type IS NOT NULL
                    """
                ).fetchall()
                types = tuple(row[0] for row in rows)
                self._types = (time.monotonic(), types)
            return types

        return doc_types

    def get(self, doc_id: str) -> IndexRecord | None:
        with self._connection() as conn:
            row = conn.execute(f"SELECT {_STORED} FROM {SCHEMA}.documents WHERE doc_id = %s", (doc_id,)).fetchone()
        return None if row is None else _record(row)

    def doc_ids_for_source(self, source_sha256: str) -> list[str]:
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT doc_id FROM {SCHEMA}.documents WHERE source_sha256 = %s ORDER BY doc_id", (source_sha256,)
            ).fetchall()
        return [row[0] for row in rows]

    def stored(self, site: str | None = None) -> Iterator[IndexRecord]:
        """Every record (of one site, if given), read in batches through a server-side cursor."""
        with self._connection() as conn, conn.transaction():
            cursor = conn.cursor(name="medarchive_stored")
            cursor.itersize = _COPY_BATCH
            cursor.execute(
                f"SELECT {_STORED} FROM {SCHEMA}.documents WHERE %s::text IS NULL OR site = %s ORDER BY doc_id",
                (site, site),
            )
            for row in cursor:
                yield _record(row)

    def count(self) -> int:
        with self._connection() as conn:
            row = conn.execute(f"SELECT count(*) FROM {SCHEMA}.documents").fetchone()
        return int(row[0]) if row else 0

    def warm(self) -> None:
        """Open the pool (and check the schema) ahead of the first search."""
        self._open_pool()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _first_of_each(records: Iterable[IndexRecord]) -> Iterator[IndexRecord]:
    """The records, a doc_id given again left out (the table's key is made after the load)."""
    seen: set[str] = set()
    for record in records:
        if record.doc_id not in seen:
            seen.add(record.doc_id)
            yield record


def _row(record: IndexRecord, vectors: Vectors) -> tuple[_Row, list[str]]:
    head, terms, found = vectors.of(record)
    return (*(getattr(record, name) for name in FIELDS), head, terms), found


def _chunk_rows(chunk: list[IndexRecord], common: frozenset[str]) -> list[tuple[_Row, list[str]]]:
    vectors = _WORKER_VECTORS.get(common)
    if vectors is None:
        _WORKER_VECTORS.clear()
        vectors = _WORKER_VECTORS[common] = Vectors(common)
    return [_row(record, vectors) for record in chunk]


_WORKER_VECTORS: dict[frozenset[str], Vectors] = {}


def _rows(records: Iterable[IndexRecord], vectors: Vectors) -> Iterator[tuple[_Row, list[str]]]:
    """Each record's row for COPY, and its words; a long run analysed in sub-processes
    (in order), while this one writes."""
    records = iter(records)
    first = list(itertools.islice(records, _PARALLEL_FROM))
    if len(first) < _PARALLEL_FROM or _PROCS < 2:
        for record in itertools.chain(first, records):
            yield _row(record, vectors)
        return
    chunks = iter(lambda: list(itertools.islice(records, _CHUNK)), [])
    all_chunks = itertools.chain((first[i : i + _CHUNK] for i in range(0, len(first), _CHUNK)), chunks)
    # fork: the workers only analyse text, never touch this process's connections.
    with multiprocessing.get_context("fork").Pool(_PROCS) as pool:
        work = functools.partial(_chunk_rows, common=vectors.common)
        for rows in pool.imap(work, all_chunks):
            yield from rows


def _filters(filters: SearchFilters) -> tuple[str, list[object]]:
    conditions, params = ["TRUE"], []
    for column, value in (
        ("mrn", filters.mrn),
        ("doc_type", filters.doc_type),
        ("status", filters.status),
        ("site", getattr(filters, "site", None)),
    ):
        if value:
            conditions.append(f"{column} = %s")
            params.append(value)
    if filters.date_from:
        conditions.append("doc_date >= %s")
        params.append(filters.date_from)
    if filters.date_to:
        conditions.append("doc_date <= %s")
        params.append(filters.date_to)
    return " AND ".join(conditions), params


def _record(row: tuple) -> IndexRecord:
    return IndexRecord(**dict(zip(FIELDS, row, strict=True)))


def _hit(row: tuple, snippet: str) -> SearchHit:
    doc_id, mrn, patient_name, doc_type, doc_date, status, path, site, score = row[:9]
    return SearchHit(
        doc_id=doc_id,
        mrn=mrn,
        patient_name=patient_name,
        doc_type=doc_type,
        doc_date=doc_date,
        status=status,
        score=float(score),
        snippet=snippet,
        path=path,
        site=site,
    )


def _fallback(content: str) -> str:
    return " ".join(content.split())[:SNIPPET_FALLBACK_CHARS]


def _snippet(headline: str, start: str) -> str:
    marked = " ".join(headline.split())
    return marked if "**" in marked else _fallback(start)
