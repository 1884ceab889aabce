"""OHLCV bars from trades, as a pure function.

:func:`ohlcv` is the batch reference the streaming :class:`analytics.pipeline.BarBuilder`
must reproduce exactly. Two choices make that possible for every split of a trade
sequence into batches:

- Bars are aligned to the Unix epoch: a trade at ``t`` belongs to the bar starting at
  ``floor(t / step) * step`` (left-closed, left-labelled). For steps that divide a day
  this is pandas' ``resample`` alignment; for others (``'7min'``) it is not, and bars do
  not depend on the first trade seen.
- ``volume`` and the notional behind ``vwap`` are float sums taken strictly left to right
  in trade order (:func:`segment_sums`), so a running bar continued batch by batch gives
  the same bits as one pass over all its trades. pandas' and numpy's sums are pairwise
  or compensated, which no running state can continue.
"""

import warnings

import numpy as np
import pandas as pd

from analytics.schema import TIMEFRAMES

BAR_FIELDS = ["open", "high", "low", "close", "volume", "vwap", "trades"]
_KEYS = ("exchange", "symbol")


def timeframe_ns(timeframe) -> int:
    """The length in nanoseconds of a timeframe.

    Parameters
    ----------
    timeframe : str
        A key of :data:`analytics.schema.TIMEFRAMES` (``'1s'``, ``'1m'``, ``'5m'``,
        ``'1h'``) or a fixed-length pandas offset alias (``'15min'``, ``'4h'``, ``'1D'``).

    Raises
    ------
    ValueError
        If ``timeframe`` is not a positive fixed duration.
    """
    freq = TIMEFRAMES.get(timeframe, timeframe) if isinstance(timeframe, str) else timeframe
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pandas' renamed aliases
            nanos = pd.tseries.frequencies.to_offset(freq).nanos
    except (AttributeError, TypeError, ValueError):
        raise ValueError(
            f"bad timeframe {timeframe!r}: use one of {list(TIMEFRAMES)} or a fixed pandas "
            "offset alias such as '15min'"
        ) from None
    if nanos <= 0:
        raise ValueError(f"bad timeframe {timeframe!r}: it must be a positive duration")
    return int(nanos)


def segment_sums(values: np.ndarray, offsets: np.ndarray, init=None) -> np.ndarray:
    """Left-to-right float64 sums of consecutive segments, optionally continued.

    Parameters
    ----------
    values : numpy.ndarray
        float64 values, segment after segment: shape (n,), or (n, k) to sum k columns.
    offsets : numpy.ndarray
        Index of the first value of each (non-empty) segment, increasing, ``offsets[0] == 0``.
    init : numpy.ndarray, optional
        A running sum to continue per segment, shaped like the result (default 0.0).

    Returns
    -------
    numpy.ndarray
        ``((init + v0) + v1) + ...`` per segment (and column), evaluated in exactly that
        order, so ``segment_sums(b, ., segment_sums(a, .))`` equals the sum over ``a`` then
        ``b``.

    Notes
    -----
    Segments are bucketed by length (powers of two, short ones merged while padding
    costs less than another bucket). Each column of a bucket is laid out as a
    (length + 1, segments) matrix, the running sum in row 0 and each segment
    zero-padded below, and summed down the rows with ``np.add.reduce``: along an axis
    that is not the contiguous one numpy adds row after row, strictly in order (pairwise
    summation is only used along the contiguous axis, so a matrix has at least two
    columns). Padding adds ``+0.0``, which changes no value. Work and memory are O(n)
    with a few numpy passes per bucket.
    """
    values = np.asarray(values, dtype=np.float64)
    flat = values.ndim == 1
    values = values[:, None] if flat else values
    offsets = np.asarray(offsets, dtype=np.int64)
    shape = (len(offsets), values.shape[1])
    out = np.zeros(shape) if init is None else np.array(init, dtype=np.float64).reshape(shape)
    if len(offsets):
        lengths = np.diff(offsets, append=len(values))
        columns = [values[:, c] for c in range(values.shape[1])]
        bucket = _buckets(lengths)
        if bucket is None:
            out = _padded_sums(columns, lengths, out)
        else:
            for b in np.unique(bucket):
                groups = bucket == b
                rows = np.repeat(groups, lengths)
                out[groups] = _padded_sums([c[rows] for c in columns], lengths[groups], out[groups])
    return out[:, 0] if flat else out


# A bucket of segments costs a few numpy calls: worth about this many padded values.
_BUCKET_COST = 8192


def _buckets(lengths: np.ndarray):
    """Bucket number per segment (by power of two of the length, merged greedily), or None for one bucket."""
    bits = np.frexp(lengths)[1]
    counts = np.bincount(bits)
    levels = np.flatnonzero(counts)
    if len(levels) == 1:
        return None
    bucket_of = np.zeros(len(counts), dtype=np.int64)
    bucket, held, width = 0, 0, 0
    for level in levels.tolist():
        count, top = int(counts[level]), 1 << level
        if held and (held + count) * top > held * width + count * top + _BUCKET_COST:
            bucket += 1
            held = 0
        bucket_of[level], held, width = bucket, held + count, top
    return None if bucket == 0 else bucket_of[bits]


def _padded_sums(columns: list, lengths: np.ndarray, init: np.ndarray) -> np.ndarray:
    """Sequential sums (segments, columns) of consecutive segments of 1-d ``columns``, continuing ``init``."""
    segments = len(lengths)
    width = int(lengths.max()) + 1
    held = np.zeros((segments, width), dtype=bool)
    np.less_equal(np.arange(1, width), lengths[:, None], out=held[:, 1:])
    matrix = np.zeros((len(columns), width, max(segments, 2)))
    matrix[:, 0, :segments] = init.T
    for c, values in enumerate(columns):
        matrix[c, :, :segments].T[held] = values
    return np.add.reduce(matrix, axis=1)[:, :segments].T


