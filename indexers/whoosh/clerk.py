"""Searches the way clerks type them.

A plain word of a query matches a word of the text, the patient's name or the
MRN (Whoosh's multifield parsing) and, added here, the document's type: its
own words and the synonyms of the index options ("radiology" finds radiology
reports, "consult" consultations, "op note" operative reports: a name or
synonym of several words names the type when all its words are in the
query). A patient's
name also matches names one edit away, as OCR misreads them (MECLAIN for
MCCLAIN), ranked below the exact name; so does a long word of the text, as OCR
misreads words of damaged paper (PNEUMONLA for PNEUMONIA). Words given a field (name:doe) keep
their meaning. Everything stays a plain Whoosh query
(Or of Terms), so the ranker and Whoosh score it alike.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping

from indexers.whoosh.caches import SegmentCaches
from indexers.whoosh.query import DEFAULT_FIELDS
from indexers.whoosh.schema import ContentAnalyzer

with warnings.catch_warnings():
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from whoosh.query import AndNot, Not, Or, Query, Term
    from whoosh.searching import Searcher

NAME = "patient_name"
# A type named by a word of the query scores this many times the type's idf
# (a word of the text scores at most about 2.2 times its own).
TYPE_WEIGHT = 2.0
# A name one edit away counts this share of the exact name (at the exact
# name's idf, so that a rare misreading does not outrank the name itself).
VARIANT_SHARE = 0.5
# Shorter names have too many neighbours one edit away (LEE, LEO, LEA).
VARIANT_MIN_LETTERS = 4


class TypeWords:
    """Which document types the words of a query name: a type's own name and
    each of its synonyms name it when all their words are in the query (so
    "op note" names operative reports, but "note" alone names nothing)."""

    def __init__(self, synonyms: Mapping[str, Iterable[str]]) -> None:
        self._synonyms = {doc_type: tuple(words) for doc_type, words in synonyms.items()}
        self._analyzer = ContentAnalyzer()
        self._last: tuple[tuple[str, ...], dict[str, list[tuple[str, frozenset[str]]]]] = ((), {})

    def types_for(self, stem: str, stems: set[str], types: tuple[str, ...]) -> list[str]:
        """The types (of those in the index) a stemmed word names, among the
        stemmed words of the whole query."""
        known, table = self._last
        if known != types:
            table = self._table(types)
            self._last = (types, table)
        return list(dict.fromkeys(doc_type for doc_type, words in table.get(stem, ()) if words <= stems))

    def _table(self, types: tuple[str, ...]) -> dict[str, list[tuple[str, frozenset[str]]]]:
        """{stem: [(type, the stems of a name or synonym of the type with it)]}."""
        table: dict[str, list[tuple[str, frozenset[str]]]] = defaultdict(list)
        for doc_type in types:
            for phrase in (doc_type.replace("_", " "), *self._synonyms.get(doc_type, ())):
                words = frozenset(self._analyzer.index_tokens(phrase))
                for stem in words:
                    table[stem].append((doc_type, words))
        return dict(table)


def widen(
    query: Query,
    searcher: Searcher,
    type_words: TypeWords,
    caches: SegmentCaches,
    text_min_letters: int = 0,
    max_expansions: int = 300,
) -> Query:
    """The query with each plain word also matching the types it names, the names
    one edit away and, for a word of ``text_min_letters`` letters or more (0: none),
    at most ``max_expansions`` words of the text one edit away. Words given a field
    (name:, text:) keep to it: the web's name box narrows to that name."""
    types = _doc_types(searcher, caches)
    stems = {term.text for word in _all_plain_words(query) if (term := _term_of(word, "content"))}

    def visit(q: Query) -> Query:
        words = _plain_words(q)
        if words:
            extra = [
                term
                for word in words
                for term in (
                    *_type_terms(word, stems, searcher, type_words, types),
                    *_name_variants(word, searcher, caches),
                    *_text_variants(word, searcher, text_min_letters, max_expansions),
                )
            ]
            return Or([*q.subqueries, *extra], boost=q.boost) if extra else q
        return q if q.is_leaf() else q.apply(visit)

    return visit(query)


def _doc_types(searcher: Searcher, caches: SegmentCaches) -> tuple[str, ...]:
    """The document types in the index (as its segments say, deleted documents and all)."""
    key = tuple(sub.reader().segment().segment_id() for sub, _ in searcher.leaf_searchers())
    types = caches.doc_types.get(key)
    if types is None:
        types = tuple(sorted(text.decode("utf-8") for text in searcher.reader().lexicon("doc_type")))
        caches.keep(caches.doc_types, key, types)
    return types


def _all_plain_words(q: Query) -> list[list[Query]]:
    """The plain words of the query that must or may match (not those after NOT)."""
    if isinstance(q, Not):
        return []
    if isinstance(q, AndNot):
        return _all_plain_words(q.a)
    words = _plain_words(q)
    if words or q.is_leaf():
        return words
    return [word for child in q.children() for word in _all_plain_words(child)]


