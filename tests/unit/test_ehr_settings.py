"""EHR credentials are kept secret: private secret files, no plain-HTTP credentials, no password in base_url."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.config import load_config
from pipeline.core.errors import MedarchiveError
from pipeline.ehr.settings import FhirAuth
from tests.conftest import write_config

PASSWORD = "hunter2-Sekret"


def _fhir(**overrides) -> dict:
    return {
        "name": "ehr",
        "kind": "fhir",
        "base_url": "https://fhir.example.org/r4",
        "patient_identifier_system": "urn:oid:1.2.3",
        **overrides,
    }


def _load(tmp_path: Path, **destination):
    return load_config(write_config(tmp_path, ehr={"destinations": [_fhir(**destination)]}))


def test_a_password_in_base_url_is_refused_without_repeating_it(tmp_path):
    with pytest.raises(MedarchiveError) as refused:
        _load(tmp_path, base_url=f"https://medarchive:{PASSWORD}@fhir.example.org/r4")
    message = str(refused.value)
    assert "must not carry a user name or password" in message and PASSWORD not in message


BASIC = {"type": "basic", "username": "medarchive", "secret_env": "EHR_SECRET"}


@pytest.mark.parametrize(
    ("destination", "plain"),
    [
        ({"base_url": "http://fhir.example.org/r4", "auth": BASIC}, "http://fhir.example.org/r4"),
        (
            {
                "auth": {
                    "type": "oauth2",
                    "token_url": "http://login.example.org/token",
                    "client_id": "medarchive",
                    "secret_env": "EHR_SECRET",
                }
            },
            "http://login.example.org/token",
        ),
    ],
)
def test_credentials_over_plain_http_are_refused(tmp_path, destination, plain):
    with pytest.raises(MedarchiveError, match="allow_insecure_http") as refused:
        _load(tmp_path, **destination)
    assert plain in str(refused.value)


def test_plain_http_is_allowed_for_a_test_host_when_said_so_or_without_credentials(tmp_path):
    allowed = _load(tmp_path, base_url="http://127.0.0.1:9/fhir", auth=BASIC, allow_insecure_http=True)
    assert allowed.ehr.destinations[0].allow_insecure_http
    assert _load(tmp_path, base_url="http://127.0.0.1:9/fhir").ehr.enabled
    assert _load(tmp_path, auth=BASIC).ehr.enabled  # https


def test_a_secret_file_others_can_read_is_refused(tmp_path):
    secret = tmp_path / "fhir.secret"
    secret.write_text("s3cret\n")
    auth = FhirAuth(type="bearer", secret_file=Path("fhir.secret"))
    secret.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600") as refused:
        auth.read_secret(tmp_path)
    assert "s3cret" not in str(refused.value)
    secret.chmod(0o600)
    assert auth.read_secret(tmp_path) == "s3cret"
