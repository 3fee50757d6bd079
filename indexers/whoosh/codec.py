"""How the index's postings are written, read and merged: Whoosh's W3 codec
with changes for speed (short lists inlined, blocks split, a pickle protocol
with bytes, a bulk merge), each relying on its private internals, hence
whoosh-reloaded is pinned exactly: run tests/test_index.py before a bump.
"""

from __future__ import annotations

import heapq
import itertools
import operator
import pickle
import struct
import warnings
import zlib
from array import array
from collections.abc import Iterable, Iterator
from itertools import accumulate
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from whoosh.codec.whoosh3 import (
        WHOOSH3_HEADER_MAGIC,
        W3Codec,
        W3FieldWriter,
        W3LeafMatcher,
        W3PostingsWriter,
        W3TermInfo,
    )
    from whoosh.filedb import filetables
    from whoosh.matching import Matcher
    from whoosh.reading import SegmentReader
    from whoosh.system import pack_ushort
    from whoosh.util.numeric import length_to_byte
    from whoosh.writing import OPTIMIZE, SegmentWriter

# Posting lists shorter than this live in the term table (see PostingsWriter).
INLINE_POSTINGS = 10
# Values and inlined postings are pickled with this protocol, the first with
# an opcode for bytes that every supported Python reads (Whoosh uses 2).
PICKLE_PROTOCOL = 5
# A posting list of one segment: document numbers, weights, values (maybe none).
Postings = tuple[list[int], list[float], list[bytes]]


class PostingsWriter(W3PostingsWriter):
    """Whoosh's postings writer with two changes to what it writes (and
    TermInfo, a third).

    A short posting list is kept in the term table instead of a block of its
    own in the postings file. OCR text has a long tail of words seen in a few
    documents each, so most terms of a segment are short lists, and writing
    (then merging, then reading) each as a separate block dominated building
    the index. Whoosh has this option (inlinelimit) but its writer calls a
    method that does not exist (set_inline for set_inlined), so it could
    never be turned on.

    A block keeps its documents and weights apart from its values (see
    SplitBlockMatcher): Whoosh pickles and compresses all three together, so
    ranking a word found in most documents decoded the positions of every
    occurrence, about half a second, for the weights alone.
    """

    # Whoosh's own attributes, declared for the type checker (its classes are untyped).
    _maxweight: float
    _terminfo: Any

    def start_postings(self, format_, terminfo: W3TermInfo) -> None:
        # The field writer hands every term a fresh W3TermInfo: this one
        # differs only in how it stores inlined postings.
        super().start_postings(format_, TermInfo())

    def add_many(self, ids: list[int], weights: list[float], values: list[bytes]) -> None:
        """Postings in bulk, as add_posting() each (without lengths, which this
        codec does not keep): ids ascending, after any already added; values
        empty for a format that has none."""
        limit, start = self._blocklimit, 0
        while start < len(ids):
            if len(self._ids) >= limit:
                self._write_block()
            end = start + limit - len(self._ids)
            chunk = weights[start:end]
            self._ids.extend(ids[start:end])
            self._weights.extend(chunk)
            self._maxweight = max(self._maxweight, max(chunk))
            self._values.extend(values[start:end])
            start = end

    def finish_postings(self) -> W3TermInfo:
        # Formats without per-posting values (ID fields) still need one
        # (empty) value each: merging copies them through an assertion.
        if self.written() or len(self) >= self._inlinelimit or len(self._values) not in (0, len(self._ids)):
            return super().finish_postings()
        terminfo, self._terminfo = self._terminfo, None
        terminfo.add_block(self)
        terminfo.set_inlined(self._ids, self._weights, self._values or [b""] * len(self._ids))
        return terminfo

    def _write_block(self, last: bool = False) -> None:
        if self._byteids:  # term vectors, which the schema does not store
            return super()._write_block(last)
        if not self._blockcount:
            self._postfile.write(WHOOSH3_HEADER_MAGIC)
        self._terminfo.add_block(self)
        ids = self._ids
        deltas = array("I", map(operator.sub, ids, itertools.chain((0,), ids)))
        head = self._packed(deltas.tobytes() + array("f", self._weights).tobytes())
        values = self._packed(pickle.dumps(tuple(self._values), PICKLE_PROTOCOL)) if self._values else b""
        info = pickle.dumps(
            (
                len(ids),
                ids[-1],
                self._maxweight,
                self._compression,
                length_to_byte(self._minlength),
                length_to_byte(self._maxlength),
            ),
            2,
        )
        postfile = self._postfile
        length = len(info) + _HEAD_SIZE.size + len(head) + len(values)
        postfile.write_int(-length if last else length)  # negative: the last block
        postfile.write(info)
        postfile.write(_HEAD_SIZE.pack(len(head)))
        postfile.write(head)
        postfile.write(values)
        self._blockcount += 1
        self._new_block()

    def _packed(self, data: bytes) -> bytes:
        return zlib.compress(data, self._compression) if self._compression else data


