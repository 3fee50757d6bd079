"""Completeness detection and ignore rules, without a daemon."""

from pathlib import Path, PurePath

import pytest

from pipeline.core.config import DEFAULT_IGNORE
from watch_folders.tracker import QuietTracker, is_ignored


class FakeStat:
    def __init__(self):
        self.files = {}

    def __call__(self, path):
        if path not in self.files:
            raise FileNotFoundError(path)
        size, mtime = self.files[path]
        return type("St", (), {"st_size": size, "st_mtime_ns": mtime})()


def test_file_is_due_only_after_the_quiet_period_unchanged():
    stat, tracker, path = FakeStat(), QuietTracker(2.0), Path("/drop/a.pdf")
    stat.files[path] = (100, 1)
    tracker.touch(path, "folder")
    assert tracker.due(0.0, stat) == []
    assert tracker.due(1.9, stat) == []
    stat.files[path] = (200, 2)  # still growing
    assert tracker.due(2.5, stat) == []
    assert tracker.due(4.0, stat) == []
    assert tracker.due(4.5, stat) == [(path, "folder")]
    assert path not in tracker


def test_vanished_file_is_dropped():
    stat, tracker, path = FakeStat(), QuietTracker(0), Path("/drop/a.pdf")
    tracker.touch(path)
    assert tracker.due(0, stat) == [] and len(tracker) == 0


def test_a_new_event_restarts_the_quiet_period():
    stat, tracker, path = FakeStat(), QuietTracker(1.0), Path("/drop/a.pdf")
    stat.files[path] = (10, 1)
    tracker.touch(path)
    tracker.due(0, stat)
    tracker.touch(path)
    assert tracker.due(1.5, stat) == []
    assert tracker.due(2.6, stat) == [(path, None)]


@pytest.mark.parametrize(
    "name, ignored",
    [
        ("scan.pdf", False),
        ("sub/dir/scan.pdf", False),
        ("scan.tmp", True),
        ("scan.pdf.part", True),
        ("~$scan.pdf", True),
        (".scan.pdf", True),
        ("Thumbs.db", True),
        ("thumbs.db", True),
        (".DS_Store", True),
        ("@eaDir/scan.pdf", True),
        ("sub/.sync/scan.pdf", True),
    ],
)
def test_bookkeeping_names_are_ignored(name, ignored):
    root = PurePath("/drop")
    assert is_ignored(root / name, root, DEFAULT_IGNORE) is ignored
