"""OCR throughput of `medarchive ingest` against the raw bound, measured in the same run.

Raw bound: pdftoppm + tesseract (OMP_THREAD_LIMIT=1) on every page, one page per
core, nothing else. Then `medarchive ingest` of the same PDFs into a fresh data
root, alternately, --rounds times. Prints pages/minute for both and the median of
their ratios (target >= 0.9), then the peak RSS (whole process tree) of ingesting
one long scanned PDF (target < 1 GiB).

On a shared machine other load skews the wall-clock ratio, so the CPU seconds per
page of each (every descendant process included) and their ratio are printed too:
with every core busy, throughput is cores / CPU seconds per page.

    python bench/ocr_throughput.py [--pages 48] [--rounds 3] [--big-pages 300]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.samples import scans as samples

_PR_SET_CHILD_SUBREAPER = 36

TYPES = ["discharge_summary", "lab_result", "progress_note", "radiology_report", "consultation", "operative_report"]


def make_pdfs(folder: Path, pages: int, per_file: int = 4) -> list[Path]:
    rng = random.Random(7)
    paths = []
    for n in range(0, pages, per_file):
        count = min(per_file, pages - n)
        doc = samples.make_document(rng, TYPES[n // per_file % len(TYPES)], samples.make_patient(rng), pages=count)
        images = [samples.render_page(list(lines), dpi=300, rng=rng, skew_deg=0.5, noise=0.0015) for lines in doc.pages]
        path = folder / f"scan-{n // per_file:03d}.pdf"
        samples.write_scanned_pdf(path, images, encoding="jpeg", dpi=(300, 300))
        paths.append(path)
    return paths


def page_count(pdf: Path) -> int:
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in out.splitlines() if line.startswith("Pages:")))


def raw_page(pdf: Path, page: int, work: Path) -> None:
    # A session of its own, as medarchive's pool workers have: with the kernel's
    # autogroups, CPU is shared between sessions first, so both compete alike.
    base = work / f"{pdf.stem}-{page}"
    subprocess.run(
        ["pdftoppm", "-r", "300", "-gray", "-f", str(page), "-l", str(page), "-singlefile", str(pdf), str(base)],
        check=True,
        start_new_session=True,
    )
    subprocess.run(
        ["tesseract", f"{base}.pgm", str(base), "-l", "eng"],
        check=True,
        capture_output=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        start_new_session=True,
    )


@dataclass(frozen=True)
class Cost:
    wall: float
    cpu: float


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def become_subreaper() -> None:
    """Orphaned descendants (a worker pool's forkserver) are handed to this process, so
    their CPU seconds are counted once they are reaped."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _reap_orphans() -> None:
    # The worker pool's forkserver outlives ingest and is handed to this process (the
    # subreaper); only once it is reaped do its workers' and tesseracts' CPU seconds count.
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def measured(run: Callable[[], None]) -> Cost:
    cpu, started = children_cpu(), time.monotonic()
    run()
    wall = time.monotonic() - started
    _reap_orphans()
    return Cost(wall, children_cpu() - cpu)


def raw_bound(pdfs: list[Path], work: Path) -> Cost:
    jobs = [(pdf, p) for pdf in pdfs for p in range(1, page_count(pdf) + 1)]

    def run() -> None:
        with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
            list(pool.map(lambda job: raw_page(job[0], job[1], work), jobs))

    return measured(run)


def fresh_config(folder: Path, extra: str = "") -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text("data_root: data\n" + extra)
    return path


def ingest(config: Path, inputs: list[Path]) -> Cost:
    def run() -> None:
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "--config", str(config), "ingest", *map(str, inputs)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if done.returncode not in (0, 2):
            raise SystemExit(f"ingest failed: {done.stderr}")

    return measured(run)


def _tree_rss_kib(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        stack.extend(int(c) for c in children)
    return total


def peak_rss_of_ingest(config: Path, pdf: Path) -> tuple[float, float]:
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(config), "ingest", str(pdf)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kib(proc.pid))
        time.sleep(0.2)
    return peak / 1024, time.monotonic() - started


def long_scan(folder: Path, pages: int) -> Path:
    """A long chart: a handful of rendered pages repeated (rendering is not what is measured)."""
    rng = random.Random(11)
    doc = samples.make_document(rng, "progress_note", samples.make_patient(rng), pages=4)
    images = [samples.render_page(list(lines), dpi=300, rng=rng) for lines in doc.pages]
    path = folder / f"chart-{pages}p.pdf"
    samples.write_scanned_pdf(path, [images[n % len(images)] for n in range(pages)], encoding="jpeg", dpi=(300, 300))
    return path


def _line(what: str, cost: Cost, pages: int) -> str:
    return f"{what + ':':<47}{cost.wall:7.1f} s  {pages / cost.wall * 60:6.1f} pages/min  {cost.cpu / pages:5.2f} CPU s/page"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=48)
    parser.add_argument(
        "--rounds", type=int, default=3, help="raw bound and ingest, one after the other, this many times"
    )
    parser.add_argument("--big-pages", type=int, default=300, help="0 to skip the memory measurement")
    args = parser.parse_args()
    become_subreaper()
    with tempfile.TemporaryDirectory(prefix="medarchive-bench-") as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        pdfs = make_pdfs(work / "in", args.pages)
        print(f"cores: {os.cpu_count()}, pages: {args.pages}, rounds: {args.rounds}")
        wall_ratios, cpu_ratios = [], []
        # A shared machine's load drifts; alternating the two and taking the median
        # ratio keeps a busy minute from landing on one side only.
        for n in range(1, args.rounds + 1):
            (work / f"raw-{n}").mkdir()
            raw = raw_bound(pdfs, work / f"raw-{n}")
            ours = ingest(fresh_config(work / f"run-{n}"), pdfs)
            print(_line(f"round {n}: raw bound (pdftoppm + tesseract)", raw, args.pages))
            print(_line(f"round {n}: medarchive ingest", ours, args.pages))
            wall_ratios.append(raw.wall / ours.wall)
            cpu_ratios.append(raw.cpu / ours.cpu)
        plain = ingest(fresh_config(work / "run-no-barcodes", "barcodes:\n  enabled: false\n"), pdfs)
        print(_line("medarchive ingest, barcode reading off", plain, args.pages))
        print(
            f"ratio ingest / raw bound, median of {args.rounds}: {statistics.median(wall_ratios):.2f} wall "
            f"({', '.join(f'{r:.2f}' for r in wall_ratios)}; target >= 0.90), "
            f"{statistics.median(cpu_ratios):.2f} CPU ({', '.join(f'{r:.2f}' for r in cpu_ratios)})"
        )
        if args.big_pages:
            chart = long_scan(work / "in", args.big_pages)
            peak_mib, seconds = peak_rss_of_ingest(fresh_config(work / "big"), chart)
            print(
                f"peak RSS, {args.big_pages}-page scanned PDF: {peak_mib:.0f} MiB for the whole process tree "
                f"(target < 1024), {seconds:.0f} s, {args.big_pages / seconds * 60:.1f} pages/min"
            )


if __name__ == "__main__":
    main()
