"""Streaming OHLCV bars over batches of trades of many symbols.

:class:`BarBuilder` keeps, per (exchange, symbol, timeframe), the forming bar in
columnar numpy state and updates it once per batch: the batch is grouped by key (with
:class:`~analytics.pipeline.groups.Groups`, shared with the hub) and put in time order
within each key once; the rows, tiled once per timeframe, are split into (timeframe,
key, bar) segments aggregated by one call of :func:`analytics.bars.aggregate` for all
timeframes, continuing the running sums of the forming bars. No Python runs per trade
or per key; Python runs per closed bar only to keep a short history.

For any split of a time-ordered trade sequence into batches, the closed bars and the
final forming bar equal :func:`analytics.bars.ohlcv` over all the trades, bit for bit.
"""

from collections import deque

import numpy as np
import pandas as pd

from analytics.bars import aggregate, timeframe_ns, vwap
from analytics.pipeline.groups import Groups
from analytics.schema import TIMEFRAMES, empty

_NONE = np.iinfo(np.int64).min
_FIELDS = ("open", "high", "low", "close", "volume", "notional", "trades", "first_ts", "last_ts")
# Neutral values of a bar with no trades, so merging with it changes nothing.
_NEUTRAL = {"open": np.nan, "high": -np.inf, "low": np.inf, "close": np.nan, "volume": 0.0,
            "notional": 0.0, "trades": 0, "first_ts": np.iinfo(np.int64).max, "last_ts": _NONE}


def _merge(prior: dict, new: dict) -> dict:
    """Combine a bar's earlier trades (``prior``) with later-arriving ones (``new``).

    Sums were already continued from ``prior``; open and close follow timestamps, ties
    going to the trade that arrived first (open) or last (close).
    """
    return {
        "open": np.where(prior["first_ts"] <= new["first_ts"], prior["open"], new["open"]),
        "high": np.maximum(prior["high"], new["high"]),
        "low": np.minimum(prior["low"], new["low"]),
        "close": np.where(new["last_ts"] >= prior["last_ts"], new["close"], prior["close"]),
        "volume": new["volume"],
        "notional": new["notional"],
        "trades": prior["trades"] + new["trades"],
        "first_ts": np.minimum(prior["first_ts"], new["first_ts"]),
        "last_ts": np.maximum(prior["last_ts"], new["last_ts"]),
    }


