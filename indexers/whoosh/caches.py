"""What one index keeps between searches, per segment: a segment never changes
(but for deletions, which readers leave out), so what was read of it stays true.

Web requests search in threads, hence the lock. Arrays rather than lists (a
hundred thousand numbers each), which the garbage collector would otherwise
go through at each full collection.
"""

from __future__ import annotations

import threading
from array import array
from dataclasses import dataclass, field


@dataclass
class SegmentCaches:
    # Every document's field length, as BM25FScorer reads it: {(segment, field): lengths}.
    lengths: dict[tuple[str, str], array] = field(default_factory=dict)
    # And its BM25 length normalisation: {(segment, field, avgfl, b, k1): norms}.
    norms: dict[tuple, array] = field(default_factory=dict)
    # Sorted values of a sortable column with their docnums: {(segment, field): (values, docnums)}.
    sorted_columns: dict[tuple[str, str], tuple[list[bytes], array]] = field(default_factory=dict)
    # Long posting lists (documents and weights): {(segment, field, term): (ids, weights)}.
    lists: dict[tuple[str, str, bytes], tuple[array, array]] = field(default_factory=dict)
    # Where the blocks of long lists start, with their last documents, so that a
    # lookup goes straight to a document's block instead of reading every block's header.
    blocks: dict[tuple[str, str, bytes], tuple[list[int], list[int]]] = field(default_factory=dict)
    # A segment's name words by each form with one letter left out: {(segment, field): {form: words}}.
    neighbours: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    # The document types of a set of segments: {segment ids: types}.
    doc_types: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    # Lists of at least this many documents are long; at most this many postings are kept.
    list_kept_from: int = 5_000
    lists_kept_postings: int = 4_000_000
    # At most this many entries per segment-wide cache, and this many block directories.
    per_segment_kept: int = 64
    blocks_kept: int = 10_000
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def keep(self, cache: dict, key, value, most: int | None = None) -> None:
        """Keep value in a cache of at most that many entries, the oldest going first."""
        most = self.per_segment_kept if most is None else most
        with self.lock:
            while len(cache) >= most:
                del cache[next(iter(cache))]
            cache[key] = value

    def keep_list(self, key: tuple[str, str, bytes], ids: list[int], weights: list[float]) -> None:
        """Keep a long posting list, dropping the oldest while the postings kept exceed the budget."""
        with self.lock:
            while (
                self.lists and sum(len(kept[0]) for kept in self.lists.values()) + len(ids) > self.lists_kept_postings
            ):
                del self.lists[next(iter(self.lists))]
            self.lists[key] = (array("I", ids), array("f", weights))

    def clear(self) -> None:
        with self.lock:
            for cache in (
                self.lengths,
                self.norms,
                self.sorted_columns,
                self.lists,
                self.blocks,
                self.neighbours,
                self.doc_types,
            ):
                cache.clear()
