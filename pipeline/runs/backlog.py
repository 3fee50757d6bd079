"""Overnight runs over a tree of old charts: the pipeline, driven by a run journal.

The coordinator walks the tree lazily, feeds the pipeline's bounded window of pages,
and is the one writer of the archive, the index (batch commits, merged at the end)
and the journal. Inputs are read, never modified. A run stopped in any way resumes
from its journal: done inputs are skipped, half-filed ones finished or redone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from indexers.base import Index, IndexRecord
from pipeline.archive.audit import AuditLog
from pipeline.archive.sidecar import Sidecar, read_sidecar
from pipeline.archive.store import record_from_sidecar, sidecar_path
from pipeline.core.config import Config
from pipeline.core.fsutil import remove_stale_temps
from pipeline.ehr.enqueue import enqueue_filed
from pipeline.runs.journal import Entry, Journal, Result, Run
from pipeline.runs.progress import Tally
from pipeline.runs.run import InputFile, Outcome, Pipeline, killed_too_often, status_of
from pipeline.runs.walk import Census, walk

log = logging.getLogger("medarchive")
_TICK = 0.5
_SESSION_MARK_SECONDS = 30


@dataclass(frozen=True)
class Backlog:
    """What a run works over: the tree, the files it takes, and what to leave out of it."""

    root: Path
    extensions: frozenset[str]
    skip: frozenset[Path]

    @classmethod
    def of(cls, config: Config, root: Path) -> Backlog:
        extensions = frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in config.backlog.extensions)
        return cls(root, extensions, frozenset({config.root}))

    def files(self) -> Iterator[Path]:
        return walk(self.root, self.extensions, self.skip)


def _result(outcome: Outcome) -> Result:
    return Result(outcome.status, outcome.doc_ids, outcome.path, outcome.reason, outcome.pages, outcome.ocr_seconds)


def _result_from_sidecars(sidecars: list[Sidecar], pages: int) -> Result:
    status, reason = status_of(sidecars)
    return Result(status, [s.doc_id for s in sidecars], sidecars[0].path, reason, pages, 0.0)


def _written(config: Config, planned: list[str]) -> list[Sidecar] | None:
    """The sidecars of every planned document, or None when any is missing (a write cut short)."""
    sidecars = []
    for relative in planned:
        path = sidecar_path(config.root / relative)
        if not path.exists():
            return None
        sidecars.append(read_sidecar(path))
    return sidecars


def _clear(config: Config, planned: list[str]) -> None:
    """Remove what an interrupted filing wrote, half-written temp files too; it was
    never indexed nor reported."""
    for relative in planned:
        pdf = config.root / relative
        for path in (sidecar_path(pdf), pdf):
            path.unlink(missing_ok=True)
            remove_stale_temps(path)


def recover(config: Config, index: Index, journal: Journal, run: Run) -> int:
    """Finish the inputs a stopped session left between filing and done; return how many were finished."""
    finished: list[tuple[Entry, Result]] = []
    written: list[tuple[Entry, Sidecar]] = []
    records: list[IndexRecord] = []
    for entry in list(journal.entries(run.run_id, ("filing", "archived"))):
        sidecars = _written(config, entry.planned)
        if sidecars is None:
            _clear(config, entry.planned)
            journal.started(run.run_id, entry.name)
            continue
        records.extend(record_from_sidecar(s) for s in sidecars)
        written.extend((entry, s) for s in sidecars)
        finished.append((entry, _result_from_sidecars(sidecars, entry.pages)))
    if records:
        index.add(records, merge=False)
        enqueue_filed(config, [s for _, s in written], index=index)
    for entry, result in finished:
        journal.done(run.run_id, entry.name, result)
    return len(finished)


class BacklogRunner:
    """Drives one session of a run; ``stop`` asks it to finish the pages in flight and return."""

    def __init__(
        self,
        config: Config,
        index: Index,
        executor: Executor,
        journal: Journal,
        run: Run,
        *,
        audit: AuditLog | None = None,
        user: str = "",
        pages_as_bytes: bool = False,
    ) -> None:
        self.config, self.index, self.journal, self.run = config, index, journal, run
        self.backlog = Backlog.of(config, run.root)
        self.stop = threading.Event()
        self.tally = Tally()
        self.pipeline = Pipeline(
            config,
            index,
            executor,
            on_outcome=self._outcome,
            on_committed=self._committed,
            audit=audit,
            user=user,
            on_filing=self._filing,
            merge=False,
            pages_as_bytes=pages_as_bytes,
        )

    def start_census(self) -> Census:
        """Count the tree's files and pages beside the run, for totals and an ETA."""

        def found(files: int, pages: int) -> None:
            self.tally.files_total, self.tally.pages_total = files, pages

        census = Census(self.backlog.root, self.backlog.extensions, self.backlog.skip, found)
        census.start()
        return census

    def execute(self, refresh=lambda: None) -> bool:
        """Run until the tree is done (True) or a stop was asked for (False)."""
        session = self.journal.begin_session(self.run.run_id)
        try:
            self.journal.count_crashes(self.run.run_id)
            recovered = recover(self.config, self.index, self.journal, self.run)
            if recovered:
                log.info("backlog %s: finished %d inputs a stopped session had filed", self.run.run_id, recovered)
            self._set_aside_crashed()
            self._count_earlier()
            self.pipeline.feed(self._inputs())
            self._drive(session, refresh)
            self.pipeline.flush()
            if self.stop.is_set():
                return False
            self.index.optimize()
            self.journal.finish(self.run.run_id)
            return True
        finally:
            self.pipeline.close()
            self.journal.end_session(session)

    def _set_aside_crashed(self) -> None:
        """Inputs in flight at every one of the last sessions' deaths are not tried again."""
        times = self.config.backlog.set_aside_after_crashes
        names = self.journal.crashed(self.run.run_id, times)
        for name in names:
            self.pipeline.set_aside(
                InputFile(self.run.root / name, name=name), killed_too_often("the backlog run", times)
            )
        if names:
            self.pipeline.flush()

    def _drive(self, session: int, refresh) -> None:
        last_commit = last_mark = time.monotonic()
        feeding = True
        while self.pipeline.step(timeout=_TICK):
            if feeding and self.stop.is_set():
                self.pipeline.stop_feeding()
                feeding = False
            now = time.monotonic()
            if now - last_commit >= self.config.backlog.commit_seconds:
                self.pipeline.flush()
                last_commit = now
            if now - last_mark >= _SESSION_MARK_SECONDS:
                self.journal.end_session(session)  # a killed session still counts to here
                last_mark = now
            refresh()

    def _count_earlier(self) -> None:
        counts = self.journal.counts(self.run.run_id)
        self.tally.counts.update(counts)
        self.tally.files_done = sum(counts.values())
        self.tally.pages_done = self.journal.pages_done(self.run.run_id)[0]

    def _inputs(self) -> Iterator[InputFile]:
        for path in self.backlog.files():
            name = path.relative_to(self.run.root).as_posix()
            if self.journal.state(self.run.run_id, name) == "done":
                continue
            self.journal.started(self.run.run_id, name)
            yield InputFile(path, name=name)

    def _filing(self, source: InputFile, pdf_paths: list[Path], pages: int) -> None:
        planned = [p.relative_to(self.config.root).as_posix() for p in pdf_paths]
        self.journal.filing(self.run.run_id, source.name, planned, pages)

    def _outcome(self, outcome: Outcome) -> None:
        result = _result(outcome)
        if outcome.status in ("filed", "review"):
            self.journal.archived(self.run.run_id, outcome.source.name, result)
        else:
            self.journal.done(self.run.run_id, outcome.source.name, result)
        self.tally.add(outcome.status, outcome.pages)

    def _committed(self, outcomes: list[Outcome]) -> None:
        self.journal.mark_done(self.run.run_id, [o.source.name for o in outcomes if o.status in ("filed", "review")])


def report(journal: Journal, run: Run) -> dict:
    """The run's summary: counts, pages, time, throughput, and every input that needs a person."""
    counts = journal.counts(run.run_id)
    pages, ocr_seconds = journal.pages_done(run.run_id)
    wall = journal.wall_seconds(run.run_id)
    attention: dict[str, list[dict[str, object]]] = {"failed": [], "review": []}
    for entry in journal.entries(run.run_id, ("done",)):
        if entry.status in attention:
            attention[entry.status].append(
                {"file": entry.name, "reason": entry.reason, "path": entry.path, "doc_ids": entry.doc_ids}
            )
    return {
        "run_id": run.run_id,
        "root": str(run.root),
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "complete": run.finished_at is not None,
        "files": sum(counts.values()),
        "counts": counts,
        "pages": pages,
        "wall_seconds": round(wall, 1),
        "pages_per_minute": round(pages * 60 / wall, 1) if wall else None,
        "ocr_core_seconds": round(ocr_seconds, 1),
        **attention,
    }