class BarBuilder:
    """Forming and closed OHLCV bars per (exchange, symbol, timeframe), batch by batch.

    Parameters
    ----------
    timeframes : sequence of str
        Keys of :data:`analytics.schema.TIMEFRAMES` or fixed pandas offset aliases.
    history : int
        Closed bars remembered per (key, timeframe) to correct with late trades.

    Notes
    -----
    Closing. A bar closes when a trade of a later interval of the same key arrives
    (event time), or when :meth:`close_until` is called with a time at or past its end
    (wall clock, for quiet symbols).

    Late trades are trades older than the forming bar of their key and timeframe (or
    in a bar already closed by :meth:`close_until`); ``late_trades[timeframe]`` counts
    them. Trades out of order but inside the forming bar are simply merged (open and
    close follow timestamps). A late trade for a closed bar still among the last
    ``history`` bars is merged into it and the corrected bar is emitted again with
    ``closed=True``: storage upserts bars by start. A late trade for an interval with
    no bar, newer than the oldest remembered bar (a gap), makes a new closed bar. Older
    late trades, which could belong to a bar stored before this builder started, are
    counted in ``late_lost[timeframe]`` and left out of the bars (the stored trades keep
    them; :func:`analytics.bars.ohlcv` over them rebuilds exact bars).
    Late trades enter the running sums in arrival order, so corrected volumes and VWAPs
    may differ from :func:`analytics.bars.ohlcv` in the last bit; every other field is
    exact.

    Not thread-safe: call from one thread (the event loop).
    """

    def __init__(self, timeframes=tuple(TIMEFRAMES), history: int = 64):
        self.timeframes = tuple(timeframes)
        if not self.timeframes or len(set(self.timeframes)) != len(self.timeframes):
            raise ValueError(f"timeframes must be distinct and non-empty, got {self.timeframes}")
        if history < 1:
            raise ValueError(f"history must be at least 1 bar, got {history}")
        self._steps = np.array([timeframe_ns(t) for t in self.timeframes], dtype=np.int64)
        self._history = history
        self._ids = {}
        self._names = []
        self._labels = None  # exchange and symbol of each key id, as object arrays
        self._timeframe_labels = np.array(self.timeframes, dtype=object)
        self._made = (None, None)  # the last frame made and its column arrays
        shape = (0, len(self.timeframes))
        self._start = np.full(shape, _NONE, dtype=np.int64)
        self._forming = np.zeros(shape, dtype=bool)
        self._state = {f: np.full(shape, _NEUTRAL[f], dtype=type(_NEUTRAL[f])) for f in _FIELDS}
        self._closed = {}
        self.late_trades = dict.fromkeys(self.timeframes, 0)
        self.late_lost = dict.fromkeys(self.timeframes, 0)
        self.bars_closed = 0

    def update(self, trades: pd.DataFrame, groups: Groups | None = None) -> pd.DataFrame:
        """Add a batch of trades (schema ``TRADE_COLUMNS``, any keys, any order).

        Parameters
        ----------
        trades : pandas.DataFrame
            The batch.
        groups : Groups, optional
            The batch's rows grouped by (exchange, symbol), if already computed.

        Returns
        -------
        pandas.DataFrame
            Bars in the schema ``BAR_COLUMNS``, sorted by key, timeframe and start: every
            bar closed (or corrected) by this batch with ``closed=True``, and the forming
            bar of every key and timeframe the batch touched with ``closed=False``.
        """
        if len(trades) == 0:
            return empty("bars")
        if groups is None:
            groups = Groups([trades["exchange"].to_numpy(), trades["symbol"].to_numpy()])
        sizes = groups.sizes
        stamps = groups.take(trades["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64))
        price = groups.take(trades["price"].to_numpy(dtype=np.float64))
        amount = groups.take(trades["amount"].to_numpy(dtype=np.float64))
        heads = np.zeros(len(stamps), dtype=bool)  # the first row of each key
        heads[groups.bounds[:-1]] = True
        if ((np.diff(stamps) < 0) & ~heads[1:]).any():  # out of time order within a key
            order = np.lexsort((stamps, np.repeat(np.arange(len(sizes)), sizes)))
            stamps, price, amount = stamps[order], price[order], amount[order]
        kid = np.repeat(self._key_ids(groups.keys), sizes)
        return self._frame(self._update(kid, heads, stamps, price, amount))

    def close_until(self, timestamp) -> pd.DataFrame:
        """Close every forming bar that ends at or before ``timestamp`` (wall clock).

        Returns the closed bars (``closed=True``), as :meth:`update` does.
        """
        now = pd.Timestamp(timestamp).value
        due = self._forming & (self._start <= now - self._steps)
        if not due.any():
            return empty("bars")
        kids, ts = np.nonzero(due)
        parts = [self._rows(ts, kids, self._start[kids, ts], self._take(kids, ts), closed=True)]
        self._forming[due] = False
        return self._frame(parts)

    def forming(self) -> pd.DataFrame:
        """The forming bar of every key and timeframe (``closed=False``)."""
        kids, ts = np.nonzero(self._forming)
        return self._frame([self._rows(ts, kids, self._start[kids, ts], self._take(kids, ts), closed=False)])

    def _key_ids(self, keys: list) -> np.ndarray:
        ids = self._ids
        for name in keys:
            if name not in ids:
                self._add_key(name)
        return np.array([ids[name] for name in keys], dtype=np.int64)

    def _add_key(self, name) -> None:
        self._ids[name] = len(self._names)
        self._names.append(name)
        self._labels = None
        if len(self._names) > len(self._start):
            grow = max(8, len(self._start))
            pad = ((0, grow), (0, 0))
            self._start = np.pad(self._start, pad, constant_values=_NONE)
            self._forming = np.pad(self._forming, pad, constant_values=False)
            for f in _FIELDS:
                self._state[f] = np.pad(self._state[f], pad, constant_values=_NEUTRAL[f])

    def _take(self, kids, ts) -> dict:
        return {f: self._state[f][kids, ts] for f in _FIELDS}

    def _update(self, kid, heads, stamps, price, amount) -> list:
        """Every timeframe at once: segments (timeframe, key, bar) of the rows tiled per timeframe."""
        n, steps = len(stamps), self._steps[:, None]
        start = stamps // steps * steps  # (timeframe, row)
        new = np.empty(start.shape, dtype=bool)
        np.not_equal(start[:, 1:], start[:, :-1], out=new[:, 1:])
        new |= heads
        offsets = np.flatnonzero(new)
        g_t = offsets // n
        g_kid, g_start = kid[offsets - g_t * n], start.ravel()[offsets]
        s_start, s_forming = self._start[g_kid, g_t], self._forming[g_kid, g_t]
        has = s_start != _NONE
        same = has & s_forming & (g_start == s_start)
        late = has & ((g_start < s_start) | (~s_forming & (g_start == s_start)))
        prior = {f: np.full(len(offsets), _NEUTRAL[f], dtype=type(_NEUTRAL[f])) for f in _FIELDS}
        if same.any():
            k, t = g_kid[same], g_t[same]
            for f in _FIELDS:
                prior[f][same] = self._state[f][k, t]
        lost = np.zeros(len(offsets), dtype=bool)
        if late.any():
            lost = self._prior_closed(g_t, g_kid, g_start, late, prior)
            lengths = np.diff(offsets, append=start.size)
            for counts, which in ((self.late_trades, late), (self.late_lost, lost)):
                for t, count in enumerate(np.bincount(g_t[which], lengths[which], len(self.timeframes))):
                    counts[self.timeframes[t]] += int(count)
        tiles = len(self.timeframes)
        fresh = aggregate(np.tile(price, tiles), np.tile(amount, tiles), np.tile(stamps, tiles), offsets,
                          prior["volume"], prior["notional"])
        bars = _merge(prior, fresh)
        current = ~late
        other = (g_kid[1:] != g_kid[:-1]) | (g_t[1:] != g_t[:-1])  # the next segment is another series
        last = current & np.append(other, True)
        first = current & np.insert(other | late[:-1], 0, True)
        closing = first & has & s_forming & (g_start > s_start)
        out = []
        if closing.any():
            k, t = g_kid[closing], g_t[closing]
            out.append(self._rows(t, k, self._start[k, t], self._take(k, t), closed=True))
        done = (late & ~lost) | (current & ~last)
        if done.any():
            out.append(self._rows(g_t[done], g_kid[done], g_start[done], {f: v[done] for f, v in bars.items()},
                                  closed=True))
        k, t = g_kid[last], g_t[last]
        self._start[k, t] = g_start[last]
        self._forming[k, t] = True
        for f in _FIELDS:
            self._state[f][k, t] = bars[f][last]
        out.append(self._rows(t, k, g_start[last], {f: v[last] for f, v in bars.items()}, closed=False))
        return out

    def _prior_closed(self, g_t, g_kid, g_start, late, prior) -> np.ndarray:
        """Fill ``prior`` from remembered closed bars for late groups; return the lost ones."""
        lost = np.zeros(len(g_kid), dtype=bool)
        for i in np.flatnonzero(late):
            bars = self._closed.get((int(g_kid[i]), int(g_t[i])), ())
            match = [bar for bar in bars if bar[0] == g_start[i]]
            if match:
                for f, value in zip(_FIELDS, match[-1][1:]):
                    prior[f][i] = value
            elif not bars or g_start[i] < bars[0][0]:
                lost[i] = True
        return lost

    def _rows(self, ts, kids, starts, fields, closed: bool) -> dict:
        rows = {"kid": np.asarray(kids, dtype=np.int64), "t": np.asarray(ts, dtype=np.int64),
                "start": np.asarray(starts, dtype=np.int64), "closed": np.full(len(kids), closed)}
        rows.update(fields)
        if closed:
            self._remember(rows)
        return rows

    def _remember(self, rows) -> None:
        """Keep closed bars (one Python step per closed bar) for late corrections."""
        self.bars_closed += len(rows["kid"])
        values = zip(rows["kid"].tolist(), rows["t"].tolist(), rows["start"].tolist(),
                     *(rows[f].tolist() for f in _FIELDS))
        for kid, t, start, *fields in values:
            bars = self._closed.setdefault((kid, t), deque(maxlen=self._history))
            if bars and bars[-1][0] >= start:  # a correction: drop the version it replaces
                for i, bar in enumerate(bars):
                    if bar[0] == start:
                        del bars[i]
                        break
            bars.append((start, *fields))

    def _frame(self, parts) -> pd.DataFrame:
        parts = [p for p in parts if len(p["kid"])]
        if not parts:
            return empty("bars")
        cols = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
        order = np.lexsort((cols["start"], cols["t"], cols["kid"]))
        cols = {c: v[order] for c, v in cols.items()}
        if self._labels is None:
            self._labels = [np.array(v, dtype=object) for v in zip(*self._names)]
        exchanges, symbols = self._labels
        columns = {
            "exchange": exchanges[cols["kid"]],
            "symbol": symbols[cols["kid"]],
            "timeframe": self._timeframe_labels[cols["t"]],
            "start": cols["start"].view("datetime64[ns]"),
            **{f: cols[f] for f in ("open", "high", "low", "close", "volume")},
            "vwap": vwap(cols["notional"], cols["volume"]),
            "trades": cols["trades"].astype(np.int64),
            "closed": cols["closed"],
        }
        frame = pd.DataFrame(columns, copy=False)
        self._made = (frame, columns)
        return frame

    def columns_of(self, frame: pd.DataFrame) -> dict | None:
        """The numpy arrays of the columns of ``frame``, if it is the last non-empty frame returned.

        They are copies of its values (None for any other frame): a consumer of the bars
        frame just returned (the hub) reads them without pandas' cost per column.
        """
        made, columns = self._made
        return columns if frame is made else None
