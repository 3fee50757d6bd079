"""Two `medarchive serve` processes on one shared database, as behind a load-balancing proxy:
a login, a lockout and a password change on one hold on the other."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from pipeline.core.config import load_config
from tests.conftest import ROOT, free_port, invoke_cli, wait_listening, write_config
from tests.web.fixtures import PASSWORDS, ROLES
from tests.web.test_web_served import Browser
from web.users import UserStore


@pytest.fixture
def two_servers(tmp_path, pg_url) -> Iterator[tuple[str, str]]:
    path = write_config(
        tmp_path,
        database={"url": pg_url},
        web={"secure_cookies": False, "login_attempts": 3, "lockout_minutes": 10},
    )
    invoke_cli(path, "db", "upgrade", check=True)
    users = UserStore.for_config(load_config(path))
    for name, role in ROLES.items():
        users.add(name, role, PASSWORDS[name])
    servers, bases = [], []
    try:
        for n in range(2):
            port, log = free_port(), tmp_path / f"serve{n}.log"
            with log.open("w") as stderr:
                servers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "pipeline", "--config", str(path), "serve", "--port", str(port)],
                        cwd=ROOT,
                        env={**os.environ, "PYTHONPATH": str(ROOT)},
                        stdout=subprocess.DEVNULL,
                        stderr=stderr,
                    )
                )
            wait_listening(port, servers[-1], log.read_text)
            bases.append(f"http://127.0.0.1:{port}")
        yield bases[0], bases[1]
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)


def _on(browser: Browser, base: str) -> Browser:
    browser.base = base  # the same browser (cookies) through the proxy to another server
    return browser


def test_a_login_on_one_server_is_valid_on_the_other(two_servers):
    a, b = two_servers
    cal = Browser(a)
    assert cal.log_in("cal") == 302
    assert _on(cal, b).request("/")[0] == 200
    assert _on(Browser(b), b).request("/")[0] == 302  # a browser that never logged in is sent to the login page
    token = cal.token("/")
    assert cal.request("/logout", {"csrf_token": token})[0] == 302
    assert _on(cal, a).request("/")[0] == 302  # logged out on b: out on a too


def test_a_lockout_on_one_server_holds_on_the_other(two_servers):
    a, b = two_servers
    attacker = Browser(a)
    for base in (a, b, a):
        token = _on(attacker, base).token()
        status, _ = attacker.request("/login", {"name": "rey", "password": "wrong password!", "csrf_token": token})
        assert status == 401
    for base in (b, a):
        assert _on(attacker, base).log_in("rey") == 429  # even the right password, on either server


def test_a_password_change_on_one_server_ends_the_session_on_the_other(two_servers):
    a, b = two_servers
    cal, ada = Browser(b), Browser(a)
    assert cal.log_in("cal") == 302 and ada.log_in("ada") == 302
    token = ada.token("/admin/users")
    changed = ada.request(
        "/admin/users/cal", {"change": "password", "password": "a-new-cal-password", "csrf_token": token}
    )
    assert changed[0] == 302
    # The notice set on server a is shown by server b.
    assert b"Changed cal: password." in _on(ada, b).request("/admin/users")[1]
    assert cal.request("/")[0] == 302  # cal's session on b is over
    assert _on(Browser(b), b).log_in("cal") == 401  # the old password
    assert Browser(a).log_in("cal", "a-new-cal-password") == 302
