"""Server-side sessions: the browser holds only a random id; idle sessions expire.

Held in memory by the one server process, so a restart logs everybody out,
which is the safe direction for a records system.
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


class SessionStore:
    def __init__(self, idle_seconds: float, clock: Clock) -> None:
        self._idle = idle_seconds
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def new(self, user: str | None = None) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), self._clock(), user)
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

    def _forget_idle(self) -> None:
        # Run on every new session, so abandoned login pages cannot pile up.
        now = self._clock()
        for sid in [sid for sid, s in self._sessions.items() if now - s.last_seen > self._idle]:
            del self._sessions[sid]


class LoginLimiter:
    """Failed logins per (user, address) in a sliding window; at the limit the pair is locked out."""

    def __init__(self, attempts: int, window_seconds: float, clock: Clock) -> None:
        self._attempts = attempts
        self._window = window_seconds
        self._clock = clock
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def locked(self, user: str, address: str) -> bool:
        with self._lock:
            return len(self._recent((user, address))) >= self._attempts

    def failed(self, user: str, address: str) -> None:
        with self._lock:
            key = (user, address)
            self._failures[key] = [*self._recent(key), self._clock()]

    def succeeded(self, user: str, address: str) -> None:
        with self._lock:
            self._failures.pop((user, address), None)

    def _recent(self, key: tuple[str, str]) -> list[float]:
        cutoff = self._clock() - self._window
        recent = [t for t in self._failures.get(key, ()) if t > cutoff]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent
