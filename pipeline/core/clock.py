"""The one wall clock of the records: UTC timestamps for sidecars, audit entries and users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def last_scheduled(at: str, now: datetime) -> datetime:
    """The latest daily time ``at`` ('HH:MM', local) at or before ``now`` (naive local time)."""
    hour, minute = map(int, at.split(":"))
    due = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return due if due <= now else due - timedelta(days=1)
