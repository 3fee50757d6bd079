"""Logins under attack: the lockout, a cap on password verifications, and failed logins in the audit log.

All three live in the one server process's memory (a restart forgets them, as it
does the sessions); `medarchive user unlock` reaches the lockout through the
account's unlock count in the user store.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from web.sessions import Clock

# Keys idle this long past their window are forgotten once this many are held,
# so a stream of made-up names cannot fill the memory.
_SWEEP_AT = 1024


@dataclass
class _Tries:
    failures: list[float] = field(default_factory=list)
    in_flight: int = 0
    locked_until: float | None = None
    unlocks: int = 0


class LoginLimiter:
    """Failed logins per (user, where): at ``attempts`` failures within the window the pair is
    locked out for one window, from the failure that locked it.

    ``where`` is the client address, or a device the user logged in from before, so
    nobody else's failures lock a user out of their own browser. Checking, verifying
    and counting are one step: a try is reserved before the password is verified and
    counts as a failure until it is known, so concurrent tries cannot overshoot the
    limit. A lockout ends after its window (tries during it do not extend it) or when
    the account's unlock count changes (`medarchive user unlock`).
    """

    def __init__(self, attempts: int, window_seconds: float, clock: Clock) -> None:
        self._attempts = attempts
        self._window = window_seconds
        self._clock = clock
        self._tries: dict[tuple[str, str], _Tries] = {}
        self._lock = threading.Lock()

    def begin(self, user: str, where: str, unlocks: int = 0) -> bool:
        """Reserve a try; False when the pair is locked out (then nothing is reserved)."""
        now = self._clock()
        with self._lock:
            tries = self._current((user, where), unlocks, now)
            if tries.locked_until is not None or len(tries.failures) + tries.in_flight >= self._attempts:
                return False
            tries.in_flight += 1
            return True

    def end(self, user: str, where: str, succeeded: bool) -> None:
        """The outcome of a try that ``begin`` reserved."""
        now = self._clock()
        with self._lock:
            tries = self._tries.setdefault((user, where), _Tries())
            tries.in_flight = max(tries.in_flight - 1, 0)
            if succeeded:
                tries.failures.clear()
            else:
                tries.failures.append(now)
                if len(tries.failures) >= self._attempts:
                    tries.locked_until = now + self._window

    def cancel(self, user: str, where: str) -> None:
        """Give back a try that ``begin`` reserved but that never verified a password."""
        with self._lock:
            tries = self._tries.get((user, where))
            if tries is not None:
                tries.in_flight = max(tries.in_flight - 1, 0)

    def _current(self, key: tuple[str, str], unlocks: int, now: float) -> _Tries:
        tries = self._tries.get(key)
        if tries is None:
            if len(self._tries) >= _SWEEP_AT:
                self._forget_idle(now)
            tries = self._tries[key] = _Tries(unlocks=unlocks)
        if tries.unlocks != unlocks or (tries.locked_until is not None and now >= tries.locked_until):
            tries.failures.clear()
            tries.locked_until, tries.unlocks = None, unlocks
        tries.failures = [t for t in tries.failures if t > now - self._window]
        return tries

    def _forget_idle(self, now: float) -> None:
        for key, tries in list(self._tries.items()):
            idle = not tries.in_flight and all(t <= now - self._window for t in tries.failures)
            if idle and (tries.locked_until is None or now >= tries.locked_until):
                del self._tries[key]


class Busy(Exception):
    """Too many password verifications are running; the client should try again shortly."""


class VerifyGate:
    """At most ``slots`` password verifications at a time (each argon2 one takes 64 MiB and
    a core's worth of work); a login waits up to ``wait_seconds`` for a slot, then is Busy."""

    def __init__(self, slots: int, wait_seconds: float) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self._wait = wait_seconds

    def __enter__(self) -> None:
        if not self._slots.acquire(timeout=self._wait):
            raise Busy

    def __exit__(self, *exc: object) -> None:
        self._slots.release()


@dataclass
class _Burst:
    written_at: float
    repeats: int = 0


class FailureLog:
    """Decides which failed logins are written to the audit log: the first of each (name,
    address, outcome) in a window; the ones after it are counted and written as one entry
    with their number, so repeated failures cannot flood the log."""

    def __init__(self, window_seconds: float, clock: Clock) -> None:
        self._window = window_seconds
        self._clock = clock
        self._bursts: dict[tuple[str, str, str], _Burst] = {}
        self._lock = threading.Lock()

    def note(self, name: str, address: str, outcome: str) -> list[tuple[str, str, str, int]]:
        """One failure; return the entries to write now as (name, address, outcome, repeats):
        this failure unless it is a repeat within the window, and the counts of bursts whose
        window has passed (``repeats`` is how many like it went unwritten before it)."""
        now = self._clock()
        with self._lock:
            due = self._passed(now)
            key = (name, address, outcome)
            burst = self._bursts.get(key)
            if burst is None:
                self._bursts[key] = _Burst(now)
                due.append((*key, 0))
            else:
                burst.repeats += 1
            return due

    def due(self) -> list[tuple[str, str, str, int]]:
        """The counts of bursts whose window has passed, to write now."""
        now = self._clock()
        with self._lock:
            return self._passed(now)

    def _passed(self, now: float) -> list[tuple[str, str, str, int]]:
        due = []
        for key, burst in list(self._bursts.items()):
            if now - burst.written_at >= self._window:
                del self._bursts[key]
                if burst.repeats:
                    due.append((*key, burst.repeats))
        return due
