"""The archive's full-text index on Whoosh: derived data, rebuilt from sidecars at will.

Whoosh readers see the last commit, so searching while another process writes is
safe; only one writer at a time may hold the index lock.
"""

from __future__ import annotations

import heapq
import itertools
import os
import shutil
import tempfile
import threading
import warnings
from array import array
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import accumulate
from pathlib import Path

from indexers.base import Index, IndexRecord, SearchFilters, SearchHit
from indexers.whoosh.codec import Codec, Postings, make_codec, merge_all, read_all
from pipeline.core.config import IndexSettings
from pipeline.core.errors import IndexBusyError, MedarchiveError

# Indexes of schema version 2 and before name the codec by this name; they
# must still unpickle to be told apart and refused (see _current_schema).
_Codec = Codec

# whoosh-reloaded still carries invalid escape sequences that newer Pythons warn
# about when compiling it; the CLI must not print them to clerks.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from whoosh import index as whoosh_index
    from whoosh.analysis import (
        STOP_WORDS,
        Analyzer,
        LowercaseFilter,
        RegexTokenizer,
        StemmingAnalyzer,
    )
    from whoosh.analysis.tokenizers import default_pattern
    from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
    from whoosh.columns import VarBytesColumn
    from whoosh.fields import ID, STORED, TEXT, Schema
    from whoosh.filedb.filestore import FileStorage
    from whoosh.formats import Format
    from whoosh.highlight import Formatter, PinpointFragmenter, get_text
    from whoosh.lang.porter import stem
    from whoosh.matching import ListMatcher, Matcher
    from whoosh.qparser import AndGroup, FieldAliasPlugin, MultifieldParser
    from whoosh.query import (
        And,
        AndNot,
        Every,
        Not,
        NullQuery,
        Or,
        Phrase,
        Query,
        Term,
        TermRange,
    )
    from whoosh.query.wrappers import WrappingQuery
    from whoosh.scoring import BM25F
    from whoosh.searching import Hit, Results, Searcher
    from whoosh.util.filelock import try_for
    from whoosh.util.numeric import byte_to_length
    from whoosh.util.text import rcompile
    from whoosh.writing import SegmentWriter

SNIPPET_FALLBACK_CHARS = 160
SNIPPET_MAX_CHARS = 300
_SNIPPET_FRAGMENTS = 2
_DEFAULT_FIELDS = ["content", "patient_name", "mrn"]
_ALIASES = {"patient_name": ["name", "patient"], "content": ["text"]}
_KEYWORD_FIELDS = ("mrn", "dob", "doc_type", "doc_date", "status", "sha256", "source_sha256")
_STORED_ONLY = ("path", "source_file", "review_reason", "pages")
_LOCK_NAME = "MAIN_WRITELOCK"  # the file Whoosh's FileIndex.lock("WRITELOCK") uses
_PROCS = min(2, os.cpu_count() or 1)
# Below this a batch is not worth starting sub-processes (and a segment each) for.
_PARALLEL_MIN_BATCH = 1000


# What the schema looks like; an index written with another version is not
# read (its postings are encoded differently) but rebuilt by `medarchive reindex`.
SCHEMA_VERSION = 3


def _name_analyzer() -> Analyzer:
    # No stop list (a patient may be called May or Will) and no stemming, so
    # "doe", "Jane Doe" and "DOE, JANE" all reduce to the same lowercase words.
    return RegexTokenizer() | LowercaseFilter()


_WORD = rcompile(default_pattern)
_STEMS: dict[str, str] = {}
_STEM_CACHE_MAX = 200_000


class _ContentAnalyzer(Analyzer):
    """Whoosh's StemmingAnalyzer (its tokens for queries and highlighting),
    plus the same analysis as plain tuples for indexing: building a Token per
    word and filtering it through a chain of generators was most of the cost
    of indexing a document."""

    def __init__(self) -> None:
        self.chain = StemmingAnalyzer()

    def __call__(self, value, **kwargs):
        return self.chain(value, **kwargs)

    def __eq__(self, other) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    @staticmethod
    def index_tokens(text: str) -> dict[str, list[int]]:
        """{stemmed word: [position, startchar, endchar, ...]} as the chain gives
        them in index mode: words of the tokenizer's pattern, lowercased, stop
        words and one-letter words dropped, positions renumbered without them."""
        return _analysed(text)[0]


_LAST_ANALYSED: list = [None, None]  # the text last analysed and what came of it


def _analysed(text: str) -> tuple[dict[str, list[int]], list[str]]:
    """index_tokens(text), and the stemmed words in order (consecutive
    positions): the content and pair fields of a document analyse one text."""
    if _LAST_ANALYSED[0] is text:
        return _LAST_ANALYSED[1]
    found: dict[str, list[int]] = {}
    sequence: list[str] = []
    stems, stops = _STEMS, STOP_WORDS
    pos = -1
    for raw, match in enumerate(_WORD.finditer(text)):
        word = match.group().lower()
        if len(word) < 2 or word in stops:
            continue
        # StopFilter(renumber=True): the first kept word keeps its own
        # position, each later one follows it by one.
        pos = raw if pos < 0 else pos + 1
        stemmed = stems.get(word)
        if stemmed is None:
            if len(stems) >= _STEM_CACHE_MAX:
                stems.clear()
            stemmed = stems[word] = stem(word)
        sequence.append(stemmed)
        entry = found.get(stemmed)
        if entry is None:
            found[stemmed] = [pos, match.start(), match.end()]
        else:
            entry += (pos, match.start(), match.end())
    _LAST_ANALYSED[:] = [text, (found, sequence)]
    return found, sequence


