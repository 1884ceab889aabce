"""The streamz graph of DataFrame batches from the batcher to storage, bars and the hub.

::

    trades --+-- store trades (writer.submit("trades", df))
             `-- group by key --+-- hub trades (one publish per exchange/symbol; receipt -> hub latency)
                                `-- build bars --+
    clock ---- close quiet bars ---------------+-- bar batches -- bars (non-empty) --+-- hub bars (upsert)
                                                                                     `-- closed bars -- any closed
                                                                                           -- store bars
    quotes --+-- store quotes
             `-- hub quotes
    depth ---- last snapshots -- hub depth

Every step is one named streamz node doing one thing per batch; storage comes first
on each source so it sees a batch before any viewer does. ``streamz`` is synchronous:
``emit`` runs the whole graph in the caller's thread (the feed's event loop).
"""

import logging
import time
from functools import partial

import numpy as np
import pandas as pd
from streamz import Stream

from analytics.metrics import Counters, LatencyHistogram
from analytics.pipeline.barbuilder import BarBuilder
from analytics.pipeline.groups import Groups
from analytics.pipeline.hub import Hub
from analytics.schema import SCHEMAS, TIMEFRAMES


LOG = logging.getLogger(__name__)


def last_snapshots(depth: pd.DataFrame) -> pd.DataFrame:
    """Only the newest book snapshot of each (exchange, symbol) in a depth batch."""
    if len(depth) == 0:
        return depth
    code = pd.factorize(depth["exchange"])[0] * (1 << 32) + pd.factorize(depth["symbol"])[0]
    _, first_from_end, inverse = np.unique(code[::-1], return_index=True, return_inverse=True)
    last = (len(code) - 1 - first_from_end)[inverse[::-1]]
    keep = np.ones(len(depth), dtype=bool)
    for name in ("timestamp", "receipt_timestamp"):
        values = depth[name].to_numpy()
        keep &= values == values[last]
    return depth if keep.all() else depth[keep]


def _by_key(trades: pd.DataFrame) -> tuple:
    """A trades batch and its rows grouped by (exchange, symbol), shared by hub and bars."""
    return trades, Groups([trades["exchange"].to_numpy(), trades["symbol"].to_numpy()])


def _closed(bars: pd.DataFrame) -> pd.DataFrame:
    return bars[bars["closed"].to_numpy()]


