"""A clerk's query and filters as Whoosh queries, and the documents a filter allows."""

from __future__ import annotations

import warnings
from array import array
from bisect import bisect_left, bisect_right
from itertools import accumulate

from indexers import query_tree
from indexers.base import IndexFailure, SearchFilters
from indexers.whoosh.caches import SegmentCaches
from indexers.whoosh.codec import read_all
from indexers.whoosh.schema import PAIRS
from indexers.whoosh.tree import to_whoosh

with warnings.catch_warnings():
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from whoosh.codec.whoosh3 import W3LeafMatcher
    from whoosh.columns import VarBytesColumn
    from whoosh.fields import Schema
    from whoosh.matching import ListMatcher, Matcher
    from whoosh.qparser import AndGroup, FieldAliasPlugin, MultifieldParser
    from whoosh.query import And, NullQuery, Query, Term, TermRange
    from whoosh.query.wrappers import WrappingQuery
    from whoosh.searching import Searcher

DEFAULT_FIELDS = ["content", "patient_name", "mrn"]
ALIASES = {"patient_name": ["name", "patient"], "content": ["text"]}


def make_parser(schema: Schema) -> MultifieldParser:
    """Whoosh's parser as clerks use it: all words must match, each in any default field."""
    parser = MultifieldParser(DEFAULT_FIELDS, schema, group=AndGroup)
    parser.add_plugin(FieldAliasPlugin(ALIASES))
    return parser


def parse_query(query: str, schema: Schema) -> Query:
    """The query in Whoosh's terms, read through the query tree both engines share
    (indexers/query_tree.py): what Whoosh's parser made of the same text."""
    tree = query_tree.parse(query)
    if tree is None:
        return NullQuery
    try:
        return to_whoosh(tree, make_parser(schema))
    except Exception:
        searchable = ", ".join(
            sorted({*(name for name, field in schema.items() if field.indexed and name != PAIRS), "name"})
        )
        raise IndexFailure(
            f'cannot understand the search {query!r}: use words, "quoted phrases", AND/OR/NOT, '
            f"wildcards such as diab*, or field:value where the field is one of {searchable}"
        ) from None


def filter_query(filters: SearchFilters) -> Query | None:
    """The filters as one query that narrows without scoring."""
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


def allowed_docs(query: Query, reader, caches: SegmentCaches) -> set[int]:
    """The documents of one segment that a filter query matches."""
    if isinstance(query, And):
        return set.intersection(*(allowed_docs(sub, reader, caches) for sub in query.subqueries))
    if (
        isinstance(query, TermRange)
        and not query.startexcl
        and not query.endexcl
        and reader.schema[query.fieldname].column_type is not None
    ):
        # A range of dates is hundreds of terms, each a posting list to read;
        # the sorted column answers it with two bisections.
        values, docnums = sorted_column(reader, query.fieldname, caches)
        field = reader.schema[query.fieldname]
        low = 0 if query.start is None else bisect_left(values, field.to_bytes(query.start))
        high = len(values) if query.end is None else bisect_right(values, field.to_bytes(query.end))
        in_range = set(docnums[low:high])
        return in_range - reader.deleted_docs_set if reader.has_deletions() else in_range
    found: set[int] = set()
    for fieldname, text in query.existing_terms(reader, expand=True):
        m = reader._terms.matcher(fieldname, text, reader.schema[fieldname].format)
        found.update(read_all(m, False)[0] if isinstance(m, W3LeafMatcher) else m.all_ids())
    return found - reader.deleted_docs_set if reader.has_deletions() else found


def sorted_column(reader, fieldname: str, caches: SegmentCaches) -> tuple[list[bytes], array]:
    """A segment's documents that have a value in the field's column, as
    (values as indexed terms, sorted; their docnums); kept, as a segment never
    changes (but for deletions, which the caller removes)."""
    key = (reader.segment().segment_id(), fieldname)
    found = caches.sorted_columns.get(key)
    if found is None:
        column = reader.column_reader(fieldname, translate=False)
        if isinstance(column, VarBytesColumn.Reader):
            # The whole column at once rather than a file read per document.
            lengths = column._lengths
            data = column._dbfile.get(column._basepos, sum(lengths))
            values = [data[end - length : end] for end, length in zip(accumulate(lengths), lengths, strict=True)]
        else:
            values = list(column)
        pairs = sorted((value, docnum) for docnum, value in enumerate(values) if value)
        found = [value for value, _ in pairs], array("I", [docnum for _, docnum in pairs])
        caches.keep(caches.sorted_columns, key, found)
    return found


class Narrowing(WrappingQuery):
    """Matches what the filter query matches, scoring 0, from a flat list of
    document numbers (for Whoosh's collector)."""

    def __init__(self, child: Query, caches: SegmentCaches) -> None:
        super().__init__(child)
        self.caches = caches

    def _rewrap(self, child: Query) -> Narrowing:
        return Narrowing(child, self.caches)

    def matcher(self, searcher: Searcher, context=None) -> Matcher:
        ids = sorted(allowed_docs(self.child, searcher.reader(), self.caches))
        return ListMatcher(ids, weights=array("f", bytes(4 * len(ids))))
