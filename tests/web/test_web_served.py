"""Abuse of a real `medarchive serve` over real HTTP (urllib): what the Flask test client cannot show.

The test client closes every response and runs one request at a time; a real
server streams responses its own way and serves each connection in a thread.
"""

from __future__ import annotations

import http.cookiejar
import io
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, wait_listening
from tests.web.fixtures import PASSWORDS, csrf_of, data_site, filed, site_config


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A cookie-keeping HTTP client that shows redirects and error statuses instead of following or raising."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirects()
        )

    def request(self, path: str, form: dict | None = None) -> tuple[int, bytes]:
        data = urllib.parse.urlencode(form, doseq=True).encode() if form is not None else None
        try:
            with self.opener.open(self.base + path, data=data, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read()

    def token(self, path: str = "/login") -> str:
        return csrf_of(self.request(path)[1].decode())

    def log_in(self, name: str, password: str | None = None) -> int:
        token = self.token()
        return self.request(
            "/login", {"name": name, "password": password or PASSWORDS[name], "csrf_token": token, "next": ""}
        )[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server whose system temp dir is a folder of its own, so anything it puts there is seen."""
    site = data_site(tmp_path_factory)
    config = site_config(site, login_attempts=5, login_wait_seconds=60)
    system_tmp = tmp_path_factory.mktemp("server-tmp")
    log = tmp_path_factory.mktemp("server-log") / "stderr.txt"
    port = free_port()
    with log.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--config", str(config.path), "serve", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(system_tmp)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        wait_listening(port, server, log.read_text)
        yield config, f"http://127.0.0.1:{port}", system_tmp, log
    finally:
        server.terminate()
        server.wait(timeout=30)


def _mentions(folder: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        data = path.name.encode() + (path.read_bytes() if path.is_file() else b"")
        found += [f"{path}: {needle!r}" for needle in needles if needle in data]
    return found


def test_a_web_release_leaves_nothing_behind(served):
    config, base, system_tmp, _ = served
    doc = filed(config)[0]
    browser = Browser(base)
    assert browser.log_in("rey") == 302
    token = browser.token(f"/release?mrn={doc['mrn']}")
    status, body = browser.request(
        "/release", {"csrf_token": token, "mrn": doc["mrn"], "requester": "Dr. Who", "purpose": "continuing care"}
    )
    assert status == 200, body[:500]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert f"{Path(doc['path']).name}" in archive.namelist()
    # Nothing in the staging folder, and nothing of the patient's in the system temp dir.
    staged = list(config.scratch_dir.iterdir()) if config.scratch_dir.exists() else []
    assert not staged, staged
    assert not list(system_tmp.iterdir()), [p.name for p in system_tmp.iterdir()]
    needles = [doc["mrn"].encode(), doc["doc_id"].encode(), *(w.encode() for w in doc["patient_name"].split(", "))]
    assert not _mentions(system_tmp, needles)


def test_concurrent_wrong_passwords_cannot_race_the_lockout(served):
    config, base, _, _ = served
    browser = Browser(base)
    token = browser.token()
    tries = 15
    start = threading.Barrier(tries)
    statuses: list[int] = []

    def wrong() -> None:
        start.wait()
        statuses.append(
            browser.request("/login", {"name": "cal", "password": "not the password", "csrf_token": token, "next": ""})[
                0
            ]
        )

    threads = [threading.Thread(target=wrong) for _ in range(tries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(statuses) == tries
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) <= config.web.login_attempts, statuses
    assert statuses.count(429) >= tries - config.web.login_attempts


def test_a_malformed_request_line_is_logged_without_it(served):
    _, base, _, log = served
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        raw.sendall(b"GET /?q=Zebulon+Quackenbush&mrn=00455263 HTTP/1.1 extra words\r\n\r\n")
        answer = raw.recv(4096)
    assert b" 400 " in answer.split(b"\r\n", 1)[0]
    assert Browser(base).request("/login")[0] == 200  # the server goes on
    text = log.read_text()
    assert "Quackenbush" not in text and "00455263" not in text
    assert "Traceback" not in text
