"""The run journal of backlog runs: what became of each input, durable at every step.

One SQLite file in the data root. An input moves through
``started`` -> ``filing`` (its document paths are known, nothing written yet)
-> ``archived`` (its files are written, the index may not have them) -> ``done``;
failures and duplicates go straight to ``done``. After a crash, ``filing`` and
``archived`` inputs are finished from the archive or cleared and taken again; all
others are taken again from the start, and ``done`` ones are never touched.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.core import sqlite
from pipeline.core.errors import MedarchiveError
from pipeline.core.models import OUTCOME_STATUSES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    root TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    started REAL NOT NULL,
    ended REAL
);
CREATE TABLE IF NOT EXISTS inputs (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    status TEXT,
    planned TEXT,
    doc_ids TEXT,
    path TEXT,
    reason TEXT,
    pages INTEGER NOT NULL DEFAULT 0,
    ocr_seconds REAL NOT NULL DEFAULT 0,
    crashes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
"""


class JournalError(MedarchiveError):
    pass


@dataclass(frozen=True)
class Run:
    run_id: str
    root: Path
    started_at: str
    finished_at: str | None


@dataclass(frozen=True)
class Entry:
    """One input's journal row."""

    name: str
    state: str
    status: str | None
    planned: list[str]
    doc_ids: list[str]
    path: str | None
    reason: str | None
    pages: int
    ocr_seconds: float


