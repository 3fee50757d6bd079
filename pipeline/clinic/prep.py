"""Chart preparation for one day: each appointment, what its clinic wants, what is on file, the packet.

``plan_day`` only reads (the Prep page, ``prep --dry-run``); ``prepare_day`` builds the
packets, records each in the audit log, removes expired ones and, when asked, queues the
packets' documents for the EHR.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from pipeline.archive.audit import AuditLog
from pipeline.archive.sidecar import read_sidecar
from pipeline.archive.store import document_dir
from pipeline.clinic.appointments import Appointment, AppointmentBook
from pipeline.clinic.packets import (
    PacketError,
    PacketManifest,
    build_packet,
    expire_packets,
    packet_path,
    read_manifest,
)
from pipeline.clinic.rules import OnFile, Pick, pick, rules_for
from pipeline.core.config import Config
from pipeline.ehr.enqueue import enqueue_filed
from pipeline.identify.patients import PatientIndex

log = logging.getLogger(__name__)

State = Literal["ready", "incomplete", "unknown patient"]


@dataclass(frozen=True)
class Visit:
    appointment: Appointment
    patient: str | None
    known: bool
    picks: tuple[Pick, ...]
    packet: PacketManifest | None = None

    @property
    def state(self) -> State:
        if not self.known:
            return "unknown patient"
        return "incomplete" if self.missing else "ready"

    @property
    def missing(self) -> list[str]:
        return [m for p in self.picks if (m := p.missing)]

    @property
    def documents(self) -> list[OnFile]:
        return [d for p in self.picks for d in p.documents]


def patient_documents(config: Config, mrn: str) -> list[OnFile]:
    """The patient's filed documents, read from the archive itself."""
    folder = document_dir(config, "filed", mrn)
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        if path.name.startswith("."):
            continue
        sidecar = read_sidecar(path)
        if sidecar.status == "filed":
            found.append(
                OnFile(sidecar.doc_id, sidecar.doc_type, sidecar.doc_date, sidecar.pages, sidecar.path, sidecar.sha256)
            )
    return found


def plan_day(config: Config, day: date, *, clinic: str | None = None) -> list[Visit]:
    """Every booked appointment of ``day`` (of one clinic, when named) with what its packet would hold."""
    with AppointmentBook.for_config(config) as book:
        appointments = [a for a in book.on(day) if clinic is None or a.clinic.lower() == clinic.lower()]
    patients = PatientIndex.for_config(config)
    try:
        return [_visit(config, patients, a) for a in appointments]
    finally:
        patients.close()


def _visit(config: Config, patients: PatientIndex, appointment: Appointment) -> Visit:
    registered = patients.get(appointment.mrn)
    on_file = patient_documents(config, appointment.mrn)
    name = f"{registered.family}, {registered.given}".strip(", ") if registered else appointment.patient_name
    picks = pick(rules_for(config.chart_prep, appointment.clinic), on_file, appointment.day)
    packet = read_manifest(packet_path(config, appointment))
    return Visit(appointment, name, registered is not None or bool(on_file), tuple(picks), packet)


def prepare_day(
    config: Config, day: date, *, user: str, clinic: str | None = None, today: date | None = None
) -> list[Visit]:
    """Build (or rebuild) the packet of every known patient's appointment on ``day``; drop expired packets."""
    expire_packets(config, today or date.today())
    audit = AuditLog.for_config(config)
    visits = []
    for visit in plan_day(config, day, clinic=clinic):
        if not visit.known:
            visits.append(visit)
            continue
        manifest = build_packet(config, visit.appointment, visit.patient, list(visit.picks), user=user)
        audit.record(
            "prep.build",
            user=user,
            mrns=[visit.appointment.mrn],
            doc_ids=[d.doc_id for d in manifest.documents],
            details={"appointment": visit.appointment.appointment_id, "missing": len(manifest.missing)},
        )
        if config.chart_prep.send_to_ehr:
            taken = {entry.doc_id for entry in manifest.documents}
            enqueue_filed(config, [{"path": d.path, "status": "filed"} for d in visit.documents if d.doc_id in taken])
        visits.append(Visit(visit.appointment, visit.patient, True, visit.picks, manifest))
    log.info(
        "prep %s: %d appointment(s), %d packet(s) built", day, len(visits), sum(v.packet is not None for v in visits)
    )
    return visits


def open_packet(config: Config, appointment_id: str, *, user: str) -> Path:
    """The packet PDF of one appointment, for a person to read; the opening is audited."""
    with AppointmentBook.for_config(config) as book:
        appointment = book.get(appointment_id)
    path = packet_path(config, appointment) if appointment else None
    manifest = read_manifest(path) if path else None
    if appointment is None or path is None or manifest is None or not path.is_file():
        raise PacketError(f"no packet for appointment {appointment_id}; build it with `medarchive prep --date DAY`")
    AuditLog.for_config(config).record(
        "prep.open", user=user, mrns=[appointment.mrn], doc_ids=[d.doc_id for d in manifest.documents]
    )
    return path
