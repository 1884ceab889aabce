"""Streaming OHLCV bars over batches of trades of many symbols.

:class:`BarBuilder` keeps, per (exchange, symbol, timeframe), the forming bar in
columnar numpy state and updates it once per batch: the batch is sorted by (key, time)
once and, per timeframe, split into (key, bar) segments aggregated with
:func:`analytics.bars.aggregate`, continuing the running sums of the forming bar. No
Python runs per trade; Python runs per closed bar only to keep a short history.

For any split of a time-ordered trade sequence into batches, the closed bars and the
final forming bar equal :func:`analytics.bars.ohlcv` over all the trades, bit for bit.
"""

from collections import deque

import numpy as np
import pandas as pd

from analytics.bars import aggregate, sort_order, timeframe_ns, vwap
from analytics.schema import BAR_COLUMNS, TIMEFRAMES, empty

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
        shape = (0, len(self.timeframes))
        self._start = np.full(shape, _NONE, dtype=np.int64)
        self._forming = np.zeros(shape, dtype=bool)
        self._state = {f: np.full(shape, _NEUTRAL[f], dtype=type(_NEUTRAL[f])) for f in _FIELDS}
        self._closed = {}
        self.late_trades = dict.fromkeys(self.timeframes, 0)
        self.late_lost = dict.fromkeys(self.timeframes, 0)
        self.bars_closed = 0

    def update(self, trades: pd.DataFrame) -> pd.DataFrame:
        """Add a batch of trades (schema ``TRADE_COLUMNS``, any keys, any order).

        Returns
        -------
        pandas.DataFrame
            Bars in the schema ``BAR_COLUMNS``, sorted by key, timeframe and start: every
            bar closed (or corrected) by this batch with ``closed=True``, and the forming
            bar of every key and timeframe the batch touched with ``closed=False``.
        """
        if len(trades) == 0:
            return empty("bars")
        kid = self._key_ids(trades["exchange"].to_numpy(), trades["symbol"].to_numpy())
        stamps = trades["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        price = trades["price"].to_numpy(dtype=np.float64)
        amount = trades["amount"].to_numpy(dtype=np.float64)
        order = sort_order(kid, stamps)
        if order is not None:
            kid, stamps, price, amount = kid[order], stamps[order], price[order], amount[order]
        parts = []
        for t in range(len(self.timeframes)):
            parts += self._update(t, kid, stamps, price, amount)
        return self._frame(parts)

    def close_until(self, timestamp) -> pd.DataFrame:
        """Close every forming bar that ends at or before ``timestamp`` (wall clock).

        Returns the closed bars (``closed=True``), as :meth:`update` does.
        """
        now = pd.Timestamp(timestamp).value
        due = self._forming & (self._start <= now - self._steps)
        kids, ts = np.nonzero(due)
        parts = []
        for t in np.unique(ts):
            k = kids[ts == t]
            parts.append(self._rows(t, k, self._start[k, t], self._take(k, t), closed=True))
        self._forming[due] = False
        return self._frame(parts)

    def forming(self) -> pd.DataFrame:
        """The forming bar of every key and timeframe (``closed=False``)."""
        kids, ts = np.nonzero(self._forming)
        parts = [self._rows(t, kids[ts == t], self._start[kids[ts == t], t],
                            self._take(kids[ts == t], t), closed=False) for t in np.unique(ts)]
        return self._frame(parts)

    def _key_ids(self, exchange: np.ndarray, symbol: np.ndarray) -> np.ndarray:
        ce, ue = pd.factorize(exchange)
        cs, us = pd.factorize(symbol)
        pairs, inverse = np.unique(ce.astype(np.int64) * len(us) + cs, return_inverse=True)
        ids = np.empty(len(pairs), dtype=np.int64)
        for i, pair in enumerate(pairs):
            name = (ue[pair // len(us)], us[pair % len(us)])
            if name not in self._ids:
                self._add_key(name)
            ids[i] = self._ids[name]
        return ids[inverse.ravel()]

    def _add_key(self, name) -> None:
        self._ids[name] = len(self._names)
        self._names.append(name)
        if len(self._names) > len(self._start):
            grow = max(8, len(self._start))
            pad = ((0, grow), (0, 0))
            self._start = np.pad(self._start, pad, constant_values=_NONE)
            self._forming = np.pad(self._forming, pad, constant_values=False)
            for f in _FIELDS:
                self._state[f] = np.pad(self._state[f], pad, constant_values=_NEUTRAL[f])

    def _take(self, kids, t) -> dict:
        return {f: self._state[f][kids, t] for f in _FIELDS}

    def _update(self, t, kid, stamps, price, amount) -> list:
        step = self._steps[t]
        start = stamps // step * step
        new = np.ones(len(start), dtype=bool)
        new[1:] = (kid[1:] != kid[:-1]) | (start[1:] != start[:-1])
        offsets = np.flatnonzero(new)
        g_kid, g_start = kid[offsets], start[offsets]
        s_start, s_forming = self._start[g_kid, t], self._forming[g_kid, t]
        has = s_start != _NONE
        same = has & s_forming & (g_start == s_start)
        late = has & ((g_start < s_start) | (~s_forming & (g_start == s_start)))
        prior = {f: np.full(len(offsets), _NEUTRAL[f], dtype=type(_NEUTRAL[f])) for f in _FIELDS}
        for f in _FIELDS:
            prior[f][same] = self._state[f][g_kid[same], t]
        lost = np.zeros(len(offsets), dtype=bool)
        if late.any():
            lost = self._prior_closed(t, g_kid, g_start, late, prior)
            lengths = np.diff(offsets, append=len(start))
            self.late_trades[self.timeframes[t]] += int(lengths[late].sum())
            self.late_lost[self.timeframes[t]] += int(lengths[lost].sum())
        fresh = aggregate(price, amount, stamps, offsets, prior["volume"], prior["notional"])
        bars = _merge(prior, fresh)
        current = ~late
        last = current & np.append(g_kid[1:] != g_kid[:-1], True)
        first = current & np.insert((g_kid[1:] != g_kid[:-1]) | late[:-1], 0, True)
        closing = first & has & s_forming & (g_start > s_start)
        out = []
        if closing.any():
            k = g_kid[closing]
            out.append(self._rows(t, k, self._start[k, t], self._take(k, t), closed=True))
        done = (late & ~lost) | (current & ~last)
        if done.any():
            out.append(self._rows(t, g_kid[done], g_start[done], {f: v[done] for f, v in bars.items()},
                                  closed=True))
        k = g_kid[last]
        self._start[k, t] = g_start[last]
        self._forming[k, t] = True
        for f in _FIELDS:
            self._state[f][k, t] = bars[f][last]
        out.append(self._rows(t, k, g_start[last], {f: v[last] for f, v in bars.items()}, closed=False))
        return out

    def _prior_closed(self, t, g_kid, g_start, late, prior) -> np.ndarray:
        """Fill ``prior`` from remembered closed bars for late groups; return the lost ones."""
        lost = np.zeros(len(g_kid), dtype=bool)
        for i in np.flatnonzero(late):
            bars = self._closed.get((int(g_kid[i]), t), ())
            match = [bar for bar in bars if bar[0] == g_start[i]]
            if match:
                for f, value in zip(_FIELDS, match[-1][1:]):
                    prior[f][i] = value
            elif not bars or g_start[i] < bars[0][0]:
                lost[i] = True
        return lost

    def _rows(self, t, kids, starts, fields, closed: bool) -> dict:
        rows = {"kid": np.asarray(kids, dtype=np.int64), "t": np.full(len(kids), t, dtype=np.int64),
                "start": np.asarray(starts, dtype=np.int64), "closed": np.full(len(kids), closed)}
        rows.update(fields)
        if closed:
            self._remember(t, rows)
        return rows

    def _remember(self, t, rows) -> None:
        """Keep closed bars (one Python step per closed bar) for late corrections."""
        self.bars_closed += len(rows["kid"])
        values = zip(rows["kid"].tolist(), rows["start"].tolist(), *(rows[f].tolist() for f in _FIELDS))
        for kid, start, *fields in values:
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
        exchanges, symbols = (np.array(v, dtype=object) for v in zip(*self._names))
        labels = np.array(self.timeframes, dtype=object)
        return pd.DataFrame({
            "exchange": exchanges[cols["kid"]],
            "symbol": symbols[cols["kid"]],
            "timeframe": labels[cols["t"]],
            "start": cols["start"].view("datetime64[ns]"),
            **{f: cols[f] for f in ("open", "high", "low", "close", "volume")},
            "vwap": vwap(cols["notional"], cols["volume"]),
            "trades": cols["trades"].astype(np.int64),
            "closed": cols["closed"],
        }, columns=list(BAR_COLUMNS))
