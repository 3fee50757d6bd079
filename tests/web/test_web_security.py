"""The web interface's guards over HTTP: login, sessions, CSRF, lockout, roles, ids, audit, cookies."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest

from pipeline.archive.audit import AuditFilters, AuditLog
from tests.web.fixtures import (
    Clock,
    app_for,
    csrf_of,
    data_site,
    filed,
    logged_in,
    login,
    site_config,
    waiting,
)
from web.auth import COOKIE
from web.users import UserStore


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return data_site(tmp_path_factory)


@pytest.fixture(scope="module")
def config(site):
    return site_config(site)


@pytest.fixture(scope="module")
def doc(config) -> dict:
    return filed(config)[0]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(config, clock):
    return app_for(config, clock)


def _data_urls(doc: dict, review_id: str) -> list[str]:
    d = doc["doc_id"]
    return [
        "/",
        "/?q=blood",
        f"/patient/{doc['mrn']}",
        f"/doc/{d}",
        f"/doc/{d}/pdf",
        f"/doc/{d}/download",
        f"/doc/{d}/page/1.png",
        "/review",
        f"/review/{review_id}",
        f"/release?mrn={doc['mrn']}",
        "/admin/users",
        "/admin/audit",
        "/no/such/page",
    ]


def test_every_data_url_without_a_session_redirects_to_login(app, config, doc):
    client = app.test_client()
    for url in _data_urls(doc, waiting(config)[0]["doc_id"]):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.location.startswith("/login"), url
        # Only the redirect: no name, no date of birth, no text of any document.
        assert doc["patient_name"] not in response.text and doc["dob"] not in response.text


def test_a_forged_or_stale_cookie_is_no_session(app, doc):
    client = app.test_client()
    client.set_cookie(COOKIE, "made-up-session-id")
    assert client.get(f"/doc/{doc['doc_id']}").status_code == 302


@pytest.mark.parametrize(
    "url",
    [
        "/doc/..%2F..%2Fconfig.yaml",
        "/doc/%2e%2e%2f%2e%2e%2fconfig.yaml",
        "/doc/../../config.yaml",
        "/doc/..%252Fconfig.yaml",
        "/doc/ffffffffffffffff-1",
        "/doc/ffffffffffffffff-1/pdf",
        "/doc/FFFFFFFFFFFFFFFF-1",
        "/doc/ffffffffffffffff-1;rm",
        "/doc/archive%2F00891787",
        "/patient/..%2Fweb",
        "/patient/not-an-mrn",
        "/patient/99999999",
        "/review/ffffffffffffffff-1",
    ],
)
def test_traversal_and_unknown_ids_are_not_found(app, url):
    client = logged_in(app, "cal")
    response = client.get(url)
    assert response.status_code == 404, (url, response.status_code)
    assert "data_root" not in response.text


def test_page_images_only_for_pages_the_document_has(app, doc):
    client = logged_in(app, "cal")
    assert client.get(f"/doc/{doc['doc_id']}/page/{doc['pages'] + 1}.png").status_code == 404
    assert client.get(f"/doc/{doc['doc_id']}/page/0.png").status_code == 404
    assert client.get(f"/doc/{doc['doc_id']}/page/1.png?size=poster").status_code == 404


def test_a_post_without_the_csrf_token_is_rejected(app, config):
    client = logged_in(app, "cal")
    item = waiting(config)[0]
    for token in ({}, {"csrf_token": "wrong"}):
        response = client.post(f"/review/{item['doc_id']}", data={"mrn": "00891787", **token})
        assert response.status_code == 400
    assert item["doc_id"] in {s["doc_id"] for s in waiting(config)}
    assert client.post("/logout").status_code == 400
    assert client.get("/review").status_code == 200  # still logged in


def test_login_itself_needs_the_csrf_token(app):
    client = app.test_client()
    client.get("/login")
    response = client.post("/login", data={"name": "cal", "password": "cal-clerk-pass"})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_a_disabled_user_cannot_log_in_and_is_logged_out(app, config):
    store = UserStore.for_config(config)
    client = logged_in(app, "cal")
    try:
        store.set_enabled("cal", False)
        assert client.get("/").status_code == 302
        assert login(app.test_client(), "cal").status_code == 401
    finally:
        store.set_enabled("cal", True)
    assert login(app.test_client(), "cal").status_code == 302


def test_failed_logins_lock_out_the_user_at_that_address(app, config, clock):
    client = app.test_client()
    for _ in range(config.web.login_attempts):
        assert login(client, "rey", "wrong password!", address="10.0.0.7").status_code == 401
    assert login(client, "rey", address="10.0.0.7").status_code == 429  # even the right password
    assert login(app.test_client(), "rey", address="10.0.0.8").status_code == 302  # another address
    clock.advance(config.web.lockout_minutes + 1)
    assert login(client, "rey", address="10.0.0.7").status_code == 302
    entries = list(AuditLog.for_config(config).entries(AuditFilters(user="rey", action="login.failed")))
    assert {e["outcome"] for e in entries} >= {"refused", "locked out"}


@pytest.mark.parametrize("trusted", [True, False])
def test_the_forwarded_client_address_counts_only_behind_a_trusted_proxy(config, clock, trusted):
    web = config.web.model_copy(update={"trusted_proxy": trusted})
    app = app_for(config.model_copy(update={"web": web}), clock)
    trail = AuditLog.for_config(config)
    before = len(list(trail.entries(AuditFilters(user="rey", action="login.failed"))))
    client = app.test_client()
    for _ in range(config.web.login_attempts):
        # The leftmost address is the client's own claim; one hop trusts only what the proxy added.
        assert login(client, "rey", "wrong password!", forwarded_for="198.51.100.1, 203.0.113.7").status_code == 401
    # Another client behind the proxy; without trust, the same client forging the header.
    other = login(app.test_client(), "rey", forwarded_for="203.0.113.8")
    assert other.status_code == (302 if trusted else 429)
    failed = list(trail.entries(AuditFilters(user="rey", action="login.failed")))[before:]
    assert {e["details"]["address"] for e in failed} == {"203.0.113.7" if trusted else "127.0.0.1"}
    if trusted:
        assert list(trail.entries(AuditFilters(user="rey", action="login")))[-1]["details"]["address"] == "203.0.113.8"


def test_roles_guard_release_and_admin(app, doc):
    clerk, release, admin = logged_in(app, "cal"), logged_in(app, "rey"), logged_in(app, "ada")
    for url in ("/release", "/admin/users", "/admin/audit"):
        assert clerk.get(url).status_code == 403, url
    token = csrf_of(clerk.get("/").text)
    assert (
        clerk.post(
            "/release", data={"csrf_token": token, "mrn": doc["mrn"], "requester": "x", "purpose": "y"}
        ).status_code
        == 403
    )
    assert (
        clerk.post(
            "/admin/users", data={"csrf_token": token, "name": "eve", "role": "admin", "password": "eve-password-1"}
        ).status_code
        == 403
    )
    assert release.get("/release").status_code == 200
    assert release.get("/admin/users").status_code == 403
    assert admin.get("/admin/audit").status_code == 200
    assert "Release" not in clerk.get("/").text.split("</nav>")[0]


def test_each_view_is_in_the_audit_log_with_the_user(app, config, doc):
    client = logged_in(app, "cal")
    d, mrn = doc["doc_id"], doc["mrn"]
    seen = {
        "view": [f"/doc/{d}", f"/doc/{d}/pdf", f"/doc/{d}/page/1.png"],
        "download": [f"/doc/{d}/download"],
        "patient": [f"/patient/{mrn}"],
        "search": [f"/?mrn={mrn}"],
    }
    trail = AuditLog.for_config(config)
    for action, urls in seen.items():
        before = len(list(trail.entries(AuditFilters(user="cal", action=action, doc_id=d))))
        for url in urls:
            assert client.get(url).status_code == 200, url
        after = list(trail.entries(AuditFilters(user="cal", action=action, doc_id=d)))
        assert len(after) - before == len(urls), action
        assert mrn in after[-1]["mrns"]
    item = waiting(config)[0]["doc_id"]
    client.get(f"/review/{item}")
    assert list(trail.entries(AuditFilters(user="cal", action="review.view", doc_id=item)))
    assert list(trail.entries(AuditFilters(user="cal", action="login")))


def _cookie(response) -> SimpleCookie:
    header = next(h for h in response.headers.get_all("Set-Cookie") if h.startswith(COOKIE))
    return SimpleCookie(header)[COOKIE], header


def test_session_cookie_flags(app, config, site):
    morsel, header = _cookie(app.test_client().get("/login"))
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and not morsel["secure"]
    secure_app = app_for(config.model_copy(update={"web": config.web.model_copy(update={"secure_cookies": True})}))
    morsel, header = _cookie(secure_app.test_client().get("/login"))
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["secure"]
    assert "Expires" not in header and "Max-Age" not in header  # gone when the browser closes


def test_login_gives_a_new_session_id(app):
    client = app.test_client()
    page = client.get("/login")
    before = client.get_cookie(COOKIE).value
    client.post("/login", data={"name": "cal", "password": "cal-clerk-pass", "csrf_token": csrf_of(page.text)})
    assert client.get_cookie(COOKIE).value != before


def test_idle_timeout_logs_out(app, config, clock):
    client = logged_in(app, "cal")
    clock.advance(config.web.idle_timeout_minutes - 1)
    assert client.get("/").status_code == 200  # activity keeps the session alive
    clock.advance(config.web.idle_timeout_minutes - 1)
    assert client.get("/").status_code == 200
    clock.advance(config.web.idle_timeout_minutes + 0.5)
    response = client.get("/review")
    assert response.status_code == 302 and response.location.startswith("/login")
    assert "inactivity" in client.get(response.location).text
    logouts = list(AuditLog.for_config(config).entries(AuditFilters(user="cal", action="logout")))
    assert logouts and logouts[-1]["details"] == {"reason": "idle timeout"}


def test_logout_ends_the_session(app, doc):
    client = logged_in(app, "cal")
    token = csrf_of(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get(f"/doc/{doc['doc_id']}").status_code == 302


def test_login_redirects_only_within_the_site(app):
    client = app.test_client()
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "name": "cal",
            "password": "cal-clerk-pass",
            "csrf_token": csrf_of(page.text),
            "next": "//evil.example/phish",
        },
    )
    assert response.location == "/"


def test_pages_are_not_cached_or_framed_elsewhere(app, doc):
    client = logged_in(app, "cal")
    response = client.get(f"/doc/{doc['doc_id']}/pdf")
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"].startswith("inline")
