"""How much one search may cost: its length, how far its wildcards reach, its time.

A wildcard with nothing before it (`?*`, `*xy*`) reads every word of the
archive, and one that matches thousands of words scores each one's documents:
a single clerk's search held a core for tens of seconds. Past a budget the
search is refused with a message that says how to narrow it.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable

from indexers.base import IndexOptions, SearchTooBroad
from indexers.whoosh.query import make_parser

with warnings.catch_warnings():
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from whoosh.fields import Schema
    from whoosh.qparser.plugins import PrefixPlugin, WildcardPlugin
    from whoosh.query import (
        Every,
        ExpandingTerm,
        MultiTerm,
        PatternQuery,
        Prefix,
        Query,
        TermRange,
    )

PrefixNode, WildcardNode = PrefixPlugin.PrefixNode, WildcardPlugin.WildcardNode
_WILDCARDS = "*?"


def check_length(query: str, options: IndexOptions) -> None:
    if len(query) > options.max_query_chars:
        raise SearchTooBroad(
            f"the search is too long ({len(query)} characters, at most {options.max_query_chars}): "
            "search for fewer words"
        )


def check_wildcards(query: str, schema: Schema, options: IndexOptions) -> None:
    """Refuses wildcards without enough letters before them, as typed (the
    index's analysis may shorten them), before anything is read."""
    least = options.min_wildcard_prefix
    if not any(mark in query for mark in _WILDCARDS):
        return
    try:
        nodes = make_parser(schema).process(query)
    except Exception:
        return
    for node in _syntax_leaves(nodes):
        text = getattr(node, "text", None)
        if isinstance(node, (PrefixNode, WildcardNode)) and text != "*" and _literal_prefix(node) < least:
            shown = f"{text}*" if isinstance(node, PrefixNode) else text
            raise SearchTooBroad(
                f"the search is too broad: a wildcard needs at least {least} letter{'s' * (least != 1)} "
                f"before it (such as diab*), not {shown}"
            )


def check_expansions(query: Query, reader, options: IndexOptions) -> None:
    """Refuses a wildcard (or a range of words, or field:* within a longer
    search) that matches more words of the index than the budget allows."""
    most = options.max_expansions
    for leaf in _leaves(query):
        if isinstance(leaf, Every) and leaf.fieldname:
            terms, advice = reader.lexicon(leaf.fieldname), "leave the * on its own out"
        elif isinstance(leaf, TermRange) and reader.schema[leaf.fieldname].column_type is None:
            terms, advice = leaf._btexts(reader), "use a shorter range"
        elif isinstance(leaf, (PatternQuery, ExpandingTerm)):
            terms, advice = leaf._btexts(reader), "write more letters before the *"
        else:
            continue
        if sum(1 for _ in itertools.islice(terms, most + 1)) > most:
            raise SearchTooBroad(
                f"the search is too broad: {_shown(leaf)} matches more than {most} different words; {advice}"
            )


class Deadline:
    """When a search must have finished; ranking checks it between its steps."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.clock = seconds, clock
        self.at = clock() + seconds

    def check(self) -> None:
        if self.clock() >= self.at:
            raise SearchTooBroad(
                f"the search took longer than {self.seconds:g} s and was stopped: narrow it with more words, "
                "a patient, a document type or dates"
            )


def _leaves(query: Query):
    if isinstance(query, (MultiTerm, Every)) or query.is_leaf():
        yield query
        return
    for child in query.children():
        yield from _leaves(child)


def _syntax_leaves(node):
    children = getattr(node, "nodes", None)
    if children is None:
        yield node
        return
    for child in children:
        yield from _syntax_leaves(child)


def _literal_prefix(node) -> int:
    if isinstance(node, PrefixNode):
        return len(node.text)
    return min((node.text.index(mark) for mark in _WILDCARDS if mark in node.text), default=len(node.text))


def _shown(query: Query) -> str:
    if isinstance(query, Every):
        return "*"
    if isinstance(query, Prefix):
        return f"{query.text}*"
    if isinstance(query, TermRange):
        return f"{query.fieldname}:[{query.start} TO {query.end}]"
    return str(getattr(query, "text", query))
