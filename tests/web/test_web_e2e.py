"""End to end in a real browser: `medarchive serve` driven by Playwright on Debian's chromium.

Set MEDARCHIVE_UPDATE_SCREENSHOT=1 to write the search page to docs/search.png for the README.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from pipeline.archive.audit import AuditFilters, AuditLog
from pipeline.archive.store import find_sidecar
from pipeline.records.release import disclosures
from tests.conftest import ROOT, free_port, wait_listening
from tests.web.fixtures import PASSWORDS, data_site, filed, site_config, waiting
from tests.web.test_web_requests import add_authorization

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = ROOT / "docs" / "search.png"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    yield from _serve(site_config(data_site(tmp_path_factory), page_size=5))


@pytest.fixture
def served_with_authorization(tmp_path_factory):
    """A site of its own where one patient has a signed authorization on file."""
    config = site_config(data_site(tmp_path_factory))
    mrns = [s["mrn"] for s in filed(config)]
    mrn = max(sorted(set(mrns)), key=mrns.count)
    auth = add_authorization(config, mrn)
    for config_, base in _serve(config):
        yield config_, base, mrn, auth


def _serve(config):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(config.path), "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_listening(port, server, server.stderr.read)
        yield config, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    # Fails loudly rather than skipping: CI installs chromium (scripts/install-system-packages.sh).
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run `apt-get install chromium` (make setup does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _log_in(page: Page, base: str, name: str) -> None:
    page.goto(base + "/")
    expect(page).to_have_url(f"{base}/login?next=/")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(base + "/")


def test_clerk_searches_views_files_and_logs_out(served, browser, tmp_path):
    config, base = served
    page = browser.new_page(viewport={"width": 1200, "height": 760})
    _log_in(page, base, "cal")

    page.get_by_label("Search").fill("blood")
    page.get_by_label("Search").press("Enter")
    results = page.locator("ol.results > li")
    expect(results.first).to_be_visible()
    expect(results.first.locator("mark").first).to_have_text("blood", ignore_case=True)
    shot = SCREENSHOT if os.environ.get("MEDARCHIVE_UPDATE_SCREENSHOT") else tmp_path / "search.png"
    page.screenshot(path=str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG")

    results.first.locator("a.title").click()
    expect(page.get_by_role("heading", level=2, name="History")).to_be_visible()
    thumbs = page.locator(".thumbs img")
    expect(thumbs.first).to_be_visible()
    for n in range(thumbs.count()):
        expect(thumbs.nth(n)).to_have_js_property("complete", True)
        assert thumbs.nth(n).evaluate("image => image.naturalWidth") > 0
    doc_id = page.url.rsplit("/", 1)[1]
    assert page.request.get(f"{base}/doc/{doc_id}/pdf").body().startswith(b"%PDF")

    item = waiting(config)[0]["doc_id"]
    page.get_by_role("link", name="Review queue").click()
    page.locator(f"a[href='/review/{item}']").click()
    expect(page.locator("img.preview")).to_have_js_property("complete", True)
    assert page.locator("img.preview").evaluate("image => image.naturalWidth") > 0
    page.get_by_label("File under MRN").fill("00891787")
    page.get_by_label("as type").select_option("consultation")
    page.get_by_role("button", name="File").click()
    expect(page.get_by_role("status")).to_contain_text(f"Filed {item} under MRN 00891787")
    assert find_sidecar(config, item).status == "filed"

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(base + "/login")
    page.goto(f"{base}/doc/{doc_id}")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    trail = AuditLog.for_config(config)
    for action in ("login", "search", "view", "review.view", "review.assign", "logout"):
        assert list(trail.entries(AuditFilters(user="cal", action=action))), action


def test_release_clerk_answers_a_request_from_the_queue(served_with_authorization, browser, tmp_path):
    config, base, mrn, auth = served_with_authorization
    expected = {s["doc_id"] for s in filed(config) if s["mrn"] == mrn}
    page = browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    _log_in(page, base, "rey")

    page.get_by_role("link", name="Requests").click()
    page.get_by_label("Patient MRN").fill(mrn)
    page.get_by_label("Requester kind").select_option("attorney")
    page.get_by_label("Requester name").fill("Lee Law")
    page.get_by_label("Organisation").fill("Lee & Partners LLP")
    page.get_by_label("Purpose").fill("personal injury claim")
    page.get_by_label("the whole record").check()
    page.get_by_role("button", name="Log the request").click()
    expect(page.get_by_role("status")).to_contain_text("logged; due")
    expect(page.get_by_role("alert")).to_contain_text("needs a signed authorization")

    page.locator("select[name='doc']").select_option(auth.doc_id)
    page.get_by_label("Expires").fill("2999-12-31")
    page.get_by_role("button", name="Link authorization").click()
    expect(page.get_by_role("status")).to_contain_text(f"Authorization {auth.doc_id} linked")
    thumb = page.locator("img.auth-thumb")
    expect(thumb).to_have_js_property("complete", True)
    assert thumb.evaluate("image => image.naturalWidth") > 0

    with page.expect_download() as download:
        page.get_by_role("button", name="Fulfil").click()
    saved = tmp_path / "release.zip"
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as package:
        manifest = json.loads(package.read("manifest.json"))
        pdfs = {n for n in package.namelist() if n.endswith(".pdf") and n != "cover_sheet.pdf"}
    assert {d["doc_id"] for d in manifest["documents"]} == expected and len(pdfs) == len(expected)
    request_ref = manifest["request"].split()[0]

    page.goto(base + "/requests?all=1")
    row = page.locator("tr", has=page.get_by_role("link", name=request_ref))
    expect(row).to_contain_text("fulfilled")
    (accounted,) = [d for d in disclosures(AuditLog.for_config(config), mrn) if d.get("request")]
    assert accounted["request"].startswith(request_ref) and accounted["release_id"] == manifest["release_id"]