assert array("I").itemsize == 4


class _ContentFormat(Format):
    """Positions and character offsets of each occurrence, as one array of
    unsigned ints (position, startchar, endchar, ...): the same information as
    Whoosh's Characters format, which pickles a list of deltas per posting and
    decodes it in a Python loop; this one is written and read by C code, so
    phrase checks on thousands of candidates stay cheap."""

    posting_size = -1

    def __init__(self, field_boost: float = 1.0) -> None:
        super().__init__(field_boost=field_boost)
        self.version = SCHEMA_VERSION  # pickled with the schema into the index

    def word_values(self, value, analyzer, **kwargs):
        fb = self.field_boost
        if isinstance(analyzer, _ContentAnalyzer) and set(kwargs) <= {"mode"}:
            found = analyzer.index_tokens(value)
        else:
            found = defaultdict(list)
            for t in analyzer(value, positions=True, chars=True, **kwargs):
                found[t.text] += (t.pos, t.startchar, t.endchar)
        for word, occurrences in found.items():
            freq = len(occurrences) // 3
            yield word, freq, freq * fb, array("I", occurrences).tobytes()

    @staticmethod
    def _ints(valuestring: bytes) -> array:
        ints = array("I")
        ints.frombytes(valuestring)
        return ints

    def decode_frequency(self, valuestring: bytes) -> int:
        return len(valuestring) // 12

    def decode_weight(self, valuestring: bytes) -> float:
        return len(valuestring) // 12 * self.field_boost

    def decode_positions(self, valuestring: bytes) -> list[int]:
        return self._ints(valuestring)[0::3].tolist()

    def decode_characters(self, valuestring: bytes) -> list[tuple[int, int, int]]:
        ints = self._ints(valuestring)
        return list(zip(ints[0::3], ints[1::3], ints[2::3]))


class _PairFormat(Format):
    """The content's pairs of adjacent words ("chest pain") where both words
    are common in the archive: a phrase of common words becomes one or a few
    short posting lists instead of positions checked in most documents.
    (Pairs of all words would multiply the terms of the index.) Values hold
    nothing but the count, which is the weight."""

    posting_size = 0

    def __init__(self, words: Iterable[str] = (), field_boost: float = 1.0) -> None:
        super().__init__(field_boost=field_boost)
        self.words = frozenset(words)

    def word_values(self, value, analyzer, **kwargs):
        words = self.words
        if not words:
            return
        counts: dict[str, int] = defaultdict(int)
        sequence = _analysed(value)[1]
        for first, second in zip(sequence, sequence[1:]):
            if first in words and second in words:
                counts[f"{first} {second}"] += 1
        for pair, count in counts.items():
            yield pair, count, float(count), b""

    def decode_frequency(self, valuestring: bytes) -> int:
        return 1

    def decode_weight(self, valuestring: bytes) -> float:
        return self.field_boost


_PAIRS = "content_pairs"
# A word is common, and its pairs indexed, when at least this share of the
# sample documents hold it (and at least two do); at most this many words.
_COMMON_SHARE = 0.1
_COMMON_MAX = 1000
_COMMON_SAMPLE = 2000


def _common_words(records: Iterable[IndexRecord]) -> frozenset[str]:
    df: dict[str, int] = defaultdict(int)
    count = 0
    for record in records:
        count += 1
        if isinstance(record.content, str):  # (else indexing it fails, as it should)
            for word in _analysed(record.content)[0]:
                df[word] += 1
    least = max(2, _COMMON_SHARE * count)
    ranked = sorted((word for word, n in df.items() if n >= least), key=lambda word: -df[word])
    return frozenset(ranked[:_COMMON_MAX])


def _pairs_field(words: Iterable[str]) -> TEXT:
    field = TEXT(analyzer=_ContentAnalyzer())
    field.format = _PairFormat(words)
    field.scorable = False
    return field


def _content_field() -> TEXT:
    field = TEXT(stored=True, analyzer=_ContentAnalyzer())
    # Character offsets (which include positions, so phrases work) let hits
    # be highlighted without re-analysing their text.
    field.format = _ContentFormat()
    return field


def build_schema(common_words: Iterable[str] = ()) -> Schema:
    """The index's fields; common_words (of the content, see _PairFormat) are
    fixed when the index is created, from the first documents given it."""
    return Schema(
        doc_id=ID(unique=True, stored=True),
        patient_name=TEXT(stored=True, analyzer=_name_analyzer(), field_boost=2.0),
        content=_content_field(),
        **{_PAIRS: _pairs_field(common_words)},
        **{name: ID(stored=True, sortable=name == "doc_date") for name in _KEYWORD_FIELDS},
        **{name: STORED for name in _STORED_ONLY},
    )


