"""Drop-to-searchable latency of `medarchive watch`, next to the pipeline's own time.

Drops N single-page scans into the drop folder at a steady rate (each appears
complete at once, by rename). For each: latency = searchable (its source hash is
in the index) minus the moment it appeared; processing = the pipeline's own time
for it (from the activity log); overhead = latency - processing - quiet period.
Target: p95 overhead under 2 s at a rate the machine sustains.

    python bench/watch_latency.py [--files 20] [--interval 4] [--quiet 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.archive.index import open_index
from pipeline.core.config import load_config
from pipeline.samples import scans as samples


def make_scans(folder: Path, count: int) -> list[Path]:
    rng = random.Random(3)
    paths = []
    for n in range(count):
        doc = samples.make_document(rng, "progress_note", samples.make_patient(rng), pages=1)
        image = samples.render_page(list(doc.pages[0]), dpi=300, rng=rng)
        path = folder / f"w{n:03d}.pdf"
        samples.write_scanned_pdf(path, [image], encoding="jpeg", dpi=(300, 300))
        paths.append(path)
    return paths


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--interval", type=float, default=4.0, help="seconds between drops")
    parser.add_argument("--quiet", type=float, default=1.0, help="the daemon's quiet period")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="medarchive-watch-bench-") as tmp:
        work = Path(tmp)
        (work / "staging").mkdir()
        config_path = work / "config.yaml"
        config_path.write_text(f"data_root: data\nwatch:\n  quiet_seconds: {args.quiet}\n  rescan_seconds: 600\n")
        scans = make_scans(work / "staging", args.files)
        hashes = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in scans}
        config = load_config(config_path)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--config", str(config_path), "watch"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            config.drop_dir.mkdir(parents=True, exist_ok=True)
            time.sleep(3)
            appeared, searchable = {}, {}
            index = open_index(config)
            next_drop, queue = time.monotonic(), list(scans)
            deadline = time.monotonic() + args.files * args.interval + 300
            while len(searchable) < len(scans) and time.monotonic() < deadline:
                if queue and time.monotonic() >= next_drop:
                    path = queue.pop(0)
                    os.rename(path, config.drop_dir / path.name)
                    appeared[path.name] = time.monotonic()
                    next_drop += args.interval
                for name in [n for n in appeared if n not in searchable]:
                    if index.doc_ids_for_source(hashes[name]):
                        searchable[name] = time.monotonic()
                time.sleep(0.05)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=120)
        own = {}
        for line in (config.root / "activity.jsonl").read_text().splitlines():
            entry = json.loads(line)
            own[entry["file"]] = entry.get("seconds", 0.0)
    names = sorted(searchable)
    latency = [searchable[n] - appeared[n] for n in names]
    processing = [own.get(n, 0.0) for n in names]
    overhead = [lat - proc - args.quiet for lat, proc in zip(latency, processing, strict=True)]
    print(
        f"files: {len(names)}/{args.files} searchable, one every {args.interval:.1f} s, quiet period {args.quiet:.1f} s, {os.cpu_count()} cores"
    )
    for label, values in (
        ("latency (appeared -> searchable)", latency),
        ("pipeline processing time", processing),
        ("overhead (latency - processing - quiet)", overhead),
    ):
        print(
            f"{label:<42} p50 {statistics.median(values):6.2f} s   p95 {percentile(values, 0.95):6.2f} s   max {max(values):6.2f} s"
        )
    print(f"target: p95 overhead < 2 s -> {'met' if percentile(overhead, 0.95) < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
