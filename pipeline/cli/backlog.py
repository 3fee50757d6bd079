"""`medarchive backlog`: an overnight run over a tree of old charts, resumable and visible."""

from __future__ import annotations

import signal
import sys
from concurrent.futures import Executor
from contextlib import contextmanager
from pathlib import Path

import click

from pipeline.archive.audit import AuditLog
from pipeline.archive.index import open_index
from pipeline.cli.common import EXIT_FAILED_INPUTS, actor, with_config
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.core.fsutil import atomic_write_json, ensure_dir
from pipeline.core.locks import DaemonLock
from pipeline.runs.backlog import BacklogRunner, report
from pipeline.runs.cluster import cluster_executor
from pipeline.runs.journal import Journal, Run
from pipeline.runs.progress import make_progress
from pipeline.runs.run import make_executor

EXIT_STOPPED = 130
_BUSY = (
    "another backlog run (pid {pid}) is using the data root {root}; wait for it, "
    "or stop it (Ctrl-C or kill {pid}) and resume later"
)


class BacklogError(MedarchiveError):
    pass


def _journal(config: Config) -> tuple[Journal, DaemonLock]:
    folder = ensure_dir(config.root / "backlog")
    # On the shared database each site runs its own backlog; embedded, one per data root.
    name = "backlog.lock" if config.database.url is None else f"backlog.{config.site}.lock"
    lock = DaemonLock(folder / name, busy=_BUSY.replace("{root}", str(config.root)))
    lock.acquire()
    try:
        return Journal.for_config(config), lock
    except BaseException:
        lock.release()
        raise


def _choose_run(config: Config, journal: Journal, folder: Path | None, run_id: str | None) -> Run | Path:
    """The run to continue, or the root of a new one."""
    if run_id:
        run = journal.run(run_id)
        if not journal.owns(run_id):
            raise BacklogError(f"run {run_id} is another site's; run `medarchive backlog --resume {run_id}` there")
        if folder is not None and folder.resolve() != run.root:
            raise BacklogError(f"run {run_id} is over {run.root}, not {folder.resolve()}")
        return run
    if folder is None:
        raise BacklogError("give the FOLDER to take in, or --resume RUN_ID")
    root = folder.resolve()
    if root == config.root or config.root in root.parents:
        raise BacklogError(f"{root} is inside the data root; a backlog is taken from outside it")
    return journal.unfinished_run(root) or root


def _run_config(config: Config, workers: int) -> Config:
    """The config of this run: its own commit size, writer memory and window of pages."""
    return config.model_copy(
        update={
            "ocr": config.ocr.model_copy(update={"workers": workers}),
            "index": config.index.model_copy(
                update={"batch_size": config.backlog.commit_every, "limitmb": config.backlog.limitmb}
            ),
        }
    )


@contextmanager
def _executor(config: Config, workers: int | None, scheduler: str | None):
    """(executor, worker slots, pages travel as bytes), local or on a Dask cluster."""
    if scheduler:
        executor, threads, disconnect = cluster_executor(scheduler, config.backlog.scheduler_timeout_seconds)
        try:
            yield executor, threads, not config.backlog.shared_filesystem
        finally:
            executor.shutdown(wait=False)
            disconnect()
        return
    slots = workers or config.workers
    with make_executor(_run_config(config, slots)) as executor:
        yield executor, slots, False


@contextmanager
def _stop_on_signals(runner: BacklogRunner):
    """The first Ctrl-C or SIGTERM finishes the pages in flight; a second one stops at once."""

    def request_stop(signum, frame):
        click.echo(
            "stopping: finishing the pages in flight (again to stop at once; the run resumes either way)", err=True
        )
        runner.stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    previous = signal.signal(signal.SIGINT, request_stop), signal.signal(signal.SIGTERM, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def _print_summary(summary: dict, shown: int = 20) -> None:
    counts = ", ".join(f"{n} {status}" for status, n in summary["counts"].items())
    state = "complete" if summary["complete"] else "stopped"
    click.echo(
        f"run {summary['run_id']} {state}: {summary['files']} files ({counts}), {summary['pages']} pages, "
        f"{summary['wall_seconds']:.0f} s, {summary['pages_per_minute'] or 0:.0f} pages/min"
    )
    for status in ("failed", "review"):
        for item in summary[status][:shown]:
            click.echo(f"  {status:<7} {item['file']}: {item['reason']}")
        if len(summary[status]) > shown:
            click.echo(f"  ... and {len(summary[status]) - shown} more {status} (see --report)")


def _list_runs(journal: Journal) -> None:
    runs = journal.runs()
    for run in runs:
        summary = report(journal, run)
        state = "complete" if run.finished_at else "unfinished"
        click.echo(f"{run.run_id}  {state:<10}  {summary['files']:>7} files  {run.root}")
    click.echo(f"{len(runs)} run(s)", err=True)


@click.command()
@click.argument("folder", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--workers", type=click.IntRange(1), help="OCR processes on this machine (default: one per core)")
@click.option("--scheduler", metavar="ADDRESS", help="do the page work on a Dask cluster, e.g. tcp://ocr1:8786")
@click.option(
    "--resume", "run_id", metavar="RUN_ID", help="continue this run (re-running over the same FOLDER does too)"
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="also write the summary here as JSON",
)
@click.option("--runs", "list_runs", is_flag=True, help="list the runs of this data root and exit")
@with_config
def backlog(config: Config, folder, workers, scheduler, run_id, report_file, list_runs):
    """Take in a folder tree of PDFs and page images (TIFF/PNG/JPEG); the files are never modified.

    Stop it any way you like (Ctrl-C, SIGTERM, kill -9, a reboot): the same command continues.
    """
    journal, lock = _journal(config)
    try:
        if list_runs:
            _list_runs(journal)
            return
        chosen = _choose_run(config, journal, folder, run_id)
        if isinstance(chosen, Run) and chosen.finished_at is not None:
            run, complete = chosen, True
        else:
            with _executor(config, workers, scheduler) as pool:
                run = chosen if isinstance(chosen, Run) else journal.new_run(chosen)
                complete = _take_in(config, journal, run, pool)
        summary = report(journal, journal.run(run.run_id))
    finally:
        journal.close()
        lock.release()
    _print_summary(summary)
    if report_file:
        atomic_write_json(report_file, summary)
    if not complete:
        click.echo(f"to continue: medarchive backlog --resume {run.run_id}", err=True)
        sys.exit(EXIT_STOPPED)
    if summary["counts"]["failed"]:
        sys.exit(EXIT_FAILED_INPUTS)


def _take_in(config: Config, journal: Journal, run: Run, pool: tuple[Executor, int, bool]) -> bool:
    executor, slots, as_bytes = pool
    click.echo(f"backlog run {run.run_id} over {run.root}", err=True)
    audit, user = AuditLog.for_config(config), actor()
    run_config = _run_config(config, slots)
    index = open_index(run_config)
    runner = BacklogRunner(run_config, index, executor, journal, run, audit=audit, user=user, pages_as_bytes=as_bytes)
    census = runner.start_census()
    try:
        with _stop_on_signals(runner), make_progress(runner.tally, config.backlog.progress_seconds) as progress:
            complete = runner.execute(progress.refresh)
    finally:
        census.stop()
        index.close()
    audit.record(
        "backlog",
        user=user,
        outcome="ok" if complete else "stopped",
        details={"run_id": run.run_id, "root": str(run.root), "counts": dict(runner.tally.counts)},
    )
    return complete


COMMANDS = [backlog]
