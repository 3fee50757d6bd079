"""The archive's full-text index on Whoosh: derived data, rebuilt from sidecars at will.

Whoosh readers see the last commit, so searching while another process writes is
safe; only one writer at a time may hold the index lock.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from array import array
from collections import defaultdict
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
    from whoosh.codec.whoosh3 import W3Codec, W3PostingsWriter, W3TermInfo
    from whoosh.fields import ID, STORED, TEXT, Schema
    from whoosh.filedb.filestore import FileStorage
    from whoosh.highlight import Formatter, PinpointFragmenter, get_text
    from whoosh.matching import ListMatcher, Matcher
    from whoosh.qparser import AndGroup, FieldAliasPlugin, MultifieldParser
    from whoosh.query import And, Every, Query, Term, TermRange
    from whoosh.query.wrappers import WrappingQuery
    from whoosh.searching import Hit, Results, Searcher
    from whoosh.util.filelock import try_for
    from whoosh.writing import SegmentWriter

SNIPPET_FALLBACK_CHARS = 160
SNIPPET_MAX_CHARS = 300
_SNIPPET_FRAGMENTS = 2
_DEFAULT_FIELDS = ["content", "patient_name", "mrn"]
_ALIASES = {"patient_name": ["name", "patient"], "content": ["text"]}
# Posting lists shorter than this live in the term table (see _Codec).
_INLINE_POSTINGS = 10
_KEYWORD_FIELDS = ("mrn", "dob", "doc_type", "doc_date", "status", "sha256", "source_sha256")
_STORED_ONLY = ("path", "source_file", "review_reason", "pages")
_LOCK_NAME = "MAIN_WRITELOCK"  # the file Whoosh's FileIndex.lock("WRITELOCK") uses
_PROCS = min(2, os.cpu_count() or 1)
# Below this a batch is not worth starting sub-processes (and a segment each) for.
_PARALLEL_MIN_BATCH = 1000


def _name_analyzer() -> Analyzer:
    # No stop list (a patient may be called May or Will) and no stemming, so
    # "doe", "Jane Doe" and "DOE, JANE" all reduce to the same lowercase words.
    return RegexTokenizer() | LowercaseFilter()


def build_schema() -> Schema:
    return Schema(
        doc_id=ID(unique=True, stored=True),
        patient_name=TEXT(stored=True, analyzer=_name_analyzer(), field_boost=2.0),
        # Character offsets (which include positions, so phrases work) cost no
        # more to write than positions alone and let hits be highlighted
        # without re-analysing their text.
        content=TEXT(stored=True, analyzer=StemmingAnalyzer(), chars=True),
        **{name: ID(stored=True, sortable=name == "doc_date") for name in _KEYWORD_FIELDS},
        **{name: STORED for name in _STORED_ONLY},
    )


class _InliningPostingsWriter(W3PostingsWriter):
    """Keeps a short posting list in the term table instead of a pickled,
    compressed block of its own in the postings file.

    OCR text has a long tail of words seen in a few documents each, so most
    terms of a segment are short lists, and writing (then merging, then
    reading) each as a separate block dominated building the index. Whoosh
    has this option (inlinelimit) but its writer calls a method that does not
    exist (set_inline for set_inlined), so it could never be turned on.
    """

    def finish_postings(self) -> W3TermInfo:
        # Formats without per-posting values (ID fields) still need one
        # (empty) value each: merging copies them through an assertion.
        if self.written() or len(self) >= self._inlinelimit or len(self._values) not in (0, len(self._ids)):
            return super().finish_postings()
        terminfo, self._terminfo = self._terminfo, None
        terminfo.add_block(self)
        terminfo.set_inlined(self._ids, self._weights, self._values or [b""] * len(self._ids))
        return terminfo


class _Codec(W3Codec):
    def postings_writer(self, dbfile, byteids: bool = False) -> W3PostingsWriter:
        return _InliningPostingsWriter(dbfile, blocklimit=self._blocklimit, byteids=byteids,
                                       compression=self._compression, inlinelimit=self._inlinelimit)


def _codec() -> W3Codec:
    codec = _Codec(inlinelimit=_INLINE_POSTINGS)
    # Per-posting document-length lookups take ~15% of a build; they only
    # tighten the score bounds used to skip blocks (0 stays a valid bound).
    codec.length_stats = False
    return codec


def _writer_options(settings: IndexSettings) -> dict[str, object]:
    # compound=False: whoosh-reloaded copies a compound segment into memory
    # each time a searcher opens it, which would make every query cost in
    # proportion to the size of the index.
    return {"limitmb": settings.limitmb, "codec": _codec(), "compound": False}


class _MarkFormatter(Formatter):
    """Wraps matches in ** so snippets stay plain text in a terminal or a log."""

    between = " ... "

    def format_token(self, text: str, token, replace: bool = False) -> str:
        return f"**{get_text(text, token, replace)}**"


class WhooshIndex(Index):
    def __init__(self, index_dir: Path, settings: IndexSettings) -> None:
        self._dir = Path(index_dir)
        self._settings = settings
        # Kept once opened: it holds the unpickled schema, whose stemming
        # cache then survives from one batch to the next.
        self._ix: whoosh_index.Index | None = None

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
        with self._writer(self._open_or_create(), merge, procs) as writer:
            _delete_ids(writer, latest)
            for record in latest.values():
                writer.add_document(**_fields(record))
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
        holding the live write lock so that no concurrent add is lost."""
        self._dir.parent.mkdir(parents=True, exist_ok=True)
        with self._live_lock():
            fresh = Path(tempfile.mkdtemp(prefix=f".{self._dir.name}.new-", dir=self._dir.parent))
            try:
                count = self._fill(whoosh_index.create_in(str(fresh), build_schema()), records)
            except BaseException:
                shutil.rmtree(fresh, ignore_errors=True)
                raise
            self._swap_in(fresh)
        return count

    def _fill(self, ix: whoosh_index.Index, records: Iterable[IndexRecord]) -> int:
        count = 0
        with self._writer(ix, merge=True, procs=_PROCS) as writer:
            for record in records:
                writer.add_document(**_fields(record))
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
        if not try_for(lock.acquire, timeout=self._settings.writer_timeout_seconds):
            raise self._busy()
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def _writer(self, ix: whoosh_index.Index, merge: bool, procs: int = 1) -> Iterator[SegmentWriter]:
        writer = self._lock_writer(ix, procs)
        try:
            yield writer
        except BaseException:
            _abandon(writer)
            raise
        writer.commit(merge=merge)
        _check_subprocesses(writer)

    def _lock_writer(self, ix: whoosh_index.Index, procs: int = 1) -> SegmentWriter:
        # Each sub-process writes its own segment: merging them would cost a
        # second pass over every posting, and a few segments search fast.
        try:
            return ix.writer(procs=procs, multisegment=True, timeout=self._settings.writer_timeout_seconds,
                             **_writer_options(self._settings))
        except whoosh_index.LockError:
            raise self._busy() from None

    def _busy(self) -> IndexBusyError:
        return IndexBusyError(
            f"another medarchive process is writing the index {self._dir} "
            f"(waited {self._settings.writer_timeout_seconds:g} s); try again when it has finished"
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

    def stored(self) -> Iterator[IndexRecord]:
        with self._searcher() as searcher:
            if searcher is None:
                return
            # all_stored_fields reads one document at a time from disk.
            for fields in searcher.reader().all_stored_fields():
                yield _record(fields)

    def search(self, query: str, filters: SearchFilters = SearchFilters(), limit: int = 20) -> list[SearchHit]:
        """Ranked hits for a Whoosh query; an empty query (or a bare *) lists
        the documents the filters allow, newest first."""
        narrowing = _filter_query(filters)
        with self._searcher() as searcher:
            if searcher is None:
                return []
            if query.strip() in ("", "*"):
                results = searcher.search(narrowing or Every(), limit=limit, sortedby="doc_date", reverse=True)
                return [_hit(hit, 0.0, _fallback_snippet(hit)) for hit in results]
            parsed = _parse(query, searcher.schema)
            # Not terms=True: that records the matched terms of every matching
            # document, and broad queries match most of the archive.
            results = searcher.search(And([parsed, _Narrowing(narrowing)]) if narrowing else parsed, limit=limit)
            _record_matched_terms(results, parsed)
            # No character limit: pinpoint highlighting reads offsets from the
            # index instead of scanning the text, so long documents cost nothing.
            results.fragmenter = PinpointFragmenter(maxchars=SNIPPET_MAX_CHARS // _SNIPPET_FRAGMENTS, surround=50,
                                                    autotrim=True, charlimit=None)
            results.formatter = _MarkFormatter()
            return [_hit(hit, hit.score, _snippet(hit)) for hit in results]

    def get(self, doc_id: str) -> IndexRecord | None:
        with self._searcher() as searcher:
            fields = None if searcher is None else searcher.document(doc_id=doc_id)
            return None if fields is None else _record(fields)

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
                self._ix = whoosh_index.open_dir(str(self._dir))
            except whoosh_index.EmptyIndexError:
                return None
        return self._ix

    def _open_or_create(self) -> whoosh_index.Index:
        ix = self._open()
        if ix is None:
            # Under the lock, because creating resets the table of contents and
            # would throw away a first commit another process has just made.
            with self._live_lock():
                ix = self._open()
                if ix is None:
                    ix = self._ix = whoosh_index.create_in(str(self._dir), build_schema())
        return ix

    def close(self) -> None:
        """Drop the cached index handle; no file stays open between calls."""
        self._ix = None


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
        raise MedarchiveError("an index writer sub-process failed, so the index lacks documents; "
                              "run the index rebuild again")


def _abandon(writer: SegmentWriter) -> None:
    # MpWriter.cancel() leaves its sub-processes waiting on their job queue for
    # ever (and the interpreter waiting for them at exit); their output is in
    # the discarded folder, so they can simply be stopped.
    for task in getattr(writer, "tasks", ()):
        task.terminate()
        task.join()
    writer.cancel()


def _parse(query: str, schema: Schema) -> Query:
    parser = MultifieldParser(_DEFAULT_FIELDS, schema, group=AndGroup)
    parser.add_plugin(FieldAliasPlugin(_ALIASES))
    try:
        return parser.parse(query)
    except Exception:  # the parser recovers from most bad syntax; what it raises is not for clerks
        searchable = ", ".join(sorted({*(name for name, field in schema.items() if field.indexed), "name"}))
        raise MedarchiveError(
            f"cannot understand the search {query!r}: use words, \"quoted phrases\", AND/OR/NOT, "
            f"wildcards such as diab*, or field:value where the field is one of {searchable}"
        ) from None


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
    # Zero boosts narrow without changing the ranking. (Whoosh's Require would
    # say this better, but its matcher trips an assertion when skipping blocks.)
    terms: list[Query] = [
        Term(name, value, boost=0.0)
        for name, value in (("mrn", filters.mrn), ("doc_type", filters.doc_type), ("status", filters.status))
        if value
    ]
    if filters.date_from or filters.date_to:
        terms.append(TermRange("doc_date", filters.date_from, filters.date_to, boost=0.0))
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else And(terms)


def _zero_scored(ids: list[int]) -> ListMatcher:
    return ListMatcher(ids, weights=array("f", bytes(4 * len(ids))))


class _Narrowing(WrappingQuery):
    """Matches what the filter query matches, scoring 0, from a flat list of
    document numbers: a date range is hundreds of terms, and Whoosh would
    otherwise walk a tree of unions of them for every candidate document."""

    def matcher(self, searcher: Searcher, context=None) -> Matcher:
        return _zero_scored(sorted(_docs(self.child, searcher.reader())))


def _docs(query: Query, reader) -> set[int]:
    if isinstance(query, And):
        return set.intersection(*(_docs(sub, reader) for sub in query.subqueries))
    found: set[int] = set()
    for fieldname, text in query.existing_terms(reader, expand=True):
        found.update(reader.postings(fieldname, text).all_ids())
    return found


def _record_matched_terms(results: Results, query: Query) -> None:
    """Which query terms occur in each shown hit, which is what pinpoint
    highlighting needs: looked up for these few documents only."""
    reader = results.searcher.reader()
    shown = sorted(hit.docnum for hit in results)
    results.termdocs, results.docterms = {}, defaultdict(list)
    for term in query.existing_terms(reader, expand=True):
        if term[0] != "content":
            continue
        docs = list(_containing(reader.postings(*term), shown))
        results.termdocs[term] = array("I", docs)
        for docnum in docs:
            results.docterms[docnum].append(term)


def _containing(postings: Matcher, docnums: list[int]) -> Iterator[int]:
    for docnum in docnums:
        if not postings.is_active():
            return
        postings.skip_to(docnum)
        if postings.is_active() and postings.id() == docnum:
            yield docnum


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
