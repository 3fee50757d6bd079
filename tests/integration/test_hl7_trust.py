"""Trust on the wire: who may send ADT, merges checked and undoable, a listener that cannot be worn down.

Real sockets throughout: TLS with a test CA made here (trustme), real listeners in
threads or processes, the `watch` daemon under a file-handle limit of 1,024.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trustme

from pipeline.archive.dataroot import open_data_root
from pipeline.archive.index import open_index
from pipeline.archive.store import doc_id_for, iter_sidecars, record_from_sidecar, write_document
from pipeline.core.config import load_config
from pipeline.core.models import Classification, Decision, Document, Identifiers, PageText
from pipeline.ehr.listener import Listener, ListenerError
from pipeline.identify.patients import PatientIndex, retired_note
from pipeline.identify.roster import RosterPatient
from pipeline.samples import scans as samples
from tests.conftest import ROOT, born_digital, document, free_port, invoke_cli, json_lines, write_config
from tests.integration.test_hl7_inbound import (
    PRIOR,
    SURVIVOR,
    Running,
    _ack,
    _audit,
    _message,
    _wait,
    _write_documents,
    exchange,
)

OTHER = "10000003"  # a different person: ROE, RICHARD
A08 = "PID|1||10000001^^^HOSP^MR||DOE^JONATHAN||19800102|M"


def _roster(cfg) -> None:
    index = PatientIndex.for_config(cfg)
    index.import_roster(
        [
            RosterPatient(SURVIVOR, "DOE", "JOHN", "1980-01-02"),
            RosterPatient(PRIOR, "DOE", "JOHN", "1980-01-02"),
            RosterPatient(OTHER, "ROE", "RICHARD", "1975-02-03"),
        ]
    )
    index.close()


def _config(tmp_path: Path, **listener):
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = load_config(write_config(tmp_path, hl7_listener={"port": 0, "allowed_facilities": ["HOSP"], **listener}))
    open_data_root(cfg)
    _roster(cfg)
    return cfg


def _frame(text: str) -> bytes:
    return b"\x0b" + text.encode() + b"\x1c\r"


def _read_ack(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\x1c\r"):
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # a refused connection closed while our message was in flight
            break
        if not chunk:
            break
        data += chunk
    return data


# -- TLS with client certificates ---------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _tls_config(tmp_path: Path, ca: trustme.CA):
    tmp_path.mkdir(parents=True, exist_ok=True)
    server = ca.issue_cert("127.0.0.1", "localhost")
    paths = {"cert": tmp_path / "server.pem", "key": tmp_path / "server.key", "client_ca": tmp_path / "ca.pem"}
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    paths["key"].chmod(0o600)
    ca.cert_pem.write_to_path(str(paths["client_ca"]))
    return _config(tmp_path, host="127.0.0.1", tls={k: str(v) for k, v in paths.items()})


def _tls_send(port: int, ca: trustme.CA, client: trustme.LeafCert | None, text: str) -> bytes:
    """One message over TLS; the answer, or b"" when the server refused the client."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if client is not None:
        client.configure_cert(context)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                sock.sendall(_frame(text))
                return _read_ack(sock)
        except (ssl.SSLError, ConnectionError):
            return b""


def test_tls_listener_serves_only_clients_with_a_certificate_of_its_ca(tmp_path, ca):
    cfg = _tls_config(tmp_path, ca)
    server = Running(cfg)
    try:
        port = server.listener.port
        good = ca.issue_cert("interface-engine.hosp.example")
        stranger = trustme.CA().issue_cert("interface-engine.hosp.example")
        assert _tls_send(port, ca, None, _message("A08", "T1", A08)) == b""  # no certificate
        assert _tls_send(port, ca, stranger, _message("A08", "T2", A08)) == b""  # signed by another CA
        # Plain MLLP to a TLS port: no answer either.
        with socket.create_connection(("127.0.0.1", port), timeout=20) as plain:
            plain.sendall(_frame(_message("A08", "T3", A08)))
            assert b"MSA" not in _read_ack(plain)
        patients = PatientIndex.for_config(cfg)
        assert patients.get(SURVIVOR).given == "JOHN"  # nothing refused reached the index
        answer = _tls_send(port, ca, good, _message("A08", "T4", A08))
        assert b"MSA|AA|T4" in answer
        assert patients.get(SURVIVOR).given == "JONATHAN"
        patients.close()
    finally:
        server.close()
    assert [e["details"]["control_id"] for e in _audit(cfg, "hl7.receive")] == ["T4"]


