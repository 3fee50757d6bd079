"""What the web pages show and do: search with pages and hit pages, patient, document, review, release, admin."""

from __future__ import annotations

import io
import json
import re
import stat
import zipfile

import pytest

from pipeline.archive.audit import AuditFilters, AuditLog
from pipeline.archive.derived import page_images_dir as cache_dir
from pipeline.archive.store import find_sidecar
from tests.web.fixtures import (
    app_for,
    csrf_of,
    data_site,
    filed,
    logged_in,
    site_config,
    waiting,
)
from web.users import UserStore


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return site_config(data_site(tmp_path_factory))


@pytest.fixture(scope="module")
def app(config):
    return app_for(config)


@pytest.fixture
def fresh(tmp_path_factory):
    """A site of its own, for tests that change the archive or the accounts."""
    config = site_config(data_site(tmp_path_factory))
    return config, app_for(config)


def _word_only_on_page_two(sidecar: dict) -> str | None:
    first, second = (p["text"].lower() for p in sidecar["page_texts"][:2])
    for word in sorted(set(re.findall(r"[a-z]{7,}", second))):
        if word[:5] not in first:
            return word
    return None


def test_search_shows_highlights_and_the_page_of_the_hit(app, config):
    doc = next(s for s in filed(config) if s["pages"] >= 2 and _word_only_on_page_two(s))
    word = _word_only_on_page_two(doc)
    page = logged_in(app, "cal").get(f"/?q={word}&mrn={doc['mrn']}").text
    row = next(li for li in page.split("<li>")[1:] if doc["doc_id"] in li)
    assert "<mark>" in row
    assert re.search(r"#page=2\">page 2<", row), row


def test_search_pages_through_results(app, config):
    client = logged_in(app, "cal")
    total = len(filed(config))
    seen = []
    for page in range(1, total):
        html = client.get(f"/?status=filed&page={page}").text
        ids = re.findall(r'class="title" href="/doc/([0-9a-f]{16}-\d+)"', html)
        seen += ids
        assert ('rel="next"' in html) == (len(seen) < total)
        if len(seen) == total:
            break
    assert sorted(seen) == sorted(s["doc_id"] for s in filed(config))


def test_search_filters_by_patient_name_and_type(app, config):
    doc = filed(config)[0]
    last = doc["patient_name"].split(",")[0]
    html = logged_in(app, "cal").get(f"/?name={last.lower()}&type={doc['doc_type']}").text
    ids = set(re.findall(r'class="title" href="/doc/([0-9a-f]{16}-\d+)"', html))
    assert doc["doc_id"] in ids
    assert all(find_sidecar(config, i).patient_name.startswith(last) for i in ids)


def test_search_refuses_bad_dates_and_syntax_with_a_message(app):
    client = logged_in(app, "cal")
    response = client.get("/?q=blood&from=31/12/2020")
    assert response.status_code == 400 and "YYYY-MM-DD" in response.text
    response = client.get("/?q=blood&type=recipe")
    assert response.status_code == 400 and "unknown document type" in response.text


def test_patient_page_groups_documents_by_type_newest_first(app, config):
    docs = [s for s in filed(config) if s["mrn"] == "29724825"] or filed(config)[:1]
    mrn = docs[0]["mrn"]
    html = logged_in(app, "cal").get(f"/patient/{mrn}").text
    assert docs[0]["patient_name"] in html and docs[0]["dob"] in html
    headings = re.findall(r"<h2>([^<]+)</h2>", html)
    assert sorted(headings) == sorted({d["doc_type"].replace("_", " ") for d in docs})
    assert all(d["doc_id"] in html for d in docs)


def test_document_page_has_metadata_history_thumbnails_and_the_pdf(app, config):
    doc = filed(config)[0]
    client = logged_in(app, "cal")
    html = client.get(f"/doc/{doc['doc_id']}").text
    assert doc["sha256"] in html and "filed" in html and f"/doc/{doc['doc_id']}/pdf" in html
    assert html.count(f"/doc/{doc['doc_id']}/page/") == doc["pages"]
    pdf = client.get(f"/doc/{doc['doc_id']}/pdf")
    assert pdf.data.startswith(b"%PDF") and pdf.mimetype == "application/pdf"
    download = client.get(f"/doc/{doc['doc_id']}/download")
    assert download.headers["Content-Disposition"].startswith("attachment") and download.data == pdf.data


