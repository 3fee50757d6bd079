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

Part 3 (issue #15, real paper, no OCR run): documents as OCR text with the label
spellings OCR makes ("Med Ree No.", "MRWN", "DOR"), garbled distractor labels ("Acet",
"F1N"), some labels garbled past any tolerance, and MRNs read at low word confidence,
identified and decided by the real code without and with a roster, and with labels read
exactly as before #15 for comparison. Targets: 0 misfiled, >= 98 % of fileable documents
filed under the right MRN without a roster, >= 99.5 % with. Prints the review reasons
left. Then --paper-ocr of the garbled-label documents are printed, scanned and OCRed.

Part 4 (OCR): batches cut by the printed Kodak-style "PATCH T" sheet (pipeline.samples.
separators), scanned at 200/300 dpi, G4 or JPEG, upside down, fuzzy, turned, stretched;
first page, last page, two in a row, middle; and a file of sheets only. Target: 100 %
of splits exact.

Part 5 (born-digital ingest): clerk searches "<last name> <type word>" where OCR misread
a quarter of the printed surnames by one letter. Prints search@5 (target >= 98 %).

Part 6 (issue #25, damaged paper): batches of 1-3 documents cut by PATCH T sheets, every
page (sheets too) put through two to four kinds of damage at realistic strengths
(pipeline.samples.damage: copies of copies, drum streaks, folds, low ink, highlighter, pen,
bleed-through, uneven light), and the same batches undamaged. Each is ingested without and
with the patient index. Prints misfiled (must be 0), filed right (targets: damaged >= 90 %
without the index, >= 95 % with), review reasons, splits (>= 95 %), type accuracy of filed
documents, search@5 "<last name> <type word>", pages/min against the raw tesseract bound
of the same pages measured in the same run (clean >= 0.9x), and the second look's share
of pages, winners and cost.

    python bench/accuracy.py [--part all|1,2,3,4,5,6] [--docs 72] [--batches 8] [--seed 0]
        [--paper-docs 1000] [--paper-ocr 24] [--sep-batches 6] [--search-docs 120]
        [--damaged-batches 12]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import string
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.core.config import Config, load_config
from pipeline.core.models import PageText, Word
from pipeline.identify.documents import SourceFacts, build_documents
from pipeline.identify.roster import Roster, RosterPatient
from pipeline.samples import labels, separators
from pipeline.samples import scans as samples


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
    print(
        f"filed under the right MRN: {overall['filed_ok']}/{fileable} = {100 * overall['filed_ok'] / fileable:.1f} % of fileable (target >= 95 %)"
    )
    print(f"misfiled:                  {overall['misfiled']} = {100 * overall['misfiled'] / total:.1f} % (must be 0)")
    print(
        f"in review:                 {overall['review'] + overall['review_ok']} = {100 * (overall['review'] + overall['review_ok']) / total:.1f} % "
        f"({overall['review_ok']} expected, {overall['review']} fileable sent to review)"
    )
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
    images = [
        samples.render_page(list(lines), dpi=300, rng=rng, skew_deg=rng.uniform(-1, 1), rotate=rotate if k == 0 else 0)
        for k, lines in enumerate(doc.pages)
    ]
    if labelled and doc.patient:
        label = labels.patient_label(
            doc.patient.mrn,
            doc.patient.name,
            doc.patient.dob,
            rng.choice(["Code128", "DataMatrix", "QRCode", "Code39"]),
        )
        images[0] = labels.paste_label(images[0], label, (1400, 120))
    return images


def write_identification_corpus(folder: Path, batches: int, seed: int) -> tuple[list[Placed], list]:
    rng = random.Random(seed + 99)
    patients = [samples.make_patient(rng) for _ in range(16)]
    twin = samples.Patient(str(int(patients[0].mrn) + 1234567)[-8:], patients[0].last, patients[0].first, "1999-12-31")
    patients.append(twin)
    placed = []
    for b in range(batches):
        images = []
        for _ in range(rng.randint(2, 5)):
            if images:
                images.append(labels.separator_sheet())
            doc = samples.make_document(
                rng, rng.choice(samples.DOC_TYPES), rng.choice(patients), pages=rng.choice((1, 1, 2))
            )
            labelled = rng.random() < 0.4
            rotate = rng.choice((0, 0, 0, 180, 90))
            first = len(images) + 1
            images.extend(_images(doc, rng, labelled, rotate))
            placed.append(
                Placed(
                    f"batch-{b:02d}.pdf", list(range(first, len(images) + 1)), samples.ground_truth_json(doc), labelled
                )
            )
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
            print(
                f"  {v:<11} {doc.file} pages {doc.pages}: truth {doc.truth['mrn']} got {row and (row['status'], row['mrn'], row['review_reason'])}"
            )
    exact = len(placed) - counts["split_wrong"]
    total = len(placed)
    print(f"\npart 2, with a roster: {total} documents in {args.batches} separator-sheet batches")
    print(f"split exactly right:              {exact}/{total} = {100 * exact / total:.1f} % (target 100 %)")
    print(
        f"roster-MRN documents filed right: {roster_ok}/{roster_docs} = {100 * roster_ok / max(1, roster_docs):.1f} % (target >= 97 %)"
    )
    print(
        f"barcode-labelled filed right:     {labelled_ok}/{labelled} = {100 * labelled_ok / max(1, labelled):.1f} % (target 100 %)"
    )
    print(f"misfiled:                         {counts['misfiled']} (must be 0)")
    print(
        f"in review:                        {counts['review'] + counts['review_ok']} ({counts['review_ok']} expected)"
    )
    print(f"type accuracy:                    {types_ok}/{total} = {100 * types_ok / total:.1f} %")


# ---------------------------------------------------------------- part 3: real paper, as OCR text

# What OCR made of printed labels in the scans, all within the label tolerance.
GARBLED_MRN_LABELS = (
    "Med Ree No.",
    "MRWN",
    "MRM",
    "Medlcal Record Nurnber",
    "Medical Recard #",
    "Patlent lD",
    "Med Rec N0.",
    "Chart Nurnber",
    "Unit Nurnber",
    "M R N",
    "Hospita1 No.",
    "MedRee No",
)
# Past any tolerance: only a roster can place the number that follows.
LOST_MRN_LABELS = ("Mcd Rcc Na.", "HRW", "Patiemt 1O", "Nled Roc Ho.")
GARBLED_DOB_LABELS = {"Date of Birth": "Date of Blrth", "Birth Date": "Birth Dale", "D.O.B.": "D.0.B.", "DOB": "DOR"}
GARBLED_NAME_LABELS = {
    "Patient's Name": "Patient's Nane",
    "Patient Name": "Patlent Narne",
    "Pt Name": "Pt Narne",
    "Patient": "Patlent",
    "Name": "Narne",
}
GARBLED_DECOYS = {
    "Account": "Acc0unt",
    "Acct": "Acet",
    "Encounter": "Encounler",
    "Enc #": "Eno #",
    "FIN": "F1N",
    "CSN": "C5N",
    "Visit": "Vislt",
    "Phone": "Phane",
    "Member": "Mernber",
    "Order": "0rder",
}
_CLEAR, _LOW = 93.0, (35.0, 59.0)


def _swap(lines: list[str], table: dict[str, str], limit: int | None = None) -> list[str]:
    """Each label of ``table`` (as a whole word) replaced by its garble in the first ``limit`` lines."""
    pattern = re.compile("|".join(rf"(?<![A-Za-z']){re.escape(k)}(?![A-Za-z])" for k in table))
    cut = len(lines) if limit is None else limit
    return [pattern.sub(lambda m: table[m.group()], line) for line in lines[:cut]] + lines[cut:]


@dataclass
class PaperDoc:
    name: str
    truth: dict
    patient: samples.Patient | None
    pages: list[PageText]
    kinds: tuple[str, ...]  # what was done to it
    lines: list[list[str]]  # as printed, for the scanned subset
    heading_lines: int = 0


def _columns(line: str, width: int = 90) -> str:
    """Tab cells in equal columns, as the scans draw them and OCR reads them back."""
    out = ""
    for i, cell in enumerate(line.split("\t")):
        start = max(i * width // len(line.split("\t")), len(out) + 3 if out else 0)
        out = out.ljust(start) + cell
    return out


def _ocr_page(page_no: int, lines: list[str], low_mrn: str | None, rng: random.Random) -> PageText:
    text = "\n".join(_columns(line) for line in lines)
    words = []
    for token in text.split():
        digits = re.sub(r"\D", "", token)
        low = low_mrn is not None and len(digits) >= 3 and digits in low_mrn
        words.append(Word(token, rng.uniform(*_LOW) if low else _CLEAR))
    return PageText(page_no, text, "ocr", words=words, mean_conf=_CLEAR)


def make_paper_corpus(count: int, seed: int) -> tuple[list[PaperDoc], list[samples.Patient]]:
    rng = random.Random(seed + 315)
    patients = [samples.make_patient(rng) for _ in range(max(20, count // 4))]
    docs = []
    for n in range(count):
        roll = rng.random()
        patient = None if roll < 0.04 else rng.choice(patients)
        kinds = []
        label = None
        if patient and rng.random() < 0.12:
            label, kinds = rng.choice(GARBLED_MRN_LABELS), ["mrn label garbled"]
        elif patient and rng.random() < 0.01:
            label, kinds = rng.choice(LOST_MRN_LABELS), ["mrn label lost"]
        conflicting = patient is not None and 0.04 <= roll < 0.08
        doc = samples.make_document(
            rng,
            rng.choice(samples.DOC_TYPES),
            patient,
            pages=rng.choice((1, 1, 2)),
            label_style=label,
            conflicting_mrn=conflicting or None,
        )
        pages = [list(page) for page in doc.pages]
        if rng.random() < 0.10:
            pages[0], kinds = _swap(pages[0], GARBLED_DOB_LABELS, 14), [*kinds, "dob label garbled"]
        if rng.random() < 0.08:
            pages[0], kinds = _swap(pages[0], GARBLED_NAME_LABELS, 14), [*kinds, "name label garbled"]
        if rng.random() < 0.30:
            pages, kinds = [_swap(p, GARBLED_DECOYS) for p in pages], [*kinds, "distractor labels garbled"]
        low = patient.mrn if patient and rng.random() < 0.015 else None
        kinds += ["mrn low confidence"] if low else []
        texts = [_ocr_page(k, lines, low, rng) for k, lines in enumerate(pages, start=1)]
        docs.append(
            PaperDoc(
                f"paper-{n:04d}.pdf",
                samples.ground_truth_json(doc),
                patient,
                texts,
                tuple(kinds),
                pages,
                doc.heading_lines,
            )
        )
    return docs, patients


def _reason_shape(reason: str | None) -> str:
    """A review reason with its numbers blanked, so reasons can be counted."""
    return re.sub(r"'[^']*'", "'…'", re.sub(r"\d[\d, ]*\d|\d", "N", reason or ""))


def part_three(args) -> None:
    docs, patients = make_paper_corpus(args.paper_docs, args.seed)
    config = Config(path=ROOT / "config.yaml")
    roster = Roster([RosterPatient(p.mrn, p.last.upper(), p.first.upper(), p.dob) for p in patients])
    fileable = sum(d.truth["expect"] == "filed" for d in docs)
    kinds = Counter(k for d in docs for k in d.kinds)
    print(
        f"\npart 3, real paper as OCR text: {len(docs)} documents ({fileable} fileable); "
        + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
    )
    exact = config.model_copy(update={"extraction": config.extraction.model_copy(update={"label_tolerance": 0})})
    for title, cfg, index, target in (
        ("labels read exactly, no roster (before #15)", exact, None, None),
        ("without a roster", config, None, 98.0),
        ("with a roster", config, roster, 99.5),
    ):
        counts, reasons, by_kind = Counter(), Counter(), defaultdict(Counter)
        for doc in docs:
            (built,) = build_documents(doc.pages, SourceFacts(doc.name, "0" * 64), cfg, index)
            row = {"status": built.decision.status, "mrn": built.decision.mrn}
            v = verdict(doc.truth, row)
            counts[v] += 1
            for kind in doc.kinds or ("plain",):
                by_kind[kind][v] += 1
            if v == "review":
                reasons[_reason_shape(built.decision.reason)] += 1
            if v == "misfiled" or (args.details and v == "review"):
                print(f"  {v:<9} {doc.name} {doc.kinds}: truth {doc.truth['mrn']} got {row} {built.decision.reason}")
        share = 100 * counts["filed_ok"] / max(1, fileable)
        goal = f" (target >= {target} %)" if target else ""
        print(
            f"{title}: filed under the right MRN {counts['filed_ok']}/{fileable} = {share:.1f} %{goal}, "
            f"misfiled {counts['misfiled']} (must be 0), fileable sent to review {counts['review']}, "
            f"expected review {counts['review_ok']}"
        )
        for kind, c in sorted(by_kind.items()):
            print(
                f"    {kind:<26} filed_ok {c['filed_ok']:>4}  review {c['review']:>3}  misfiled {c['misfiled']}  review_ok {c['review_ok']}"
            )
        for reason, n in reasons.most_common(8):
            print(f"    review ({n}): {reason}")
    part_three_scanned(args, docs)


_GARBLED = {"mrn label garbled", "dob label garbled", "name label garbled"}


def part_three_scanned(args, docs: list[PaperDoc]) -> None:
    """The garbled-label documents printed, scanned (noise, skew, fax) and read by OCR, no roster."""
    chosen = [d for d in docs if d.truth["expect"] == "filed" and _GARBLED & set(d.kinds)][: args.paper_ocr]
    if not chosen:
        return
    rng = random.Random(args.seed + 316)
    with tempfile.TemporaryDirectory(prefix="medarchive-paper-") as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        for doc in chosen:
            fax = rng.random() < 0.4
            images = [
                samples.render_page(
                    lines,
                    dpi=200 if fax else 300,
                    rng=rng,
                    skew_deg=rng.uniform(-1.5, 1.5),
                    noise=rng.choice((0.0, 0.001)),
                    blur=rng.choice((0.0, 0.6)),
                    heading_lines=doc.heading_lines if k == 0 else 0,
                )
                for k, lines in enumerate(doc.lines)
            ]
            samples.write_scanned_pdf(work / "in" / doc.name, images, encoding="g4" if fax else "jpeg")
        listed = ingest(work, "data_root: data\n")
    rows = {r["source"]["file"]: r for r in listed}
    counts, reasons = Counter(), Counter()
    for doc in chosen:
        v = verdict(doc.truth, rows.get(doc.name))
        counts[v] += 1
        if v == "review":
            reasons[_reason_shape(rows[doc.name]["review_reason"])] += 1
        if v == "misfiled" or (args.details and v == "review"):
            print(f"  {v:<9} {doc.name} {doc.kinds}: truth {doc.truth['mrn']} got {rows[doc.name]['mrn']}")
    print(
        f"  scanned and OCRed, no roster: {len(chosen)} documents with garbled labels: filed right {counts['filed_ok']}, "
        f"review {counts['review']}, misfiled {counts['misfiled']} (must be 0), missing {counts['missing']}"
    )
    for reason, n in reasons.most_common(5):
        print(f"    review ({n}): {reason}")


# ---------------------------------------------------------------- part 4: printed separator sheets


def _sheet(rng: random.Random, dpi: int):
    scan = separators.random_scan(rng)
    return separators.scanned_sheet(separators.Scan(**{**scan.__dict__, "dpi": dpi}))


def write_separator_batches(folder: Path, batches: int, seed: int) -> list[Placed]:
    """Batches cut by printed sheets: batch 0 opens with one, 1 ends with one, 2 has two in a row."""
    rng = random.Random(seed + 404)
    placed = []
    for b in range(batches):
        dpi, encoding = rng.choice(((200, "g4"), (300, "jpeg"), (300, "g4"), (200, "jpeg")))
        images: list = []
        if b == 0 or rng.random() < 0.2:
            images.append(_sheet(rng, dpi))
        for d in range(rng.randint(2, 4)):
            if d:
                images.extend(_sheet(rng, dpi) for _ in range(2 if b == 2 and d == 1 else 1))
            doc = samples.make_document(
                rng, rng.choice(samples.DOC_TYPES), samples.make_patient(rng), pages=rng.choice((1, 1, 2))
            )
            first = len(images) + 1
            images.extend(
                samples.render_page(list(lines), dpi=dpi, rng=rng, skew_deg=rng.uniform(-1, 1)) for lines in doc.pages
            )
            placed.append(
                Placed(f"sep-{b:02d}.pdf", list(range(first, len(images) + 1)), samples.ground_truth_json(doc), False)
            )
        if b == 1 or rng.random() < 0.2:
            images.append(_sheet(rng, dpi))
        samples.write_scanned_pdf(folder / f"sep-{b:02d}.pdf", images, encoding=encoding, dpi=(dpi, dpi))
    samples.write_scanned_pdf(
        folder / "only-sheets.pdf", [_sheet(rng, 300), _sheet(rng, 300)], encoding="g4", dpi=(300, 300)
    )
    return placed


def part_four(args) -> None:
    with tempfile.TemporaryDirectory(prefix="medarchive-separators-") as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        placed = write_separator_batches(work / "in", args.sep_batches, args.seed)
        listed = ingest(work, "data_root: data\n")
        failed = (
            sorted(p.name for p in (work / "data" / "failed").rglob("*.pdf"))
            if (work / "data" / "failed").exists()
            else []
        )
    produced = Counter((r["source"]["file"], tuple(r["source"]["pages"])) for r in listed)
    expected = Counter((d.file, tuple(d.pages)) for d in placed)
    exact = sum(min(n, produced[k]) for k, n in expected.items())
    extra = sum((produced - expected).values())
    wrong = [k for k in expected if produced[k] == 0]
    print(f"\npart 4, printed PATCH T sheets: {len(placed)} documents in {args.sep_batches} batches")
    print(
        f"separator splits exact: {exact}/{len(placed)} = {100 * exact / max(1, len(placed)):.1f} % (target 100 %); "
        f"documents that should not exist: {extra}"
    )
    for key in wrong[:10]:
        got = sorted(p for f, p in produced if f == key[0])
        print(f"    not produced: {key[0]} pages {list(key[1])}; that file gave {got}")
    only = [r for r in listed if r["source"]["file"] == "only-sheets.pdf"]
    print(
        f"file of separator sheets only: {len(only)} documents archived; in failed/: {'only-sheets.pdf' in ' '.join(failed)}"
    )


# ---------------------------------------------------------------- part 5: clerk searches

_LOOKS_LIKE = {
    "c": "e",
    "e": "c",
    "l": "i",
    "i": "l",
    "m": "rn",
    "n": "h",
    "o": "a",
    "a": "o",
    "h": "b",
    "u": "v",
    "r": "n",
}


def _misread(word: str, rng: random.Random) -> str:
    """``word`` with one OCR slip: a look-alike letter, a lost letter or a doubled one."""
    i = rng.randrange(1, len(word))  # first letters survive more often
    low = word[i].lower()
    kind = rng.choice(("alike", "alike", "drop", "double"))
    if kind == "alike" and low in _LOOKS_LIKE:
        new = _LOOKS_LIKE[low][:1]
    elif kind == "drop" and len(word) > 4:
        new = ""
    else:
        new = rng.choice(string.ascii_lowercase.replace(low, "")) if kind == "alike" else word[i] * 2
    new = new.upper() if word[i].isupper() else new
    return word[:i] + new + word[i + 1 :]


def part_five(args) -> None:
    rng = random.Random(args.seed + 505)
    synonyms = getattr(Config(path=ROOT / "config.yaml").index, "type_synonyms", {})  # the clerk-search work's
    wanted = []
    with tempfile.TemporaryDirectory(prefix="medarchive-search-") as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        for n in range(args.search_docs):
            patient = samples.make_patient(rng)
            doc_type = samples.DOC_TYPES[n % len(samples.DOC_TYPES)]
            doc = samples.make_document(rng, doc_type, patient, distractors=rng.random() < 0.9)
            pages = [list(page) for page in doc.pages]
            misread = rng.random() < 0.25
            if misread:
                wrong = _misread(patient.last, rng)
                table = {patient.last: wrong, patient.last.upper(): wrong.upper()}
                pages = [_swap(page, table) for page in pages]
            samples.write_born_digital_pdf(work / "in" / f"s-{n:04d}.pdf", pages, heading_lines=doc.heading_lines)
            words = synonyms.get(doc_type) or [doc_type.split("_")[0]]
            wanted.append((f"s-{n:04d}.pdf", f"{patient.last.lower()} {rng.choice(words)}", misread))
        listed = ingest(work, "data_root: data\n")
        ids = {r["source"]["file"]: r["doc_id"] for r in listed}
        from pipeline.archive.index import open_index

        index = open_index(load_config(work / "config.yaml"))
        found, by_misread, failures = 0, Counter(), []
        for file, query, misread in wanted:
            try:
                hits = [h.doc_id for h in index.search(query, limit=5)]
            except Exception as exc:
                hits = [f"error: {exc}"]
            ok = ids.get(file) in hits
            found += ok
            by_misread[(misread, ok)] += 1
            if not ok:
                failures.append((query, misread, file in ids))
    total = len(wanted)
    print(
        f"\npart 5, clerk searches: {total} queries '<last name> <type word>', "
        f"{by_misread[(True, True)] + by_misread[(True, False)]} of them for surnames OCR misread by one letter"
    )
    print(
        f"search@5: {found}/{total} = {100 * found / max(1, total):.1f} % (target >= 98 %); "
        f"misread names found {by_misread[(True, True)]}/{by_misread[(True, True)] + by_misread[(True, False)]}"
    )
    for query, misread, indexed in failures[:8]:
        print(f"    missed: {query!r}{' (name misread)' if misread else ''}{'' if indexed else ' (not archived)'}")


# ---------------------------------------------------------------- part 6: damaged paper


def write_damaged_batches(clean_dir: Path, damaged_dir: Path, batches: int, seed: int):
    """The same batches twice, as printed and as damaged; their documents, patients and damage."""
    from pipeline.samples import damage

    rng = random.Random(seed + 606)
    patients = [samples.make_patient(rng) for _ in range(12)]
    placed, kinds, by_page = [], Counter(), {}
    for b in range(batches):
        clean: list = []
        for d in range(rng.randint(1, 3)):
            if d:
                clean.append(_sheet(rng, 300))
            patient = rng.choice(patients) if rng.random() > 0.05 else None
            doc = samples.make_document(rng, rng.choice(samples.DOC_TYPES), patient, pages=rng.choice((1, 1, 2)))
            first = len(clean) + 1
            for k, lines in enumerate(doc.pages):
                clean.append(
                    samples.render_page(
                        list(lines),
                        dpi=300,
                        rng=rng,
                        skew_deg=rng.uniform(-1, 1),
                        blur=0.5,
                        heading_lines=doc.heading_lines if k == 0 else 0,
                    )
                )
            placed.append(
                Placed(f"dmg-{b:02d}.pdf", list(range(first, len(clean) + 1)), samples.ground_truth_json(doc), False)
            )
        damaged = []
        for n, image in enumerate(clean, start=1):
            hurt, applied = damage.damage(image, rng)
            kinds.update(applied)
            by_page[(f"dmg-{b:02d}.pdf", n)] = applied
            damaged.append(hurt)
        for folder, images in ((clean_dir, clean), (damaged_dir, damaged)):
            samples.write_scanned_pdf(folder / f"dmg-{b:02d}.pdf", images, encoding="jpeg", dpi=(300, 300))
    return placed, patients, kinds, by_page


def _sidecars(data: Path) -> list[dict]:
    return [
        json.loads(path.read_text())
        for folder in (data / "archive", data / "review")
        if folder.exists()
        for path in sorted(folder.rglob("*.json"))
    ]


def _damaged_setting(
    work: Path, inputs: Path, placed: list, patients: list, index: bool, pages: int, rng_seed: int, extra: str = ""
):
    from bench.ocr_throughput import ingest as timed_ingest
    from pipeline.archive.index import open_index

    work.mkdir(parents=True)
    if index:
        with open(work / "roster.csv", "w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["mrn", "last_name", "first_name", "dob"])
            out.writerows([p.mrn, p.last, p.first, p.dob] for p in patients)
        extra += f"roster:\n  path: {work / 'roster.csv'}\n"
    (work / "config.yaml").write_text("data_root: data\n" + extra)
    cost = timed_ingest(work / "config.yaml", sorted(inputs.glob("*.pdf")))
    cli = [sys.executable, "-m", "pipeline", "--config", str(work / "config.yaml")]
    listed = subprocess.run([*cli, "list", "--json"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in listed.splitlines()]
    produced = {(r["source"]["file"], tuple(r["source"]["pages"])): r for r in rows}
    counts, reasons, types_ok, filed, problems = Counter(), Counter(), 0, 0, []
    for doc in placed:
        row = produced.get((doc.file, tuple(doc.pages)))
        v = verdict(doc.truth, row) if row else "split_wrong"
        counts[v] += 1
        if v not in ("filed_ok", "review_ok"):
            problems.append((v, doc, row))
        if row and row["status"] == "filed":
            filed += 1
            types_ok += row["doc_type"] == doc.truth["doc_type"]
        if v == "review":
            reasons[_reason_shape(row["review_reason"])] += 1
    synonyms = getattr(Config(path=ROOT / "config.yaml").index, "type_synonyms", {})
    rng = random.Random(rng_seed)
    searched = found = 0
    search_index = open_index(load_config(work / "config.yaml"))
    for doc in placed:
        row = produced.get((doc.file, tuple(doc.pages)))
        if not row or not doc.truth.get("name"):
            continue
        words = synonyms.get(doc.truth["doc_type"]) or [doc.truth["doc_type"].split("_")[0]]
        query = f"{doc.truth['name'].split(',')[0].strip().lower()} {rng.choice(words)}"
        searched += 1
        found += row["doc_id"] in [h.doc_id for h in search_index.search(query, limit=5)]
    looks = [p["second_look"] for s in _sidecars(work / "data") for p in s["page_texts"] if p.get("second_look")]
    return {
        "counts": counts,
        "reasons": reasons,
        "types": (types_ok, filed),
        "search": (found, searched),
        "pages_per_min": 60 * pages / cost.wall,
        "cpu_per_page": cost.cpu / pages,
        "looks": looks,
        "problems": problems,
    }


def part_six(args) -> None:
    from bench.ocr_throughput import become_subreaper, page_count, raw_bound

    become_subreaper()
    with tempfile.TemporaryDirectory(prefix="medarchive-damaged-") as tmp:
        work = Path(tmp)
        (work / "clean").mkdir()
        (work / "damaged").mkdir()
        placed, patients, kinds, by_page = write_damaged_batches(
            work / "clean", work / "damaged", args.damaged_batches, args.seed
        )
        pdfs = sorted((work / "clean").glob("*.pdf"))
        pages = sum(page_count(pdf) for pdf in pdfs)
        fileable = sum(d.truth["expect"] == "filed" for d in placed)
        print(
            f"\npart 6, damaged paper: {len(placed)} documents ({fileable} fileable) on {pages} pages "
            f"in {args.damaged_batches} batches cut by PATCH T sheets; damage applied: "
            + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        )
        results = {}
        off = "ocr:\n  second_look:\n    enabled: false\n"
        settings = [("clean", False, ""), ("clean", True, ""), ("damaged", False, ""), ("damaged", True, "")]
        settings.append(("damaged", False, off))  # the same without the second look, for comparison
        raws = {}
        for paper, index, extra in settings:
            if paper not in raws:
                (work / f"raw-{paper}").mkdir()
                raws[paper] = raw_bound(sorted((work / paper).glob("*.pdf")), work / f"raw-{paper}")
            raw = raws[paper]
            raw_rate = 60 * pages / raw.wall
            setting = f"{paper}, {'with' if index else 'no'} patient index{', second look off' if extra else ''}"
            got = _damaged_setting(
                work / f"{paper}-{index}-{bool(extra)}",
                work / paper,
                placed,
                patients,
                index,
                pages,
                args.seed + 607,
                extra,
            )
            results[(paper, index, bool(extra))] = got
            c = got["counts"]
            types_ok, filed = got["types"]
            found, searched = got["search"]
            split = len(placed) - c["split_wrong"]
            target = {("damaged", False): " (target >= 90 %)", ("damaged", True): " (target >= 95 %)"}.get(
                (paper, index), ""
            )
            print(f"{setting}:")
            print(
                f"  misfiled {c['misfiled']} (must be 0); filed right {c['filed_ok']}/{fileable} = "
                f"{100 * c['filed_ok'] / max(1, fileable):.1f} %{target}; fileable in review {c['review']}; "
                f"expected review {c['review_ok']}"
            )
            print(
                f"  splits exact {split}/{len(placed)} = {100 * split / max(1, len(placed)):.1f} % (target >= 95 %); "
                f"types of filed {types_ok}/{filed} = {100 * types_ok / max(1, filed):.1f} %; "
                f"search@5 {found}/{searched} = {100 * found / max(1, searched):.1f} %"
            )
            print(
                f"  {got['pages_per_min']:.1f} pages/min against the raw tesseract bound {raw_rate:.1f} "
                f"= {got['pages_per_min'] / raw_rate:.2f}x; {got['cpu_per_page']:.2f} CPU s a page "
                f"(raw {raw.cpu / pages:.2f})"
            )
            looks = got["looks"]
            if looks:
                won = Counter(f"{look['won']}/{look['header']}" for look in looks)
                why = Counter(re.sub(r"\d+", "N", look["why"]) for look in looks)
                print(
                    f"  second look on {len(looks)}/{pages} pages, {sum(look['seconds'] for look in looks) / len(looks):.1f} s "
                    f"each; reading/header kept: {dict(won)}; numbers changed by the vote "
                    f"{sum(look['votes'] for look in looks)}; why: {dict(why.most_common(4))}"
                )
            else:
                print("  second look on no page")
            for reason, n in got["reasons"].most_common(5):
                print(f"    review ({n}): {reason}")
            for v, doc, row in got["problems"] if args.details else ():
                damage_done = [by_page.get((doc.file, p), ()) for p in doc.pages] if paper == "damaged" else []
                result = row and (row["status"], row["mrn"], row["review_reason"])
                print(f"    {v:<11} {doc.file} pages {doc.pages} {damage_done}: truth {doc.truth['mrn']} got {result}")
        clean, damaged = results[("clean", False, False)], results[("damaged", False, False)]
        print(
            f"damaged pages' extra cost: {damaged['cpu_per_page'] - clean['cpu_per_page']:.2f} CPU s a page "
            f"({damaged['cpu_per_page'] / clean['cpu_per_page']:.2f}x a clean page)"
        )


PARTS = {"1": part_one, "2": part_two, "3": part_three, "4": part_four, "5": part_five, "6": part_six}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=72)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--paper-docs", type=int, default=1000)
    parser.add_argument(
        "--paper-ocr", type=int, default=24, help="of part 3's garbled-label documents, how many to scan and OCR"
    )
    parser.add_argument("--sep-batches", type=int, default=6)
    parser.add_argument("--search-docs", type=int, default=120)
    parser.add_argument("--damaged-batches", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", default="all", help="comma-separated parts (1-6), 'both' (1,2) or 'all'")
    parser.add_argument("--details", action="store_true", help="print every document that was not filed correctly")
    args = parser.parse_args()
    chosen = {"all": list(PARTS), "both": ["1", "2"]}.get(args.part, args.part.split(","))
    for part in chosen:
        PARTS[part.strip()](args)


if __name__ == "__main__":
    main()