def test_plain_tcp_beyond_loopback_is_refused_unless_allowed(tmp_path, ca):
    cfg = _config(tmp_path, host="0.0.0.0")
    with pytest.raises(ListenerError, match=r"hl7_listener\.tls is not set"):
        Listener(cfg)
    assert "refused: plain TCP off loopback" in invoke_cli(cfg.path, "status", check=True).stdout
    allowed = cfg.model_copy(update={"hl7_listener": cfg.hl7_listener.model_copy(update={"allow_plaintext": True})})
    Listener(allowed).patients.close()
    # A key others can read is refused before anything listens.
    tls_cfg = _tls_config(tmp_path / "tls", ca)
    assert (
        "TLS with client certificates"
        in json.loads(invoke_cli(tls_cfg.path, "status", "--json").stdout)["hl7"]["transport"]
    )
    (tmp_path / "tls" / "server.key").chmod(0o644)
    with pytest.raises(ListenerError, match="readable by other users"):
        Listener(tls_cfg)


def test_sources_outside_the_allow_list_and_over_the_caps_are_closed_unanswered(tmp_path, caplog):
    cfg = _config(tmp_path, allowed_sources=["10.20.30.0/24"])
    server = Running(cfg)
    try:
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", server.listener.port), timeout=20) as sock:
                sock.sendall(_frame(_message("A08", "S1", A08)))
                assert _read_ack(sock) == b""
    finally:
        server.close()
    refusals = [r.getMessage() for r in caplog.records if "allowed_sources" in r.getMessage()]
    assert len(refusals) == 2 and "4 more" in refusals[1]  # once, then a count at the stop
    assert not _audit(cfg, "hl7.receive")

    capped = _config(tmp_path / "capped", max_connections=3, max_connections_per_source=2)
    server = Running(capped)
    try:
        port = server.listener.port
        held = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(2)]
        _wait(lambda: server.listener.gate.open == 2)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as third:
            third.sendall(_frame(_message("A08", "S2", A08)))
            assert _read_ack(third) == b""  # over the per-address cap: closed at accept
        held[0].sendall(_frame(_message("A08", "S3", A08)))
        assert b"MSA|AA|S3" in _read_ack(held[0])  # the admitted ones are served
        for sock in held:
            sock.close()
        _wait(lambda: server.listener.gate.open == 0)
        assert _ack(exchange(port, _message("A08", "S4", A08))[0])[:2] == ("AA", "S4")
    finally:
        server.close()


# -- merges checked, held, confirmed, undone -----------------------------------


def _a40(control: str, survivor: str, prior: str, pid_name: str = "DOE^JOHN", dob: str = "19800102") -> str:
    return _message("A40", control, f"PID|1||{survivor}^^^HOSP^MR||{pid_name}||{dob}|M", f"MRG|{prior}^^^HOSP^MR")


def _a37(control: str, first: str, second: str) -> str:
    return (
        "\r".join(
            [
                f"MSH|^~\\&|REGSYS|HOSP|MEDARCHIVE|HOSP|20240101120000||ADT^A37^ADT_A37|{control}|P|2.5",
                "EVN|A37|20240101120000",
                f"PID|1||{first}^^^HOSP^MR||DOE^JOHN||19800102|M",
                "PV1|1|O",
                f"PID|1||{second}^^^HOSP^MR||DOE^JOHN||19800102|M",
                "PV1|1|O",
            ]
        )
        + "\r"
    )


