"""A record's words as PostgreSQL tsvectors, and tsqueries over them, built here in Python.

The words are analysed by the same analyzer as the Whoosh index (indexers/whoosh/schema.py:
Whoosh's tokenizer, lowercase, its stop words, Porter stems), so both engines agree on what
a word is, and PostgreSQL needs no text search configuration of ours. Everything a plain word
may match lives in one vector, told apart by a prefix no word of the text can have:

- ``stem``          a word of the text (weight D; the first words, the document's header, C);
- ``n:word``        a word of the patient's name (A);
- ``m:mrn``         the MRN, as it is (A);
- ``t:doc_type``    the document's type (B);
- ``p:stem stem``   two common words of the text in a row, without positions: a phrase of
  common words finds its documents through its pairs in the GIN index alone, without reading
  the vector of each of the many documents that hold the words apart. The common words are
  the archive's (common_words() of the Whoosh index, kept in the database with the index).

``terms`` holds all of it (matching); ``head`` holds all but the body and the pairs: small
enough to stay in the table's row, it ranks the candidates of a broad search cheaply.

Lexemes are quoted here (the tsvector and tsquery input syntax), and the resulting text is
always passed as a query parameter, never into SQL.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

from indexers.base import IndexRecord
from indexers.whoosh.schema import ContentAnalyzer

NAME, MRN, TYPE, PAIR = "n:", "m:", "t:", "p:"
# The header: these first words of the text weigh more, as a title would.
HEADER_WORDS = 24
# PostgreSQL's limits: positions 1..16383, at most 256 positions per lexeme, a lexeme < 2 kB.
_MAX_POSITION = 16383
_MAX_POSITIONS = 256
_MAX_LEXEME_BYTES = 2000
_NAME_WORD = re.compile(r"\w+(\.?\w+)*")


def quote(lexeme: str) -> str:
    """A lexeme as tsvector/tsquery input: quoted, with quotes and backslashes escaped."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def name_words(name: str | None) -> list[str]:
    """The name's words as the name field analyses them (lowercase, no stems, no stop words)."""
    return [m.group().lower() for m in _NAME_WORD.finditer(name or "")]


def _fits(lexeme: str) -> bool:
    return len(lexeme) * 4 < _MAX_LEXEME_BYTES or len(lexeme.encode("utf-8")) < _MAX_LEXEME_BYTES


class Vectors:
    """Builds a record's tsvectors (keeps the analyzer's stems between records)."""

    def __init__(self, common: frozenset[str] = frozenset(), analyzer: ContentAnalyzer | None = None) -> None:
        self.common = common
        self.analyzer = analyzer or ContentAnalyzer()

    def of(self, record: IndexRecord) -> tuple[str, str, list[str]]:
        """(head, terms) as tsvector input text, and the record's words for the lexicon."""
        found, sequence = self.analyzer.analysed(record.content or "")
        fields = [(NAME + word, "A") for word in dict.fromkeys(name_words(record.patient_name))]
        if record.mrn:
            fields.append((MRN + record.mrn, "A"))
        fields.append((TYPE + record.doc_type, "B"))
        labels = [f"{quote(lexeme)}:1{weight}" for lexeme, weight in fields if _fits(lexeme)]
        header: list[str] = []
        body: list[str] = []
        for stem, occurrences in found.items():
            # A word of the text is made of word characters and dots: nothing to escape.
            if not _fits(stem):
                continue
            # Past PostgreSQL's last position a word keeps one (the last): a long document's
            # vector stays bounded, and phrases are found by their pairs there.
            positions = [p for p in occurrences[0::3][:_MAX_POSITIONS] if p < _MAX_POSITION - 1] or [_MAX_POSITION - 1]
            if positions[0] >= HEADER_WORDS:
                marked = ",".join(str(p + 1) for p in positions)
            else:
                marked = ",".join(f"{p + 1}{'C' if p < HEADER_WORDS else ''}" for p in positions)
            body.append(f"'{stem}':{marked}")
            if positions[0] < HEADER_WORDS:
                header.append(f"'{stem}':{positions[0] + 1}C")
        common = self.common
        pairs = [
            f"'{PAIR}{a} {b}'"
            for a, b in dict.fromkeys(itertools.pairwise(sequence))
            if a in common and b in common and _fits(a + b)
        ]
        words = [*found, *(lexeme for lexeme, _ in fields if lexeme.startswith(NAME))]
        head, terms = labels + header, labels + body + pairs
        return " ".join(head), " ".join(terms), words


# -- tsqueries -------------------------------------------------------------------------


def lexeme(text: str) -> str:
    return quote(text)


def prefix(text: str) -> str:
    return quote(text) + ":*"


def all_of(parts: Iterable[str | None]) -> str | None:
    return _joined(" & ", parts)


def any_of(parts: Iterable[str | None]) -> str | None:
    return _joined(" | ", parts)


def phrase(stems: list[str], common: frozenset[str]) -> str:
    """Words in a row, as one tsquery (see phrase_parts)."""
    found, in_order = phrase_parts(stems, common)
    return found if in_order is None else f"{found} & {in_order}"


def phrase_parts(stems: list[str], common: frozenset[str]) -> tuple[str, str | None]:
    """Words in a row as (what finds the documents: the pairs of common words among them and
    the other words, all in the GIN index; the words in order, unless the phrase is one pair).
    The second needs positions, so each candidate's whole vector is read to check it."""
    if len(stems) == 1:
        return quote(stems[0]), None
    units: list[str] = []
    covered: set[int] = set()
    for i, (a, b) in enumerate(itertools.pairwise(stems)):
        if a in common and b in common:
            units.append(quote(f"{PAIR}{a} {b}"))
            covered.update((i, i + 1))
    units.extend(quote(stem) for i, stem in enumerate(stems) if i not in covered)
    found = all_of(units) or ""
    if len(stems) == 2 and len(covered) == 2:
        return found, None
    return found, "(" + " <-> ".join(quote(stem) for stem in stems) + ")"


def negated(part: str) -> str:
    return f"!({part})"


def _joined(operator: str, parts: Iterable[str | None]) -> str | None:
    kept = [p for p in parts if p]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else "(" + operator.join(f"({p})" for p in kept) + ")"
