"""Expunging deleted documents from the index files without holding the index for the time it takes.

Whoosh deletes a document by marking it in the table of contents; its stored
fields and postings stay in its segment's files until the segment is rewritten.
A destroyed document must not stay readable there, so the segments that hold
deleted documents are rewritten after every commit that deletes (codec.merge_all
into a new segment, the deleted ones left out).

That rewrite costs as much as the segment is large (seconds for thousands of
documents), and the writer lock must not be held that long: the daemon's next
commit would wait for it, then fail. So the new segment is written in a private
folder beside the index, without the lock, from the old segments' files (which
never change), and swapped in under the lock in a moment: its files are moved
into the index folder and a new table of contents lists it instead of the old
segments, whose files are then removed. When a segment being rewritten got more
deletions meanwhile, the swap is called off and the rewrite starts again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from indexers.whoosh.codec import Codec, make_codec, merge_all

with warnings.catch_warnings():
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from whoosh import index as whoosh_index
    from whoosh.codec.base import Segment
    from whoosh.index import TOC, clean_files
    from whoosh.writing import SegmentWriter

# Rewrites started again when deletions keep arriving, before one is done under the lock.
ROUNDS = 3


def doomed_segments(ix: whoosh_index.Index) -> list[Segment]:
    """The segments of the last commit that hold deleted documents."""
    return [segment for segment in ix._segments() if segment.has_deletions()]


def can_compact(segments: list[Segment]) -> bool:
    """Whether the segments can be rewritten beside the index (segments of this codec only)."""
    return all(isinstance(segment.codec(), Codec) for segment in segments)


def compact(
    ix: whoosh_index.Index, doomed: list[Segment], beside: Path, locked: Callable[[], AbstractContextManager]
) -> bool:
    """Rewrite ``doomed`` without their deleted documents in a folder in ``beside`` and swap the
    result in under ``locked``; False when one of them changed meanwhile (nothing swapped in)."""
    with _work_folder(beside) as folder:
        try:
            fresh = _rewritten(ix, doomed, folder)
        except FileNotFoundError:
            return False  # another writer replaced a segment meanwhile (and removed its files)
        with locked():
            return _swap_in(ix, doomed, fresh, folder)


class _work_folder(AbstractContextManager):
    def __init__(self, beside: Path) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=".expunge-", dir=beside))

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _rewritten(ix: whoosh_index.Index, doomed: list[Segment], folder: Path) -> Segment | None:
    """One segment holding the live documents of ``doomed``, written in ``folder``; None if they have none."""
    live = [segment for segment in doomed if segment.doc_count()]
    if not live:
        return None
    scratch = whoosh_index.create_in(str(folder), ix.schema)
    writer = SegmentWriter(scratch, _lk=False, codec=make_codec(), compound=False)
    try:
        merge_all(writer, live, source=ix.storage)
        return writer._finalize_segment()
    finally:
        writer._finish()


def _swap_in(ix: whoosh_index.Index, doomed: list[Segment], fresh: Segment | None, folder: Path) -> bool:
    toc = ix._read_toc()
    current = {segment.segment_id(): segment for segment in toc.segments}
    for segment in doomed:
        now = current.get(segment.segment_id())
        if now is None or now.deleted_count() != segment.deleted_count():
            return False
    gone = {segment.segment_id() for segment in doomed}
    segments = [segment for segment in toc.segments if segment.segment_id() not in gone]
    if fresh is not None:
        for name in _files_of(folder, fresh):
            os.rename(folder / name, Path(ix.storage.folder) / name)
        segments.append(fresh)
    generation = toc.generation + 1
    TOC(toc.schema, segments, generation).write(ix.storage, ix.indexname)
    clean_files(ix.storage, ix.indexname, generation, segments)
    return True


def _files_of(folder: Path, segment: Segment) -> Iterator[str]:
    prefix = f"{segment.segment_id()}."
    return (name for name in os.listdir(folder) if name.startswith(prefix))
