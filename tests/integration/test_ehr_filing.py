"""Filing queues the EHR messages in the step that makes it durable: once per document and
destination, however often the input is met again."""

from __future__ import annotations

from pipeline.core.config import load_config
from pipeline.ehr.outbox import Outbox
from tests.conftest import born_digital, document, run_cli, write_config

DESTINATIONS = {
    "destinations": [
        {
            "name": "ehr-fhir",
            "kind": "fhir",
            "base_url": "http://127.0.0.1:9/fhir",
            "patient_identifier_system": "urn:oid:1.2.3",
        },
        {"name": "ehr-mdm", "kind": "hl7v2", "host": "127.0.0.1", "port": 9},
    ]
}


def _counts(config_path) -> dict:
    outbox = Outbox.for_config(load_config(config_path))
    try:
        return outbox.counts()
    finally:
        outbox.close()


def test_ingest_queues_one_message_per_filed_document_and_destination_once(tmp_path):
    config_path = write_config(tmp_path, ehr=DESTINATIONS)
    inputs = [born_digital(tmp_path / f"chart-{n}.pdf", document(n)) for n in range(3)]
    first = run_cli(config_path, "ingest", *map(str, inputs))
    assert first.returncode == 0, first.stderr
    filed = sum(1 for line in first.stdout.splitlines() if line.startswith("filed"))
    assert filed >= 1
    counts = _counts(config_path)
    assert counts["ehr-fhir"]["pending"] == filed and counts["ehr-mdm"]["pending"] == filed
    again = run_cli(config_path, "ingest", *map(str, inputs))
    assert again.returncode == 0 and again.stdout.count("duplicate") == 3, again.stdout
    assert _counts(config_path) == counts
