"""Bar history for charts: stored bars merged with the hub's, and server-side downsampling.

A chart opens with the stored history of one (exchange, symbol, timeframe) and the hub's
newer bars on top. The store is read at most once per key every :data:`MAX_AGE` seconds
for all sessions of the process (the hub holds every bar closed since), and what goes
to the browser is bounded: the newest candles, and a navigator line of the whole history
reduced by :func:`minmax_indices` to a few thousand points.
"""

import threading
import time

import numpy as np
import pandas as pd

from analytics.schema import TIMEFRAMES

FIELDS = ["open", "high", "low", "close", "volume", "vwap", "trades", "closed"]
UP, DOWN = "#26a69a", "#ef5350"
MAX_AGE = 30.0  # seconds a stored read serves every session of the process
LIMIT = 100_000  # newest stored bars read per key (the navigator's span)

_CACHE = {}
_LOCK = threading.Lock()


def timeframe_ms(timeframe: str) -> float:
    """Length of a bar of ``timeframe`` (one of :data:`analytics.schema.TIMEFRAMES`) in milliseconds."""
    return pd.Timedelta(TIMEFRAMES[timeframe]).value / 1e6


def _cached(key, max_age: float, compute):
    now = time.monotonic()
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None and now - hit[0] < max_age:
            return hit[1]
    value = compute()
    with _LOCK:
        _CACHE[key] = (now, value)
        for old in [k for k, (t, _) in _CACHE.items() if now - t >= max_age]:
            del _CACHE[old]
    return value


def stored_bars(store, max_age: float = MAX_AGE) -> pd.DataFrame:
    """What the store holds of bars: ``exchange, symbol, timeframe, rows, start, end`` (shared, cached)."""
    if store is None:
        return pd.DataFrame(columns=["exchange", "symbol", "timeframe", "rows", "start", "end"])
    return _cached((store.uri, "symbols"), max_age, lambda: store.symbols("bars"))


def read_history(store, exchange: str, symbol: str, timeframe: str, limit: int = LIMIT,
                 max_age: float = MAX_AGE) -> pd.DataFrame:
    """The newest ``limit`` stored bars of one key, indexed by ``start`` (shared, cached).

    Returns an empty frame when the store holds none (or ``store`` is None).

    Raises
    ------
    Exception
        Whatever the store raises when it cannot be read (:class:`~analytics.storage.StoreError`
        for the problems it knows).
    """
    def read():
        held = stored_bars(store, max_age)
        row = held[(held["exchange"] == exchange) & (held["symbol"] == symbol) & (held["timeframe"] == timeframe)]
        if row.empty or not row["rows"].iloc[0]:
            return empty_bars()
        first = row["end"].iloc[0] - pd.Timedelta(TIMEFRAMES[timeframe]) * (limit - 1)
        start = None if first <= row["start"].iloc[0] else first
        frame = store.read_bars(exchange, symbol, timeframe, start=start)
        return frame[FIELDS].iloc[-limit:]

    if store is None:
        return empty_bars()
    return _cached((store.uri, exchange, symbol, timeframe, limit), max_age, read)


def empty_bars() -> pd.DataFrame:
    """A bar frame without rows: the :data:`FIELDS` columns, indexed by ``start``."""
    frame = pd.DataFrame({c: pd.Series(dtype=float) for c in FIELDS})
    frame.index = pd.DatetimeIndex([], name="start")
    return frame.astype({"trades": np.int64, "closed": bool})


def known_markets(ingest) -> dict:
    """{exchange: set of symbols} the ingest's feed serves or its store holds bars of."""
    fed = getattr(ingest, "markets", None) or {}
    markets = {exchange: set(symbols) for exchange, symbols in fed.items()}
    try:
        held = stored_bars(getattr(ingest, "store", None))
    except Exception:  # the store's problems are told when its history is read
        held = None
    if held is not None:
        for exchange, symbol in zip(held["exchange"], held["symbol"]):
            markets.setdefault(exchange, set()).add(symbol)
    return markets


def hub_bars(frame: pd.DataFrame) -> pd.DataFrame:
    """Hub bar rows (a ``start`` column, one or more rows per start) as a bar frame, the last row per start winning."""
    if frame.empty:
        return empty_bars()
    frame = frame.drop_duplicates("start", keep="last").set_index("start")[FIELDS]
    return frame if frame.index.is_monotonic_increasing else frame.sort_index(kind="stable")


def merge_bars(stored: pd.DataFrame, live: pd.DataFrame) -> pd.DataFrame:
    """Stored bars with the hub's on top: one row per ``start``, sorted; ``live`` wins where both have a start."""
    if live.empty:
        return stored
    if stored.empty:
        return live
    first = live.index[0]
    if live.index.is_monotonic_increasing and stored.index[-1] < first:
        return pd.concat([stored, live])
    kept = stored[~stored.index.isin(live.index)]
    return pd.concat([kept, live]).sort_index(kind="stable")


def bar_columns(frame: pd.DataFrame) -> dict:
    """The columns a candlestick ``ColumnDataSource`` holds, as numpy arrays (``x`` in epoch milliseconds)."""
    return _columns(frame, frame.index.to_numpy("datetime64[ns]"), slice(None))


def live_columns(rows: pd.DataFrame) -> dict:
    """:func:`bar_columns` of hub bar rows (a ``start`` column): the last row of each start, sorted by start."""
    start = rows["start"].to_numpy("datetime64[ns]")
    _, last = np.unique(start[::-1], return_index=True)
    keep = len(start) - 1 - last
    return _columns(rows, start, keep)


def _columns(frame: pd.DataFrame, start: np.ndarray, keep) -> dict:
    columns = {c: frame[c].to_numpy(float)[keep] for c in ("open", "high", "low", "close", "volume", "vwap")}
    return {
        "x": start[keep].astype(np.int64) / 1e6,
        **columns,
        "trades": frame["trades"].to_numpy(np.int64)[keep],
        "color": np.where(columns["close"] >= columns["open"], UP, DOWN).astype(object),
    }


def minmax_indices(y, points: int) -> np.ndarray:
    """Indices kept by min-max downsampling of ``y`` to at most ``points`` points.

    ``y`` is cut into ``points // 2 - 1`` equal buckets; each keeps its minimum and its
    maximum (in their original order), and the first and last points are always kept.
    NaNs are never chosen unless a bucket holds nothing else. ``points=0`` or a series
    no longer than ``points`` keeps everything.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    if points <= 0 or n <= points:
        return np.arange(n)
    if points < 4:
        raise ValueError(f"points must be 0 (keep all) or at least 4, got {points}")
    buckets = points // 2 - 1
    size = -(-n // buckets)
    buckets = -(-n // size)
    padded = np.full(buckets * size, np.nan)
    padded[:n] = y
    padded = padded.reshape(buckets, size)
    offsets = np.arange(buckets) * size
    low = offsets + np.argmin(np.where(np.isnan(padded), np.inf, padded), axis=1)
    high = offsets + np.argmax(np.where(np.isnan(padded), -np.inf, padded), axis=1)
    keep = np.unique(np.concatenate([[0, n - 1], np.minimum(low, n - 1), np.minimum(high, n - 1)]))
    return keep


def overview_columns(frame: pd.DataFrame, points: int) -> dict:
    """The navigator line of a bar frame: ``x`` (epoch ms) and ``close``, min-max downsampled to ``points``."""
    close = frame["close"].to_numpy(float)
    keep = minmax_indices(close, points)
    x = frame.index.to_numpy("datetime64[ns]").astype(np.int64) / 1e6
    return {"x": x[keep], "close": close[keep]}
