"""``python -m analytics serve``: one shared ingest per process, many sessions watching it.

The feed, pipeline and store writer start once, on the server's own event loop, before
the first session; every page of every session reads that one ingest's hub. Bokeh and
Panel's JavaScript and CSS are served by this server: the app needs no internet.
"""

import asyncio
import gc
import json
import logging
import signal
import sys

import panel as pn
from tornado.web import RequestHandler

from analytics.exchange.history import simulated_history
from analytics.exchange.news import news_history
from analytics.feeds.sources import DEFAULT_SYMBOLS, LIVE_EXCHANGES
from analytics.ingest import Ingest
from analytics.sentiment.aggregate import TIMEFRAMES, sentiment_bars
from analytics.sentiment.feed import recompute
from analytics.sentiment.items import scored_items
from analytics.sentiment.sources import SIMULATED, now_utc
from analytics.sentiment.store import NewsStore
from analytics.views.base import active_views
from app.pages import BUILDERS

LOG = logging.getLogger(__name__)

# A closed browser tab's session is released this long after its websocket closes.
UNUSED_SESSION_LIFETIME_MS = 5000
CHECK_UNUSED_SESSIONS_MS = 1000


class SessionsHandler(RequestHandler):
    """``GET /tickscope/sessions``: what the open sessions hold (for monitoring and leak checks).

    ``?gc=1`` runs a full garbage collection first. ``active_views`` counts the pages' live
    views (the naive benchmark page passes its own count).
    """

    def initialize(self, ingest, active_views=active_views):
        self.ingest, self.active_views = ingest, active_views

    def get(self):
        if self.get_argument("gc", "0") == "1":
            gc.collect()
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({
            "sessions": sum(len(self.application.get_sessions(path)) for path in self.application.app_paths),
            "active_views": self.active_views(),
            "hub_subscribers": self.ingest.hub.subscribers,
            "periodic_callbacks": sum(len(callbacks) for callbacks in pn.state._periodic.values()),
            "python_blocks": sys.getallocatedblocks(),
        }))


def _page(build, ingest, update_rate):
    def page():  # a plain function: pn.serve calls it once per session
        return build(ingest, update_rate)
    return page


def _simulated_history(store, symbols, exchanges, days: float, seed, news: bool = True) -> None:
    """Store ``days`` of simulated bars (one market seen on every exchange) for the markets holding no bars,
    and with ``news`` the simulated news that goes with them (see :func:`_news_history`)."""
    held = store.symbols("bars")
    held = set(zip(held["exchange"], held["symbol"]))
    if all((exchange, symbol) in held for exchange in exchanges for symbol in symbols):
        return
    bars = simulated_history(symbols, exchanges, days, seed=seed)
    missing = [(exchange, symbol) not in held for exchange, symbol in zip(bars["exchange"], bars["symbol"])]
    rows = store.write("bars", bars[missing])
    LOG.info("stored %s simulated bars (1m, 5m, 1h) of %d days for markets without history", f"{rows:,}", days)
    if news:
        _news_history(store, bars[missing], exchanges[0], seed)


def _news_history(store, bars, exchange: str, seed) -> None:
    """Store the news the live desk would have written on the 1m ``bars`` just stored on ``exchange`` (where it
    reads its prices), scored, with the closed 5m and 1h sentiment bars of the coins; nothing if the store
    holds simulated news already (that news has a past of its own, which new headlines would contradict).

    Sentiment bars still forming are left to the live feed, which closes and stores them as its own.
    """
    news = NewsStore(store)
    if len(news.read_items(source=SIMULATED, limit=1)):
        return
    minutes = bars[(bars["exchange"] == exchange).to_numpy() & (bars["timeframe"] == "1m").to_numpy()]
    if not len(minutes):
        return
    closes = {symbol.partition("-")[0]: part.set_index("start") for symbol, part in minutes.groupby("symbol")}
    stored = news.write_items(scored_items(news_history(closes, seed=seed)))
    now = now_utc()
    keys = set()
    for timeframe in TIMEFRAMES:
        made = sentiment_bars(stored, timeframe, now=now)
        made = made[made["closed"].to_numpy()]
        keys.update(zip(made["coin"].tolist(), made["timeframe"].tolist(), made["start"].tolist()))
    written = news.write_sentiment(recompute(news, keys))  # from every stored item in their span, as live
    LOG.info("stored %s simulated news items and %s sentiment bars (5m, 1h) to go with them", f"{len(stored):,}",
             f"{written:,}")


def serve(source="auto", exchanges=None, symbols=None, store=None, port=5006, address="127.0.0.1", rate=50.0,
          speed=1.0, seed=None, update_rate=4.0, history=0.0, news=True) -> int:
    """Start the feed once, then serve the app until interrupted.

    Parameters
    ----------
    update_rate : float
        Updates per second of each session's live views (the per-session bound).
    history : float
        With the simulator, first store this many days of simulated bars for the markets the
        store holds no bars of (see :func:`analytics.exchange.history.backfill`), so that charts,
        volatility cones and GARCH have a past; with ``news``, the simulated news and sentiment
        that go with them too (unless the store holds simulated news already). 0: none.
    news : bool
        Score news sentiment (the ingest's default news sources); False: none.

    Raises
    ------
    ValueError
        Bad source, exchange, symbol or update rate.
    OSError
        The port is busy.
    """
    if not 0.1 <= update_rate <= 20:
        raise ValueError(f"the update rate must be 0.1 to 20 per second, got {update_rate}")
    if history < 0:
        raise ValueError(f"--history must be 0 or more days, got {history:g}")
    if history and source != "simulator":
        raise ValueError(f"simulated history goes with the simulator only, not --source {source}")
    ingest = Ingest(source=source, exchanges=exchanges, symbols=symbols, store=store, rate=rate, speed=speed,
                    seed=seed, news=None if news else False)
    if history and ingest.store is not None:
        _simulated_history(ingest.store, symbols or DEFAULT_SYMBOLS, exchanges or list(LIVE_EXCHANGES), history, seed,
                           news)
    pn.extension("tabulator")
    routes = {path: _page(build, ingest, update_rate) for path, build in BUILDERS.items()}
    server = pn.serve(routes, port=port, address=address, show=False, start=False, title="Tickscope",
                      websocket_origin=[f"{address}:{port}", f"localhost:{port}"],
                      check_unused_sessions_milliseconds=CHECK_UNUSED_SESSIONS_MS,
                      unused_session_lifetime_milliseconds=UNUSED_SESSION_LIFETIME_MS,
                      extra_patterns=[("/tickscope/sessions", SessionsHandler, {"ingest": ingest})])
    loop = asyncio.get_event_loop()
    loop.run_until_complete(ingest.start())
    LOG.info("serving %s on http://%s:%d", ingest.label, address, port)
    # SIGTERM stops like Ctrl-C: the loop ends, then the ingest flushes everything to the store
    signal.signal(signal.SIGTERM, lambda *_: server.io_loop.add_callback_from_signal(server.io_loop.stop))
    try:
        server.start()
        server.io_loop.start()
    except KeyboardInterrupt:
        LOG.info("interrupted")
    finally:
        loop.run_until_complete(ingest.stop())
    return 0
