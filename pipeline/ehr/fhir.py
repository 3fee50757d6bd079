"""FHIR R4 destination: a DocumentReference per filed document, created at most once.

The DocumentReference carries our document number as its identifier and is posted as
a conditional create (``If-None-Exist``), so sending it again after a crash finds the
first one instead of making a second. The subject is the EHR's Patient with the MRN as
identifier: when the EHR has no such patient the message is dead with that reason
(creating patients is registration's job, and a guessed one would be a duplicate record).
Corrections mark the old DocumentReference ``entered-in-error``; the new one ``replaces`` it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.documentreference import DocumentReference

from pipeline.core.clock import now_utc
from pipeline.core.errors import MedarchiveError
from pipeline.ehr.outbox import Delivery, Message, document_number
from pipeline.ehr.settings import EhrSettings, FhirDestination

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
LOINC = "http://loinc.org"
CATEGORY_SYSTEM = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
# Answers that say "not now" rather than "never": the same message may succeed later.
# 401/403 are the destination's credentials, not the message: fixing the config drains the queue.
TRANSIENT = {401, 403, 408, 425, 429}
_ANSWER_CHARS = 500


class FhirSetupError(MedarchiveError):
    """Credentials could not be obtained (wrong secret source, token endpoint refused)."""


def _reference(reference: str | None, display: str | None) -> dict | None:
    if not reference and not display:
        return None
    return {k: v for k, v in {"reference": reference, "display": display}.items() if v}


def document_reference(
    dest: FhirDestination,
    codes: EhrSettings,
    message: Message,
    pdf: bytes,
    *,
    patient_id: str,
    binary_id: str | None,
    replaces_id: str | None,
) -> dict:
    """The DocumentReference for a create message, validated against the R4B model."""
    p = message.payload
    code, display = codes.code_for(p["doc_type"])
    number = document_number(message.doc_id, message.version)
    attachment = {
        "contentType": "application/pdf",
        "size": len(pdf),
        "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode("ascii"),
        "title": f"{p['doc_type']} {p.get('doc_date') or 'undated'} ({message.doc_id})",
    }
    if binary_id is None:
        attachment["data"] = base64.b64encode(pdf).decode("ascii")
    else:
        attachment["url"] = f"Binary/{binary_id}"
    resource = {
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": dest.document_identifier_system, "value": number},
        "identifier": [{"system": dest.document_identifier_system, "value": number}],
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": p["doc_type"]},
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": dest.category}]}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": now_utc(),
        "description": f"Scanned paper record {message.doc_id}, {p.get('pages', 0)} page(s)",
        "content": [{"attachment": attachment}],
    }
    if author := _reference(dest.author_reference, dest.author_display):
        resource["author"] = [author]
    if custodian := _reference(dest.custodian_reference, dest.custodian_display):
        resource["custodian"] = custodian
    if p.get("doc_date"):
        resource["context"] = {"period": {"start": p["doc_date"]}}
    if replaces_id:
        resource["relatesTo"] = [{"code": "replaces", "target": {"reference": f"DocumentReference/{replaces_id}"}}]
    return _validated(DocumentReference, resource)


def binary(pdf: bytes) -> dict:
    return _validated(
        Binary,
        {"resourceType": "Binary", "contentType": "application/pdf", "data": base64.b64encode(pdf).decode("ascii")},
    )


def _validated(model, resource: dict) -> dict:
    model.model_validate(resource)  # raises on anything the R4B model does not allow
    return resource


def _answer(response: httpx.Response) -> str:
    """The receiver's answer, short: its OperationOutcome diagnostics when it sent one."""
    text = response.text
    try:
        body = response.json()
        issues = body.get("issue", []) if isinstance(body, dict) else []
        text = (
            "; ".join(i.get("diagnostics") or i.get("details", {}).get("text") or i.get("code", "") for i in issues)
            or text
        )
    except ValueError:
        pass
    return f"HTTP {response.status_code}: {' '.join(text.split())[:_ANSWER_CHARS]}"


