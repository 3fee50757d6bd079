"""Identification and classification accuracy on a generated corpus with ground truth.

Every document is written in one of the delivery styles (clean scan, noisy scan,
fax, bitonal G4, born-digital, upside down, sideways...), ingested with the
default config, and compared with its truth. Prints % filed under the right MRN,
% misfiled (must be 0), % in review, and type accuracy, overall and per style.
Targets: >= 95 % of fileable documents filed correctly, 0 misfiled.

    python bench/accuracy.py [--docs 72] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import samples  # noqa: E402


def write_corpus(folder: Path, count: int, seed: int) -> dict[str, tuple[str, dict]]:
    styles = sorted(samples.STYLES)
    truth = {}
    for n, doc in enumerate(samples.make_corpus(count, seed=seed)):
        style = styles[n % len(styles)]
        name = f"doc-{n:03d}-{style}.pdf"
        samples.write_sample_pdf(folder / name, doc, style, seed=seed * 1000 + n)
        truth[name] = (style, samples.ground_truth_json(doc))
    return truth


def verdict(truth: dict, row: dict | None) -> str:
    if row is None:
        return "missing"
    if row["status"] == "filed":
        return "filed_ok" if truth["expect"] == "filed" and row["mrn"] == truth["mrn"] else "misfiled"
    return "review_ok" if truth["expect"] == "review" else "review"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=72)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--details", action="store_true", help="print every document that was not filed correctly")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="medarchive-accuracy-") as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        (work / "config.yaml").write_text("data_root: data\n")
        truth = write_corpus(work / "in", args.docs, args.seed)
        cli = [sys.executable, "-m", "pipeline", "--config", str(work / "config.yaml")]
        subprocess.run([*cli, "ingest", str(work / "in")], cwd=ROOT, capture_output=True, check=False)
        listed = subprocess.run([*cli, "list", "--json"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    rows = {row["source"]["file"]: row for row in map(json.loads, listed.splitlines())}
    overall, by_style, types_ok = Counter(), defaultdict(Counter), 0
    problems = []
    for name, (style, t) in sorted(truth.items()):
        row = rows.get(name)
        v = verdict(t, row)
        overall[v] += 1
        by_style[style][v] += 1
        types_ok += bool(row and row["doc_type"] == t["doc_type"])
        if v not in ("filed_ok", "review_ok"):
            problems.append((name, v, t, row))
    fileable = sum(1 for _, t in truth.values() if t["expect"] == "filed")
    total = len(truth)
    print(f"documents: {total} ({fileable} fileable, {total - fileable} that must go to review)")
    print(f"filed under the right MRN: {overall['filed_ok']}/{fileable} = {100 * overall['filed_ok'] / fileable:.1f} % of fileable (target >= 95 %)")
    print(f"misfiled:                  {overall['misfiled']} = {100 * overall['misfiled'] / total:.1f} % (must be 0)")
    print(f"in review:                 {overall['review'] + overall['review_ok']} = {100 * (overall['review'] + overall['review_ok']) / total:.1f} % "
          f"({overall['review_ok']} expected, {overall['review']} fileable sent to review)")
    print(f"missing:                   {overall['missing']}")
    print(f"type accuracy:             {types_ok}/{total} = {100 * types_ok / total:.1f} %")
    print("per style: filed_ok / review (fileable) / misfiled / review_ok")
    for style, c in sorted(by_style.items()):
        print(f"  {style:<12} {c['filed_ok']:>3} {c['review']:>3} {c['misfiled']:>3} {c['review_ok']:>3}")
    if args.details:
        for name, v, t, row in problems:
            got = {k: row.get(k) for k in ("status", "mrn", "doc_type", "review_reason")} if row else None
            print(f"{v:<9} {name}: truth mrn={t['mrn']} type={t['doc_type']} expect={t['expect']} got={got}")


if __name__ == "__main__":
    main()