def test_thumbnails_are_cached_privately(app, config):
    doc = filed(config)[0]
    client = logged_in(app, "cal")
    first = client.get(f"/doc/{doc['doc_id']}/page/1.png")
    assert first.status_code == 200 and first.data.startswith(b"\x89PNG")
    cached = list(cache_dir(config).glob(f"{doc['sha256']}-1-*.png"))
    assert len(cached) == 1
    assert stat.S_IMODE(cached[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(cache_dir(config).stat().st_mode) == 0o700
    mtime = cached[0].stat().st_mtime_ns
    assert client.get(f"/doc/{doc['doc_id']}/page/1.png").data == first.data
    assert cached[0].stat().st_mtime_ns == mtime


def test_review_item_is_assigned_in_one_form(fresh):
    config, app = fresh
    item = waiting(config)[0]
    client = logged_in(app, "cal")
    page = client.get(f"/review/{item['doc_id']}")
    assert item["review_reason"] in page.text and "size=preview" in page.text
    token = csrf_of(page.text)
    bad = client.post(
        f"/review/{item['doc_id']}", data={"csrf_token": token, "mrn": "12", "doc_type": item["doc_type"]}
    )
    assert bad.status_code == 400 and "does not look like an MRN" in bad.text
    response = client.post(
        f"/review/{item['doc_id']}", data={"csrf_token": token, "mrn": "00891787", "doc_type": "consultation"}
    )
    assert response.status_code == 302
    moved = find_sidecar(config, item["doc_id"])
    assert (moved.status, moved.mrn, moved.doc_type) == ("filed", "00891787", "consultation")
    assert moved.history[-1].by == "cal" and moved.history[-1].action == "review.assign"
    assert f"Filed {item['doc_id']}" in client.get("/review").text
    assert item["doc_id"] in client.get("/patient/00891787").text  # the index knows it too
    assert list(
        AuditLog.for_config(config).entries(AuditFilters(user="cal", action="review.assign", doc_id=item["doc_id"]))
    )


def test_release_makes_a_zip_and_records_the_disclosure(fresh, tmp_path):
    config, app = fresh
    doc = filed(config)[0]
    client = logged_in(app, "rey")
    form = client.get(f"/release?mrn={doc['mrn']}")
    assert doc["doc_id"] in form.text
    token = csrf_of(form.text)
    missing = client.post(
        "/release", data={"csrf_token": token, "mrn": doc["mrn"], "requester": "Dr. Who", "purpose": " "}
    )
    assert missing.status_code == 400 and "purpose" in missing.text
    response = client.post(
        "/release",
        data={
            "csrf_token": token,
            "mrn": doc["mrn"],
            "requester": "Dr. Who",
            "purpose": "continuing care",
            "type": [doc["doc_type"]],
        },
    )
    assert response.status_code == 200 and response.mimetype == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    response.close()
    assert {"manifest.json", "manifest.csv", "cover_sheet.pdf"} <= set(names)
    assert any(doc["doc_id"] in name for name in names)
    exports = list(AuditLog.for_config(config).entries(AuditFilters(user="rey", action="export")))
    assert exports and exports[-1]["details"]["requester"] == "Dr. Who"


def test_release_of_the_ticked_documents_only(fresh):
    config, app = fresh
    mrn = next(m for m in sorted({s["mrn"] for s in filed(config)}) if sum(s["mrn"] == m for s in filed(config)) >= 2)
    wanted, left = [s["doc_id"] for s in filed(config) if s["mrn"] == mrn][:2]
    stranger = next(s["doc_id"] for s in filed(config) if s["mrn"] != mrn)
    client = logged_in(app, "rey")
    form = client.get(f"/release?mrn={mrn}").text
    assert re.findall(r'name="doc" value="([^"]+)"', form).count(wanted) == 1
    fields = {"csrf_token": csrf_of(form), "mrn": mrn, "requester": "Dr. Who", "purpose": "continuing care"}
    stray = client.post("/release", data={**fields, "doc": [wanted, stranger]})
    assert stray.status_code == 400 and stranger in stray.text and f"not a document of MRN {mrn}" in stray.text
    assert re.search(rf'value="{wanted}"[^>]*checked', stray.text)  # the ticks survive the error
    response = client.post("/release", data={**fields, "doc": [wanted]})
    assert response.status_code == 200 and response.mimetype == "application/zip"
    package = zipfile.ZipFile(io.BytesIO(response.data))
    response.close()
    assert any(wanted in n for n in package.namelist()) and not any(left in n for n in package.namelist())
    assert json.loads(package.read("manifest.json"))["criteria"]["doc_ids"] == [wanted]
    export = list(AuditLog.for_config(config).entries(AuditFilters(user="rey", action="export")))[-1]
    assert export["doc_ids"] == [wanted] and export["details"]["criteria"]["doc_ids"] == [wanted]


def test_admin_changes_roles_but_never_of_the_last_admin(fresh):
    config, app = fresh
    store = UserStore.for_config(config)
    client = logged_in(app, "ada")
    token = csrf_of(client.get("/admin/users").text)
    assert client.post("/admin/users/cal", data={"change": "role", "role": "admin"}).status_code == 400  # no CSRF token
    clerk = logged_in(app, "cal")
    own = clerk.post(
        "/admin/users/cal", data={"csrf_token": csrf_of(clerk.get("/").text), "change": "role", "role": "admin"}
    )
    assert own.status_code == 403
    assert store.get("cal").role == "clerk"
    assert (
        client.post("/admin/users/cal", data={"csrf_token": token, "change": "role", "role": "release"}).status_code
        == 302
    )
    assert store.get("cal").role == "release"
    assert logged_in(app, "cal").get("/release").status_code == 200
    bogus = client.post("/admin/users/cal", data={"csrf_token": token, "change": "role", "role": "boss"})
    assert bogus.status_code == 400 and "unknown role" in bogus.text
    last = client.post("/admin/users/ada", data={"csrf_token": token, "change": "role", "role": "clerk"})
    assert last.status_code == 400 and "last enabled admin" in last.text and store.get("ada").role == "admin"
    roles = [e["details"] for e in AuditLog.for_config(config).entries(AuditFilters(user="ada", action="user.role"))]
    assert roles == [{"name": "cal", "role": "release"}]


def test_admin_adds_disables_and_resets_users(fresh):
    config, app = fresh
    client = logged_in(app, "ada")
    token = csrf_of(client.get("/admin/users").text)
    short = client.post("/admin/users", data={"csrf_token": token, "name": "dee", "role": "clerk", "password": "short"})
    assert short.status_code == 400 and "at least" in short.text
    assert (
        client.post(
            "/admin/users", data={"csrf_token": token, "name": "dee", "role": "clerk", "password": "dee-clerk-pass"}
        ).status_code
        == 302
    )
    store = UserStore.for_config(config)
    assert store.get("dee").role == "clerk"
    client.post("/admin/users/dee", data={"csrf_token": token, "change": "disable"})
    assert not store.get("dee").enabled
    client.post("/admin/users/dee", data={"csrf_token": token, "change": "password", "password": "dee-new-password"})
    assert store.authenticate("dee", "dee-new-password") is None  # still disabled
    client.post("/admin/users/dee", data={"csrf_token": token, "change": "enable"})
    assert store.authenticate("dee", "dee-new-password") is not None
    own = client.post("/admin/users/ada", data={"csrf_token": token, "change": "disable"})
    assert own.status_code == 400 and store.get("ada").enabled
    actions = [e["action"] for e in AuditLog.for_config(config).entries(AuditFilters(user="ada"))]
    assert {"user.add", "user.disable", "user.passwd", "user.enable"} <= set(actions)


def test_admin_reads_the_audit_log_and_that_is_audited(app, config):
    client = logged_in(app, "ada")
    html = client.get("/admin/audit?action=login").text
    assert "ada" in html and "login" in html
    assert client.get("/admin/audit?action=nonsense").status_code == 400
    assert list(AuditLog.for_config(config).entries(AuditFilters(user="ada", action="audit")))


def test_warm_up_reads_the_index_before_the_first_search(app, monkeypatch):
    import web.app as web_app
    from web.context import EXTENSION

    frozen = []
    monkeypatch.setattr(web_app.gc, "freeze", lambda: frozen.append(True))  # (not this test process's objects)
    caches = app.extensions[EXTENSION].index.engine.caches  # the app's own index (under the pipeline's errors)
    caches.clear()
    web_app.warm_up(app)
    assert frozen and caches.sorted_columns and caches.lengths and caches.norms
    assert "<mark>" in logged_in(app, "cal").get("/?q=patient").text
