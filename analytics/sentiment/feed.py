"""The live news path: sources -> poller -> scoring and coin tags -> hub and store, on the server's loop.

::

    Poller (one task per source) --on_items--> queue
    queue --chunks of ``chunk`` items--> score + tag + label (a scoring process)
          --> hub ("news",)                          scored items, arrival order
          --> aggregator --> hub ("sentiment", coin, timeframe)   forming and closed bars
          --> pending --every ``flush_interval``--> store (a writer thread): new items by id,
                                                    then the closed bars they touch, recomputed
    clock --every ``flush_interval``--> bars the clock closes --> hub, and to the store

Scoring is pure Python (VADER, coin patterns: a few thousand items/s): it runs in a process
of its own at a lower priority, one chunk at a time, so it holds neither this process's GIL
nor the CPU the price feed needs. The loop only publishes each scored chunk (a few ms per 500
items), yielding between chunks: a backlog of thousands of items delays the price feed by a
publish, not by its scoring. A ``SentimentFeed`` therefore starts a process (``spawn``, at its
first item): a script using it needs the ``if __name__ == "__main__":`` guard, as for the
feed workers.

The store is the source of truth for bars: a closed bar is written as
:func:`~analytics.sentiment.aggregate.sentiment_bars` of the stored items, so a late item or a
restart never leaves a stored bar wrong; the hub's bars come from the incremental
:class:`~analytics.sentiment.aggregate.SentimentAggregator`, which starts from the stored items
of the last ``history`` seconds. Items are scored by title (see :mod:`.items`); an item
without a title is counted as malformed and skipped.
"""

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import signal
import time
from collections import Counter, deque
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pandas as pd

from analytics.pipeline import Hub
from analytics.sentiment.aggregate import TIMEFRAMES, SentimentAggregator, check_timeframe, sentiment_bars
from analytics.sentiment.items import ITEM_COLUMNS, scored_items, well_formed
from analytics.sentiment.poller import Poller, SeenIds
from analytics.sentiment.sources import SIMULATED, now_utc
from analytics.sentiment.store import NewsStore
from analytics.storage import TickStore

LOG = logging.getLogger(__name__)
NEWS_KEY = ("news",)
SEEN_LIMIT = 100_000
SCORING_NICE = 10  # the scoring process yields the CPU to the price feed
_CONTEXT = multiprocessing.get_context("spawn")  # no fork of a process running threads


def news_url(exchange) -> str:
    """The simulated news feed of a local exchange (a ``LocalExchange`` or an attached one)."""
    return exchange.status_url.rsplit("/tickscope/", 1)[0] + "/news/rss"


def _scoring_process() -> None:
    """Initializer of the scoring process: no Ctrl-C (the feed stops it), a lower priority."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    os.nice(SCORING_NICE)


def submit_scoring(pool, items: list):
    """Score ``items`` in ``pool``; the first call starts its process, which must not get Ctrl-C while it starts."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # inherited by the child
    try:
        return pool.submit(scored_items, items)  # (the spawn context starts a missing process in submit)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def scoring_pool() -> concurrent.futures.ProcessPoolExecutor:
    """A pool of one scoring process, started at its first job."""
    return concurrent.futures.ProcessPoolExecutor(1, mp_context=_CONTEXT, initializer=_scoring_process)


def _closed_keys(items: pd.DataFrame, timeframes, now, close_delay: pd.Timedelta) -> set:
    """(coin, timeframe, start) of the closed bars that ``items`` fall in."""
    keys = set()
    for timeframe in timeframes:
        bars = sentiment_bars(items, timeframe, now=now, close_delay=close_delay.total_seconds())
        bars = bars[bars["closed"].to_numpy()]
        keys.update(zip(bars["coin"].tolist(), bars["timeframe"].tolist(), bars["start"].tolist()))
    return keys


