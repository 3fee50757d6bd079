"""Identification and classification accuracy on generated corpora with ground truth.

Part 1 (default config): every document is written in one of the delivery styles
(clean scan, noisy scan, fax, bitonal G4, born-digital, upside down, sideways...),
ingested, and compared with its truth. Prints % filed under the right MRN,
% misfiled (must be 0), % in review, and type accuracy, overall and per style.
Targets: >= 95 % of fileable documents filed correctly, 0 misfiled.

Part 2 (with a patient roster): documents with patient barcode labels, batches of
2-5 documents cut by separator sheets, rotated pages, patients who share a name.
Prints the same figures plus % of roster-MRN documents filed correctly (target
>= 97 %), % of barcode-labelled documents filed correctly (target 100 %) and
separator-sheet split exactness (target 100 %).

    python bench/accuracy.py [--docs 72] [--batches 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.samples import labels
from pipeline.samples import scans as samples  # noqa: E402


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


def ingest(work: Path, config_text: str) -> list[dict]:
    (work / "config.yaml").write_text(config_text)
    cli = [sys.executable, "-m", "pipeline", "--config", str(work / "config.yaml")]
    subprocess.run([*cli, "ingest", str(work / "in")], cwd=ROOT, capture_output=True, check=False)
    listed = subprocess.run([*cli, "list", "--json"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in listed.splitlines()]


def part_one(args) -> None:
    with tempfile.TemporaryDirectory(prefix="medarchive-accuracy-") as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        truth = write_corpus(work / "in", args.docs, args.seed)
        listed = ingest(work, "data_root: data\n")
    rows = {row["source"]["file"]: row for row in listed}
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


@dataclass
class Placed:
    """A document of part 2: which input file, which of its pages, and its truth."""

    file: str
    pages: list[int]
    truth: dict
    labelled: bool


def _images(doc, rng: random.Random, labelled: bool, rotate: int) -> list:
    images = [samples.render_page(list(lines), dpi=300, rng=rng, skew_deg=rng.uniform(-1, 1), rotate=rotate if k == 0 else 0)
              for k, lines in enumerate(doc.pages)]
    if labelled and doc.patient:
        label = labels.patient_label(doc.patient.mrn, doc.patient.name, doc.patient.dob, rng.choice(["Code128", "DataMatrix", "QRCode", "Code39"]))
        images[0] = labels.paste_label(images[0], label, (1400, 120))
    return images


def write_identification_corpus(folder: Path, batches: int, seed: int) -> tuple[list[Placed], list]:
    rng = random.Random(seed + 99)
    patients = [samples.make_patient(rng) for _ in range(16)]
    twin = samples.Patient(str(int(patients[0].mrn) + 1234567)[-8:], patients[0].last, patients[0].first, "1999-12-31")
    patients.append(twin)
    placed = []
    for b in range(batches):
        images, pages = [], []
        for d in range(rng.randint(2, 5)):
            if images:
                images.append(labels.separator_sheet())
            doc = samples.make_document(rng, rng.choice(samples.DOC_TYPES), rng.choice(patients), pages=rng.choice((1, 1, 2)))
            labelled = rng.random() < 0.4
            rotate = rng.choice((0, 0, 0, 180, 90))
            first = len(images) + 1
            images.extend(_images(doc, rng, labelled, rotate))
            placed.append(Placed(f"batch-{b:02d}.pdf", list(range(first, len(images) + 1)), samples.ground_truth_json(doc), labelled))
        samples.write_scanned_pdf(folder / f"batch-{b:02d}.pdf", images, encoding="jpeg", dpi=(300, 300))
    return placed, patients


def part_two(args) -> None:
    with tempfile.TemporaryDirectory(prefix="medarchive-identification-") as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        placed, patients = write_identification_corpus(work / "in", args.batches, args.seed)
        with open(work / "roster.csv", "w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["mrn", "last_name", "first_name", "dob"])
            out.writerows([p.mrn, p.last, p.first, p.dob] for p in patients)
        listed = ingest(work, "data_root: data\nroster:\n  path: roster.csv\n")
    produced = {(r["source"]["file"], tuple(r["source"]["pages"])): r for r in listed}
    counts, labelled_ok, labelled, roster_ok, roster_docs, types_ok = Counter(), 0, 0, 0, 0, 0
    for doc in placed:
        row = produced.get((doc.file, tuple(doc.pages)))
        v = verdict(doc.truth, row) if row else "split_wrong"
        counts[v] += 1
        types_ok += bool(row and row["doc_type"] == doc.truth["doc_type"])
        if doc.truth["expect"] == "filed":
            roster_docs += 1
            roster_ok += v == "filed_ok"
            labelled += doc.labelled
            labelled_ok += doc.labelled and v == "filed_ok"
        if args.details and v not in ("filed_ok", "review_ok"):
            print(f"  {v:<11} {doc.file} pages {doc.pages}: truth {doc.truth['mrn']} got {row and (row['status'], row['mrn'], row['review_reason'])}")
    exact = len(placed) - counts["split_wrong"]
    total = len(placed)
    print(f"\npart 2, with a roster: {total} documents in {args.batches} separator-sheet batches")
    print(f"split exactly right:              {exact}/{total} = {100 * exact / total:.1f} % (target 100 %)")
    print(f"roster-MRN documents filed right: {roster_ok}/{roster_docs} = {100 * roster_ok / max(1, roster_docs):.1f} % (target >= 97 %)")
    print(f"barcode-labelled filed right:     {labelled_ok}/{labelled} = {100 * labelled_ok / max(1, labelled):.1f} % (target 100 %)")
    print(f"misfiled:                         {counts['misfiled']} (must be 0)")
    print(f"in review:                        {counts['review'] + counts['review_ok']} ({counts['review_ok']} expected)")
    print(f"type accuracy:                    {types_ok}/{total} = {100 * types_ok / total:.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=72)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", choices=["1", "2", "both"], default="both")
    parser.add_argument("--details", action="store_true", help="print every document that was not filed correctly")
    args = parser.parse_args()
    if args.part in ("1", "both"):
        part_one(args)
    if args.part in ("2", "both"):
        part_two(args)


if __name__ == "__main__":
    main()