@dataclass(frozen=True)
class Result:
    """What became of one input, as the journal keeps it."""

    status: str
    doc_ids: list[str]
    path: str | None
    reason: str | None
    pages: int
    ocr_seconds: float


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Journal:
    def __init__(self, path: Path) -> None:
        # FULL: a state the journal reports must survive a power cut, or a resumed run
        # could miss files it wrote. One fsync per input step is nothing next to OCR.
        self._db = sqlite.connect(path)
        self._db.executescript(_SCHEMA)
        if "crashes" not in {row[1] for row in self._db.execute("PRAGMA table_info(inputs)")}:
            self._db.execute("ALTER TABLE inputs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self._db.close()

    # runs

    def new_run(self, root: Path) -> Run:
        run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        while self._row("SELECT 1 FROM runs WHERE run_id = ?", run_id):
            time.sleep(1)
            run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self._db.execute("INSERT INTO runs VALUES (?, ?, ?, NULL)", (run_id, str(root), _now()))
        return self.run(run_id)

    def run(self, run_id: str) -> Run:
        row = self._row("SELECT run_id, root, started_at, finished_at FROM runs WHERE run_id = ?", run_id)
        if row is None:
            raise JournalError(f"no backlog run {run_id!r} in this data root; `medarchive backlog --runs` lists them")
        return Run(row[0], Path(row[1]), row[2], row[3])

    def unfinished_run(self, root: Path) -> Run | None:
        """The latest run over ``root`` that did not finish: re-running the same command resumes it."""
        row = self._row(
            "SELECT run_id FROM runs WHERE root = ? AND finished_at IS NULL ORDER BY run_id DESC LIMIT 1", str(root)
        )
        return self.run(row[0]) if row else None

    def runs(self) -> list[Run]:
        rows = self._db.execute("SELECT run_id, root, started_at, finished_at FROM runs ORDER BY run_id").fetchall()
        return [Run(r[0], Path(r[1]), r[2], r[3]) for r in rows]

    def finish(self, run_id: str) -> None:
        self._db.execute("UPDATE runs SET finished_at = ? WHERE run_id = ?", (_now(), run_id))

    def begin_session(self, run_id: str) -> int:
        return int(self._db.execute("INSERT INTO sessions VALUES (?, ?, NULL)", (run_id, time.time())).lastrowid or 0)

    def end_session(self, session: int) -> None:
        self._db.execute("UPDATE sessions SET ended = ? WHERE rowid = ?", (time.time(), session))

    def wall_seconds(self, run_id: str) -> float:
        """Time spent running, over every session (a killed session counts to its last step)."""
        row = self._totals("SELECT SUM(COALESCE(ended, started) - started) FROM sessions WHERE run_id = ?", run_id)
        return float(row[0] or 0)

    # inputs

    def state(self, run_id: str, name: str) -> str | None:
        row = self._row("SELECT state FROM inputs WHERE run_id = ? AND name = ?", run_id, name)
        return row[0] if row else None

    def started(self, run_id: str, name: str) -> None:
        self._db.execute(
            "INSERT INTO inputs (run_id, name, state) VALUES (?, ?, 'started') "
            "ON CONFLICT (run_id, name) DO UPDATE SET state = 'started'",
            (run_id, name),
        )

    def filing(self, run_id: str, name: str, planned: list[str], pages: int) -> None:
        self._set(run_id, name, "filing", planned=json.dumps(planned), pages=pages)

    def archived(self, run_id: str, name: str, result: Result) -> None:
        self._set(run_id, name, "archived", **_columns(result))

    def done(self, run_id: str, name: str, result: Result) -> None:
        self._set(run_id, name, "done", **_columns(result))

    def count_crashes(self, run_id: str) -> None:
        """A new session begins: inputs still only started were in flight when the last one died."""
        self._db.execute(
            "UPDATE inputs SET crashes = crashes + 1 WHERE run_id = ? AND state IN ('started', 'filing')", (run_id,)
        )

    def crashed(self, run_id: str, times: int) -> list[str]:
        """Inputs that were in flight when a session died at least ``times`` times, not yet done."""
        rows = self._db.execute(
            "SELECT name FROM inputs WHERE run_id = ? AND state = 'started' AND crashes >= ? ORDER BY name",
            (run_id, times),
        )
        return [row[0] for row in rows]

    def mark_done(self, run_id: str, names: Iterable[str]) -> None:
        with self._transaction():
            self._db.executemany(
                "UPDATE inputs SET state = 'done' WHERE run_id = ? AND name = ?", [(run_id, n) for n in names]
            )

    def entries(self, run_id: str, states: tuple[str, ...]) -> Iterator[Entry]:
        marks = ", ".join("?" * len(states))
        cursor = self._db.execute(
            "SELECT name, state, status, planned, doc_ids, path, reason, pages, ocr_seconds FROM inputs "
            f"WHERE run_id = ? AND state IN ({marks}) ORDER BY name",
            (run_id, *states),
        )
        for row in cursor:
            yield Entry(row[0], row[1], row[2], json.loads(row[3] or "[]"), json.loads(row[4] or "[]"), *row[5:])

    def counts(self, run_id: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT status, COUNT(*) FROM inputs WHERE run_id = ? AND state = 'done' GROUP BY status", (run_id,)
        )
        found = dict(rows.fetchall())
        return {status: found.get(status, 0) for status in OUTCOME_STATUSES}

    def pages_done(self, run_id: str) -> tuple[int, float]:
        row = self._totals(
            "SELECT SUM(pages), SUM(ocr_seconds) FROM inputs WHERE run_id = ? AND state = 'done'", run_id
        )
        return int(row[0] or 0), float(row[1] or 0)

    def _set(self, run_id: str, name: str, state: str, **columns: object) -> None:
        assignments = ", ".join(f"{column} = ?" for column in ("state", *columns))
        self._db.execute(
            f"UPDATE inputs SET {assignments} WHERE run_id = ? AND name = ?",
            (state, *columns.values(), run_id, name),
        )

    def _row(self, sql: str, *args: object) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._db.execute(sql, args).fetchone()
        return row

    def _totals(self, sql: str, *args: object) -> tuple[Any, ...]:
        """An aggregate query's row (it always has one)."""
        row: tuple[Any, ...] = self._db.execute(sql, args).fetchone()
        return row

    def _transaction(self):
        return sqlite.immediate(self._db)


def _columns(result: Result) -> dict[str, object]:
    return {
        "status": result.status,
        "doc_ids": json.dumps(result.doc_ids),
        "path": result.path,
        "reason": result.reason,
        "pages": result.pages,
        "ocr_seconds": result.ocr_seconds,
    }