def _plain_words(q: Query) -> list[list[Query]]:
    """The words q is made of when it is what the multifield parser makes of
    plain words: an Or of a query in each default field the word analyses to
    something in (always the MRN's, last), or several such flattened by OR."""
    if type(q) is not Or:
        return []
    words: list[list[Query]] = []
    run: list[Query] = []
    for sub in q.subqueries:
        run.append(sub)
        if type(sub) is Term and sub.fieldname == "mrn":
            fields = [part.field() for part in run]
            if len(run) < 2 or fields != [f for f in DEFAULT_FIELDS if f in fields]:
                return []
            words.append(run)
            run = []
    return words if not run else []


def _term_of(word: list[Query], fieldname: str) -> Term | None:
    return next((part for part in word if type(part) is Term and part.fieldname == fieldname), None)


def _type_terms(
    word: list[Query], stems: set[str], searcher: Searcher, type_words: TypeWords, types: tuple[str, ...]
) -> list[Term]:
    stem = _term_of(word, "content")
    if stem is None:
        return []  # a stop word, or more than one word of the text (follow-up)
    return [
        Term("doc_type", doc_type, boost=TYPE_WEIGHT * searcher.idf("doc_type", doc_type))
        for doc_type in type_words.types_for(stem.text, stems, types)
    ]


def _name_variants(word: list[Query], searcher: Searcher, caches: SegmentCaches) -> list[Term]:
    exact = _term_of(word, NAME)
    if exact is None or len(exact.text) < VARIANT_MIN_LETTERS or not exact.text.isalpha():
        return []
    variants: set[str] = set()
    for sub, _ in searcher.leaf_searchers():
        variants.update(_one_edit(exact.text, _neighbours(sub.reader(), caches)))
    if not variants:
        return []
    base = exact.boost * VARIANT_SHARE
    exact_idf = searcher.idf(NAME, exact.text) if searcher.doc_frequency(NAME, exact.text) else None
    return [
        Term(NAME, variant, boost=base if exact_idf is None else base * exact_idf / searcher.idf(NAME, variant))
        for variant in sorted(variants)
    ]


# What OCR may read a letter of the text as; the text is indexed in lower case.
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def _text_variants(word: list[Query], searcher: Searcher, min_letters: int, limit: int) -> list[Term]:
    """Words of the text one edit away from a long plain word, scored as a name's variants.

    The text's lexicon is far larger than the names' (every OCR slip is a word of it),
    so no table of it is kept: the word's few hundred one-edit forms are looked up."""
    exact = _term_of(word, "content")
    if not min_letters or exact is None or len(exact.text) < min_letters or not exact.text.isalpha():
        return []
    reader = searcher.reader()
    found = [form for form in _edits(exact.text) if ("content", form) in reader]
    if not found:
        return []
    found = sorted(found, key=lambda form: -searcher.doc_frequency("content", form))[:limit]
    base = exact.boost * VARIANT_SHARE
    exact_idf = searcher.idf("content", exact.text) if searcher.doc_frequency("content", exact.text) else None
    return [
        Term("content", form, boost=base if exact_idf is None else base * exact_idf / searcher.idf("content", form))
        for form in sorted(found)
    ]


def _edits(word: str) -> set[str]:
    """Every string one substitution, insertion or deletion away from ``word``."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deleted = {a + b[1:] for a, b in splits if b}
    substituted = {a + c + b[1:] for a, b in splits if b for c in _ALPHABET}
    inserted = {a + c + b for a, b in splits for c in _ALPHABET}
    return (deleted | substituted | inserted) - {word}


def warm_names(reader, caches: SegmentCaches) -> None:
    """Read a segment's name words ahead of the first search that needs them."""
    _neighbours(reader, caches)


def _neighbours(reader, caches: SegmentCaches) -> dict[str, list[str]]:
    """The segment's name words by each form with one letter left out (and
    itself): two words one substitution, insertion or deletion apart share one."""
    key = (reader.segment().segment_id(), NAME)
    table = caches.neighbours.get(key)
    if table is None:
        table = defaultdict(list)
        for btext in reader.lexicon(NAME):
            word = btext.decode("utf-8")
            for form in _forms(word):
                table[form].append(word)
        table = dict(table)
        caches.keep(caches.neighbours, key, table)
    return table


def _forms(word: str) -> set[str]:
    return {word, *(word[:i] + word[i + 1 :] for i in range(len(word)))}


def _one_edit(word: str, table: dict[str, list[str]]) -> set[str]:
    found = {other for form in _forms(word) for other in table.get(form, ())}
    return {other for other in found if other != word and _within_one_edit(word, other)}


def _within_one_edit(a: str, b: str) -> bool:
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    if len(long_) - len(short) != 1:
        return False
    i = next((i for i, (x, y) in enumerate(zip(short, long_, strict=False)) if x != y), len(short))
    return short[i:] == long_[i + 1 :]
