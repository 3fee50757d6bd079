"""End to end in a real browser: `medarchive serve` driven by Playwright on Debian's chromium.

Set MEDARCHIVE_UPDATE_SCREENSHOT=1 to write the search page to docs/search.png for the README.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from pipeline.archive.audit import AuditFilters, AuditLog
from pipeline.archive.store import find_sidecar
from tests.conftest import ROOT, free_port, wait_listening
from tests.web.fixtures import PASSWORDS, data_site, site_config, waiting

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
    site = data_site(tmp_path_factory)
    config = site_config(site, page_size=5)
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
