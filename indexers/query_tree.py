"""One query language for every engine: a clerk's search parsed once into a tree.

The syntax is the subset of Whoosh's that the README documents: plain words (all
must match), "quoted phrases", AND / OR / NOT (upper case, as operators), field:value,
field:"a phrase", prefix* and other wildcards (* and ?), ranges field:[a TO b], and
parentheses. Precedence is Whoosh's: NOT binds tightest, then AND, then OR, then the
implicit AND between neighbours ("a b OR c" is a AND (b OR c)). Broken syntax is read
as leniently as Whoosh reads it (an unclosed quote or parenthesis runs to the end).

The tree is pure data. Each engine compiles it (indexers/whoosh, indexers/postgres);
neither ever pastes the clerk's text into its own syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from indexers.base import BadQuery, IndexFailure

# Fields a clerk may name, with the aliases the README gives them.
FIELDS = (
    "content",
    "patient_name",
    "mrn",
    "doc_type",
    "status",
    "doc_date",
    "dob",
    "doc_id",
    "sha256",
    "source_sha256",
    "site",
)
ALIASES = {"name": "patient_name", "patient": "patient_name", "text": "content"}
# Kept with a document but not searchable: naming one is a mistake worth saying.
STORED_ONLY = ("path", "source_file", "review_reason", "pages")
WILDCARDS = "*?"

# "H&P", "h and p", "h/p": initials joined as clerks write them; one-letter words are not
# indexed, so they are searched as one word ("hp", a type synonym).
_JOINED_INITIALS = re.compile(r"(?<![\w:&/])([A-Za-z])\s*(?:&|/|\band\b|\bAND\b)\s*([A-Za-z])(?![\w&/])")
_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<open>\()
      | (?P<close>\))
      | (?P<range>(?:(?P<rfield>\w+):)?[\[{](?P<rbody>[^\]}]*)(?:[\]}]|$))
      | (?P<phrase>(?:(?P<pfield>\w+):)?"(?P<pbody>[^"]*)(?:"(?:~(?P<slop>[1-9][0-9]*))?|$))
      | (?P<word>[^\s()"]+)""",
    re.VERBOSE,
)
_OPERATORS = ("AND", "OR", "NOT")
_BOOST = re.compile(r"\^([0-9]+(?:\.[0-9]+)?|\.[0-9]+)$")


@dataclass(frozen=True)
class Word:
    """A word; with no field, it may match the text, the name, the MRN or the type."""

    text: str
    field: str | None = None
    boost: float = 1.0  # word^2 (Whoosh's syntax; PostgreSQL ranks without it)


@dataclass(frozen=True)
class Phrase:
    """Words of the text (or the name) in a row; with a slop of n, within n words of each other."""

    words: tuple[str, ...]
    field: str | None = None
    slop: int = 1


@dataclass(frozen=True)
class Wildcard:
    """A word with * or ? in it; ``prefix`` is the literal text before the first mark."""

    pattern: str
    field: str | None = None

    @property
    def prefix(self) -> str:
        marks = [self.pattern.index(mark) for mark in WILDCARDS if mark in self.pattern]
        return self.pattern[: min(marks)] if marks else self.pattern

    @property
    def is_prefix(self) -> bool:
        """prefix* and nothing else."""
        return self.pattern.endswith("*") and self.pattern.count("*") == 1 and "?" not in self.pattern


@dataclass(frozen=True)
class Range:
    field: str
    start: str | None
    end: str | None


@dataclass(frozen=True)
class Everything:
    """A lone * (every document), or field:* (every document with the field)."""

    field: str | None = None


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Word | Phrase | Wildcard | Range | Everything | And | Or | Not
Leaf = Word | Phrase | Wildcard | Range | Everything


class _NotSearchable(Exception):
    pass


def check_quotes(query: str) -> None:
    """Refuse an unclosed double quote: read leniently, it would search for something other
    than what the clerk meant. (Single quotes are apostrophes: O'Brien.)"""
    if query.count('"') % 2:
        raise BadQuery('the search has an unclosed double quote: close the phrase ("chest pain") or remove the quote')


def parse(query: str) -> Node | None:
    """The query as a tree; None when it has nothing to search for (blank, or a lone *)."""
    try:
        tokens = list(_tokens(_JOINED_INITIALS.sub(r"\1\2", query)))
    except _NotSearchable:
        searchable = ", ".join(sorted({*FIELDS, *ALIASES} - {"patient", "text"}))
        raise IndexFailure(
            f'cannot understand the search {query!r}: use words, "quoted phrases", AND/OR/NOT, '
            f"wildcards such as diab*, or field:value where the field is one of {searchable}"
        ) from None
    if not tokens or tokens == [Everything()]:
        return None
    node, _ = _sequence(tokens, 0, closing=False)
    return node


