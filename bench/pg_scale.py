"""The search index on PostgreSQL at scale, against the Whoosh index in the same run.

Synthetic documents from bench/index_scale.py (OCR-length text of 1-3 KB drawn from a
Zipf-like clinical vocabulary, MRNs, patient names, the default document types, dates over
15 years, some in review). Starts its own throwaway cluster (tests/postgres.py) with
bigger buffers, then measures:

1. the bulk load (PostgresIndex.rebuild: COPY into a fresh table, indexes built once at the
   end) at --docs documents: documents/s, and the GIN index's build time alone;
2. p50/p95 per query kind (MRN, name, name + type word, rare term, phrase, common term +
   one year) for PostgreSQL and for Whoosh built from the same documents (skip with --no-whoosh);
3. 4 concurrent writers (4 processes filing batches through add()) against 1: documents/s,
   and that every document is there once;
4. with --large N: the load and the queries again at N documents (1,000,000), PostgreSQL only.

    python bench/pg_scale.py [--docs 100000] [--large 1000000] [--no-whoosh] [--seed 0]

Targets (issue 26, 2 cores): >= 2,000 docs/s loading; at 100k every kind no slower than
Whoosh; at 1M MRN and name p95 < 20 ms, the others < 300 ms; 4 writers >= 1.5x one.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.index_scale import (
    BATCH,
    Corpus,
    Stopwatch,
    make_corpus,
    make_records,
    percentile,
    query_mix,
)
from indexers.base import Index, IndexOptions, IndexRecord, SearchFilters
from indexers.postgres.facade import PostgresIndex
from indexers.whoosh.facade import WhooshIndex
from pipeline.core.config import DEFAULT_TYPE_SYNONYMS
from tests.postgres import Cluster, start_cluster

SYNONYMS = {doc_type: tuple(words) for doc_type, words in DEFAULT_TYPE_SYNONYMS.items()}
OPTIONS = IndexOptions(limitmb=1024, type_synonyms=SYNONYMS, search_seconds=30)
SERVER_SETTINGS = {
    "shared_buffers": "2GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "1GB",
    "effective_cache_size": "8GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "synchronous_commit": "off",
    "jit": "off",
}
WRITER_DOCS = 20_000
WRITER_BATCH = 200


def the_kinds(corpus: Corpus, seed: int) -> dict[str, list[tuple[str, SearchFilters]]]:
    """The issue's query kinds, from index_scale's mix (a name alone added: the last name as typed)."""
    mix = query_mix(corpus, seed)
    names = [(q.split(" ")[1], SearchFilters()) for q, _ in mix["name+type"]]
    return {
        "mrn": mix["mrn"],
        "name": names,
        "name+type word": mix["name+type word"],
        "misread+type": mix["misread+type"],
        "rare term": mix["rare term"],
        "phrase": mix["phrase"],
        "common+dates": mix["common+dates"],
    }


def timed_queries(index: Index, kinds: dict[str, list[tuple[str, SearchFilters]]]) -> dict[str, tuple[float, float]]:
    index.warm()
    index.search("warm up", SearchFilters(), limit=20)
    results = {}
    for kind, queries in kinds.items():
        times, found = [], 0
        for query, filters in queries:
            start = time.perf_counter()
            hits = index.search(query, filters, limit=20)
            times.append((time.perf_counter() - start) * 1000)
            found += bool(hits)
        results[kind] = (statistics.median(times), percentile(times, 0.95))
        print(
            f"  {kind:<15} p50 {results[kind][0]:7.1f} ms  p95 {results[kind][1]:7.1f} ms  ({found}/{len(queries)} found)"
        )
    return results


def start(base: Path) -> tuple[Cluster, list[str]]:
    cluster, stop = start_cluster(base)
    for name, value in SERVER_SETTINGS.items():
        cluster.psql(f"ALTER SYSTEM SET {name} = '{value}'")
    # pg_ctl restart starts the server again with the options it was started with.
    # (-l again, or the server's output would hold our pipe open.)
    restart = [{"immediate": "fast", "stop": "restart"}.get(part, part) for part in stop] + ["-l", str(base / "log")]
    subprocess.run(restart, check=True, capture_output=True)
    cluster.psql("CREATE DATABASE bench")
    return cluster, stop


def load(index: PostgresIndex, made: Iterable[IndexRecord], cluster: Cluster) -> None:
    """The bulk load (rebuild), less the time spent making the documents when they are made on the way."""
    generating = Stopwatch()

    def records() -> Iterator[IndexRecord]:
        stream = iter(made)
        while True:
            with generating:
                batch = list(itertools.islice(stream, 1000))
            if not batch:
                return
            yield from batch

    started = time.perf_counter()
    count = index.rebuild(records())
    total = time.perf_counter() - started
    loading = total - generating.wall
    gin = time.perf_counter()
    name = cluster.psql(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'medarchive_index' AND tablename = 'documents' "
        "AND indexdef LIKE '%USING gin%'",
        "bench",
    ).strip()
    cluster.psql(f"REINDEX INDEX medarchive_index.{name}", "bench")
    gin = time.perf_counter() - gin
    size = cluster.psql("SELECT pg_size_pretty(pg_total_relation_size('medarchive_index.documents'))", "bench")
    print(
        f"load: {count} docs: {count / loading:.0f} docs/s loading (COPY, vectors, indexes and VACUUM ANALYZE: "
        f"{loading:.0f} s; making the documents on the way {generating.wall:.0f} s more); "
        f"the GIN index alone rebuilt in {gin:.0f} s; table and indexes {size.strip()}"
    )


def whoosh_build(index: WhooshIndex, records: list[IndexRecord]) -> None:
    """As bench/index_scale.py builds it (the pipeline's writer path), from the same documents."""
    adding, merging = Stopwatch(), Stopwatch()
    for start in range(0, len(records), BATCH):
        with adding:
            index.add(records[start : start + BATCH], merge=False)
    with merging:
        index.optimize()
    print(
        f"Whoosh build: {len(records) / (adding.wall + merging.wall):.0f} docs/s "
        f"({adding.wall:.0f} s adding in batches of {BATCH}, {merging.wall:.0f} s merging)"
    )


_FILED: list[IndexRecord] = []  # made before the writers fork, so that they only file


def _writer(url: str, share: range, prefix: str) -> None:
    index = PostgresIndex(url, OPTIONS)
    records = [IndexRecord(**{**_FILED[n].__dict__, "doc_id": f"{prefix}{_FILED[n].doc_id}"}) for n in share]
    for start in range(0, len(records), WRITER_BATCH):
        index.add(records[start : start + WRITER_BATCH])
    index.close()


def writers(url: str, seed: int, corpus: Corpus, cluster: Cluster) -> None:
    _FILED[:] = make_records(WRITER_DOCS, seed + 7, corpus)
    rates = {}
    for count in (1, 4):
        prefix = f"w{count}-"
        shares = [range(i, WRITER_DOCS, count) for i in range(count)]
        context = multiprocessing.get_context("fork")
        procs = [context.Process(target=_writer, args=(url, share, prefix)) for share in shares]
        started = time.perf_counter()
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        wall = time.perf_counter() - started
        if any(proc.exitcode for proc in procs):
            raise SystemExit(f"writers: a writer process failed (exit codes {[proc.exitcode for proc in procs]})")
        there = cluster.psql(
            f"SELECT count(*), count(DISTINCT doc_id) FROM medarchive_index.documents WHERE doc_id LIKE '{prefix}%'",
            "bench",
        ).strip()
        rates[count] = WRITER_DOCS / wall
        print(
            f"writers: {count} process(es) filed {WRITER_DOCS} docs in {wall:.0f} s: {rates[count]:.0f} docs/s; "
            f"in the index (rows, distinct ids): {there}"
        )
    print(f"writers: 4 against 1: {rates[4] / rates[1]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=0, help="then load and query this many (e.g. 1000000)")
    parser.add_argument("--no-whoosh", action="store_true")
    parser.add_argument("--no-writers", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, help="where the cluster and the Whoosh index go (default: a temp folder)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="medarchive-pg-bench-", dir=args.dir))
    tmp.chmod(0o755)
    cluster, stop = start(tmp / "cluster")
    try:
        url = cluster.url("bench")
        corpus = make_corpus(args.docs, args.seed)
        made = time.perf_counter()
        records = list(make_records(args.docs, args.seed, corpus))  # once, for both engines
        print(f"made {len(records)} documents in {time.perf_counter() - made:.0f} s (not counted below)")
        index = PostgresIndex(url, OPTIONS)
        load(index, records, cluster)
        kinds = the_kinds(corpus, args.seed)
        print(f"PostgreSQL at {args.docs}:")
        pg = timed_queries(index, kinds)
        if not args.no_whoosh:
            whoosh = WhooshIndex(tmp / "whoosh", OPTIONS)
            whoosh_build(whoosh, records)
            print(f"Whoosh at {args.docs}:")
            wh = timed_queries(whoosh, kinds)
            whoosh.close()
            shutil.rmtree(tmp / "whoosh", ignore_errors=True)
            for kind in kinds:
                print(f"  {kind:<15} p95 PostgreSQL / Whoosh: {pg[kind][1] / wh[kind][1]:.2f}")
        if not args.no_writers:
            writers(url, args.seed, corpus, cluster)
        if args.large:
            corpus = make_corpus(args.large, args.seed)
            records.clear()
            load(index, make_records(args.large, args.seed, corpus), cluster)
            print(f"PostgreSQL at {args.large}:")
            timed_queries(index, the_kinds(corpus, args.seed))
        index.close()
    finally:
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
