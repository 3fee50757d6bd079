"""Filed documents to a real FHIR server (Medplum's router and in-memory repository, in Node)."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.documentreference import DocumentReference

from pipeline.archive.audit import AuditFilters, AuditLog
from pipeline.archive.index import open_index
from pipeline.cli.main import cli
from pipeline.ehr.enqueue import enqueue_filed
from pipeline.ehr.outbox import outbox_path
from pipeline.ehr.sender import send_once
from pipeline.records import review
from tests.conftest import ROOT, free_port
from tests.ehr_servers import (
    DOC_SYSTEM,
    MRN_SYSTEM,
    FhirServer,
    ehr_config,
    file_document,
    outbox_messages,
    wait_for,
)

MRN_A, MRN_B = "1000001", "1000002"


@pytest.fixture(scope="module")
def server():
    fhir = FhirServer()
    yield fhir
    fhir.stop()


@pytest.fixture
def fhir(server):
    server.reset()
    return server


def _config(tmp_path: Path, base_url: str, **destination):
    dest = {
        "name": "ehr-fhir",
        "kind": "fhir",
        "base_url": base_url,
        "patient_identifier_system": MRN_SYSTEM,
        "document_identifier_system": DOC_SYSTEM,
        "timeout_seconds": 5,
        "custodian_reference": "Organization/hospital",
        "custodian_display": "General Hospital",
        **destination,
    }
    return ehr_config(tmp_path, dest)


def _documents(fhir: FhirServer, number: str) -> list[dict]:
    return fhir.search("DocumentReference", identifier=f"{DOC_SYSTEM}|{number}")


def _send_until_quiet(config, rounds: int = 40) -> None:
    """Send, waiting out the (short) backoff, until nothing is pending."""
    for _ in range(rounds):
        send_once(config)
        if not any(m.state == "pending" for m in outbox_messages(config)):
            return
        time.sleep(0.06)
    raise AssertionError(f"still pending: {[m.status_row() for m in outbox_messages(config) if m.state == 'pending']}")


def test_filed_documents_become_one_document_reference_each(tmp_path, fhir):
    config = _config(tmp_path, fhir.base_url)
    patient = fhir.add_patient(MRN_A)
    docs = [
        file_document(config, n, mrn=MRN_A, doc_type=t) for n, t in enumerate(["discharge_summary", "lab_result"], 1)
    ]
    review_doc = file_document(config, 9, mrn=None)

    assert enqueue_filed(config, [*docs, review_doc]) == 2
    assert enqueue_filed(config, [d.doc_id for d in docs]) == 0  # again, e.g. from a recovery path: nothing new
    assert oct(outbox_path(config).stat().st_mode & 0o777) == "0o600"
    send_once(config)
    send_once(config)

    assert [m.state for m in outbox_messages(config)] == ["sent", "sent"]
    for doc, loinc in zip(docs, ["18842-5", "11502-2"], strict=True):
        [found] = _documents(fhir, doc.doc_id)
        DocumentReference.model_validate({k: v for k, v in found.items() if k != "meta"})
        pdf = (config.root / doc.path).read_bytes()
        attachment = found["content"][0]["attachment"]
        assert found["status"] == "current"
        assert found["subject"]["reference"] == f"Patient/{patient}"
        assert found["type"]["coding"][0] == {
            "system": "http://loinc.org",
            "code": loinc,
            "display": found["type"]["coding"][0]["display"],
        }
        assert found["custodian"]["reference"] == "Organization/hospital"
        assert attachment["contentType"] == "application/pdf"
        assert base64.b64decode(attachment["data"]) == pdf
        assert attachment["size"] == len(pdf)
        assert attachment["hash"] == base64.b64encode(hashlib.sha1(pdf).digest()).decode()
    assert fhir.requests().get("POST DocumentReference") == 2
    audit = list(AuditLog.for_config(config).entries(AuditFilters(doc_id=docs[0].doc_id)))
    assert [(e["action"], e["outcome"]) for e in audit] == [("ehr.send", "ok"), ("ehr.ack", "sent")]


def test_binary_content_with_oauth2_client_credentials(tmp_path, fhir):
    fhir.require_auth("t0ken", "medarchive", "s3cret")
    (tmp_path / "fhir.secret").write_text("s3cret\n")
    config = _config(
        tmp_path,
        fhir.base_url,
        content="binary",
        auth={
            "type": "oauth2",
            "token_url": f"{fhir.root}/oauth/token",
            "client_id": "medarchive",
            "secret_file": "fhir.secret",
        },
    )
    auth = {"Authorization": "Bearer t0ken"}
    fhir.add_patient(MRN_A, headers=auth)
    doc = file_document(config, 1, mrn=MRN_A)
    enqueue_filed(config, [doc])
    send_once(config)

    assert [m.state for m in outbox_messages(config)] == ["sent"]
    [found] = fhir.search("DocumentReference", headers=auth, identifier=f"{DOC_SYSTEM}|{doc.doc_id}")
    url = found["content"][0]["attachment"]["url"]
    assert url.startswith("Binary/") and "data" not in found["content"][0]["attachment"]
    binary = fhir.http.get(f"{fhir.base_url}/{url}", headers={**auth, "Accept": "application/fhir+json"}).json()
    assert base64.b64decode(binary["data"]) == (config.root / doc.path).read_bytes()
    assert fhir.requests().get("POST DocumentReference") == 1


def test_wrong_client_secret_is_retried_not_dead(tmp_path, fhir):
    fhir.require_auth("t0ken", "medarchive", "s3cret")
    config = _config(
        tmp_path,
        fhir.base_url,
        auth={
            "type": "oauth2",
            "token_url": f"{fhir.root}/oauth/token",
            "client_id": "medarchive",
            "secret_env": "MEDARCHIVE_TEST_FHIR_SECRET",
        },
    )
    enqueue_filed(config, [file_document(config, 1, mrn=MRN_A)])
    os.environ["MEDARCHIVE_TEST_FHIR_SECRET"] = "wrong"
    try:
        send_once(config)
    finally:
        del os.environ["MEDARCHIVE_TEST_FHIR_SECRET"]
    [message] = outbox_messages(config)
    assert message.state == "pending" and "token endpoint refused our client credentials" in message.last_error


def test_unknown_patient_is_dead_with_the_reason_then_retried(tmp_path, fhir):
    config = _config(tmp_path, fhir.base_url)
    doc = file_document(config, 1, mrn=MRN_A)
    enqueue_filed(config, [doc])
    send_once(config)
    [message] = outbox_messages(config)
    assert message.state == "dead" and f"no Patient with identifier {MRN_SYSTEM}|{MRN_A}" in message.last_error

    fhir.add_patient(MRN_A)
    done = CliRunner().invoke(cli, ["--config", str(config.path), "ehr", "retry", str(message.id)])
    assert done.exit_code == 0 and "1 message(s) queued again" in done.output
    send_once(config)
    assert [m.state for m in outbox_messages(config)] == ["sent"]
    assert len(_documents(fhir, doc.doc_id)) == 1
    status = CliRunner().invoke(cli, ["--config", str(config.path), "ehr", "status", "--json"])
    assert '"state": "sent"' in status.output and message.doc_id in status.output


def test_receiver_down_then_up_drains_without_duplicates(tmp_path):
    port = free_port()
    config = _config(tmp_path, f"http://127.0.0.1:{port}/fhir/R4")
    docs = [file_document(config, n, mrn=MRN_A) for n in range(1, 4)]
    enqueue_filed(config, docs)
    send_once(config)
    messages = outbox_messages(config)
    # In order per patient: the first waits out its backoff, the two behind it are not tried.
    assert [m.attempts for m in messages] == [1, 0, 0]
    assert "cannot reach ehr-fhir" in messages[0].last_error

    server = FhirServer(port=port)
    try:
        server.add_patient(MRN_A)
        _send_until_quiet(config)
        assert [m.state for m in outbox_messages(config)] == ["sent"] * 3
        assert all(len(_documents(server, d.doc_id)) == 1 for d in docs)
    finally:
        server.stop()


def test_server_errors_and_slow_answers_are_retried_not_duplicated(tmp_path, fhir):
    config = _config(tmp_path, fhir.base_url, timeout_seconds=0.5)
    fhir.add_patient(MRN_A)
    first, second = file_document(config, 1, mrn=MRN_A), file_document(config, 2, mrn=MRN_A)
    enqueue_filed(config, [first])

    fhir.faults(status=500, count=2, method="POST")
    send_once(config)
    assert outbox_messages(config)[0].last_error.startswith("HTTP 500")
    _send_until_quiet(config)
    assert outbox_messages(config)[0].attempts == 3

    # Slower than our timeout: the server still creates it after we gave up; the retry finds it.
    enqueue_filed(config, [second])
    fhir.faults(delay_ms=1500, method="POST")
    send_once(config)
    assert "did not answer" in outbox_messages(config)[1].last_error
    assert fhir.requests()["POST DocumentReference"] == 3 + 1
    fhir.faults()
    time.sleep(1.2)
    _send_until_quiet(config)
    assert len(_documents(fhir, first.doc_id)) == 1 and len(_documents(fhir, second.doc_id)) == 1


def test_reassigned_document_is_entered_in_error_and_replaced(tmp_path, fhir):
    config = _config(tmp_path, fhir.base_url)
    fhir.add_patient(MRN_A)
    patient_b = fhir.add_patient(MRN_B)
    waiting = file_document(config, 1, mrn=None)
    index = open_index(config)
    audit = AuditLog.for_config(config)
    review.assign(config, index, audit, waiting.doc_id, mrn=MRN_A, doc_type=None, user="clerk")
    send_once(config)
    [old] = _documents(fhir, waiting.doc_id)

    review.reassign(
        config, index, audit, waiting.doc_id, mrn=MRN_B, doc_type="consultation", user="clerk", reason="wrong chart"
    )
    index.close()
    assert [(m.action, m.version, m.mrn) for m in outbox_messages(config)] == [
        ("create", 1, MRN_A),
        ("cancel", 1, MRN_A),
        ("create", 2, MRN_B),
    ]
    send_once(config)

    [cancelled] = _documents(fhir, waiting.doc_id)
    [new] = _documents(fhir, f"{waiting.doc_id}.v2")
    assert cancelled["id"] == old["id"] and cancelled["status"] == "entered-in-error"
    assert new["subject"]["reference"] == f"Patient/{patient_b}"
    assert new["type"]["coding"][0]["code"] == "11488-4"
    assert new["relatesTo"] == [{"code": "replaces", "target": {"reference": f"DocumentReference/{old['id']}"}}]


def test_sender_killed_mid_send_leaves_no_duplicate(tmp_path, fhir):
    config = _config(tmp_path, fhir.base_url)
    fhir.add_patient(MRN_A)
    doc = file_document(config, 1, mrn=MRN_A)
    enqueue_filed(config, [doc])
    fhir.faults(delay_ms=1500, method="POST")
    # A process of its own (the daemon's sender, or `ehr send`), killed while its create is in flight.
    code = (
        "from pipeline.core.config import load_config; from pipeline.ehr.sender import send_once; "
        f"send_once(load_config({str(config.path)!r}))"
    )
    sender = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: fhir.requests().get("POST DocumentReference", 0) >= 1, timeout=30)
        sender.send_signal(signal.SIGKILL)
    finally:
        sender.wait(10)
    assert outbox_messages(config)[0].state == "pending"
    time.sleep(1.6)  # the server finishes the create the killed sender asked for
    fhir.faults()
    _send_until_quiet(config)
    assert len(_documents(fhir, doc.doc_id)) == 1
    assert fhir.requests()["POST DocumentReference"] == 2
