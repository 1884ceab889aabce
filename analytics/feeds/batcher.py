"""The columnar batcher: plain rows from feed callbacks in, pandas batches out.

Callbacks append one tuple per message to a list (no pandas per tick). Every
``interval`` seconds, or as soon as ``max_rows`` rows of one kind are waiting, the rows
are turned into one DataFrame per kind in the normalized schema
(:mod:`analytics.schema`) and handed to ``emit(kind, df)``.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter
from operator import itemgetter

import numpy as np
import pandas as pd

from analytics.schema import DEPTH_COLUMNS, QUOTE_COLUMNS, TRADE_COLUMNS

LOG = logging.getLogger(__name__)

_TIMES = ("timestamp", "receipt_timestamp")


def to_datetime64(seconds) -> np.ndarray:
    """Epoch seconds (floats) to tz-naive UTC ``datetime64[ns]``, rounded to the microsecond.

    A float64 of today's epoch seconds resolves about 0.24 µs, so rounding to whole
    microseconds restores the exchanges' ms and µs times exactly.
    """
    values = np.asarray(seconds, dtype=np.float64)
    return (np.round(values * 1e6).astype(np.int64) * 1000).view("datetime64[ns]")


def _frame(rows: list, columns: dict) -> pd.DataFrame:
    """Row tuples to a DataFrame of the schema ``columns``, one numpy array per column."""
    data = {}
    for (name, dtype), values in zip(columns.items(), zip(*rows)):
        data[name] = to_datetime64(values) if name in _TIMES else np.array(values, dtype=dtype)
    return pd.DataFrame(data, copy=False)


class Batcher:
    """Collects rows and emits DataFrame batches on the running event loop.

    Parameters
    ----------
    emit : callable
        Called as ``emit(kind, df)`` with ``kind`` one of ``"trades"``, ``"quotes"``,
        ``"depth"``. An exception in ``emit`` is logged and counted, never raised
        into a feed callback.
    interval : float
        Seconds between flushes (0.05 to 0.25 keeps latency low and batches large).
    max_rows : int
        Flush a kind at once when this many of its rows are waiting.
    depth : int
        Book levels per side in depth snapshots.
    counters : analytics.metrics.Counters, optional
        Counts trades per ``(exchange, "trades", "messages")`` as they are flushed, so
        the busiest callback does no counting of its own.

    Rows are tuples in the column order of :mod:`analytics.schema` with times as
    epoch seconds. Depth is kept as a reference to the latest book per symbol and
    snapshotted at flush, so a busy book costs nothing per update but one dict write.
    """

    def __init__(self, emit, interval: float = 0.1, max_rows: int = 5000, depth: int = 10, counters=None):
        if not 0.005 <= interval <= 10:
            raise ValueError(f"batch interval must be between 0.005 and 10 s, got {interval}")
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        self.emit = emit
        self.interval = interval
        self.max_rows = max_rows
        self.depth = depth
        self.counters = counters
        self.trades: list = []
        self.quotes: list = []
        self.books: dict = {}
        self.errors = 0
        self.batches = 0
        self._task = None

    def add_trade(self, row: tuple) -> None:
        self.trades.append(row)
        if len(self.trades) >= self.max_rows:
            self._flush_trades()

    def add_quote(self, row: tuple) -> None:
        self.quotes.append(row)
        if len(self.quotes) >= self.max_rows:
            self._flush_quotes()

    def set_book(self, exchange: str, symbol: str, book, timestamp: float, receipt: float) -> None:
        """Remember the latest state of a book; it is snapshotted at the next flush."""
        self.books[(exchange, symbol)] = (book, timestamp, receipt)

    def flush(self) -> None:
        """Emit everything waiting now."""
        self._flush_trades()
        self._flush_quotes()
        self._flush_depth()

    def _send(self, kind: str, rows: list, columns: dict) -> None:
        try:
            df = _frame(rows, columns)
        except (TypeError, ValueError, OverflowError):
            df = self._salvage(kind, rows, columns)
            if not len(df):
                return
        self.batches += 1
        try:
            self.emit(kind, df)
        except Exception:
            self.errors += 1
            LOG.exception("pipeline failed on a %s batch of %d rows", kind, len(df))

    def _salvage(self, kind: str, rows: list, columns: dict) -> pd.DataFrame:
        """The rows of a batch that fit the schema, one by one; the others are counted and logged."""
        good = []
        for row in rows:
            try:
                _frame([row], columns)
                good.append(row)
            except (TypeError, ValueError, OverflowError) as exc:
                self.errors += 1
                LOG.warning("dropped a %s row that does not fit the schema (%s): %.160r", kind, exc, row)
        return _frame(good, columns) if good else pd.DataFrame()

    def _flush_trades(self) -> None:
        rows, self.trades = self.trades, []
        if rows:
            if self.counters is not None:
                for exchange, n in Counter(map(itemgetter(0), rows)).items():
                    self.counters.add((exchange, "trades", "messages"), n)
            self._send("trades", rows, TRADE_COLUMNS)

    def _flush_quotes(self) -> None:
        rows, self.quotes = self.quotes, []
        if rows:
            self._send("quotes", rows, QUOTE_COLUMNS)

    def _flush_depth(self) -> None:
        books, self.books = self.books, {}
        rows = []
        for (exchange, symbol), (book, timestamp, receipt) in books.items():
            for side, levels in (("bid", book.bids), ("ask", book.asks)):
                for level in range(min(self.depth, len(levels))):
                    price, size = levels.index(level)
                    rows.append((exchange, symbol, timestamp, receipt, side, level, float(price), float(size)))
        if rows:
            self._send("depth", rows, DEPTH_COLUMNS)

    async def run(self) -> None:
        """Flush every ``interval`` seconds until cancelled, then flush once more."""
        try:
            while True:
                started = time.monotonic()
                try:
                    self.flush()
                except Exception:  # never let one bad flush stop the timer
                    self.errors += 1
                    LOG.exception("flushing the batcher failed")
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            self.flush()

    def start(self) -> None:
        """Start flushing on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Stop the timer and flush what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush()
