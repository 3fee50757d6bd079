"""Intake over real odd, broken and encrypted PDFs (../shared/pdf-zoo): no crash, no loss.

Ingests every zoo PDF into a fresh data root and prints what became of each: filed,
review (with the reason), failed (with the reason) or duplicate. Every input must
be accounted for, and the run must end with exit 0 or 2, never a traceback.

    python bench/pdf_zoo.py [--zoo ../shared/pdf-zoo]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo", type=Path, default=ROOT.parent / "shared" / "pdf-zoo")
    args = parser.parse_args()
    inputs = sorted(args.zoo.rglob("*.pdf"))
    if not inputs:
        raise SystemExit(f"no PDFs under {args.zoo}")
    with tempfile.TemporaryDirectory(prefix="medarchive-zoo-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text("data_root: data\n")
        cli = [sys.executable, "-m", "pipeline", "--config", str(config)]
        started = time.monotonic()
        done = subprocess.run([*cli, "ingest", *map(str, inputs)], cwd=ROOT, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        docs = [json.loads(line) for line in subprocess.run([*cli, "list", "--json"], cwd=ROOT, capture_output=True, text=True).stdout.splitlines()]
        failed = [json.loads(line) for line in subprocess.run([*cli, "list", "--failed", "--json"], cwd=ROOT, capture_output=True, text=True).stdout.splitlines()]
    lines = done.stdout.splitlines()
    statuses = Counter(line.split()[0] for line in lines if line.strip())
    for line in lines:
        print(line[:200])
    print()
    print(f"{len(inputs)} zoo PDFs in {elapsed:.0f} s: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    print(f"archive holds {len(docs)} document(s); failed/ holds {len(failed)} input(s); ingest exit code {done.returncode}")
    crashed = "Traceback" in done.stderr or done.returncode not in (0, 2)
    accounted = sum(statuses.values()) == len(inputs)
    print(f"no crash: {'yes' if not crashed else 'NO'}; every input accounted for: {'yes' if accounted else 'NO'}")
    if crashed:
        print(done.stderr[-3000:])


if __name__ == "__main__":
    main()