def recompute(store: NewsStore, keys: set) -> pd.DataFrame:
    """The bars ``keys`` (coin, timeframe, start) from the items stored in their time span."""
    if not keys:
        return pd.DataFrame()
    first = min(start for _, _, start in keys)
    last = max(start + check_timeframe(timeframe) for _, timeframe, start in keys)
    stored = store.read_items(first, last - pd.Timedelta(1, "ns"))
    bars = pd.concat([sentiment_bars(stored, timeframe) for timeframe in sorted({k[1] for k in keys})])
    wanted = [key in keys for key in zip(bars["coin"], bars["timeframe"], bars["start"])]
    return bars[np.array(wanted, dtype=bool)]


class SentimentFeed:
    """News sources polled, scored and tagged into the hub and the store, on the running loop.

    Parameters
    ----------
    sources : list
        :mod:`analytics.sentiment.sources` objects (distinct names).
    hub : Hub, optional
        Where ``("news",)`` and ``("sentiment", coin, timeframe)`` rows are published; a new one by default.
    store : NewsStore, TickStore or str, optional
        Where items and closed bars are stored; None stores nothing. Its stored ids seed the
        poller's de-duplication, so a restart stores nothing twice.
    interval : float
        Seconds between fetches of one source.
    label : str, optional
        How the UI names this news (default: simulated or ``Live news: N feeds``).
    chunk : int
        Items scored at a time; the loop runs other work between chunks.
    flush_interval : float
        Seconds between store writes and clock ticks closing bars.
    close_delay : float, optional
        Seconds past its end before a sentiment bar closes; default ``interval`` (news comes late).
    timeframes : sequence of str
        Sentiment bar timeframes (of ``"5m"``, ``"1h"``).
    history : float
        On start, the stored items since the hour ``history`` seconds ago seed the bars and
        are published first, so views start with a past; 0: none.

    Raises
    ------
    ValueError
        For no sources, bad numbers or an unknown timeframe.
    """

    def __init__(self, sources, hub=None, store=None, interval: float = 60.0, label: str | None = None, *,
                 chunk: int = 500, flush_interval: float = 1.0, close_delay: float | None = None,
                 timeframes=tuple(TIMEFRAMES), history: float = 86400.0):
        self.sources = list(sources)
        if not self.sources:
            raise ValueError("a news feed needs at least one source")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be a positive number of items, got {chunk!r}")
        if not flush_interval > 0 or not history >= 0:
            raise ValueError(f"flush_interval must be > 0 and history >= 0 seconds, got {flush_interval!r}, "
                             f"{history!r}")
        self.hub = Hub() if hub is None else hub
        self.store = NewsStore(store) if isinstance(store, (str, TickStore)) else store
        self.poller = Poller(self.sources, self._receive, interval=interval)
        self.aggregator = SentimentAggregator(timeframes, close_delay=interval if close_delay is None else close_delay)
        self.label = label or _default_label(self.sources)
        self.chunk, self.flush_interval, self.history = chunk, flush_interval, history
        self._queue = deque()
        self._pending = []  # scored frames not stored yet
        self._closing = set()  # keys of bars closed by the clock, to store
        self._counts = {}  # source -> Counter(received, malformed, scored, stored)
        self._queued = Counter()  # source -> items in the queue
        self.errors, self.last_error = 0, ""
        self._wake = self._done = None
        self._tasks = []
        self._scorer = self._writer = None
        self.started = None

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        """Seed de-duplication and bars from the store, start polling (the scoring process starts at the first item)."""
        if self._tasks:
            raise RuntimeError("the news feed is already running")
        loop = asyncio.get_running_loop()
        self._scorer = scoring_pool()
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="news-store")
        self._wake, self._done = asyncio.Event(), asyncio.Event()
        if self.store is not None:
            try:
                ids, recent = await loop.run_in_executor(self._writer, self._recent)
            except BaseException:
                self._writer.shutdown()
                raise
            self.poller.seen = SeenIds(ids, limit=SEEN_LIMIT)
            self._seed(recent)
        self._tasks = [loop.create_task(self._work(), name="news scoring"),
                       loop.create_task(self._clock(), name="news clock")]
        await self.poller.start()
        self.started = time.time()

    async def stop(self) -> None:
        """Stop polling, score what is queued, store everything pending (idempotent)."""
        if not self._tasks:
            return
        await self.poller.stop()
        self._done.set()
        self._wake.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._flush(now_utc())
        await asyncio.to_thread(self._scorer.shutdown)
        self._writer.shutdown()

    # -- what comes in -------------------------------------------------------------
    def _receive(self, items: list) -> None:
        """The poller's callback: queue the new items (scored by the worker)."""
        for item in items:
            source = getattr(item, "source", "?")
            self._count(source, "received")
            self._queued[source] += 1
        self._queue.extend(items)
        self._wake.set()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                chunk = [self._queue.popleft() for _ in range(min(self.chunk, len(self._queue)))]
                try:
                    await self._process(chunk)
                finally:
                    self._queued.subtract(getattr(item, "source", "?") for item in chunk)
                await asyncio.sleep(0)  # let the price feed run between chunks
            if self._done.is_set():
                return

    async def _process(self, chunk: list) -> None:
        valid = [item for item in chunk if well_formed(item)]
        for item in chunk:
            if not well_formed(item):
                self._count(getattr(item, "source", "?"), "malformed")
        if not valid:
            return
        try:
            frame = await self._score(valid)
        except Exception as error:  # a bug in scoring must not end the feed: count it, drop the chunk
            self._fail(f"scoring {len(valid)} items failed: {type(error).__name__}: {error}")
            return
        self.hub.publish(NEWS_KEY, frame)
        self._publish_bars(self.aggregator.add(frame, now_utc()))
        for source, n in frame["source"].value_counts().items():
            self._count(source, "scored", n)
        if self.store is not None:
            self._pending.append(frame)

    async def _score(self, items: list) -> pd.DataFrame:
        """:func:`~analytics.sentiment.items.scored_items` in the scoring process (restarted once if it died)."""
        try:
            return await asyncio.wrap_future(submit_scoring(self._scorer, items))
        except BrokenProcessPool:
            self._fail("the scoring process died: restarted")
            self._scorer.shutdown(wait=False)
            self._scorer = scoring_pool()
            return await asyncio.wrap_future(submit_scoring(self._scorer, items))

    def _publish_bars(self, bars: pd.DataFrame) -> None:
        """Publish bars sorted by coin and timeframe, one slice per hub key."""
        if not len(bars):
            return
        columns = {name: bars[name].to_numpy() for name in bars.columns}
        coins, timeframes = columns["coin"], columns["timeframe"]
        changes = np.flatnonzero((coins[1:] != coins[:-1]) | (timeframes[1:] != timeframes[:-1])) + 1
        bounds = [0, *changes.tolist(), len(bars)]
        for a, b in zip(bounds, bounds[1:]):
            self.hub.publish_columns(("sentiment", coins[a], timeframes[a]), {c: v[a:b] for c, v in columns.items()})

    # -- the clock and the store ---------------------------------------------------
    async def _clock(self) -> None:
        while not self._done.is_set():
            try:
                await asyncio.wait_for(self._done.wait(), self.flush_interval)
            except TimeoutError:
                pass
            now = now_utc()
            closed = self.aggregator.close_until(now)
            self._publish_bars(closed)
            if self.store is not None:
                self._closing.update(zip(closed["coin"].tolist(), closed["timeframe"].tolist(),
                                         closed["start"].tolist()))
                if not self._done.is_set():
                    await self._flush(now)

    async def _flush(self, now) -> None:
        """Store the pending items, then the closed bars they or the clock touched (on the writer thread)."""
        if self.store is None or not (self._pending or self._closing):
            return
        frames, keys = self._pending, self._closing
        self._pending, self._closing = [], set()
        try:
            stored = await asyncio.get_running_loop().run_in_executor(self._writer, self._persist, frames, keys, now)
        except Exception as error:  # the store failed: count it; the items are kept for the next flush
            self._pending = frames + self._pending
            self._closing |= keys
            self._fail(f"storing news failed: {type(error).__name__}: {error}")
            return
        for source, n in stored.items():
            self._count(source, "stored", n)

    def _persist(self, frames: list, keys: set, now) -> dict:
        """Writer thread: new items, then recomputed closed bars; stored items by source."""
        new = self.store.write_items(pd.concat(frames)) if frames else pd.DataFrame({"source": []})
        if len(new):
            keys = keys | _closed_keys(new, self.aggregator.timeframes, now, self.aggregator.close_delay)
        bars = recompute(self.store, keys)
        if len(bars):
            self.store.write_sentiment(bars)
        return new["source"].value_counts().to_dict()

    def _recent(self) -> tuple:
        """Writer thread: the stored ids for de-duplication, and the items since the hour ``history`` seconds ago."""
        if not self.history:
            return self.store.seen_ids(SEEN_LIMIT), self.store.read_items(limit=0)
        since = (now_utc() - pd.Timedelta(seconds=self.history)).floor("1h")
        return self.store.seen_ids(SEEN_LIMIT), self.store.read_items(start=since)

    def _seed(self, recent: pd.DataFrame) -> None:
        if not len(recent):
            return
        now = now_utc()
        self.hub.publish(NEWS_KEY, recent.iloc[-self.hub.maxlen:].reset_index()[list(ITEM_COLUMNS)])
        bars = [sentiment_bars(recent, tf, now=now, close_delay=self.aggregator.close_delay.total_seconds())
                for tf in self.aggregator.timeframes]
        bars = pd.concat(bars).sort_values(["coin", "timeframe", "start"], kind="stable")
        self.aggregator.seed(bars)
        self._publish_bars(bars)

    # -- reporting -----------------------------------------------------------------
    def _count(self, source: str, what: str, n: int = 1) -> None:
        self._counts.setdefault(source, Counter())[what] += int(n)

    def _fail(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        if self.errors == 1:
            LOG.error("news: %s", message)
        else:
            LOG.debug("news: %s", message)

    @property
    def backlog(self) -> int:
        """Items received and not scored yet."""
        return len(self._queue)

    def stats(self) -> dict:
        """``{"sources": {name: counts}, "total": counts}``.

        Counts: ``items`` fetched and ``new`` (not seen before) by the poller, ``received``
        by this feed, ``malformed`` (skipped), ``scored``, ``stored``, ``errors`` (the
        source's and malformed items; the total adds scoring and storage failures),
        ``last_error`` and ``backlog`` (queued, not scored yet). Items carrying their own
        source name (JSON lines may) are counted under it.
        """
        polled = self.poller.stats()
        out = {}
        for name in sorted(set(polled) | set(self._counts)):
            tally, counts = polled.get(name, {}), self._counts.get(name, Counter())
            out[name] = {"items": tally.get("items", 0), "new": tally.get("new", 0), "received": counts["received"],
                         "malformed": counts["malformed"], "scored": counts["scored"], "stored": counts["stored"],
                         "errors": tally.get("errors", 0) + counts["malformed"],
                         "last_error": tally.get("last_error", ""), "backlog": self._queued[name]}
        total = {key: sum(s[key] for s in out.values()) for key in
                 ("items", "new", "received", "malformed", "scored", "stored", "errors", "backlog")}
        total["errors"] += self.errors
        total["last_error"] = self.last_error or next((s["last_error"] for s in out.values() if s["last_error"]), "")
        return {"sources": out, "total": total}


def _default_label(sources) -> str:
    if all(source.name == SIMULATED for source in sources):
        return "SIMULATED news (local exchange)"
    return f"Live news: {len(sources)} feed{'s' if len(sources) > 1 else ''}"
