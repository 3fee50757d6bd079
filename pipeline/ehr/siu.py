"""SIU scheduling messages (S12 new, S13 rescheduled, S14 modified, S15 cancelled, S17 deleted) read
into an appointment. Pure, like ``adt``: text in, ``Appointment`` or an ``AdtError`` (sent back in the AE).

Where each field is read: the appointment id from SCH-2 (filler) or SCH-1 (placer); the start
from AIS-4, else SCH-11's start component; the clinic from AIL-3 (point of care, else facility),
else PV1-3; the provider from AIP-3, else PV1-7; the patient from PID-3 and PID-5.
"""

from __future__ import annotations

from dataclasses import dataclass

import hl7

from pipeline.clinic.appointments import Appointment, AppointmentError, parse_start
from pipeline.ehr.adt import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    UNSUPPORTED_MESSAGE_TYPE,
    AdtError,
    Header,
    _Fields,
    _identifier,
    _present,
)
from pipeline.ehr.listener_settings import HL7ListenerSettings

BOOKING_EVENTS = frozenset({"S12", "S13", "S14"})
CANCEL_EVENTS = frozenset({"S15", "S17"})


@dataclass(frozen=True)
class SiuMessage:
    header: Header
    appointment: Appointment
    has_start: bool  # a cancellation may leave the time out


def read_siu(message: hl7.Message, header: Header, settings: HL7ListenerSettings, is_mrn) -> SiuMessage:
    if header.event not in BOOKING_EVENTS | CANCEL_EVENTS:
        raise AdtError(
            f"SIU event {header.event or '(none)'} is not handled here; send S12, S13, S14, S15 or S17",
            UNSUPPORTED_MESSAGE_TYPE,
        )
    fields = _Fields(message)
    if not _present(message, "SCH"):
        raise AdtError("the message has no SCH segment", REQUIRED_FIELD_MISSING)
    if not _present(message, "PID"):
        raise AdtError("the message has no PID segment", REQUIRED_FIELD_MISSING)
    appointment_id = fields.component("SCH", 2) or fields.component("SCH", 1)
    if not appointment_id:
        raise AdtError("SCH-2 and SCH-1 (appointment id) are both empty", REQUIRED_FIELD_MISSING)
    mrn = _identifier(fields.repetitions("PID", 3), "PID-3", settings, is_mrn)
    start_text = fields.component("AIS", 4) or fields.component("SCH", 11, 4)
    if not start_text and header.event in BOOKING_EVENTS:
        raise AdtError("AIS-4 and SCH-11.4 (start date and time) are both empty", REQUIRED_FIELD_MISSING)
    try:
        starts_at = parse_start(start_text, "AIS-4 (start)") if start_text else "0001-01-01T00:00"
    except AppointmentError as exc:
        raise AdtError(str(exc), DATA_TYPE_ERROR) from None
    clinic = fields.component("AIL", 3) or fields.component("AIL", 3, 4) or fields.component("PV1", 3) or "unspecified"
    return SiuMessage(
        header,
        Appointment(
            appointment_id=appointment_id[:64],
            mrn=mrn,
            starts_at=starts_at,
            clinic=clinic[:80],
            provider=_person(fields, "AIP", 3) or _person(fields, "PV1", 7),
            patient_name=_person(fields, "PID", 5, has_id=False),
            status="cancelled" if header.event in CANCEL_EVENTS else "booked",
            source="hl7",
        ),
        has_start=bool(start_text),
    )


def _person(fields: _Fields, segment: str, n: int, *, has_id: bool = True) -> str | None:
    """'FAMILY, GIVEN' of an XCN (id first) or XPN field; the id alone when it names no one."""
    reps = fields.repetitions(segment, n)
    if not reps:
        return None
    parts = reps[0][1:] if has_id else reps[0]
    family, given = [*parts, "", ""][:2]
    name = ", ".join(p for p in (family, given) if p)
    return (name or (reps[0][0] if has_id else ""))[:80] or None
