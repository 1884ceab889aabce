"""The served app in a real Chromium: live prices, labelled data, nothing fetched off the machine."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"]

pytestmark = [
    pytest.mark.ui,
    pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                       reason="Debian's chromium is not installed (.ci/run installs it)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """``python -m analytics serve`` as ``make serve`` runs it, on a free port and a fresh store."""
    port, store = free_port(), tmp_path_factory.mktemp("store")
    log = open(store / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "analytics", "serve", "--source", "simulator", "--port", str(port),
                             "--store", f"lmdb://{store}/arctic", "--symbols", "BTC-USDT", "ETH-USDT"],
                            cwd=ROOT, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError((store / "serve.log").read_text()[-3000:])
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=60)
    log.close()


def test_the_app_shows_live_prices_with_its_data_labelled_and_stays_on_this_machine(app_url):
    from playwright.sync_api import expect, sync_playwright

    requests, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(app_url)
        page.get_by_text("Data: SIMULATED market").wait_for(timeout=60_000)
        row = page.locator(".tabulator-row", has_text="BTC-USDT").first
        cell = row.locator('.tabulator-cell[tabulator-field="BINANCE"]')
        cell.wait_for(timeout=60_000)
        first = cell.inner_text()
        expect(cell).not_to_have_text(first, timeout=30_000)  # the board updates live
        assert float(cell.inner_text().replace(",", "")) > 0
        page.get_by_text("Feed health").wait_for()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
        browser.close()
    hosts = {urlparse(url).hostname for url in requests if urlparse(url).scheme in ("http", "https", "ws", "wss")}
    assert hosts == {"127.0.0.1"}, hosts
    assert errors == []
