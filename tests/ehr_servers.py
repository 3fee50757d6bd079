"""Real receivers for the EHR tests: Medplum's FHIR server (Node) and a python-hl7 MLLP listener.

Both listen on 127.0.0.1 only. The FHIR server is the small wrapper in tests/fhir_server
(Medplum's FhirRouter over its MemoryRepository); `make test` installs its packages from
the lockfile, and the first use here runs `npm ci` when they are missing.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import hl7
import hl7.mllp
import httpx
from reportlab.pdfgen import canvas

from pipeline.archive.dataroot import open_data_root
from pipeline.archive.sidecar import HistoryEvent, Sidecar, SourceRef, write_sidecar
from pipeline.archive.store import base_name, sidecar_path
from pipeline.core.config import Config, load_config
from pipeline.core.fsutil import atomic_write_bytes, sha256_file
from pipeline.ehr.outbox import Outbox
from tests.conftest import write_config

SERVER_DIR = Path(__file__).resolve().parent / "fhir_server"
MRN_SYSTEM = "urn:oid:1.2.3.4.5"
DOC_SYSTEM = "urn:oid:1.2.3.4.5.9"


def _install_node_packages() -> None:
    if (SERVER_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is missing: run `make test` (it installs nodejs and npm) or apt-get install nodejs npm")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SERVER_DIR, check=True, capture_output=True, timeout=600)


class FhirServer:
    """One Medplum server process; ``base_url`` is its FHIR base."""

    def __init__(self, port: int = 0) -> None:
        _install_node_packages()
        self.process = subprocess.Popen(
            ["node", "server.mjs", str(port)],
            cwd=SERVER_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line.startswith("listening "):
            self.process.kill()
            raise RuntimeError(f"the test FHIR server did not start (said {line!r})")
        self.port = int(line.split()[1])
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/fhir/R4"
        self.http = httpx.Client(timeout=30)

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def reset(self) -> None:
        self.http.post(f"{self.root}/_test/reset").raise_for_status()

    def faults(self, status: int = 0, count: int = 0, delay_ms: int = 0, method: str | None = None) -> None:
        """Fail the next ``count`` requests with ``status`` and/or delay every one (of ``method`` only, when given)."""
        faults = {"status": status, "count": count, "delay_ms": delay_ms, "method": method}
        self.http.post(f"{self.root}/_test/faults", json=faults).raise_for_status()

    def require_auth(self, token: str, client_id: str, client_secret: str) -> None:
        self.http.post(
            f"{self.root}/_test/auth", json={"token": token, "client_id": client_id, "client_secret": client_secret}
        ).raise_for_status()

    def requests(self) -> dict:
        return self.http.get(f"{self.root}/_test/requests").json()

    def add_patient(self, mrn: str, headers: dict | None = None) -> str:
        patient = {
            "resourceType": "Patient",
            "identifier": [{"system": MRN_SYSTEM, "value": mrn}],
            "name": [{"family": "Testpatient", "given": [mrn]}],
        }
        response = self.http.post(f"{self.base_url}/Patient", json=patient, headers=headers or {})
        response.raise_for_status()
        return response.json()["id"]

    def search(self, resource_type: str, headers: dict | None = None, **params) -> list[dict]:
        response = self.http.get(f"{self.base_url}/{resource_type}", params=params, headers=headers or {})
        response.raise_for_status()
        return [e["resource"] for e in response.json().get("entry", [])]


@dataclass
class MllpListener:
    """python-hl7's asyncio MLLP server in a thread; answers each message as ``answer`` says.

    ``answer`` is "AA", "AE", "AR", "silent" (no acknowledgement) or "close" (hang up);
    ``keep`` = False counts messages without keeping them (benchmarks).
    """

    port: int = 0
    answer: str = "AA"
    error_text: str = "patient unknown"
    keep: bool = True
    tls: ssl.SSLContext | None = None
    delay_seconds: float = 0  # before each answer, as a busy receiver takes
    received: list[str] = field(default_factory=list)
    count: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the MLLP listener did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            hl7.mllp.start_hl7_server(
                self._handle, host="127.0.0.1", port=self.port, limit=256 * 1024 * 1024, ssl=self.tls
            )
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader, writer) -> None:
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                self.count += 1
                if self.keep:
                    self.received.append(str(message))
                if self.answer == "close":
                    break
                if self.delay_seconds:
                    await asyncio.sleep(self.delay_seconds)
                if self.answer == "silent":
                    continue
                text = self.error_text if self.answer != "AA" else ""
                ack = message.create_ack(self.answer)
                if text:
                    ack = hl7.parse(str(ack).rstrip("\r") + f"|{text}")  # MSA-3: the reason
                writer.writemessage(ack)
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        async def shut() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def documents(self) -> list[tuple[str, str, str]]:
        """(event, TXA-12, PID-3.1) of every message received."""
        out = []
        for raw in self.received:
            message = hl7.parse(raw)
            out.append(
                (str(message.segment("EVN")(1)), str(message.segment("TXA")(12)), str(message.segment("PID")(3)(0)(0)))
            )
        return out


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 (the TLS listener's, and the CA the client trusts)."""
    cert, key = folder / "listener.pem", folder / "listener.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def one_page_pdf(text: str) -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, text)
    page.showPage()
    page.save()
    return buffer.getvalue()


def file_document(
    config,
    n: int,
    *,
    mrn: str | None,
    doc_type: str = "discharge_summary",
    doc_date: str = "2024-03-01",
    pdf_bytes: bytes | None = None,
) -> Sidecar:
    """A filed (or, without an MRN, queued for review) one-page document written straight into the archive."""
    doc_id = f"{n:016x}-1"
    status = "filed" if mrn else "review"
    folder = config.archive_dir / mrn if mrn else config.review_dir
    pdf = folder / (base_name(doc_date, doc_type, doc_id) + ".pdf")
    atomic_write_bytes(pdf, pdf_bytes or one_page_pdf(f"Test document {n}"))
    sidecar = Sidecar(
        doc_id=doc_id,
        status=status,
        doc_type=doc_type,
        path=pdf.relative_to(config.root).as_posix(),
        sha256=sha256_file(pdf),
        source=SourceRef(f"scan-{n}.pdf", f"{n:064x}", (1,)),
        mrn=mrn,
        doc_date=doc_date,
        pages=1,
        review_reason=None if mrn else "no MRN found",
        history=(HistoryEvent("2024-03-01T00:00:00+00:00", "test", "filed" if mrn else "queued for review", None),),
    )
    write_sidecar(sidecar_path(pdf), sidecar)
    return sidecar


def wait_for(predicate: Callable[[], bool], timeout: float = 20) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def ehr_config(tmp_path: Path, destination: dict) -> Config:
    """A config with one EHR destination and quick retries, its data root opened."""
    path = write_config(
        tmp_path, ehr={"destinations": [destination], "retry": {"first_seconds": 0.05, "max_seconds": 0.2}}
    )
    config = load_config(path)
    open_data_root(config)
    return config


def outbox_messages(config: Config) -> list:
    """Every message of the outbox, oldest first."""
    with Outbox.for_config(config) as outbox:
        return sorted(outbox.messages(), key=lambda m: m.id)
