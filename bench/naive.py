"""The naive baseline of the sessions benchmark: HoloViews ``Buffer`` + ``DynamicMap`` per session.

What a HoloViz tutorial would suggest for a live chart: each session reads the shared hub
on a 4 Hz ``pn.state.add_periodic_callback`` and ``Buffer.send``\\s the new rows to a
``DynamicMap`` of the symbol's trade prices on every exchange (``hv.Curve``) and one of
an exchange's candles (``hv.Segments`` wicks under ``hv.Rectangles`` bodies, the forming
bar upserted by start), both shown in ``pn.pane.HoloViews``. Served like the app: one
shared simulated ingest, many sessions.

    python bench/naive.py --port 5007 --store lmdb://DIR [--rate 100]

``GET /tickscope/sessions[?gc=1]`` answers ``{"sessions", "active_views",
"hub_subscribers", "periodic_callbacks", "python_blocks"}``; with ``gc=1``, after a full
collection (``python_blocks``: ``sys.getallocatedblocks()``, a leak signal the hub's
growing numpy buffers do not blur).
"""

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

sys.path.insert(0, str(Path(__file__).parents[1]))

from analytics.ingest import Ingest  # noqa: E402
from analytics.schema import TIMEFRAMES  # noqa: E402
from app.serve import SessionsHandler  # noqa: E402

# Naive pages whose timer is running in this process.
_PAGES = set()


def _candles(data: pd.DataFrame, width: pd.Timedelta):
    bars = data.drop_duplicates("start", keep="last")
    up = bars["close"] >= bars["open"]
    color = np.where(up, "#26a69a", "#ef5350")
    wicks = hv.Segments((bars["start"], bars["low"], bars["start"], bars["high"]),
                        kdims=["start", "low", "start2", "high"]).opts(color="gray")
    bodies = hv.Rectangles((bars["start"] - width / 2, bars[["open", "close"]].min(axis=1),
                            bars["start"] + width / 2, bars[["open", "close"]].max(axis=1), color),
                           vdims=["color"]).opts(color="color", line_color=None)
    return (wicks * bodies).opts(responsive=True, height=300)


def naive_page(ingest, exchange: str = "BINANCE", symbol: str = "BTC-USDT", timeframe: str = "1m",
               length: int = 2000, rate: float = 4.0):
    """One session's page: a price Curve and candles, each a DynamicMap fed by ``Buffer.send``."""
    hub = ingest.hub
    trade_keys = [("trades", name, symbol) for name, symbols in ingest.markets.items() if symbol in symbols]
    bar_key = ("bars", exchange, symbol, timeframe)
    trades = [hub.subscribe(key, since=max(0, hub.last_seq(key) - length)) for key in trade_keys]
    bars = hub.subscribe(bar_key, since=max(0, hub.last_seq(bar_key) - 200))
    price_buffer = hv.streams.Buffer(pd.DataFrame({"timestamp": pd.Series(dtype="datetime64[ns]"),
                                                   "price": pd.Series(dtype=float)}), length=length, index=False)
    bar_buffer = hv.streams.Buffer(pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "start" else float)
                                                 for c in ("start", "open", "high", "low", "close")}),
                                   length=400, index=False)
    width = pd.Timedelta(TIMEFRAMES[timeframe]) * 0.8
    prices = hv.DynamicMap(lambda data: hv.Curve(data, "timestamp", "price").opts(responsive=True, height=300),
                           streams=[price_buffer])
    candles = hv.DynamicMap(lambda data: _candles(data, width), streams=[bar_buffer])

    def tick():
        new = pd.concat([cursor.read()[["timestamp", "price"]] for cursor in trades])
        if len(new):
            price_buffer.send(new.sort_values("timestamp").reset_index(drop=True))
        new = bars.read()
        if len(new):
            bar_buffer.send(new[["start", "open", "high", "low", "close"]].reset_index(drop=True))

    def close(session_context):
        callback.stop()
        for cursor in [*trades, bars]:
            cursor.close()
        _PAGES.discard(page)

    page = pn.Column(f"# Naive baseline: {symbol}, candles on {exchange}",
                     pn.pane.HoloViews(prices, sizing_mode="stretch_width"),
                     pn.pane.HoloViews(candles, sizing_mode="stretch_width"), sizing_mode="stretch_width")
    tick()
    callback = pn.state.add_periodic_callback(tick, period=int(1000 / rate))
    _PAGES.add(page)
    pn.state.on_session_destroyed(close)
    return page


def serve(port: int, store=None, rate: float = 100.0, address: str = "127.0.0.1", session_lifetime: float = 5.0,
          symbols=None) -> int:
    """Serve the naive page at "/" over one shared simulated ingest until SIGTERM or Ctrl-C."""
    ingest = Ingest(source="simulator", store=store, rate=rate, symbols=symbols)
    hv.extension("bokeh")
    pn.extension()
    server = pn.serve({"/": lambda: naive_page(ingest)}, port=port, address=address, show=False, start=False,
                      title="Naive baseline", websocket_origin=[f"{address}:{port}", f"localhost:{port}"],
                      check_unused_sessions_milliseconds=1000,
                      unused_session_lifetime_milliseconds=int(session_lifetime * 1000),
                      extra_patterns=[("/tickscope/sessions", SessionsHandler,
                                       {"ingest": ingest, "active_views": lambda: len(_PAGES)})])
    loop = asyncio.get_event_loop()
    loop.run_until_complete(ingest.start())
    signal.signal(signal.SIGTERM, lambda *_: server.io_loop.add_callback_from_signal(server.io_loop.stop))
    try:
        server.start()
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        loop.run_until_complete(ingest.stop())
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5007)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--store", default=None, help="ArcticDB URI (default: the ingest's)")
    parser.add_argument("--rate", type=float, default=100.0, help="simulated trades/s per exchange")
    parser.add_argument("--symbols", nargs="+", default=None, help="markets (default: the ingest's; BTC-USDT shown)")
    parser.add_argument("--session-lifetime", type=float, default=5.0,
                        help="seconds a closed session is kept before it is destroyed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return serve(args.port, args.store, args.rate, args.address, args.session_lifetime, args.symbols)


if __name__ == "__main__":
    sys.exit(main())
