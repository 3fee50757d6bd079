"""Where a backlog run stands: a live display on a terminal, periodic log lines elsewhere."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from rich.console import Console
from rich.live import Live
from rich.table import Table

from pipeline.core.models import OUTCOME_STATUSES


@dataclass
class Tally:
    """Counters of one run, including what earlier sessions of it did."""

    files_done: int = 0
    pages_done: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOME_STATUSES, 0))
    files_total: int | None = None
    pages_total: int | None = None
    session_pages: int = 0
    session_started: float = field(default_factory=time.monotonic)

    def add(self, status: str, pages: int) -> None:
        self.files_done += 1
        self.pages_done += pages
        self.session_pages += pages
        self.counts[status] += 1

    @property
    def pages_per_minute(self) -> float:
        elapsed = time.monotonic() - self.session_started
        return self.session_pages * 60 / elapsed if elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        rate = self.pages_per_minute / 60
        if self.pages_total is None or rate <= 0:
            return None
        return max(self.pages_total - self.pages_done, 0) / rate


def _of(done: int, total: int | None) -> str:
    return f"{done:,}/{total:,}" if total is not None else f"{done:,}/(counting)"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def summary_line(tally: Tally) -> str:
    counts = ", ".join(f"{n:,} {status}" for status, n in tally.counts.items())
    return (
        f"files {_of(tally.files_done, tally.files_total)}, pages {_of(tally.pages_done, tally.pages_total)}, "
        f"{tally.pages_per_minute:.0f} pages/min, ETA {_duration(tally.eta_seconds)}; {counts}"
    )


class LogProgress:
    """One line on stderr every ``period`` seconds (cron, systemd, a log file)."""

    def __init__(self, tally: Tally, period: float) -> None:
        self.tally, self.period = tally, period
        self._last = time.monotonic()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def refresh(self) -> None:
        if time.monotonic() - self._last >= self.period:
            self._last = time.monotonic()
            print(
                f"{time.strftime('%Y-%m-%d %H:%M:%S')} backlog: {summary_line(self.tally)}", file=sys.stderr, flush=True
            )


class LiveProgress:
    """A small table redrawn in place on a terminal."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self._live = Live(self._table(), console=Console(stderr=True), refresh_per_second=2, transient=False)

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.refresh()
        self._live.__exit__(None, None, None)

    def refresh(self) -> None:
        self._live.update(self._table())

    def _table(self) -> Table:
        tally = self.tally
        table = Table.grid(padding=(0, 2))
        table.add_row("files", _of(tally.files_done, tally.files_total))
        table.add_row("pages", _of(tally.pages_done, tally.pages_total))
        table.add_row("speed", f"{tally.pages_per_minute:.0f} pages/min")
        table.add_row("ETA", _duration(tally.eta_seconds))
        table.add_row("outcomes", ", ".join(f"{n:,} {status}" for status, n in tally.counts.items()))
        return table


def make_progress(tally: Tally, period: float) -> LiveProgress | LogProgress:
    return LiveProgress(tally) if sys.stderr.isatty() else LogProgress(tally, period)
