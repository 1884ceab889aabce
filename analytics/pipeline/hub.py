"""The hub: bounded, sequence-numbered buffers that viewers read without blocking ingest.

One buffer (:class:`~analytics.pipeline.ring.Ring`) per stream key, a tuple:
``("trades", exchange, symbol)``, ``("quotes", exchange, symbol)``,
``("bars", exchange, symbol, timeframe)`` or ``("depth", exchange, symbol)``; and from
the news (:mod:`analytics.sentiment.feed`): ``("news",)`` (scored items in arrival order)
and ``("sentiment", coin, timeframe)`` (sentiment bars, kept like bars).
Every published row takes the next sequence number of its key (from 1); a reader
remembers the last one it saw and asks for what came after.

Bars (and sentiment) keys keep one row per bar. A published bar whose ``start`` equals
the newest held bar's replaces it in place with a new sequence number, so the forming bar
updated every batch costs one row, and a chart gets closed bars plus the current forming
bar: read the table once (``tail``/``latest`` or a first ``Subscription.read``), then upsert each
newly read row by ``start``. (A late correction of an older bar is appended and
:meth:`Hub.latest`/:meth:`Hub.tail` keep its last version.)

Publishing copies the batch into the buffer (O(batch)); a batch of many keys is split
once (:class:`~analytics.pipeline.groups.Groups`) and each key's slice copied in, at a
few microseconds per key; reading copies the requested rows out. A lock per key is held only for those copies: readers in other threads never
wait for data and never hold up the event loop for long.
"""

import threading
import weakref

import pandas as pd

from analytics.pipeline.groups import Groups
from analytics.pipeline.ring import Ring

KINDS = {"trades": 3, "quotes": 3, "bars": 4, "depth": 3, "news": 1, "sentiment": 3}
BAR_KINDS = ("bars", "sentiment")  # one row per ``start``: upserted, read as a table of bars
_LATEST_WINDOW = 4096
_LABELS = ("exchange", "symbol", "timeframe")


def _check_key(key) -> tuple:
    if not isinstance(key, tuple) or not key or key[0] not in KINDS or len(key) != KINDS[key[0]]:
        raise ValueError(f"bad hub key {key!r}: use (kind, exchange, symbol[, timeframe]), ('news',) or "
                         f"('sentiment', coin, timeframe) with kind in {list(KINDS)}")
    return key


def _frame(seqs, columns) -> pd.DataFrame:
    return pd.DataFrame(columns, index=pd.Index(seqs, name="seq"), copy=False)


