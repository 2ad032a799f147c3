"""The app in a real browser: Streamlit as a subprocess on a free port, Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from search_ui.browser import CHROMIUM, VIEWPORT, launch_chromium, search_in_app
from ui_fixtures import running_app

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
STARTUP_SECONDS = 90

pytestmark = pytest.mark.browser


def _require_chromium() -> None:
    if Path(CHROMIUM).is_file() and shutil.which(CHROMIUM):
        return
    message = (f"Chromium is missing at {CHROMIUM}: install it with `apt-get install -y chromium fonts-noto-cjk` "
               "(.ci/run does this)")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def app_url(ui_home, tmp_path_factory):
    """The app serving the test index, started as `streamlit run` in a subprocess."""
    _require_chromium()
    with running_app(ui_home, tmp_path_factory.mktemp("app") / "streamlit.log", STARTUP_SECONDS) as url:
        yield url


def test_korean_search_highlights_and_renders_hostile_documents_as_text(app_url):
    from playwright.sync_api import sync_playwright

    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport=VIEWPORT, locale="ko-KR")
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            search_in_app(page, app_url, "임대인이 보증금 반환을 거부하면 내용증명")
            hits = page.locator(".ks-hit")
            assert hits.count() >= 1
            assert page.locator(".ks-passage mark").count() >= 1
            assert page.locator(".ks-chip.ks-expansion").count() >= 2  # legend chip + at least one matched expansion
            body = page.inner_text("body")
            assert "<script>alert(1)</script>" in body  # the hostile title and text are shown as text...
            assert "<img src=x onerror=alert(1)>" in body
            assert page.locator(".ks-hit script, .ks-hit img").count() == 0  # ...and never became elements
            page.wait_for_selector(".vega-embed", state="visible", timeout=30_000)  # the query token chart
            page.wait_for_timeout(500)
            assert dialogs == [], f"a dialog fired: {dialogs}"
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "ui-search.png"), full_page=True)
        finally:
            browser.close()