def _folder(cfg, mrn: str) -> set[str]:
    return {p.stem.rsplit("_", 1)[-1] for p in (cfg.archive_dir / mrn).glob("*.json")}


def test_a_spoofed_merge_is_held_and_moves_nothing_until_a_clerk_confirms(tmp_path):
    cfg = _config(tmp_path)
    (tmp_path / "src").mkdir()
    victims = {s.doc_id for s in _write_documents(cfg, OTHER, 3, tmp_path / "src")}
    server = Running(cfg)
    try:
        spoofed, unknown, ok_code = server.send(
            _a40("X1", SURVIVOR, OTHER),  # ROE RICHARD is not DOE JOHN
            _a40("X2", "19999999", OTHER, "MADEUP^NAME", "19700101"),  # a survivor nobody registered
            _a40("X1", SURVIVOR, OTHER),  # resent: the same held entry
        )
        code, control, text = _ack(spoofed)
        assert (code, control) == ("AA", "X1") and text.startswith("held for review as #1, nothing changed: ")
        assert "name or date of birth of the retired MRN 10000003" in text and "RICHARD" not in text
        assert "MRN 19999999 is not in the patient index" in _ack(unknown)[2]
        assert "#1" in _ack(ok_code)[2]
        time.sleep(1)  # the merge thread had its chance: nothing may move
        assert _folder(cfg, OTHER) == victims
        patients = PatientIndex.for_config(cfg)
        assert patients.get(OTHER).status == "active" and patients.get("19999999") is None
        patients.close()

        listed = json_lines(invoke_cli(cfg.path, "patients", "merges", "--json", check=True).stdout)
        assert [(r["id"], r["prior"], r["survivor"], r["state"]) for r in listed] == [
            (1, OTHER, SURVIVOR, "pending"),
            (2, OTHER, "19999999", "pending"),
        ]
        rejected = invoke_cli(cfg.path, "--user", "clerk1", "patients", "merges", "reject", "2", "--reason", "spoof")
        assert rejected.returncode == 0, rejected.stderr
        again = invoke_cli(cfg.path, "patients", "merges", "reject", "2", "--reason", "twice")
        assert again.returncode != 0 and "already rejected by clerk1" in again.stderr
        confirmed = invoke_cli(cfg.path, "--user", "clerk1", "patients", "merges", "confirm", "1")
        assert confirmed.returncode == 0, confirmed.stderr
        _wait(lambda: _folder(cfg, SURVIVOR) == victims and not _folder(cfg, OTHER))
    finally:
        server.close()
    outcomes = [(e["outcome"], e["user"]) for e in _audit(cfg, "patient.merge")]
    assert ("held", "hl7:REGSYS@HOSP") in outcomes and ("confirmed", "clerk1") in outcomes and outcomes[-1][0] == "done"
    assert [e["outcome"] for e in _audit(cfg, "patient.merge") if e["details"].get("review") == 2] == [
        "held",
        "rejected",
    ]


@pytest.mark.parametrize(
    ("policy", "held"), [("review", True), ("verified", False), ("trust", False)], ids=["review", "verified", "trust"]
)
def test_merge_policy(tmp_path, policy, held):
    cfg = _config(tmp_path, merge_policy=policy)
    server = Running(cfg)
    try:
        text = _ack(server.send(_a40("P1", SURVIVOR, PRIOR))[0])[2]
    finally:
        server.close()
    assert ("held for review" in text) is held
    patients = PatientIndex.for_config(cfg)
    assert (patients.survivor_of(PRIOR) is None) is held
    patients.close()


def _filed_by_retired_mrn(cfg, tmp_path: Path) -> str:
    text = f"PROGRESS NOTE\nMRN: {PRIOR}\nafter the merge"
    pdf = tmp_path / "late.pdf"
    samples.write_born_digital_pdf(pdf, [text.splitlines()])
    sha = "e" * 64
    doc = Document(
        doc_id_for(sha, 1),
        pdf.name,
        [1],
        sha,
        [PageText(1, text, "text-layer")],
        Identifiers(doc_date="2024-02-01"),
        Classification("progress_note", 0.9),
        Decision("filed", SURVIVOR, corrections=(retired_note(PRIOR, SURVIVOR),)),
    )
    sidecar = write_document(cfg, doc, pdf)
    index = open_index(cfg)
    index.add([record_from_sidecar(sidecar)])
    index.close()
    return sidecar.doc_id


def test_a37_and_patients_unmerge_put_the_documents_back(tmp_path):
    cfg = _config(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src2").mkdir()
    prior_docs = {s.doc_id for s in _write_documents(cfg, PRIOR, 4, tmp_path / "src")}
    survivor_docs = {s.doc_id for s in _write_documents(cfg, SURVIVOR, 2, tmp_path / "src2", first=100)}
    server = Running(cfg)
    try:
        assert "accepted" in _ack(server.send(_a40("U1", SURVIVOR, PRIOR))[0])[2]
        _wait(lambda: _folder(cfg, SURVIVOR) == prior_docs | survivor_docs)
        # Meanwhile a scan read with the retired MRN was filed under the survivor: it goes back too.
        prior_docs.add(_filed_by_retired_mrn(cfg, tmp_path))
        # The A37 may name the two patients in either order; resent, it changes nothing.
        undone, resent, unknown = server.send(
            _a37("U2", SURVIVOR, PRIOR), _a37("U3", PRIOR, SURVIVOR), _a37("U4", SURVIVOR, OTHER)
        )
        assert _ack(undone)[:2] == ("AA", "U2") and "undone" in _ack(undone)[2]
        assert "already undone" in _ack(resent)[2]
        assert _ack(unknown)[0] == "AE" and "are not merged" in _ack(unknown)[2]
        _wait(lambda: _folder(cfg, PRIOR) == prior_docs and _folder(cfg, SURVIVOR) == survivor_docs)
    finally:
        server.close()
    patients = PatientIndex.for_config(cfg)
    assert patients.survivor_of(PRIOR) is None and patients.get(PRIOR).status == "active"
    assert not patients.open_merges()
    patients.close()
    index = open_index(cfg)
    assert {r.doc_id for r in index.stored() if r.mrn == PRIOR} == prior_docs
    index.close()
    for sidecar in iter_sidecars(cfg):
        if sidecar.doc_id in prior_docs:
            assert [e.action for e in sidecar.history][-2:] in (["merged", "unmerged"], ["filed", "unmerged"])
    assert [e["outcome"] for e in _audit(cfg, "patient.unmerge")] == ["accepted", "done"]
    assert {d for e in _audit(cfg, "patient.unmerge.move") for d in e["doc_ids"]} == prior_docs

    # By hand, with no listener running: merged again by the feed's rules, then undone by a clerk.
    server = Running(cfg)
    try:
        server.send(_a40("U5", SURVIVOR, PRIOR))
        _wait(lambda: not _folder(cfg, PRIOR))
    finally:
        server.close()
    missing = invoke_cli(cfg.path, "patients", "unmerge", OTHER, "--reason", "x")
    assert missing.returncode != 0 and "is not merged" in missing.stderr
    done = invoke_cli(cfg.path, "--user", "him1", "patients", "unmerge", PRIOR, "--reason", "two people")
    assert done.returncode == 0, done.stderr
    assert "5 document(s) re-filed" in done.stdout
    assert _folder(cfg, PRIOR) == prior_docs and _folder(cfg, SURVIVOR) == survivor_docs
    entry = _audit(cfg, "patient.unmerge")[-2]
    assert (entry["user"], entry["reason"], entry["outcome"]) == ("him1", "two people", "accepted")


def test_patients_show_prints_the_earlier_demographics(tmp_path):
    cfg = _config(tmp_path)
    server = Running(cfg)
    try:
        server.send(_message("A08", "H1", A08), _message("A08", "H2", A08.replace("19800102", "19800103")))
    finally:
        server.close()
    shown = invoke_cli(cfg.path, "patients", "show", SURVIVOR, check=True).stdout
    was = [line for line in shown.splitlines() if line.strip().startswith("was:")]
    assert len(was) == 2
    assert "DOE, JOHN  1980-01-02" in was[0] and "message H1" in was[0] and "DOE, JONATHAN  1980-01-02" in was[0]
    assert "DOE, JONATHAN  1980-01-02" in was[1] and "1980-01-03" in was[1]
    history = json.loads(invoke_cli(cfg.path, "patients", "show", SURVIVOR, "--json", check=True).stdout)["history"]
    assert [h["source"] for h in history] == ["H1", "H2"]


# -- a listener that cannot be worn down --------------------------------------


def _listen_process(tmp_path: Path, **listener) -> tuple[subprocess.Popen, int, Path]:
    port = free_port()
    cfg_path = write_config(tmp_path, hl7_listener={"port": port, **listener})
    cfg = load_config(cfg_path)
    open_data_root(cfg)
    _roster(cfg)
    log = tmp_path / "listener.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(cfg_path), "hl7", "listen"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    _wait(lambda: "listening for HL7 ADT" in log.read_text() or proc.poll() is not None, 120)
    assert proc.poll() is None, log.read_text()
    return proc, port, log


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_slow_senders_are_held_under_a_memory_bound_and_cut_off(tmp_path):
    proc, port, log = _listen_process(
        tmp_path, max_message_kb=256, max_connections=8, max_connections_per_source=8, read_timeout_seconds=3
    )
    try:
        before = _rss_kb(proc.pid)
        senders = []
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", port), timeout=20)
            sock.setblocking(False)
            try:
                sock.send(b"\x0b" + b"MSH|" + b"A" * 200_000)  # never finished
            except (BlockingIOError, ConnectionError):
                pass
            senders.append(sock)
        time.sleep(1)
        grown_mb = (_rss_kb(proc.pid) - before) / 1024
        # At most 8 connections are read, 256 KB each: the 300 senders cannot take more.
        assert grown_mb < 40, f"listener grew by {grown_mb:.0f} MB"
        # The read deadline frees the slots (the senders hold theirs open): a real sender is served.
        _wait(lambda: "read_timeout_seconds" in log.read_text(), 30)
        [ack] = exchange(port, _message("A08", "M1", A08))
        assert _ack(ack)[:2] == ("AA", "M1")
        for sock in senders:
            sock.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
    text = log.read_text()
    assert "Traceback" not in text and len(text.splitlines()) < 20, text


def test_crafted_messages_do_not_hold_up_the_next_sender(tmp_path):
    cfg = _config(tmp_path)
    crafted = _message("A08", "K1", "PID|1||10000001^^^HOSP^MR||" + "A^B~C&D|" * 110_000 + "||19800102", strict=False)
    assert len(crafted) > 800_000  # it cost 13 s of python-hl7's time before its size was checked
    server = Running(cfg)

    async def loop_crafted(stop: asyncio.Event) -> list[str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.listener.port)
        answers = []
        while not stop.is_set():
            writer.write(_frame(crafted))
            await writer.drain()
            answers.append((await reader.readuntil(b"\x1c\r")).decode())
        writer.close()
        return answers

    async def scenario() -> tuple[list[list[str]], float]:
        stop = asyncio.Event()
        loops = [asyncio.create_task(loop_crafted(stop)) for _ in range(3)]
        await asyncio.sleep(0.5)
        started = time.monotonic()
        ack = await asyncio.to_thread(exchange, server.listener.port, _message("A08", "K2", A08))
        waited = time.monotonic() - started
        assert _ack(ack[0])[:2] == ("AA", "K2")
        stop.set()
        return await asyncio.gather(*loops), waited

    try:
        answers, waited = asyncio.run(scenario())
    finally:
        server.close()
    assert all(a and all("MSA|AE|K1" in x and "larger than 16 KB" in x for x in a) for a in answers)
    assert waited < 5, f"the real A08 waited {waited:.1f} s behind crafted messages (30 s before the fix)"


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


@pytest.mark.parametrize("caps", ["default", "far too high"])
def test_watch_survives_a_connection_flood_under_1024_file_handles(tmp_path, caps):
    """1,100 idle connections while files are dropped. With the default caps the listener turns the
    flood away at accept; with caps far too high it runs the daemon out of file handles itself."""
    port = free_port()
    too_high = caps == "far too high"
    limits = {"max_connections": 5000, "max_connections_per_source": 5000} if too_high else {}
    cfg_path = write_config(
        tmp_path,
        hl7_listener={"enabled": True, "port": port, **limits},
        watch={"quiet_seconds": 1, "rescan_seconds": 2, "stop_grace_seconds": 30},
    )
    cfg = load_config(cfg_path)
    open_data_root(cfg)
    _roster(cfg)
    staging = tmp_path / "staging"
    staging.mkdir()
    files = [born_digital(staging / f"flood-{n}.pdf", document(40 + n, "progress_note")) for n in range(3)]
    log = tmp_path / "daemon.log"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(cfg_path), "watch"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=_limit_files,
    )
    flood: list[socket.socket] = []
    try:
        _wait(lambda: "watching " in log.read_text() or daemon.poll() is not None, 120)
        assert daemon.poll() is None, log.read_text()
        for _ in range(1100):
            try:
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                break  # the backlog is full: the daemon is out of handles already
        if too_high:
            _wait(lambda: "Too many open files" in log.read_text() or daemon.poll() is not None, 60)
        for path in files:
            shutil.copy(path, cfg.drop_folders[0].path / path.name)
        if too_high:
            time.sleep(5)  # sweeps and claims meet EMFILE meanwhile
            assert daemon.poll() is None, log.read_text()[-3000:]
            for sock in flood:  # the flood ends; the daemon catches up without a restart
                sock.close()
        _wait(lambda: sum(1 for _ in iter_sidecars(cfg)) >= 3 or daemon.poll() is not None, 240)
        assert daemon.poll() is None, log.read_text()[-3000:]
    finally:
        for sock in flood:
            sock.close()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(90)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert sorted(s.source.file for s in iter_sidecars(cfg)) == sorted(p.name for p in files)
    assert not list(cfg.processing_dir.glob("*"))
    assert "Traceback" not in text and len(text) < 200_000
    if too_high:
        # Once per place it struck (accept, the merge thread, the drop-folder loop), then a count.
        assert 1 <= text.count("Too many open files") <= 6, text[-3000:]
    else:
        assert "Too many open files" not in text and "max_connections_per_source (4)" in text


