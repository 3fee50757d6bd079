"""Ranking a query as Whoosh's BM25F would, a posting list at a time.

Whoosh ranks by walking a tree of matchers document by document, several
Python calls per document and per term, and reads a field length from disk
for each score; a phrase decodes the positions of its words in every
document that has them all. On an archive where common words are in most
documents that costs seconds. Ranker computes the same BM25F scores a
posting list at a time instead: a term's documents, weights and positions
are read block by block into lists, the field lengths of a segment once,
and And/Or/Not become dictionary operations. Query types it does not know
(wildcards, ranges, fuzzy terms...) are scored by Whoosh's own matchers.
Phrases are the exception: they find their documents through pairs of
words (see PairFormat) and rank them by the pairs, not by each word; a
document that may have the words apart is only checked for the words in a
row when it is about to be shown.
"""

from __future__ import annotations

import heapq
import itertools
import warnings
from array import array
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Iterator

from indexers.whoosh.budgets import Deadline
from indexers.whoosh.caches import SegmentCaches
from indexers.whoosh.codec import Postings, read_all
from indexers.whoosh.query import Narrowing, allowed_docs
from indexers.whoosh.schema import PAIRS, ContentFormat

with warnings.catch_warnings():
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
    from whoosh.query import And, AndNot, Not, NullQuery, Or, Phrase, Query, Term
    from whoosh.scoring import BM25F
    from whoosh.searching import Searcher
    from whoosh.util.numeric import byte_to_length

# With fewer candidates than a posting list's documents / this, each is looked
# up in the list (skipping whole blocks) rather than the whole list read.
_LOOKUP_RATIO = 16
_LENGTH_OF_BYTE = [1] + [byte_to_length(b) for b in range(1, 256)]  # 0 reads as 1, as in BM25FScorer
# Whoosh's matchers look at the deadline after this many documents.
_DOCS_BETWEEN_CHECKS = 4096
_NO_DEADLINE = Deadline(float("inf"))


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


def ranked(
    searcher: Searcher,
    query: Query,
    narrowing: Query | None,
    limit: int,
    caches: SegmentCaches,
    seen: dict | None = None,
    deadline: Deadline = _NO_DEADLINE,
) -> list[tuple[float, int]]:
    """The top (score, docnum) pairs, best first, as searcher.search(And([query,
    narrowing])) would rank them (the narrowing adds nothing to scores).
    Postings values looked up for some documents go into seen (see Ranker);
    past the deadline, SearchTooBroad."""
    if not isinstance(searcher.weighting, BM25F) or type(searcher.weighting) is not BM25F:
        return whoosh_ranked(searcher, query, narrowing, limit, caches)
    best: list[tuple[float, int]] = []  # (score, -docnum) of segments with no conditions
    lazy: list[Iterator[tuple[float, int, int, tuple[_Check, ...]]]] = []  # of segments with some
    for sub, offset in searcher.leaf_searchers():
        reader = sub.reader()
        allowed = None if narrowing is None else allowed_docs(narrowing, reader, caches)
        if allowed is not None and not allowed:
            continue
        deadline.check()
        scores, pending = Ranker(searcher, sub, caches, seen, deadline).scored(query, allowed)
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
        deadline.check()
        _verify((local, checks) for _, _, local, checks in batch)
        checked += len(batch)
        top.extend(
            (-negscore, docnum)
            for negscore, docnum, local, checks in batch
            if all(check.passed[local] for check in checks)
        )
    return top[:limit]


def _best_first(
    scores: dict[int, float], pending: dict[int, tuple[_Check, ...]], offset: int
) -> Iterator[tuple[float, int, int, tuple[_Check, ...]]]:
    """(-score, docnum, the segment's own docnum, the checks it must pass) of a
    segment's documents, best first, ties in document order; made as they are
    taken, as most of the thousands of candidates of a phrase never are."""
    for d in sorted(sorted(scores), key=scores.__getitem__, reverse=True):
        yield -scores[d], offset + d, d, pending.get(d, ())


def whoosh_ranked(
    searcher: Searcher, query: Query, narrowing: Query | None, limit: int, caches: SegmentCaches
) -> list[tuple[float, int]]:
    """The same ranking by Whoosh's own collector (slow on broad queries)."""
    results = searcher.search(And([query, Narrowing(narrowing, caches)]) if narrowing else query, limit=limit)
    return [(hit.score, hit.docnum) for hit in results]


