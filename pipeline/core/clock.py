"""The one wall clock of the records: UTC timestamps for sidecars, audit entries and users."""

from __future__ import annotations

from datetime import UTC, datetime


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
