"""The `ehr:` section of config.yaml: where filed documents are sent, and how.

Off by default (no destinations). Each destination is a FHIR R4 server or an HL7 v2
MLLP receiver; ``document_codes`` maps our document types to LOINC codes, the same
for every destination.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# LOINC document codes (code, display) for the default taxonomy. "Note" (34109-9) is
# the generic code for what the classifier could not type.
DEFAULT_DOCUMENT_CODES: dict[str, tuple[str, str]] = {
    "discharge_summary": ("18842-5", "Discharge summary"),
    "history_physical": ("34117-2", "History and physical note"),
    "progress_note": ("11506-3", "Progress note"),
    "consultation": ("11488-4", "Consult note"),
    "operative_report": ("11504-8", "Surgical operation note"),
    "radiology_report": ("18748-4", "Diagnostic imaging study"),
    "lab_result": ("11502-2", "Laboratory report"),
    "pathology_report": ("11526-1", "Pathology study"),
    "referral_letter": ("57133-1", "Referral note"),
    "consent_form": ("59284-0", "Patient Consent"),
    "prescription": ("57833-6", "Prescription for medication"),
    "insurance_billing": ("48768-6", "Payment sources Document"),
    "unclassified": ("34109-9", "Note"),
}
_LOINC = re.compile(r"^\d{1,7}-\d$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SecretSource(_Section):
    """A secret is never written in config.yaml: it is read from a file (0600) or an environment variable."""

    secret_file: Path | None = Field(None, description="file holding the secret (first line)")
    secret_env: str | None = Field(None, description="environment variable holding the secret")

    @model_validator(mode="after")
    def _one_source(self):
        if self.secret_file is not None and self.secret_env is not None:
            raise ValueError("give secret_file or secret_env, not both")
        return self

    def read_secret(self, base: Path) -> str | None:
        """The secret, or None when no source is configured; ``base`` resolves a relative file."""
        if self.secret_env is not None:
            value = os.environ.get(self.secret_env)
            if not value:
                raise ValueError(f"environment variable {self.secret_env} (the EHR secret) is not set")
            return value
        if self.secret_file is not None:
            path = self.secret_file if self.secret_file.is_absolute() else base / self.secret_file
            try:
                return path.read_text(encoding="utf-8").splitlines()[0].strip()
            except (OSError, IndexError) as exc:
                raise ValueError(f"cannot read the EHR secret from {path}: {exc or 'empty file'}") from None
        return None


class FhirAuth(SecretSource):
    """none | basic (username + secret) | bearer (secret = token) | oauth2 client credentials."""

    type: Literal["none", "basic", "bearer", "oauth2"] = "none"
    username: str | None = Field(None, description="basic: the user name")
    token_url: str | None = Field(None, description="oauth2: the token endpoint")
    client_id: str | None = Field(None, description="oauth2: the client id (the secret is the client secret)")
    scope: str | None = Field(None, description="oauth2: requested scope, e.g. system/DocumentReference.write")

    @model_validator(mode="after")
    def _complete(self):
        needs = {"basic": ["username"], "oauth2": ["token_url", "client_id"]}.get(self.type, [])
        missing = [name for name in needs if not getattr(self, name)]
        if missing:
            raise ValueError(f"auth type {self.type} needs {', '.join(missing)}")
        if self.type != "none" and self.secret_file is None and self.secret_env is None:
            raise ValueError(f"auth type {self.type} needs secret_file or secret_env")
        return self


class TlsSettings(_Section):
    enabled: bool = False
    ca_file: Path | None = Field(None, description="CA bundle that signed the receiver's certificate (default: system)")
    cert_file: Path | None = Field(None, description="our client certificate, when the receiver asks for one")
    key_file: Path | None = None


class _Destination(_Section):
    name: str
    timeout_seconds: float = Field(30, gt=0, description="connect/answer timeout of one send")

    @field_validator("name")
    @classmethod
    def _plain(cls, value):
        if not _NAME.match(value):
            raise ValueError(f"{value!r}: use letters, digits, '.', '_' or '-'")
        return value


class FhirDestination(_Destination):
    kind: Literal["fhir"]
    base_url: str = Field(description="the FHIR R4 base, e.g. https://fhir.example.org/r4")
    auth: FhirAuth = Field(default_factory=FhirAuth)
    patient_identifier_system: str = Field(description="the hospital's MRN system, e.g. urn:oid:1.2.3.4.5")
    document_identifier_system: str = Field(
        "urn:medarchive:doc-id", description="system of the DocumentReference identifier that carries our doc_id"
    )
    content: Literal["inline", "binary"] = Field(
        "inline", description="PDF inside the DocumentReference, or as a Binary it points to"
    )
    category: str = Field("clinical-note", description="US Core DocumentReference category code")
    author_reference: str | None = Field(None, description="e.g. Organization/123 or Device/scanner")
    author_display: str | None = None
    custodian_reference: str | None = Field(None, description="e.g. Organization/123 (the hospital)")
    custodian_display: str | None = None
    verify_tls: bool = True
    ca_file: Path | None = Field(None, description="CA bundle for an https base_url with a private CA")

    @field_validator("base_url")
    @classmethod
    def _http(cls, value):
        if not re.match(r"^https?://", value):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")


class Hl7Destination(_Destination):
    kind: Literal["hl7v2"]
    host: str
    port: int = Field(ge=1, le=65535)
    sending_application: str = "MEDARCHIVE"
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    assigning_authority: str = Field("", description="PID-3.4: the authority that issued the MRNs")
    processing_id: Literal["P", "T", "D"] = Field("P", description="MSH-11: production, training or debugging")
    tls: TlsSettings = Field(default_factory=TlsSettings)


Destination = Annotated[FhirDestination | Hl7Destination, Field(discriminator="kind")]


class RetrySettings(_Section):
    first_seconds: float = Field(5, gt=0, description="wait after the first failed attempt")
    max_seconds: float = Field(3600, gt=0, description="the wait doubles after each failure up to this")
    max_attempts: int = Field(0, ge=0, description="then the message is dead; 0 = retry without end")


class EhrSettings(_Section):
    """Hand-off of filed documents to the EHR. No destinations = nothing is queued."""

    destinations: list[Destination] = Field(default_factory=list)
    document_codes: dict[str, str] = Field(
        default_factory=lambda: {t: code for t, (code, _) in DEFAULT_DOCUMENT_CODES.items()},
        description="document type -> LOINC code; types left out keep the defaults",
    )
    retry: RetrySettings = Field(default_factory=RetrySettings)
    poll_seconds: float = Field(2, gt=0, description="how often the sender in `watch` looks for new messages")

    @field_validator("document_codes")
    @classmethod
    def _loinc(cls, value):
        for doc_type, code in value.items():
            if not _LOINC.match(code):
                raise ValueError(f"{doc_type}: {code!r} is not a LOINC code (digits, a dash, a check digit)")
        return {**{t: code for t, (code, _) in DEFAULT_DOCUMENT_CODES.items()}, **value}

    @field_validator("destinations")
    @classmethod
    def _unique(cls, value):
        names = [d.name for d in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"destination names must be unique: {', '.join(twice)}")
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.destinations)

    def code_for(self, doc_type: str) -> tuple[str, str]:
        """(LOINC code, display) for a document type; unknown types get the generic note code."""
        code = self.document_codes.get(doc_type) or self.document_codes["unclassified"]
        known = dict(DEFAULT_DOCUMENT_CODES.values())
        return code, known.get(code, doc_type.replace("_", " "))

    def destination(self, name: str) -> FhirDestination | Hl7Destination | None:
        return next((d for d in self.destinations if d.name == name), None)
