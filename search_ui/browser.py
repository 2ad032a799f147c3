"""Drive the running app in a real browser (Playwright + the system Chromium): used by the browser test and for README screenshots.

`python -m search_ui.browser URL QUERY OUT.png` types QUERY on the search page of the app at URL and saves a screenshot.
"""

from __future__ import annotations

import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1366, "height": 900}  # a laptop-sized window
RESULT_SELECTOR = ".ks-hit"


def launch_chromium(playwright, executable: str = CHROMIUM):
    """Headless Debian Chromium (Playwright's own browser download is not used)."""
    return playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)


def search_in_app(page, url: str, query: str, timeout_ms: int = 90_000) -> None:
    """Open the app's search page, type `query`, press Enter and wait until results are drawn."""
    page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
    box = page.get_by_label("Query")
    box.wait_for(state="visible", timeout=timeout_ms)
    box.fill(query)
    box.press("Enter")
    page.wait_for_selector(RESULT_SELECTOR, state="visible", timeout=timeout_ms)
    page.wait_for_load_state("networkidle", timeout=timeout_ms)


def screenshot_search(url: str, query: str, out: Path, executable: str = CHROMIUM) -> Path:
    """Save a screenshot of the search page showing `query`'s results."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p, executable)
        try:
            page = browser.new_page(viewport=VIEWPORT, locale="ko-KR")
            search_in_app(page, url, query)
            page.wait_for_selector(".vega-embed", state="visible", timeout=30_000)
            page.wait_for_timeout(1000)  # let the chart finish drawing
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=False)
        finally:
            browser.close()
    return out


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m search_ui.browser URL QUERY OUT.png")
    print(screenshot_search(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
