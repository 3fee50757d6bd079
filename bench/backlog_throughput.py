"""Throughput of `medarchive backlog` against the raw bound, measured in the same run.

A generated backlog (nested folders of 4-page scanned charts) is OCRed three ways:
the raw bound (pdftoppm + tesseract, OMP_THREAD_LIMIT=1, one page per core, nothing
else), `medarchive backlog` with its local process pool (target >= 0.9x the raw
bound), and `medarchive backlog --scheduler` on a Dask LocalCluster of 2 workers with
1 thread each (target >= 0.8x the local pool). Wall-clock pages/minute and ratios are
printed, and CPU seconds per page (every descendant process counted), which a noisy
shared machine skews less.

    python bench/backlog_throughput.py [--pages 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from ocr_throughput import (
    ROOT,
    Cost,
    become_subreaper,
    children_cpu,
    fresh_config,
    make_pdfs,
    measured,
    raw_bound,
)


def make_tree(root: Path, pages: int) -> list[Path]:
    """Charts spread over year folders, as a records room's shares are."""
    flat = root / "all"
    flat.mkdir(parents=True)
    pdfs = make_pdfs(flat, pages)
    moved = []
    for n, pdf in enumerate(pdfs):
        target = root / f"{2015 + n % 4}" / f"box-{n % 3}" / pdf.name
        target.parent.mkdir(parents=True, exist_ok=True)
        moved.append(pdf.rename(target))
    flat.rmdir()
    return moved


def _run_backlog(config: Path, tree: Path, *extra: str) -> dict:
    report = config.parent / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "--config",
            str(config),
            "backlog",
            str(tree),
            "--report",
            str(report),
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode not in (0, 2):
        raise SystemExit(f"backlog failed: {done.stderr}")
    return json.loads(report.read_text())


def backlog(config: Path, tree: Path) -> tuple[Cost, dict]:
    report: dict = {}
    cost = measured(lambda: report.update(_run_backlog(config, tree)))
    return cost, report


def _cpu_of(processes: list[psutil.Process]) -> float:
    """CPU seconds of processes and of the children they have reaped (their tesseracts)."""
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system + times.children_user + times.children_system
    return total


def on_local_cluster(config: Path, tree: Path) -> tuple[Cost, dict]:
    """The Dask workers live on after the run, so their CPU is read from them, not reaped.
    They are set up as the README advises for OCR workers: no statistical profiler."""
    import dask
    from distributed import LocalCluster

    dask.config.set({"distributed.worker.profile.enabled": False})
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        workers = psutil.Process().children(recursive=True)
        before, started = _cpu_of(workers) + children_cpu(), time.monotonic()
        report = _run_backlog(config, tree, "--scheduler", cluster.scheduler_address)
        wall = time.monotonic() - started
        return Cost(wall, _cpu_of(workers) + children_cpu() - before), report


def line(name: str, pages: int, cost: Cost, against: Cost | None = None) -> str:
    ratio = (
        f"  {against.wall / cost.wall:5.2f}x wall, {(against.cpu / pages) / (cost.cpu / pages):5.2f}x CPU"
        if against
        else ""
    )
    return f"{name:<28} {pages * 60 / cost.wall:7.1f} pages/min  {cost.cpu / pages:5.2f} CPU s/page{ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    args = parser.parse_args()
    become_subreaper()
    with tempfile.TemporaryDirectory(prefix="medarchive-bench-") as tmp:
        work = Path(tmp)
        pdfs = make_tree(work / "charts", args.pages)
        (work / "raw").mkdir()
        raw = raw_bound(pdfs, work / "raw")
        pages = args.pages
        print(line("raw pdftoppm + tesseract", pages, raw), flush=True)
        local, report = backlog(fresh_config(work / "local"), work / "charts")
        print(line("medarchive backlog (local)", pages, local, raw) + "   target >= 0.90x the raw bound", flush=True)
        cluster, cluster_report = on_local_cluster(fresh_config(work / "dask"), work / "charts")
        print(line("medarchive backlog (Dask)", pages, cluster, local) + "   target >= 0.80x the local pool")
    print(
        f"backlog of {len(pdfs)} files, {report['pages']} pages; outcomes {report['counts']}; on Dask {cluster_report['counts']}"
    )


if __name__ == "__main__":
    main()