class TermInfo(W3TermInfo):
    """Pickles inlined postings with a protocol that has bytes: Whoosh's
    protocol 2 stores each value through a call to codecs.encode, which
    made reading them about ten times slower."""

    _inlined: Any  # Whoosh's, declared for the type checker

    def to_bytes(self) -> bytes:
        inlined = self._inlined
        if inlined is None:
            return super().to_bytes()
        self._inlined = ()  # (still inlined, and pickled in a few bytes)
        try:
            fixed = super().to_bytes()[: self._struct.size]
        finally:
            self._inlined = inlined
        return fixed + pickle.dumps(inlined, PICKLE_PROTOCOL)


_HEAD_SIZE = struct.Struct("<I")
_RECORD_LENGTHS = filetables._lengths  # (key, value) lengths before each record of a term table


class SplitBlockMatcher(W3LeafMatcher):
    """Reads the blocks PostingsWriter writes: after Whoosh's block info, the
    size of the head, the head (document number deltas and weights, as packed
    arrays) and the values (a pickled tuple, or nothing), each compressed on
    its own, so documents and weights are read without the values."""

    def _unpacked(self, data: bytes) -> bytes:
        return zlib.decompress(data) if self._compression else data

    def _head_size(self) -> int:
        return _HEAD_SIZE.unpack(self._postfile.get(self._dataoffset, _HEAD_SIZE.size))[0]

    def _read_data(self) -> None:
        size = self._head_size()
        head = self._unpacked(self._postfile.get(self._dataoffset + _HEAD_SIZE.size, size))
        count = self._blocklength
        deltas, weights = array("I"), array("f")
        deltas.frombytes(head[: 4 * count])
        weights.frombytes(head[4 * count :])
        self._data = (deltas, weights)

    def _read_ids(self) -> None:
        if self._data is None:
            self._read_data()
        self._ids = list(accumulate(self._data[0]))

    def _read_weights(self) -> None:
        if self._data is None:
            self._read_data()
        self._weights = self._data[1]

    def _read_values(self) -> None:
        if self._fixedsize == 0:
            self._values = (None,) * self._blocklength
            return
        start = self._dataoffset + _HEAD_SIZE.size + self._head_size()
        size = self._nextoffset - start
        self._values = pickle.loads(self._unpacked(self._postfile.get(start, size))) if size else ()


def read_all(m: SplitBlockMatcher, values: bool) -> Postings:
    """Every posting of a list, block by block."""
    ids: list[int] = []
    weights: list[float] = []
    vals: list[bytes] = []
    while True:
        m._read_ids()
        ids.extend(m._ids)
        m._read_weights()
        weights.extend(m._weights)
        if values:
            m._read_values()
            vals.extend(m._values)
        if m._lastblock:
            return ids, weights, vals
        m._goto(m._nextoffset)


