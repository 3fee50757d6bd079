"""The nightly chart preparation: at ``chart_prep.run_at`` the daemon builds the next day's packets."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from pipeline.archive.audit import os_user
from pipeline.archive.derived import packets_dir
from pipeline.clinic.prep import prepare_day
from pipeline.core.clock import last_scheduled
from pipeline.core.config import Config
from pipeline.core.fsutil import atomic_write_json, read_json


def _state(config: Config) -> Path:
    return packets_dir(config) / "schedule.json"


def maybe_prepare(config: Config, now: datetime) -> str | None:
    """Build tomorrow's packets when ``run_at`` has passed since the last run; a line for the log, else None.

    ``now`` is local wall-clock time (naive). Cheap when not due: one small file read.
    """
    if config.chart_prep.run_at is None:
        return None
    now = now.replace(tzinfo=None)
    try:
        last = datetime.fromisoformat(read_json(_state(config))["checked"])
    except (OSError, ValueError, KeyError, TypeError):
        last = None
    if last is not None and last >= last_scheduled(config.chart_prep.run_at, now):
        return None
    atomic_write_json(_state(config), {"checked": now.isoformat(timespec="seconds")})
    day = (now + timedelta(days=1)).date()
    visits = prepare_day(config, day, user=os_user(), today=now.date())
    built = sum(v.packet is not None for v in visits)
    return f"chart preparation for {day}: {len(visits)} appointment(s), {built} packet(s) built"
