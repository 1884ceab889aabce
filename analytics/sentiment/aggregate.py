"""Per-coin sentiment bars from scored items: mean compound, mentions, shares positive and negative.

An item about several coins counts once for each (its ``coins`` column holds comma-joined
codes, ``""`` for none; items about no coin are in no bar). A bar of timeframe ``tf``
starting at ``start`` holds the items published in ``[start, start + tf)``:

- ``mean``: mean compound score of its items,
- ``count``: how many items mention the coin,
- ``pos_share``, ``neg_share``: the shares of those items labelled positive and negative.

:func:`sentiment_bars` computes them in one go (history, the store's source of truth);
:class:`SentimentAggregator` keeps them incrementally for the live feed, with the forming bar
of each coin and timeframe and the bars that close as the clock passes, like the price bars.
"""

import numpy as np
import pandas as pd

TIMEFRAMES = {"5m": "5min", "1h": "1h"}
BAR_COLUMNS = ["coin", "timeframe", "start", "mean", "count", "pos_share", "neg_share", "closed"]
POSITIVE, NEGATIVE = "positive", "negative"


def check_timeframe(timeframe: str) -> pd.Timedelta:
    """The length of a sentiment bar timeframe (``"5m"`` or ``"1h"``)."""
    if timeframe not in TIMEFRAMES:
        raise ValueError(f"unknown sentiment timeframe {timeframe!r}: use one of {', '.join(TIMEFRAMES)}")
    return pd.Timedelta(TIMEFRAMES[timeframe])


def published(items: pd.DataFrame) -> pd.DatetimeIndex:
    """The items' publication times: their ``published`` column, else their index."""
    values = items["published"] if "published" in items.columns else items.index
    return pd.DatetimeIndex(values)


def mentions(items: pd.DataFrame) -> pd.DataFrame:
    """One row per (item, coin) it mentions: ``coin``, ``published``, ``compound``, ``positive``, ``negative``."""
    lists = [text.split(",") if text else [] for text in items["coins"].tolist()]
    counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    rows = np.repeat(np.arange(len(items)), counts)
    labels = items["label"].to_numpy()[rows]
    return pd.DataFrame({
        "coin": np.array([c for coins in lists for c in coins], dtype=object),
        "published": published(items).to_numpy()[rows],
        "compound": items["compound"].to_numpy(dtype=np.float64)[rows],
        "positive": labels == POSITIVE,
        "negative": labels == NEGATIVE,
    })


