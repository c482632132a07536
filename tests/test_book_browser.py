"""Open every page of the built book in headless Chromium: no console errors, every image
loaded, chapter figures in SVG and not scaled down by more than 1.5x, no horizontal overflow
at 1280 px; and the search box finds a chapter's word.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); without
them the test is skipped with the command that installs them.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import time
from pathlib import Path

import pytest

from fairlib.book import toc_files

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
INSTALL_HINT = "sudo apt-get install chromium chromium-driver"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(f"headless Chromium not found; install it with `{INSTALL_HINT}`")
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # The background-networking flags keep Chromium from calling home on a closed network.
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--no-first-run", "--window-size=1280,1600",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def served(smoke_build):
    handler = functools.partial(_QuietHandler, directory=str(smoke_build.html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


def _pages() -> list[str]:
    return ["intro"] + toc_files(ROOT / "book")  # every page of the table of contents


@pytest.mark.parametrize("page", _pages())
def test_page_renders_without_console_errors_and_with_loaded_images(browser, served, smoke_build, page):
    browser.get_log("browser")  # drop entries from earlier pages
    browser.get(f"{served}/{page}.html")
    # Lazy images load once scrolled into view; scroll through, then wait for them.
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    deadline = time.time() + 20
    images = []
    while time.time() < deadline:
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete,"
            " i.naturalWidth, i.naturalHeight])")
        if all(done for _, done, _, _ in images):
            break
        time.sleep(0.2)
    assert browser.title, "page has no title"
    broken = [(src, w, h) for src, done, w, h in images if not (done and w > 0 and h > 0)]
    assert not broken, f"images that did not load: {broken}"
    if Path(page).name[:2].isdigit():
        assert images, f"{page} shows no figure"
    # Figures are shown at (about) their natural size: a figure the column squeezes by more than
    # 1.5x has text too small to read (its 9.5 pt ticks would be under 8.5 px).
    sizes = browser.execute_script(
        "return Array.from(document.querySelectorAll('article img')).map(i => [i.currentSrc || i.src,"
        " i.naturalWidth, i.getBoundingClientRect().width])")
    squeezed = [(src.rsplit("/", 1)[-1], w, round(r)) for src, w, r in sizes if r and w / r > 1.5]
    assert not squeezed, f"figures on {page} scaled down by more than 1.5x: {squeezed}"
    if Path(page).name[:2].isdigit():
        raster = [src.rsplit("/", 1)[-1] for src, _, _ in sizes if not src.endswith(".svg")]
        assert not raster, f"figures on {page} that are not SVG: {raster}"
    overflow = browser.execute_script(
        "const d = document.documentElement; return [d.scrollWidth, d.clientWidth];")
    assert overflow[0] <= overflow[1] + 1, f"{page} scrolls sideways at 1280 px: {overflow}"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"console errors on {page}: {errors}"
    browser.execute_script("window.scrollTo(0, 0)")
    shot = smoke_build.html.parent / "screenshots" / f"{Path(page).name}.png"
    shot.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_search_finds_a_word_of_chapter_7(browser, served):
    browser.get(f"{served}/search.html?q=counterfactual")
    deadline, hits = time.time() + 20, []
    while time.time() < deadline and not hits:
        hits = browser.execute_script(
            "return Array.from(document.querySelectorAll('#search-results li a')).map(a => a.href)")
        time.sleep(0.2)
    assert any("07_causal_context" in h for h in hits), hits


def test_the_page_shows_one_search_box(browser, served):
    browser.get(f"{served}/intro.html")
    visible = browser.execute_script(
        "return Array.from(document.querySelectorAll('.search-button__button, .bd-search'))"
        ".filter(e => e.offsetParent !== null).length")
    assert visible == 1, visible