class _Refused(Exception):
    def __init__(self, delivery: Delivery) -> None:
        super().__init__(delivery.detail)
        self.delivery = delivery


class _Credentials:
    """Turns the destination's auth settings into an Authorization header (OAuth2 tokens cached)."""

    def __init__(self, dest: FhirDestination, config_dir: Path) -> None:
        self._auth = dest.auth
        self._config_dir = config_dir
        self._timeout = dest.timeout_seconds
        self._token: tuple[str, float] | None = None

    def header(self, client: httpx.Client) -> dict[str, str]:
        auth = self._auth
        if auth.type == "none":
            return {}
        secret = self._secret()
        if auth.type == "basic":
            raw = f"{auth.username}:{secret}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
        if auth.type == "bearer":
            return {"Authorization": f"Bearer {secret}"}
        return {"Authorization": f"Bearer {self._oauth2_token(client, secret)}"}

    def forget(self) -> None:
        self._token = None

    def _secret(self) -> str:
        try:
            return self._auth.read_secret(self._config_dir) or ""
        except ValueError as exc:
            raise FhirSetupError(str(exc)) from None

    def _oauth2_token(self, client: httpx.Client, secret: str) -> str:
        if self._token and self._token[1] > time.monotonic():
            return self._token[0]
        form = {"grant_type": "client_credentials", "client_id": self._auth.client_id, "client_secret": secret}
        if self._auth.scope:
            form["scope"] = self._auth.scope
        response = client.post(str(self._auth.token_url), data=form, timeout=self._timeout)  # oauth2 requires it
        if response.status_code != 200:
            raise FhirSetupError(f"the token endpoint refused our client credentials ({_answer(response)})")
        body = response.json()
        lifetime = float(body.get("expires_in", 300))
        self._token = (body["access_token"], time.monotonic() + max(0.0, lifetime - 30))
        return self._token[0]


