"""The project's SQLite files (run journal, patient index, EHR outbox): opened the same way.

Private from the first byte (SQLite gives its -wal and -shm files the database's mode),
in WAL mode so readers never wait for the writer, and durable at each commit unless
the caller knows a lost commit only causes harmless repeats.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.core.fsutil import FILE_MODE, ensure_dir


def connect(path: Path, *, durable: bool = True, timeout: float = 30) -> sqlite3.Connection:
    """An autocommit connection (transactions are explicit) usable from several threads."""
    ensure_dir(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE))
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    return db


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic step; BEGIN IMMEDIATE takes the write lock first, so writers queue
    instead of failing half-way with a deadlock."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
