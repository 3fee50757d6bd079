"""HL7 v2.5.1 MDM messages: T02 (a new document, the PDF in an ED OBX) and T11 (cancel).

TXA-12, the unique document number, is our document number (the doc_id, ``.vN`` after a
correction), so a receiver that gets the same T02 twice (a crash between sending and
the acknowledgement) sees the same document. MSH-10 is stable per outbox message for
the same reason. PID carries only the MRN: the receiver matches the patient on PID-3
against its own index; names read from paper by OCR are not sent.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

import hl7

from pipeline.ehr.outbox import Message, document_number
from pipeline.ehr.settings import EhrSettings, Hl7Destination

VERSION = "2.5.1"
SEGMENT_END = "\r"
_ESCAPER = hl7.parse("MSH|^~\\&|X|||||||ACK|0|P|" + VERSION)


def _esc(value: str | None) -> str:
    return _ESCAPER.escape(value or "")


def _ts(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y%m%d%H%M%S+0000")


def _doc_date(value: str | None) -> str:
    return value.replace("-", "") if value else ""


def control_id(message: Message) -> str:
    """MSH-10: the same for every attempt at one outbox message (at most 20 characters)."""
    return f"MA{message.id}"


def _msh(dest: Hl7Destination, message: Message, event: str, structure: str) -> str:
    return "|".join(
        [
            "MSH",
            "^~\\&",
            _esc(dest.sending_application),
            _esc(dest.sending_facility),
            _esc(dest.receiving_application),
            _esc(dest.receiving_facility),
            _ts(),
            "",
            f"MDM^{event}^{structure}",
            control_id(message),
            dest.processing_id,
            VERSION,
        ]
    )


def _pid(dest: Hl7Destination, mrn: str) -> str:
    # PID-5 is required: the null value '""' says "not sent" (the receiver matches on PID-3).
    return f'PID|1||{_esc(mrn)}^^^{_esc(dest.assigning_authority)}^MR||""'


def _txa(message: Message, number: str, *, availability: str, parent: str | None) -> str:
    p = message.payload
    fields = [""] * 24
    fields[1] = "1"
    fields[2] = _esc(p["doc_type"])  # TXA-2 document type
    fields[3] = "AP"  # TXA-3 content presentation: application data
    fields[4] = _doc_date(p.get("doc_date"))  # TXA-4 activity date/time
    fields[12] = _esc(number)  # TXA-12 unique document number
    fields[13] = _esc(parent or "")  # TXA-13 parent document number
    fields[16] = _esc(p.get("path", "").rsplit("/", 1)[-1])  # TXA-16 unique document file name
    fields[17] = "AU"  # TXA-17 completion status: authenticated
    fields[19] = availability  # TXA-19 availability: AV available, CA cancelled
    return "TXA" + "|".join(fields[:20])


def mdm_t02(dest: Hl7Destination, codes: EhrSettings, message: Message, pdf: bytes) -> str:
    """A new document: MDM^T02 with the PDF base64-encoded in OBX-5 (ED)."""
    p = message.payload
    code, display = codes.code_for(p["doc_type"])
    number = document_number(message.doc_id, message.version)
    parent = document_number(message.doc_id, p["replaces"]) if p.get("replaces") else None
    encoded = base64.b64encode(pdf).decode("ascii")
    segments = [
        _msh(dest, message, "T02", "MDM_T02"),
        f"EVN|T02|{_ts()}",
        _pid(dest, message.mrn),
        "PV1|1|N",
        _txa(message, number, availability="AV", parent=parent),
        f"OBX|1|ED|{code}^{_esc(display)}^LN||^AP^PDF^Base64^{encoded}||||||F",
    ]
    return SEGMENT_END.join(segments) + SEGMENT_END


def mdm_t11(dest: Hl7Destination, codes: EhrSettings, message: Message) -> str:
    """Cancel a document sent before (a misfiled or mistyped version): MDM^T11."""
    number = document_number(message.doc_id, message.version)
    segments = [
        _msh(dest, message, "T11", "MDM_T01"),
        f"EVN|T11|{_ts()}",
        _pid(dest, message.mrn),
        "PV1|1|N",
        _txa(message, number, availability="CA", parent=None),
    ]
    return SEGMENT_END.join(segments) + SEGMENT_END


@dataclass(frozen=True)
class Ack:
    code: str  # AA / AE / AR (or the enhanced-mode CA / CE / CR)
    control_id: str  # MSA-2: the MSH-10 it acknowledges
    text: str  # MSA-3 and any ERR, for the outbox

    @property
    def accepted(self) -> bool:
        return self.code in ("AA", "CA")


def parse_ack(raw: str) -> Ack:
    """Read an ACK; raises ValueError when it is not one."""
    try:
        message = hl7.parse(raw)
        msa = message.segment("MSA")
    except (hl7.ParseException, KeyError, IndexError) as exc:
        raise ValueError(f"the answer is not an HL7 acknowledgement ({exc})") from None
    code = str(msa(1)).strip()
    if code not in ("AA", "AE", "AR", "CA", "CE", "CR"):
        raise ValueError(f"the acknowledgement code {code!r} is not AA, AE or AR")
    parts = [str(msa(3)).strip()] if len(msa) > 3 else []
    for err in message.segments("ERR") if _has(message, "ERR") else []:
        parts.append(" ".join(str(err).split("|")[1:]).strip())
    return Ack(code, str(msa(2)).strip(), "; ".join(p for p in parts if p))


def _has(message, name: str) -> bool:
    try:
        message.segments(name)
    except KeyError:
        return False
    return True
