"""Take inputs end to end: intake → pages (in parallel) → decide → archive → index.

Pages of all inputs flow through one bounded window of futures, so every worker
stays busy across document boundaries while memory holds only the pages in flight
and the texts of the documents not yet finished. This process is the one writer:
workers return plain data, and only this process touches the archive and the index.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pikepdf

from indexers.base import Index, IndexRecord
from pipeline.archive import scratch
from pipeline.archive.audit import AuditLog
from pipeline.archive.history import filed_patients
from pipeline.archive.sidecar import Sidecar
from pipeline.archive.store import (
    document_pdf_path,
    record_from_sidecar,
    set_aside_failed,
    write_document,
)
from pipeline.core.config import Config
from pipeline.core.errors import ArchiveError, IntakeError, MedarchiveError
from pipeline.core.fsutil import sha256_file
from pipeline.core.models import FiledPatient, PageText
from pipeline.ehr.enqueue import enqueue_filed
from pipeline.identify.documents import SourceFacts, build_documents
from pipeline.identify.patients import load_patient_index
from pipeline.intake.images import is_image
from pipeline.intake.opening import Opened, OpenTask, open_input
from pipeline.intake.vet import Intake
from pipeline.pages.process import PageTask, process_page
from pipeline.pages.second_look import SecondLookRules
from pipeline.pages.worker import start_worker
from pipeline.stores import DatabaseUnavailable

log = logging.getLogger("medarchive")

# A page or an opening that takes this many page timeouts (plus a margin) is hung: every
# external tool it runs has the page timeout, so only a hang inside the worker itself gets here.
_HANG_FACTOR = 5
_HANG_MARGIN_SECONDS = 30
# An input in flight when a pool broke this often is set aside even if it was not alone.
_CRASHES_TO_SET_ASIDE = 2
# How long each worker of a broken pool gets to exit before it is killed.
_REAP_SECONDS = 10

OutcomeStatus = Literal["filed", "review", "failed", "duplicate", "skipped"]


@dataclass(frozen=True)
class InputFile:
    """One input and what its drop folder says about it.

    ``name`` is the name it arrived with (the daemon renames files it claims).
    """

    path: Path
    name: str = ""
    label: str | None = None
    type_hint: str | None = None
    box: str | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.path.name


@dataclass
class Outcome:
    """What became of one input."""

    source: InputFile
    status: OutcomeStatus
    doc_ids: list[str] = field(default_factory=list)
    mrn: str | None = None
    reason: str | None = None
    path: str | None = None
    pages: int = 0
    ocr_seconds: float = 0.0
    seconds: float = 0.0
    documents: list[dict] = field(default_factory=list)


@dataclass
class _Job:
    source: InputFile
    intake: Intake
    render_path: Path
    workdir: tempfile.TemporaryDirectory
    results: dict[int, PageText] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    pdf: pikepdf.Pdf | None = None  # open while its pages are cut out to travel as bytes

    @property
    def complete(self) -> bool:
        return len(self.results) == self.intake.page_count

    def close(self) -> None:
        if self.pdf is not None:
            self.pdf.close()
        self.workdir.cleanup()


@dataclass
class _Opening:
    """An input being opened and vetted in a worker."""

    source: InputFile
    workdir: tempfile.TemporaryDirectory


@dataclass(frozen=True)
class _Work:
    """What a future in flight is for: opening an input (page 0) or one page of a job."""

    owner: _Job | _Opening
    page_no: int
    executor: Executor
    submitted: float

    @property
    def source(self) -> InputFile:
        return self.owner.source


def make_executor(config: Config) -> ProcessPoolExecutor:
    # forkserver: the daemon has threads (observers), and forking a threaded
    # process can deadlock a child on a lock some thread held. The server preloads
    # only what a worker runs, not the whole CLI (seconds of imports at every start).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["pipeline.pages.worker", "pipeline.pages.process", "pipeline.intake.opening"])
    return ProcessPoolExecutor(
        max_workers=config.workers,
        mp_context=context,
        initializer=start_worker,
        initargs=(os.getpid(),),
    )


def collect_inputs(paths: Iterable[Path]) -> Iterator[InputFile]:
    """Files as given; folders walked for PDFs and page images, in a stable order."""
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and (p.suffix.lower() == ".pdf" or is_image(p)))
            yield from (InputFile(p) for p in found)
        else:
            yield InputFile(path)


class Pipeline:
    """Turns inputs into archived, indexed documents; reports each Outcome.

    Whatever one input does to the worker that reads it (an exception, a crash, a
    hang), it ends in failed/ with a reason and the others go on: a broken pool is
    replaced, and the inputs that were in flight with it are read again one at a time,
    so only the one that breaks a worker on its own is set aside.
    """

    def __init__(
        self,
        config: Config,
        index: Index,
        executor: Executor,
        on_outcome: Callable[[Outcome], None] = lambda outcome: None,
        on_committed: Callable[[list[Outcome]], None] = lambda outcomes: None,
        audit: AuditLog | None = None,
        user: str = "",
        *,
        on_filing: Callable[[InputFile, list[Path], int], None] = lambda source, pdf_paths, pages: None,
        on_open: Callable[[InputFile], None] = lambda source: None,
        merge: bool = True,
        pages_as_bytes: bool = False,
    ) -> None:
        self.config = config
        self.audit = audit
        self.user = user
        self.index = index
        self.executor = executor
        self.on_outcome = on_outcome
        self.on_committed = on_committed
        self.on_filing = on_filing
        self.on_open = on_open
        # A long run commits without merging segments and merges once at the end.
        self.merge = merge
        # Workers on other machines cannot read our paths: send each page as a one-page PDF.
        self.pages_as_bytes = pages_as_bytes
        self._batch: list[IndexRecord] = []
        self._uncommitted: list[Outcome] = []
        self._seen: dict[str, list[str]] = {}
        # Inputs with the bytes of one still in flight wait for it, then meet it as a duplicate.
        self._in_flight: dict[str, list[InputFile]] = {}
        self._feeds: deque[Iterator[InputFile]] = deque()
        self._feeding = True
        self._job_tasks: Iterator[tuple[_Job, PageTask]] | None = None
        self._current_job: _Job | None = None
        self._pending: dict[Future, _Work] = {}
        self._opening = False
        self._window = 2 * config.workers + 1
        self._barcode_formats = tuple(config.barcodes.formats) if config.barcodes.enabled else ()
        self.roster = load_patient_index(config)
        # Opening runs in a local process even when pages go to a cluster (its workers
        # cannot read our paths or the data root).
        self._opener: Executor | None = executor if isinstance(executor, ProcessPoolExecutor) else None
        self._owned: list[ProcessPoolExecutor] = []
        self._crashes: dict[Path, int] = {}
        self._isolated: deque[InputFile] = deque()
        self._alone: InputFile | None = None
        self._killed_hung = False
        self._hang_seconds = config.ocr.page_timeout_seconds * _HANG_FACTOR + _HANG_MARGIN_SECONDS
        swept = scratch.sweep(config.scratch_dir)
        if swept:
            log.info("removed %d temp folder(s) that stopped processes left in the data root", swept)

    def run(self, sources: Iterable[InputFile]) -> None:
        """Take every source to its outcome and commit the index."""
        self.feed(sources)
        try:
            while self.step():
                pass
            self.flush()
        finally:
            self.close()

    def feed(self, sources: Iterable[InputFile]) -> None:
        """Queue inputs; they are opened lazily, as workers have room for their pages."""
        self._feeds.append(iter(sources))

    def stop_feeding(self) -> None:
        """Open no more inputs; pages already submitted still finish."""
        self._feeds.clear()
        self._isolated.clear()
        self._job_tasks = None
        self._feeding = False

    def close(self) -> None:
        """Shut down the pools this pipeline made to replace broken ones."""
        for pool in self._owned:
            pool.shutdown(wait=True, cancel_futures=True)
        self._owned.clear()

    def abandon(self) -> None:
        """Stop the workers at once (their inputs stay unfinished and are taken again later)."""
        for pool in {id(p): p for p in (self.executor, self._opener) if isinstance(p, ProcessPoolExecutor)}.values():
            _terminate(pool)
            pool.shutdown(wait=False, cancel_futures=True)
        self._owned.clear()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def sources_in_flight(self) -> list[InputFile]:
        """The inputs that have work in the pool now."""
        return list({id(w.source): w.source for w in self._pending.values()}.values())

    def set_aside(self, source: InputFile, reason: str) -> None:
        """Send an input straight to failed/ without reading it (one that kept killing the process)."""
        self._fail(source, reason, _sha_or_none(source.path))

    def step(self, timeout: float | None = None) -> bool:
        """Keep the window full, then wait up to ``timeout`` for results; False when all is done."""
        self._fill()
        if not self._pending:
            return False
        done, _ = wait(self._pending, timeout=self._wait_seconds(timeout), return_when=FIRST_COMPLETED)
        if not done:
            self._kill_hung()
            return True
        broken: set[int] = set()
        for future in done:
            work = self._pending.pop(future)
            if isinstance(future.exception(), BrokenProcessPool):
                broken.add(id(work.executor))
                self._pending[future] = work  # recovered with the rest of the pool's work
            elif isinstance(work.owner, _Opening):
                self._opening = False
                self._opened(work.owner, future)
            else:
                job = work.owner
                job.results[work.page_no] = _page_result(future, work.page_no)
                if job.complete:
                    self._finish(job)
        if broken:
            self._recover_pool(broken)
        return True

    def flush(self) -> None:
        """Commit the pending index records, then tell the caller they are durable."""
        if self._batch:
            self.index.add(self._batch, merge=self.merge)
            self._batch = []
        if self._uncommitted:
            committed, self._uncommitted = self._uncommitted, []
            # Queued once the filing is durable and before the input is let go: a crash in
            # between meets the input again as a duplicate, which queues what is missing.
            enqueue_filed(self.config, _filed_items(committed), index=self.index)
            self.on_committed(committed)

    def _fill(self) -> None:
        while len(self._pending) < self._window:
            item = self._next_page()
            if item is not None:
                job, task = item
                self._submit(self.executor, process_page, task, job, task.page_no)
                continue
            if self._opening:
                return
            source = self._next_source()
            if source is None:
                return
            self._begin_open(source)

    def _submit(self, executor: Executor, fn: Callable, task: object, owner: _Job | _Opening, page_no: int) -> None:
        try:
            future = executor.submit(fn, task)
        except BrokenProcessPool:
            future = Future()
            future.set_exception(BrokenProcessPool("the pool broke before this was submitted"))
        self._pending[future] = _Work(owner, page_no, executor, time.monotonic())

    def _next_page(self) -> tuple[_Job, PageTask] | None:
        if self._job_tasks is None:
            return None
        try:
            item = next(self._job_tasks, None)
        except Exception as exc:  # cutting a page out for a cluster worker failed
            job = self._current_job
            if job is None:
                raise
            self._job_tasks = None
            self._set_aside(job.source, job.intake.sha256, "could not be read", exc)
            self._drop(job)
            return None
        if item is None:
            self._job_tasks = None
        return item

    def _next_source(self) -> InputFile | None:
        if self._alone is not None:
            return None
        if self._isolated:
            if self._pending or self._job_tasks is not None:
                return None
            self._alone = self._isolated.popleft()
            return self._alone
        while self._feeds:
            source = next(self._feeds[0], None)
            if source is not None:
                return source
            self._feeds.popleft()
        return None

    def _begin_open(self, source: InputFile) -> None:
        """Open and vet one input in a worker; the coordinator never parses a PDF itself."""
        try:
            workdir = scratch.work_dir(self.config.scratch_dir, "intake")
        except OSError as exc:
            raise _disk_error(exc) from None
        self.on_open(source)
        task = OpenTask(source.path, source.display_name, Path(workdir.name), self.config.intake, self.config.ocr.dpi)
        self._opening = True
        self._submit(self._opening_executor(), open_input, task, _Opening(source, workdir), 0)

    def _opening_executor(self) -> Executor:
        if self._opener is None:
            self._opener = self._new_pool(1)
        return self._opener

    def _opened(self, opening: _Opening, future: Future) -> None:
        source = opening.source
        try:
            opened: Opened = future.result()
        except IntakeError as exc:
            opening.workdir.cleanup()
            self._fail(source, str(exc), _sha_or_none(source.path))
            return
        except Exception as exc:
            opening.workdir.cleanup()
            self._set_aside(source, _sha_or_none(source.path), "could not be read", exc)
            return
        job = self._vetted(source, opened, opening.workdir)
        if job is not None:
            self._current_job = job
            self._job_tasks = self._tasks(job)

    def _vetted(self, source: InputFile, opened: Opened, workdir: tempfile.TemporaryDirectory) -> _Job | None:
        intake = opened.intake
        if intake.sha256 in self._in_flight:
            workdir.cleanup()
            self._in_flight[intake.sha256].append(source)
            self._release_alone(source)
            return None
        existing = self._seen.get(intake.sha256) or self.index.doc_ids_for_source(intake.sha256)
        if existing:
            workdir.cleanup()
            reason = f"identical to archived {', '.join(sorted(existing))}"
            self._report(Outcome(source, "duplicate", sorted(existing), reason=reason))
            return None
        log.info("intake %s: %d pages, sha256 %s", source.display_name, intake.page_count, intake.sha256[:16])
        if opened.render_path != intake.path:
            log.info("intake %s: read from a repaired copy (%d warnings)", source.display_name, len(intake.warnings))
        self._in_flight[intake.sha256] = []
        return _Job(source, intake, opened.render_path, workdir)

    def _tasks(self, job: _Job) -> Iterator[tuple[_Job, PageTask]]:
        ocr = self.config.ocr
        if self.pages_as_bytes:
            job.pdf = pikepdf.open(job.render_path)
        for page_no in range(1, job.intake.page_count + 1):
            scanned = page_no in job.intake.scanned_pages
            yield (
                job,
                PageTask(
                    job.render_path,
                    page_no,
                    scanned,
                    ocr.dpi,
                    ocr.language,
                    ocr.page_timeout_seconds,
                    ocr.min_text_layer_chars,
                    self._barcode_formats,
                    self.config.barcodes.whole_page,
                    _one_page(job.pdf, page_no) if job.pdf is not None else None,
                    scratch=None if self.pages_as_bytes else self.config.scratch_dir,
                    separator_value=self.config.barcodes.separator_value,
                    second_look=SecondLookRules(**ocr.second_look.model_dump()),
                ),
            )

    def _finish(self, job: _Job) -> None:
        try:
            self._file(job)
        except OSError as exc:
            # A full or failing disk is the machine's fault, not the input's: stop, and
            # let the input be taken again once the disk is fixed.
            raise _disk_error(exc) from None
        except DatabaseUnavailable:
            raise  # the database's fault, not the input's: it is taken again once the database is back
        except (MedarchiveError, pikepdf.PdfError) as exc:
            self._fail(job.source, f"could not be archived: {exc}", job.intake.sha256)
        except Exception as exc:
            self._set_aside(job.source, job.intake.sha256, "could not be archived", exc)
        finally:
            self._drop(job)

    def _drop(self, job: _Job) -> None:
        """Forget a job that reached its outcome (or is to be read again)."""
        job.close()
        waiting = self._in_flight.pop(job.intake.sha256, [])
        if waiting and self._feeding:
            self._feeds.appendleft(iter(waiting))

    def _history(self, mrns: Iterable[str]) -> dict[str, FiledPatient]:
        """What the archive already holds under ``mrns`` (a witness for filing without an index)."""
        return filed_patients(self.config, mrns)

    def _file(self, job: _Job) -> None:
        intake, source = job.intake, job.source
        pages = [job.results[n] for n in range(1, intake.page_count + 1)]
        facts = SourceFacts(source.display_name, intake.sha256, source.label, source.type_hint, source.box)
        documents = build_documents(pages, facts, self.config, self.roster, self._history)
        if not documents:
            reason = f"holds only separator sheets ({intake.page_count} pages); nothing archived"
            self._report(Outcome(source, "skipped", reason=reason, pages=intake.page_count))
            return
        self.on_filing(source, [document_pdf_path(self.config, doc) for doc in documents], intake.page_count)
        sidecars = [write_document(self.config, doc, job.render_path) for doc in documents]
        self._seen[intake.sha256] = [doc.doc_id for doc in documents]
        self._batch.extend(record_from_sidecar(s) for s in sidecars)
        self._report(_outcome(source, sidecars, pages, time.monotonic() - job.started))
        if len(self._batch) >= self.config.index.batch_size:
            self.flush()

    # A pool that broke or hung: find the input that did it.

    def _wait_seconds(self, timeout: float | None) -> float | None:
        if not self._watching_hangs():
            return timeout
        oldest = min(w.submitted for w in self._pending.values())
        left = max(0.0, oldest + self._hang_seconds - time.monotonic()) + 0.1
        return left if timeout is None else min(timeout, left)

    def _watching_hangs(self) -> bool:
        return any(isinstance(w.executor, ProcessPoolExecutor) for w in self._pending.values())

    def _kill_hung(self) -> None:
        now = time.monotonic()
        hung = {
            id(w.executor): w.executor
            for w in self._pending.values()
            if isinstance(w.executor, ProcessPoolExecutor) and now - w.submitted > self._hang_seconds
        }
        for pool in hung.values():
            log.error(
                "a worker has not answered for %.0f s; stopping the pool to find the input that hangs",
                self._hang_seconds,
            )
            self._killed_hung = True
            _terminate(pool)

    def _recover_pool(self, broken: set[int]) -> None:
        """Replace the broken pool(s); set aside the input that broke it, read the others again alone."""
        lost = [w for w in self._pending.values() if id(w.executor) in broken]
        self._pending = {f: w for f, w in self._pending.items() if id(w.executor) not in broken}
        self._replace_pools(broken)
        scratch.sweep(self.config.scratch_dir)  # what the dead workers were writing
        owners = list({id(w.owner): w.owner for w in lost}.values())
        hung, self._killed_hung = self._killed_hung, False
        what = "stopped answering while being read" if hung else "made the process reading it crash"
        for owner in owners:
            self._forget(owner)
            source = owner.source
            self._crashes[source.path] = self._crashes.get(source.path, 0) + 1
            if len(owners) == 1 or self._crashes[source.path] >= _CRASHES_TO_SET_ASIDE:
                log.error("%s %s; set aside", source.display_name, "hung a worker" if hung else "crashed a worker")
                self._fail(
                    source,
                    f"could not be read: it {what} (set aside for a person to look at)",
                    _sha_or_none(source.path),
                )
            else:
                self._isolated.append(source)

    def _forget(self, owner: _Job | _Opening) -> None:
        """Drop the work of an input whose pool broke; it is failed or read again."""
        if isinstance(owner, _Opening):
            self._opening = False
            owner.workdir.cleanup()
            return
        if owner is self._current_job:
            self._job_tasks = None
        self._in_flight.pop(owner.intake.sha256, None)
        owner.close()

    def _replace_pools(self, broken: set[int]) -> None:
        replaced: dict[int, ProcessPoolExecutor] = {}
        for attr in ("executor", "_opener"):
            pool = getattr(self, attr)
            if id(pool) in broken:
                if id(pool) not in replaced:
                    _stop_broken(pool)
                    replaced[id(pool)] = self._new_pool(pool._max_workers)
                setattr(self, attr, replaced[id(pool)])

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        pool = make_executor(
            self.config.model_copy(update={"ocr": self.config.ocr.model_copy(update={"workers": workers})})
        )
        self._owned.append(pool)
        return pool

    # Outcomes

    def _set_aside(self, source: InputFile, sha256: str | None, what: str, exc: BaseException) -> None:
        """An unexpected error on one input: that input's failure, never the run's."""
        log.error("%s: internal error: %s", source.display_name, _one_line_traceback(exc))
        self._fail(source, f"{what}: internal error ({type(exc).__name__}: {_first_line(exc)})", sha256)

    def _fail(self, source: InputFile, reason: str, sha256: str | None) -> None:
        try:
            target = set_aside_failed(self.config, source.path, source.display_name, reason, sha256, source.box)
        except OSError as exc:
            raise _disk_error(exc) from None
        self._report(Outcome(source, "failed", reason=reason, path=target.relative_to(self.config.root).as_posix()))

    def _release_alone(self, source: InputFile) -> None:
        if self._alone is source:
            self._alone = None

    def _report(self, outcome: Outcome) -> None:
        self._release_alone(outcome.source)
        log.info(
            "%s %s: %s%s%s",
            outcome.status,
            outcome.source.display_name,
            outcome.path or ", ".join(outcome.doc_ids),
            _timings(outcome),
            f": {outcome.reason}" if outcome.reason else "",
        )
        if self.audit is not None:
            self.audit.record(
                "ingest",
                user=self.user,
                doc_ids=outcome.doc_ids,
                mrns=[outcome.mrn],
                outcome=outcome.status,
                details={
                    "source": outcome.source.display_name,
                    "path": outcome.path,
                    "pages": outcome.pages,
                    "reason": outcome.reason,
                },
            )
        self._uncommitted.append(outcome)
        self.on_outcome(outcome)


def status_of(sidecars: list[Sidecar]) -> tuple[OutcomeStatus, str | None]:
    """An input's status and reason from its documents: review when any of them waits for a clerk."""
    status: OutcomeStatus = "review" if any(s.status == "review" for s in sidecars) else "filed"
    reasons = [
        f"{s.doc_id}: {s.review_reason}" if len(sidecars) > 1 else s.review_reason for s in sidecars if s.review_reason
    ]
    return status, "; ".join(reasons) or None


