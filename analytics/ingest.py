"""One ingest: source -> cryptofeed -> batcher -> streamz pipeline -> ArcticDB, bars and hub.

This is the once-per-process service behind ``python -m analytics ingest``, the served
app and the notebooks. Construct it (arguments are validated at once), then
``await start()`` on a running loop and ``await stop()``; or ``await run(duration)``.
"""

import asyncio
import gc
import logging
import time

from analytics.feeds import CHANNELS, DEFAULT_SYMBOLS, LIVE_EXCHANGES, Batcher, MarketFeed, Subscription
from analytics.feeds.handler import listed_symbols
from analytics.feeds.sources import parse_source, resolve
from analytics.feeds.workers import FeedWorkers
from analytics.metrics import Counters, LatencyHistogram
from analytics.pipeline import Hub, Pipeline
from analytics.schema import TIMEFRAMES
from analytics.storage import StoreWriter, TickStore

LOG = logging.getLogger(__name__)


def _validate_names(exchanges, symbols):
    exchanges = [e.upper() for e in (exchanges or LIVE_EXCHANGES)]
    unknown = [e for e in exchanges if e not in LIVE_EXCHANGES]
    if unknown:
        raise ValueError(f"unknown exchange {', '.join(unknown)}: choose from {', '.join(LIVE_EXCHANGES)}")
    if symbols is not None:
        bad = [s for s in symbols if s.count("-") != 1 or s != s.upper()]
        if bad:
            raise ValueError(f"symbols must look like BTC-USDT (cryptofeed's normalized form), got {', '.join(bad)}")
    return exchanges, (list(symbols) if symbols is not None else None)


