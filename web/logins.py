"""Logins under attack: the lockout, fair password-check slots, made-up names, and failed logins in the audit log.

All of it lives in the one server process's memory (a restart forgets it, as it
does the sessions); `medarchive user unlock` reaches the lockout through the
account's unlock count in the user store.

How a flood of logins is kept from locking real users out, without telling
anyone which names exist:

- A password check (argon2: 64 MiB and a core's worth of work) needs one of a few
  slots (VerifyGate). Slots go to waiting logins round-robin by source address, so
  a flood from some addresses cannot starve another; a browser carrying the device
  cookie of the account it logs in to (it logged in from there before) goes ahead
  of every stranger; each address may have only so many logins waiting.
- A made-up name costs no argon2 check and holds no slot. Answering it at once
  would tell it from a real name, so it queues for its turn like a check (the same
  wait, the same 503 when the wait is too long), hands the slot straight back, and
  then waits as long as a password check takes here: a duration drawn from the
  last checks actually made (Pacer), so the delays of both come from one
  distribution. The answer is the same 401; the lockout counts made-up names as it
  counts real ones, so its 429 gives nothing away either. The first made-up name
  after a start is checked against a dummy hash, to have a duration to draw from.
- The lockout counts failures per (name, address) and per name across all
  addresses (LoginLimiter): guessing from many addresses locks the account for
  every address, except for browsers it logged in from before.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from web.sessions import Clock

# Keys idle this long past their window are forgotten once this many are held,
# so a stream of made-up names cannot fill the memory; past the hard cap the
# oldest are forgotten even if not idle yet.
_SWEEP_AT = 1024
_MOST_KEYS = 100_000
# A name's failures from every address together are counted under this "where".
_ANY_ADDRESS = "*"
# Logins one source address may have waiting for a password-check slot at a time.
WAITING_PER_SOURCE = 16


@dataclass
class _Tries:
    failures: list[float] = field(default_factory=list)
    in_flight: int = 0
    locked_until: float | None = None
    unlocks: int = 0


class LoginLimiter:
    """Failed logins per (user, where): at ``attempts`` failures within the window the pair is
    locked out for one window, from the failure that locked it; and per user from anywhere:
    at ``account_attempts`` failures within the window the account is locked out the same
    way, for every address, but not for a browser it logged in from before (``device``).

    ``where`` is the client address, or a device the user logged in from before, so
    nobody else's failures lock a user out of their own browser. Checking, verifying
    and counting are one step: a try is reserved before the password is verified and
    counts as a failure until it is known, so concurrent tries cannot overshoot the
    limit. A lockout ends after its window (tries during it do not extend it) or when
    the account's unlock count changes (`medarchive user unlock`). A made-up name is
    counted like a real one, so a lockout does not tell them apart.
    """

    def __init__(self, attempts: int, window_seconds: float, clock: Clock, account_attempts: int | None = None) -> None:
        self._attempts = attempts
        self._account_attempts = account_attempts or attempts * 4
        self._window = window_seconds
        self._clock = clock
        self._tries: dict[tuple[str, str], _Tries] = {}
        self._lock = threading.Lock()

    def begin(self, user: str, where: str, unlocks: int = 0, device: bool = False) -> bool:
        """Reserve a try; False when the pair, or the account for one not on its own device,
        is locked out (then nothing is reserved)."""
        now = self._clock()
        with self._lock:
            tries = self._current((user, where), unlocks, now)
            account = self._current((user, _ANY_ADDRESS), unlocks, now)
            if _full(tries, self._attempts) or (not device and _full(account, self._account_attempts)):
                return False
            tries.in_flight += 1
            account.in_flight += 1
            return True

    def end(self, user: str, where: str, succeeded: bool) -> None:
        """The outcome of a try that ``begin`` reserved."""
        now = self._clock()
        with self._lock:
            tries = self._tries.setdefault((user, where), _Tries())
            account = self._tries.setdefault((user, _ANY_ADDRESS), _Tries())
            for counted, limit in ((tries, self._attempts), (account, self._account_attempts)):
                counted.in_flight = max(counted.in_flight - 1, 0)
                if not succeeded:
                    counted.failures.append(now)
                    if len(counted.failures) >= limit:
                        counted.locked_until = now + self._window
            # A success clears its own browser's or address's count, not the guesses made elsewhere.
            if succeeded:
                tries.failures.clear()

    def cancel(self, user: str, where: str) -> None:
        """Give back a try that ``begin`` reserved but that never verified a password."""
        with self._lock:
            for key in ((user, where), (user, _ANY_ADDRESS)):
                tries = self._tries.get(key)
                if tries is not None:
                    tries.in_flight = max(tries.in_flight - 1, 0)

    def _current(self, key: tuple[str, str], unlocks: int, now: float) -> _Tries:
        tries = self._tries.get(key)
        if tries is None:
            if len(self._tries) >= _SWEEP_AT:
                self._forget_idle(now)
            if len(self._tries) >= _MOST_KEYS:
                self._forget_oldest()
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

    def _forget_oldest(self) -> None:
        # Dicts keep insertion order: the first keys are the ones made longest ago.
        for key in [key for key, tries in self._tries.items() if not tries.in_flight][: _MOST_KEYS // 10]:
            del self._tries[key]


def _full(tries: _Tries, limit: int) -> bool:
    return tries.locked_until is not None or len(tries.failures) + tries.in_flight >= limit


class Busy(Exception):
    """Too many password verifications are running; the client should try again shortly."""


@dataclass
class _Ticket:
    granted: bool = False


class VerifyGate:
    """At most ``slots`` password verifications at a time, handed out fairly.

    A login waits up to ``wait_seconds`` for a slot, then is Busy. Waiting logins
    are served round-robin by source address, those from a known device first; an
    address with ``per_source`` logins waiting already is Busy at once.
    """

    def __init__(self, slots: int, wait_seconds: float, per_source: int = WAITING_PER_SOURCE) -> None:
        self._free = slots
        self._wait = wait_seconds
        self._per_source = per_source
        self._changed = threading.Condition()
        # (known devices, strangers): each a queue of tickets per source, in round-robin order.
        self._lanes: tuple[dict[str, deque[_Ticket]], dict[str, deque[_Ticket]]] = ({}, {})

    @contextmanager
    def slot(self, source: str, known_device: bool = False) -> Iterator[None]:
        """Hold a slot for one password check."""
        self._acquire(source, known_device)
        try:
            yield
        finally:
            self._release()

    def turn(self, source: str, known_device: bool = False) -> None:
        """Wait for a slot as a password check would, and give it straight back."""
        self._acquire(source, known_device)
        self._release()

    def _acquire(self, source: str, known_device: bool) -> None:
        deadline = time.monotonic() + self._wait
        lanes = self._lanes[0 if known_device else 1]
        with self._changed:
            queue = lanes.setdefault(source, deque())
            if len(queue) >= self._per_source:
                raise Busy
            ticket = _Ticket()
            queue.append(ticket)
            self._grant()
            while not ticket.granted:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    queue.remove(ticket)
                    if not queue and lanes.get(source) is queue:
                        del lanes[source]
                    raise Busy
                self._changed.wait(remaining)

    def _release(self) -> None:
        with self._changed:
            self._free += 1
            self._grant()

    def _grant(self) -> None:
        granted = False
        while self._free and (ticket := self._next()) is not None:
            ticket.granted, granted = True, True
            self._free -= 1
        if granted:
            self._changed.notify_all()

    def _next(self) -> _Ticket | None:
        for lanes in self._lanes:
            for source in lanes:
                queue = lanes.pop(source)
                ticket = queue.popleft()
                if queue:
                    lanes[source] = queue  # to the back of the round
                return ticket
        return None


class Pacer:
    """How long a password check takes on this server, to make a made-up name wait as long."""

    def __init__(self, keep: int = 64) -> None:
        self._seconds: deque[float] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            self._seconds.append(seconds)

    def delay(self) -> float | None:
        """A duration drawn from the recent checks; None before the first one."""
        with self._lock:
            return secrets.choice(self._seconds) if self._seconds else None


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
