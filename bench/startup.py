"""CLI start-up: wall time of the commands a clerk runs all day, against bare Python.

A temporary data root gets two generated sample scans, ingested once (OCR, not
timed). Then each command runs ``--runs`` times, the commands taking turns so that
a busy machine weighs on all of them alike, and the median wall time of each is
compared with ``python -c pass`` measured the same way in the same run. Target:
under 0.3 s for --help, search, show and list on an idle machine; on a shared one
read the time over the baseline.

    python bench/startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 0.3
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _medarchive(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "--config", str(config), *args]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=600, check=True)


def _prepare(work: Path) -> tuple[Path, str]:
    """A data root with two filed or reviewed documents; returns the config and one doc id."""
    config = work / "config.yaml"
    config.write_text(f"data_root: {work / 'data'}\nocr:\n  workers: 2\n")
    _run(_medarchive(config, "samples", str(work / "scans"), "--count", "2"))
    subprocess.run(_medarchive(config, "ingest", str(work / "scans")), capture_output=True, cwd=ROOT, env=ENV)
    rows = [json.loads(line) for line in _run(_medarchive(config, "list", "--json")).stdout.splitlines()]
    if not rows:
        sys.exit("the sample scans were not ingested; is tesseract installed?")
    return config, rows[0]["doc_id"]


def _cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _medians(commands: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float]]:
    """Per command: the median wall time, and the median CPU time (which a busy machine inflates less)."""
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            started, cpu_before = time.perf_counter(), _cpu_seconds()
            _run(argv)
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(_cpu_seconds() - cpu_before)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in commands}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="medarchive-startup-") as tmp:
        config, doc_id = _prepare(Path(tmp))
        commands = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "medarchive --help": [sys.executable, "-m", "pipeline", "--help"],
            "medarchive search patient": _medarchive(config, "search", "patient"),
            "medarchive show DOC": _medarchive(config, "show", doc_id),
            "medarchive list": _medarchive(config, "list"),
            "medarchive types": _medarchive(config, "types"),
        }
        medians = _medians(commands, args.runs)
    baseline, _ = medians["python -c pass (baseline)"]
    print(
        f"median of {args.runs} runs each (target: under {TARGET_SECONDS} s wall); load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'command':<28} {'wall s':>7} {'x baseline':>11} {'over baseline':>14} {'CPU s':>6}")
    for name, (seconds, cpu) in medians.items():
        verdict = "" if "baseline" in name else ("  ok" if seconds < TARGET_SECONDS else "  over target")
        print(
            f"{name:<28} {seconds:>7.3f} {seconds / baseline:>11.1f} {seconds - baseline:>14.3f} {cpu:>6.3f}{verdict}"
        )


if __name__ == "__main__":
    main()
