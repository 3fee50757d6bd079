"""Expunging deleted documents rewrites their segments beside the index, without holding its writer lock."""

from __future__ import annotations

from pathlib import Path

import indexers.whoosh.codec as codec_module
import indexers.whoosh.compact as compact_module
from indexers.whoosh.facade import WhooshIndex
from tests.unit.test_index import FAST, ids, record


def test_the_rewrite_leaves_the_index_to_other_writers_and_starts_again_after_their_deletions(
    tmp_path: Path, monkeypatch
) -> None:
    index_dir = tmp_path / "index"
    ours, theirs = WhooshIndex(index_dir, FAST), WhooshIndex(index_dir, FAST)
    ours.add([record(f"d{n:02d}", content=f"visit number{n}") for n in range(30)])
    real = compact_module.merge_all
    rewrites: list[int] = []

    def meanwhile(writer, segments, source=None):
        rewrites.append(len(segments))
        if len(rewrites) == 1:
            # Another process writes while ours rewrites: it would wait 0.3 s for the lock, then fail.
            theirs.add([record("new", content="filed during the rewrite")])
            theirs.delete(["d05"])
        return real(writer, segments, source=source)

    monkeypatch.setattr(compact_module, "merge_all", meanwhile)
    monkeypatch.setattr(codec_module, "merge_all", meanwhile)  # (had the rewrite been done under the lock)
    ours.delete(["d01"])
    assert len(rewrites) >= 2  # ours, and theirs over the deletion it made meanwhile
    assert ours.remnants() == 0 and ours.count() == 29
    assert ids(ours.search("filed")) == ["new"]
    assert not set(ids(ours.search("visit", limit=100))) & {"d01", "d05"}
    assert not list(tmp_path.glob(".expunge-*"))  # the work folders are gone


def test_a_replacing_add_leaves_the_rewrite_to_a_later_expunge(tmp_path: Path) -> None:
    # Filing the review queue replaces one document at a time: each must not rewrite a large segment.
    index = WhooshIndex(tmp_path / "index", FAST)
    index.add([record(f"d{n:02d}", content=f"visit number{n}") for n in range(10)])
    index.add([record("d03", content="visit number3 filed after review")])
    assert index.remnants() == 1
    index.expunge()
    assert index.remnants() == 0 and index.count() == 10