class FhirClient:
    """Sends outbox messages to one FHIR destination over one HTTP connection pool."""

    def __init__(self, dest: FhirDestination, codes: EhrSettings, config_dir: Path) -> None:
        self.dest = dest
        self._codes = codes
        verify: bool | str = str(dest.ca_file) if dest.ca_file else dest.verify_tls
        self._http = httpx.Client(base_url=dest.base_url + "/", timeout=dest.timeout_seconds, verify=verify)
        self._credentials = _Credentials(dest, config_dir)
        self._patients: dict[str, str] = {}

    def close(self) -> None:
        self._http.close()

    def deliver(self, message: Message, pdf: Callable[[], bytes]) -> Delivery:
        try:
            if message.action == "cancel":
                return self._cancel(message)
            return self._create(message, pdf)
        except _Refused as refused:
            return refused.delivery
        except FhirSetupError as exc:
            return Delivery.retry(f"{self.dest.name}: {exc}")
        except httpx.TimeoutException:
            return Delivery.retry(f"{self.dest.name} did not answer within {self.dest.timeout_seconds:g} s")
        except httpx.TransportError as exc:
            return Delivery.retry(f"cannot reach {self.dest.name} at {self.dest.base_url}: {type(exc).__name__}: {exc}")

    # -- the two messages ----------------------------------------------------------------

    def _create(self, message: Message, pdf_bytes: Callable[[], bytes]) -> Delivery:
        patient_id = self._patient(message.mrn)
        pdf = pdf_bytes()
        replaces = message.payload.get("replaces")
        replaces_id = self._find_document(document_number(message.doc_id, replaces)) if replaces else None
        number = document_number(message.doc_id, message.version)
        binary_id = None
        if self.dest.content == "binary":
            # A send whose answer was lost already made the Binary too: look before making another.
            if existing := self._find_document(number):
                return Delivery.sent(f"DocumentReference/{existing} already present", existing)
            binary_id = self._post("Binary", binary(pdf))["id"]
        resource = document_reference(
            self.dest, self._codes, message, pdf, patient_id=patient_id, binary_id=binary_id, replaces_id=replaces_id
        )
        condition = f"identifier={self.dest.document_identifier_system}|{number}"
        created = self._post("DocumentReference", resource, {"If-None-Exist": condition})
        return Delivery.sent(f"DocumentReference/{created['id']}", created["id"])

    def _cancel(self, message: Message) -> Delivery:
        number = document_number(message.doc_id, message.version)
        found = self._search("DocumentReference", {"identifier": f"{self.dest.document_identifier_system}|{number}"})
        if not found:
            return Delivery.sent("nothing to cancel: the receiver has no such DocumentReference")
        resource = found[0]
        if resource.get("status") == "entered-in-error":
            return Delivery.sent(f"DocumentReference/{resource['id']} already entered-in-error", resource["id"])
        resource = {**resource, "status": "entered-in-error"}
        resource.pop("meta", None)
        _validated(DocumentReference, resource)
        updated = self._request("PUT", f"DocumentReference/{resource['id']}", json=resource)
        return Delivery.sent(f"DocumentReference/{updated['id']} set entered-in-error", updated["id"])

    # -- lookups -------------------------------------------------------------------------

    def _patient(self, mrn: str) -> str:
        if mrn in self._patients:
            return self._patients[mrn]
        system = self.dest.patient_identifier_system
        found = self._search("Patient", {"identifier": f"{system}|{mrn}"})
        if not found:
            raise _Refused(
                Delivery.dead(
                    f"{self.dest.name} has no Patient with identifier {system}|{mrn}; register the patient in the EHR "
                    "(or correct the document's MRN with `medarchive reassign`), then `medarchive ehr retry ID`"
                )
            )
        if len(found) > 1:
            raise _Refused(
                Delivery.dead(
                    f"{self.dest.name} has {len(found)} Patients with identifier {system}|{mrn}; "
                    "have the EHR's duplicates merged, then `medarchive ehr retry ID`"
                )
            )
        self._patients[mrn] = found[0]["id"]
        return found[0]["id"]

    def forget_patients(self) -> None:
        """Drop the MRN -> Patient cache (patients are merged and registered while we run)."""
        self._patients.clear()

    def _find_document(self, number: str) -> str | None:
        found = self._search("DocumentReference", {"identifier": f"{self.dest.document_identifier_system}|{number}"})
        return found[0]["id"] if found else None

    def _search(self, resource_type: str, params: dict) -> list[dict]:
        bundle = self._request("GET", resource_type, params=params)
        return [
            e["resource"] for e in bundle.get("entry", []) if e.get("resource", {}).get("resourceType") == resource_type
        ]

    def _post(self, resource_type: str, resource: dict, headers: dict | None = None) -> dict:
        return self._request("POST", resource_type, json=resource, headers=headers)

    def _request(self, method: str, path: str, *, headers: dict | None = None, **kwargs) -> dict:
        for attempt in (1, 2):
            sent_headers = {"Accept": FHIR_JSON, **self._credentials.header(self._http), **(headers or {})}
            if "json" in kwargs:
                sent_headers["Content-Type"] = FHIR_JSON
            response = self._http.request(method, path, headers=sent_headers, **kwargs)
            if response.status_code == 401 and attempt == 1 and self.dest.auth.type == "oauth2":
                self._credentials.forget()  # the token expired early: fetch a new one once
                continue
            break
        if response.is_success:
            return response.json()
        log.info("ehr: %s answered HTTP %d to %s %s", self.dest.name, response.status_code, method, path)
        if response.status_code >= 500 or response.status_code in TRANSIENT:
            raise _Refused(Delivery.retry(_answer(response)))
        raise _Refused(Delivery.dead(_answer(response)))
