"""The rules a request must pass before anything is released (pure, like identify/decide).

Every refusal is a sentence a clerk can act on and ends by saying nothing was released.
A release holds only what the request asked for; sensitive types it did not name are
left out unless an authorization names them, and a request that names one without
such an authorization is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from pipeline.archive.sidecar import Sidecar
from pipeline.core.errors import MedarchiveError
from pipeline.requests.records import Request

AUTHORIZATION_TYPE = "authorization"
NOTHING = "nothing was released"


class RequestRefused(MedarchiveError):
    """A request cannot be acted on as asked (the message says why and what to do)."""


@dataclass(frozen=True)
class Plan:
    """What a fulfilment releases and what it leaves out, with why."""

    release: tuple[Sidecar, ...]
    withheld: tuple[Sidecar, ...]

    def withheld_note(self) -> str | None:
        if not self.withheld:
            return None
        types = sorted({s.doc_type for s in self.withheld})
        return (
            f"{len(self.withheld)} document(s) of sensitive type(s) {', '.join(types)} were left out: "
            "they need an authorization that names them specifically"
        )


def requester_note(request: Request, sensitive: set[str]) -> str | None:
    """What the requester is told about sensitive records: the same words whether or not any were left
    out, so the note itself never tells that a patient has, say, an HIV result on file."""
    left_out = sensitive - _specifically_authorized(request)
    if not left_out:
        return None
    return (
        "Records that law protects specially ("
        + ", ".join(t.replace("_", " ") for t in sorted(left_out))
        + ") are not released under this request unless an authorization names them specifically."
    )


def check_open(request: Request) -> None:
    if not request.is_open:
        raise RequestRefused(f"request {request.id} is already {request.status}; {NOTHING}")


def check_link(
    request: Request,
    doc: Sidecar | None,
    doc_id: str,
    expires: date,
    covers: Iterable[str],
    sensitive: set[str],
    today: date,
) -> None:
    """Whether ``doc`` may be linked to the request as its signed authorization."""
    check_open(request)
    if doc is None:
        raise RequestRefused(f"there is no document {doc_id} in the archive")
    if doc.status != "filed" or doc.mrn != request.mrn:
        raise RequestRefused(
            f"document {doc_id} is not a filed document of MRN {request.mrn}; "
            "link the authorization filed in this patient's archive"
        )
    if doc.doc_type != AUTHORIZATION_TYPE:
        raise RequestRefused(
            f"document {doc_id} is a {doc.doc_type}, not an authorization; if it is one, correct its type first"
        )
    if expires < today:
        raise RequestRefused(f"the authorization expired on {expires}; ask the requester for a current one")
    unknown = sorted(set(covers) - sensitive)
    if unknown:
        raise RequestRefused(
            f"{', '.join(unknown)} is not a sensitive type; the sensitive types are {', '.join(sorted(sensitive))}"
        )


def check_authorization(request: Request, doc: Sidecar | None, today: date) -> None:
    """A request whose rule needs an authorization has a current one of this patient linked."""
    auth = request.authorization
    if auth is None:
        if request.rule.get("needs_authorization"):
            raise RequestRefused(
                f"request {request.id} ({request.kind}) needs a signed authorization before it is fulfilled; "
                f"link it with `medarchive requests link-auth {request.id} DOC_ID --expires YYYY-MM-DD`; {NOTHING}"
            )
        return
    if date.fromisoformat(auth.expires) < today:
        raise RequestRefused(
            f"the authorization of request {request.id} (document {auth.doc_id}) expired on {auth.expires}; "
            f"link a current one; {NOTHING}"
        )
    if doc is None or doc.status != "filed" or doc.mrn != request.mrn or doc.doc_type != AUTHORIZATION_TYPE:
        raise RequestRefused(
            f"the authorization of request {request.id} (document {auth.doc_id}) is no longer a filed authorization "
            f"of MRN {request.mrn}; link the right one; {NOTHING}"
        )


def _specifically_authorized(request: Request) -> set[str]:
    return set(request.authorization.covers) if request.authorization else set()


def plan(request: Request, chosen: Iterable[Sidecar], sensitive: set[str]) -> Plan:
    """Split the documents the request covers into released and withheld (sensitive, not authorized)."""
    allowed = _specifically_authorized(request)
    named_types = set(request.ask.doc_types) & sensitive - allowed
    if named_types:
        raise RequestRefused(
            f"request {request.id} asks for {', '.join(sorted(named_types))}, a sensitive type that needs an "
            f"authorization naming it specifically (link-auth --covers TYPE); {NOTHING}"
        )
    release: list[Sidecar] = []
    withheld: list[Sidecar] = []
    for sidecar in chosen:
        (withheld if sidecar.doc_type in sensitive - allowed else release).append(sidecar)
    named = [s.doc_id for s in withheld if s.doc_id in request.ask.doc_ids]
    if named:
        raise RequestRefused(
            f"request {request.id} names document {', '.join(named)} of a sensitive type that needs an "
            f"authorization naming it specifically (link-auth --covers TYPE); {NOTHING}"
        )
    return Plan(tuple(release), tuple(withheld))


def sensitive_types(types: dict) -> set[str]:
    """The document types the config marks sensitive."""
    return {name for name, rule in types.items() if rule.sensitive}