class Subscription:
    """A reader's cursor on one hub key. Create with :meth:`Hub.subscribe`.

    Attributes
    ----------
    seq : int
        The last sequence number read.
    dropped : int
        Rows (for bars keys: bars) that left the buffer before this reader got them.
    """

    def __init__(self, hub, key, since=None):
        self.hub, self.key = hub, key
        self.seq, self._ordinal = hub._cursor(key, since)
        self.dropped = 0
        self.closed = False

    def read(self) -> pd.DataFrame:
        """Rows published since the last read (all held ones on the first); never blocks."""
        self.seq, frame, evicted, ordinal = self.hub._read(self.key, self.seq)
        self.dropped += max(0, evicted - self._ordinal)
        self._ordinal = max(self._ordinal, ordinal)
        return frame

    @property
    def lag(self) -> int:
        """Sequence numbers published and not yet read."""
        return self.hub.last_seq(self.key) - self.seq

    def close(self) -> None:
        """Stop counting as a subscriber (idempotent)."""
        if not self.closed:
            self.closed = True
            self.hub._unsubscribe(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Hub:
    """Bounded ring buffers with sequence numbers, one per stream key. Thread-safe.

    Parameters
    ----------
    maxlen : int
        Rows kept per key.

    Examples
    --------
    >>> hub = Hub(maxlen=1000)
    >>> hub.publish(("quotes", "BINANCE", "BTC-USDT"), pd.DataFrame({"bid": [1.0, 2.0]}))
    2
    >>> seq, rows = hub.read(("quotes", "BINANCE", "BTC-USDT"), since=1)
    >>> seq, rows["bid"].tolist()
    (2, [2.0])
    """

    def __init__(self, maxlen: int = 50_000):
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1 row, got {maxlen}")
        self.maxlen = maxlen
        self._rings = {}
        self._locks = {}
        self._lock = threading.Lock()
        self._subscribers = 0
        self._open = weakref.WeakSet()

    def publish(self, key, df: pd.DataFrame) -> int:
        """Append a batch of rows to ``key``; return its last sequence number."""
        return self.publish_columns(key, {c: df[c].to_numpy() for c in df.columns})

    def publish_columns(self, key, columns: dict) -> int:
        """:meth:`publish` for a batch given as equal-length numpy arrays by column."""
        ring, lock = self._ring(_check_key(key), create=True)
        with lock:
            return ring.append(columns)

    def publish_batch(self, kind: str, df: pd.DataFrame, groups: Groups | None = None) -> dict:
        """Split a batch of many keys by (exchange, symbol[, timeframe]) and publish each.

        ``groups``, if given, are the batch's :class:`Groups` by those columns (computed
        once and shared with other consumers of the batch). Returns ``{key: last
        sequence number}``.
        """
        return self.publish_arrays(kind, {c: df[c].to_numpy() for c in df.columns}, groups)

    def publish_arrays(self, kind: str, columns: dict, groups: Groups | None = None) -> dict:
        """:meth:`publish_batch` for a batch given as equal-length numpy arrays by column.

        Keys are published in the order of :attr:`Groups.keys`, each key's rows copied
        under its lock; the rings of new keys are made first, in that order.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}: use one of {list(KINDS)}")
        if not columns or len(next(iter(columns.values()))) == 0:
            return {}
        if groups is None:
            groups = Groups(columns[name] for name in _LABELS[: KINDS[kind] - 1])
        arrays = [groups.take(v) for v in columns.values()]
        layout = tuple((c, v.dtype) for c, v in zip(columns, arrays))
        starts = arrays[list(columns).index("start")].tolist() if kind == "bars" else None
        names = [(kind, *key) for key in groups.keys]
        with self._lock:
            rings = [self._add(key) if key not in self._rings else (self._rings[key], self._locks[key])
                     for key in names]
        bounds = groups.bounds.tolist()
        result = {}
        for key, (ring, lock), a, b in zip(names, rings, bounds, bounds[1:]):
            with lock:
                result[key] = ring.extend(layout, arrays, a, b, starts)
        return result

    def read(self, key, since: int = 0) -> tuple[int, pd.DataFrame]:
        """Rows with a sequence number above ``since`` still held, and the last sequence number.

        Unknown keys give ``(0, empty DataFrame)``. The index holds the sequence numbers.
        """
        last, frame, _, _ = self._read(key, since)
        return last, frame

    def tail(self, key, n: int) -> pd.DataFrame:
        """The newest ``n`` rows (bars keys: the newest ``n`` bars, one row per start)."""
        ring, lock = self._ring(key)
        if ring is None:
            return pd.DataFrame()
        with lock:
            seqs, columns = ring.rows(0 if key[0] in BAR_KINDS else max(0, ring.size - n))
        frame = _frame(seqs, columns)
        if key[0] in BAR_KINDS:
            frame = self._bars_table(frame)
            frame = frame.iloc[max(len(frame) - n, 0):]
        return frame

    def latest(self, key) -> pd.DataFrame:
        """The current picture of a stream.

        trades, quotes: the newest row. depth: the newest snapshot (the trailing rows with
        the newest timestamp and receipt time, one per side and level). bars: every held bar, one row per start,
        sorted by start, the forming bar last: what a candlestick chart shows.
        """
        ring, lock = self._ring(key)
        if ring is None:
            return pd.DataFrame()
        with lock:
            if key[0] in BAR_KINDS:
                start = 0
            elif key[0] == "depth" and ring.size:
                start = ring.size - ring.trailing_run(("timestamp", "receipt_timestamp"), _LATEST_WINDOW)
            else:
                start = max(0, ring.size - 1)
            seqs, columns = ring.rows(start)
        frame = _frame(seqs, columns)
        if key[0] == "depth":  # a book re-sent unchanged repeats its times: keep one copy
            return frame.drop_duplicates(["side", "level"], keep="last")
        return self._bars_table(frame) if key[0] in BAR_KINDS else frame

    def keys(self, kind: str | None = None) -> list:
        """Keys published so far, optionally only those of one kind."""
        with self._lock:
            return [k for k in self._rings if kind is None or k[0] == kind]

    def last_seq(self, key) -> int:
        """The last sequence number of ``key`` (0 if nothing was published)."""
        ring, _ = self._ring(key)
        return 0 if ring is None else ring.last_seq

    def subscribe(self, key, since: int | None = None) -> Subscription:
        """A cursor on ``key`` (it need not exist yet) starting after ``since``.

        ``since=None`` starts at the oldest held row: the first read returns the whole
        buffer and only rows evicted later count as ``dropped``.
        """
        subscription = Subscription(self, _check_key(key), since)
        with self._lock:
            self._subscribers += 1
            self._open.add(subscription)
        return subscription

    @property
    def subscribers(self) -> int:
        """Open subscriptions."""
        return self._subscribers

    def max_lag(self) -> int:
        """The most sequence numbers any open subscription has not read yet (0 if none)."""
        with self._lock:
            subscriptions = list(self._open)
        return max((s.lag for s in subscriptions if not s.closed), default=0)

    def stats(self) -> dict:
        """Per key: ``{"rows": held, "last_seq": ..., "evicted": ...}``."""
        out = {}
        for key in self.keys():
            ring, lock = self._ring(key)
            with lock:
                out[key] = {"rows": ring.size, "last_seq": ring.last_seq, "evicted": ring.evicted}
        return out

    def _ring(self, key, create: bool = False):
        with self._lock:
            ring = self._rings.get(key)
            if ring is None:
                return self._add(key) if create else (None, None)
            return ring, self._locks[key]

    def _add(self, key) -> tuple:
        """Make the ring of a new key (hold ``self._lock``)."""
        ring = self._rings[key] = Ring(self.maxlen, "start" if key[0] in BAR_KINDS else None)
        lock = self._locks[key] = threading.Lock()
        return ring, lock

    def _read(self, key, since: int):
        ring, lock = self._ring(key)
        if ring is None:
            return 0, pd.DataFrame(), 0, 0
        with lock:
            seqs, columns = ring.rows(ring.count_through(since))
            last, evicted, ordinal = ring.last_seq, ring.evicted, ring.evicted + ring.size
        return last, _frame(seqs, columns), evicted, ordinal

    def _cursor(self, key, since):
        """(sequence number, rows gone or read) for a new subscription."""
        ring, lock = self._ring(key)
        if ring is None:
            return since or 0, 0
        with lock:
            if since is None:
                return 0, ring.evicted
            return since, ring.evicted + ring.count_through(since)

    def _unsubscribe(self, subscription) -> None:
        with self._lock:
            self._subscribers -= 1
            self._open.discard(subscription)

    @staticmethod
    def _bars_table(frame: pd.DataFrame) -> pd.DataFrame:
        if frame.empty:
            return frame
        return frame.drop_duplicates("start", keep="last").sort_values("start", kind="stable")