def _current_schema(schema: Schema) -> bool:
    content = schema["content"] if "content" in schema else None
    return (content is not None and isinstance(content.format, _ContentFormat)
            and _PAIRS in schema and isinstance(schema[_PAIRS].format, _PairFormat)
            and getattr(content.format, "version", None) == SCHEMA_VERSION
            and sorted(schema.names()) == sorted(build_schema().names()))


def _writer_options(settings: IndexSettings) -> dict[str, object]:
    # compound=False: whoosh-reloaded copies a compound segment into memory
    # each time a searcher opens it, which would make every query cost in
    # proportion to the size of the index.
    return {"limitmb": settings.limitmb, "codec": make_codec(), "compound": False}


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
        with self._writer(self._open_or_create(latest.values()), merge, procs) as writer:
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
            self._lock_writer(ix).commit(mergetype=merge_all)

    def rebuild(self, records: Iterable[IndexRecord]) -> int:
        """Build a fresh index beside the live one and swap it in by renames,
        holding the live write lock so that no concurrent add is lost."""
        self._dir.parent.mkdir(parents=True, exist_ok=True)
        with self._live_lock():
            fresh = Path(tempfile.mkdtemp(prefix=f".{self._dir.name}.new-", dir=self._dir.parent))
            try:
                records = iter(records)
                # The common words of the archive, from its first documents.
                sample = list(itertools.islice(records, _COMMON_SAMPLE))
                schema = build_schema(_common_words(sample))
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
            seen: dict = {}
            results = Results(searcher, parsed, _ranked(searcher, parsed, narrowing, limit, seen))
            _record_matched_terms(results, parsed, seen)
            # No character limit: pinpoint highlighting reads offsets from the
            # index instead of scanning the text, so long documents cost nothing.
            results.fragmenter = PinpointFragmenter(maxchars=SNIPPET_MAX_CHARS // _SNIPPET_FRAGMENTS, surround=50,
                                                    autotrim=True, charlimit=None)
            results.formatter = _MarkFormatter()
            return [_hit(hit, hit.score, _snippet(hit)) for hit in results]

    def warm(self) -> None:
        """Read now what the first searches of each segment would otherwise
        read on the way: field lengths for ranking (normalised as BM25 does)
        and the sorted dates for date filters (a second or so on a large archive)."""
        with self._searcher() as searcher:
            if searcher is None:
                return
            for sub, _ in searcher.leaf_searchers():
                ranker = _Ranker(searcher, sub)
                for fieldname in ("content", "patient_name"):
                    ranker._norms(fieldname)
                _sorted_column(sub.reader(), "doc_date")

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
                ix = whoosh_index.open_dir(str(self._dir))
            except whoosh_index.EmptyIndexError:
                return None
            if not _current_schema(ix.schema):
                raise MedarchiveError(
                    f"the search index {self._dir} was built by an older version of medarchive and cannot "
                    f"be read or added to; rebuild it from the archive with `medarchive reindex`")
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
                    schema = build_schema(_common_words(itertools.islice(first, _COMMON_SAMPLE)))
                    ix = self._ix = whoosh_index.create_in(str(self._dir), schema)
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
        searchable = ", ".join(sorted({*(name for name, field in schema.items() if field.indexed and name != _PAIRS),
                                       "name"}))
        raise MedarchiveError(
            f"cannot understand the search {query!r}: use words, \"quoted phrases\", AND/OR/NOT, "
            f"wildcards such as diab*, or field:value where the field is one of {searchable}"
        ) from None