class Ingest:
    """The market data service of one process.

    Parameters
    ----------
    source : str
        ``auto`` (default), ``live``, ``simulator`` or ``replay:PATH``.
    exchanges : list of str, optional
        Exchange ids (default BINANCE, KRAKEN, BITFINEX). A replay uses those found in
        its folder.
    symbols : list of str, optional
        Normalized symbols (default: eight coins against USDT). Live, the defaults are
        narrowed to what each exchange lists; symbols named explicitly must exist.
    store : str or TickStore, optional
        An ArcticDB URI or an open store; default ``lmdb://`` under ``./data``.
        ``False`` runs without storage.
    rate : float
        Simulated trades/s per exchange (local exchange only).
    speed : float
        Replay speed multiple (local exchange only).
    batch_interval, batch_rows : float, int
        When the batcher emits a DataFrame.
    flush_interval : float
        Seconds between storage flushes.
    exchange : LocalExchange or RemoteExchange, optional
        An already running local exchange to read from (e.g. ``analytics.exchange.attach(url)``
        for one in another process) instead of starting one; it is not stopped with the ingest.
    workers : bool
        Run cryptofeed, its callbacks and the batcher in one process per exchange
        (:class:`~analytics.feeds.workers.FeedWorkers`), so this process's loop only sees
        batches; False runs them all on this loop.
    news : None, False or list
        News sentiment (:class:`~analytics.sentiment.feed.SentimentFeed`, into the same hub and
        store). None: the simulator's simulated news from the local exchange (``/news/rss``),
        live the default feeds and subreddits, a replay none; False: none; a list: these
        sources whatever the market source.
    news_interval : float, optional
        Seconds between fetches of a news source; default 5 from the local exchange, 60 live.

    Attributes
    ----------
    markets : dict
        ``{exchange: [symbols]}`` subscribed, known once :meth:`start` has resolved the source.
    screen_latency : analytics.metrics.LatencyHistogram
        Receipt to sent-to-a-viewer latency, filled by the live views of :mod:`analytics.views`.
    news : analytics.sentiment.feed.SentimentFeed or None
        The news feed, made by :meth:`start` (None when there is no news).
    """

    def __init__(self, source: str = "auto", exchanges=None, symbols=None, store=None, channels=CHANNELS,
                 depth: int = 10, rate: float = 50.0, speed: float = 1.0, batch_interval: float = 0.05,
                 batch_rows: int = 5000, flush_interval: float = 1.0, hub_maxlen: int = 50_000,
                 timeframes=tuple(TIMEFRAMES), probe_timeout: float = 3.0, seed=None, exchange=None,
                 workers: bool = True, news=None, news_interval: float | None = None):
        self.source = parse_source(source)
        self.exchanges, self.symbols = _validate_names(exchanges, symbols)
        if not rate > 0 or not speed > 0:
            raise ValueError("rate and speed must be positive")
        if not 0.005 <= batch_interval <= 10 or batch_rows < 1:
            raise ValueError("batch_interval must be 0.005 to 10 s and batch_rows positive")
        if exchange is not None and not self.source.local:
            raise ValueError("an exchange to attach to needs source simulator or replay:PATH")
        if not (news is None or news is False or (isinstance(news, (list, tuple)) and news)):
            raise ValueError(f"news must be None (the default sources), False or a list of sources, got {news!r}")
        if news_interval is not None and not news_interval > 0:
            raise ValueError(f"news_interval must be > 0 seconds, got {news_interval!r}")
        self.news_sources, self.news_interval = news, news_interval
        self.news = None
        self.channels = list(channels)
        self.depth, self.rate, self.speed, self.seed = depth, rate, speed, seed
        self.probe_timeout = probe_timeout
        self.store = TickStore(store) if store is None or isinstance(store, str) else (store or None)
        self.counters = Counters()
        self.hub = Hub(maxlen=hub_maxlen)
        self.writer = StoreWriter(self.store, flush_interval=flush_interval) if self.store else None
        try:
            self.pipeline = Pipeline(writer=self.writer, hub=self.hub, timeframes=timeframes)
        except ValueError:
            if self.writer is not None:
                self.writer.close()
            raise
        self.batch_interval, self.batch_rows, self.workers = batch_interval, batch_rows, workers
        self.exchange = exchange
        self._owns_exchange = exchange is None
        self.feed = None
        self.started = None
        self.markets = {}
        self.screen_latency = LatencyHistogram()
        self._finished = False

    @property
    def label(self) -> str:
        """Where the data comes from, as the UI must say it."""
        return self.source.label

    def _local_subscriptions(self) -> list:
        from analytics.exchange import LocalExchange

        symbols = self.symbols or list(DEFAULT_SYMBOLS)
        if self._owns_exchange:
            self.exchange = LocalExchange(self.source.spec, symbols=symbols, rate=self.rate, speed=self.speed,
                                          seed=self.seed)
            self.exchange.start_in_thread()
        names = self.exchange.exchanges if self.source.kind == "replay" else self.exchanges
        subs = []
        for name in names:
            served = self.exchange.symbols_for(name)
            missing = sorted(set(symbols) - set(served)) if self.source.kind == "simulator" else []
            if missing:
                raise ValueError(f"the local exchange does not serve {', '.join(missing)} on {name}")
            channels = [c for c in self.exchange.channels_for(name) if c in self.channels]
            subs.append(Subscription(self.exchange.feed_class(name), served if self.source.kind == "replay"
                                     else symbols, channels))
        return subs

    def _live_subscriptions(self) -> list:
        subs = []
        for name in self.exchanges:
            feed_class = LIVE_EXCHANGES[name]
            symbols = self.symbols
            if symbols is None:
                listed = listed_symbols(feed_class)
                symbols = [s for s in DEFAULT_SYMBOLS if s in listed]
                skipped = sorted(set(DEFAULT_SYMBOLS) - listed)
                if skipped:
                    LOG.warning("%s does not list %s: skipped", name, ", ".join(skipped))
            subs.append(Subscription(feed_class, symbols, self.channels))
        return subs

    async def start(self) -> None:
        """Resolve the source, start the local exchange if needed, then the feeds."""
        self.source = await resolve(self.source, timeout=self.probe_timeout)
        LOG.info("source: %s", self.source.label)
        build = self._local_subscriptions if self.source.local else self._live_subscriptions
        try:
            subs = await asyncio.to_thread(build)
            self.markets = {sub.feed_class.id: sorted(sub.symbols) for sub in subs}
            self.news = self._news_feed()
            if self.workers:
                status_url = self.exchange.status_url if self.source.local else None
                self.feed = FeedWorkers(self.pipeline.emit, subs, status_url, depth=self.depth,
                                        interval=self.batch_interval, max_rows=self.batch_rows, counters=self.counters)
            else:
                batcher = Batcher(self.pipeline.emit, interval=self.batch_interval, max_rows=self.batch_rows,
                                  depth=self.depth)
                self.feed = MarketFeed(batcher, subs, depth=self.depth, counters=self.counters)
            await self.feed.start()
            if self.news is not None:
                await self.news.start()
        except BaseException:
            await self.stop()
            raise
        gc.collect()
        gc.freeze()  # the long-lived objects of the libraries: no full collection walks them again (latency)
        self.started = time.time()
        self.pipeline.start_clock(asyncio.get_running_loop())  # closes bars of quiet symbols

    def _news_feed(self):
        """The news feed the options and the resolved source ask for, or None."""
        from analytics.sentiment.feed import SentimentFeed, news_url
        from analytics.sentiment.sources import default_sources, simulated_source

        label = None
        if self.news_sources is False or (self.news_sources is None and self.source.kind == "replay"):
            return None
        if self.news_sources is not None:
            sources = list(self.news_sources)
        elif self.source.kind == "simulator":
            sources = [simulated_source(news_url(self.exchange))]
            label = "SIMULATED news (local exchange on 127.0.0.1)"
        else:
            sources = default_sources()
        interval = self.news_interval or (5.0 if self.source.local else 60.0)
        return SentimentFeed(sources, self.hub, store=self.store, interval=interval, label=label)

    @property
    def finished(self) -> bool:
        """True when a replay has delivered everything it holds."""
        if self.exchange is not None and self.source.kind == "replay" and self.exchange.finished:
            self._finished = True
        return self._finished

    def messages(self) -> int:
        """Messages received from all exchanges so far."""
        return sum(v for k, v in self.counters.snapshot().items() if k[2] == "messages")

    def errors(self) -> dict:
        """Malformed messages, gaps, reconnects, storage and pipeline errors."""
        counts = {}
        for (exchange, group, name), value in self.counters.snapshot().items():
            if group == "errors":
                counts[name] = counts.get(name, 0) + value
        counts["pipeline"] = self.feed.errors if self.feed is not None else 0
        counts["storage"] = self.writer.errors if self.writer else 0
        return counts

    def rows_stored(self) -> int:
        return sum(self.writer.rows_stored.values()) if self.writer else 0

    async def drain(self, quiet: float = 0.5, limit: float = 10.0) -> None:
        """Wait until no message has arrived for ``quiet`` seconds (at most ``limit``)."""
        deadline = time.monotonic() + limit
        last, since = self.messages(), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < quiet:
            await asyncio.sleep(0.05)
            now = self.messages()
            if now != last:
                last, since = now, time.monotonic()

    async def run(self, duration: float | None = None, progress=None) -> None:
        """Start, run until ``duration`` seconds pass or a replay ends, then stop.

        ``progress``, if given, is called about once a second with this object.
        """
        await self.start()
        try:
            end = None if duration is None else time.monotonic() + duration
            while end is None or time.monotonic() < end:
                await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())) if end else 1.0)
                if progress:
                    progress(self)
                if self.finished:
                    await self.drain()
                    break
        finally:
            await self.stop()

    async def stop(self, store_timeout: float = 120.0) -> None:
        """Stop the news and the feeds, flush the batcher, pipeline and storage, stop the local exchange.

        Each step runs even if an earlier one failed. If the store cannot take the last
        rows within ``store_timeout`` seconds, how many are left is logged.
        """
        try:
            try:
                if self.news is not None:
                    await self.news.stop()
            finally:
                if self.feed is not None and not self.pipeline.closed:
                    await self.feed.stop()
        finally:
            self.pipeline.close()
            try:
                if self.writer is not None and not await asyncio.to_thread(self.writer.close, store_timeout):
                    LOG.error("the store did not take the last %d rows within %.0f s: %s",
                              self.writer.backlog_rows, store_timeout, self.writer.last_error)
            finally:
                if self.exchange is not None and self._owns_exchange:
                    self._finished = self.finished
                    await asyncio.to_thread(self.exchange.stop_in_thread)
                    self.exchange = None
