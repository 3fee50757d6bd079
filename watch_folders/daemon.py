"""`medarchive watch`: take every file dropped into the drop folders exactly once.

Events (native or polled) and periodic sweeps only nominate candidates; a file is
claimed when it has been quiet for the quiet period. Claimed files live in
processing/ until their outcome (archive, review or failed copy) and the index
commit are durable; a restart after any crash processes whatever is still there,
and filing is idempotent by the input's SHA-256.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from indexers.base import Index
from pipeline.archive.audit import AuditLog, os_user
from pipeline.clinic.schedule import maybe_prepare
from pipeline.core.clock import today_local
from pipeline.core.config import Config, DropFolder
from pipeline.core.errors import ConfigError, MedarchiveError
from pipeline.core.locks import DaemonLock
from pipeline.ehr.listener import start_listener
from pipeline.ehr.sender import start_sender
from pipeline.identify.training import maybe_retrain
from pipeline.records.reconcile import reconcile_index
from pipeline.requests.service import RequestDesk
from pipeline.runs.run import Outcome, Pipeline, killed_too_often, make_executor
from watch_folders import activity
from watch_folders.claims import (
    claim,
    mark_in_flight,
    pending_claims,
    purge_processed,
    release,
)
from watch_folders.tracker import QuietTracker, is_ignored

log = logging.getLogger("medarchive.watch")
_TICK = 0.25


class _Nominator(FileSystemEventHandler):
    """Turns file events in one drop folder into candidates for the tracker."""

    def __init__(self, daemon: Daemon, folder: DropFolder) -> None:
        self.daemon = daemon
        self.folder = folder

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        target = getattr(event, "dest_path", "") or event.src_path
        self.daemon.nominate(Path(os.fsdecode(target)), self.folder)


class Daemon:
    def __init__(
        self, config: Config, index: Index, executor_factory: Callable[[Config], ProcessPoolExecutor] = make_executor
    ) -> None:
        self.config = config
        self.index = index
        self.executor_factory = executor_factory
        self.tracker = QuietTracker(config.watch.quiet_seconds)
        self.folders = config.drop_folders
        self._told_unsupported: set[Path] = set()
        self._stop = threading.Event()
        self._observers: list = []
        self._background: dict[str, threading.Thread] = {}
        self._reminded_on: date | None = None

    def request_stop(self, *_args) -> None:
        self._stop.set()

    def nominate(self, path: Path, folder: DropFolder) -> None:
        # A claim's rename is reported as a move out of the folder: not a candidate.
        if not path.is_relative_to(folder.path) or (not folder.recursive and path.parent != folder.path):
            return
        if is_ignored(path, folder.path, self.config.watch.ignore):
            return
        if path.suffix.lower() not in self.config.watch.extensions:
            if path not in self._told_unsupported:
                self._told_unsupported.add(path)
                log.info("left alone %s: not a %s file", path.name, "/".join(self.config.watch.extensions))
            return
        self.tracker.touch(path, folder)

    def sweep(self) -> None:
        """Nominate everything in the drop folders (startup, lost events, network shares)."""
        for folder in self.folders:
            if not folder.path.is_dir():
                continue
            walker = folder.path.rglob("*") if folder.recursive else folder.path.glob("*")
            for path in walker:
                if path.is_file() and path not in self.tracker:
                    self.nominate(path, folder)

    def _check_folders(self) -> None:
        for folder in self.folders:
            for inner in (self.config.processing_dir, self.config.archive_dir, self.config.failed_dir):
                if inner.is_relative_to(folder.path):
                    raise ConfigError(
                        f"watch.folders: {folder.path} contains the data root's {inner.name}/ folder; use a drop folder of its own"
                    )

    def run(self) -> int:
        self._check_folders()
        lock = DaemonLock(activity.lock_path(self.config))
        lock.acquire()
        sender = listener = None
        try:
            for folder in self.folders:
                folder.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            sender = start_sender(self.config, self._stop)  # delivers the EHR outbox until stop
            if self.config.hl7_listener.enabled:  # ADT from registration: patient updates and merges
                listener = start_listener(self.config, self._stop)
            with self.executor_factory(self.config) as executor:
                pipeline = Pipeline(
                    self.config,
                    self.index,
                    executor,
                    on_committed=self._committed,
                    audit=AuditLog.for_config(self.config),
                    user=os_user(),
                    on_open=mark_in_flight,
                )
                self._recover(pipeline)
                self._start_observers()
                self._loop(pipeline)
                self._drain(pipeline)
        finally:
            self._stop.set()
            self._stop_observers()
            if sender is not None:
                sender.join(timeout=self.config.watch.stop_grace_seconds)
            if listener is not None:
                listener.join(timeout=self.config.watch.stop_grace_seconds)
            lock.release()
        log.info("stopped")
        return 0

    def _recover(self, pipeline: Pipeline) -> None:
        fixed = reconcile_index(self.config, self.index)
        if fixed.added or fixed.removed:
            log.info("index reconciled with the archive: %d added, %d removed", fixed.added, fixed.removed)
        leftovers, poison = pending_claims(self.config)
        for source in poison:
            pipeline.set_aside(source, killed_too_often("the daemon", self.config.watch.set_aside_after_crashes))
        if leftovers:
            log.info("resuming %d file(s) left in processing by an earlier run", len(leftovers))
            pipeline.feed(leftovers)

    def _start_observers(self) -> None:
        native = Observer()
        for folder in self.folders:
            observer = PollingObserver(timeout=folder.poll_interval_seconds) if folder.polling else native
            observer.schedule(_Nominator(self, folder), str(folder.path), recursive=folder.recursive)
            if folder.polling:
                self._observers.append(observer)
        self._observers.append(native)
        for observer in self._observers:
            observer.start()
        log.info("watching %s", ", ".join(str(f.path) for f in self.folders))

    def _stop_observers(self) -> None:
        for observer in self._observers:
            observer.stop()
        for observer in self._observers:
            observer.join(timeout=5)

    def _loop(self, pipeline: Pipeline) -> None:
        next_sweep = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_sweep:
                self.sweep()
                purge_processed(self.config)
                self._in_background("retrain", self._retrain)
                self._in_background("chart-prep", self._prepare_charts)
                self.remind_requests(today_local())
                next_sweep = now + self.config.watch.rescan_seconds
            self._claim_due(pipeline)
            if not pipeline.step(timeout=_TICK):
                self._stop.wait(_TICK)
            pipeline.flush()

    def _in_background(self, name: str, work: Callable[[], None]) -> None:
        # Training and chart preparation take minutes on a large archive; filing goes on
        # meanwhile. Each writes only its own files (atomically); one run of each at a time.
        thread = self._background.get(name)
        if thread is None or not thread.is_alive():
            self._background[name] = threading.Thread(target=work, name=name, daemon=True)
            self._background[name].start()

    def remind_requests(self, today: date) -> None:
        """Once a day, the requests for information overdue and due soon, in the log (ids and counts only)."""
        if self._reminded_on == today:
            return
        self._reminded_on = today
        try:
            with RequestDesk.for_config(self.config) as desk:
                overdue, soon = desk.due_soon(today)
        except MedarchiveError as exc:
            log.warning("cannot read the requests for information: %s", exc)
            return
        if overdue or soon:
            log.warning(
                "requests for information: %d overdue%s, %d due within %d days%s",
                len(overdue),
                f" ({', '.join(r.ref for r in overdue)})" if overdue else "",
                len(soon),
                self.config.requests.due_soon_days,
                f" ({', '.join(r.ref for r in soon)})" if soon else "",
            )

    def _retrain(self) -> None:
        try:
            message = maybe_retrain(self.config, datetime.now())
        except Exception as exc:
            message = (
                f"document-type model retraining failed ({type(exc).__name__}: {exc}); the previous model stays in use"
            )
        if message:
            log.info(message)

    def _prepare_charts(self) -> None:
        try:
            message = maybe_prepare(self.config, datetime.now())
        except Exception as exc:
            message = f"chart preparation failed ({type(exc).__name__}: {exc}); it is tried again at the next run_at"
        if message:
            log.info(message)

    def _claim_due(self, pipeline: Pipeline) -> None:
        for path, folder in self.tracker.due(time.monotonic()):
            if not _openable(path):
                continue
            source = claim(self.config, path, folder)
            if source is not None:
                log.info("claimed %s as %s", path.name, source.path.name)
                pipeline.feed([source])

    def _drain(self, pipeline: Pipeline) -> None:
        """Finish what is in flight within the grace period; the rest resumes at restart."""
        log.info("stopping: no new files taken; finishing %d page(s) in flight", pipeline.in_flight)
        pipeline.stop_feeding()
        deadline = time.monotonic() + self.config.watch.stop_grace_seconds
        while pipeline.in_flight and time.monotonic() < deadline:
            pipeline.step(timeout=_TICK)
        pipeline.flush()
        if pipeline.in_flight:
            log.info(
                "abandoning %d page(s) in flight; their files stay in processing/ for the next start",
                pipeline.in_flight,
            )
            for source in pipeline.sources_in_flight():
                mark_in_flight(source, False)
            pipeline.abandon()
        pipeline.close()

    def _committed(self, outcomes: list[Outcome]) -> None:
        activity.record(self.config, outcomes)
        for outcome in outcomes:
            release(self.config, outcome.source)


def _openable(path: Path) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def install_signal_handlers(daemon: Daemon) -> None:
    signal.signal(signal.SIGTERM, daemon.request_stop)
    signal.signal(signal.SIGINT, daemon.request_stop)
