"""`medarchive user ...`: accounts from the command line, stored privately, audited."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys

from pipeline.archive.audit import AuditLog
from pipeline.core.config import load_config
from tests.conftest import ROOT, run_cli, write_config
from web.users import UserStore, users_path


def _with_stdin(config, stdin: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--config", str(config), "--user", "it-admin", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_user_accounts_from_the_command_line(tmp_path):
    config_path = write_config(tmp_path)
    config = load_config(config_path)
    added = _with_stdin(config_path, "first-password\n", "user", "add", "kim", "--role", "release", "--password-stdin")
    assert added.returncode == 0, added.stderr
    store = UserStore.for_config(config)
    assert store.authenticate("kim", "first-password").role == "release"
    assert stat.S_IMODE(users_path(config).stat().st_mode) == 0o600
    assert "$argon2" in users_path(config).read_bytes().decode("latin-1")  # hashed, never the password
    assert b"first-password" not in users_path(config).read_bytes()

    again = _with_stdin(config_path, "other-password\n", "user", "add", "kim", "--role", "clerk", "--password-stdin")
    assert again.returncode == 1 and again.stderr.strip().count("\n") == 0 and "already exists" in again.stderr
    short = _with_stdin(config_path, "short\n", "user", "add", "lee", "--role", "clerk", "--password-stdin")
    assert short.returncode == 1 and "at least" in short.stderr
    assert _with_stdin(config_path, "x\n", "user", "add", "lee", "--role", "boss", "--password-stdin").returncode != 0

    assert _with_stdin(config_path, "second-password\n", "user", "passwd", "kim", "--password-stdin").returncode == 0
    assert store.authenticate("kim", "first-password") is None
    assert run_cli(config_path, "user", "disable", "kim").returncode == 0
    assert store.authenticate("kim", "second-password") is None
    assert "disabled" in run_cli(config_path, "user", "list").stdout
    assert run_cli(config_path, "user", "enable", "kim").returncode == 0
    assert store.authenticate("kim", "second-password") is not None
    missing = run_cli(config_path, "user", "disable", "nobody")
    assert missing.returncode == 1 and "no user" in missing.stderr

    actions = [(e["action"], e["user"]) for e in AuditLog.for_config(config).entries()]
    assert ("user.add", "it-admin") in actions and ("user.passwd", "it-admin") in actions
    assert {"user.disable", "user.enable"} <= {a for a, _ in actions}


def test_serve_refuses_a_port_in_use(tmp_path):
    config_path = write_config(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = run_cli(config_path, "serve", "--port", str(busy.getsockname()[1]), timeout=60)
    assert done.returncode == 1 and "cannot listen" in done.stderr


def test_user_roles_from_the_command_line_always_leave_an_admin(tmp_path):
    config_path = write_config(tmp_path)
    config = load_config(config_path)
    store = UserStore.for_config(config)
    store.add("ada", "admin", "ada-admin-pass")
    store.add("kim", "clerk", "kim-clerk-pass")
    assert _with_stdin(config_path, "", "user", "role", "kim", "release").returncode == 0
    assert store.get("kim").role == "release"

    for change in (("role", "ada", "clerk"), ("disable", "ada")):
        refused = run_cli(config_path, "user", *change)
        assert refused.returncode == 1 and refused.stderr.strip().count("\n") == 0, refused.stderr
        assert "last enabled admin" in refused.stderr
    assert store.get("ada").role == "admin" and store.get("ada").enabled

    assert run_cli(config_path, "user", "role", "kim", "admin").returncode == 0
    assert run_cli(config_path, "user", "role", "ada", "clerk").returncode == 0  # kim is admin now
    assert store.get("ada").role == "clerk"
    assert run_cli(config_path, "user", "role", "kim", "boss").returncode != 0
    missing = run_cli(config_path, "user", "role", "nobody", "clerk")
    assert missing.returncode == 1 and "no user" in missing.stderr

    roles = [(e["user"], e["details"]) for e in AuditLog.for_config(config).entries() if e["action"] == "user.role"]
    assert roles[0] == ("it-admin", {"name": "kim", "role": "release"}) and len(roles) == 3


def test_serve_starts_on_an_index_it_must_not_read_and_says_why(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from whoosh import index as whoosh_index
        from whoosh.fields import ID, Schema
    config_path = write_config(tmp_path)
    config = load_config(config_path)
    config.index_dir.mkdir(parents=True)
    whoosh_index.create_in(str(config.index_dir), Schema(doc_id=ID(stored=True)))  # an older version's index
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(config_path), "serve", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        lines = [server.stderr.readline()]
        while lines[-1] and "serving on" not in lines[-1]:  # (an empty line: it exited)
            lines.append(server.stderr.readline())
        assert any("serving on" in line for line in lines), lines
        assert any(line.startswith("warning:") and "medarchive reindex" in line for line in lines), lines
    finally:
        server.terminate()
        server.wait(timeout=30)