class FieldWriter(W3FieldWriter):
    """Writes postings a term at a time. Whoosh's add_postings() takes a
    segment's sorted postings through several calls each, and a term's
    bookkeeping (a term info, a block buffer, their statistics) costs more
    than its postings when, as in OCR text, most terms are in a few documents."""

    def add_postings(self, schema, lengths, items) -> None:
        """What a writer's pool holds at a commit: (field, term, docnum,
        weight, value) in order. Lengths are not kept (see make_codec)."""
        self.write_terms(schema, _pooled_terms(items))

    def write_terms(self, schema, terms: Iterable[tuple[str, bytes, Postings]]) -> None:
        """(field, term, postings) in order, fields and terms alike."""
        current = None
        for fieldname, btext, postings in terms:
            if fieldname != current:
                if current is not None:
                    self.finish_field()
                self.start_field(fieldname, schema[fieldname])
                current = fieldname
            self.write_term(btext, *postings)
        if current is not None:
            self.finish_field()

    def write_term(self, btext: bytes, ids: list[int], weights: list[float], values: list[bytes]) -> None:
        """A term of the current field: its postings in document order. A short
        list goes straight into the term table, with what PostingsWriter would
        have put there."""
        if self._format.fixed_value_size() == 0:
            values = []  # (the format has none: a pool's postings carry empty ones)
        inlinelimit = self._postwriter._inlinelimit
        if len(ids) >= inlinelimit or len(values) not in (0, len(ids)):
            self.start_term(btext)
            self._postwriter.add_many(ids, weights, values)
            self.finish_term()
            return
        stored = array("f", weights)  # as the block buffer rounds them
        info = TermInfo()
        info._weight, info._df = 0 + sum(stored), len(ids)
        info._maxweight = max(0, max(weights))
        info._minid, info._maxid = ids[0], ids[-1]
        info.set_inlined(ids, stored, values or [b""] * len(ids))
        self._tindex.add(pack_ushort(self._fieldid) + btext, info.to_bytes())


def _pooled_terms(items: Iterable[tuple[str, bytes, int, float, bytes]]) -> Iterator[tuple[str, bytes, Postings]]:
    for (fieldname, btext), group in itertools.groupby(items, key=operator.itemgetter(0, 1)):
        postings = list(group)
        yield fieldname, btext, ([p[2] for p in postings], [p[3] for p in postings], [p[4] for p in postings])


class Codec(W3Codec):
    def field_writer(self, storage, segment) -> FieldWriter:
        return FieldWriter(self, storage, segment)

    def postings_writer(self, dbfile, byteids: bool = False) -> W3PostingsWriter:
        return PostingsWriter(
            dbfile,
            blocklimit=self._blocklimit,
            byteids=byteids,
            compression=self._compression,
            inlinelimit=self._inlinelimit,
        )

    def postings_reader(self, dbfile, terminfo, format_, term=None, scorer=None) -> Matcher:
        if terminfo.is_inlined():
            return super().postings_reader(dbfile, terminfo, format_, term=term, scorer=scorer)
        offset, length = terminfo.extent()
        return SplitBlockMatcher(dbfile, offset, length, format_, term=term, scorer=scorer)


def make_codec() -> Codec:
    codec = Codec(inlinelimit=INLINE_POSTINGS)
    # Per-posting document-length lookups take ~15% of a build; they only
    # tighten the score bounds used to skip blocks (0 stays a valid bound).
    codec.length_stats = False
    return codec


# -- merging -------------------------------------------------------------------
#
# Whoosh merges segments by feeding every posting through its writer's sorting
# pool and writing them out again one by one, some 30 µs a posting: the final
# merge of a 100,000-document backlog took longer than indexing it. A
# segment's term table is already sorted, so merge_all() merges the tables in
# order and concatenates each term's posting lists, document numbers shifted
# and deleted documents left out, a block at a time.


class NotMergeable(ValueError):
    """merge_all cannot merge these segments from another storage (Whoosh's own merge can, in place)."""


