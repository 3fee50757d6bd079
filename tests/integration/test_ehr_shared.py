"""Two `medarchive ehr send` processes on one shared outbox: every message delivered once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import yaml

from pipeline.core.config import load_config
from pipeline.ehr.enqueue import enqueue_filed
from tests.conftest import ROOT, invoke_cli
from tests.ehr_servers import MllpListener, ehr_config, file_document, outbox_messages

DOCUMENTS = 60


def test_two_senders_deliver_each_message_once(tmp_path, pg_url):
    listener = MllpListener(delay_seconds=0.03)
    try:
        destination = {
            "name": "ehr-mdm",
            "kind": "hl7v2",
            "host": "127.0.0.1",
            "port": listener.port,
            "sending_facility": "GENHOSP",
            "receiving_application": "EHR",
            "receiving_facility": "GENHOSP",
            "assigning_authority": "GENHOSP",
        }
        embedded = ehr_config(tmp_path, destination)
        body = yaml.safe_load(embedded.path.read_text())
        embedded.path.write_text(yaml.safe_dump({**body, "database": {"url": pg_url}}))
        invoke_cli(embedded.path, "db", "upgrade", check=True)
        config = load_config(embedded.path)
        # One patient per document: no message waits for another, so both senders have work.
        docs = [file_document(config, n, mrn=f"{3000000 + n}") for n in range(1, DOCUMENTS + 1)]
        assert enqueue_filed(config, docs) == DOCUMENTS
        senders = [
            subprocess.Popen(
                [sys.executable, "-m", "pipeline", "--config", str(config.path), "ehr", "send"],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [sender.communicate(timeout=300) for sender in senders]
        assert [sender.returncode for sender in senders] == [0, 0], outputs
    finally:
        listener.stop()
    sent_by = [int(out.split(": ", 1)[1].split(" sent")[0]) for out, _ in outputs]
    assert sum(sent_by) == DOCUMENTS and all(sent_by), outputs  # both sent, together each once
    received = Counter(txa12 for _, txa12, _ in listener.documents())
    assert len(received) == DOCUMENTS and set(received.values()) == {1}
    assert {m.state for m in outbox_messages(config)} == {"sent"}
    assert all(m.attempts == 1 for m in outbox_messages(config))