def field_name(name: str) -> str | None:
    """The field a clerk's field name means; None when it names none (so "10:30" stays a word)."""
    name = ALIASES.get(name, name)
    if name in STORED_ONLY:
        raise _NotSearchable(name)
    return name if name in FIELDS else None


def leaves(node: Node | None) -> list[Leaf]:
    if node is None:
        return []
    if isinstance(node, (And, Or)):
        return [leaf for child in node.children for leaf in leaves(child)]
    if isinstance(node, Not):
        return leaves(node.child)
    return [node]


def plain_words(node: Node | None) -> list[str]:
    """The words without a field that must or may match (not those after NOT): what names types."""
    if node is None or isinstance(node, Not):
        return []
    if isinstance(node, Word):
        return [node.text] if node.field is None else []
    if isinstance(node, (And, Or)):
        return [word for child in node.children for word in plain_words(child)]
    return []


# -- tokens ---------------------------------------------------------------------

_Token = Node | str  # a leaf, or one of "(", ")", "AND", "OR", "NOT"


def _tokens(query: str):
    for match in _TOKEN.finditer(query):
        kind = match.lastgroup
        if kind in ("space", None) or match.group("space"):
            continue
        if match.group("open"):
            yield "("
        elif match.group("close"):
            yield ")"
        elif match.group("range") is not None:
            yield from _range(match.group("rfield"), match.group("rbody"))
        elif match.group("phrase") is not None:
            field = field_name(match.group("pfield")) if match.group("pfield") else None
            if match.group("pfield") and field is None:
                yield from _word(match.group("pfield") + ":")
            words = tuple(match.group("pbody").split())
            slop = int(match.group("slop") or 1)
            if words:
                yield Phrase(words, field, slop) if len(words) > 1 else Word(words[0], field)
        else:
            yield from _word(match.group("word"))


def _range(field: str | None, body: str):
    parts = re.split(r"\s+TO\s+|^TO\s+|\s+TO$", body.strip(), maxsplit=1)
    start = parts[0].strip() or None
    end = parts[1].strip() or None if len(parts) > 1 else None
    if start is None and end is None:
        return
    yield Range((field_name(field) if field else None) or "content", start, end)


def _word(text: str):
    if text in _OPERATORS:
        yield text
        return
    field: str | None = None
    if ":" in text:
        name, value = text.split(":", 1)
        if name and re.fullmatch(r"\w+", name) and field_name(name) is not None:
            field, text = field_name(name), value
        if not text:
            return  # "mrn:" with nothing after it
    boosted = _BOOST.search(text)
    if boosted and boosted.start() > 0 and field != "doc_date":
        text, boost = text[: boosted.start()], float(boosted.group(1) or 1)
    else:
        boost = 1.0
    if text == "*":
        yield Everything(field)
    elif any(mark in text for mark in WILDCARDS):
        yield Wildcard(text, field)
    else:
        yield Word(text, field, boost)


# -- grammar --------------------------------------------------------------------


def _sequence(tokens: list[_Token], i: int, closing: bool) -> tuple[Node | None, int]:
    """Neighbours joined by the implicit AND, up to a closing parenthesis or the end."""
    parts: list[Node] = []
    while i < len(tokens):
        if tokens[i] == ")":
            if closing:
                return _joined(And, parts), i + 1
            i += 1  # a stray ) is ignored
            continue
        node, i = _disjunction(tokens, i)
        if node is not None:
            parts.append(node)
    return _joined(And, parts), i


def _disjunction(tokens: list[_Token], i: int) -> tuple[Node | None, int]:
    node, i = _conjunction(tokens, i)
    parts = [node] if node is not None else []
    while i < len(tokens) and tokens[i] == "OR":
        more, i = _conjunction(tokens, i + 1)
        if more is not None:
            parts.append(more)
    return _joined(Or, parts), i


def _conjunction(tokens: list[_Token], i: int) -> tuple[Node | None, int]:
    node, i = _unary(tokens, i)
    parts = [node] if node is not None else []
    while i < len(tokens) and tokens[i] == "AND":
        more, i = _unary(tokens, i + 1)
        if more is not None:
            parts.append(more)
    return _joined(And, parts), i


def _unary(tokens: list[_Token], i: int) -> tuple[Node | None, int]:
    if i >= len(tokens):
        return None, i
    token = tokens[i]
    if token == "NOT":
        child, i = _unary(tokens, i + 1)
        return (Not(child) if child is not None else None), i
    if token == "(":
        return _sequence(tokens, i + 1, closing=True)
    if token in ("AND", "OR", ")"):
        return None, i + 1 if token != ")" else i  # an operator with nothing before it is dropped
    assert not isinstance(token, str)
    return token, i + 1


def _joined(kind: type[And] | type[Or], parts: list[Node]) -> Node | None:
    flat: list[Node] = []
    for part in parts:
        flat.extend(part.children if isinstance(part, kind) else (part,))
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else kind(tuple(flat))