def _timings(outcome: Outcome) -> str:
    """The input's time from start to end, and its pages' OCR time summed over the workers
    that read them in parallel (so it can exceed the other); nothing for an input never read."""
    if not outcome.pages:
        return ""
    pages = f"{outcome.pages} page{'s' if outcome.pages != 1 else ''} in {outcome.seconds:.1f} s"
    if not outcome.ocr_seconds:
        return f" ({pages}, text layer: no OCR)"
    return f" ({pages}; OCR {outcome.ocr_seconds:.1f} s summed over workers)"


def _outcome(source: InputFile, sidecars: list[Sidecar], pages: list[PageText], seconds: float) -> Outcome:
    status, reason = status_of(sidecars)
    mrns = {s.mrn for s in sidecars}
    return Outcome(
        source,
        status,
        [s.doc_id for s in sidecars],
        mrns.pop() if len(mrns) == 1 else None,
        reason,
        sidecars[0].path,
        len(pages),
        sum(p.ocr_seconds for p in pages),
        seconds,
        documents=[_document_row(s) for s in sidecars],
    )


def _document_row(sidecar: Sidecar) -> dict:
    return {
        "doc_id": sidecar.doc_id,
        "status": sidecar.status,
        "mrn": sidecar.mrn,
        "path": sidecar.path,
        "review_reason": sidecar.review_reason,
        "doc_type": sidecar.doc_type,
        "pages": list(sidecar.source.pages),
    }


