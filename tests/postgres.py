"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl in a temp folder, unix socket, trust auth.

Root cannot run the server, so as root the cluster belongs to the ``postgres`` user
(``runuser``). One cluster per test session; each test that asks gets a fresh database.
Use the fixtures through ``pytest_plugins`` or by importing them into a conftest.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Cluster:
    socket_dir: Path
    port: int

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{dbname}?host={self.socket_dir}&port={self.port}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        done = subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", self.url(dbname), "-c", sql],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail(f"PostgreSQL's {name} is missing: `make test` installs Debian's postgresql package")
    return found[-1]


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(base: Path) -> tuple[Cluster, list[str]]:
    """Start a cluster under ``base``; returns it and the command that stops it."""
    data = base / "pgdata"
    sock = base / "sock"
    base.mkdir(parents=True, exist_ok=True)
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(sock, "postgres", "postgres")
        os.chmod(base, 0o700)
    subprocess.run(
        _as_owner([_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    subprocess.run(_start_command(base, port), check=True, capture_output=True)
    stop = _as_owner([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
    return Cluster(sock, port), stop


def _start_command(base: Path, port: int) -> list[str]:
    sock, data = base / "sock", base / "pgdata"
    options = f"-k {sock} -p {port} -c listen_addresses='' -c fsync=off -c full_page_writes=off -c max_connections=200"
    return _as_owner([_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"])


class OwnCluster:
    """A cluster of one test's own, to stop and start again (the database going away and coming
    back) and to require a password of one role, without disturbing the session's cluster."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.cluster, self._stop = start_cluster(base)

    def url(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return self.cluster.url(dbname).replace("postgres@", f"{user}@", 1)

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        return self.cluster.psql(sql, dbname)

    def stop(self) -> None:
        subprocess.run(self._stop, capture_output=True, check=True)

    def start(self) -> None:
        subprocess.run(_start_command(self.base, self.cluster.port), check=True, capture_output=True)

    def require_password(self, role: str, password: str) -> None:
        """``role`` may log in only with ``password`` (scram); everyone else is trusted as before."""
        self.psql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' CREATEDB")
        hba = self.base / "pgdata" / "pg_hba.conf"
        hba.write_text(f"local all {role} scram-sha-256\n" + hba.read_text())
        self.psql("SELECT pg_reload_conf()")


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("pg")
    if os.geteuid() == 0:
        # the postgres user must reach its folder through every parent
        for parent in [base, *base.parents]:
            if parent == Path("/"):
                break
            os.chmod(parent, os.stat(parent).st_mode | 0o011)
    cluster, stop = start_cluster(base / "cluster")
    try:
        yield cluster
    finally:
        subprocess.run(stop, capture_output=True)


@pytest.fixture
def own_cluster(tmp_path_factory: pytest.TempPathFactory, pg_cluster: Cluster) -> Iterator[OwnCluster]:
    """A cluster of this test's own (``pg_cluster`` first: it opens the temp folders to the postgres user)."""
    folder = tmp_path_factory.mktemp("pg-own")
    os.chmod(folder, 0o711)  # the postgres user passes through to its cluster
    own = OwnCluster(folder / "cluster")
    try:
        yield own
    finally:
        subprocess.run(own._stop, capture_output=True)


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """A fresh, empty database for one test."""
    name = "t_" + uuid.uuid4().hex[:12]
    pg_cluster.psql(f"CREATE DATABASE {name}")
    return pg_cluster.url(name)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The config sections of the store backend under test: none (SQLite files under the data
    root), or a fresh shared database with every store's schema created by `db upgrade`."""
    if request.param == "sqlite":
        return {}
    return upgraded(request.getfixturevalue("pg_url"), tmp_path_factory.mktemp("upgrade"))


def upgraded(url: str, folder: Path) -> dict:
    """The config sections of a database whose every store's schema `db upgrade` created."""
    from pipeline.cli.db import SCHEMAS  # here: collecting the tests needs no CLI imports
    from pipeline.core.config import load_config
    from pipeline.stores.admin import upgrade_all

    (folder / "config.yaml").write_text(f"data_root: data\ndatabase:\n  url: '{url}'\n")
    upgrade_all(load_config(folder / "config.yaml"), SCHEMAS)
    return {"database": {"url": url}}
