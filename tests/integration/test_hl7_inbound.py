"""The ADT listener over real MLLP: python-hl7's client against our server on a free loopback port."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import hl7
import hl7.mllp
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from indexers.base import SearchFilters
from pipeline.archive.audit import AuditLog
from pipeline.archive.dataroot import open_data_root
from pipeline.archive.index import open_index
from pipeline.archive.sidecar import read_sidecar
from pipeline.archive.store import (
    doc_id_for,
    iter_sidecars,
    record_from_sidecar,
    write_document,
)
from pipeline.core.config import load_config
from pipeline.core.models import (
    Classification,
    Decision,
    Document,
    Identifiers,
    PageText,
)
from pipeline.ehr.listener import Listener, ListenerError, start_listener
from pipeline.ehr.merge import resume_merges
from pipeline.identify.patients import PatientIndex
from pipeline.identify.roster import RosterPatient
from pipeline.samples import scans as samples
from tests.conftest import ROOT, free_port, write_config

SURVIVOR, PRIOR = "10000001", "10000002"
NAMES = ("DOE", "JOHN", "ROE", "RICHARD", "ROE-SMITH")


@pytest.fixture
def config(tmp_path: Path):
    cfg = load_config(write_config(tmp_path, hl7_listener={"port": 0, "allowed_facilities": ["HOSP"]}))
    open_data_root(cfg)
    index = PatientIndex.for_config(cfg)
    index.import_roster(
        [RosterPatient(SURVIVOR, "DOE", "JOHN", "1980-01-02"), RosterPatient(PRIOR, "DOE", "JOHN", "1980-01-02")]
    )
    index.close()
    return cfg


def exchange(port: int, *blocks: str | bytes) -> list[hl7.Message]:
    """Send each block on one connection with python-hl7's MLLP client; the acknowledgements."""

    async def run() -> list[hl7.Message]:
        reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", port)
        acks = []
        try:
            for block in blocks:
                if isinstance(block, bytes):
                    writer.write(block)  # raw bytes: framing of our own making
                else:
                    writer.writeblock(block.encode("utf-8"))
                await writer.drain()
                acks.append(await asyncio.wait_for(reader.readmessage(), 30))
        finally:
            writer.close()
            await writer.wait_closed()
        return acks

    return asyncio.run(run())


class Running:
    def __init__(self, config, **options) -> None:
        self.stop = threading.Event()
        self.listener = Listener(config, **options)
        self.thread = threading.Thread(target=self.listener.serve, args=(self.stop,), daemon=True)
        self.thread.start()
        assert self.listener.ready.wait(15), self.listener.failure

    def send(self, *blocks: str | bytes) -> list[hl7.Message]:
        return exchange(self.listener.port, *blocks)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.fixture
def running(config):
    server = Running(config)
    yield server
    server.close()


def _message(event: str, control: str, *segments: str, facility: str = "HOSP", strict: bool = True) -> str:
    structure = {"A40": "ADT_A39", "A28": "ADT_A05", "A31": "ADT_A05"}.get(event, "ADT_A01")
    lines = [
        f"MSH|^~\\&|REGSYS|{facility}|MEDARCHIVE|HOSP|20240101120000||ADT^{event}^{structure}|{control}|P|2.5",
        f"EVN|{event}|20240101120000",
        *segments,
    ]
    if event != "A40":
        lines.append("PV1|1|O")
    text = "\r".join(lines) + "\r"
    if strict:
        assert parse_message(text, validation_level=VALIDATION_LEVEL.STRICT).validate()  # a well-formed 2.5 message
    return text


def _ack(message: hl7.Message) -> tuple[str, str, str]:
    # Strict 2.5 wants MSA-2, which an answer to bytes without a control id cannot have.
    if str(message["MSA.F2"]):
        assert parse_message(str(message), validation_level=VALIDATION_LEVEL.STRICT).validate()
    else:
        assert parse_message(str(message)).msa.msa_1.value == "AE"
    return (
        str(message["MSA.F1"]),
        str(message["MSA.F2"]),
        str(message.segment("MSA")(3)) if len(message.segment("MSA")) > 3 else "",
    )


