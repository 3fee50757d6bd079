"""The Requests pages (Flask test client): the queue, logging a request, linking an authorization,
refusals shown on the page, fulfilling to a zip, denial letters, the report chart, and who may see them."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile

import pikepdf
import pytest

from pipeline.archive.audit import AuditFilters, AuditLog
from pipeline.archive.index import open_index
from pipeline.archive.sidecar import Sidecar
from pipeline.archive.store import doc_id_for, record_from_sidecar, write_document
from pipeline.core.config import Config
from pipeline.core.models import Classification, Decision, Document, Identifiers, MrnCandidate, PageText
from tests.web.fixtures import app_for, csrf_of, data_site, filed, logged_in, site_config


def add_authorization(config: Config, mrn: str, seed: int = 1) -> Sidecar:
    """File a one-page signed authorization for ``mrn`` and index it, as an ingest would."""
    source = config.root.parent / "authorization-source.pdf"
    if not source.exists():
        with pikepdf.new() as pdf:
            pdf.add_blank_page()
            pdf.save(source)
    sha = hashlib.sha256(f"authorization-{seed}".encode()).hexdigest()
    doc = Document(
        doc_id=doc_id_for(sha, 1),
        source_file=f"authorization-{seed}.pdf",
        source_pages=[1],
        sha256=sha,
        pages=[PageText(1, f"AUTHORIZATION FOR RELEASE OF INFORMATION MRN {mrn} I authorize", "text-layer")],
        identifiers=Identifiers([MrnCandidate(mrn, mrn, "MRN", 1, 0)], None, None, "2025-12-01"),
        classification=Classification("authorization", 0.95),
        decision=Decision("filed", mrn),
    )
    sidecar = write_document(config, doc, source)
    index = open_index(config)
    index.add([record_from_sidecar(sidecar)])
    index.close()
    return sidecar


@pytest.fixture
def site(tmp_path_factory):
    config = site_config(data_site(tmp_path_factory))
    mrn = next(m for m in sorted({s["mrn"] for s in filed(config)}) if sum(s["mrn"] == m for s in filed(config)) >= 2)
    auth = add_authorization(config, mrn)
    return config, app_for(config), mrn, auth


def _log(client, mrn: str, **fields) -> int:
    page = client.get("/requests")
    data = {
        "csrf_token": csrf_of(page.text),
        "mrn": mrn,
        "kind": "attorney",
        "requester": "Lee Law",
        "org": "Lee & Partners",
        "purpose": "claim",
        "channel": "fax",
        "everything": "on",
        **fields,
    }
    response = client.post("/requests", data=data)
    assert response.status_code == 302, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_only_release_and_admin_see_requests(site):
    _, app, _, _ = site
    assert logged_in(app, "cal").get("/requests").status_code == 403
    assert logged_in(app, "rey").get("/requests").status_code == 200
    assert "Requests</a>" in logged_in(app, "ada").get("/requests").text


def test_a_request_is_logged_refused_without_authorization_then_fulfilled(site):
    config, app, mrn, auth = site
    client = logged_in(app, "rey")
    bad = client.post(
        "/requests",
        data={
            "csrf_token": csrf_of(client.get("/requests").text),
            "mrn": "00999999",
            "kind": "patient",
            "requester": "x",
            "purpose": "y",
            "everything": "on",
        },
    )
    assert bad.status_code == 400 and "MRN 00999999 is not a patient" in bad.text
    request_id = _log(client, mrn)
    page = client.get(f"/requests/{request_id}").text
    assert "needs a signed authorization" in page and auth.doc_id in page  # offered in the picker
    token = csrf_of(page)
    refused = client.post(f"/requests/{request_id}/fulfil", data={"csrf_token": token})
    assert refused.status_code == 400 and "nothing was released" in refused.text
    assert not list(AuditLog.for_config(config).entries(AuditFilters(action="export")))
    linked = client.post(
        f"/requests/{request_id}/link-auth", data={"csrf_token": token, "doc": auth.doc_id, "expires": "2999-12-31"}
    )
    assert linked.status_code == 302
    page = client.get(f"/requests/{request_id}").text
    assert f"/doc/{auth.doc_id}/page/1.png?size=preview" in page
    expected = {s["doc_id"] for s in filed(config) if s["mrn"] == mrn}
    assert set(re.findall(r'href="/doc/([0-9a-f]{16}-\d+)">\1</a></td><td>\d+</td><td>released', page)) == expected
    response = client.post(f"/requests/{request_id}/fulfil", data={"csrf_token": token})
    assert response.status_code == 200 and response.mimetype == "application/zip"
    package = zipfile.ZipFile(io.BytesIO(response.data))
    response.close()
    manifest = json.loads(package.read("manifest.json"))
    assert {d["doc_id"] for d in manifest["documents"]} == expected
    assert manifest["request"].startswith(f"REQ-{request_id}")
    done = client.get(f"/requests/{request_id}").text
    assert "fulfilled" in done and manifest["release_id"] in done


def test_a_denial_gives_a_letter_and_the_report_draws_a_chart(site):
    config, app, mrn, _ = site
    client = logged_in(app, "rey")
    request_id = _log(client, mrn, kind="patient")
    token = csrf_of(client.get(f"/requests/{request_id}").text)
    denied = client.post(f"/requests/{request_id}/deny", data={"csrf_token": token, "reason": "identity_not_verified"})
    assert denied.status_code == 302
    letter = client.get(f"/requests/{request_id}/letter")
    assert letter.status_code == 200 and letter.data.startswith(b"%PDF")
    letter.close()
    report = client.get("/requests/report").text
    assert "<svg" in report and "patient: 1 denied" in report and "<script" not in report
    actions = {e["action"] for e in AuditLog.for_config(config).entries(AuditFilters(user="rey"))}
    assert {"request.add", "request.show", "request.deny", "request.letter", "request.report"} <= actions


def test_unknown_requests_and_bad_input_are_answered_in_words(site):
    config, app, mrn, _ = site
    client = logged_in(app, "rey")
    missing = client.get("/requests/9999")
    assert missing.status_code == 404 and "there is no request 9999" in missing.text
    assert client.get("/requests/9999/letter").status_code == 404
    request_id = _log(client, mrn, kind="legal")  # charged at actual cost by default
    token = csrf_of(client.get(f"/requests/{request_id}").text)
    assert client.post("/requests/9999/withdraw", data={"csrf_token": token, "note": "x"}).status_code == 404
    for fee in ("inf", "1e400", "nan", "twelve"):
        refused = client.post(f"/requests/{request_id}/fulfil", data={"csrf_token": token, "fee": fee})
        assert refused.status_code == 400 and "not an amount" in refused.text, (fee, refused.text[:300])
    denied = client.post(f"/requests/{request_id}/deny", data={"csrf_token": token, "reason": "no_such_reason"})
    assert denied.status_code == 400 and "unknown denial reason" in denied.text
    assert client.get(f"/requests/{request_id}/letter").status_code == 404  # no letter: nothing was denied
    backwards = client.get("/requests/report?from=2026-02-01&to=2026-01-01")
    assert backwards.status_code == 400 and "is after" in backwards.text
    assert not list(AuditLog.for_config(config).entries(AuditFilters(action="export")))


def test_a_request_for_named_documents_releases_only_those(site):
    config, app, mrn, _ = site
    client = logged_in(app, "rey")
    mine = sorted(s["doc_id"] for s in filed(config) if s["mrn"] == mrn)
    theirs = next(s["doc_id"] for s in filed(config) if s["mrn"] != mrn)
    page = client.get("/requests")
    form = {"csrf_token": csrf_of(page.text), "mrn": mrn, "kind": "patient", "requester": "Jo", "purpose": "own copy"}
    refused = client.post("/requests", data={**form, "docs": theirs})
    assert refused.status_code == 400 and f"document {theirs} is not a document of MRN {mrn}" in refused.text
    request_id = _log(client, mrn, kind="patient", everything="", docs=mine[0])
    item = client.get(f"/requests/{request_id}").text
    assert re.findall(r'href="/doc/([0-9a-f]{16}-\d+)">\1</a></td><td>\d+</td><td>released', item) == [mine[0]]
