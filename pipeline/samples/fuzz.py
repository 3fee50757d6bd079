"""Trying fuzz cases (``mutate.case``) the way the pipeline reads an input: vet it, repair
it when qpdf had to, read its first pages. Each case runs in a forked process of its own,
so one that kills the process (a segfault, an out-of-memory kill) or never ends is
counted as a crash or a hang instead of taking the test run or the bench with it.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import time
import traceback
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Literal
from unittest import mock

from PIL import Image

from pipeline.core.config import IntakeSettings
from pipeline.core.errors import IntakeError
from pipeline.intake.vet import inspect_pdf, repaired_copy
from pipeline.pages.ocr import OcrResult
from pipeline.pages.process import PageTask, process_page
from pipeline.samples import mutate

Status = Literal["read", "refused", "crash", "hang"]
PAGES_READ = 2  # of each case; the seeds have one or two


@dataclass(frozen=True)
class Verdict:
    """What became of one case. ``reason`` is the refusal, the escaped exception (crash) or
    how the process ended (hang, death); ``page_errors`` the errors of pages read unread."""

    number: int
    seed_name: str
    kind: str
    status: Status
    reason: str
    seconds: float
    page_errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reading:
    """How cases are read. Tesseract runs on every ``ocr_every``-th case (never with 0);
    on the others a page image is decoded and not recognised: decoding is where a hostile
    PDF can hurt, and recognition costs a hundred times more."""

    dpi: int = mutate.SEED_DPI
    page_timeout: float = 30.0
    ocr_every: int = 0
    barcode_formats: tuple[str, ...] = ("Code128", "Code39", "QRCode", "DataMatrix")
    intake: IntakeSettings = field(default_factory=IntakeSettings)

    def ocr(self, number: int) -> bool:
        return bool(self.ocr_every) and number % self.ocr_every == 0


def read_case(case: mutate.Case, workdir: Path, reading: Reading) -> Verdict:
    """Vet and read ``case`` in this process; an exception escaping intake or a page is a crash."""
    started = time.monotonic()

    def verdict(status: Status, reason: str, errors: tuple[str, ...] = ()) -> Verdict:
        return Verdict(case.number, case.seed_name, case.kind, status, reason, time.monotonic() - started, errors)

    source = workdir / "case.pdf"
    source.write_bytes(case.data)
    try:
        intake = inspect_pdf(source, reading.intake, reading.dpi)
        rendered = source
        if intake.warnings:
            rendered = workdir / "repaired.pdf"
            repaired_copy(source, rendered)
        with (
            nullcontext() if reading.ocr(case.number) else mock.patch("pipeline.pages.process.ocr_image", _decode_only)
        ):
            pages = [
                process_page(
                    PageTask(
                        rendered,
                        n,
                        n in intake.scanned_pages,
                        reading.dpi,
                        "eng",
                        reading.page_timeout,
                        40,
                        reading.barcode_formats,
                    )
                )
                for n in range(1, min(intake.page_count, PAGES_READ) + 1)
            ]
    except IntakeError as exc:
        return verdict("refused", str(exc))
    except BaseException as exc:
        return verdict("crash", _described(exc))
    return verdict("read", "", tuple(p.error for p in pages if p.error))


def _decode_only(image: Path, out_dir: Path, lang: str, dpi: int, timeout: float) -> OcrResult:
    with Image.open(image) as page:
        page.load()
    return OcrResult("", [], b"", 0.0)


def _described(exc: BaseException) -> str:
    """The exception, where it was raised, and the last line of the project it came through."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/pipeline/" in f.filename and "/samples/" not in f.filename]
    places = [f"{Path(f.filename).name}:{f.lineno}" for f in ours[-1:] + frames[-1:]]
    return f"{type(exc).__name__}: {str(exc)[:200]} at {' via '.join(dict.fromkeys(reversed(places)))}"


def run_cases(
    numbers: Iterable[int], seed: int, workdir: Path, reading: Reading, *, workers: int = 1, limit: float = 120.0
) -> Iterator[Verdict]:
    """Each case in a forked process, ``workers`` at a time, in the order they finish.

    A case still running after ``limit`` seconds is killed and counted as a hang; a
    process that dies without a verdict (a signal, a crash in C) counts as a crash.
    """
    mutate.seed_pdfs()  # made once here, inherited by every fork
    context = multiprocessing.get_context("fork")
    pending = iter(numbers)
    running: dict[int, tuple[BaseProcess, Connection, float, Path]] = {}
    while True:
        while len(running) < workers and (number := next(pending, None)) is not None:
            folder = Path(tempfile.mkdtemp(prefix=f"case-{number}-", dir=workdir))
            receiver, sender = context.Pipe(duplex=False)
            process: BaseProcess = context.Process(
                target=_child, args=(number, seed, folder, reading, sender), daemon=True
            )
            process.start()
            sender.close()
            running[process.sentinel] = (process, receiver, time.monotonic(), folder)
        if not running:
            return
        oldest = min(started for _, _, started, _ in running.values())
        wait(list(running), timeout=max(0.0, oldest + limit - time.monotonic()))
        for sentinel, (process, receiver, started, folder) in list(running.items()):
            result = _finished(process, receiver, started, limit, folder)
            if result is not None:
                del running[sentinel]
                receiver.close()
                shutil.rmtree(folder, ignore_errors=True)
                yield result


def _child(number: int, seed: int, folder: Path, reading: Reading, sender: Connection) -> None:
    os.setsid()
    # Decoders complain on stderr about every bad line of a damaged scan; kept with the case.
    os.dup2(os.open(folder / "stderr", os.O_WRONLY | os.O_CREAT, 0o600), 2)
    tempfile.tempdir = str(folder)  # page work's own temp folders, removed with the case's
    case = mutate.case(number, seed)
    (folder / "meta").write_text(f"{number}\t{case.seed_name}\t{case.kind}")
    sender.send(read_case(case, folder, reading))


def _meta(folder: Path) -> tuple[int, str, str]:
    try:
        number, seed_name, kind = (folder / "meta").read_text().split("\t")
        return int(number), seed_name, kind
    except (OSError, ValueError):
        return int(folder.name.split("-")[1]), "?", "?"


def _finished(process: BaseProcess, receiver: Connection, started: float, limit: float, folder: Path) -> Verdict | None:
    """The case's verdict once its process is done (or killed past ``limit``), else None."""
    if receiver.poll():
        try:
            verdict = receiver.recv()
        except (EOFError, OSError):
            verdict = None
        if verdict is not None:
            _end(process, grace=5.0)
            return verdict
    elapsed = time.monotonic() - started
    if process.is_alive() and elapsed < limit:
        return None
    number, seed_name, kind = _meta(folder)
    if process.is_alive():
        _end(process, grace=0.0)
        return Verdict(number, seed_name, kind, "hang", f"still running after {limit:.0f} s", elapsed)
    process.join()
    said = _last_line(folder / "stderr")
    reason = f"the process died (exit code {process.exitcode}){': ' + said if said else ''}"
    return Verdict(number, seed_name, kind, "crash", reason, elapsed)


def _end(process: BaseProcess, grace: float) -> None:
    """Reap ``process``, killing it after ``grace`` seconds with the pdftoppm or tesseract
    it may be waiting for (its process group)."""
    process.join(grace)
    if process.is_alive() and process.pid is not None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            process.kill()
        process.join()


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""
