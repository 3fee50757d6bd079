"""The stores that several processes share on the database: the audit chain under concurrent
writers, sessions and lockouts (the same rules as in memory), and the accounts on both backends."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from pipeline.archive.audit import SCHEMA as AUDIT_SCHEMA
from pipeline.archive.audit import AuditLog, DatabaseChainedLog
from pipeline.core.config import load_config
from pipeline.stores import open_store
from tests.conftest import ROOT, write_config
from tests.postgres import upgraded
from web.shared_logins import SCHEMA as SESSIONS_SCHEMA
from web.shared_logins import DatabaseLoginLimiter, DatabaseSessionStore
from web.users import UserError, UserStore

_APPEND = """
import sys
from pipeline.archive.audit import AuditLog
from pipeline.core.config import load_config
log = AuditLog.for_config(load_config(sys.argv[1]))
for n in range(int(sys.argv[2])):
    log.record("search", user=sys.argv[3], details={"n": n})
"""


@pytest.fixture
def shared(tmp_path, pg_url):
    (tmp_path / "upgrade").mkdir()
    return load_config(write_config(tmp_path, **upgraded(pg_url, tmp_path / "upgrade")))


@pytest.fixture
def config(tmp_path, backend):
    return load_config(write_config(tmp_path, **backend))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_writers_never_fork_the_chain(shared):
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _APPEND, str(shared.path), "40", f"writer{n}"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for n in range(3)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]
    log = AuditLog.for_config(shared)
    check = log.verify()
    assert check.ok and check.entries == 120
    assert [e["seq"] for e in log.entries()] == list(range(1, 121))


def test_an_edited_or_cut_chain_is_found(shared):
    log = AuditLog.for_config(shared)
    for n in range(5):
        log.record("search", user="kim", details={"n": n})
    with psycopg.connect(shared.database.url, autocommit=True) as conn:
        conn.execute("UPDATE audit.entries SET entry = replace(entry, '\"n\":2', '\"n\":7') WHERE seq = 3")
        assert AuditLog.for_config(shared).verify().line == 3
        conn.execute("UPDATE audit.entries SET entry = replace(entry, '\"n\":7', '\"n\":2') WHERE seq = 3")
        assert AuditLog.for_config(shared).verify().ok
        conn.execute("DELETE FROM audit.entries WHERE seq = 5")
    cut = AuditLog.for_config(shared).verify()
    assert not cut.ok and "removed from the end" in cut.problem
    with pytest.raises(Exception, match="lost entries"):
        AuditLog.for_config(shared).record("search", user="kim")
    other = DatabaseChainedLog(open_store(shared, AUDIT_SCHEMA), "destruction")
    assert other.verify().ok and other.verify().entries == 0  # one chain's trouble is not another's


def test_sessions_expire_when_idle_and_keep_what_a_request_changed(shared):
    clock = Clock()
    db = open_store(shared, SESSIONS_SCHEMA)
    one, other = DatabaseSessionStore(db, 60, clock), DatabaseSessionStore(db, 60, clock)  # two servers
    session = one.new("kim", version=3)
    clock.now += 30
    seen, expired = other.touch(session.sid)
    assert expired is None and (seen.user, seen.version, seen.csrf) == ("kim", 3, session.csrf)
    with psycopg.connect(shared.database.url) as conn:  # a credential: only its digest is kept
        (kept,) = conn.execute("SELECT sid_hash FROM sessions.sessions").fetchone()
        assert kept != session.sid and len(kept) == 64
        device = conn.execute("SELECT count(*) FROM sessions.login_tries").fetchone()
    assert device == (0,)
    seen.notice = "Filed."
    other.save(seen)
    assert one.touch(session.sid)[0].notice == "Filed."
    clock.now += 61
    gone, ended = one.touch(session.sid)
    assert gone is None and ended.user == "kim"
    assert other.touch(session.sid) == (None, None)  # ended for every server
    assert one.touch(None) == (None, None) and one.touch("made-up") == (None, None)


def test_lockouts_follow_the_same_rules_as_in_memory(shared):
    clock = Clock()
    db = open_store(shared, SESSIONS_SCHEMA)
    a, b = DatabaseLoginLimiter(db, 3, 600, clock), DatabaseLoginLimiter(db, 3, 600, clock)
    for limiter in (a, b, a):
        assert limiter.begin("rey", "10.0.0.7")
        limiter.end("rey", "10.0.0.7", succeeded=False)
    assert not b.begin("rey", "10.0.0.7")  # locked out on every server
    with psycopg.connect(shared.database.url) as conn:
        assert conn.execute("SELECT place FROM sessions.login_tries").fetchone()[0] != "10.0.0.7"
    assert b.begin("rey", "10.0.0.8")  # not from elsewhere
    b.cancel("rey", "10.0.0.8")
    assert a.begin("rey", "10.0.0.7", unlocks=1)  # `medarchive user unlock` ends it
    a.end("rey", "10.0.0.7", succeeded=True)
    for _ in range(3):
        assert a.begin("cal", "here")
    assert not a.begin("cal", "here")  # three tries in flight count until known
    clock.now += 601  # tries of a server that died never come back: they lapse with the window
    assert a.begin("cal", "here")
    a.end("cal", "here", succeeded=False)
    for _ in range(2):
        a.begin("cal", "here")
        a.end("cal", "here", succeeded=False)
    assert not a.begin("cal", "here")
    clock.now += 601
    assert a.begin("cal", "here")  # the lockout ends after its window


def test_accounts_on_both_backends(config):
    users = UserStore.for_config(config)
    users.add("ada", "admin", "ada-admin-pass")
    users.add("cal", "clerk", "cal-clerk-pass")
    with pytest.raises(UserError, match="already exists"):
        users.add("cal", "clerk", "cal-clerk-pass")
    assert users.authenticate("cal", "cal-clerk-pass").role == "clerk"
    assert users.authenticate("cal", "wrong password") is None
    with pytest.raises(UserError, match="last enabled admin"):
        users.set_role("ada", "clerk")
    assert users.set_password("cal", "a-new-password").version == 1
    assert users.unlock("cal").unlocks == 1 and users.unlock("cal").unlocks == 2
    token = users.remember_device("cal")
    assert users.device_owner(token) == "cal" and users.device_owner("nope") is None
    assert [u.name for u in users.all()] == ["ada", "cal"]


def test_boxes_and_appointments_on_both_backends(config):
    from datetime import date

    from pipeline.clinic.appointments import Appointment, AppointmentBook
    from pipeline.paper.store import BoxStore

    boxes = BoxStore.for_config(config)
    boxes.change("BOX-0001", "closed", user="kim", action="close")
    assert boxes.change("BOX-0001", "shipped", user="kim", action="ship", vendor="Iron").vendor == "Iron"
    assert [e.action for e in boxes.events("BOX-0001")] == ["close", "ship"]
    assert boxes.get("BOX-0001").state == "shipped" and [b.box for b in boxes.all()] == ["BOX-0001"]
    book = AppointmentBook.for_config(config)
    visit = Appointment("A1", "1000001", "2025-03-04T09:30", "cardiology")
    assert book.save(visit) == "created" and book.save(visit) == "unchanged"
    assert book.cancel("A1") and not book.cancel("A1")
    assert book.on(date(2025, 3, 4), include_cancelled=True)[0].status == "cancelled"
