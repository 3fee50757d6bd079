"""Documents per second through the EHR outbox, and the sender's memory with a long queue.

Files N one-page scanned documents (300 dpi JPEG scans, a realistic size) for a few
patients, queues them, and times `send_once` to each real receiver: the Medplum FHIR
server of the tests (Node) and python-hl7's MLLP listener. Then queues 10,000 more
messages and measures the send rate and the sender's peak RSS again: the ratio to the
short-queue run shows whether the queue's length costs anything.
Target: >= 20 documents/s to each destination; memory flat with 10,000 queued.
"Sender CPU" is this process's CPU per document (for MDM it includes the listener, which
runs in this process): the rate the outbox and sender could sustain against an instant
receiver. The test FHIR server's in-memory search is a linear scan (each conditional
create searches every DocumentReference it holds), so its answers slow as it fills.

    python bench/ehr_throughput.py [--docs 200] [--queued 10000]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.archive.dataroot import open_data_root
from pipeline.core.config import load_config
from pipeline.ehr.enqueue import Filing, enqueue_filed, plan
from pipeline.ehr.outbox import Outbox
from pipeline.ehr.sender import send_once
from pipeline.samples import scans as samples
from tests.conftest import write_config
from tests.ehr_servers import (
    DOC_SYSTEM,
    MRN_SYSTEM,
    FhirServer,
    MllpListener,
    file_document,
)

PATIENTS = [f"30000{n:02d}" for n in range(10)]


def scanned_page() -> bytes:
    rng = random.Random(7)
    doc = samples.make_document(rng, "progress_note", samples.make_patient(rng), pages=1)
    image = samples.render_page(list(doc.pages[0]), dpi=300, rng=rng)
    with tempfile.TemporaryDirectory(prefix="ehr-bench-") as folder:
        path = Path(folder) / "page.pdf"
        samples.write_scanned_pdf(path, [image], encoding="jpeg", dpi=(300, 300))
        return path.read_bytes()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def site(folder: Path, destination: dict):
    config = load_config(write_config(folder, ehr={"destinations": [destination]}))
    open_data_root(config)
    return config


def file_documents(config, count: int, pdf: bytes, first: int = 1) -> list:
    return [
        file_document(config, n, mrn=PATIENTS[n % len(PATIENTS)], doc_type="progress_note", pdf_bytes=pdf)
        for n in range(first, first + count)
    ]


def timed_send(config) -> tuple[float, float, int]:
    """(wall seconds, this process's CPU seconds, documents sent) of one `send_once`."""
    start, cpu = time.perf_counter(), time.process_time()
    [result] = send_once(config)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if result.retry or result.dead:
        raise SystemExit(f"bench: {result.retry} to retry, {result.dead} dead; see `medarchive ehr status`")
    return elapsed, cpu, result.sent


def queue_filler(config, destination: str, count: int) -> None:
    """Queue ``count`` messages for documents that do not exist: they stay behind the measured ones."""
    with Outbox.for_config(config) as outbox, outbox.transaction() as db:
        for n in range(count):
            filing = Filing(f"{n + 1:016x}-9", f"4{n:06d}", "progress_note", None, "archive/none.pdf", "0" * 64, 1)
            outbox.add(db, plan(destination, filing, None))


def run(name: str, config, docs: int, queued: int, pdf: bytes, fresh_receiver=lambda: None) -> None:
    """``fresh_receiver`` empties the receiver between the two measurements, so the second
    differs from the first only by the queue's length (the test FHIR server slows as it fills)."""
    enqueue_filed(config, file_documents(config, docs, pdf))
    elapsed, cpu, sent = timed_send(config)
    rate = sent / elapsed
    rss_short = rss_mb()
    queue_filler(config, config.ehr.destinations[0].name, queued)
    fresh_receiver()
    more = file_documents(config, docs, pdf, first=docs + 1)
    # The measured documents go after the filler in id order, so the sender passes over 10,000 rows per batch.
    enqueue_filed(config, more)
    with Outbox.for_config(config) as outbox, outbox.transaction() as db:
        db.execute("UPDATE messages SET next_at = 1e12 WHERE doc_id LIKE '%-9'")  # filler waits; measured go
    elapsed_long, cpu_long, sent_long = timed_send(config)
    rate_long = sent_long / elapsed_long
    print(
        f"{name:14} {sent} docs in {elapsed:.1f} s = {rate:.1f} docs/s end to end "
        f"(target >= 20: {'ok' if rate >= 20 else 'MISSED'}); sender CPU {1000 * cpu / sent:.1f} ms/doc "
        f"= {sent / cpu:.0f} docs/s of CPU"
    )
    print(
        f"{'':14} with {queued} more queued: {rate_long:.1f} docs/s (ratio {rate_long / rate:.2f}), "
        f"sender CPU {1000 * cpu_long / sent_long:.1f} ms/doc; peak RSS {rss_short:.0f} MB -> {rss_mb():.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument(
        "--content",
        nargs="+",
        choices=["binary", "inline"],
        default=["binary", "inline"],
        help="FHIR attachment modes to measure",
    )
    parser.add_argument("--skip-mdm", action="store_true")
    args = parser.parse_args()
    pdf = scanned_page()
    print(f"one scanned page = {len(pdf) / 1024:.0f} KiB; {args.docs} documents per run, {len(PATIENTS)} patients")
    with tempfile.TemporaryDirectory(prefix="ehr-bench-") as folder:
        server = FhirServer()
        try:
            for content in args.content:
                fhir = {
                    "name": "fhir",
                    "kind": "fhir",
                    "base_url": server.base_url,
                    "content": content,
                    "patient_identifier_system": MRN_SYSTEM,
                    "document_identifier_system": DOC_SYSTEM,
                }
                (Path(folder) / content).mkdir()

                def fresh() -> None:
                    server.reset()
                    for mrn in PATIENTS:
                        server.add_patient(mrn)

                fresh()
                run(f"fhir ({content})", site(Path(folder) / content, fhir), args.docs, args.queued, pdf, fresh)
        finally:
            server.stop()
        if args.skip_mdm:
            return
        listener = MllpListener(keep=False)
        try:
            mdm = {"name": "mdm", "kind": "hl7v2", "host": "127.0.0.1", "port": listener.port}
            (Path(folder) / "mdm").mkdir()
            run("mdm", site(Path(folder) / "mdm", mdm), args.docs, args.queued, pdf)
        finally:
            listener.stop()


if __name__ == "__main__":
    main()