def _sums(items: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Per (coin, start): ``total`` compound, ``count``, ``positive`` and ``negative`` counts."""
    rows = mentions(items)
    rows["start"] = rows["published"].dt.floor(TIMEFRAMES[timeframe])
    sums = rows.groupby(["coin", "start"], sort=True).agg(total=("compound", "sum"), count=("compound", "size"),
                                                          positive=("positive", "sum"), negative=("negative", "sum"))
    sums = sums.reset_index()
    sums.insert(1, "timeframe", timeframe)
    return sums


def _bars(sums: pd.DataFrame, closed) -> pd.DataFrame:
    """Bars in :data:`BAR_COLUMNS` from per-bar sums (coin, timeframe, start, total, count, positive, negative)."""
    count = sums["count"].to_numpy(dtype=np.int64)
    return pd.DataFrame({
        "coin": sums["coin"].to_numpy(dtype=object),
        "timeframe": sums["timeframe"].to_numpy(dtype=object),
        "start": sums["start"].to_numpy(dtype="datetime64[ns]"),
        "mean": sums["total"].to_numpy(dtype=np.float64) / count,
        "count": count,
        "pos_share": sums["positive"].to_numpy(dtype=np.float64) / count,
        "neg_share": sums["negative"].to_numpy(dtype=np.float64) / count,
        "closed": np.asarray(closed, dtype=bool) if np.ndim(closed) else np.full(len(sums), bool(closed)),
    }, columns=BAR_COLUMNS)


def sentiment_bars(items: pd.DataFrame, timeframe: str, now=None, close_delay: float = 0.0) -> pd.DataFrame:
    """Sentiment bars of scored items, one row per coin and bar start (sorted by coin, then start).

    Parameters
    ----------
    items : pandas.DataFrame
        Scored items with ``coins``, ``compound``, ``label`` and ``published`` (a column or the index).
    timeframe : {"5m", "1h"}
    now : optional
        If given, a bar is ``closed`` once ``now`` is ``close_delay`` seconds past its end;
        otherwise every bar is closed (history).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`BAR_COLUMNS`.
    """
    length = check_timeframe(timeframe)
    sums = _sums(items, timeframe)
    closed = True if now is None else (sums["start"] + length + pd.Timedelta(seconds=close_delay)
                                       <= pd.Timestamp(now)).to_numpy()
    return _bars(sums, closed)


class SentimentAggregator:
    """Sentiment bars kept up to date item batch by item batch, for the live feed.

    Parameters
    ----------
    timeframes : sequence of str
        Of :data:`TIMEFRAMES`.
    close_delay : float
        Seconds past its end before a bar is closed (news arrives late: at least the polling interval).
    retain : float
        Seconds of bars kept (to fold in late items); older ones are forgotten.

    Notes
    -----
    :meth:`add` returns every bar a batch touched: forming ones (``closed`` False), and
    closed ones again with their new values (a late item corrects its bar); :meth:`close_until`
    returns the bars the clock closed. Both are in :data:`BAR_COLUMNS`, sorted by coin,
    timeframe and start. A batch costs a few microseconds per mention (no pandas grouping:
    it runs on the event loop). Not thread-safe: call from one thread (the feed's loop).
    """

    def __init__(self, timeframes=tuple(TIMEFRAMES), close_delay: float = 60.0, retain: float = 2 * 86400.0):
        self.lengths = {timeframe: check_timeframe(timeframe).value for timeframe in timeframes}
        if not close_delay >= 0 or not retain > 0:
            raise ValueError(f"close_delay must be >= 0 and retain > 0 seconds, got {close_delay!r}, {retain!r}")
        self.timeframes = list(self.lengths)
        self.close_delay = pd.Timedelta(seconds=close_delay)
        self.retain = pd.Timedelta(seconds=retain)
        self._bars = {}  # (coin, timeframe, start in ns) -> [total, count, positive, negative]
        self._open = set()  # keys of the bars not closed yet
        self._pruned = None  # when bars past retain were last forgotten

    def __len__(self) -> int:
        return len(self._bars)

    def add(self, items: pd.DataFrame, now) -> pd.DataFrame:
        """Fold scored items into their bars; the touched bars."""
        rows = mentions(items)
        stamps = rows["published"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        values = list(zip(rows["coin"].tolist(), rows["compound"].tolist(), rows["positive"].tolist(),
                          rows["negative"].tolist()))
        touched = set()
        for timeframe, length in self.lengths.items():
            for (coin, compound, positive, negative), start in zip(values, (stamps // length * length).tolist()):
                key = (coin, timeframe, start)
                bar = self._bars.get(key)
                if bar is None:
                    bar = self._bars[key] = [0.0, 0, 0, 0]
                    self._open.add(key)
                bar[0] += compound
                bar[1] += 1
                bar[2] += positive
                bar[3] += negative
                touched.add(key)
        return self._rows(touched, now)

    def close_until(self, now) -> pd.DataFrame:
        """The bars closed by the clock at ``now`` (``close_delay`` past their end); forget those past ``retain``."""
        now = pd.Timestamp(now)
        closing = [key for key in self._open if self._closes(key, now.value)]
        if self._pruned is None or now - self._pruned > self.retain / 100:
            self._pruned = now
            oldest = (now - self.retain).value
            for key in [key for key in self._bars if key[2] < oldest]:
                del self._bars[key]
                self._open.discard(key)
        return self._rows([key for key in closing if key in self._bars], now)

    def seed(self, bars: pd.DataFrame) -> None:
        """Take bars computed elsewhere (:func:`sentiment_bars` of stored items) as the current state."""
        for row in bars.itertuples(index=False):
            if row.timeframe not in self.lengths:
                continue
            key, count = (row.coin, row.timeframe, pd.Timestamp(row.start).value), int(row.count)
            self._bars[key] = [row.mean * count, count, round(row.pos_share * count), round(row.neg_share * count)]
            if row.closed:
                self._open.discard(key)
            else:
                self._open.add(key)

    def _closes(self, key, now: int) -> bool:
        return key[2] + self.lengths[key[1]] + self.close_delay.value <= now

    def _rows(self, keys, now) -> pd.DataFrame:
        now = pd.Timestamp(now).value
        keys = sorted(keys)
        for key in keys:
            if key in self._open and self._closes(key, now):
                self._open.discard(key)
        values = np.array([self._bars[key] for key in keys], dtype=np.float64).reshape(-1, 4)
        count = values[:, 1].astype(np.int64)
        return pd.DataFrame({
            "coin": np.array([k[0] for k in keys], dtype=object),
            "timeframe": np.array([k[1] for k in keys], dtype=object),
            "start": np.array([k[2] for k in keys], dtype=np.int64).view("datetime64[ns]"),
            "mean": values[:, 0] / count, "count": count,
            "pos_share": values[:, 2] / count, "neg_share": values[:, 3] / count,
            "closed": np.array([key not in self._open for key in keys], dtype=bool),
        }, columns=BAR_COLUMNS)
