"""A pool worker's life: deaf to the terminal's Ctrl-C, and gone with its coordinator.

Kept apart from the pipeline so that a worker imports only what reading a page needs.
"""

from __future__ import annotations

import os
import signal
import threading
import time

# Tests make a poison pill out of an ordinary file: a worker that opens an input whose
# name contains this text kills itself, or (…_WHO=coordinator) the process it serves,
# or (…_WHO=raise) fails with an error nobody expected.
CRASH_ON = "MEDARCHIVE_TEST_CRASH_ON"
CRASH_WHO = "MEDARCHIVE_TEST_CRASH_WHO"
_coordinator: int | None = None


def start_worker(coordinator: int) -> None:
    global _coordinator
    _coordinator = coordinator
    # Ctrl-C in a terminal signals the whole foreground process group; a worker and the
    # tesseract it runs must not die mid-page before the coordinator decides to stop.
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_coordinator(coordinator)


def _exit_with_coordinator(pid: int) -> None:
    """Workers of a coordinator killed with -9 would otherwise idle forever on their queue."""

    def watch() -> None:
        while _alive(pid):
            time.sleep(2)
        os._exit(1)

    threading.Thread(target=watch, name="coordinator-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    """False once ``pid`` has exited, even while its parent has not reaped it (a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def crash_if_asked(name: str) -> None:
    """The test hook above; does nothing unless the environment asks for it."""
    marker = os.environ.get(CRASH_ON)
    if not marker or marker not in name:
        return
    who = os.environ.get(CRASH_WHO, "worker")
    if who == "raise":
        raise RuntimeError("test hook: an error nobody expected")
    if who == "coordinator" and _coordinator is not None:
        os.kill(_coordinator, signal.SIGKILL)
        time.sleep(5)
    os.kill(os.getpid(), signal.SIGKILL)
