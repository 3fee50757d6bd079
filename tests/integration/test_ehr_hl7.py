"""Filed documents as HL7 v2 MDM over MLLP, to python-hl7's asyncio MLLP server; hl7apy checks what we send."""

from __future__ import annotations

import base64
import re
import ssl
import threading
import time
from pathlib import Path

import hl7
from click.testing import CliRunner
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from pipeline.archive.audit import AuditLog
from pipeline.archive.index import open_index
from pipeline.cli.main import cli
from pipeline.ehr.enqueue import enqueue_filed
from pipeline.ehr.sender import send_once, start_sender
from pipeline.records import review
from tests.conftest import free_port
from tests.ehr_servers import (
    MllpListener,
    ehr_config,
    file_document,
    outbox_messages,
    self_signed,
    wait_for,
)

MRN_A, MRN_B = "2000001", "2000002"


def _config(tmp_path: Path, port: int, **destination):
    dest = {
        "name": "ehr-mdm",
        "kind": "hl7v2",
        "host": "127.0.0.1",
        "port": port,
        "sending_facility": "GENHOSP",
        "receiving_application": "EHR",
        "receiving_facility": "GENHOSP",
        "assigning_authority": "GENHOSP",
        "timeout_seconds": 2,
        **destination,
    }
    return ehr_config(tmp_path, dest)


