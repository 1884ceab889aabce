"""The served app in a real Chromium: live prices, labelled data, nothing fetched off the machine."""

import json
import os
import re
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


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    """A fresh tab that records every request and console error; its screenshot is saved as a test artifact."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.requests, page.errors = [], []
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name.removeprefix('test_')}.png"), full_page=True)
    page.close()
    hosts = {urlparse(url).hostname for url in page.requests
             if urlparse(url).scheme in ("http", "https", "ws", "wss")}
    assert hosts == {"127.0.0.1"}, hosts
    assert page.errors == []


def sessions(app_url) -> dict:
    return json.loads(urllib.request.urlopen(app_url + "tickscope/sessions", timeout=5).read())


def test_market_page_shows_live_prices_labelled_simulated_and_opens_a_chart(app_url, page):
    from playwright.sync_api import expect

    page.goto(app_url)
    page.get_by_text("Data: SIMULATED market").wait_for(timeout=60_000)
    row = page.locator(".tabulator-row", has_text="ETH-USDT").first
    cell = row.locator('.tabulator-cell[tabulator-field="BINANCE"]')
    cell.wait_for(timeout=60_000)
    first = cell.inner_text()
    expect(cell).not_to_have_text(first, timeout=30_000)  # the board updates live
    assert float(cell.inner_text().replace(",", "")) > 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "market.png"), full_page=True)
    row.get_by_role("link", name="ETH-USDT", exact=True).click()
    page.wait_for_url("**/chart?symbol=ETH-USDT")
    expect(page.locator(".tickscope-chart-status")).to_contain_text("ETH-USDT", timeout=30_000)


def test_chart_page_streams_candles_trades_and_switches_timeframe(app_url, page):
    from playwright.sync_api import expect

    page.goto(app_url + "chart?symbol=BTC-USDT&exchange=KRAKEN&timeframe=1m")
    status = page.locator(".tickscope-chart-status")
    expect(status).to_contain_text("BTC-USDT · KRAKEN · 1m", timeout=60_000)
    tape = page.locator(".tickscope-tape")
    tape.wait_for(timeout=30_000)
    expect(tape).to_contain_text(re.compile(r"\d"), timeout=30_000)
    first = tape.inner_text()
    expect(tape).not_to_have_text(first, timeout=30_000)  # new trades arrive
    page.get_by_role("button", name="1s", exact=True).click()
    expect(status).to_contain_text("BTC-USDT · KRAKEN · 1s", timeout=30_000)
    assert page.locator(".tickscope-candles canvas").count() > 0


# The newest finite value of an indicator column in the browser's Bokeh document, and how many there are.
INDICATOR_JS = """([figure, column]) => {
  for (const doc of Bokeh.documents) {
    const fig = doc.get_model_by_name(figure);
    if (!fig) continue;
    const values = fig.renderers[0].data_source.data[column] || [];
    let count = 0, last = null;
    for (const v of values) if (Number.isFinite(v)) { count++; last = v; }
    return count ? [count, last] : null;
  }
  return null;
}"""


def test_chart_page_draws_indicators_from_the_url_live_and_as_typed(app_url, page):
    from playwright.sync_api import expect

    page.goto(app_url + "chart?symbol=BTC-USDT&exchange=BINANCE&timeframe=1s&indicators=sma 3, rsi 5")
    expect(page.locator(".tickscope-chart-status")).to_contain_text("BTC-USDT · BINANCE · 1s", timeout=60_000)
    page.wait_for_function(INDICATOR_JS, arg=["indicator-rsi_5", "rsi_5"], timeout=60_000)
    first = page.evaluate(INDICATOR_JS, ["indicator-rsi_5", "rsi_5"])
    assert 0 <= first[1] <= 100
    page.wait_for_function(f"args => JSON.stringify(({INDICATOR_JS})(args)) !== {json.dumps(json.dumps(first))}",
                           arg=["indicator-rsi_5", "rsi_5"], timeout=30_000)  # it moves with the forming candle
    box = page.locator("input[placeholder^='e.g. ema 20']")
    box.fill("ema 4, macd 3 6 2, wobble")
    box.press("Enter")
    expect(page.get_by_text("unknown indicator 'wobble'")).to_be_visible(timeout=30_000)
    box.fill("ema 4, macd 3 6 2")
    box.press("Enter")
    page.wait_for_function(INDICATOR_JS, arg=["indicator-macd_3_6_2", "macd_3_6_2__macd"], timeout=30_000)
    assert page.evaluate(INDICATOR_JS, ["indicator-rsi_5", "rsi_5"]) is None  # the RSI panel went


def test_exchanges_page_compares_the_coin_across_exchanges(app_url, page):
    from playwright.sync_api import expect

    page.goto(app_url + "exchanges?symbol=ETH-USDT")
    page.get_by_text("Data: SIMULATED market").wait_for(timeout=60_000)
    verdict = page.get_by_text(re.compile("arbitrage", re.IGNORECASE)).first
    verdict.wait_for(timeout=60_000)
    for exchange in ("BINANCE", "KRAKEN", "BITFINEX"):  # a bid/ask row per exchange
        expect(page.locator("td", has_text=exchange)).to_be_visible()
    received = page.locator("td", has_text="KRAKEN").locator("xpath=..")
    first = received.inner_text()
    expect(received).not_to_have_text(first, timeout=30_000)  # quotes update live


def test_health_page_shows_every_exchange_up(app_url, page):
    from playwright.sync_api import expect

    page.goto(app_url + "health")
    for exchange in ("BINANCE", "KRAKEN", "BITFINEX"):
        row = page.locator(".tabulator-row", has_text=exchange).first
        expect(row).to_contain_text("up", timeout=60_000)


def test_bad_url_arguments_are_named_on_the_page_and_it_keeps_updating(app_url, page):
    from playwright.sync_api import expect

    page.goto(app_url + "chart?symbol=NOPE-USDT&exchange=BINANCE&timeframe=7m")
    expect(page.get_by_text("Unknown timeframe '7m'")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("NOPE-USDT").first).to_be_visible(timeout=30_000)
    assert "Traceback" not in page.content()
    page.goto(app_url + "exchanges?symbol=NOPE-USDT")
    expect(page.get_by_text("NOPE-USDT is not traded here")).to_be_visible(timeout=60_000)


def test_closed_pages_release_their_sessions(app_url, browser):
    tabs = [browser.new_page() for _ in range(4)]
    for tab, path in zip(tabs, ("", "chart", "exchanges", "health")):
        tab.goto(app_url + path)
        tab.get_by_text("Data: SIMULATED market").wait_for(timeout=60_000)
    opened = sessions(app_url)
    assert opened["sessions"] >= 4 and opened["active_views"] >= 4 and opened["hub_subscribers"] > 0
    for tab in tabs:
        tab.close()
    deadline = time.monotonic() + 60
    held = ("sessions", "active_views", "hub_subscribers", "periodic_callbacks")
    while any((now := sessions(app_url))[key] for key in held):
        assert time.monotonic() < deadline, now
        time.sleep(0.2)


def test_risk_page_says_what_it_lacks_then_shows_the_table_and_the_heatmap_at_1s(app_url, page):
    from playwright.sync_api import expect

    page.goto(app_url + "risk")
    page.get_by_text("Data: SIMULATED market").wait_for(timeout=60_000)
    expect(page.locator(".tickscope-risk-note").first).to_contain_text(  # a fresh store: too few 1m bars
        re.compile(r"closed 1m bars.*needed.*backfill"), timeout=60_000)
    page.get_by_role("button", name="1s", exact=True).click()
    status = page.locator(".tickscope-risk-status")
    expect(status).to_contain_text("BINANCE · 1s · 2 coins", timeout=30_000)
    table = page.locator(".tickscope-risk-table")
    expect(table).to_contain_text(re.compile(r"BTC-USDT\s*[\d,]+\s*\d+\.\d"), timeout=90_000)  # bars, then a volatility
    caption = page.locator(".tickscope-risk-corr-caption")
    expect(caption).to_contain_text(re.compile(r"over [\d,]+ returns at common times"), timeout=90_000)
    assert page.locator(".tickscope-risk-corr canvas").count() > 0
    shown = re.search(r"last closed bar [\d-]+ [\d:]+ UTC", status.evaluate("e => (e.shadowRoot || e).textContent"))
    expect(status).not_to_contain_text(shown.group(), timeout=30_000)  # recomputed when the next 1 s bar closes
    assert "Traceback" not in page.content()


# The gauges in the browser's Bokeh document: one bar per coin, some with mentions.
GAUGES_JS = """() => {
  for (const doc of Bokeh.documents) {
    const fig = doc.get_model_by_name("sentiment-gauges");
    if (!fig) continue;
    const data = fig.renderers[0].data_source.data;
    return data.coin.length == 2 && Array.from(data.count).some(count => count > 0);
  }
  return false;
}"""


def test_sentiment_page_shows_gauges_and_headlines_and_an_html_title_as_text(app_url, page):
    """A stored headline whose title is markup (from an earlier run) is listed as text: nothing runs or loads."""
    import pandas as pd
    import psutil
    from playwright.sync_api import expect

    from analytics.sentiment.store import NewsStore
    from analytics.storage import TickStore

    port = str(urlparse(app_url).port)
    server = next(p for p in psutil.Process().children() if port in p.cmdline())
    store = server.cmdline()[server.cmdline().index("--store") + 1]
    title = "<img src=x onerror=\"alert('img')\"> <script>alert('script')</script> Bitcoin rallies"
    yesterday = pd.Timestamp.now("UTC").tz_localize(None).floor("1D") - pd.Timedelta("12h")  # not today's symbol
    NewsStore(TickStore(store)).write_items(pd.DataFrame({
        "source": ["earlier-run"], "id": ["html-title"], "link": ["javascript:alert('link')"], "title": [title],
        "summary": ["<b>teaser</b>"], "published": [yesterday], "fetched": [yesterday], "coins": ["BTC"],
        "neg": [0.0], "neu": [0.7], "pos": [0.3], "compound": [0.4], "label": ["positive"]}))
    dialogs = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message) or dialog.dismiss())
    page.goto(app_url + "sentiment")
    page.get_by_text("News: SIMULATED news").wait_for(timeout=60_000)
    status = page.locator(".tickscope-sentiment-status")
    expect(status).to_contain_text(re.compile(r"5m · gauges over the last 12 bars .* news items scored"),
                                   timeout=90_000)
    page.wait_for_function(GAUGES_JS, timeout=90_000)
    headlines = page.locator(".tickscope-headlines")
    expect(headlines.locator(".tabulator-row", has_text="simulated").first).to_be_visible(timeout=90_000)
    page.goto(app_url + "sentiment?source=earlier-run")  # the stored headline, among many simulated ones
    row = page.locator(".tickscope-headlines .tabulator-row", has_text="Bitcoin rallies")
    expect(row).to_contain_text("<script>alert('script')</script> Bitcoin rallies", timeout=90_000)
    expect(row).to_contain_text("<img src=x onerror=\"alert('img')\">")
    expect(row).to_contain_text("+0.40 positive")
    assert row.locator("script, img, a").count() == 0  # text, and no link to javascript:
    assert page.locator(".tickscope-headlines .tabulator-row").count() == 1
    assert dialogs == []  # and with no script or image element, none can come
    assert "Traceback" not in page.content()
    row.scroll_into_view_if_needed()  # for the screenshot
