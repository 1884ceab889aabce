"""Chart page open time in headless Chromium: windowed and downsampled, against sending every candle.

A temporary ArcticDB store gets 30 days of one-minute BTC-USDT bars (the real BTC perpetual
bars of shared/data, moved to end now and scaled to the simulator's price); one server on a
free port, with a simulated ingest on that store, serves two routes: ``/chart``, the
CandleChart as the app shows it (the newest candles, a min-max downsampled navigator), and
``/baseline``, the same Viewer keeping and showing every stored candle with an undecimated
navigator. Opens alternate between them in one Chromium (after one warm-up open of each);
each is timed from navigation start to the first full render: the candle, volume and
navigator plots idle in the page with the candles drawn. Reported: median seconds of each
(target <= 2 s for ``/chart``), their ratio and the bytes the websocket delivered.

    python bench/page_open.py [--opens 5] [--days 30] [--json]
"""

import argparse
import asyncio
import contextlib
import io
import logging
import shutil
import statistics
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import panel as pn  # noqa: E402
from common import emit, free_port  # noqa: E402

from analytics import schema  # noqa: E402
from analytics.exchange.market import COIN_SPECS  # noqa: E402
from analytics.ingest import Ingest  # noqa: E402
from analytics.storage import TickStore  # noqa: E402
from analytics.views.chart import CandleChart  # noqa: E402

DATA = Path(__file__).parents[2] / "shared" / "data" / "bars" / "btc-perp-20211231-20220201_1m.csv.gz"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"]

# Resolves to performance.now() once the candle, volume and navigator plots have painted the candles.
RENDERED = """() => {
  const B = window.Bokeh;
  if (!B || !B.index || !B.documents) return null;
  for (const doc of B.documents) {
    const models = ["candles", "volume", "navigator"].map((name) => doc.get_model_by_name(name));
    if (models.some((model) => model == null)) continue;
    const views = models.map((model) => B.index.find_one(model));
    if (views.some((view) => view == null || !view.is_idle)) return null;
    return models[0].renderers[0].data_source.get_length() > 0 ? performance.now() : null;
  }
  return null;
}"""


def stored_bars(days: int, symbol: str) -> pd.DataFrame:
    """``days`` of real one-minute bars ending at the last whole minute, scaled to the simulator's price."""
    raw = pd.read_csv(DATA).iloc[-days * 1440:]
    if len(raw) < days * 1440:
        raise SystemExit(f"{DATA.name} holds {len(raw)} bars, fewer than {days} days")
    scale = COIN_SPECS[symbol.split("-")[0]].price / raw["close"].iloc[-1]
    start = pd.to_datetime(raw["timestamp"])
    end = pd.Timestamp.now("UTC").tz_localize(None).floor("1min") - pd.Timedelta("1min")
    prices = {c: raw[c] * scale for c in ("open", "high", "low", "close")}
    return schema.conform("bars", pd.DataFrame({
        "exchange": "BINANCE", "symbol": symbol, "timeframe": "1m", "start": start + (end - start.iloc[-1]),
        **prices, "volume": raw["volume"] / raw["close"],
        "vwap": (prices["high"] + prices["low"] + prices["close"]) / 3,
        "trades": np.maximum(1, raw["volume"] // 5000).astype(np.int64), "closed": True,
    }))


class Server:
    """The two pages and a simulated ingest on one event loop, in a thread (as ``python -m analytics serve``)."""

    def __init__(self, ingest: Ingest, routes: dict):
        self.port, self.ingest, self.routes = free_port(), ingest, routes
        self._ready, self._error = threading.Event(), None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        self._ready.wait(120)
        if self._error is not None:
            raise self._error
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # "Launching server at ...": keep --json output clean
                self.server = pn.serve(self.routes, port=self.port, address="127.0.0.1", show=False, start=False,
                                       websocket_origin=[f"127.0.0.1:{self.port}"],
                                       unused_session_lifetime_milliseconds=1000,
                                       check_unused_sessions_milliseconds=500)
            loop.run_until_complete(self.ingest.start())
            self.server.start()
        except BaseException as error:
            self._error = error
            self._ready.set()
            raise
        self._ready.set()
        try:
            self.server.io_loop.start()
        finally:
            loop.run_until_complete(self.ingest.stop())

    def __exit__(self, *exc):
        self.server.io_loop.add_callback(self.server.io_loop.stop)
        self._thread.join(120)


def open_page(browser, url: str, timeout: float) -> tuple[float, int]:
    """Seconds from navigation start to the first full render of the chart, and websocket bytes received."""
    received = []
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: received.append(len(frame))))
    try:
        page.goto(url)
        rendered = page.wait_for_function(RENDERED, polling="raf", timeout=timeout * 1000).json_value()
        return rendered / 1000, sum(received)
    finally:
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opens", type=int, default=5, help="timed opens of each page")
    parser.add_argument("--days", type=int, default=30, help="days of one-minute bars in the store")
    parser.add_argument("--symbol", default="BTC-USDT")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds an open may take")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    for name in ("asyncio", "bokeh.server.views.ws"):  # pushes to a tab just closed fail, as they may
        logging.getLogger(name).setLevel(logging.CRITICAL)

    bars = stored_bars(args.days, args.symbol)
    with tempfile.TemporaryDirectory() as folder:
        uri = f"lmdb://{folder}/arctic"
        TickStore(uri).write("bars", bars)
        ingest = Ingest(source="simulator", exchanges=["BINANCE"], symbols=[args.symbol], store=uri, rate=20,
                        workers=False)
        everything = len(bars) + 10_000
        routes = {
            "/chart": lambda: CandleChart(ingest=ingest, symbol=args.symbol),
            "/baseline": lambda: CandleChart(ingest=ingest, symbol=args.symbol, bars=everything, visible=everything,
                                             overview=0),
        }
        times, sizes = {"chart": [], "baseline": []}, {"chart": [], "baseline": []}
        with Server(ingest, routes) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            for name in times:  # warm-up: the server's first session, the browser's cache of Bokeh's JS
                open_page(browser, f"{url}/{name}", args.timeout)
            for _ in range(args.opens):
                for name in times:
                    seconds, size = open_page(browser, f"{url}/{name}", args.timeout)
                    times[name].append(seconds)
                    sizes[name].append(size)
            browser.close()
    ours, baseline = statistics.median(times["chart"]), statistics.median(times["baseline"])
    emit({
        "page_open_s": ours,
        "baseline_page_open_s": baseline,
        "ratio": baseline / ours,
        "target_s": 2.0,
        "stored_bars": len(bars),
        "opens": args.opens,
        "page_open_max_s": max(times["chart"]),
        "baseline_page_open_max_s": max(times["baseline"]),
        "websocket_kb": statistics.median(sizes["chart"]) / 1024,
        "baseline_websocket_kb": statistics.median(sizes["baseline"]) / 1024,
    }, args.json, f"Chart page open, {len(bars):,} stored 1m bars (median of {args.opens} opens, seconds)")


if __name__ == "__main__":
    main()
