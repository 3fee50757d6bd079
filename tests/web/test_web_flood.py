"""A real `medarchive serve` under floods: made-up names guessed from many addresses, and half-sent requests.

Strangers connect from other loopback addresses (127.0.0.2 and up), so the server
sees them as other clients, as it would on a ward network.
"""

from __future__ import annotations

import http.client
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter

import pytest

from tests.conftest import ROOT, free_port, wait_listening
from tests.web.fixtures import csrf_of, data_site, site_config
from tests.web.test_web_served import Browser

STRANGERS = [f"127.0.0.{n}" for n in range(2, 8)]
TIMEOUT = 1.5  # web.request_timeout_seconds of the server under test


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    site = data_site(tmp_path_factory)
    config = site_config(site, request_timeout_seconds=TIMEOUT, login_attempts=5)
    log = tmp_path_factory.mktemp("flood-log") / "stderr.txt"
    port = free_port()
    with log.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--config", str(config.path), "serve", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        wait_listening(port, server, log.read_text)
        yield config, port, server
    finally:
        server.terminate()
        server.wait(timeout=30)


def _exchange(port: int, source: str, method: str, path: str, body: str | None, cookie: str | None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    headers = {"Content-Type": "application/x-www-form-urlencoded", **({"Cookie": cookie} if cookie else {})}
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Set-Cookie"), response.read()
    finally:
        connection.close()


def _stranger(port: int, source: str, stop: threading.Event, statuses: Counter) -> None:
    """Guess made-up names with a fresh session now and then, until told to stop."""
    while not stop.is_set():
        _, cookie, page = _exchange(port, source, "GET", "/login", None, None)
        token, session = csrf_of(page.decode()), (cookie or "").split(";", 1)[0]
        for _ in range(10):
            if stop.is_set():
                return
            form = {"name": f"guess-{secrets.token_hex(6)}", "password": "not-a-password", "csrf_token": token}
            status, _, _ = _exchange(port, source, "POST", "/login", urllib.parse.urlencode(form), session)
            statuses[status] += 1


class Flood:
    def __init__(self, port: int, sources: list[str], per_source: int) -> None:
        self.stop, self.statuses = threading.Event(), Counter()
        self.threads = [
            threading.Thread(target=_stranger, args=(port, source, self.stop, self.statuses), daemon=True)
            for source in sources
            for _ in range(per_source)
        ]

    def __enter__(self) -> Flood:
        for thread in self.threads:
            thread.start()
        # Until the flood is well under way: its requests are being answered.
        deadline = time.monotonic() + 60
        while sum(self.statuses.values()) < 2 * len(self.threads) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def _admin_gets_in(browser: Browser) -> float:
    """Seconds from posting the admin's login to the first page (200)."""
    token = browser.token()
    started = time.monotonic()
    status, _ = browser.request("/login", {"name": "ada", "password": "ada-admin-pass", "csrf_token": token})
    assert status == 302
    status, _ = browser.request("/")
    assert status == 200
    return time.monotonic() - started


def test_strangers_guessing_made_up_names_do_not_keep_the_admin_out(served):
    _, port, _ = served
    with Flood(port, STRANGERS, per_source=5) as flood:
        seconds = _admin_gets_in(Browser(f"http://127.0.0.1:{port}"))
    assert seconds < 2.0, seconds
    # Every made-up name got the answer a wrong password gets; none found the server busy.
    assert set(flood.statuses) == {401}, flood.statuses


def test_a_browser_the_admin_used_before_is_not_queued_behind_its_own_address(served):
    _, port, _ = served
    browser = Browser(f"http://127.0.0.1:{port}")
    _admin_gets_in(browser)  # leaves the device cookie
    browser.request("/logout", {"csrf_token": browser.token("/")})
    with Flood(port, ["127.0.0.1"], per_source=24):
        seconds = _admin_gets_in(browser)
    assert seconds < 2.0, seconds


def _half_sent(port: int, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(first)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionResetError, TimeoutError):
        return False


def test_half_sent_requests_are_closed_after_the_request_timeout(served):
    _, port, server = served
    head = b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n"
    socks = [_half_sent(port, head) for _ in range(60)] + [_half_sent(port, head + b"\r\nname=ad")]
    started = time.monotonic()
    closed = [_closed_by_server(sock) for sock in socks]
    assert all(closed) and time.monotonic() - started < TIMEOUT + 15
    for sock in socks:
        sock.close()
    assert server.poll() is None
    assert _exchange(port, "127.0.0.1", "GET", "/login", None, None)[0] == 200


def test_a_request_dripped_a_byte_at_a_time_is_closed_at_its_deadline(served):
    _, port, _ = served
    sock = _half_sent(port, b"GET /login HTTP/1.1\r\n")
    started, closed = time.monotonic(), False
    # A byte well inside the socket timeout each time: only the whole request's deadline stops it.
    while time.monotonic() - started < TIMEOUT + 20:
        try:
            sock.sendall(b"X-Drip: a\r\n")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        time.sleep(TIMEOUT / 5)
        sock.setblocking(False)
        try:
            closed = sock.recv(4096) == b""
        except BlockingIOError:
            pass
        except ConnectionResetError:
            closed = True
        sock.setblocking(True)
        if closed:
            break
    sock.close()
    assert closed and time.monotonic() - started < TIMEOUT + 20
