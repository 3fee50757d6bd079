"""The query tree (indexers/query_tree.py) as a WHERE clause over the documents table.

Words become one tsquery over the ``terms`` vector wherever the tree allows (see
vectors.py), so most searches are one GIN scan; fields kept in columns (status, type,
dates...) become column conditions. Values are parameters (%s), never SQL text. What must be
looked up in the database first (the types in the index, names one edit away, the words a
wildcard or a range expands to) comes through a Lookups object, so compiling stays pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from indexers.base import IndexOptions, SearchTooBroad
from indexers.postgres import vectors as v
from indexers.query_tree import (
    And,
    Everything,
    Leaf,
    Node,
    Not,
    Or,
    Phrase,
    Range,
    Wildcard,
    Word,
    leaves,
    plain_words,
)
from indexers.whoosh.clerk import VARIANT_MIN_LETTERS, TypeWords
from indexers.whoosh.schema import ContentAnalyzer

# Fields held in columns of the documents table (doc_type is also a lexeme, for plain words).
COLUMNS = ("doc_type", "status", "doc_date", "dob", "doc_id", "sha256", "source_sha256", "site")


@dataclass
class Lookups:
    """What compiling needs from the database."""

    doc_types: Callable[[], tuple[str, ...]]
    # (LIKE pattern, at most) -> the lexicon's words matching it, at most that many + 1
    words_like: Callable[[str, int], list[str]]
    # (label, low, high, at most) -> the lexicon's words with the label (NAME or none) in the range
    words_between: Callable[[str, str | None, str | None, int], list[str]]
    # a name word -> the names' words one edit from it
    name_variants: Callable[[str], list[str]]
    # how many words the lexicon has, up to at most + 1
    lexicon_size: Callable[[int], int]
    # the archive's common words (whose pairs are indexed)
    common_words: Callable[[], frozenset[str]]


@dataclass
class Compiled:
    where: str
    params: list[object]
    # The positive words as a tsquery (for ranking); the clerk's words as tsquery parts,
    # for highlighting through PostgreSQL's own analysis.
    rank: str | None
    shown: list[str] = field(default_factory=list)
    # Exact names and the types the words name (ranked above a name one edit off, or a
    # word of the text that merely mentions the type), as tsqueries over the head vector.
    names: str | None = None
    types: str | None = None
    # Phrases that must hold, as tsqueries with positions: checked only on the candidates the
    # WHERE clause (their pairs and words, in the GIN index) leaves, as Whoosh checks them lazily.
    verify: str | None = None


_TS, _SQL = "ts", "sql"
# (kind, tsquery text) or (kind, SQL fragment, params)
_Part = tuple


class Compiler:
    def __init__(self, options: IndexOptions, type_words: TypeWords, lookups: Lookups) -> None:
        self.options, self.type_words, self.lookups = options, type_words, lookups
        self.analyzer = ContentAnalyzer()

    def compile(self, node: Node) -> Compiled:
        check_wildcards(node, self.options)
        self._stems = {s for word in plain_words(node) for s in self._content(word)}
        self._types = self.lookups.doc_types()
        self._shown: list[str] = []
        self._rank: list[str] = []
        self._names: list[str] = []
        self._named_types: list[str] = []
        self._verify: list[str] = []
        part = self._node(node, positive=True, required=True)
        if part is None:
            return Compiled("FALSE", [], None)
        where, params = _as_sql(part)
        return Compiled(
            where,
            params,
            v.any_of(self._rank),
            self._shown,
            v.any_of(self._names),
            v.any_of(self._named_types),
            v.all_of(self._verify),
        )

    # -- nodes -------------------------------------------------------------------------

    def _node(self, node: Node, positive: bool, required: bool = False) -> _Part | None:
        """``required``: the node must match for the whole query to (not under OR or NOT)."""
        if isinstance(node, Not):
            inner = self._node(node.child, positive=False)
            if inner is None:
                return None
            return (_TS, v.negated(inner[1])) if inner[0] == _TS else (_SQL, f"NOT ({inner[1]})", inner[2])
        if isinstance(node, (And, Or)):
            inside = required and isinstance(node, And)
            parts = [p for p in (self._node(child, positive, inside) for child in node.children) if p is not None]
            if not parts:
                return None
            if all(p[0] == _TS for p in parts):
                joined = (v.all_of if isinstance(node, And) else v.any_of)(p[1] for p in parts)
                return (_TS, joined)
            operator = " AND " if isinstance(node, And) else " OR "
            sqls = [_as_sql(p) for p in parts]
            return (_SQL, "(" + operator.join(f"({s})" for s, _ in sqls) + ")", [x for _, ps in sqls for x in ps])
        part = self._leaf(node, required)
        if part is not None and part[0] == _TS and positive:
            self._rank.append(part[1])
        return part

    def _leaf(self, leaf: Leaf, required: bool) -> _Part | None:
        if isinstance(leaf, Word):
            return self._word(leaf)
        if isinstance(leaf, Phrase):
            return self._phrase(leaf, required)
        if isinstance(leaf, Wildcard):
            return self._wildcard(leaf)
        if isinstance(leaf, Range):
            return self._range(leaf)
        return self._everything(leaf)

    def _word(self, word: Word) -> _Part | None:
        if word.field in COLUMNS:
            return _column(word.field, "=", word.text)
        self._shown.append(v.lexeme(word.text))
        content = v.all_of(v.lexeme(s) for s in self._content(word.text))
        names = v.all_of(v.lexeme(v.NAME + w) for w in v.name_words(word.text))
        mrn = v.lexeme(v.MRN + word.text)
        if word.field == "content":
            return _ts(content)
        if names and word.field in (None, "patient_name"):
            self._names.append(names)
        if word.field == "patient_name":
            return _ts(names)
        if word.field == "mrn":
            return _ts(mrn)
        types = self._types_named(word.text)
        self._named_types.extend(types)
        return _ts(v.any_of([content, names, mrn, *types, *self._variants(word.text)]))

    def _content(self, text: str) -> list[str]:
        return list(self.analyzer.index_tokens(text))

    def _types_named(self, text: str) -> list[str]:
        stems = self._content(text)
        if len(stems) != 1:
            return []
        return [v.lexeme(v.TYPE + t) for t in self.type_words.types_for(stems[0], self._stems, self._types)]

    def _variants(self, text: str) -> list[str]:
        words = v.name_words(text)
        if len(words) != 1 or len(words[0]) < VARIANT_MIN_LETTERS or not words[0].isalpha():
            return []
        return [v.lexeme(v.NAME + other) for other in self.lookups.name_variants(words[0])]

    def _phrase(self, phrase: Phrase, required: bool) -> _Part | None:
        if phrase.field in COLUMNS or phrase.field == "mrn":
            return _column(phrase.field or "mrn", "=", " ".join(phrase.words))
        self._shown.extend(v.lexeme(word) for word in phrase.words)
        stems = [s for word in phrase.words for s in self._content(word)]
        names = v.all_of(v.lexeme(v.NAME + w) for word in phrase.words for w in v.name_words(word))
        if phrase.field == "patient_name":
            return _ts(names)
        if phrase.slop > 1:  # words near each other: all of them, in any order
            content = v.all_of(v.lexeme(s) for s in stems)
        elif stems and required:
            content, in_order = v.phrase_parts(stems, self.lookups.common_words())
            if in_order:
                self._verify.append(in_order if phrase.field == "content" else v.any_of([in_order, names]) or "")
        else:
            content = v.phrase(stems, self.lookups.common_words()) if stems else None
        return _ts(content if phrase.field == "content" else v.any_of([content, names]))

    def _wildcard(self, wildcard: Wildcard) -> _Part | None:
        fieldname = wildcard.field
        if fieldname in COLUMNS or fieldname == "mrn":
            return (_SQL, f"{fieldname} LIKE %s", [_like(wildcard.pattern)])
        self._shown.append(v.prefix(wildcard.prefix.lower()))
        parts = []
        if fieldname in (None, "content"):
            parts.append(self._expanded("", wildcard))
        if fieldname in (None, "patient_name"):
            parts.append(self._expanded(v.NAME, wildcard))
        if fieldname is None:
            return _any_sql([_ts(v.any_of(p for p in parts if p)), (_SQL, "mrn LIKE %s", [_like(wildcard.pattern)])])
        return _ts(v.any_of(p for p in parts if p)) or _FALSE

    def _expanded(self, label: str, wildcard: Wildcard) -> str | None:
        pattern = wildcard.pattern.lower()
        most = self.options.max_expansions
        words = self.lookups.words_like(_like(label + pattern), most)
        if len(words) > most:
            raise _too_many(pattern, most, "write more letters before the *")
        if wildcard.is_prefix:
            return v.prefix(label + pattern[:-1]) if words else None
        return v.any_of(v.lexeme(word) for word in words)

    def _range(self, r: Range) -> _Part | None:
        if r.field in COLUMNS or r.field == "mrn":
            conditions = [c for c in (_bound(r.field, ">=", r.start), _bound(r.field, "<=", r.end)) if c]
            return (_SQL, " AND ".join(c[1] for c in conditions), [p for c in conditions for p in c[2]])
        label = v.NAME if r.field == "patient_name" else ""
        most = self.options.max_expansions
        low, high = (None if b is None else label + b.lower() for b in (r.start, r.end))
        words = self.lookups.words_between(label, low, high, most)
        if len(words) > most:
            raise _too_many(f"{r.field}:[{r.start} TO {r.end}]", most, "use a shorter range")
        return _ts(v.any_of(v.lexeme(w) for w in words)) or _FALSE

    def _everything(self, every: Everything) -> _Part | None:
        if every.field in COLUMNS or every.field == "mrn":
            return (_SQL, f"{every.field} IS NOT NULL", [])
        most = self.options.max_expansions
        if self.lookups.lexicon_size(most) > most:
            raise _too_many("*", most, "leave the * on its own out")
        return (_SQL, "TRUE", [])


_FALSE: _Part = (_SQL, "FALSE", [])


def check_wildcards(node: Node, options: IndexOptions) -> None:
    """Refuses wildcards without enough letters before them, as typed."""
    least = options.min_wildcard_prefix
    for leaf in leaves(node):
        if isinstance(leaf, Wildcard) and len(leaf.prefix) < least:
            raise SearchTooBroad(
                f"the search is too broad: a wildcard needs at least {least} letter{'s' * (least != 1)} "
                f"before it (such as diab*), not {leaf.pattern}"
            )


def check_length(query: str, options: IndexOptions) -> None:
    if len(query) > options.max_query_chars:
        raise SearchTooBroad(
            f"the search is too long ({len(query)} characters, at most {options.max_query_chars}): "
            "search for fewer words"
        )


def _too_many(shown: str, most: int, advice: str) -> SearchTooBroad:
    return SearchTooBroad(f"the search is too broad: {shown} matches more than {most} different words; {advice}")


def _ts(text: str | None) -> _Part | None:
    return None if text is None else (_TS, text)


def _any_sql(parts: list[_Part | None]) -> _Part | None:
    kept = [p for p in parts if p is not None]
    sqls = [_as_sql(p) for p in kept]
    if not sqls:
        return None
    return (_SQL, "(" + " OR ".join(f"({s})" for s, _ in sqls) + ")", [x for _, ps in sqls for x in ps])


def _as_sql(part: _Part) -> tuple[str, list[object]]:
    if part[0] == _TS:
        return "terms @@ %s::tsquery", [part[1]]
    return part[1], list(part[2])


def _column(name: str, operator: str, value: str) -> _Part:
    assert name in COLUMNS or name == "mrn"  # names come from query_tree.FIELDS, never from the clerk's text
    return (_SQL, f"{name} {operator} %s", [value])


def _bound(name: str, operator: str, value: str | None) -> _Part | None:
    return None if value is None else _column(name, operator, value)


def _like(pattern: str) -> str:
    """A wildcard pattern (* and ?) as a LIKE pattern, LIKE's own marks escaped."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")
