"""The web interface under attack and under audit: logins, sessions, audit entries, derived copies, lookups."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from pipeline.archive.audit import AuditFilters, AuditLog
from pipeline.archive.derived import page_image_path, page_images_dir
from pipeline.archive.index import open_index
from pipeline.records.release import disclosures
from pipeline.records.retention import purge
from pipeline.records.review import reassign
from pipeline.records.verify import verify
from tests.conftest import run_cli
from tests.web.fixtures import (
    PASSWORDS,
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
from web.auth import DEVICE_COOKIE, NOT_A_NAME
from web.users import UserError, UserStore

WRONG = "not the password"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return data_site(tmp_path_factory)


@pytest.fixture(scope="module")
def config(site):
    return site_config(site)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(config, clock):
    return app_for(config, clock)


@pytest.fixture
def fresh(tmp_path_factory):
    """A site of its own, for tests that change the archive or the accounts."""
    config = site_config(data_site(tmp_path_factory))
    return config, app_for(config)


def _trail(config) -> AuditLog:
    return AuditLog.for_config(config)


def _count_checks(monkeypatch) -> list[str]:
    checked: list[str] = []
    real = UserStore.authenticate

    def counting(self, name, password):
        checked.append(name)
        return real(self, name, password)

    monkeypatch.setattr(UserStore, "authenticate", counting)
    return checked


# --- logins under attack ---------------------------------------------------------------


def test_a_name_no_account_could_have_is_refused_before_any_password_is_hashed(app, config, monkeypatch):
    checked = _count_checks(monkeypatch)
    response = login(app.test_client(), "x" * 5000, WRONG, address="10.1.0.1")
    assert response.status_code == 401
    assert checked == []
    entry = list(_trail(config).entries(AuditFilters(action="login.failed")))[-1]
    assert entry["user"] == NOT_A_NAME and "x" * 100 not in str(entry)


def test_a_request_over_the_size_limit_is_refused_unread(app, config):
    client = app.test_client()
    token = csrf_of(client.get("/login").text)
    before = _trail(config).path.stat().st_size
    response = client.post("/login", data={"name": "y" * (2 << 20), "password": WRONG, "csrf_token": token})
    assert response.status_code == 413
    assert _trail(config).path.stat().st_size - before < 10_000


def test_password_checks_wait_for_a_free_slot_or_are_told_the_server_is_busy(config, clock, monkeypatch):
    web = config.web.model_copy(update={"concurrent_logins": 1, "login_wait_seconds": 0.2})
    app = app_for(config.model_copy(update={"web": web}), clock)
    inside, release = threading.Event(), threading.Event()

    def slow(self, name, password):
        inside.set()
        release.wait(30)

    monkeypatch.setattr(UserStore, "authenticate", slow)
    first = threading.Thread(target=login, args=(app.test_client(), "cal", WRONG), kwargs={"address": "10.2.0.1"})
    first.start()
    try:
        assert inside.wait(30)
        busy = login(app.test_client(), "rey", WRONG, address="10.2.0.2")
        assert busy.status_code == 503 and "busy" in busy.text
    finally:
        release.set()
        first.join(30)


def test_repeated_failed_logins_are_one_entry_with_a_count(app, config, clock):
    trail, address = _trail(config), "10.3.0.1"
    mine = AuditFilters(user="cal", action="login.failed")
    before = len(list(trail.entries(mine)))
    client = app.test_client()
    for _ in range(20):
        assert login(client, "cal", WRONG, address=address).status_code in (401, 429)
    written = list(trail.entries(mine))[before:]
    assert [e["outcome"] for e in written] == ["refused", "locked out"]
    clock.advance(config.web.lockout_minutes + 1)
    assert login(client, "cal", WRONG, address=address).status_code == 401
    written = list(trail.entries(mine))[before:]
    # Every failure is accounted for: written ones once, the others in their burst's count.
    assert sum(e["details"].get("repeated", 1) for e in written) == 21
    assert {e["details"]["address"] for e in written} == {address}


def test_failures_by_someone_else_do_not_lock_a_user_out_of_their_own_browser(app, config):
    own = app.test_client()
    assert login(own, "ada").status_code == 302
    assert own.get_cookie(DEVICE_COOKIE) is not None
    own.post("/logout", data={"csrf_token": csrf_of(own.get("/").text)})
    attacker = app.test_client()
    for _ in range(config.web.login_attempts + 3):
        login(attacker, "ada", WRONG)
    assert login(attacker, "ada").status_code == 429  # the same address, another browser
    assert login(own, "ada").status_code == 302


def test_a_lockout_ends_after_its_window_however_often_it_is_tried(app, config, clock):
    client = app.test_client()
    for _ in range(config.web.login_attempts):
        login(client, "rey", WRONG, address="10.4.0.1")
    for _ in range(int(config.web.lockout_minutes)):
        clock.advance(0.9)
        assert login(client, "rey", WRONG, address="10.4.0.1").status_code == 429
    clock.advance(config.web.lockout_minutes - 0.9 * int(config.web.lockout_minutes) + 0.1)
    assert login(client, "rey", address="10.4.0.1").status_code == 302


def test_user_unlock_from_the_console_ends_a_lockout(app, config):
    client = app.test_client()
    for _ in range(config.web.login_attempts):
        login(client, "rey", WRONG, address="10.5.0.1")
    assert login(client, "rey", address="10.5.0.1").status_code == 429
    done = run_cli(config.path, "user", "unlock", "rey", check=True, timeout=120)
    assert "rey unlocked" in done.stdout
    assert login(client, "rey", address="10.5.0.1").status_code == 302
    assert list(_trail(config).entries(AuditFilters(action="user.unlock")))[-1]["details"] == {"name": "rey"}
    with pytest.raises(UserError, match="no user 'nobody'"):
        UserStore.for_config(config).unlock("nobody")


# --- sessions follow the account -------------------------------------------------------


def test_a_password_change_ends_the_users_other_sessions(fresh):
    _, app = fresh
    clerk, clerk_elsewhere = logged_in(app, "cal"), logged_in(app, "cal")
    admin, admin_elsewhere = logged_in(app, "ada"), logged_in(app, "ada")
    token = csrf_of(admin.get("/admin/users").text)
    assert (
        admin.post(
            "/admin/users/cal", data={"csrf_token": token, "change": "password", "password": "cal-new-password"}
        ).status_code
        == 302
    )
    assert clerk.get("/").status_code == 302 and clerk_elsewhere.get("/").status_code == 302
    own = admin.post(
        "/admin/users/ada", data={"csrf_token": token, "change": "password", "password": "ada-new-password"}
    )
    assert own.status_code == 302
    assert admin.get("/admin/users").status_code == 200  # the session that changed it goes on
    assert admin_elsewhere.get("/admin/users").status_code == 302


@pytest.mark.parametrize("change", ["role", "disable"])
def test_a_role_change_or_disabling_ends_the_users_sessions(fresh, change):
    config, app = fresh
    clerk = logged_in(app, "cal")
    store = UserStore.for_config(config)
    store.set_role("cal", "release") if change == "role" else store.set_enabled("cal", False)
    response = clerk.get("/")
    assert response.status_code == 302 and response.location.startswith("/login")


# --- the audit log says what happened ---------------------------------------------------


def test_fullwidth_digits_are_no_mrn_and_no_assignment_is_recorded(fresh):
    config, app = fresh
    item = waiting(config)[0]["doc_id"]
    fullwidth = "００４５５２６３"
    client = logged_in(app, "cal")
    token = csrf_of(client.get(f"/review/{item}").text)
    response = client.post(f"/review/{item}", data={"csrf_token": token, "mrn": fullwidth})
    assert response.status_code == 400
    entries = list(_trail(config).entries(AuditFilters(action="review.assign", doc_id=item)))
    assert [e["outcome"] for e in entries] == ["refused"]
    assert item in {s["doc_id"] for s in waiting(config)}
    assert not config.extraction.is_mrn(fullwidth) and config.extraction.is_mrn("00455263")


def test_a_refused_page_is_in_the_audit_log(app, config):
    mrn = filed(config)[0]["mrn"]
    assert logged_in(app, "cal").get(f"/release?mrn={mrn}").status_code == 403
    entry = list(_trail(config).entries(AuditFilters(user="cal", action="forbidden")))[-1]
    assert entry["mrns"] == [mrn] and entry["outcome"] == "refused" and entry["details"]["path"] == "/release"


def _conflicted(config) -> dict:
    item = next(
        (s for s in waiting(config) if len({c["value"] for c in s["identifiers"]["mrn_candidates"]}) >= 2), None
    )
    assert item is not None, "the sample set has no review document with two candidate MRNs"
    return item


def test_review_views_are_audited_under_the_candidate_mrns(app, config):
    item = _conflicted(config)
    candidates = {c["value"] for c in item["identifiers"]["mrn_candidates"]}
    client = logged_in(app, "cal")
    assert client.get(f"/review/{item['doc_id']}").status_code == 200
    entry = list(_trail(config).entries(AuditFilters(user="cal", action="review.view", doc_id=item["doc_id"])))[-1]
    assert candidates <= set(entry["mrns"])
    assert client.get("/review").status_code == 200
    queue = list(_trail(config).entries(AuditFilters(user="cal", action="review.view")))[-1]
    assert candidates <= set(queue["mrns"])


def test_a_released_review_document_is_accounted_under_each_candidate_mrn(fresh):
    config, app = fresh
    item = _conflicted(config)
    asked, other = sorted({c["value"] for c in item["identifiers"]["mrn_candidates"]})[:2]
    client = logged_in(app, "rey")
    token = csrf_of(client.get(f"/release?mrn={asked}").text)
    response = client.post(
        "/release",
        data={
            "csrf_token": token,
            "mrn": asked,
            "requester": "Dr. Who",
            "purpose": "continuing care",
            "include_review": "on",
            "doc": [item["doc_id"]],
        },
    )
    assert response.status_code == 200, response.text
    response.close()
    for mrn in (asked, other):
        rows = disclosures(_trail(config), mrn)
        assert [d["doc_id"] for row in rows for d in row["documents"]] == [item["doc_id"]], mrn


# --- derived copies die with the document -----------------------------------------------


def test_purge_and_reassign_destroy_page_images_and_verify_reports_leftovers(fresh):
    config, app = fresh
    moved, *others = filed(config)
    client = logged_in(app, "cal")
    for doc in (moved, *others):
        assert client.get(f"/doc/{doc['doc_id']}/page/1.png").status_code == 200
    images = {doc["doc_id"]: list(page_images_dir(config).glob(f"{doc['sha256']}-*.png")) for doc in filed(config)}
    assert all(images.values())
    index, trail = open_index(config), _trail(config)
    other_mrn = next(d["mrn"] for d in others if d["mrn"] != moved["mrn"])
    reassign(config, index, trail, moved["doc_id"], mrn=other_mrn, doc_type=None, user="cal", reason="wrong patient")
    assert not any(p.exists() for p in images[moved["doc_id"]])
    result = purge(config, index, user="ada", audit=trail, today=date(2400, 1, 1))
    assert {d["doc_id"] for d in others} <= {item.doc_id for item in result.destroyed}
    assert not list(page_images_dir(config).glob("*.png"))
    assert not _orphan_images(config, index)
    left = page_image_path(config, others[0]["sha256"], 1, 30)
    left.write_bytes(b"\x89PNG left behind")
    assert _orphan_images(config, index) == ["web/thumbs/" + left.name]


def _orphan_images(config, index) -> list[str]:
    return [p.path for p in verify(config, index).problems if p.kind == "orphan_image"]


# --- lookups and redirects --------------------------------------------------------------


def test_an_unknown_document_id_is_not_looked_for_in_every_patient_folder(app, monkeypatch):
    client = logged_in(app, "cal")

    def no_scan(config):
        raise AssertionError("the archive was scanned for an id the index does not know")

    monkeypatch.setattr("pipeline.archive.store.iter_sidecar_paths", no_scan)
    for url in ("/doc/ffffffffffffffff-1", "/doc/ffffffffffffffff-1/pdf", "/review/ffffffffffffffff-1"):
        assert client.get(url).status_code == 404, url


# ``next=/%0d%0aX:1`` in the login page's address reaches the login form decoded.
@pytest.mark.parametrize("target", ["/\r\nX:1", "/\r\nX-Injected: 1", "/\\evil.example", "/\t/evil.example"])
def test_a_next_with_control_characters_or_backslashes_goes_home(app, target):
    client = app.test_client()
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login", data={"name": "cal", "password": PASSWORDS["cal"], "csrf_token": token, "next": target}
    )
    assert response.status_code == 302 and response.location == "/"
    assert "X-Injected" not in response.headers and "X" not in response.headers


def test_a_search_past_the_budgets_is_a_message_not_a_busy_core(app):
    client = logged_in(app, "cal")
    for query in ("*", "a" * 5000):
        response = client.get("/", query_string={"q": query})
        assert response.status_code == 400, query[:20]
        assert 'class="error"' in response.text
