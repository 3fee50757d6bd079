"""The shared database wrong or away: one clear line, the daemon waits and goes on, the web answers 503."""

from __future__ import annotations

import time

import pytest

from pipeline.archive.audit import AuditLog
from pipeline.archive.store import iter_sidecars
from pipeline.core.config import load_config
from tests.conftest import document, invoke_cli, scanned, write_config
from tests.integration.test_watch import DaemonProcess
from web.app import create_app


def _one_clear_line(done, *needles: str) -> None:
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith("error: ") and done.stderr.strip().count("\n") == 0, done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_a_database_that_does_not_exist(tmp_path, pg_cluster):
    path = write_config(tmp_path, database={"url": pg_cluster.url("no_such_archive")})
    _one_clear_line(invoke_cli(path, "patients", "list"), 'database "no_such_archive" does not exist', "Several sites")


def test_a_refused_password_never_shows_it(tmp_path, own_cluster, monkeypatch):
    own_cluster.require_password("archivist", "the-right-one")
    own_cluster.psql("CREATE DATABASE archive OWNER archivist")
    secret = tmp_path / "db-password"
    secret.write_text("the-wrong-one\n")
    secret.chmod(0o600)
    path = write_config(
        tmp_path, database={"url": own_cluster.url("archive", "archivist"), "password_file": str(secret)}
    )
    done = invoke_cli(path, "db", "upgrade")
    _one_clear_line(done, "refused the password", "database.password_file or MEDARCHIVE_DB_PASSWORD")
    assert "the-wrong-one" not in done.stderr + done.stdout
    (tmp_path / "no-password").mkdir()
    missing = write_config(tmp_path / "no-password", database={"url": own_cluster.url("archive", "archivist")})
    _one_clear_line(invoke_cli(missing, "db", "upgrade"), "refused the password")
    monkeypatch.setenv("MEDARCHIVE_DB_PASSWORD", "the-right-one")
    assert "created" in invoke_cli(missing, "db", "upgrade", check=True).stdout
    monkeypatch.delenv("MEDARCHIVE_DB_PASSWORD")
    secret.write_text("the-right-one\n")
    status = invoke_cli(path, "db", "status", check=True)
    assert "archivist@local socket/archive (PostgreSQL 1" in status.stdout and "the-right-one" not in status.stdout
    secret.chmod(0o644)
    _one_clear_line(invoke_cli(path, "db", "status"), "can be read by others (mode 0644); chmod 600 it")


def test_a_database_down_is_one_line_and_the_web_answers_503_until_it_is_back(tmp_path, own_cluster):
    own_cluster.psql("CREATE DATABASE archive")
    path = write_config(tmp_path, database={"url": own_cluster.url("archive")}, web={"secure_cookies": False})
    invoke_cli(path, "db", "upgrade", check=True)
    client = create_app(load_config(path)).test_client()
    assert client.get("/login").status_code == 200
    own_cluster.stop()
    try:
        _one_clear_line(invoke_cli(path, "patients", "list"), "cannot be reached", "waits and retries")
        away = client.get("/login")
        assert away.status_code == 503 and away.headers["Retry-After"] == "30"
        assert b"database is unavailable" in away.data
    finally:
        own_cluster.start()
    # The pool reconnects on its own back-off: the web serves again within it, with no restart.
    _wait_for(lambda: client.get("/login").status_code == 200, seconds=120)


def _wait_for(what, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


@pytest.fixture
def site(tmp_path, own_cluster):
    own_cluster.psql("CREATE DATABASE archive")
    path = write_config(
        tmp_path,
        database={"url": own_cluster.url("archive")},
        site="north",
        watch={"quiet_seconds": 1, "rescan_seconds": 1, "stop_grace_seconds": 30},
    )
    invoke_cli(path, "db", "upgrade", check=True)
    return path


def test_the_daemon_waits_for_a_database_down_at_start(site, own_cluster):
    config = load_config(site)
    own_cluster.stop()
    daemon = DaemonProcess(site)
    try:
        _wait_for(lambda: "starting again in" in daemon.log_text())
        drop = config.drop_dir
        drop.mkdir(parents=True, exist_ok=True)
        scanned(drop / "a.pdf", document(1))
        time.sleep(2)
        assert (drop / "a.pdf").exists() and daemon.proc.poll() is None  # left where it was, daemon alive
        own_cluster.start()
        _wait_for(lambda: len(list(iter_sidecars(config))) == 1)
        _wait_for(lambda: not (drop / "a.pdf").exists() and not any(config.processing_dir.iterdir()))
    finally:
        assert daemon.stop() == 0
    assert "cannot be reached" in daemon.log_text()
    assert AuditLog.for_config(config).verify().ok


def test_a_database_going_away_mid_run_loses_nothing(site, own_cluster):
    config = load_config(site)
    daemon = DaemonProcess(site)
    try:
        daemon.wait_watching()
        drop = config.drop_dir
        own_cluster.stop()  # the file is claimed and read, then its filing meets no database
        scanned(drop / "b.pdf", document(2))
        _wait_for(lambda: "starting again in" in daemon.log_text())
        assert not (drop / "b.pdf").exists() and len(list(config.processing_dir.iterdir())) == 2  # file + its note
        assert not list(config.failed_dir.iterdir())
        own_cluster.start()
        _wait_for(lambda: not any(config.processing_dir.iterdir()))
    finally:
        assert daemon.stop() == 0
    (sidecar,) = iter_sidecars(config)
    assert AuditLog.for_config(config).verify().ok
    ingests = [e for e in AuditLog.for_config(config).entries() if e["action"] == "ingest"]
    assert [e["doc_ids"] for e in ingests] == [[sidecar.doc_id]]
