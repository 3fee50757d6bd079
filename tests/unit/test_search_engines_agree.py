"""The clerk searches of bench/accuracy.py's part 5 on both engines (issue 26): '<last name>
<type word>' over generated documents, a quarter with the surname misread by one letter, and
search@5 the same on Whoosh and PostgreSQL."""

from __future__ import annotations

import random
from pathlib import Path

from indexers.base import Index, IndexOptions, IndexRecord
from indexers.postgres.facade import PostgresIndex
from indexers.whoosh.facade import WhooshIndex
from pipeline.core.config import DEFAULT_TYPE_SYNONYMS
from pipeline.samples import scans as samples

SYNONYMS = {doc_type: tuple(words) for doc_type, words in DEFAULT_TYPE_SYNONYMS.items()}
DOCS = 120


def misread(word: str, rng: random.Random) -> str:
    """One OCR slip in a surname: a letter after the first changed."""
    i = rng.randrange(1, len(word))
    return word[:i] + rng.choice("aeiou" if word[i].lower() not in "aeiou" else "rnmtl") + word[i + 1 :]


def corpus(seed: int = 505) -> tuple[list[IndexRecord], list[tuple[str, str]]]:
    rng = random.Random(seed)
    records, wanted = [], []
    for n in range(DOCS):
        patient = samples.make_patient(rng)
        doc_type = samples.DOC_TYPES[n % len(samples.DOC_TYPES)]
        doc = samples.make_document(rng, doc_type, patient, distractors=rng.random() < 0.9)
        text = "\n".join(line for page in doc.pages for line in page)
        last = patient.last
        if rng.random() < 0.25:
            wrong = misread(last, rng)
            text = text.replace(last, wrong).replace(last.upper(), wrong.upper())
            last = wrong
        doc_id = f"s-{n:04d}"
        records.append(
            IndexRecord(
                doc_id=doc_id,
                status="filed",
                mrn=patient.mrn,
                patient_name=f"{last}, {patient.first}".upper(),
                dob=patient.dob,
                doc_type=doc_type,
                doc_date=doc.doc_date,
                pages=len(doc.pages),
                path=f"archive/{patient.mrn}/{doc_id}.pdf",
                sha256=f"sha-{doc_id}",
                source_sha256=f"src-{doc_id}",
                source_file=f"{doc_id}.pdf",
                review_reason=None,
                content=text,
            )
        )
        words = SYNONYMS.get(doc_type) or (doc_type.split("_")[0],)
        wanted.append((doc_id, f"{patient.last.lower()} {rng.choice(words)}"))
    return records, wanted


def search_at_5(index: Index, wanted: list[tuple[str, str]]) -> set[str]:
    return {doc_id for doc_id, query in wanted if doc_id in [hit.doc_id for hit in index.search(query, limit=5)]}


def test_search_at_5_is_the_same_on_both_engines(tmp_path: Path, pg_url: str) -> None:
    records, wanted = corpus()
    options = IndexOptions(type_synonyms=SYNONYMS)
    whoosh = WhooshIndex(tmp_path / "index", options)
    postgres = PostgresIndex(pg_url, options)
    try:
        whoosh.add(records)
        postgres.add(records)
        on_whoosh, on_postgres = search_at_5(whoosh, wanted), search_at_5(postgres, wanted)
    finally:
        postgres.close()
    print(f"search@5: Whoosh {len(on_whoosh)}/{DOCS}, PostgreSQL {len(on_postgres)}/{DOCS}")
    assert len(on_whoosh) >= 0.9 * DOCS
    assert on_postgres == on_whoosh
