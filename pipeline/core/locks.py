"""One daemon per data root (per site when several share it): an flock that dies with its process, so a crash never leaves it stuck."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from pipeline.core.errors import MedarchiveError


class AlreadyRunning(MedarchiveError):
    pass


_DAEMON_BUSY = (
    "another medarchive daemon (pid {pid}) is already watching the data root {root}; "
    "stop it first (systemctl stop medarchive, or kill {pid})"
)


class DaemonLock:
    """``busy`` is the message when another process holds the lock ({pid} and {root} are filled in)."""

    def __init__(self, path: Path, busy: str = _DAEMON_BUSY) -> None:
        self.path = path
        self.busy = busy
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = holder(self.path)
            raise AlreadyRunning(self.busy.format(pid=pid or "unknown", root=self.path.parent)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def holder(path: Path) -> int | None:
    """The pid of the running daemon, or None when no daemon holds the lock."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
