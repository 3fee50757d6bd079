"""Index build rate and clerk query latency at backlog scale.

Builds an index of N synthetic documents (OCR-length text of 1-3 KB drawn from a
Zipf-like clinical vocabulary, MRNs, patient names, document types from the
default taxonomy, dates, some in review) through the pipeline's writer path:
batches of 500 given to WhooshIndex.add(batch, merge=False), then optimize().
Prints documents/second with and without the final merge and the size on disk,
then p50/p95/max latency of WhooshIndex.search(query, filters, limit=20) per
kind of clerk query. Targets: build >= 300 docs/s; p95 < 100 ms for MRN,
name+type, rare term and a last name with a type word (as typed, or with the
name misread by one letter); < 500 ms for phrase and common term + date range.

    python bench/index_scale.py [--docs 100000] [--dir PATH] [--seed 0] [--limitmb 1024]

With --dir an index already there is reused (built with the same --docs and
--seed, so the queries find what they look for); otherwise it is built there.
An index built by an older schema is refused (delete the folder to rebuild it).
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from whoosh.analysis import STOP_WORDS

from indexers.base import Index, IndexOptions, IndexRecord, SearchFilters
from indexers.whoosh.facade import WhooshIndex
from pipeline.core.config import DEFAULT_TAXONOMY, DEFAULT_TYPE_SYNONYMS
from pipeline.samples.scans import FIRST_NAMES, LAST_NAMES

BATCH = 500
QUERIES_PER_KIND = 40
DOCS_PER_PATIENT = 5
FIRST_DAY, DAYS = date(2010, 1, 1), 15 * 365

# The head of the vocabulary, most frequent first; a long tail of made-up words
# (drug names, OCR misreadings) follows, so rare terms really are rare.
COMMON_WORDS = ["patient", "the", "and", "of", "to", "with", "in", "was", "no", "for", "is", "on", "at", "history", "pain", "normal", "left", "right", "daily", "mg", "blood", "pressure", "denies", "chest", "follow", "up", "continue", "left", "plan", "assessment", "exam", "noted", "reports", "without", "acute", "distress", "heart", "rate", "regular", "rhythm", "lungs", "clear", "bilaterally", "abdomen", "soft", "nontender", "nondistended", "extremities", "edema", "alert", "oriented", "times", "three", "medications", "reviewed", "allergies", "known", "drug", "tablet", "twice", "weekly", "stable", "improved", "worse", "since", "last", "visit", "labs", "ordered", "glucose", "sodium", "potassium", "creatinine", "hemoglobin", "white", "count", "within", "limits", "imaging", "shows", "findings", "impression", "recommend", "return", "clinic", "weeks", "months", "year", "old", "male", "female", "presents", "complaint", "shortness", "breath", "cough", "fever", "nausea", "vomiting", "diarrhea", "headache", "dizziness", "fatigue", "weight", "loss", "gain", "appetite", "sleep", "mood", "anxiety", "depression", "diabetes", "hypertension", "hyperlipidemia", "asthma", "copd", "coronary", "artery", "disease", "kidney", "liver", "thyroid", "surgery", "procedure", "performed", "tolerated", "well", "complications", "specimen", "sent", "pathology", "discharged", "home", "instructions", "given", "questions", "answered", "signed", "electronically", "physician", "nurse", "practitioner", "resident", "attending", "reviewed", "agree"]  # fmt: skip
CONTENT_WORDS = [word for word in COMMON_WORDS if word not in STOP_WORDS]
PHRASES = (
    "chest pain",
    "shortness of breath",
    "no acute distress",
    "history of present illness",
    "blood pressure",
    "follow up in two weeks",
    "past medical history",
    "review of systems",
)
SYLLABLES = ["ab", "al", "an", "ar", "ba", "be", "bi", "ca", "ce", "ci", "co", "da", "de", "di", "do", "el", "en", "er", "fa", "fe", "fi", "ga", "ge", "gi", "ha", "he", "hi", "ka", "ke", "ki", "la", "le", "li", "lo", "ma", "me", "mi", "mo", "na", "ne", "ni", "no", "ol", "on", "or", "pa", "pe", "pi", "po", "ra", "re", "ri", "ro", "sa", "se", "si", "so", "ta", "te", "ti", "to", "ul", "um", "un", "ur", "va", "ve", "vi", "xa", "xi", "ya", "za", "ze", "zo"]  # fmt: skip
TAIL_WORDS = 60_000


@dataclass(frozen=True)
class Patient:
    mrn: str
    name: str


@dataclass(frozen=True)
class Corpus:
    """Everything the queries need, derived from (docs, seed) alone."""

    patients: list[Patient]
    vocabulary: list[str]
    cum_weights: list[float]


def make_corpus(docs: int, seed: int) -> Corpus:
    rng = random.Random(seed)
    mrns = rng.sample(range(10_000_000, 99_999_999), max(1, docs // DOCS_PER_PATIENT))
    patients = [
        Patient(f"{m:08d}", f"{rng.choice(LAST_NAMES).upper()}, {rng.choice(FIRST_NAMES).upper()}") for m in mrns
    ]
    tail = {"".join(rng.choices(SYLLABLES, k=rng.randint(3, 5))) for _ in range(TAIL_WORDS)}
    vocabulary = list(dict.fromkeys(COMMON_WORDS)) + sorted(tail - set(COMMON_WORDS))
    weights = (1 / rank for rank in range(1, len(vocabulary) + 1))
    return Corpus(patients, vocabulary, list(itertools.accumulate(weights)))


def make_text(rng: random.Random, corpus: Corpus, doc_type: str, patient: Patient, when: str) -> str:
    rule = DEFAULT_TAXONOMY[doc_type]
    words = rng.choices(corpus.vocabulary, cum_weights=corpus.cum_weights, k=rng.randint(150, 420))
    for _ in range(rng.randint(1, 4)):
        words.insert(rng.randrange(len(words)), rng.choice(PHRASES + tuple(rule["keywords"])))
    lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    header = [rng.choice(rule["titles"]), f"Patient: {patient.name}   MRN: {patient.mrn}   Date: {when}"]
    return "\n".join(header + lines)


def make_records(docs: int, seed: int, corpus: Corpus) -> Iterator[IndexRecord]:
    rng = random.Random(seed + 1)
    for n in range(docs):
        patient = rng.choice(corpus.patients)
        doc_type = rng.choice(list(DEFAULT_TAXONOMY))
        when = (FIRST_DAY + timedelta(days=rng.randrange(DAYS))).isoformat()
        review = rng.random() < 0.08
        doc_id = f"d{n:07d}"
        yield IndexRecord(
            doc_id=doc_id,
            status="review" if review else "filed",
            mrn=patient.mrn,
            patient_name=patient.name,
            dob="1960-01-01",
            doc_type=doc_type,
            doc_date=when,
            pages=rng.randint(1, 6),
            path=f"{'review' if review else 'archive'}/{patient.mrn}/{when}_{doc_type}_{doc_id}.pdf",
            sha256=f"{rng.getrandbits(256):064x}",
            source_sha256=f"{rng.getrandbits(256):064x}",
            source_file=f"scan-{n}.pdf",
            review_reason="MRN unreadable" if review else None,
            content=make_text(rng, corpus, doc_type, patient, when),
        )


class Stopwatch:
    """Wall time, and this process's CPU time: on a shared machine the
    difference is time spent waiting for a core."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Stopwatch:
        self._started = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc) -> None:
        self.wall += time.perf_counter() - self._started[0]
        self.cpu += time.process_time() - self._started[1]


