"""Hostile input, counted: fuzzed PDFs through intake and page reading, then the real odd
PDFs of ../shared/pdf-zoo through ``medarchive ingest`` in one command.

Fuzz: ``--n`` cases made by pipeline/samples/mutate.py from the project's own samples
(truncated, bit-flipped, lying lengths and sizes, looping and deep page trees, poisoned
XMP...), each vetted and read in a process of its own (see pipeline/samples/fuzz.py).
Prints how many were read, refused (by reason), crashed (an exception escaped, or the
process died) or hung (killed past the case's time), and the slowest case.
Target: 0 crashes, 0 hangs.

Zoo: every PDF in ``--zoo`` ingested into a fresh data root in ONE command. Prints how
many were filed, sent to review, failed (by reason) or duplicates; whether every input
is accounted for; the exit code (0, or 2 when any input failed); whether a traceback
was printed. Target: every input accounted for, no traceback.

    python bench/fuzz_intake.py [--n 5000] [--seed 0] [--workers 1] [--zoo PATH | --no-zoo]

A crashing case is remade from its number: ``mutate.case(number, seed).data``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from pipeline.core.config import IntakeSettings
from pipeline.samples import fuzz

ROOT = Path(__file__).resolve().parent.parent

# Reasons grouped into what a person would do about them; the first pattern that matches wins.
FAMILIES = (
    ("encrypted", r"encrypted|password"),
    ("decompression bomb", r"decompression bomb"),
    ("empty or not a PDF", r"empty file|not a PDF|no pages"),
    ("page box", r"page box"),
    ("page tree", r"page tree|/Pages|Kids"),
    ("internal error", r"internal error"),
    ("set aside after crashes", r"stopped the daemon|killed|crash"),
    ("damaged beyond repair", r"damaged|cannot be repaired|trailer|xref|cross-reference|/Root"),
    ("render timed out", r"render\w* timed out|page timed out"),
    ("render failed", r"cannot render|renderer produced no image"),
    ("OCR timed out", r"OCR timed out"),
    ("OCR failed", r"OCR "),
    ("page unreadable", r"cannot read page"),
    ("cannot read", r"cannot read|overflow|integer"),
)


def family(reason: str) -> str:
    return next((name for name, pattern in FAMILIES if re.search(pattern, reason, re.IGNORECASE)), "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="fuzz cases (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1) // 2))
    parser.add_argument("--page-timeout", type=float, default=30.0, help="seconds a page may take")
    parser.add_argument("--ocr-every", type=int, default=25, help="real tesseract on every k-th case (0: never)")
    parser.add_argument("--zoo", type=Path, default=ROOT.parent / "shared" / "pdf-zoo")
    parser.add_argument("--no-zoo", action="store_true")
    args = parser.parse_args()
    if args.n:
        fuzz_cases(args)
    if not args.no_zoo:
        zoo(args.zoo)


def fuzz_cases(args: argparse.Namespace) -> None:
    reading = fuzz.Reading(page_timeout=args.page_timeout, ocr_every=args.ocr_every, intake=IntakeSettings())
    # Intake, then each page within its timeout, and slack for a loaded machine.
    limit = (fuzz.PAGES_READ + 2) * args.page_timeout
    print(
        f"fuzz: {args.n} cases, seed {args.seed}, {args.workers} worker(s), page timeout {args.page_timeout:.0f} s, "
        f"case limit {limit:.0f} s, tesseract on every {args.ocr_every or 'no'} case"
    )
    statuses, refusals, page_errors, kinds = Counter(), Counter(), Counter(), Counter()
    bad, slowest = [], None
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-intake-") as tmp:
        for done, verdict in enumerate(
            fuzz.run_cases(range(args.n), args.seed, Path(tmp), reading, workers=args.workers, limit=limit), 1
        ):
            statuses[verdict.status] += 1
            kinds[verdict.kind.split("+")[0], verdict.status] += 1
            if verdict.status == "refused":
                refusals[family(verdict.reason)] += 1
            page_errors.update(family(error) for error in verdict.page_errors)
            if verdict.status in ("crash", "hang"):
                bad.append(verdict)
            if slowest is None or verdict.seconds > slowest.seconds:
                slowest = verdict
            if done % 500 == 0:
                print(f"  {done} cases in {time.monotonic() - started:.0f} s: {dict(statuses)}", flush=True)
    elapsed = time.monotonic() - started
    print(f"\nfuzz: {args.n} cases in {elapsed:.0f} s")
    for status in ("read", "refused", "crash", "hang"):
        print(f"  {status:<8} {statuses[status]}")
    _breakdown("refused, by reason", refusals)
    _breakdown("pages read without text, by error", page_errors)
    print("  by mutation (read/refused/crash/hang):")
    for kind in sorted({k for k, _ in kinds}):
        print(f"    {kind:<18} " + "/".join(str(kinds[kind, s]) for s in ("read", "refused", "crash", "hang")))
    if slowest is not None:
        print(f"  slowest case: {slowest.seconds:.1f} s (case {slowest.number}, {slowest.kind} of {slowest.seed_name})")
    for verdict in bad[:30]:
        print(
            f"  {verdict.status.upper()} case {verdict.number} ({verdict.kind} of {verdict.seed_name}): {verdict.reason}"
        )
    print(f"  target 0 crashes, 0 hangs: {'met' if not bad else 'NOT MET'}")


def _breakdown(title: str, counts: Counter) -> None:
    if counts:
        print(f"  {title}: " + ", ".join(f"{name} {n}" for name, n in counts.most_common()))


def zoo(folder: Path) -> None:
    inputs = sorted(folder.rglob("*.pdf"))
    if not inputs:
        raise SystemExit(f"no PDFs under {folder}")
    with tempfile.TemporaryDirectory(prefix="zoo-ingest-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text("data_root: data\n")
        cli = [sys.executable, "-m", "pipeline", "--config", str(config)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        print(f"\nzoo: medarchive ingest of {len(inputs)} PDFs from {folder} (one command)", flush=True)
        started = time.monotonic()
        lines, stderr, code = _ingest([*cli, "ingest", *map(str, inputs)], env)
        elapsed = time.monotonic() - started
    statuses = Counter(line.split()[0] for line in lines)
    failed = Counter(family(line.split(": ", 1)[-1]) for line in lines if line.startswith("failed"))
    traceback = "Traceback (most recent call last)" in "\n".join(lines) + stderr
    print(f"zoo: {len(inputs)} files in {elapsed:.0f} s")
    for status in ("filed", "split", "review", "failed", "duplicate"):
        print(f"  {status:<10} {statuses[status]}")
    _breakdown("failed, by reason", failed)
    unknown = set(statuses) - {"filed", "split", "review", "failed", "duplicate"}
    if unknown:
        print(f"  other lines: {sorted(unknown)}")
    accounted = len(lines) == len(inputs) and not unknown
    print(f"  every file accounted for: {'yes' if accounted else f'NO ({len(lines)} of {len(inputs)})'}")
    print(f"  exit code: {code}")
    print(f"  traceback printed: {'YES' if traceback else 'no'}")
    if traceback or code not in (0, 2):
        print(stderr[-3000:])


def _ingest(command: list[str], env: dict[str, str]) -> tuple[list[str], str, int]:
    """Run ``command``; its report lines, one per input (a split input's documents follow
    it indented, and are left out), its stderr and exit code. Shows progress as it goes."""
    with tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        lines = []
        for line in process.stdout:
            if line.strip() and not line.startswith(" "):
                lines.append(line.rstrip("\n"))
                if len(lines) % 25 == 0:
                    print(f"  {len(lines)} inputs reported", flush=True)
        code = process.wait()
        err.seek(0)
        return lines, err.read(), code


if __name__ == "__main__":
    main()
