"""Server-side sessions: the browser holds only a random id; idle sessions expire.

Held in memory by the one server process, so a restart logs everybody out,
which is the safe direction for a records system. Several servers on the shared
database keep them there instead (``web.shared_logins``).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass
class Session:
    sid: str
    csrf: str
    last_seen: float
    user: str | None = None
    notice: str | None = None
    version: int = 0  # the account's version at login: a password, role or enabled change ends the session


class SessionStore:
    def __init__(self, idle_seconds: float, clock: Clock) -> None:
        self._idle = idle_seconds
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def new(self, user: str | None = None, version: int = 0) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), self._clock(), user, version=version)
        with self._lock:
            self._forget_idle()
            self._sessions[session.sid] = session
        return session

    def touch(self, sid: str | None) -> tuple[Session | None, Session | None]:
        """(the live session with this id, marked as used now; or the session
        it was, now ended, when it had been idle too long)."""
        now = self._clock()
        with self._lock:
            session = self._sessions.get(sid or "")
            if session is None:
                return None, None
            if now - session.last_seen > self._idle:
                del self._sessions[session.sid]
                return None, session
            session.last_seen = now
            return session, None

    def end(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)

    def save(self, session: Session) -> None:
        """Nothing to do: the request changed the session in place (the shared store writes it)."""

    def _forget_idle(self) -> None:
        # Run on every new session, so abandoned login pages cannot pile up.
        now = self._clock()
        for sid in [sid for sid, s in self._sessions.items() if now - s.last_seen > self._idle]:
            del self._sessions[sid]