def build(index: Index, docs: int, seed: int, corpus: Corpus) -> None:
    records = make_records(docs, seed, corpus)
    adding, merging = Stopwatch(), Stopwatch()
    while batch := list(itertools.islice(records, BATCH)):
        with adding:
            index.add(batch, merge=False)
    with merging:
        index.optimize()
    total = adding.wall + merging.wall
    print(
        f"build: {docs} docs in batches of {BATCH}: {docs / adding.wall:.0f} docs/s adding "
        f"({adding.wall:.0f} s, {adding.cpu:.0f} s CPU), {docs / total:.0f} docs/s with the final merge "
        f"({merging.wall:.0f} s, {merging.cpu:.0f} s CPU)"
    )


def query_mix(corpus: Corpus, seed: int) -> dict[str, list[tuple[str, SearchFilters]]]:
    rng = random.Random(seed + 2)
    types = list(DEFAULT_TAXONOMY)

    def some(make: Callable[[], tuple[str, SearchFilters]]) -> list[tuple[str, SearchFilters]]:
        return [make() for _ in range(QUERIES_PER_KIND)]

    def year_range() -> SearchFilters:
        start = FIRST_DAY + timedelta(days=rng.randrange(DAYS - 365))
        return SearchFilters(date_from=start.isoformat(), date_to=(start + timedelta(days=365)).isoformat())

    def name_and_type() -> tuple[str, SearchFilters]:
        last, first = rng.choice(corpus.patients).name.split(", ")
        return f"{first.title()} {last.title()}", SearchFilters(doc_type=rng.choice(types))

    def clerk(misread: bool) -> tuple[str, SearchFilters]:
        # As clerks type them: a last name and a word for the type ("calderon radiology"),
        # the name as OCR may have read it (one letter changed) when misread.
        last = rng.choice(corpus.patients).name.split(", ")[0].lower()
        if misread:
            at = rng.randrange(1, len(last))
            last = last[:at] + rng.choice("aeiou" if last[at] not in "aeiou" else "bcdlmnrst") + last[at + 1 :]
        word = rng.choice([*DEFAULT_TYPE_SYNONYMS[rng.choice(types)], "report", "note"])
        return f"{last} {word}", SearchFilters()

    return {
        "mrn": some(lambda: ("", SearchFilters(mrn=rng.choice(corpus.patients).mrn))),
        "name+type": some(name_and_type),
        "rare term": some(lambda: (rng.choice(corpus.vocabulary[-TAIL_WORDS // 2 :]), SearchFilters())),
        "phrase": some(lambda: (f'"{rng.choice(PHRASES)}"', SearchFilters())),
        "common+dates": some(lambda: (rng.choice(CONTENT_WORDS[:30]), year_range())),
        "name+type word": some(lambda: clerk(misread=False)),
        "misread+type": some(lambda: clerk(misread=True)),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_queries(index: Index, corpus: Corpus, seed: int) -> None:
    index.warm()  # as `medarchive serve` does before it listens
    index.search("warm up the caches", SearchFilters(), limit=20)
    for kind, queries in query_mix(corpus, seed).items():
        times, cpu, found = [], [], 0
        for query, filters in queries:
            start = time.perf_counter(), time.process_time()
            hits = index.search(query, filters, limit=20)
            times.append((time.perf_counter() - start[0]) * 1000)
            cpu.append((time.process_time() - start[1]) * 1000)
            found += bool(hits)
        # CPU time as well: on a shared machine wall time includes waiting for a core.
        print(
            f"{kind:<14} p50 {statistics.median(times):7.1f} ms  p95 {percentile(times, 0.95):7.1f} ms  "
            f"max {max(times):7.1f} ms  (CPU p50 {statistics.median(cpu):6.1f} p95 {percentile(cpu, 0.95):6.1f} ms)"
            f"  ({found}/{len(queries)} found hits)"
        )


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, help="index folder to reuse (or to build in and keep)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limitmb", type=int, default=1024, help="writer memory, as in a backlog run's settings")
    args = parser.parse_args()
    corpus = make_corpus(args.docs, args.seed)
    with tempfile.TemporaryDirectory(prefix="medarchive-index-bench-") as tmp:
        folder = args.dir or Path(tmp) / "index"
        synonyms = {doc_type: tuple(words) for doc_type, words in DEFAULT_TYPE_SYNONYMS.items()}
        index = WhooshIndex(folder, IndexOptions(limitmb=args.limitmb, type_synonyms=synonyms))
        if index.count() == 0:
            build(index, args.docs, args.seed, corpus)
        print(f"index: {index.count()} docs, {size_mb(folder):.0f} MB on disk")
        run_queries(index, corpus, args.seed)
        index.close()


if __name__ == "__main__":
    main()
