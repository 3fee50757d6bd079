"""The index's fields, how their text is analysed, and how a record maps onto them.

Whoosh pickles the schema (analyzers and formats included) into the index, so
renaming a class here makes older indexes unreadable: facade.py keeps the old
names for them.
"""

from __future__ import annotations

import itertools
import warnings
from array import array
from collections import defaultdict
from collections.abc import Iterable

from indexers.base import IndexRecord

with warnings.catch_warnings():
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from whoosh.analysis import (
        STOP_WORDS,
        Analyzer,
        LowercaseFilter,
        RegexTokenizer,
        StemmingAnalyzer,
    )
    from whoosh.analysis.tokenizers import default_pattern
    from whoosh.fields import ID, STORED, TEXT, Schema
    from whoosh.formats import Format
    from whoosh.lang.porter import stem
    from whoosh.util.text import rcompile

# What the schema looks like; an index written with another version is not
# read (its postings are encoded differently) but rebuilt by `medarchive reindex`.
SCHEMA_VERSION = 3

PAIRS = "content_pairs"
KEYWORD_FIELDS = ("mrn", "dob", "doc_type", "doc_date", "status", "sha256", "source_sha256")
STORED_ONLY = ("path", "source_file", "review_reason", "pages")

# A word is common, and its pairs indexed, when at least this share of the
# sample documents hold it (and at least two do); at most this many words.
_COMMON_SHARE = 0.1
_COMMON_MAX = 1000
COMMON_SAMPLE = 2000

_WORD = rcompile(default_pattern)
_STEM_CACHE_MAX = 200_000

assert array("I").itemsize == 4


def _name_analyzer() -> Analyzer:
    # No stop list (a patient may be called May or Will) and no stemming, so
    # "doe", "Jane Doe" and "DOE, JANE" all reduce to the same lowercase words.
    return RegexTokenizer() | LowercaseFilter()


class ContentAnalyzer(Analyzer):
    """Whoosh's StemmingAnalyzer (its tokens for queries and highlighting),
    plus the same analysis as plain tuples for indexing: building a Token per
    word and filtering it through a chain of generators was most of the cost
    of indexing a document. It keeps the stems it has computed, and the text
    it analysed last (the content and pair fields analyse the same text); both
    stay out of the pickled schema."""

    def __init__(self) -> None:
        self.chain = StemmingAnalyzer()
        self._forget()

    def _forget(self) -> None:
        self._stems: dict[str, str] = {}
        self._last: tuple[str | None, tuple[dict[str, list[int]], list[str]] | None] = (None, None)

    def __getstate__(self) -> dict:
        return {"chain": self.chain}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._forget()

    def __call__(self, value, **kwargs):
        return self.chain(value, **kwargs)

    def __eq__(self, other) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def index_tokens(self, text: str) -> dict[str, list[int]]:
        """{stemmed word: [position, startchar, endchar, ...]} as the chain gives
        them in index mode: words of the tokenizer's pattern, lowercased, stop
        words and one-letter words dropped, positions renumbered without them."""
        return self.analysed(text)[0]

    def analysed(self, text: str) -> tuple[dict[str, list[int]], list[str]]:
        """index_tokens(text), and the stemmed words in order (consecutive positions)."""
        last_text, last = self._last
        if last_text is text and last is not None:
            return last
        found: dict[str, list[int]] = {}
        sequence: list[str] = []
        stems, stops = self._stems, STOP_WORDS
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
        self._last = (text, (found, sequence))
        return found, sequence


class ContentFormat(Format):
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
        if isinstance(analyzer, ContentAnalyzer) and set(kwargs) <= {"mode"}:
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
        return list(zip(ints[0::3], ints[1::3], ints[2::3], strict=True))


class PairFormat(Format):
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
        sequence = analyzer.analysed(value)[1]
        for first, second in itertools.pairwise(sequence):
            if first in words and second in words:
                counts[f"{first} {second}"] += 1
        for pair, count in counts.items():
            yield pair, count, float(count), b""

    def decode_frequency(self, valuestring: bytes) -> int:
        return 1

    def decode_weight(self, valuestring: bytes) -> float:
        return self.field_boost


def common_words(records: Iterable[IndexRecord], analyzer: ContentAnalyzer) -> frozenset[str]:
    """The words in at least _COMMON_SHARE of these documents, most common first."""
    df: dict[str, int] = defaultdict(int)
    count = 0
    for record in records:
        count += 1
        if isinstance(record.content, str):  # (else indexing it fails, as it should)
            for word in analyzer.index_tokens(record.content):
                df[word] += 1
    least = max(2, _COMMON_SHARE * count)
    ranked = sorted((word for word, n in df.items() if n >= least), key=lambda word: -df[word])
    return frozenset(ranked[:_COMMON_MAX])


def _pairs_field(words: Iterable[str], analyzer: ContentAnalyzer) -> TEXT:
    field = TEXT(analyzer=analyzer)
    field.format = PairFormat(words)
    field.scorable = False
    return field


def _content_field(analyzer: ContentAnalyzer) -> TEXT:
    field = TEXT(stored=True, analyzer=analyzer)
    # Character offsets (which include positions, so phrases work) let hits
    # be highlighted without re-analysing their text.
    field.format = ContentFormat()
    return field


def build_schema(common: Iterable[str] = (), analyzer: ContentAnalyzer | None = None) -> Schema:
    """The index's fields; common words (of the content, see PairFormat) are
    fixed when the index is created, from the first documents given it. The
    content and pair fields share one analyzer, so a text is analysed once."""
    analyzer = analyzer or ContentAnalyzer()
    return Schema(
        doc_id=ID(unique=True, stored=True),
        patient_name=TEXT(stored=True, analyzer=_name_analyzer(), field_boost=2.0),
        content=_content_field(analyzer),
        **{PAIRS: _pairs_field(common, analyzer)},
        **{name: ID(stored=True, sortable=name == "doc_date") for name in KEYWORD_FIELDS},
        **dict.fromkeys(STORED_ONLY, STORED),
    )


def is_current(schema: Schema) -> bool:
    """Whether an index's schema is the one this version writes and reads."""
    content = schema["content"] if "content" in schema else None  # noqa: SIM401  (a Schema has no get())
    return (
        content is not None
        and isinstance(content.format, ContentFormat)
        and PAIRS in schema
        and isinstance(schema[PAIRS].format, PairFormat)
        and getattr(content.format, "version", None) == SCHEMA_VERSION
        and sorted(schema.names()) == sorted(build_schema().names())
    )


def fields_of(record: IndexRecord) -> dict[str, object]:
    """The values add_document() takes for a record."""
    values = {
        "doc_id": record.doc_id,
        "patient_name": record.patient_name,
        "content": record.content,
        PAIRS: record.content,
        **{name: getattr(record, name) for name in KEYWORD_FIELDS + STORED_ONLY},
    }
    # Whoosh cannot index None; an absent field reads back as None anyway.
    return {name: value for name, value in values.items() if value is not None}


def record_of(fields: dict) -> IndexRecord:
    """A record from a document's stored fields."""
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
