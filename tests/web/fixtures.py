"""A small data root for the web tests: six generated scans ingested once per test run, copied per module."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pipeline.archive.store import iter_sidecars
from pipeline.core.config import Config, load_config
from pipeline.samples import scans as samples
from tests.conftest import run_cli, write_config
from web.app import create_app
from web.users import UserStore

PASSWORDS = {"ada": "ada-admin-pass", "rey": "rey-release-pass", "cal": "cal-clerk-pass"}
ROLES = {"ada": "admin", "rey": "release", "cal": "clerk"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_pristine: list[Path] = []


def _build(folder: Path) -> Path:
    config_path = write_config(
        folder,
        web={
            "secure_cookies": False,
            "login_attempts": 3,
            "lockout_minutes": 10,
            "idle_timeout_minutes": 15,
            "page_size": 2,
        },
    )
    samples.write_sample_set(folder / "scans", count=6)
    run_cli(config_path, "ingest", str(folder / "scans"), check=True)
    store = UserStore.for_config(load_config(config_path))
    for name, role in ROLES.items():
        store.add(name, role, PASSWORDS[name])
    return folder


def data_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the ingested site (config.yaml + data/); the ingest runs once per session."""
    if not _pristine:
        _pristine.append(_build(tmp_path_factory.mktemp("web-pristine")))
    copy = tmp_path_factory.mktemp("web-site") / "site"
    shutil.copytree(_pristine[0], copy)
    return copy


def site_config(site: Path, **web: object) -> Config:
    """The site's config, with web settings overridden (written back so a server subprocess sees them too)."""
    path = site / "config.yaml"
    body = yaml.safe_load(path.read_text())
    body["web"] = {**body.get("web", {}), **web}
    path.write_text(yaml.safe_dump(body))
    return load_config(path)


def filed(config: Config) -> list[dict]:
    """The filed documents' sidecars as they are written (JSON)."""
    return [s.to_json() for s in iter_sidecars(config) if s.status == "filed"]


def waiting(config: Config) -> list[dict]:
    """The review queue's sidecars as they are written (JSON)."""
    return [s.to_json() for s in iter_sidecars(config) if s.status == "review"]


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


@dataclass
class Clock:
    """A clock the test moves by hand, for idle timeouts and lockouts."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += minutes * 60


def app_for(config: Config, clock: Clock | None = None):
    app = create_app(config, clock=clock or Clock())
    app.testing = True
    return app


def login(client, name: str, password: str | None = None, address: str = "127.0.0.1", forwarded_for: str | None = None):
    """Log in from ``address``, through a proxy that says the client is ``forwarded_for`` when given."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    page = client.get("/login", environ_base={"REMOTE_ADDR": address}, headers=headers)
    return client.post(
        "/login",
        data={"name": name, "password": password or PASSWORDS[name], "csrf_token": csrf_of(page.text), "next": ""},
        environ_base={"REMOTE_ADDR": address},
        headers=headers,
    )


def logged_in(app, name: str):
    client = app.test_client()
    response = login(client, name)
    assert response.status_code == 302, response.text
    return client