class Ranker:
    """Scores a query in one segment of a searcher, as Whoosh's BM25F would."""

    def __init__(
        self,
        searcher: Searcher,
        sub: Searcher,
        caches: SegmentCaches,
        seen: dict | None = None,
        deadline: Deadline = _NO_DEADLINE,
    ) -> None:
        self.top, self.sub, self.reader, self.caches, self.deadline = searcher, sub, sub.reader(), caches, deadline
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
        self.deadline.check()
        if isinstance(query, Term):
            return self._term(query.fieldname, query.text, query.boost, allowed), {}
        if (
            isinstance(query, Phrase)
            and query.slop == 1
            and query.fieldname in self.schema
            and isinstance(self.schema[query.fieldname].format, ContentFormat)
        ):
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
        kept = {
            d: v
            for d, v in scores.items()
            if d not in excluded or not all(check(d) for check in excluded_pending.get(d, ()))
        }
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
            _verify(
                (d, pending.get(d, ()) + more_pending.get(d, ()))
                for d in more
                if d in scores and (d in pending or d in more_pending)
            )
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
        for n in itertools.count(1):
            if not m.is_active():
                break
            d = m.id()
            if allowed is None or d in allowed:
                scores[d] = m.score()
            m.next()
            if n % _DOCS_BETWEEN_CHECKS == 0:
                self.deadline.check()
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
        return self._boosted(dict(zip(ids, self._scores(fieldname, btext, ids, weights), strict=True)), boost)

    def _scores(
        self, fieldname: str, btext: bytes, ids: list[int], weights: list[float], lengths_of: str | None = None
    ) -> list[float]:
        """BM25F of the term in these documents; lengths_of scores a term of the
        pair field as one of the field it is made from."""
        lengths_of = lengths_of or fieldname
        if not self.schema[lengths_of].scorable:
            return list(weights)  # WeightScorer
        # bm25() of whoosh.scoring, term for term, so that scores are the same.
        idf, k1 = self.top.idf(fieldname, btext), self.k1
        norms = self.norms(lengths_of)
        return [idf * ((tf * (k1 + 1)) / (tf + norms[d])) for d, tf in zip(ids, weights, strict=True)]

    def norms(self, fieldname: str) -> array:
        """Every document's length normalisation, k1 * ((1 - b) + b * length /
        average length), as bm25() computes it; kept while the average (over
        the whole index) stays the same."""
        avgfl = self.top.avg_field_length(fieldname) or 1
        b, k1 = self.field_b.get(fieldname, self.b), self.k1
        key = (self.segment, fieldname, avgfl, b, k1)
        norms = self.caches.norms.get(key)
        if norms is None:
            norms = array("d", [k1 * ((1 - b) + b * length / avgfl) for length in self._lengths(fieldname)])
            self.caches.keep(self.caches.norms, key, norms)
        return norms

    def _lengths(self, fieldname: str) -> array:
        """Every document's length of the field (as BM25FScorer reads it), read
        once per segment: a segment's lengths never change."""
        key = (self.reader.segment().segment_id(), fieldname)
        lengths = self.caches.lengths.get(key)
        if lengths is None:
            count = self.reader.doc_count_all()
            column = self.reader._perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
            raw = b"" if column is None else column._dbfile.get(column._basepos, min(column._count, count))
            lengths = array("I", [_LENGTH_OF_BYTE[byte] for byte in raw] + [1] * (count - len(raw)))
            self.caches.keep(self.caches.lengths, key, lengths)
        return lengths

    def _among(self, fieldname: str, btext: bytes, candidates) -> list[int] | None:
        """The candidates, sorted, when there are few enough to look them up
        one by one in the term's posting list."""
        if candidates is None or len(candidates) * _LOOKUP_RATIO >= self.reader.doc_frequency(fieldname, btext):
            return None
        return sorted(candidates)

    def _postings(
        self, fieldname: str, btext: bytes, allowed: set[int] | None, values: bool, among: list[int] | None = None
    ) -> Postings:
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
        kept = self.caches.lists.get(key)
        if kept is not None:
            return kept[0], kept[1], []  # type: ignore[return-value]  # the cache's arrays read as the lists
        ids, weights, _ = read_all(m, False)
        if len(ids) >= self.caches.list_kept_from:
            self.caches.keep_list(key, ids, weights)
        return ids, weights, []

    def values_of(self, fieldname: str, btext: bytes, docnums: list[int]) -> dict[int, bytes | None]:
        """The term's posting values in these documents (sorted docnums),
        None where it is not; remembered in self.seen."""
        seen = self.seen.setdefault((self.segment, fieldname, btext), {})
        wanted = [d for d in docnums if d not in seen]
        if wanted:
            ids, _, values = self._postings(fieldname, btext, None, values=True, among=wanted)
            seen.update(dict.fromkeys(wanted))
            seen.update(zip(ids, values, strict=True))
        return {d: seen[d] for d in docnums}

    def _blocks(self, m: W3LeafMatcher, fieldname: str, btext: bytes) -> tuple[list[int], list[int]] | None:
        """The last document and the offset of each block of a long list (a
        segment's postings never change); None for a short one."""
        if self.reader.doc_frequency(fieldname, btext) < self.caches.list_kept_from:
            return None
        key = (self.segment, fieldname, btext)
        blocks = self.caches.blocks.get(key)
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
            self.caches.keep(self.caches.blocks, key, blocks, self.caches.blocks_kept)
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
        looked_up = [self._bytes(fieldname, word) for word in words]
        btexts = [b for b in looked_up if b is not None]
        if not words or len(btexts) < len(looked_up):
            return {}, {}
        if len(words) == 1:
            return self._term(fieldname, words[0], query.boost, allowed), {}
        common = self.schema[PAIRS].format.words if fieldname == "content" and PAIRS in self.schema else ()
        units: list[tuple[str, bytes]] = []
        covered: set[int] = set()
        for i in range(len(words) - 1):
            if words[i] in common and words[i + 1] in common:
                pair = f"{words[i]} {words[i + 1]}".encode()
                if (PAIRS, pair) not in self.reader:
                    return {}, {}
                units.append((PAIRS, pair))
                covered.update((i, i + 1))
        units.extend((fieldname, btext) for i, btext in enumerate(btexts) if i not in covered)
        listed: dict[tuple[str, bytes], dict[int, float]] = {}
        among = None
        for unit in sorted(set(units), key=lambda unit: self.reader.doc_frequency(*unit)):
            ids, weights, _ = self._postings(*unit, allowed, values=False, among=self._among(*unit, among))
            listed[unit] = dict(zip(ids, weights, strict=True))
            among = ids if among is None else [d for d in among if d in listed[unit]]
            if not among:
                return {}, {}
        if not among:
            return {}, {}
        scores = dict.fromkeys(among, 0.0)
        for unit in units:
            by_doc = listed[unit]
            for d, score in zip(
                among, self._scores(*unit, among, [by_doc[d] for d in among], lengths_of=fieldname), strict=True
            ):
                scores[d] += score
        scores = self._boosted(scores, query.boost)
        if len(words) == 2 and len(covered) == 2:
            return scores, {}  # the pair is the phrase
        check = _PhraseCheck(self, fieldname, btexts)
        return scores, dict.fromkeys(scores, (check,))


def _lookup(m: W3LeafMatcher, among: list[int], values: bool, blocks: tuple[list[int], list[int]] | None) -> Postings:
    """The postings of these documents (sorted) in a list, block by block, or
    straight to each one's block given the list's blocks (see Ranker._blocks)."""
    ids: list[int] = []
    weights: list[float] = []
    vals: list[bytes] = []
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

    def __init__(self, ranker: Ranker, fieldname: str, words: list[bytes]) -> None:
        super().__init__()
        self.ranker, self.fieldname, self.words = ranker, fieldname, words

    def verify(self, docnums: Iterable[int]) -> None:
        docnums = sorted(set(docnums))
        positions = {}
        for word in set(self.words):
            positions[word] = self.ranker.values_of(self.fieldname, word, docnums)
        fmt = self.ranker.schema[self.fieldname].format
        self.ranker.deadline.check()
        for d in docnums:
            starts: set[int] | None = None
            for offset, word in enumerate(self.words):
                value = positions[word].get(d)
                here = set() if value is None else {p - offset for p in fmt.decode_positions(value)}
                starts = here if starts is None else starts & here
                if not starts:
                    break
            self.passed[d] = bool(starts)
