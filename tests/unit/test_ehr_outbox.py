"""The EHR outbox: what a filing queues, in what order it may leave, retries, and the `ehr:` settings."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from pipeline.archive.dataroot import open_data_root
from pipeline.archive.sidecar import HistoryEvent, Placement
from pipeline.cli.main import cli
from pipeline.core.config import Config, load_config
from pipeline.ehr.enqueue import Filing, enqueue_filed, plan
from pipeline.ehr.outbox import Outbox, OutboxError, backoff_seconds
from pipeline.ehr.settings import EhrSettings
from tests.conftest import write_config
from tests.ehr_servers import file_document

FHIR = {
    "name": "ehr-fhir",
    "kind": "fhir",
    "base_url": "http://127.0.0.1:9/fhir",
    "patient_identifier_system": "urn:oid:1.2",
}
MDM = {"name": "ehr-mdm", "kind": "hl7v2", "host": "127.0.0.1", "port": 9}


@pytest.fixture
def config(tmp_path, backend) -> Config:
    """Every outbox test runs on both store backends."""
    loaded = load_config(write_config(tmp_path, ehr={"destinations": [FHIR, MDM]}, **backend))
    open_data_root(loaded)
    return loaded


def _filing(mrn="1000001", doc_type="lab_result") -> Filing:
    return Filing("00000000000000aa-1", mrn, doc_type, "2024-01-02", f"archive/{mrn}/x.pdf", "ab" * 32, 1)


def _rows(config) -> list:
    with Outbox.for_config(config) as outbox:
        return sorted(outbox.messages(), key=lambda m: m.id)


def test_plan_first_filing_then_nothing_then_cancel_and_replace(config):
    [first] = plan("d", _filing(), None)
    assert (first.action, first.version, first.payload["replaces"]) == ("create", 1, None)
    enqueue_filed(config, [file_document(config, 1, mrn="1000001")])
    latest = _rows(config)[0]
    same = Filing(latest.doc_id, latest.mrn, latest.payload["doc_type"], None, "elsewhere.pdf", "x", 1)
    assert plan(latest.destination, same, latest) == []
    cancel, create = plan(latest.destination, Filing(latest.doc_id, "1000002", "lab_result", None, "p", "s", 1), latest)
    assert (cancel.action, cancel.version, cancel.mrn, cancel.payload["replaced_by"]) == ("cancel", 1, "1000001", 2)
    assert (create.action, create.version, create.mrn, create.payload["replaces"]) == ("create", 2, "1000002", 1)


def test_a_merge_is_not_sent_as_a_correction(config):
    doc = file_document(config, 1, mrn="1000001")
    enqueue_filed(config, [doc])
    merged = doc.moved(
        mrn="1000009",
        doc_type=doc.doc_type,
        path=doc.path,
        event=HistoryEvent(
            "2024-05-01T00:00:00+00:00",
            "hl7",
            "merged",
            moved_from=Placement("1000001", doc.doc_type, "filed"),
            moved_to=Placement("1000009", doc.doc_type),
        ),
    )
    assert enqueue_filed(config, [merged]) == 0  # the EHR merged the patients on the same A40
    retyped = merged.moved(mrn="1000009", doc_type="consultation", path=doc.path, event=merged.history[-1])
    assert {(m.action, m.version, m.mrn) for m in _rows(config) if m.destination == "ehr-fhir"} == {
        ("create", 1, "1000001")
    }
    enqueue_filed(config, [retyped])
    assert [(m.action, m.version, m.mrn) for m in _rows(config) if m.destination == "ehr-fhir"] == [
        ("create", 1, "1000001"),
        ("cancel", 1, "1000001"),
        ("create", 2, "1000009"),
    ]


def test_enqueue_is_idempotent_and_skips_review_and_disabled(config, tmp_path):
    filed = file_document(config, 1, mrn="1000001")
    waiting = file_document(config, 2, mrn=None)
    assert enqueue_filed(config, [filed, waiting]) == 2  # one per destination
    row = {"doc_id": filed.doc_id, "status": "filed", "mrn": filed.mrn, "path": filed.path}  # a run's Outcome.documents
    assert enqueue_filed(config, [filed.doc_id, filed.to_json(), row]) == 0
    assert {(m.destination, m.action, m.version) for m in _rows(config)} == {
        ("ehr-fhir", "create", 1),
        ("ehr-mdm", "create", 1),
    }
    (tmp_path / "off").mkdir()
    off = load_config(write_config(tmp_path / "off"))  # no ehr section: nothing is queued
    assert enqueue_filed(off, [filed]) == 0


def test_in_order_per_patient_and_per_document(config):
    docs = [file_document(config, n, mrn=m) for n, m in [(1, "1000001"), (2, "1000001"), (3, "1000002")]]
    enqueue_filed(config, docs)
    with Outbox.for_config(config) as outbox:
        ready = outbox.ready("ehr-fhir")
        assert [m.doc_id for m in ready] == [docs[0].doc_id, docs[2].doc_id]
        # The first of patient 1 fails and waits: its second still may not overtake it.
        outbox.failed(ready[0].id, "HTTP 503", retry_at=time.time() + 60)
        assert [m.doc_id for m in outbox.ready("ehr-fhir")] == [docs[2].doc_id]
        outbox.failed(ready[0].id, "HTTP 400: bad", retry_at=None)  # dead letters do not block the lane
        assert [m.doc_id for m in outbox.ready("ehr-fhir")] == [docs[1].doc_id, docs[2].doc_id]


def test_retry_revives_dead_but_not_a_superseded_create(config):
    doc = file_document(config, 1, mrn="1000001")
    enqueue_filed(config, [doc])
    with Outbox.for_config(config) as outbox:
        first = outbox.ready("ehr-fhir")[0]
        outbox.failed(first.id, "no Patient", retry_at=None)
        with pytest.raises(OutboxError, match="not dead"):
            outbox.retry([outbox.ready("ehr-mdm")[0].id])
    # Moved to another patient while dead: the new version goes, the old one must never go.
    moved = doc.moved(mrn="1000002", doc_type=doc.doc_type, path=doc.path, event=doc.history[0])
    enqueue_filed(config, [moved])
    rows = [(m.destination, m.action, m.version, m.state) for m in _rows(config)]
    assert ("ehr-fhir", "cancel", 1, "pending") not in rows  # nothing was delivered to cancel
    assert ("ehr-mdm", "cancel", 1, "pending") in rows
    with Outbox.for_config(config) as outbox:
        assert outbox.retry(None) == []
        assert "superseded by version 2" in outbox.get(first.id).last_error


def test_backoff_doubles_up_to_the_limit():
    assert [backoff_seconds(n, 5, 60) for n in range(1, 6)] == [5, 10, 20, 40, 60]


def test_settings_reject_what_cannot_work():
    with pytest.raises(ValidationError, match="not a LOINC code"):
        EhrSettings(document_codes={"lab_result": "lab"})
    with pytest.raises(ValidationError, match="needs token_url, client_id"):
        EhrSettings(destinations=[{**FHIR, "auth": {"type": "oauth2", "secret_env": "X"}}])
    with pytest.raises(ValidationError, match="unique"):
        EhrSettings(destinations=[FHIR, FHIR])
    codes = EhrSettings(document_codes={"lab_result": "26436-6"})
    assert codes.code_for("lab_result")[0] == "26436-6" and codes.code_for("discharge_summary")[0] == "18842-5"
    assert codes.code_for("some_new_type")[0] == "34109-9"


def test_status_counts_and_outbox_is_private(config):
    enqueue_filed(config, [file_document(config, 1, mrn="1000001")])
    done = CliRunner().invoke(cli, ["--config", str(config.path), "status"])
    assert done.exit_code == 0, done.output
    assert "ehr:        ehr-fhir: 1 pending, 0 sent, 0 dead" in done.output
    if config.database.url is None:
        assert oct((config.root / "outbox.sqlite").stat().st_mode & 0o777) == "0o600"
