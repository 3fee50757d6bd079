"""The archive's full-text index on Whoosh: derived data, rebuilt from sidecars at will.

Whoosh readers see the last commit, so searching while another process writes is
safe; only one writer at a time may hold the index lock. The parts: schema.py
(fields and analysis), query.py (parsing, filters), clerk.py (plain words
that also name types and misread names), budgets.py (what one search may
cost), ranking.py (BM25F a posting list at a time), highlight.py (snippets),
caches.py (what an index keeps between searches), codec.py (how postings are
written and merged).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from indexers.base import (
    DEFAULT_SITE,
    Index,
    IndexBusyError,
    IndexFailure,
    IndexOptions,
    IndexRecord,
    SearchFilters,
    SearchHit,
)
from indexers.query_tree import check_quotes
from indexers.whoosh import compact
from indexers.whoosh.budgets import (
    Deadline,
    check_expansions,
    check_length,
    check_wildcards,
)
from indexers.whoosh.caches import SegmentCaches
from indexers.whoosh.clerk import TypeWords, warm_names, widen
from indexers.whoosh.codec import Codec, NotMergeable, expunge_deleted, make_codec, merge_all, remnants
from indexers.whoosh.highlight import fallback_snippet, prepare, search_hit, snippet
from indexers.whoosh.query import filter_query, parse_query, sorted_column
from indexers.whoosh.ranking import Ranker, ranked
from indexers.whoosh.schema import (
    COMMON_SAMPLE,
    ContentAnalyzer,
    ContentFormat,
    PairFormat,
    build_schema,
    common_words,
    fields_of,
    is_current,
    record_of,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from whoosh import index as whoosh_index
    from whoosh.filedb.filestore import FileStorage
    from whoosh.query import Every
    from whoosh.searching import Results, Searcher
    from whoosh.util.filelock import try_for
    from whoosh.writing import SegmentWriter

# The names older indexes pickled their schema's classes (and codec) under:
# they must still unpickle to be told apart and refused (see is_current).
_Codec = Codec
_ContentAnalyzer = ContentAnalyzer
_ContentFormat = ContentFormat
_PairFormat = PairFormat

_LOCK_NAME = "MAIN_WRITELOCK"  # the file Whoosh's FileIndex.lock("WRITELOCK") uses
_PROCS = min(2, os.cpu_count() or 1)
# Below this a batch is not worth starting sub-processes (and a segment each) for.
_PARALLEL_MIN_BATCH = 1000
_DEFAULTS = IndexOptions()
_NO_FILTERS = SearchFilters()


def _writer_options(options: IndexOptions) -> dict[str, object]:
    # compound=False: whoosh-reloaded copies a compound segment into memory
    # each time a searcher opens it, which would make every query cost in
    # proportion to the size of the index.
    return {"limitmb": options.limitmb, "codec": make_codec(), "compound": False}


class WhooshIndex(Index):
    def __init__(
        self, index_dir: Path, options: IndexOptions = _DEFAULTS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._dir = Path(index_dir)
        self._options = options
        self._clock = clock  # what the search time budget is measured by
        # Kept once opened: it holds the unpickled schema, whose analyzer keeps
        # its stems from one batch to the next.
        self._ix: whoosh_index.Index | None = None
        self.caches = SegmentCaches()
        self._type_words = TypeWords(options.type_synonyms)

    # -- writing -------------------------------------------------------------

    def add(self, records: Iterable[IndexRecord], merge: bool = True) -> int:
        """Add or replace records and commit once; merge=False leaves segment
        merging for bulk loads to a final optimize()."""
        # Whoosh only replaces committed documents, so a doc_id repeated within
        # one batch is collapsed here (the last one wins).
        latest = {record.doc_id: record for record in records}
        if not latest:
            return 0
        procs = _PROCS if len(latest) >= _PARALLEL_MIN_BATCH else 1
        with self._writer(self._open_or_create(latest.values()), merge, procs) as writer:
            _delete_ids(writer, latest)
            for record in latest.values():
                writer.add_document(**fields_of(record))
        return len(latest)

    def delete(self, doc_ids: Iterable[str]) -> int:
        wanted = set(doc_ids)
        ix = self._open()
        if ix is None or not wanted:
            return 0
        with self._writer(ix, merge=True, expunge=True) as writer:
            return sum(writer.delete_by_term("doc_id", doc_id) for doc_id in wanted)

    def remnants(self) -> int:
        ix = self._open()
        return 0 if ix is None else remnants(ix._segments())

    def expunge(self) -> None:
        """Rewrite the segments that still hold deleted documents. ``delete`` does it at
        once (destruction); a replacing ``add`` leaves it to the caller, because the
        rewrite costs in proportion to the segment (seconds at 20,000 documents) and
        a clerk filing the review queue replaces one document at a time."""
        ix = self._open()
        if ix is not None:
            self._expunge(ix)

    def _expunge(self, ix: whoosh_index.Index) -> None:
        for _ in range(compact.ROUNDS):
            doomed = compact.doomed_segments(ix)
            if not doomed:
                return
            if not compact.can_compact(doomed):
                break
            try:
                if compact.compact(ix, doomed, self._dir.parent, self._live_lock):
                    return
            except NotMergeable:
                break
        # Another codec's segments, or deletions that keep arriving: rewritten under the lock.
        if remnants(ix._segments()):
            writer = self._lock_writer(ix)
            try:
                writer.commit(mergetype=expunge_deleted)
            except BaseException:
                writer.cancel()
                raise

    def optimize(self) -> None:
        """Merge all segments into one (after bulk loads with merge=False)."""
        ix = self._open()
        if ix is not None:
            self._lock_writer(ix).commit(mergetype=merge_all)

    def rebuild(self, records: Iterable[IndexRecord], site: str | None = None) -> int:
        """Build a fresh index beside the live one and swap it in by renames,
        holding the live write lock so that no concurrent add is lost."""
        if site is not None:
            raise IndexFailure(
                "this index keeps no sites (one machine's Whoosh index): rebuild all of it with `medarchive reindex`; "
                "sites share an index in PostgreSQL (database.url)"
            )
        self._dir.parent.mkdir(parents=True, exist_ok=True)
        with self._live_lock():
            fresh = Path(tempfile.mkdtemp(prefix=f".{self._dir.name}.new-", dir=self._dir.parent))
            try:
                records = iter(records)
                # The common words of the archive, from its first documents.
                sample = list(itertools.islice(records, COMMON_SAMPLE))
                analyzer = ContentAnalyzer()
                schema = build_schema(common_words(sample, analyzer), analyzer)
                count = self._fill(whoosh_index.create_in(str(fresh), schema), itertools.chain(sample, records))
            except BaseException:
                shutil.rmtree(fresh, ignore_errors=True)
                raise
            self._swap_in(fresh)
        return count

    def _fill(self, ix: whoosh_index.Index, records: Iterable[IndexRecord]) -> int:
        count = 0
        with self._writer(ix, merge=True, procs=_PROCS) as writer:
            for record in records:
                writer.add_document(**fields_of(record))
                count += 1
        return count

    def _swap_in(self, fresh: Path) -> None:
        # rename(2) may replace an empty directory, which gives the old index a
        # unique name without a race. A reader opening between the two renames
        # finds no index (empty results), never a partial one.
        old = Path(tempfile.mkdtemp(prefix=f".{self._dir.name}.old-", dir=self._dir.parent))
        if self._dir.exists():
            os.rename(self._dir, old)
        os.rename(fresh, self._dir)
        shutil.rmtree(old, ignore_errors=True)
        self._ix = None

    @contextmanager
    def _live_lock(self) -> Iterator[None]:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = FileStorage(str(self._dir)).lock(_LOCK_NAME)
        if not try_for(lock.acquire, timeout=self._options.writer_timeout_seconds):
            raise self._busy()
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def _writer(
        self, ix: whoosh_index.Index, merge: bool, procs: int = 1, expunge: bool = False
    ) -> Iterator[SegmentWriter]:
        writer = self._lock_writer(ix, procs)
        try:
            yield writer
        except BaseException:
            _abandon(writer)
            raise
        writer.commit(merge=merge)
        _check_subprocesses(writer)
        # Its own commit, after the one that deleted: the bulk merge cannot take new
        # documents along, and Whoosh's own merge is far too slow for a large segment.
        if expunge:
            self._expunge(ix)

    def _lock_writer(self, ix: whoosh_index.Index, procs: int = 1) -> SegmentWriter:
        # Each sub-process writes its own segment: merging them would cost a
        # second pass over every posting, and a few segments search fast.
        try:
            return ix.writer(
                procs=procs,
                multisegment=True,
                timeout=self._options.writer_timeout_seconds,
                **_writer_options(self._options),
            )
        except whoosh_index.LockError:
            raise self._busy() from None

    def _busy(self) -> IndexBusyError:
        return IndexBusyError(
            f"another medarchive process is writing the index {self._dir} "
            f"(waited {self._options.writer_timeout_seconds:g} s); try again when it has finished"
        )

    # -- reading -------------------------------------------------------------

    def count(self) -> int:
        with self._searcher() as searcher:
            return 0 if searcher is None else searcher.doc_count()

    def doc_ids_for_source(self, source_sha256: str) -> list[str]:
        with self._searcher() as searcher:
            if searcher is None:
                return []
            return sorted(fields["doc_id"] for fields in searcher.documents(source_sha256=source_sha256))

    def stored(self, site: str | None = None) -> Iterator[IndexRecord]:
        with self._searcher() as searcher:
            if searcher is None:
                return
            # all_stored_fields reads one document at a time from disk.
            for fields in searcher.reader().all_stored_fields():
                yield record_of(fields)

    def search(self, query: str, filters: SearchFilters = _NO_FILTERS, limit: int = 20) -> list[SearchHit]:
        """Ranked hits for a Whoosh query; an empty query (or a bare *) lists
        the documents the filters allow, newest first."""
        check_length(query, self._options)
        check_quotes(query)
        if filters.site not in (None, DEFAULT_SITE):
            return []  # one machine's index: every record is of the default site
        narrowing = filter_query(filters)
        with self._searcher() as searcher:
            if searcher is None:
                return []
            if query.strip() in ("", "*"):
                results = searcher.search(narrowing or Every(), limit=limit, sortedby="doc_date", reverse=True)
                return [search_hit(hit, 0.0, fallback_snippet(hit)) for hit in results]
            check_wildcards(query, searcher.schema, self._options)
            parsed = widen(
                parse_query(query, searcher.schema),
                searcher,
                self._type_words,
                self.caches,
                self._options.text_edit_min_letters,
                self._options.max_expansions,
            )
            deadline = Deadline(self._options.search_seconds, self._clock)
            check_expansions(parsed, searcher.reader(), self._options)
            seen: dict = {}
            top = ranked(searcher, parsed, narrowing, limit, self.caches, seen, deadline)
            results = Results(searcher, parsed, top)
            prepare(results, parsed, self.caches, seen)
            return [search_hit(hit, hit.score, snippet(hit)) for hit in results]

    def warm(self) -> None:
        """Read now what the first searches of each segment would otherwise
        read on the way: field lengths for ranking (normalised as BM25 does)
        and the sorted dates for date filters (a second or so on a large archive)."""
        with self._searcher() as searcher:
            if searcher is None:
                return
            for sub, _ in searcher.leaf_searchers():
                ranker = Ranker(searcher, sub, self.caches)
                for fieldname in ("content", "patient_name"):
                    ranker.norms(fieldname)
                sorted_column(sub.reader(), "doc_date", self.caches)
                warm_names(sub.reader(), self.caches)

    def get(self, doc_id: str) -> IndexRecord | None:
        with self._searcher() as searcher:
            fields = None if searcher is None else searcher.document(doc_id=doc_id)
            return None if fields is None else record_of(fields)

    @contextmanager
    def _searcher(self) -> Iterator[Searcher | None]:
        try:
            ix = self._open()
            searcher = ix.searcher() if ix is not None else None
        except (whoosh_index.EmptyIndexError, FileNotFoundError):
            searcher = None  # removed, or caught between a rebuild's two renames
        if searcher is None:
            yield None
            return
        try:
            yield searcher
        finally:
            searcher.close()

    def _open(self) -> whoosh_index.Index | None:
        if self._ix is None:
            try:
                ix = whoosh_index.open_dir(str(self._dir))
            except whoosh_index.EmptyIndexError:
                return None
            if not is_current(ix.schema):
                raise IndexFailure(
                    f"the search index {self._dir} was built by an older version of medarchive and cannot "
                    f"be read or added to; rebuild it from the archive with `medarchive reindex`"
                )
            self._ix = ix
        return self._ix

    def _open_or_create(self, first: Iterable[IndexRecord]) -> whoosh_index.Index:
        ix = self._open()
        if ix is None:
            # Under the lock, because creating resets the table of contents and
            # would throw away a first commit another process has just made.
            with self._live_lock():
                ix = self._open()
                if ix is None:
                    analyzer = ContentAnalyzer()
                    schema = build_schema(common_words(itertools.islice(first, COMMON_SAMPLE), analyzer), analyzer)
                    ix = self._ix = whoosh_index.create_in(str(self._dir), schema)
        return ix

    def close(self) -> None:
        """Drop the cached index handle (no file stays open between calls) and
        what was kept of its segments."""
        self._ix = None
        self.caches.clear()


def _delete_ids(writer: SegmentWriter, doc_ids: Iterable[str]) -> None:
    # A bulk load leaves one segment per batch, and delete_by_term builds a
    # query and a matcher in every one of them for each document; a membership
    # test in the term table is enough to rule out almost all of them.
    searcher = writer.searcher()
    for sub, offset in searcher.leaf_searchers():
        reader = sub.reader()
        for doc_id in doc_ids:
            if ("doc_id", doc_id) in reader:
                for docnum in reader.postings("doc_id", doc_id).all_ids():
                    writer.delete_document(offset + docnum)


def _check_subprocesses(writer: SegmentWriter) -> None:
    # MpWriter commits without the segment of a sub-process that died.
    if any(task.exitcode for task in getattr(writer, "tasks", ())):
        raise IndexFailure(
            "an index writer sub-process failed, so the index lacks documents; run the index rebuild again"
        )


def _abandon(writer: SegmentWriter) -> None:
    # MpWriter.cancel() leaves its sub-processes waiting on their job queue for
    # ever (and the interpreter waiting for them at exit); their output is in
    # the discarded folder, so they can simply be stopped.
    for task in getattr(writer, "tasks", ()):
        task.terminate()
