"""Take inputs end to end: intake → pages (in parallel) → decide → archive → index.

Pages of all inputs flow through one bounded window of futures, so every worker
stays busy across document boundaries while memory holds only the pages in flight
and the texts of the documents not yet finished. This process is the one writer:
workers return plain data, and only this process touches the archive and the index.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import multiprocessing
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pikepdf

from indexers.base import Index, IndexRecord
from pipeline.archive.audit import AuditLog
from pipeline.archive.store import (
    document_pdf_path,
    record_from_sidecar,
    set_aside_failed,
    write_document,
)
from pipeline.core.config import Config
from pipeline.core.errors import ArchiveError, IntakeError, MedarchiveError
from pipeline.core.fsutil import sha256_file
from pipeline.core.models import PageText
from pipeline.identify.documents import SourceFacts, build_documents
from pipeline.identify.roster import Roster
from pipeline.intake.images import image_to_pdf, is_image
from pipeline.intake.vet import Intake, inspect_pdf
from pipeline.pages.process import PageTask, process_page
from pipeline.pages.worker import start_worker

log = logging.getLogger("medarchive")

OutcomeStatus = Literal["filed", "review", "failed", "duplicate"]


@dataclass(frozen=True)
class InputFile:
    """One input and what its drop folder says about it.

    ``name`` is the name it arrived with (the daemon renames files it claims).
    """

    path: Path
    name: str = ""
    label: str | None = None
    type_hint: str | None = None

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


def make_executor(config: Config) -> ProcessPoolExecutor:
    # forkserver: the daemon has threads (observers), and forking a threaded
    # process can deadlock a child on a lock some thread held. The server preloads
    # only what a worker runs, not the whole CLI (seconds of imports at every start).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["pipeline.pages.worker", "pipeline.pages.process"])
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
    """Turns inputs into archived, indexed documents; reports each Outcome."""

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
        self._pending: dict[Future, tuple[_Job, int]] = {}
        self._window = 2 * config.workers + 1
        self._barcode_formats = tuple(config.barcodes.formats) if config.barcodes.enabled else ()
        self.roster = Roster.load(config.resolve(config.roster.path), config.roster) if config.roster.path else None

    def run(self, sources: Iterable[InputFile]) -> None:
        """Take every source to its outcome and commit the index."""
        self.feed(sources)
        while self.step():
            pass
        self.flush()

    def feed(self, sources: Iterable[InputFile]) -> None:
        """Queue inputs; they are opened lazily, as workers have room for their pages."""
        self._feeds.append(iter(sources))

    def stop_feeding(self) -> None:
        """Open no more inputs; pages already submitted still finish."""
        self._feeds.clear()
        self._job_tasks = None
        self._feeding = False

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def step(self, timeout: float | None = None) -> bool:
        """Keep the window full, then wait up to ``timeout`` for pages; False when all is done."""
        while len(self._pending) < self._window:
            item = self._next_task()
            if item is None:
                break
            job, task = item
            self._pending[self.executor.submit(process_page, task)] = (job, task.page_no)
        if not self._pending:
            return False
        done, _ = wait(self._pending, timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            job, page_no = self._pending.pop(future)
            job.results[page_no] = _page_result(future, page_no)
            if job.complete:
                self._finish(job)
        return True

    def _next_task(self) -> tuple[_Job, PageTask] | None:
        while True:
            if self._job_tasks is not None:
                item = next(self._job_tasks, None)
                if item is not None:
                    return item
                self._job_tasks = None
            source = self._next_source()
            if source is None:
                return None
            job = self._open(source)
            if job is not None:
                self._job_tasks = self._tasks(job)

    def _next_source(self) -> InputFile | None:
        while self._feeds:
            source = next(self._feeds[0], None)
            if source is not None:
                return source
            self._feeds.popleft()
        return None

    def flush(self) -> None:
        """Commit the pending index records, then tell the caller they are durable."""
        if self._batch:
            self.index.add(self._batch, merge=self.merge)
            self._batch = []
        if self._uncommitted:
            committed, self._uncommitted = self._uncommitted, []
            self.on_committed(committed)

    def _tasks(self, job: _Job) -> Iterator[tuple[_Job, PageTask]]:
        ocr = self.config.ocr
        if self.pages_as_bytes:
            job.pdf = pikepdf.open(job.render_path)
        for page_no in range(1, job.intake.page_count + 1):
            scanned = page_no in job.intake.scanned_pages
            yield job, PageTask(
                job.render_path, page_no, scanned, ocr.dpi, ocr.language, ocr.page_timeout_seconds,
                ocr.min_text_layer_chars, self._barcode_formats, self.config.barcodes.whole_page,
                _one_page(job.pdf, page_no) if job.pdf is not None else None,
            )

    def _open(self, source: InputFile) -> _Job | None:
        """Vet one input; report failures and duplicates at once and return None for them."""
        workdir = tempfile.TemporaryDirectory(prefix="medarchive-intake-")
        try:
            intake = self._inspect(source, Path(workdir.name))
        except IntakeError as exc:
            workdir.cleanup()
            self._fail(source, str(exc), _sha_or_none(source.path))
            return None
        try:
            return self._vetted(source, intake, workdir)
        except BaseException:
            workdir.cleanup()
            raise

    def _inspect(self, source: InputFile, workdir: Path) -> Intake:
        """Intake of a PDF, or of the PDF an image is wrapped in (keyed by the image's own bytes)."""
        if not is_image(source.path):
            return inspect_pdf(source.path, self.config.intake, self.config.ocr.dpi)
        wrapped = workdir / "image.pdf"
        image_to_pdf(source.path, wrapped, self.config.intake)
        intake = inspect_pdf(wrapped, self.config.intake, self.config.ocr.dpi)
        return dataclasses.replace(intake, sha256=sha256_file(source.path))

    def _vetted(self, source: InputFile, intake: Intake, workdir: tempfile.TemporaryDirectory) -> _Job | None:
        if intake.sha256 in self._in_flight:
            workdir.cleanup()
            self._in_flight[intake.sha256].append(source)
            return None
        existing = self._seen.get(intake.sha256) or self.index.doc_ids_for_source(intake.sha256)
        if existing:
            workdir.cleanup()
            reason = f"identical to archived {', '.join(sorted(existing))}"
            self._report(Outcome(source, "duplicate", sorted(existing), reason=reason))
            return None
        log.info("intake %s: %d pages, sha256 %s", source.display_name, intake.page_count, intake.sha256[:16])
        self._in_flight[intake.sha256] = []
        if not intake.warnings:
            return _Job(source, intake, intake.path, workdir)
        repaired = Path(workdir.name) / "repaired.pdf"
        with pikepdf.open(intake.path) as pdf:
            pdf.save(repaired)
        log.info("intake %s: repaired (%d warnings)", source.display_name, len(intake.warnings))
        return _Job(source, intake, repaired, workdir)

    def _finish(self, job: _Job) -> None:
        try:
            self._file(job)
        except OSError as exc:
            # A full or failing disk is the machine's fault, not the input's: stop, and
            # let the input be taken again once the disk is fixed.
            raise ArchiveError(f"cannot write to the data root ({exc.strerror or exc}); nothing was lost, fix the disk and run again") from None
        except (MedarchiveError, pikepdf.PdfError) as exc:
            self._fail(job.source, f"could not be archived: {exc}", job.intake.sha256)
        finally:
            job.close()
            waiting = self._in_flight.pop(job.intake.sha256, [])
            if waiting and self._feeding:
                self._feeds.appendleft(iter(waiting))

    def _file(self, job: _Job) -> None:
        intake, source = job.intake, job.source
        pages = [job.results[n] for n in range(1, intake.page_count + 1)]
        facts = SourceFacts(source.display_name, intake.sha256, source.label, source.type_hint)
        documents = build_documents(pages, facts, self.config, self.roster)
        if not documents:
            self._fail(source, "holds only separator sheets, no document pages", intake.sha256)
            return
        self.on_filing(source, [document_pdf_path(self.config, doc) for doc in documents], intake.page_count)
        sidecars = [write_document(self.config, doc, job.render_path) for doc in documents]
        self._seen[intake.sha256] = [doc.doc_id for doc in documents]
        self._batch.extend(record_from_sidecar(s) for s in sidecars)
        self._report(_outcome(source, sidecars, pages, time.monotonic() - job.started))
        if len(self._batch) >= self.config.index.batch_size:
            self.flush()

    def _fail(self, source: InputFile, reason: str, sha256: str | None) -> None:
        target = set_aside_failed(self.config, source.path, source.display_name, reason, sha256)
        self._report(Outcome(source, "failed", reason=reason, path=target.relative_to(self.config.root).as_posix()))

    def _report(self, outcome: Outcome) -> None:
        log.info(
            "%s %s: %s (%d pages, OCR %.1f s, %.1f s in all)%s",
            outcome.status,
            outcome.source.display_name,
            outcome.path or ", ".join(outcome.doc_ids),
            outcome.pages,
            outcome.ocr_seconds,
            outcome.seconds,
            f": {outcome.reason}" if outcome.reason else "",
        )
        if self.audit is not None:
            self.audit.record(
                "ingest", user=self.user, doc_ids=outcome.doc_ids, mrns=[outcome.mrn], outcome=outcome.status,
                details={"source": outcome.source.display_name, "path": outcome.path, "pages": outcome.pages, "reason": outcome.reason},
            )
        self._uncommitted.append(outcome)
        self.on_outcome(outcome)


def status_of(sidecars: list[dict]) -> tuple[OutcomeStatus, str | None]:
    """An input's status and reason from its documents: review when any of them waits for a clerk."""
    status: OutcomeStatus = "review" if any(s["status"] == "review" for s in sidecars) else "filed"
    reasons = [f"{s['doc_id']}: {s['review_reason']}" if len(sidecars) > 1 else s["review_reason"] for s in sidecars if s["review_reason"]]
    return status, "; ".join(reasons) or None


def _outcome(source: InputFile, sidecars: list[dict], pages: list[PageText], seconds: float) -> Outcome:
    status, reason = status_of(sidecars)
    mrns = {s["mrn"] for s in sidecars}
    return Outcome(
        source, status, [s["doc_id"] for s in sidecars], mrns.pop() if len(mrns) == 1 else None,
        reason, sidecars[0]["path"], len(pages), sum(p.ocr_seconds for p in pages), seconds,
        documents=[{k: s[k] for k in ("doc_id", "status", "mrn", "path", "review_reason", "doc_type")} | {"pages": s["source"]["pages"]} for s in sidecars],
    )


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
