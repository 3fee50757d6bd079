"""The archive's full-text index on Whoosh: derived data, rebuilt from sidecars at will.

Whoosh readers see the last commit, so searching while another process writes is
safe; only one writer at a time may hold the index lock.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.config import IndexSettings
from pipeline.errors import IndexBusyError, MedarchiveError

from .base import Index, IndexRecord, SearchFilters, SearchHit

# whoosh-reloaded still carries invalid escape sequences that newer Pythons warn
# about when compiling it; the CLI must not print them to clerks.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from whoosh import index as whoosh_index
    from whoosh.analysis import Analyzer, LowercaseFilter, RegexTokenizer, StemmingAnalyzer
    from whoosh.fields import ID, STORED, TEXT, Schema
    from whoosh.filedb.filestore import FileStorage
    from whoosh.highlight import ContextFragmenter, Formatter, get_text
    from whoosh.qparser import AndGroup, FieldAliasPlugin, MultifieldParser
    from whoosh.query import And, Every, Query, Require, Term, TermRange
    from whoosh.searching import Hit, Searcher
    from whoosh.util.filelock import try_for
    from whoosh.writing import SegmentWriter

SNIPPET_FALLBACK_CHARS = 160
_SNIPPET_MAX_CHARS = 300
_SNIPPET_FRAGMENTS = 2
_TEXT_FIELDS = ("content", "patient_name", "mrn")
_KEYWORD_FIELDS = ("mrn", "dob", "doc_type", "doc_date", "status", "sha256", "source_sha256")
_STORED_ONLY = ("path", "source_file", "review_reason", "pages")
_LOCK_NAME = "MAIN_WRITELOCK"  # the file Whoosh's FileIndex.lock("WRITELOCK") uses


def _name_analyzer() -> Analyzer:
    # No stop list (a patient may be called May or Will) and no stemming, so
    # "doe", "Jane Doe" and "DOE, JANE" all reduce to the same lowercase words.
    return RegexTokenizer() | LowercaseFilter()


def build_schema() -> Schema:
    return Schema(
        doc_id=ID(unique=True, stored=True),
        patient_name=TEXT(stored=True, analyzer=_name_analyzer(), field_boost=2.0),
        # Positions allow phrase queries; character offsets are not stored
        # because they cost more at build time than re-tokenizing a few hits.
        content=TEXT(stored=True, analyzer=StemmingAnalyzer(), phrase=True),
        **{name: ID(stored=True, sortable=name == "doc_date") for name in _KEYWORD_FIELDS},
        **{name: STORED for name in _STORED_ONLY},
    )


class _MarkFormatter(Formatter):
    """Wraps matches in ** so snippets stay plain text in a terminal or a log."""

    between = " ... "

    def format_token(self, text: str, token, replace: bool = False) -> str:
        return f"**{get_text(text, token, replace)}**"


class WhooshIndex(Index):
    def __init__(self, index_dir: Path, settings: IndexSettings) -> None:
        self._dir = Path(index_dir)
        self._settings = settings

    # -- writing -------------------------------------------------------------

    def add(self, records: Iterable[IndexRecord], merge: bool = True) -> int:
        """Add or replace records and commit once; merge=False defers segment
        merging for bulk loads (call optimize() at the end)."""
        # Whoosh only replaces committed documents, so a doc_id repeated within
        # one batch must be collapsed here (the last one wins).
        latest = {record.doc_id: record for record in records}
        if not latest:
            return 0
        with self._writer(self._open_or_create(), merge) as writer:
            for record in latest.values():
                writer.update_document(**_fields(record))
        return len(latest)

    def delete(self, doc_ids: Iterable[str]) -> int:
        wanted = set(doc_ids)
        ix = self._open()
        if ix is None or not wanted:
            return 0
        with self._writer(ix, merge=True) as writer:
            return sum(writer.delete_by_term("doc_id", doc_id) for doc_id in wanted)

    def optimize(self) -> None:
        """Merge all segments into one (after bulk loads with merge=False)."""
        ix = self._open()
        if ix is not None:
            self._lock_writer(ix).commit(optimize=True)

    def rebuild(self, records: Iterable[IndexRecord]) -> int:
        """Build a fresh index beside the live one and swap it in by renames,
        holding the live write lock so no concurrent add is lost."""
        parent = self._dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        with self._live_lock():
            fresh = Path(tempfile.mkdtemp(prefix=f".{self._dir.name}.new-", dir=parent))
            try:
                count = self._fill(whoosh_index.create_in(str(fresh), build_schema()), records)
            except BaseException:
                shutil.rmtree(fresh, ignore_errors=True)
                raise
            self._swap_in(fresh)
        return count

    def _fill(self, ix: whoosh_index.Index, records: Iterable[IndexRecord]) -> int:
        count = 0
        with self._writer(ix, merge=True) as writer:
            for record in records:
                writer.add_document(**_fields(record))
                count += 1
        return count

    def _swap_in(self, fresh: Path) -> None:
        # rename(2) may replace an empty directory, which gives the old index a
        # unique name without a race; readers opening in between get no index
        # (empty results) rather than a partial one.
        old = Path(tempfile.mkdtemp(prefix=f".{self._dir.name}.old-", dir=self._dir.parent))
        if self._dir.exists():
            os.rename(self._dir, old)
        os.rename(fresh, self._dir)
        shutil.rmtree(old, ignore_errors=True)

    @contextmanager
    def _live_lock(self) -> Iterator[None]:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = FileStorage(str(self._dir)).lock(_LOCK_NAME)
        if not try_for(lock.acquire, timeout=self._settings.writer_timeout_seconds):
            raise self._busy()
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def _writer(self, ix: whoosh_index.Index, merge: bool) -> Iterator[SegmentWriter]:
        writer = self._lock_writer(ix)
        try:
            yield writer
        except BaseException:
            writer.cancel()
            raise
        writer.commit(merge=merge)

    def _lock_writer(self, ix: whoosh_index.Index) -> SegmentWriter:
        try:
            return ix.writer(timeout=self._settings.writer_timeout_seconds, limitmb=self._settings.limitmb)
        except whoosh_index.LockError:
            raise self._busy() from None

    def _busy(self) -> IndexBusyError:
        return IndexBusyError(
            f"another medarchive process is writing the index {self._dir} "
            f"(waited {self._settings.writer_timeout_seconds:g} s); try again when it has finished"
        )

    # -- reading -------------------------------------------------------------

    def count(self) -> int:
        ix = self._open()
        return 0 if ix is None else ix.doc_count()

    def doc_ids_for_source(self, source_sha256: str) -> list[str]:
        with self._searcher() as searcher:
            if searcher is None:
                return []
            return sorted(fields["doc_id"] for fields in searcher.documents(source_sha256=source_sha256))

    def stored(self) -> Iterator[IndexRecord]:
        with self._searcher() as searcher:
            if searcher is None:
                return
            # all_stored_fields reads one document at a time from disk.
            for fields in searcher.reader().all_stored_fields():
                yield _record(fields)

    def search(self, query: str, filters: SearchFilters = SearchFilters(), limit: int = 20) -> list[SearchHit]:
        narrowing = _filter_query(filters)
        with self._searcher() as searcher:
            if searcher is None:
                return []
            # A bare * would expand to every content term; it means "everything".
            if query.strip() in ("", "*"):
                results = searcher.search(narrowing or Every(), limit=limit, sortedby="doc_date", reverse=True)
                return [_hit(hit, 0.0, _fallback_snippet(hit)) for hit in results]
            parsed = self._parse(query, searcher.schema)
            results = searcher.search(Require(parsed, narrowing) if narrowing else parsed, limit=limit)
            results.fragmenter = ContextFragmenter(maxchars=_SNIPPET_MAX_CHARS, surround=40)
            results.formatter = _MarkFormatter()
            return [_hit(hit, hit.score, _snippet(hit)) for hit in results]

    def _parse(self, query: str, schema: Schema) -> Query:
        parser = MultifieldParser(list(_TEXT_FIELDS), schema, group=AndGroup)
        parser.add_plugin(FieldAliasPlugin({"patient_name": ["name", "patient"], "content": ["text"]}))
        try:
            return parser.parse(query)
        except Exception as exc:  # Whoosh signals bad syntax with assorted exception types
            raise MedarchiveError(
                f"cannot understand the search {query!r} ({exc}); use words, \"quoted phrases\", "
                "AND/OR/NOT, field:value (mrn, name, doc_type, status, doc_date) or wildcards like diab*"
            ) from None

    @contextmanager
    def _searcher(self) -> Iterator[Searcher | None]:
        ix = self._open()
        if ix is None:
            yield None
            return
        searcher = ix.searcher()
        try:
            yield searcher
        finally:
            searcher.close()

    def _open(self) -> whoosh_index.Index | None:
        if not whoosh_index.exists_in(str(self._dir)):
            return None
        return whoosh_index.open_dir(str(self._dir))

    def _open_or_create(self) -> whoosh_index.Index:
        ix = self._open()
        if ix is not None:
            return ix
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return whoosh_index.create_in(str(self._dir), build_schema())

    def close(self) -> None:
        """Nothing is held between calls; present so callers can treat every
        index alike."""


def _fields(record: IndexRecord) -> dict[str, object]:
    values = {
        "doc_id": record.doc_id,
        "patient_name": record.patient_name,
        "content": record.content,
        **{name: getattr(record, name) for name in _KEYWORD_FIELDS + _STORED_ONLY},
    }
    # Whoosh cannot index None; an absent field reads back as None anyway.
    return {name: value for name, value in values.items() if value is not None}


def _record(fields: dict) -> IndexRecord:
    return IndexRecord(
        doc_id=fields["doc_id"],
        status=fields["status"],
        mrn=fields.get("mrn"),
        patient_name=fields.get("patient_name"),
        dob=fields.get("dob"),
        doc_type=fields["doc_type"],
        doc_date=fields.get("doc_date"),
        pages=fields["pages"],
        path=fields["path"],
        sha256=fields["sha256"],
        source_sha256=fields["source_sha256"],
        source_file=fields["source_file"],
        review_reason=fields.get("review_reason"),
        content=fields.get("content", ""),
    )


def _filter_query(filters: SearchFilters) -> Query | None:
    terms: list[Query] = [
        Term(name, value)
        for name, value in (("mrn", filters.mrn), ("doc_type", filters.doc_type), ("status", filters.status))
        if value
    ]
    if filters.date_from or filters.date_to:
        terms.append(TermRange("doc_date", filters.date_from, filters.date_to))
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else And(terms)


def _snippet(hit: Hit) -> str:
    marked = hit.highlights("content", top=_SNIPPET_FRAGMENTS)
    return " ".join(marked.split()) if marked else _fallback_snippet(hit)


def _fallback_snippet(hit: Hit) -> str:
    return " ".join(hit.get("content", "").split())[:SNIPPET_FALLBACK_CHARS]


def _hit(hit: Hit, score: float, snippet: str) -> SearchHit:
    return SearchHit(
        doc_id=hit["doc_id"],
        mrn=hit.get("mrn"),
        patient_name=hit.get("patient_name"),
        doc_type=hit["doc_type"],
        doc_date=hit.get("doc_date"),
        status=hit["status"],
        score=score,
        snippet=snippet,
        path=hit["path"],
    )