def test_control_characters_from_hl7_fields_reach_no_terminal_raw(tmp_path):
    cfg = _config(tmp_path, allowed_facilities=[])
    hostile = _message(
        "A08", "E\x1b]0;owned\x07", "PID|1||10000001^^^HOSP^MR||DOE\x1b[2J^JOHN||19800102|M", strict=False
    ).replace("REGSYS", "REG\x9b31mSYS")
    server = Running(cfg)
    try:
        with socket.create_connection(("127.0.0.1", server.listener.port), timeout=20) as sock:
            sock.sendall(_frame(hostile))
            assert b"MSA|AA|" in _read_ack(sock)
    finally:
        server.close()
    outputs = [
        invoke_cli(cfg.path, "patients", "show", SURVIVOR, check=True).stdout,
        invoke_cli(cfg.path, "patients", "show", SURVIVOR, "--json", check=True).stdout,
        invoke_cli(cfg.path, "audit", "--action", "hl7.receive", check=True).stdout,
        invoke_cli(cfg.path, "audit", "--action", "hl7.receive", "--json", check=True).stdout,
    ]
    for text in outputs:
        assert not any(c in text for c in "\x1b\x07\x9b"), text
    assert "DOE\\x1b[2J" in outputs[0] and "REG\\x9b31mSYS" in outputs[2]
    assert json.loads(outputs[1])["family"] == "DOE\x1b[2J"  # JSON keeps the value, escaped