def _strict(raw: str):
    """hl7apy's strict check of segments, fields and datatypes. Its tables give ED data 199
    characters (HL7's lengths are not normative there; receivers take whole documents), so
    the base64 is checked apart and stands as a short placeholder here."""
    raw = re.sub(r"\^Base64\^[A-Za-z0-9+/=]+", "^Base64^JVBERg==", raw.replace("\n", "\r"))
    message = parse_message(raw, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    message.validate()
    return message


def test_mdm_t02_carries_the_pdf_and_validates(tmp_path):
    listener = MllpListener()
    try:
        config = _config(tmp_path, listener.port)
        docs = [
            file_document(config, n, mrn=MRN_A, doc_type=t) for n, t in enumerate(["lab_result", "progress_note"], 1)
        ]
        enqueue_filed(config, docs)
        enqueue_filed(config, docs)
        [result] = send_once(config)
        assert (result.sent, result.retry, result.dead) == (2, 0, 0)
        assert [m.state for m in outbox_messages(config)] == ["sent", "sent"]
        for raw, doc, loinc in zip(listener.received, docs, ["11502-2", "11506-3"], strict=True):
            message = _strict(raw)
            assert message.name == "MDM_T02"
            assert message.txa.txa_12.value == doc.doc_id
            assert message.txa.txa_2.value == doc.doc_type
            assert message.pid.pid_3.value == f"{MRN_A}^^^GENHOSP^MR"
            obx = hl7.parse(raw).segment("OBX")
            assert str(obx(3)(0)(0)) == loinc and str(obx(2)) == "ED"
            assert [str(c) for c in obx(5)(0)[1:4]] == ["AP", "PDF", "Base64"]
            assert base64.b64decode(str(obx(5)(0)(5))) == (config.root / doc.path).read_bytes()
    finally:
        listener.stop()


def test_ae_is_dead_then_retried_once_the_receiver_is_fixed(tmp_path):
    listener = MllpListener(answer="AE", error_text="unknown patient")
    try:
        config = _config(tmp_path, listener.port)
        doc = file_document(config, 1, mrn=MRN_A)
        enqueue_filed(config, [doc])
        send_once(config)
        [message] = outbox_messages(config)
        assert message.state == "dead" and message.last_error == "AE: unknown patient"

        listener.answer = "AA"
        done = CliRunner().invoke(cli, ["--config", str(config.path), "ehr", "retry", "--all-dead"])
        assert done.exit_code == 0, done.output
        send_once(config)
        assert [m.state for m in outbox_messages(config)] == ["sent"]
        assert [d[1] for d in listener.documents()] == [doc.doc_id, doc.doc_id]  # the same TXA-12 both times
    finally:
        listener.stop()


def test_receiver_down_then_up_and_silent_receiver(tmp_path):
    port = free_port()
    config = _config(tmp_path, port, timeout_seconds=0.5)
    docs = [file_document(config, n, mrn=m) for n, m in [(1, MRN_A), (2, MRN_A), (3, MRN_B)]]
    enqueue_filed(config, docs)
    send_once(config)
    assert [m.attempts for m in outbox_messages(config)] == [1, 0, 1]  # MRN_A's second waits behind its first

    listener = MllpListener(port=port, answer="silent")
    try:
        time.sleep(0.25)
        send_once(config)
        assert all("no acknowledgement" in m.last_error for m in outbox_messages(config) if m.attempts)
        listener.answer = "AA"
        for _ in range(40):
            send_once(config)
            if all(m.state == "sent" for m in outbox_messages(config)):
                break
            time.sleep(0.06)
        assert [m.state for m in outbox_messages(config)] == ["sent"] * 3
        # Every document arrived; those the silent receiver never acknowledged came again with the same TXA-12.
        delivered = listener.documents()
        assert {d[1] for d in delivered} == {d.doc_id for d in docs}
        assert {d[0] for d in delivered} == {"T02"} and len(delivered) == 3 + 2
    finally:
        listener.stop()


def test_reassignment_cancels_with_t11_and_sends_a_new_t02(tmp_path):
    listener = MllpListener()
    try:
        config = _config(tmp_path, listener.port)
        waiting = file_document(config, 1, mrn=None)
        index = open_index(config)
        audit = AuditLog.for_config(config)
        review.assign(config, index, audit, waiting.doc_id, mrn=MRN_A, doc_type="lab_result", user="clerk")
        send_once(config)
        review.reassign(
            config, index, audit, waiting.doc_id, mrn=MRN_B, doc_type=None, user="clerk", reason="wrong chart"
        )
        index.close()
        send_once(config)

        assert listener.documents() == [
            ("T02", waiting.doc_id, MRN_A),
            ("T11", waiting.doc_id, MRN_A),
            ("T02", f"{waiting.doc_id}.v2", MRN_B),
        ]
        cancel, replacement = (_strict(raw) for raw in listener.received[1:])
        assert cancel.name == "MDM_T01" and cancel.txa.txa_19.value == "CA"
        assert replacement.txa.txa_13.value == waiting.doc_id
    finally:
        listener.stop()


def test_sender_thread_of_watch_delivers_and_stops(tmp_path):
    listener = MllpListener()
    stop = threading.Event()
    try:
        config = _config(tmp_path, listener.port)
        docs = [file_document(config, n, mrn=MRN_A) for n in (1, 2)]
        done = CliRunner().invoke(cli, ["--config", str(config.path), "ehr", "enqueue", "--all"])
        assert done.exit_code == 0 and "2 message(s) queued" in done.output
        sender = start_sender(
            config.model_copy(update={"ehr": config.ehr.model_copy(update={"poll_seconds": 0.1})}), stop
        )
        assert wait_for(lambda: all(m.state == "sent" for m in outbox_messages(config)))
        enqueue_filed(config, [file_document(config, 3, mrn=MRN_B)])  # filed while the sender waits
        assert wait_for(lambda: len(listener.received) == 3 and all(m.state == "sent" for m in outbox_messages(config)))
        stop.set()
        sender.join(10)
        assert not sender.is_alive()
        assert sorted(d[1] for d in listener.documents()) == sorted([*(d.doc_id for d in docs), f"{3:016x}-1"])
    finally:
        stop.set()
        listener.stop()


def test_tls_to_a_listener_whose_certificate_we_trust(tmp_path):
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    listener = MllpListener(tls=context)
    try:
        config = _config(tmp_path, listener.port, tls={"enabled": True, "ca_file": cert.name})
        doc = file_document(config, 1, mrn=MRN_A)
        enqueue_filed(config, [doc])
        send_once(config)
        assert [m.state for m in outbox_messages(config)] == ["sent"] and listener.documents()[0][1] == doc.doc_id

        (tmp_path / "other").mkdir()
        # Without ca_file only the system's CAs are trusted, and they never signed this certificate.
        untrusting = _config(tmp_path / "other", listener.port, tls={"enabled": True})
        enqueue_filed(untrusting, [file_document(untrusting, 2, mrn=MRN_A)])
        send_once(untrusting)
        [refused] = outbox_messages(untrusting)
        assert refused.state == "pending" and "CERTIFICATE_VERIFY_FAILED" in refused.last_error
    finally:
        listener.stop()
