"""ADT messages from the registration system, read into plain records; acknowledgements built.

Pure: text in, ``AdtMessage`` or an ``AdtError`` (whose message goes back to the sender
in the AE acknowledgement) out. python-hl7 splits segments and fields; components and
repetitions are split here, because python-hl7 returns a plain string for a field with
no separators and a list for one with them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

import hl7
import hl7.containers
import hl7.util

from pipeline.core.errors import MedarchiveError
from pipeline.ehr.listener_settings import HL7ListenerSettings
from pipeline.identify.patients import Patient

# Events that carry a patient's current demographics in PID.
REGISTRATION_EVENTS = frozenset({"A04", "A08", "A28", "A31"})
MERGE_EVENT = "A40"
UNMERGE_EVENT = "A37"
# Only these segments are parsed; the rest of a message (NK1, IN1, OBX ...) is never looked at.
_READ_SEGMENTS = frozenset({"MSH", "EVN", "PID", "MRG"})
# python-hl7 costs seconds on crafted fields (and its unescaping is quadratic in backslashes):
# what it parses is capped, so that one message costs milliseconds. A real MSH+EVN+PID+MRG is 1-2 KB.
MAX_READ_CHARS = 16 * 1024
_SEGMENT_BREAK = re.compile(r"\r\n|\n|\r")
_HL7_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_SEX = frozenset({"F", "M", "O", "U", "A", "N", "X"})
_MAX_MSA_TEXT = 199
_MAX_ID = 64  # MSH-10 is at most 20 characters in 2.5, 199 in 2.7; longer is kept out of logs

# HL7 table 0357 (message error condition codes) used in ERR-3.
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNKNOWN_KEY = "204"
APPLICATION_ERROR = "207"
_CODE_NAMES = {
    "100": "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNKNOWN_KEY: "Unknown key identifier",
    APPLICATION_ERROR: "Application internal error",
}


# python-hl7 logs a field it cannot unescape with its value: patient data. Its log is not ours.
for _module in (hl7.util, hl7.containers):
    logging.getLogger(_module.__file__).disabled = True


class AdtError(MedarchiveError):
    """A message that cannot be acted on; the message text is the reason sent back in the AE."""

    def __init__(self, reason: str, code: str = APPLICATION_ERROR) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class Header:
    """What an acknowledgement needs from MSH; read even from a message that does not parse."""

    field_sep: str = "|"
    encoding: str = "^~\\&"
    sending_application: str = ""
    sending_facility: str = ""
    receiving_facility: str = ""
    message_type: str = ""
    event: str = ""
    control_id: str = ""
    processing_id: str = "P"
    version: str = "2.5"

    @property
    def sender(self) -> str:
        """Who sent it, as the audit log names the acting user."""
        return f"hl7:{self.sending_application or '?'}@{self.sending_facility or '?'}"[:80]


@dataclass(frozen=True)
class AdtMessage:
    header: Header
    mrn: str | None = None  # PID-3; for an A40 the surviving MRN
    patient: Patient | None = None  # PID's demographics (an A40 may leave them out)
    prior_mrn: str | None = None  # MRG-1 of an A40
    unlinked_mrn: str | None = None  # an A37's second PID-3: the merge of the two MRNs is undone


def normalise(raw: bytes) -> str:
    """The message as text with HL7's carriage-return segment breaks.

    UTF-8 first (HL7 2.8's recommendation), else Latin-1, which every byte decodes.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return _SEGMENT_BREAK.sub("\r", text.strip("\r\n\x00 "))


def read_header(text: str) -> Header:
    """MSH's fields by plain splitting; empty ones where the message is too broken to tell."""
    if not text.startswith("MSH") or len(text) < 8:
        return Header()
    sep = text[3]
    if sep.isalnum() or sep.isspace():
        return Header()
    # msh[n] is MSH-n: MSH-1 is the field separator itself.
    msh = ["", sep, *text.split("\r", 1)[0].split(sep)[1:], *[""] * 12]
    if not 4 <= len(msh[2]) <= 5 or any(c.isalnum() or c.isspace() or c == sep for c in msh[2]):
        return Header(control_id=msh[10][:_MAX_ID])
    comp = msh[2][0]

    def first(n: int) -> str:
        return msh[n].split(comp)[0][:_MAX_ID]

    kind = msh[9].split(comp)
    return Header(
        field_sep=sep,
        encoding=msh[2],
        sending_application=first(3),
        sending_facility=first(4),
        receiving_facility=first(6),
        message_type=kind[0][:_MAX_ID],
        event=kind[1][:_MAX_ID] if len(kind) > 1 else "",
        control_id=msh[10][:_MAX_ID],
        processing_id=first(11) or "P",
        version=first(12) or "2.5",
    )


def readable_part(text: str, segments: frozenset[str] = _READ_SEGMENTS) -> str:
    """The segments the archive reads (for ADT: MSH, EVN, PID, MRG), refused when they are too large to be real."""
    kept = [segment for segment in text.split("\r") if segment[:3] in segments]
    if sum(len(segment) + 1 for segment in kept) > MAX_READ_CHARS:
        raise AdtError(
            f"the {', '.join(sorted(segments))} segments together are larger than {MAX_READ_CHARS // 1024} KB; "
            "this is not a message the archive can read",
            "100",
        )
    return "\r".join(kept)


def parse(text: str, segments: frozenset[str] = _READ_SEGMENTS) -> hl7.Message:
    try:
        message = hl7.parse(readable_part(text, segments))
        message.segment("MSH")
    except AdtError:
        raise
    except Exception as exc:
        # python-hl7's message may quote the message: only its type goes back, and into the log.
        raise AdtError(
            f"not a readable HL7 v2 message ({type(exc).__name__}); it must start with an MSH segment", "100"
        ) from None
    return message


class _Fields:
    """Repetitions and components of one message's fields, unescaped."""

    def __init__(self, message: hl7.Message) -> None:
        self.message = message
        enc = str(message.segment("MSH")(2))
        self.comp, self.rep, self.sub = (enc + "^~\\&")[0], (enc + "^~\\&")[1], (enc + "^~\\&")[3]

    def repetitions(self, segment: str, n: int) -> list[list[str]]:
        """Field ``n`` of the first ``segment``: one list of components per repetition."""
        try:
            raw = str(self.message.segment(segment)(n))
        except (KeyError, IndexError):
            return []
        return [
            [self.message.unescape(c.split(self.sub)[0]).strip() for c in rep.split(self.comp)]
            for rep in raw.split(self.rep)
            if rep
        ]

    def component(self, segment: str, n: int, c: int = 1) -> str:
        reps = self.repetitions(segment, n)
        return reps[0][c - 1] if reps and len(reps[0]) >= c else ""


def _present(message: hl7.Message, segment: str) -> bool:
    try:
        message.segment(segment)
    except KeyError:
        return False
    return True


def _identifier(reps: list[list[str]], where: str, settings: HL7ListenerSettings, is_mrn) -> str:
    """The MRN in a CX list: the repetition of our assigning authority, else the one typed MR, else the first."""
    cx = [r + [""] * (5 - len(r)) for r in reps if r and r[0]]
    if settings.assigning_authority:
        cx = [r for r in cx if r[3] == settings.assigning_authority]
        if not cx:
            raise AdtError(
                f"{where} has no identifier of assigning authority {settings.assigning_authority}",
                REQUIRED_FIELD_MISSING,
            )
    elif any(r[4] == "MR" for r in cx):
        cx = [r for r in cx if r[4] == "MR"]
    if not cx:
        raise AdtError(f"{where} (patient identifier) is empty", REQUIRED_FIELD_MISSING)
    mrn = cx[0][0]
    if not is_mrn(mrn):
        # The value is not repeated: what is not an MRN may be another identifier (an SSN), and reasons are logged.
        raise AdtError(f"{where} does not hold an MRN of this archive (extraction.mrn_pattern)", DATA_TYPE_ERROR)
    return mrn


def _birth_date(value: str) -> str | None:
    if not value:
        return None
    found = _HL7_DATE.match(value)
    try:
        if found is None:
            raise ValueError
        return date(*map(int, found.groups())).isoformat()
    except ValueError:
        raise AdtError("PID-7 (date of birth) is not a date YYYYMMDD", DATA_TYPE_ERROR) from None


def _demographics(fields: _Fields, mrn: str, *, required: bool) -> Patient | None:
    """The patient of PID; None when PID names no one and the caller can do without."""
    names = [n + [""] * (7 - len(n)) for n in fields.repetitions("PID", 5)] or [[""] * 7]
    # The legal name (XPN-7 "L") when PID-5 also lists aliases or a maiden name.
    name = next((n for n in names if n[6] == "L"), names[0])
    family, given = name[0], " ".join(p for p in name[1:3] if p)
    dob = _birth_date(fields.component("PID", 7))
    sex = fields.component("PID", 8).upper() or None
    if not family and not dob and not required:
        return None
    if not family:
        raise AdtError("PID-5 (patient name) has no family name", REQUIRED_FIELD_MISSING)
    if dob is None:
        raise AdtError("PID-7 (date of birth) is empty", REQUIRED_FIELD_MISSING)
    if sex is not None and sex not in _SEX:
        raise AdtError("PID-8 (administrative sex) is not a value of HL7 table 0001", DATA_TYPE_ERROR)
    return Patient(mrn, family, given, dob, sex)


def read_adt(message: hl7.Message, header: Header, settings: HL7ListenerSettings, is_mrn) -> AdtMessage:
    """The patient (and for A40 the retired MRN) a parsed message is about.

    ``is_mrn`` is the archive's test of an MRN (Config.extraction.is_mrn).
    """
    if header.message_type != "ADT":
        raise AdtError(
            f"message type {header.message_type or '(none)'} is not handled here; send ADT", UNSUPPORTED_MESSAGE_TYPE
        )
    if settings.allowed_facilities and header.sending_facility not in settings.allowed_facilities:
        raise AdtError(
            f"sending facility {header.sending_facility or '(none)'} is not allowed (hl7_listener.allowed_facilities)",
            APPLICATION_ERROR,
        )
    if header.event not in REGISTRATION_EVENTS | {MERGE_EVENT, UNMERGE_EVENT}:
        return AdtMessage(header)
    fields = _Fields(message)
    if not _present(message, "PID"):
        raise AdtError("the message has no PID segment", REQUIRED_FIELD_MISSING)
    mrn = _identifier(fields.repetitions("PID", 3), "PID-3", settings, is_mrn)
    if header.event == UNMERGE_EVENT:
        return _unlink(message, header, mrn, settings, is_mrn)
    if header.event != MERGE_EVENT:
        return AdtMessage(header, mrn, _demographics(fields, mrn, required=True))
    if not _present(message, "MRG"):
        raise AdtError("an A40 needs an MRG segment naming the prior MRN", REQUIRED_FIELD_MISSING)
    if len(message.segments("MRG")) > 1:
        raise AdtError("send one merge per A40 message (this one has several MRG segments)", "100")
    prior = _identifier(fields.repetitions("MRG", 1), "MRG-1", settings, is_mrn)
    if prior == mrn:
        raise AdtError(f"MRG-1 and PID-3 are the same MRN {mrn}; nothing to merge", UNKNOWN_KEY)
    return AdtMessage(header, mrn, _demographics(fields, mrn, required=False), prior_mrn=prior)


def _unlink(message: hl7.Message, header: Header, mrn: str, settings: HL7ListenerSettings, is_mrn) -> AdtMessage:
    """An A37 names the two patients (two PID segments) whose merge is undone, in either order."""
    pids = message.segments("PID")
    if len(pids) != 2:
        raise AdtError("an A37 names two patients: one PID segment for each", REQUIRED_FIELD_MISSING)
    second = hl7.parse(f"{message.segment('MSH')}\r{pids[1]}")
    other = _identifier(_Fields(second).repetitions("PID", 3), "the second PID-3", settings, is_mrn)
    if other == mrn:
        raise AdtError(f"both PID segments name MRN {mrn}; nothing to unlink", UNKNOWN_KEY)
    return AdtMessage(header, mrn, unlinked_mrn=other)


def _escape(text: str, header: Header) -> str:
    enc = (header.encoding + "^~\\&")[:4]
    comp, rep, esc, sub = enc[0], enc[1], enc[2], enc[3]
    out = text.replace(esc, f"{esc}E{esc}")
    for char, code in ((header.field_sep, "F"), (comp, "S"), (rep, "R"), (sub, "T")):
        out = out.replace(char, f"{esc}{code}{esc}")
    return " ".join(out.split())  # no segment breaks inside a field


def build_ack(
    header: Header,
    code: str,
    *,
    text: str | None,
    error_code: str | None,
    control_id: str,
    application: str,
    now: datetime | None = None,
) -> str:
    """An original-mode ACK (MSA-1 AA or AE, MSA-2 the sender's control id, ERR for an error)."""
    sep = header.field_sep
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    msh = sep.join(
        [
            "MSH",
            header.encoding,
            application,
            header.receiving_facility,
            header.sending_application,
            header.sending_facility,
            stamp,
            "",
            header.encoding[0].join(["ACK", header.event, "ACK"]),
            control_id,
            header.processing_id,
            header.version,
        ]
    )
    # MSA-3 holds 199 characters at most (ST); ERR-8 carries the whole reason.
    brief = [_escape(text, header)[:_MAX_MSA_TEXT]] if text else []
    segments = [msh, sep.join(["MSA", code, header.control_id, *brief])]
    if error_code is not None:
        comp = header.encoding[0]
        err_code = comp.join([error_code, _CODE_NAMES.get(error_code, "Application internal error"), "HL70357"])
        segments.append(sep.join(["ERR", "", "", err_code, "E", "", "", "", _escape(text or "", header)]))
    return "\r".join(segments) + "\r"
