"""Sessions and login lockouts in the shared database, for several `serve` processes behind a proxy.

The same behaviour as ``web.sessions.SessionStore`` and ``web.logins.LoginLimiter`` (which
keep them in one process's memory, the embedded default), kept where every server sees
them: a login on one server is valid on the others, and failures counted on one lock the
pair out on all. Times are wall-clock seconds, the one clock the servers share. The cap on
password checks at a time (``VerifyGate``) stays per process: it guards that machine's memory.

Session ids and remembered-device tokens are credentials, so the database keeps only their
SHA-256: someone who can read the tables cannot take over a session or dodge a lockout with them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading

from pipeline.stores import Database, Migration, Row, Schema, Transaction
from web.sessions import Clock, Session

SCHEMA = Schema(
    "sessions",
    (
        Migration(
            1,
            """
CREATE TABLE IF NOT EXISTS sessions (
    sid_hash TEXT PRIMARY KEY,
    csrf TEXT NOT NULL,
    last_seen REAL NOT NULL,
    user_name TEXT,
    notice TEXT,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_by_last_seen ON sessions (last_seen);
CREATE TABLE IF NOT EXISTS login_tries (
    user_name TEXT NOT NULL,
    place TEXT NOT NULL, -- the SHA-256 of the address or remembered device
    failures TEXT NOT NULL DEFAULT '[]',
    in_flight INTEGER NOT NULL DEFAULT 0,
    locked_until REAL,
    unlocks INTEGER NOT NULL DEFAULT 0,
    touched REAL NOT NULL,
    PRIMARY KEY (user_name, place)
);
CREATE INDEX IF NOT EXISTS login_tries_by_touched ON login_tries (touched);
""",
        ),
    ),
    file="web/sessions.sqlite",
)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _session(sid: str, row: Row) -> Session:
    return Session(sid, row["csrf"], row["last_seen"], row["user_name"], row["notice"], row["version"])


class DatabaseSessionStore:
    """``SessionStore`` over the shared database; ``save`` writes what a request changed."""

    def __init__(self, db: Database, idle_seconds: float, clock: Clock) -> None:
        self._db = db
        self._idle = idle_seconds
        self._clock = clock
        self._loaded: dict[str, tuple[str | None, str | None, int]] = {}
        self._lock = threading.Lock()

    def new(self, user: str | None = None, version: int = 0) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), self._clock(), user, version=version)
        with self._db.transaction() as tx:
            # Every new session sweeps the idle ones, so abandoned login pages cannot pile up.
            tx.execute("DELETE FROM sessions WHERE last_seen < ?", (session.last_seen - self._idle,))
            tx.execute(
                "INSERT INTO sessions (sid_hash, csrf, last_seen, user_name, notice, version) VALUES (?, ?, ?, ?, ?, ?)",
                (_digest(session.sid), session.csrf, session.last_seen, user, None, version),
            )
        self._remember(session)
        return session

    def touch(self, sid: str | None) -> tuple[Session | None, Session | None]:
        """(the live session, marked as used now; or the session it was, now ended, when idle too long)."""
        if not sid:
            return None, None
        now = self._clock()
        key = _digest(sid)
        with self._db.transaction() as tx:
            rows = tx.execute("SELECT * FROM sessions WHERE sid_hash = ?", (key,))
            if not rows:
                return None, None
            session = _session(sid, rows[0])
            if now - session.last_seen > self._idle:
                tx.execute("DELETE FROM sessions WHERE sid_hash = ?", (key,))
                return None, session
            tx.execute("UPDATE sessions SET last_seen = ? WHERE sid_hash = ?", (now, key))
        session.last_seen = now
        self._remember(session)
        return session, None

    def end(self, sid: str) -> None:
        with self._lock:
            self._loaded.pop(sid, None)
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM sessions WHERE sid_hash = ?", (_digest(sid),))

    def save(self, session: Session) -> None:
        """Keep what the request changed (a notice for the next page, the account's new version)."""
        with self._lock:
            before = self._loaded.pop(session.sid, None)
        if before is None or before == (session.user, session.notice, session.version):
            return
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE sessions SET user_name = ?, notice = ?, version = ? WHERE sid_hash = ?",
                (session.user, session.notice, session.version, _digest(session.sid)),
            )

    def _remember(self, session: Session) -> None:
        with self._lock:
            self._loaded[session.sid] = (session.user, session.notice, session.version)


_ACCOUNT = "*"  # the row that counts one account's failures from every address (places are hex digests)


def _full(tries: tuple[list[float], int, float | None], limit: int) -> bool:
    failures, in_flight, locked_until = tries
    return locked_until is not None or len(failures) + in_flight >= limit


class DatabaseLoginLimiter:
    """``LoginLimiter`` over the shared database: the same rules, one row per (user, where).

    A try reserved by a server that died before it ended is given back once the window
    has passed without news of it, so a crash cannot lock anyone out for good.
    """

    def __init__(
        self, db: Database, attempts: int, window_seconds: float, clock: Clock, account_attempts: int | None = None
    ) -> None:
        self._db = db
        self._attempts = attempts
        self._account_attempts = account_attempts or attempts * 4
        self._window = window_seconds
        self._clock = clock

    def begin(self, user: str, where: str, unlocks: int = 0, device: bool = False) -> bool:
        """Reserve a try; False when the pair, or the account for one not on its own device,
        is locked out (then nothing is reserved)."""
        where, now = _digest(where), self._clock()
        with self._db.transaction() as tx:
            pair = self._current(tx, user, where, unlocks, now)
            account = self._current(tx, user, _ACCOUNT, unlocks, now)
            if _full(pair, self._attempts) or (not device and _full(account, self._account_attempts)):
                return False
            for place, (failures, in_flight, locked_until) in ((where, pair), (_ACCOUNT, account)):
                self._put(tx, user, place, failures, in_flight + 1, locked_until, unlocks, now)
            return True

    def end(self, user: str, where: str, succeeded: bool) -> None:
        where, now = _digest(where), self._clock()
        with self._db.transaction() as tx:
            for place, limit in ((where, self._attempts), (_ACCOUNT, self._account_attempts)):
                row = self._row(tx, user, place)
                unlocks = row["unlocks"] if row else 0
                failures = json.loads(row["failures"]) if row else []
                in_flight = max((row["in_flight"] if row else 0) - 1, 0)
                locked_until = row["locked_until"] if row else None
                if not succeeded:
                    failures.append(now)
                    if len(failures) >= limit:
                        locked_until = now + self._window
                elif place == where:
                    # A success clears its own browser's or address's count, not the guesses made elsewhere.
                    failures = []
                self._put(tx, user, place, failures, in_flight, locked_until, unlocks, now)

    def cancel(self, user: str, where: str) -> None:
        with self._db.transaction() as tx:
            for place in (_digest(where), _ACCOUNT):
                tx.lock(f"login:{user}:{place}")
                tx.execute(
                    "UPDATE login_tries SET in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END "
                    "WHERE user_name = ? AND place = ?",
                    (user, place),
                )

    def _row(self, tx: Transaction, user: str, where: str) -> Row | None:
        tx.lock(f"login:{user}:{where}")
        rows = tx.execute("SELECT * FROM login_tries WHERE user_name = ? AND place = ?", (user, where))
        return rows[0] if rows else None

    def _current(
        self, tx: Transaction, user: str, where: str, unlocks: int, now: float
    ) -> tuple[list[float], int, float | None]:
        row = self._row(tx, user, where)
        if row is None:
            # Rows idle past their window go, so a stream of made-up names cannot fill the table.
            tx.execute(
                "DELETE FROM login_tries WHERE touched < ? AND (locked_until IS NULL OR locked_until <= ?)",
                (now - self._window, now),
            )
            return [], 0, None
        failures: list[float] = json.loads(row["failures"])
        locked_until = row["locked_until"]
        in_flight = row["in_flight"] if row["touched"] > now - self._window else 0
        if row["unlocks"] != unlocks or (locked_until is not None and now >= locked_until):
            failures, locked_until = [], None
        return [t for t in failures if t > now - self._window], in_flight, locked_until

    @staticmethod
    def _put(
        tx: Transaction,
        user: str,
        where: str,
        failures: list[float],
        in_flight: int,
        locked_until: float | None,
        unlocks: int,
        now: float,
    ) -> None:
        tx.execute(
            "INSERT INTO login_tries (user_name, place, failures, in_flight, locked_until, unlocks, touched) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_name, place) DO UPDATE SET failures = excluded.failures, "
            "in_flight = excluded.in_flight, locked_until = excluded.locked_until, unlocks = excluded.unlocks, "
            "touched = excluded.touched",
            (user, where, json.dumps(failures), in_flight, locked_until, unlocks, now),
        )