def _fields(record: IndexRecord) -> dict[str, object]:
    values = {
        "doc_id": record.doc_id,
        "patient_name": record.patient_name,
        "content": record.content,
        _PAIRS: record.content,
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


def _docs(query: Query, reader) -> set[int]:
    """The documents of one segment that a filter query matches."""
    if isinstance(query, And):
        return set.intersection(*(_docs(sub, reader) for sub in query.subqueries))
    if isinstance(query, TermRange) and not query.startexcl and not query.endexcl \
            and reader.schema[query.fieldname].column_type is not None:
        # A range of dates is hundreds of terms, each a posting list to read;
        # the sorted column answers it with two bisections.
        values, docnums = _sorted_column(reader, query.fieldname)
        field = reader.schema[query.fieldname]
        low = 0 if query.start is None else bisect_left(values, field.to_bytes(query.start))
        high = len(values) if query.end is None else bisect_right(values, field.to_bytes(query.end))
        found = set(docnums[low:high])
        return found - reader.deleted_docs_set if reader.has_deletions() else found
    found: set[int] = set()
    for fieldname, text in query.existing_terms(reader, expand=True):
        m = reader._terms.matcher(fieldname, text, reader.schema[fieldname].format)
        found.update(read_all(m, False)[0] if isinstance(m, W3LeafMatcher) else m.all_ids())
    return found - reader.deleted_docs_set if reader.has_deletions() else found


# -- ranking -------------------------------------------------------------------
#
# Whoosh ranks by walking a tree of matchers document by document, several
# Python calls per document and per term, and reads a field length from disk
# for each score; a phrase decodes the positions of its words in every
# document that has them all. On an archive where common words are in most
# documents that costs seconds. _Ranker computes the same BM25F scores a
# posting list at a time instead: a term's documents, weights and positions
# are read block by block into lists, the field lengths of a segment once,
# and And/Or/Not become dictionary operations. Query types it does not know
# (wildcards, ranges, fuzzy terms...) are scored by Whoosh's own matchers.
# Phrases are the exception: they find their documents through pairs of
# words (see _PairFormat) and rank them by the pairs, not by each word; a
# document that may have the words apart is only checked for the words in a
# row when it is about to be shown.

class _Check:
    """A condition on documents checked a batch at a time (see _PhraseCheck)."""

    def __init__(self) -> None:
        self.passed: dict[int, bool] = {}

    def verify(self, docnums: Iterable[int]) -> None:
        """Decide for these documents (into self.passed)."""
        raise NotImplementedError

    def __call__(self, docnum: int) -> bool:
        if docnum not in self.passed:
            self.verify([docnum])
        return self.passed[docnum]


def _verify(pending: Iterable[tuple[int, tuple[_Check, ...]]]) -> None:
    """Checks the documents' conditions, a batch per condition."""
    batches: dict[_Check, list[int]] = defaultdict(list)
    for docnum, checks in pending:
        for check in checks:
            if docnum not in check.passed:
                batches[check].append(docnum)
    for check, docnums in batches.items():
        check.verify(docnums)


# {docnum: score}, and {docnum: checks it must pass to be a match}
_Scored = tuple[dict[int, float], dict[int, tuple[_Check, ...]]]
# Per segment (whose id is in the key), kept between searches; web requests
# run in threads, hence the lock.
# (Arrays rather than lists, a hundred thousand numbers each, that the garbage
# collector would otherwise go through at each full collection.)
_LENGTHS: dict[tuple[str, str], array] = {}
_NORMS: dict[tuple, array] = {}
_LENGTHS_KEPT = 64
_CACHE_LOCK = threading.Lock()
# With fewer candidates than a posting list's documents / this, each is looked
# up in the list (skipping whole blocks) rather than the whole list read.
_LOOKUP_RATIO = 16
# Long posting lists kept between searches, as packed arrays (8 bytes a posting):
# lists of at least this many documents, this many postings in all.
_LISTS: dict[tuple[str, str, bytes], tuple[array, array]] = {}
_LIST_KEPT_FROM = 5_000
_LISTS_KEPT_POSTINGS = 4_000_000
# And where the blocks of long lists start, with their last documents, so that a
# lookup goes straight to a document's block instead of reading every block's header.
_BLOCKS: dict[tuple[str, str, bytes], tuple[list[int], list[int]]] = {}
_BLOCKS_KEPT = 10_000
_LENGTH_OF_BYTE = [1] + [byte_to_length(b) for b in range(1, 256)]  # 0 reads as 1, as in BM25FScorer


def _keep(cache: dict, key, value, most: int) -> None:
    """Keep value in a cache of at most that many entries, the oldest going first."""
    with _CACHE_LOCK:
        while len(cache) >= most:
            del cache[next(iter(cache))]
        cache[key] = value


def _ranked(searcher: Searcher, query: Query, narrowing: Query | None, limit: int,
            seen: dict | None = None) -> list[tuple[float, int]]:
    """The top (score, docnum) pairs, best first, as searcher.search(And([query,
    narrowing])) would rank them (the narrowing adds nothing to scores).
    Postings values looked up for some documents go into seen (see _Ranker)."""
    if not isinstance(searcher.weighting, BM25F) or type(searcher.weighting) is not BM25F:
        return _whoosh_ranked(searcher, query, narrowing, limit)
    best: list[tuple[float, int]] = []  # (score, -docnum) of segments with no conditions
    lazy: list[Iterator[tuple[float, int, int, tuple[_Check, ...]]]] = []  # of segments with some
    for sub, offset in searcher.leaf_searchers():
        reader = sub.reader()
        allowed = None if narrowing is None else _docs(narrowing, reader)
        if allowed is not None and not allowed:
            continue
        scores, pending = _Ranker(searcher, sub, seen).scored(query, allowed)
        if pending:
            lazy.append(_best_first(scores, pending, offset))
        else:
            best.extend(heapq.nlargest(limit, ((score, -offset - d) for d, score in scores.items())))
    if not lazy:
        return [(score, -negdoc) for score, negdoc in heapq.nlargest(limit, best)]
    # Best first (ties: lower docnum first, as Whoosh's collector), checking
    # phrases only until enough documents have passed.
    stream = heapq.merge(*lazy, ((-score, -negdoc, 0, ()) for score, negdoc in sorted(best, reverse=True)))
    top: list[tuple[float, int]] = []
    checked = 0
    while len(top) < limit:
        # A few more than are wanted, or as many as the share that passed so
        # far says it takes: each document checked reads a block per word.
        wanted = limit - len(top)
        size = wanted + 10 if not checked else wanted * checked // max(len(top), 1) + 10
        batch = list(itertools.islice(stream, size))
        if not batch:
            break
        _verify((local, checks) for _, _, local, checks in batch)
        checked += len(batch)
        top.extend((-negscore, docnum) for negscore, docnum, local, checks in batch
                   if all(check.passed[local] for check in checks))
    return top[:limit]


def _best_first(scores: dict[int, float], pending: dict[int, tuple[_Check, ...]],
                offset: int) -> Iterator[tuple[float, int, int, tuple[_Check, ...]]]:
    """(-score, docnum, the segment's own docnum, the checks it must pass) of a
    segment's documents, best first, ties in document order; made as they are
    taken, as most of the thousands of candidates of a phrase never are."""
    for d in sorted(sorted(scores), key=scores.__getitem__, reverse=True):
        yield -scores[d], offset + d, d, pending.get(d, ())


_SORTED_COLUMNS: dict[tuple[str, str], tuple[list[bytes], array]] = {}


def _sorted_column(reader, fieldname: str) -> tuple[list[bytes], array]:
    """A segment's documents that have a value in the field's column, as
    (values as indexed terms, sorted; their docnums); kept, as a segment never
    changes (but for deletions, which the caller removes)."""
    key = (reader.segment().segment_id(), fieldname)
    found = _SORTED_COLUMNS.get(key)
    if found is None:
        column = reader.column_reader(fieldname, translate=False)
        if isinstance(column, VarBytesColumn.Reader):
            # The whole column at once rather than a file read per document.
            lengths = column._lengths
            data = column._dbfile.get(column._basepos, sum(lengths))
            values = [data[end - length:end] for end, length in zip(accumulate(lengths), lengths)]
        else:
            values = list(column)
        pairs = sorted((value, docnum) for docnum, value in enumerate(values) if value)
        found = [value for value, _ in pairs], array("I", [docnum for _, docnum in pairs])
        _keep(_SORTED_COLUMNS, key, found, _LENGTHS_KEPT)
    return found


def _whoosh_ranked(searcher: Searcher, query: Query, narrowing: Query | None, limit: int) -> list[tuple[float, int]]:
    """The same ranking by Whoosh's own collector (slow on broad queries)."""
    results = searcher.search(And([query, _Narrowing(narrowing)]) if narrowing else query, limit=limit)
    return [(hit.score, hit.docnum) for hit in results]


class _Narrowing(WrappingQuery):
    """Matches what the filter query matches, scoring 0, from a flat list of
    document numbers (for Whoosh's collector)."""

    def matcher(self, searcher: Searcher, context=None) -> Matcher:
        ids = sorted(_docs(self.child, searcher.reader()))
        return ListMatcher(ids, weights=array("f", bytes(4 * len(ids))))


class _Ranker:
    """Scores a query in one segment of a searcher, as Whoosh's BM25F would."""

    def __init__(self, searcher: Searcher, sub: Searcher, seen: dict | None = None) -> None:
        self.top, self.sub, self.reader = searcher, sub, sub.reader()
        # {(segment, field, term): {docnum: value or None}} of single documents
        # looked up, so that highlighting need not look them up again.
        self.seen = {} if seen is None else seen
        self.segment = self.reader.segment().segment_id()
        self.schema = searcher.schema
        self.deleted = self.reader.deleted_docs_set
        self.k1, self.b = searcher.weighting.K1, searcher.weighting.B
        self.field_b = searcher.weighting._field_B

    # Which docnums offset are global is for the caller: these are the segment's.
    def scored(self, query: Query, allowed: set[int] | None) -> _Scored:
        if isinstance(query, Term):
            return self._term(query.fieldname, query.text, query.boost, allowed), {}
        if isinstance(query, Phrase) and query.slop == 1 and query.fieldname in self.schema \
                and isinstance(self.schema[query.fieldname].format, _ContentFormat):
            return self._phrase(query, allowed)
        if isinstance(query, (And, Or)) and len(query.subqueries) == 1:
            # Whoosh passes a lone sub-query's matcher through, boost and all.
            return self.scored(query.subqueries[0], allowed)
        if type(query) is And and query.subqueries:
            return self._and(query, allowed)
        if type(query) in (Or,) and query.subqueries and not query.scale and not query.minmatch:
            return self._or(query, allowed)
        if type(query) is AndNot:
            scores, pending = self.scored(query.a, allowed)
            return self._exclude(scores, pending, query.b), pending
        if query is NullQuery:
            return {}, {}
        return self._matched(query, allowed), {}

    def _boosted(self, scores: dict[int, float], boost: float) -> dict[int, float]:
        return scores if boost == 1.0 else {d: v * boost for d, v in scores.items()}

    def _and(self, query: And, allowed: set[int] | None) -> _Scored:
        positive = [q for q in query.subqueries if not isinstance(q, Not)]
        negative = [q.query for q in query.subqueries if isinstance(q, Not)]
        if not positive:
            return self._matched(query, allowed), {}
        # Smallest first, so that the others only score its documents.
        positive.sort(key=lambda q: q.estimate_size(self.reader))
        scores, pending = self.scored(positive[0], allowed)
        for sub in positive[1:]:
            if not scores:
                return {}, {}
            more, more_pending = self.scored(sub, set(scores))
            scores = {d: v + more[d] for d, v in scores.items() if d in more}
            for d, checks in more_pending.items():
                if d in scores:
                    pending[d] = pending.get(d, ()) + checks
        pending = {d: checks for d, checks in pending.items() if d in scores}
        for sub in negative:
            scores = self._exclude(scores, pending, sub)
            # Whoosh intersects with an InverseMatcher, whose score is 1.
            scores = {d: v + 1.0 for d, v in scores.items()}
        return self._boosted(scores, query.boost), pending

    def _exclude(self, scores: dict[int, float], pending: dict, negative: Query) -> dict[int, float]:
        if not scores:
            return scores
        excluded, excluded_pending = self.scored(negative, set(scores))
        _verify(excluded_pending.items())
        kept = {d: v for d, v in scores.items()
                if d not in excluded or not all(check(d) for check in excluded_pending.get(d, ()))}
        for d in list(pending):
            if d not in kept:
                del pending[d]
        return kept

    def _or(self, query: Or, allowed: set[int] | None) -> _Scored:
        parts = [part for part in (self.scored(q, allowed) for q in query.subqueries) if part[0]]
        if not parts:
            return {}, {}
        parts.sort(key=lambda part: -len(part[0]))
        scores, pending = dict(parts[0][0]), dict(parts[0][1])
        for more, more_pending in parts[1:]:
            # Documents of both with a condition on either are decided now.
            _verify((d, pending.get(d, ()) + more_pending.get(d, ())) for d in more
                    if d in scores and (d in pending or d in more_pending))
            for d, v in more.items():
                if d not in scores:
                    scores[d] = v
                    if d in more_pending:
                        pending[d] = more_pending[d]
                elif d not in pending and d not in more_pending:
                    scores[d] += v
                else:
                    # A match of either part, scored by the parts that match.
                    old = scores[d] if all(check(d) for check in pending.pop(d, ())) else None
                    new = v if all(check(d) for check in more_pending.get(d, ())) else None
                    if old is None and new is None:
                        del scores[d]
                    else:
                        scores[d] = (old or 0.0) + (new or 0.0)
        return self._boosted(scores, query.boost), pending

    def _matched(self, query: Query, allowed: set[int] | None) -> dict[int, float]:
        """Whoosh's own matcher, run to the end."""
        m = query.matcher(self.sub, self.sub.context())
        scores = {}
        while m.is_active():
            d = m.id()
            if allowed is None or d in allowed:
                scores[d] = m.score()
            m.next()
        return scores

    # -- terms ---------------------------------------------------------------

    def _bytes(self, fieldname: str, text) -> bytes | None:
        if fieldname not in self.schema:
            return None
        try:
            btext = self.schema[fieldname].to_bytes(text)
        except ValueError:
            return None
        return btext if (fieldname, btext) in self.reader else None

    def _term(self, fieldname: str, text, boost: float, allowed: set[int] | None) -> dict[int, float]:
        btext = self._bytes(fieldname, text)
        if btext is None:
            return {}
        among = self._among(fieldname, btext, allowed)
        ids, weights, _ = self._postings(fieldname, btext, allowed, values=False, among=among)
        return self._boosted(dict(zip(ids, self._scores(fieldname, btext, ids, weights))), boost)

    def _scores(self, fieldname: str, btext: bytes, ids: list[int], weights: list[float],
                lengths_of: str | None = None) -> list[float]:
        """BM25F of the term in these documents; lengths_of scores a term of the
        pair field as one of the field it is made from."""
        lengths_of = lengths_of or fieldname
        if not self.schema[lengths_of].scorable:
            return list(weights)  # WeightScorer
        # bm25() of whoosh.scoring, term for term, so that scores are the same.
        idf, k1 = self.top.idf(fieldname, btext), self.k1
        norms = self._norms(lengths_of)
        return [idf * ((tf * (k1 + 1)) / (tf + norms[d])) for d, tf in zip(ids, weights)]

    def _norms(self, fieldname: str) -> array:
        """Every document's length normalisation, k1 * ((1 - b) + b * length /
        average length), as bm25() computes it; kept while the average (over
        the whole index) stays the same."""
        avgfl = self.top.avg_field_length(fieldname) or 1
        b, k1 = self.field_b.get(fieldname, self.b), self.k1
        key = (self.segment, fieldname, avgfl, b, k1)
        norms = _NORMS.get(key)
        if norms is None:
            norms = array("d", [k1 * ((1 - b) + b * length / avgfl) for length in self._lengths(fieldname)])
            _keep(_NORMS, key, norms, _LENGTHS_KEPT)
        return norms

    def _lengths(self, fieldname: str) -> array:
        """Every document's length of the field (as BM25FScorer reads it), read
        once per segment: a segment's lengths never change."""
        key = (self.reader.segment().segment_id(), fieldname)
        lengths = _LENGTHS.get(key)
        if lengths is None:
            count = self.reader.doc_count_all()
            column = self.reader._perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
            raw = b"" if column is None else column._dbfile.get(column._basepos, min(column._count, count))
            lengths = array("I", [_LENGTH_OF_BYTE[byte] for byte in raw] + [1] * (count - len(raw)))
            _keep(_LENGTHS, key, lengths, _LENGTHS_KEPT)
        return lengths

    def _among(self, fieldname: str, btext: bytes, candidates) -> list[int] | None:
        """The candidates, sorted, when there are few enough to look them up
        one by one in the term's posting list."""
        if candidates is None or len(candidates) * _LOOKUP_RATIO >= self.reader.doc_frequency(fieldname, btext):
            return None
        return sorted(candidates)

    def _postings(self, fieldname: str, btext: bytes, allowed: set[int] | None, values: bool,
                  among: list[int] | None = None) -> Postings:
        """A term's documents, weights and (if asked) values, deleted ones left
        out; only those in allowed, and in among (sorted docnums) if given,
        which are then looked up instead of reading the whole list."""
        if (fieldname, btext) not in self.reader:
            return [], [], []
        fmt = self.schema[fieldname].format
        m = self.reader._terms.matcher(fieldname, btext, fmt)
        if among is not None and isinstance(m, W3LeafMatcher):
            ids, weights, vals = _lookup(m, among, values, self._blocks(m, fieldname, btext))
        elif isinstance(m, W3LeafMatcher) and not m._byteids:
            ids, weights, vals = read_all(m, True) if values else self._whole_list(m, fieldname, btext)
        else:
            ids, weights, vals = [], [], []
            wanted = None if among is None else set(among)
            while m.is_active():
                if wanted is None or m.id() in wanted:
                    ids.append(m.id())
                    weights.append(m.weight())
                    if values:
                        vals.append(m.value())
                m.next()
        deleted = self.deleted
        if allowed is None and not deleted:
            return ids, weights, vals
        keep = [i for i, d in enumerate(ids) if (allowed is None or d in allowed) and d not in deleted]
        return [ids[i] for i in keep], [weights[i] for i in keep], [vals[i] for i in keep] if values else []

    def _whole_list(self, m: W3LeafMatcher, fieldname: str, btext: bytes) -> Postings:
        """A term's documents and weights; a long list is kept for the next search
        (a segment's postings never change), as decoding one of a word in most
        documents costs more than the rest of a search."""
        key = (self.segment, fieldname, btext)
        kept = _LISTS.get(key)
        if kept is not None:
            return kept[0], kept[1], []
        ids, weights, _ = read_all(m, False)
        if len(ids) >= _LIST_KEPT_FROM:
            with _CACHE_LOCK:
                while _LISTS and sum(len(kept[0]) for kept in _LISTS.values()) + len(ids) > _LISTS_KEPT_POSTINGS:
                    del _LISTS[next(iter(_LISTS))]
                _LISTS[key] = (array("I", ids), array("f", weights))
        return ids, weights, []

    def values_of(self, fieldname: str, btext: bytes, docnums: list[int]) -> dict[int, bytes | None]:
        """The term's posting values in these documents (sorted docnums),
        None where it is not; remembered in self.seen."""
        seen = self.seen.setdefault((self.segment, fieldname, btext), {})
        wanted = [d for d in docnums if d not in seen]
        if wanted:
            ids, _, values = self._postings(fieldname, btext, None, values=True, among=wanted)
            seen.update(dict.fromkeys(wanted))
            seen.update(zip(ids, values))
        return {d: seen[d] for d in docnums}

    def _blocks(self, m: W3LeafMatcher, fieldname: str, btext: bytes) -> tuple[list[int], list[int]] | None:
        """The last document and the offset of each block of a long list (a
        segment's postings never change); None for a short one."""
        if self.reader.doc_frequency(fieldname, btext) < _LIST_KEPT_FROM:
            return None
        key = (self.segment, fieldname, btext)
        blocks = _BLOCKS.get(key)
        if blocks is None:
            blocks, position = ([], []), m._baseoffset
            while True:
                blocks[0].append(m._maxid)
                blocks[1].append(position)
                if m._lastblock:
                    break
                position = m._nextoffset
                m._goto(position)
            m.reset()
            _keep(_BLOCKS, key, blocks, _BLOCKS_KEPT)
        return blocks

    # -- phrases -------------------------------------------------------------

    def _phrase(self, query: Phrase, allowed: set[int] | None) -> _Scored:
        """Documents with the phrase's words in a row. Pairs of common words
        are looked up in the pair field, other words in the field itself;
        their documents are candidates, ranked by the BM25F of each pair
        (how often the pair is in a document, and how rare it is) and of each
        other word. Candidates of three or more words, or of a word outside
        a pair, are checked for the words in a row only when needed."""
        fieldname, words = query.fieldname, list(query.words)
        btexts = [self._bytes(fieldname, word) for word in words]
        if not words or None in btexts:
            return {}, {}
        if len(words) == 1:
            return self._term(fieldname, words[0], query.boost, allowed), {}
        common = self.schema[_PAIRS].format.words if fieldname == "content" and _PAIRS in self.schema else ()
        units: list[tuple[str, bytes]] = []
        covered: set[int] = set()
        for i in range(len(words) - 1):
            if words[i] in common and words[i + 1] in common:
                pair = f"{words[i]} {words[i + 1]}".encode("utf-8")
                if (_PAIRS, pair) not in self.reader:
                    return {}, {}
                units.append((_PAIRS, pair))
                covered.update((i, i + 1))
        units.extend((fieldname, btext) for i, btext in enumerate(btexts) if i not in covered)
        listed: dict[tuple[str, bytes], dict[int, float]] = {}
        among = None
        for unit in sorted(set(units), key=lambda unit: self.reader.doc_frequency(*unit)):
            ids, weights, _ = self._postings(*unit, allowed, values=False, among=self._among(*unit, among))
            listed[unit] = dict(zip(ids, weights))
            among = ids if among is None else [d for d in among if d in listed[unit]]
            if not among:
                return {}, {}
        scores = dict.fromkeys(among, 0.0)
        for unit in units:
            weights = listed[unit]
            for d, score in zip(among, self._scores(*unit, among, [weights[d] for d in among], lengths_of=fieldname)):
                scores[d] += score
        scores = self._boosted(scores, query.boost)
        if len(words) == 2 and len(covered) == 2:
            return scores, {}  # the pair is the phrase
        check = _PhraseCheck(self, fieldname, btexts)
        return scores, dict.fromkeys(scores, (check,))


def _lookup(m: W3LeafMatcher, among: list[int], values: bool,
            blocks: tuple[list[int], list[int]] | None) -> Postings:
    """The postings of these documents (sorted) in a list, block by block, or
    straight to each one's block given the list's blocks (see _Ranker._blocks)."""
    ids, weights, vals = [], [], []
    block = 0
    for d in among:
        if blocks is not None:
            i = bisect_left(blocks[0], d)
            if i == len(blocks[0]):
                break
            if i != block:
                m._goto(blocks[1][i])
                block = i
        else:
            while m._maxid < d:
                if m._lastblock:
                    return ids, weights, vals
                m._goto(m._nextoffset)
        if m._ids is None:
            m._read_ids()
        i = bisect_left(m._ids, d)
        if i < len(m._ids) and m._ids[i] == d:
            if m._weights is None:
                m._read_weights()
            ids.append(d)
            weights.append(m._weights[i])
            if values:
                if m._values is None:
                    m._read_values()
                vals.append(m._values[i])
    return ids, weights, vals


class _PhraseCheck(_Check):
    """Whether documents have the words at consecutive positions, from the
    positions of the words in those documents alone."""

    def __init__(self, ranker: _Ranker, fieldname: str, words: list[bytes]) -> None:
        super().__init__()
        self.ranker, self.fieldname, self.words = ranker, fieldname, words

    def verify(self, docnums: Iterable[int]) -> None:
        docnums = sorted(set(docnums))
        positions = {}
        for word in set(self.words):
            positions[word] = self.ranker.values_of(self.fieldname, word, docnums)
        fmt = self.ranker.schema[self.fieldname].format
        for d in docnums:
            starts: set[int] | None = None
            for offset, word in enumerate(self.words):
                value = positions[word].get(d)
                here = set() if value is None else {p - offset for p in fmt.decode_positions(value)}
                starts = here if starts is None else starts & here
                if not starts:
                    break
            self.passed[d] = bool(starts)


def _record_matched_terms(results: Results, query: Query, seen: dict | None = None) -> None:
    """Which query terms occur in each shown hit, and where, which is what
    pinpoint highlighting needs: looked up for these few documents only, with
    the character offsets put where the highlighter would read them."""
    searcher = results.searcher
    reader = searcher.reader()
    fmt = searcher.schema["content"].format
    leaves = searcher.leaf_searchers()
    offsets = [offset for _, offset in leaves]
    by_leaf: dict[int, list[int]] = defaultdict(list)
    for docnum in sorted(docnum for _, docnum in results.top_n):
        by_leaf[bisect_right(offsets, docnum) - 1].append(docnum)
    rankers = {leaf: _Ranker(searcher, leaves[leaf][0], seen) for leaf in by_leaf}
    results.termdocs, results.docterms = {}, defaultdict(list)
    chars: dict[int, dict[str, list]] = {docnum: {} for docnums in by_leaf.values() for docnum in docnums}
    for term in query.existing_terms(reader, expand=True):
        if term[0] != "content":
            continue
        word, found = term[1].decode("utf-8"), []
        for leaf, docnums in by_leaf.items():
            offset = offsets[leaf]
            values = rankers[leaf].values_of("content", term[1], [d - offset for d in docnums])
            for local, value in values.items():
                if value is not None:
                    found.append(local + offset)
                    chars[local + offset][word] = fmt.decode_characters(value)
        results.termdocs[term] = array("I", sorted(found))
        for docnum in found:
            results.docterms[docnum].append(term)
    results._char_cache["content"] = chars


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