def merge_all(writer: SegmentWriter, segments: list, source=None) -> list:
    """A Whoosh merge type (commit(mergetype=...)) that merges every segment
    into the writer's new one, as Whoosh's OPTIMIZE does. ``source``: the
    storage the segments are in, when it is not the writer's (see compact)."""
    if (
        writer.docnum
        or not isinstance(writer.codec, Codec)
        or not isinstance(writer.fieldwriter, FieldWriter)
        or not all(isinstance(segment.codec(), Codec) for segment in segments)
    ):
        if source is not None:
            raise NotMergeable("only this codec's segments are merged from another storage")
        return OPTIMIZE(writer, segments)  # (new documents to merge in too, or another codec's segments)
    readers = [SegmentReader(source or writer.storage, writer.schema, segment) for segment in segments]
    try:
        fieldnames = set(writer.schema.names()) | {name for r in readers for name in r.indexed_field_names()}
        docmaps = []
        for reader in readers:
            start = writer.docnum
            # {old: new docnum} when the segment has deletions (None: old + start)
            docmaps.append((start, writer.write_per_doc(fieldnames, reader)))
        writer.fieldwriter.write_terms(writer.schema, _merged_terms(writer.schema, readers, docmaps))
    finally:
        for reader in readers:
            reader.close()
    writer._added = True
    return []


def expunge_deleted(writer: SegmentWriter, segments: list) -> list:
    """A Whoosh merge type that rewrites every segment holding deleted documents
    and leaves the others as they are.

    Whoosh only marks a deleted document in the table of contents: its stored
    fields and postings (text, name, MRN) stay in the segment's files until a
    merge happens to rewrite that segment. A destroyed document must not stay
    readable there, so every commit that deletes rewrites what held it.
    """
    doomed = [segment for segment in segments if segment.has_deletions()]
    kept = [segment for segment in segments if not segment.has_deletions()]
    live = [segment for segment in doomed if segment.doc_count()]
    if live:
        merge_all(writer, live)
    return kept


def remnants(segments: list) -> int:
    """How many deleted documents the segments still hold (their text included)."""
    return sum(segment.deleted_count() for segment in segments)


def _merged_terms(
    schema, readers: list[SegmentReader], docmaps: list[tuple[int, dict[int, int] | None]]
) -> Iterator[tuple[str, bytes, Postings]]:
    """Every term of the segments, in order, with its postings from all of them, renumbered."""
    tables = [_term_table(n, reader) for n, reader in enumerate(readers)]
    for (fieldname, btext), group in itertools.groupby(heapq.merge(*tables), key=operator.itemgetter(0)):
        if fieldname not in schema:
            continue
        fmt = schema[fieldname].format
        values = fmt.fixed_value_size() != 0
        lists = [_renumbered(_segment_postings(readers[n], info, fmt, values), *docmaps[n]) for _, n, info in group]
        ids, weights, vals = (list(itertools.chain.from_iterable(column)) for column in zip(*lists, strict=True))
        if ids:  # (else only in deleted documents: gone, as in Whoosh's merge)
            yield fieldname, btext, (ids, weights, vals)


def _term_table(n: int, reader: SegmentReader) -> Iterator[tuple[tuple[str, bytes], int, W3TermInfo]]:
    """The segment's ((field, term), n, term info) in order (n tells segments
    apart). The table's records lie one after another from its start: they
    are read in one pass of the buffered file, not by a seek and a read each
    as the table's own items() does."""
    terms = reader._terms
    table, decoded = terms._tindex, terms._keydecoder
    read, header, position = terms._dbfile.file.read, _RECORD_LENGTHS.size, table.startofdata
    terms._dbfile.file.seek(position)
    while position < table.endofdata:
        keylength, valuelength = _RECORD_LENGTHS.unpack(read(header))
        key, value = read(keylength), read(valuelength)
        position += header + keylength + valuelength
        yield decoded(key), n, W3TermInfo.from_bytes(value)


def _segment_postings(reader: SegmentReader, info: W3TermInfo, fmt, values: bool) -> Postings:
    if info.is_inlined():
        ids, weights, vals = info.inlined_postings()
        return list(ids), list(weights), list(vals) if values else []
    terms = reader._terms
    return read_all(terms._codec.postings_reader(terms._postfile, info, fmt), values)


def _renumbered(postings: Postings, start: int, docmap: dict[int, int] | None) -> Postings:
    ids, weights, values = postings
    if docmap is None:
        return [d + start for d in ids], weights, values
    keep = [i for i, d in enumerate(ids) if d in docmap]
    return [docmap[ids[i]] for i in keep], [weights[i] for i in keep], [values[i] for i in keep] if values else []