def _filed_items(outcomes: list[Outcome]) -> Iterator[dict | str]:
    """What the EHR outbox is told about: each written document, and the documents an input
    met as a duplicate already has (their messages may not have been queued before a crash)."""
    for outcome in outcomes:
        if outcome.status == "duplicate":
            yield from outcome.doc_ids
        else:
            yield from outcome.documents


def _one_page(pdf: pikepdf.Pdf, page_no: int) -> bytes:
    with pikepdf.new() as single:
        single.pages.append(pdf.pages[page_no - 1])
        buffer = io.BytesIO()
        single.save(buffer)
        return buffer.getvalue()


def _page_result(future: Future, page_no: int) -> PageText:
    try:
        return future.result()
    except Exception as exc:  # a worker died (killed, out of memory): the page is kept, unread
        return PageText(page_no, "", "none", error=f"worker failed: {type(exc).__name__}")


def _sha_or_none(source: Path) -> str | None:
    try:
        return sha256_file(source)
    except OSError:
        return None


def killed_too_often(what: str, times: int) -> str:
    """The reason an input that kept killing ``what`` is set aside."""
    count = {1: "once", 2: "twice"}.get(times, f"{times} times")
    return f"stopped {what} {count}; set aside for a person to look at"


def _disk_error(exc: OSError) -> ArchiveError:
    return ArchiveError(
        f"cannot write to the data root ({exc.strerror or exc}); nothing was lost, fix the disk and run again"
    )


def _stop_broken(pool: ProcessPoolExecutor) -> None:
    """Shut a broken pool down and wait until its workers are gone: the pool terminates the
    ones still running, and their page folders (images, OCR text) can only be swept once
    their process is dead. One that does not go in time is killed."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(_REAP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join(_REAP_SECONDS)


def _terminate(pool: ProcessPoolExecutor) -> None:
    # Python 3.11 has no public way to stop running workers; what they were doing is
    # redone (or set aside) by whoever sees the pool break.
    for process in list(getattr(pool, "_processes", {}).values()):
        process.terminate()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else "no message")[:300]


def _one_line_traceback(exc: BaseException) -> str:
    """A traceback on one log line: where it failed, never the data it was reading."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames[-6:]))
    return f"{type(exc).__name__}: {_first_line(exc)} at {where or 'unknown'}"