def _audit(config, action: str) -> list[dict]:
    return [e for e in AuditLog.for_config(config).entries() if e["action"] == action]


def test_a04_and_a08_create_and_update_patients(config, running, caplog):
    caplog.set_level(logging.INFO, logger="medarchive")
    acks = running.send(
        _message("A04", "C1", "PID|1||20000001^^^HOSP^MR||ROE^RICHARD||19750203|M"),
        _message("A08", "C2", "PID|1||20000001^^^HOSP^MR||ROE-SMITH^RICHARD||19750203|M"),
        _message("A08", "C3", "PID|1||20000001^^^HOSP^MR||ROE-SMITH^RICHARD||19750203|M"),
    )
    assert [_ack(a)[:2] for a in acks] == [("AA", "C1"), ("AA", "C2"), ("AA", "C3")]
    assert [_ack(a)[2] for a in acks] == [
        "patient 20000001 created",
        "patient 20000001 updated; the earlier name and birth date are kept in its history",
        "patient 20000001 unchanged",
    ]
    index = PatientIndex.for_config(config)
    patient = index.get("20000001")
    [change] = index.history("20000001")
    index.close()
    assert (patient.family, patient.given, patient.dob, patient.sex) == ("ROE-SMITH", "RICHARD", "1975-02-03", "M")
    # The A08 kept what it replaced: who changed it, by which message, the old and the new values.
    assert (change.changed_by, change.source) == ("hl7:REGSYS@HOSP", "C2")
    assert change.old == ("ROE", "RICHARD", "1975-02-03", "M") and change.new[0] == "ROE-SMITH"
    received = _audit(config, "hl7.receive")
    assert [(e["details"]["control_id"], e["outcome"], e["mrns"], e["user"]) for e in received] == [
        (c, "AA", ["20000001"], "hl7:REGSYS@HOSP") for c in ("C1", "C2", "C3")
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "C2" in logged and not any(name in logged for name in NAMES)


def test_unreadable_messages_get_ae_and_the_listener_goes_on(config, running, caplog):
    caplog.set_level(logging.INFO, logger="medarchive")
    acks = running.send(
        "this is not HL7 at all",
        b"no start block\x1c\r",
        _message("A08", "C4", "PID|1||20000001^^^HOSP^MR||ROE^RICHARD||19750203|M", facility="ELSEWHERE"),
        _message("A08", "C5", "PID|1||20000001^^^HOSP^MR||ROE^RICHARD|||M"),
        _message("A08", "C6", "PID|1||20000001^^^HOSP^MR||ROE^RICHARD||19750203|M"),
    )
    codes = [_ack(a) for a in acks]
    assert codes[0][0] == "AE" and "not a readable HL7 v2 message" in codes[0][2]
    assert codes[1][0] == "AE" and "not framed by MLLP" in codes[1][2]
    assert codes[2] == ("AE", "C4", "sending facility ELSEWHERE is not allowed (hl7_listener.allowed_facilities)")
    assert codes[3] == ("AE", "C5", "PID-7 (date of birth) is empty")
    assert codes[4][:2] == ("AA", "C6")
    assert [e["outcome"] for e in _audit(config, "hl7.receive")] == ["AE", "AE", "AE", "AE", "AA"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 4 and "not a readable HL7 v2 message" in warned[0] and "C5" in warned[3]
    # A second connection is served as well.
    assert _ack(running.send(_message("A31", "C7", "PID|1||20000001^^^HOSP^MR||ROE^RICHARD||19750203|M"))[0])[:2] == (
        "AA",
        "C7",
    )


def test_a_failure_while_acting_is_answered_ae(config, running, monkeypatch):
    def broken(patient, **_):
        raise OSError("disk on fire")

    monkeypatch.setattr(running.listener.patients, "upsert", broken)
    acks = running.send(_message("A08", "F1", "PID|1||20000001^^^HOSP^MR||ROE^RICHARD||19750203|M"))
    assert _ack(acks[0]) == ("AE", "F1", "internal error (OSError); resend it later")
    monkeypatch.undo()
    assert _ack(running.send(_message("A08", "F2", "PID|1||20000001^^^HOSP^MR||ROE^RICHARD||19750203|M"))[0])[:2] == (
        "AA",
        "F2",
    )


def _write_documents(config, mrn: str, count: int, tmp: Path, first: int = 0) -> list:
    sidecars = []
    for n in range(count):
        text = f"PROGRESS NOTE\nMRN: {mrn}\nvisit {n}"
        pdf = tmp / f"note-{n}.pdf"
        samples.write_born_digital_pdf(pdf, [text.splitlines()])
        sha = f"{first + n + 1:016x}" + "f" * 48
        doc = Document(
            doc_id_for(sha, 1),
            pdf.name,
            [1],
            sha,
            [PageText(1, text, "text-layer")],
            Identifiers(doc_date=f"2024-01-{n % 28 + 1:02d}"),
            Classification("progress_note", 0.9),
            Decision("filed", mrn),
        )
        sidecars.append(write_document(config, doc, pdf))
    search = open_index(config)
    search.add(record_from_sidecar(s) for s in sidecars)
    search.close()
    return sidecars


def _wait(predicate, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a40_refiles_fifty_documents_and_resumes_after_a_crash(config, tmp_path):
    (tmp_path / "sources").mkdir()
    sidecars = _write_documents(config, PRIOR, 50, tmp_path / "sources")
    moves = []

    def crash_half_way(count: int) -> None:
        moves.append(count)
        if count == 25:
            raise RuntimeError("simulated crash")

    first = Running(config, after_move=crash_half_way)
    [ack] = first.send(
        _message("A40", "M1", "PID|1||10000001^^^HOSP^MR||DOE^JOHN||19800102|M", "MRG|10000002^^^HOSP^MR")
    )
    assert _ack(ack)[:2] == ("AA", "M1")
    _wait(lambda: len(moves) == 25)
    first.close()
    in_prior = list((config.archive_dir / PRIOR).glob("*.json"))
    assert len(in_prior) == 25 and len(list((config.archive_dir / SURVIVOR).glob("*.json"))) == 25
    # Meanwhile identification already sends the prior MRN to the survivor.
    patients = PatientIndex.for_config(config)
    assert patients.survivor_of(PRIOR) == SURVIVOR and patients.open_merges()

    second = Running(config)  # resumes the open merge at start
    try:
        _wait(lambda: not patients.open_merges())
        # Documents are re-filed once the merge is recorded: a repeated A40 is acknowledged, nothing moves twice.
        repeated = _ack(
            second.send(_message("A40", "M2", "PID|1||10000001^^^HOSP^MR", "MRG|10000002^^^HOSP^MR", strict=False))[0]
        )
        assert repeated == ("AA", "M2", "MRN 10000002 was already merged into MRN 10000001; nothing changed")
        assert _ack(second.send(_message("A08", "M3", "PID|1||10000002^^^HOSP^MR||DOE^JOHN||19800102|M"))[0])[0] == "AE"
    finally:
        second.close()
        patients.close()

    wanted = {s.doc_id for s in sidecars}
    archived = list(iter_sidecars(config))
    assert sorted(s.doc_id for s in archived) == sorted(wanted)  # every document exactly once
    assert {s.mrn for s in archived} == {SURVIVOR} and not (config.archive_dir / PRIOR).exists()
    for sidecar in archived:
        assert (config.root / sidecar.path).is_file() and sidecar.path.startswith(f"archive/{SURVIVOR}/")
        assert [e.action for e in sidecar.history].count("merged") == 1
        assert read_sidecar((config.root / sidecar.path).with_suffix(".json")).mrn == SURVIVOR
    search = open_index(config)
    assert {h.doc_id for h in search.search("", SearchFilters(mrn=SURVIVOR), 100)} == wanted
    assert search.search("", SearchFilters(mrn=PRIOR), 100) == []
    assert all(search.get(d).path.startswith(f"archive/{SURVIVOR}/") for d in wanted)
    moved = {d for e in _audit(config, "patient.merge.move") for d in e["doc_ids"]}
    assert moved == wanted
    assert [e["outcome"] for e in _audit(config, "patient.merge")] == ["accepted", "done"]
    assert AuditLog.for_config(config).verify().ok


_KILLED_MERGE = """
import os, signal, sys
from pipeline.archive.audit import AuditLog
from pipeline.archive.index import open_index
from pipeline.core.config import load_config
from pipeline.ehr.merge import run_merge
from pipeline.identify.patients import PatientIndex

class KilledWhileIndexing:
    # SIGKILL after the 20th document's move, before its index record, audit entry and journal row.
    def __init__(self, inner):
        self.inner, self.calls = inner, 0
    def add(self, records):
        self.calls += 1
        if self.calls == 20:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.add(records)

config = load_config(sys.argv[1])
patients = PatientIndex.for_config(config)
run_merge(config, patients, KilledWhileIndexing(open_index(config)), AuditLog.for_config(config), patients.open_merges()[0])
"""


def test_a_merge_killed_by_sigkill_resumes_exactly_once(config, tmp_path):
    (tmp_path / "sources").mkdir()
    wanted = {s.doc_id for s in _write_documents(config, PRIOR, 50, tmp_path / "sources")}
    patients = PatientIndex.for_config(config)
    patients.record_merge(PRIOR, SURVIVOR, survivor_patient=None, control_id="K1", requested_by="hl7:REGSYS@HOSP")
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_MERGE, str(config.path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(list((config.archive_dir / SURVIVOR).glob("*.json"))) == 20
    search = open_index(config)
    assert len(search.search("", SearchFilters(mrn=SURVIVOR), 100)) == 19  # the 20th was moved, not yet indexed

    assert resume_merges(config, patients, search, AuditLog.for_config(config)) == 1
    assert not patients.open_merges()
    patients.close()
    archived = list(iter_sidecars(config))
    assert sorted(s.doc_id for s in archived) == sorted(wanted) and {s.mrn for s in archived} == {SURVIVOR}
    assert all([e.action for e in s.history].count("merged") == 1 for s in archived)
    assert {r.doc_id: r.path for r in search.stored()} == {s.doc_id: s.path for s in archived}
    assert {d for e in _audit(config, "patient.merge.move") for d in e["doc_ids"]} == wanted


def test_watch_starts_the_listener_and_refuses_an_empty_index(tmp_path):
    cfg = load_config(write_config(tmp_path, hl7_listener={"port": 0, "enabled": True}))
    open_data_root(cfg)
    with pytest.raises(ListenerError, match="patient index is empty"):
        start_listener(cfg, threading.Event())
    PatientIndex.for_config(cfg).import_roster([RosterPatient(SURVIVOR, "DOE", "JOHN", "1980-01-02")])
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = cfg.model_copy(
            update={"hl7_listener": cfg.hl7_listener.model_copy(update={"port": taken.getsockname()[1]})}
        )
        with pytest.raises(ListenerError, match=r"cannot listen for HL7 on 127\.0\.0\.1"):
            start_listener(busy, threading.Event())
    stop = threading.Event()
    thread = start_listener(cfg, stop)
    assert thread.is_alive()
    stop.set()
    thread.join(30)
    assert not thread.is_alive()


def test_the_daemon_runs_the_listener_when_enabled(tmp_path):
    port = free_port()
    config_path = write_config(tmp_path, hl7_listener={"enabled": True, "port": port}, watch={"stop_grace_seconds": 10})
    patients = PatientIndex.for_config(load_config(config_path))
    patients.import_roster([RosterPatient(SURVIVOR, "DOE", "JOHN", "1980-01-02")])
    with open(tmp_path / "daemon.log", "w") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--config", str(config_path), "watch"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            _wait(
                lambda: "listening for HL7 ADT" in (tmp_path / "daemon.log").read_text() or daemon.poll() is not None,
                120,
            )
            assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()
            [ack] = exchange(port, _message("A08", "W1", "PID|1||10000001^^^HOSP^MR||DOE^JONATHAN||19800102|M"))
            assert _ack(ack)[:2] == ("AA", "W1")
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(60)
    assert code == 0, (tmp_path / "daemon.log").read_text()
    assert patients.get(SURVIVOR).given == "JONATHAN"
    patients.close()
    assert "JONATHAN" not in (tmp_path / "daemon.log").read_text()
