"""`medarchive watch`: take every file dropped into the drop folders exactly once.

Events (native or polled) and periodic sweeps only nominate candidates; a file is
claimed when it has been quiet for the quiet period. Claimed files live in
processing/ until their outcome (archive, review or failed copy) and the index
commit are durable; a restart after any crash processes whatever is still there,
and filing is idempotent by the input's SHA-256.

Running out of file handles (EMFILE, ENFILE) or memory for a socket or a pipe is waited
out, never fatal: the daemon logs it once (then a count), backs off and goes on; after
it, whatever sits in processing/ but is not in the pipeline (a claim the error cut
short) is fed again, so no input is lost.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime
from pathlib import Path
from typing import cast

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from indexers.base import Index
from pipeline.archive.audit import AuditLog, os_user
from pipeline.archive.index import open_index
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
from pipeline.stores import DatabaseUnavailable
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
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_BACKOFF_FIRST, _BACKOFF_MAX = 1.0, 30.0


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
        self,
        config: Config,
        index: Index,
        executor_factory: Callable[[Config], ProcessPoolExecutor] = make_executor,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.index = index
        self.executor_factory = executor_factory
        self.tracker = QuietTracker(config.watch.quiet_seconds)
        self.folders = config.drop_folders
        self._told_unsupported: set[Path] = set()
        self._stop = threading.Event()
        # Set from outside (a signal while watch_until_stopped runs daemons one after another):
        # this daemon then stops as if request_stop was called.
        self._requested = stop if stop is not None else self._stop
        self._observers: list = []
        self._background: dict[str, threading.Thread] = {}
        self._reminded_on: date | None = None
        self._fed: set[Path] = set()  # claims handed to the pipeline and not yet released
        self._short_of: dict[int, int] = {}  # errno -> times hit since it was last logged
        self._backoff = 0.0

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
                try:
                    self._loop(pipeline)
                except DatabaseUnavailable:
                    self._let_go(pipeline)
                    raise
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
            self._fed.update(s.path for s in leftovers)
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
        while not self._stop.is_set() and not self._requested.is_set():
            try:
                now = time.monotonic()
                if now >= next_sweep:
                    if self._backoff:
                        self._refeed_claims(pipeline)
                    self.sweep()
                    purge_processed(self.config)
                    self._in_background("retrain", self._retrain)
                    self._in_background("chart-prep", self._prepare_charts)
                    self._in_background("expunge", self._expunge_index)
                    self.remind_requests(today_local())
                    next_sweep = now + self.config.watch.rescan_seconds
                self._claim_due(pipeline)
                if not pipeline.step(timeout=_TICK):
                    self._stop.wait(_TICK)
                pipeline.flush()
                self._recovered()
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise
                self._wait_out(exc)
                next_sweep = 0.0  # sweep again: events may have been lost meanwhile

    def _wait_out(self, exc: OSError) -> None:
        """Log a shortage once (and how often it recurred), then back off before trying again."""
        code = exc.errno or 0
        first = code not in self._short_of
        self._short_of[code] = self._short_of.get(code, 0) + 1
        self._backoff = min(_BACKOFF_MAX, max(_BACKOFF_FIRST, 2 * self._backoff))
        if first:
            log.error(
                "%s (%s); waiting and retrying, nothing is lost (raise LimitNOFILE if it persists)",
                os.strerror(code),
                errno.errorcode.get(code, code),
            )
        self._stop.wait(self._backoff)

    def _recovered(self) -> None:
        if self._short_of:
            for code, count in self._short_of.items():
                log.warning("recovered from %s after %d attempt(s)", errno.errorcode.get(code, code), count)
            self._short_of.clear()
        self._backoff = 0.0

    def _refeed_claims(self, pipeline: Pipeline) -> None:
        """Claims in processing/ that a shortage cut short before they reached the pipeline."""
        retry, _ = pending_claims(self.config, count_crashes=False)
        lost = [source for source in retry if source.path not in self._fed]
        if lost:
            log.info("taking %d claimed file(s) again after running short of resources", len(lost))
            self._fed.update(s.path for s in lost)
            pipeline.feed(lost)

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

    def _expunge_index(self) -> None:
        # Entries that replacing adds left deleted (review assignments) still hold text in the
        # index files until their segment is rewritten: done here, off the filing path. An
        # index object of its own: the rewrite runs without the writer lock the loop takes.
        index = open_index(self.config)
        try:
            if index.remnants():
                index.expunge()
        except MedarchiveError as exc:
            log.warning("could not rewrite the index segments holding deleted entries: %s", exc)
        finally:
            index.close()

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
            source = claim(self.config, path, cast(DropFolder, folder))  # the daemon tags each path with its folder
            if source is not None:
                log.info("claimed %s as %s", path.name, source.path.name)
                self._fed.add(source.path)
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

    def _let_go(self, pipeline: Pipeline) -> None:
        """The database went away: stop at once; the files stay in processing/ for the next try,
        not counted as crashes (they did nothing wrong)."""
        for source in pipeline.sources_in_flight():
            mark_in_flight(source, False)
        pipeline.abandon()
        pipeline.close()

    def _committed(self, outcomes: list[Outcome]) -> None:
        activity.record(self.config, outcomes)
        short: OSError | None = None
        for outcome in outcomes:
            self._fed.discard(outcome.source.path)
            try:
                release(self.config, outcome.source)
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise
                short = short or exc  # still in processing/: taken again, then released as a duplicate
        if short is not None:
            raise short


def _openable(path: Path) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def watch_until_stopped(
    config: Config, open_index: Callable[[Config], Index], stop: threading.Event, first_wait: float = 5
) -> int:
    """Run the daemon until ``stop``; while the shared database is away, wait and start again
    (longer each time, at most a minute). Nothing is lost meanwhile: unclaimed files stay in the
    drop folders and claimed ones in processing/."""
    wait = first_wait
    while not stop.is_set():
        try:
            return Daemon(config, open_index(config), stop=stop).run()
        except DatabaseUnavailable as exc:
            log.warning("%s; starting again in %g s", exc, wait)
            stop.wait(wait)
            wait = min(wait * 2, 60)
    return 0


def stop_on_signals(stop: threading.Event) -> None:
    signal.signal(signal.SIGTERM, lambda *_args: stop.set())
    signal.signal(signal.SIGINT, lambda *_args: stop.set())


def install_signal_handlers(daemon: Daemon) -> None:
    signal.signal(signal.SIGTERM, daemon.request_stop)
    signal.signal(signal.SIGINT, daemon.request_stop)
