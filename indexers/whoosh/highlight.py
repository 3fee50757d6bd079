"""Snippets of the shown hits, with the query's words marked, and the hits as SearchHits."""

from __future__ import annotations

import warnings
from array import array
from bisect import bisect_right
from collections import defaultdict

from indexers.base import SearchHit
from indexers.whoosh.caches import SegmentCaches
from indexers.whoosh.ranking import Ranker

with warnings.catch_warnings():
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from whoosh.highlight import Formatter, PinpointFragmenter, get_text
    from whoosh.query import Query
    from whoosh.searching import Hit, Results

SNIPPET_FALLBACK_CHARS = 160
SNIPPET_MAX_CHARS = 300
_SNIPPET_FRAGMENTS = 2


class MarkFormatter(Formatter):
    """Wraps matches in ** so snippets stay plain text in a terminal or a log."""

    between = " ... "

    def format_token(self, text: str, token, replace: bool = False) -> str:
        return f"**{get_text(text, token, replace)}**"


def prepare(results: Results, query: Query, caches: SegmentCaches, seen: dict | None = None) -> None:
    """Ready the results' hits for snippets: their matched terms, a fragmenter and a formatter."""
    _record_matched_terms(results, query, caches, seen)
    # No character limit: pinpoint highlighting reads offsets from the
    # index instead of scanning the text, so long documents cost nothing.
    results.fragmenter = PinpointFragmenter(
        maxchars=SNIPPET_MAX_CHARS // _SNIPPET_FRAGMENTS, surround=50, autotrim=True, charlimit=None
    )
    results.formatter = MarkFormatter()


def _record_matched_terms(results: Results, query: Query, caches: SegmentCaches, seen: dict | None = None) -> None:
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
    rankers = {leaf: Ranker(searcher, leaves[leaf][0], caches, seen) for leaf in by_leaf}
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


def snippet(hit: Hit) -> str:
    marked = hit.highlights("content", top=_SNIPPET_FRAGMENTS)
    return " ".join(marked.split()) if marked else fallback_snippet(hit)


def fallback_snippet(hit: Hit) -> str:
    return " ".join(hit.get("content", "").split())[:SNIPPET_FALLBACK_CHARS]


def search_hit(hit: Hit, score: float, snippet: str) -> SearchHit:
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
