"""Appointments from the scheduling system (HL7 SIU or a CSV export), kept beside the patient index.

An appointment is keyed by the scheduling system's id, so a message sent twice, or a
rescheduling, updates the one row. An appointment for an MRN the patient index does not
know is kept: the Prep page shows it as such rather than losing the visit.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

from pipeline.core.clock import now_utc
from pipeline.core.errors import MedarchiveError
from pipeline.stores import Migration, Row, Schema, SchemaStore

Status = Literal["booked", "cancelled"]
Change = Literal["created", "updated", "unchanged", "cancelled"]

SCHEMA = Schema(
    "appointments",
    (
        Migration(
            1,
            """
CREATE TABLE appointments (
    appointment_id TEXT PRIMARY KEY,
    mrn TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    clinic TEXT NOT NULL,
    provider TEXT,
    patient_name TEXT,
    status TEXT NOT NULL CHECK (status IN ('booked', 'cancelled')),
    source TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX appointments_by_start ON appointments (starts_at);
""",
        ),
    ),
)


class AppointmentError(MedarchiveError):
    """An appointment cannot be read or stored as given (the message says which field)."""


@dataclass(frozen=True)
class Appointment:
    appointment_id: str
    mrn: str
    starts_at: str  # local date and time, ISO 8601 'YYYY-MM-DDTHH:MM'
    clinic: str
    provider: str | None = None
    patient_name: str | None = None
    status: Status = "booked"
    source: str = "csv"
    updated_at: str | None = None

    @property
    def day(self) -> date:
        return date.fromisoformat(self.starts_at[:10])


_HL7_TS = re.compile(r"(\d{8})(\d{4})?")


def parse_start(value: str, where: str) -> str:
    """A start time as 'YYYY-MM-DDTHH:MM' from ISO text or HL7's YYYYMMDDHHMM[SS][+ZZZZ] (seconds and zone dropped:
    the schedule is in the clinic's local time)."""
    text = value.strip()
    try:
        if "-" in text[:8]:
            moment = datetime.fromisoformat(text.replace(" ", "T"))
        elif found := _HL7_TS.match(text):
            moment = datetime.strptime(found[1] + (found[2] or "0000"), "%Y%m%d%H%M")
        else:
            raise ValueError
    except ValueError:
        raise AppointmentError(
            f"{where} is not a date and time (YYYY-MM-DD HH:MM or YYYYMMDDHHMM): {text[:20]!r}"
        ) from None
    return moment.strftime("%Y-%m-%dT%H:%M")


class AppointmentBook(SchemaStore):
    """The appointments store of one data root (or the shared database)."""

    SCHEMA = SCHEMA

    def get(self, appointment_id: str) -> Appointment | None:
        rows = self.db.query("SELECT * FROM appointments WHERE appointment_id = ?", (appointment_id,))
        return _appointment(rows[0]) if rows else None

    def save(self, appointment: Appointment) -> Change:
        """Create or update by id; the stored row's ``updated_at`` moves only when something changed."""
        with self.db.transaction() as tx:
            rows = tx.execute("SELECT * FROM appointments WHERE appointment_id = ?", (appointment.appointment_id,))
            old = _appointment(rows[0]) if rows else None
            if old is not None and replace(old, updated_at=None) == replace(appointment, updated_at=None):
                return "unchanged"
            values = {**asdict(appointment), "updated_at": now_utc()}
            columns = ", ".join(values)
            updates = ", ".join(f"{c} = excluded.{c}" for c in values if c != "appointment_id")
            tx.execute(
                f"INSERT INTO appointments ({columns}) VALUES ({', '.join('?' * len(values))}) "
                f"ON CONFLICT (appointment_id) DO UPDATE SET {updates}",
                tuple(values.values()),
            )
        if appointment.status == "cancelled":
            return "cancelled"
        return "created" if old is None else "updated"

    def cancel(self, appointment_id: str) -> bool:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE appointments SET status = 'cancelled', updated_at = ? WHERE appointment_id = ? "
                "AND status <> 'cancelled'",
                (now_utc(), appointment_id),
            )
            return tx.rowcount() > 0

    def on(self, day: date, *, include_cancelled: bool = False) -> list[Appointment]:
        """The appointments of one day, by start time then clinic."""
        start, end = day.isoformat(), (day + timedelta(days=1)).isoformat()
        rows = self.db.query(
            "SELECT * FROM appointments WHERE starts_at >= ? AND starts_at < ? ORDER BY starts_at, clinic, appointment_id",
            (start, end),
        )
        found = [_appointment(r) for r in rows]
        return found if include_cancelled else [a for a in found if a.status == "booked"]


def _appointment(row: Row) -> Appointment:
    return Appointment(
        appointment_id=row["appointment_id"],
        mrn=row["mrn"],
        starts_at=row["starts_at"],
        clinic=row["clinic"],
        provider=row["provider"],
        patient_name=row["patient_name"],
        status=row["status"],
        source=row["source"],
        updated_at=row["updated_at"],
    )


CSV_COLUMNS = ("appointment_id", "mrn", "start", "clinic")


@dataclass(frozen=True)
class CsvImport:
    appointments: list[Appointment]
    problems: list[str]  # "line 4: mrn 'abc' is not an MRN of this archive"


def read_csv(path: Path, is_mrn, source: str = "csv") -> CsvImport:
    """Appointments from a scheduling export: appointment_id, mrn, start, clinic[, provider, patient_name, status].

    A bad row is reported by line and skipped; the others are taken.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            missing = [c for c in CSV_COLUMNS if c not in header]
            if missing:
                raise AppointmentError(
                    f"{path.name} has no column {', '.join(missing)} (needs {', '.join(CSV_COLUMNS)})"
                )
            rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AppointmentError(f"cannot read {path.name}: {exc}") from None
    return _from_rows(rows, is_mrn, source)


def _from_rows(rows: Iterable[dict[str, str]], is_mrn, source: str) -> CsvImport:
    found, problems = [], []
    for line, row in enumerate(rows, start=2):
        try:
            found.append(_from_row(row, is_mrn, source))
        except AppointmentError as exc:
            problems.append(f"line {line}: {exc}")
    return CsvImport(found, problems)


def _from_row(row: dict[str, str], is_mrn, source: str) -> Appointment:
    if not row.get("appointment_id"):
        raise AppointmentError("appointment_id is empty")
    if not is_mrn(row.get("mrn", "")):
        raise AppointmentError("mrn is not an MRN of this archive (extraction.mrn_pattern)")
    if not row.get("clinic"):
        raise AppointmentError("clinic is empty")
    status = (row.get("status") or "booked").lower()
    if status not in ("booked", "cancelled"):
        raise AppointmentError(f"status must be booked or cancelled, not {status[:20]!r}")
    return Appointment(
        appointment_id=row["appointment_id"][:64],
        mrn=row["mrn"],
        starts_at=parse_start(row.get("start", ""), "start"),
        clinic=row["clinic"][:80],
        provider=(row.get("provider") or None),
        patient_name=(row.get("patient_name") or None),
        status=status,  # type: ignore[arg-type]
        source=source,
    )