def aggregate(price, amount, timestamp, offsets, volume=None, notional=None) -> dict:
    """Per-segment bar fields of trades sorted by segment then time.

    ``volume`` and ``notional`` are running sums to continue (see :func:`segment_sums`).
    Returns a dict of arrays: open, high, low, close, volume, notional, trades,
    first_ts, last_ts (int64 ns), one entry per segment.
    """
    last = np.append(offsets[1:], len(price))[: len(offsets)] - 1
    init = None if volume is None else np.column_stack([volume, notional])
    sums = segment_sums(np.column_stack([amount, price * amount]), offsets, init)
    return {
        "open": price[offsets],
        "high": np.maximum.reduceat(price, offsets) if len(offsets) else price[:0],
        "low": np.minimum.reduceat(price, offsets) if len(offsets) else price[:0],
        "close": price[last],
        "volume": sums[:, 0],
        "notional": sums[:, 1],
        "trades": np.diff(offsets, append=len(price)),
        "first_ts": timestamp[offsets],
        "last_ts": timestamp[last],
    }


def vwap(notional: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """``notional / volume``, NaN where the volume is zero."""
    out = np.full(len(volume), np.nan)
    np.divide(notional, volume, out=out, where=volume != 0)
    return out


def _timestamps(trades: pd.DataFrame) -> np.ndarray:
    if "timestamp" in trades.columns:
        values = trades["timestamp"]
    elif isinstance(trades.index, pd.DatetimeIndex):
        values = trades.index.to_series()
    else:
        raise ValueError("trades need a 'timestamp' column or a DatetimeIndex")
    if not pd.api.types.is_datetime64_any_dtype(values):
        raise ValueError(f"trade timestamps must be datetimes, got {values.dtype}")
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    stamps = values.to_numpy(dtype="datetime64[ns]")
    if np.isnat(stamps).any():
        raise ValueError("trades have missing timestamps")
    return stamps.view(np.int64)


def sort_order(code: np.ndarray, stamps: np.ndarray):
    """Stable order by (code, time); None when already in that order."""
    dc, ds = np.diff(code), np.diff(stamps)
    if ((dc > 0) | ((dc == 0) & (ds >= 0))).all():
        return None
    return np.lexsort((stamps, code))


def ohlcv(trades: pd.DataFrame, timeframe) -> pd.DataFrame:
    """OHLCV bars with VWAP and trade count.

    Parameters
    ----------
    trades : pandas.DataFrame
        Columns ``price`` and ``amount`` and either a ``timestamp`` column or a
        DatetimeIndex (tz-naive UTC, or tz-aware). If ``exchange`` and/or ``symbol``
        columns are present, bars are computed per (exchange, symbol).
    timeframe : str
        See :func:`timeframe_ns`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``start`` (bar open time, tz-naive), columns ``open, high, low, close,
        volume`` (sum of amount), ``vwap`` (sum of price*amount / volume) and ``trades``
        (count), preceded by ``exchange``/``symbol`` when the input has them; sorted by
        key then start. Intervals without trades have no row. Trades are ordered by
        timestamp, ties keeping input order (open is the first, close the last).

    Raises
    ------
    ValueError
        For a bad timeframe, missing columns or missing timestamps.

    Examples
    --------
    >>> t = pd.DataFrame({"timestamp": pd.to_datetime(["2024-01-01 00:00:10",
    ...     "2024-01-01 00:00:50", "2024-01-01 00:01:05"]), "price": [1.0, 3.0, 2.0],
    ...     "amount": [1.0, 1.0, 2.0]})
    >>> bars = ohlcv(t, "1m")
    >>> bars.index.strftime("%H:%M").tolist(), bars["vwap"].tolist(), bars["trades"].tolist()
    (['00:00', '00:01'], [2.0, 2.0], [2, 1])
    """
    step = timeframe_ns(timeframe)
    missing = [c for c in ("price", "amount") if c not in trades.columns]
    if missing:
        raise ValueError(f"trades lack columns {missing}")
    stamps = _timestamps(trades)
    keys = [c for c in _KEYS if c in trades.columns]
    code = np.zeros(len(trades), dtype=np.int64)
    uniques = []
    for name in keys:
        codes, labels = pd.factorize(trades[name], sort=True)
        code = code * max(len(labels), 1) + codes
        uniques.append(labels)
    order = sort_order(code, stamps)
    price = trades["price"].to_numpy(dtype=np.float64)
    amount = trades["amount"].to_numpy(dtype=np.float64)
    if order is not None:
        stamps, code, price, amount = stamps[order], code[order], price[order], amount[order]
    start = stamps // step * step
    new = np.ones(len(stamps), dtype=bool)
    new[1:] = (code[1:] != code[:-1]) | (start[1:] != start[:-1])
    offsets = np.flatnonzero(new)
    fields = aggregate(price, amount, stamps, offsets)
    columns = {}
    group_code = code[offsets]
    for name, labels in reversed(list(zip(keys, uniques))):
        size = max(len(labels), 1)
        columns[name] = np.asarray(labels, dtype=object)[group_code % size]
        group_code = group_code // size
    columns = dict(reversed(list(columns.items())))
    columns.update({f: fields[f] for f in ("open", "high", "low", "close", "volume")})
    columns["vwap"] = vwap(fields["notional"], fields["volume"])
    columns["trades"] = fields["trades"].astype(np.int64)
    index = pd.DatetimeIndex(start[offsets].view("datetime64[ns]"), name="start")
    return pd.DataFrame(columns, index=index)