class Pipeline:
    """Storage, streaming bars and the hub, fed with batches by :meth:`emit`.

    Parameters
    ----------
    writer : object, optional
        Has ``submit(kind, df)`` (e.g. :class:`analytics.storage.StoreWriter`), given
        trades, quotes and closed bars; None stores nothing.
    hub : Hub, optional
        Where viewers read; a new ``Hub()`` by default.
    timeframes : sequence of str
        Bar timeframes (see :class:`BarBuilder`).
    loop : asyncio.AbstractEventLoop, optional
        If given (or a Tornado IOLoop wrapping one), :meth:`tick` runs on it every
        ``tick_interval`` seconds until :meth:`close`; otherwise call :meth:`tick`
        yourself. Call :meth:`emit` and :meth:`tick` from one thread: the loop's.
    close_delay : float
        Seconds after its end before a quiet bar is closed by the clock (late trades
        arriving within it need no correction).
    tick_interval : float
        Seconds between clock ticks when ``loop`` is given.

    Attributes
    ----------
    trades, quotes, depth : streamz.Stream
        The sources (``emit`` a batch into them, or call :meth:`emit`).
    bars : streamz.Stream
        Bar batches (schema ``BAR_COLUMNS``): closed bars and forming bars.
    hub_latency : analytics.metrics.LatencyHistogram
        Publish time minus ``receipt_timestamp`` for every trade row reaching the hub.
    """

    def __init__(self, writer=None, hub=None, timeframes=tuple(TIMEFRAMES), loop=None,
                 close_delay: float = 2.0, tick_interval: float = 1.0):
        if close_delay < 0 or tick_interval <= 0:
            raise ValueError("close_delay must be >= 0 and tick_interval > 0 seconds")
        self.writer = writer
        self.hub = Hub() if hub is None else hub
        self.builder = BarBuilder(timeframes)
        self.hub_latency = LatencyHistogram()
        self.close_delay = close_delay
        self._counters = Counters()
        self._newest = None  # (newest trade timestamp in ns, monotonic ns when it arrived)
        self._nodes = []
        self.trades = self._node(Stream(stream_name="trades"))
        self.quotes = self._node(Stream(stream_name="quotes"))
        self.depth = self._node(Stream(stream_name="depth"))
        self._clock = self._node(Stream(stream_name="clock"))
        self._store(self.trades, "trades")
        keyed = self._node(self.trades.map(_by_key, stream_name="group by key"))
        self._node(keyed.sink(self._publish_trades, stream_name="hub trades"))
        built = self._node(keyed.map(self._build, stream_name="build bars"))
        quiet = self._node(self._clock.map(self.builder.close_until, stream_name="close quiet bars"))
        merged = self._node(built.union(quiet, stream_name="bar batches"))
        self.bars = self._node(merged.filter(len, stream_name="bars"))
        self._node(self.bars.sink(self._publish_bars, stream_name="hub bars"))
        if writer is not None:
            closed = self._node(self.bars.map(_closed, stream_name="closed bars"))
            self._store(self._node(closed.filter(len, stream_name="any closed")), "bars")
        self._store(self.quotes, "quotes")
        self._node(self.quotes.sink(partial(self._publish, "quotes"), stream_name="hub quotes"))
        snapshots = self._node(self.depth.map(last_snapshots, stream_name="last snapshots"))
        self._node(snapshots.sink(partial(self._publish, "depth"), stream_name="hub depth"))
        self._loop = None
        self._tick_interval = tick_interval
        self._timer = None
        self.closed = False
        if loop is not None:
            self.start_clock(loop)

    def start_clock(self, loop) -> None:
        """Run :meth:`tick` on ``loop`` (asyncio, or a Tornado IOLoop wrapping one) every
        ``tick_interval`` seconds until :meth:`close`."""
        if self._loop is None:
            self._loop = getattr(loop, "asyncio_loop", loop)
            self._loop.call_soon_threadsafe(self._on_timer)

    def emit(self, kind: str, df: pd.DataFrame) -> None:
        """Push one batch of ``kind`` (``"trades"``, ``"quotes"``, ``"depth"``) through the graph.

        The batch must have the columns of :mod:`analytics.schema` for its kind.
        """
        if kind not in ("trades", "quotes", "depth"):
            raise ValueError(f"unknown batch kind {kind!r}: use 'trades', 'quotes' or 'depth'")
        missing = SCHEMAS[kind].keys() - set(df.columns)
        if missing:
            raise ValueError(f"{kind} batch lacks columns {sorted(missing)}")
        if self.closed or len(df) == 0:
            return
        self._counters.add(("batches", kind))
        self._counters.add(("rows", kind), len(df))
        if kind == "trades":
            newest = int(df["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64).max())
            if self._newest is None or newest > self._newest[0]:
                self._newest = (newest, time.monotonic_ns())
        getattr(self, kind).emit(df)

    def tick(self, now=None) -> None:
        """Close the bars of quiet symbols that ended ``close_delay`` seconds before ``now``.

        ``now`` defaults to the market's clock: the newest trade timestamp seen plus the
        wall-clock time since it arrived. Live, that is the wall clock; in a replay it
        follows the recorded times, so replayed bars are not all closed at once.
        """
        if self.closed or (now is None and self._newest is None):
            return
        if now is None:
            now = self._newest[0] + (time.monotonic_ns() - self._newest[1])
        self._clock.emit(pd.Timestamp(now) - pd.Timedelta(seconds=self.close_delay))

    @property
    def stats(self) -> dict:
        """Batches and rows per kind, late trades per timeframe, bars closed, hub latency."""
        counts = self._counters.snapshot()
        return {
            "batches": {k: counts.get(("batches", k), 0) for k in ("trades", "quotes", "depth")},
            "rows": {k: counts.get(("rows", k), 0) for k in ("trades", "quotes", "depth")},
            "late_trades": dict(self.builder.late_trades),
            "late_lost": dict(self.builder.late_lost),
            "bars_closed": self.builder.bars_closed,
            "hub_latency_p50_ms": self.hub_latency.quantile(0.5) * 1e3,
            "hub_latency_p99_ms": self.hub_latency.quantile(0.99) * 1e3,
        }

    def close(self) -> None:
        """Stop the clock and destroy every streamz node of this pipeline (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        for node in reversed(self._nodes):
            node.destroy()
        self._nodes.clear()

    def _node(self, node: Stream) -> Stream:
        self._nodes.append(node)
        return node

    def _store(self, stream: Stream, kind: str) -> None:
        if self.writer is not None:
            self._node(stream.sink(partial(self.writer.submit, kind), stream_name=f"store {kind}"))

    def _publish(self, kind: str, df: pd.DataFrame) -> None:
        self.hub.publish_batch(kind, df)

    def _publish_bars(self, bars: pd.DataFrame) -> None:
        columns = self.builder.columns_of(bars)
        if columns is None:
            self.hub.publish_batch("bars", bars)
        else:
            self.hub.publish_arrays("bars", columns)

    def _build(self, keyed: tuple) -> pd.DataFrame:
        return self.builder.update(*keyed)

    def _publish_trades(self, keyed: tuple) -> None:
        df, groups = keyed
        self.hub.publish_batch("trades", df, groups)
        receipt = df["receipt_timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        self.hub_latency.add((time.time_ns() - receipt) / 1e9)

    def _on_timer(self) -> None:
        if self.closed:
            return
        try:
            self.tick()
        except Exception:  # a failed tick must not stop the clock
            LOG.exception("closing quiet bars failed")
        self._timer = self._loop.call_later(self._tick_interval, self._on_timer)
