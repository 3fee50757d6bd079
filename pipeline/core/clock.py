"""The one wall clock of the records: UTC timestamps for sidecars, audit entries and users."""

from __future__ import annotations

from datetime import UTC, date, datetime


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def today_local() -> date:
    """The calendar day where the records office is: due dates are counted in its days, not UTC's."""
    return datetime.now().astimezone().date()
