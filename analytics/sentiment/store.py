"""Scored news items and per-coin sentiment bars in the tick store's ArcticDB.

Two libraries beside the ticks' (same ArcticDB instance, see :mod:`analytics.storage.backend`):

``news``
    one symbol per UTC day of publication (``2024-05-01``), indexed by ``published``,
    columns :data:`STORED_COLUMNS`. Items are stored once by ``id``: a batch is checked
    against the ids stored on the days it touches. Items in publication order are appended
    (batched: every append costs a few ms and leaves a segment, so a day is compacted every
    :data:`COMPACT_AFTER` appends); an item older than its day's newest makes that day
    written again in order (rare: feeds mostly publish forward). Old items never touch
    today's symbol.
``sentiment``
    one symbol per coin and timeframe (``BTC/5m``), indexed by bar ``start``, columns
    ``mean, count, pos_share, neg_share, closed``. Writing a bar replaces the stored one.

Listing symbols: ArcticDB 6.28 compacts a library's symbol list at its first listing ever
(and again after some 500 new symbols), waiting 1 s for a storage lock while holding the
GIL, which stalls every thread of the process. The first ``NewsStore`` of a process lists
the days once, so that a new store pays this when it is opened (the ingest opens it before
its feeds run), not in the middle of a feed. Sentiment symbols are checked one by one, never
listed.

Every ``NewsStore`` on one ArcticDB instance in a process shares its two libraries and a
write lock (a second ``Library`` object would keep a stale version map of a symbol the first
rewrites). One writing process per store (the ingest); readers may be many.
"""

import threading
import weakref

import numpy as np
import pandas as pd
from arcticdb.exceptions import KeyNotFoundException, NoDataFoundException
from arcticdb.version_store.library import DataError, UpdatePayload, WritePayload

from analytics.sentiment.aggregate import BAR_COLUMNS, check_timeframe
from analytics.sentiment.items import ITEM_COLUMNS
from analytics.storage import StoreError, TickStore

STORED_COLUMNS = [c for c in ITEM_COLUMNS if c != "published"]
BAR_VALUES = ["mean", "count", "pos_share", "neg_share", "closed"]
# A day's items are compacted after this many appends (each append leaves a small segment).
COMPACT_AFTER = 64
DAY = "%Y-%m-%d"  # the items' symbols: their day of publication


class _Shared:
    """What every NewsStore on one ArcticDB backend shares."""

    def __init__(self, arctic):
        self.news = arctic.get_library("news", create_if_missing=True)
        self.sentiment = arctic.get_library("sentiment", create_if_missing=True)
        self.news.list_symbols()  # see the module's notes on listing symbols
        self.lock = threading.Lock()
        self.appends = {}  # day -> appends since its last compaction


_SHARED: "weakref.WeakKeyDictionary[object, _Shared]" = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def _shared(tickstore) -> _Shared:
    backend = tickstore._backend
    with _SHARED_LOCK:
        shared = _SHARED.get(backend)
        if shared is None:
            shared = _SHARED[backend] = _Shared(backend.arctic)
        return shared


def _read(library, symbol: str, **options) -> pd.DataFrame:
    """``library.read(symbol, **options).data``, again if the version read was pruned meanwhile by the writer."""
    for attempt in range(3):
        try:
            return library.read(symbol, **options).data
        except (KeyNotFoundException, NoDataFoundException):
            if attempt == 2:
                raise


def _text(values) -> np.ndarray:
    """Strings, ``""`` for missing values."""
    return np.array(["" if v is None or v != v else str(v) for v in values], dtype=object)


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Scored items as stored: :data:`STORED_COLUMNS` indexed by ``published``, sorted (stable) by it.

    ``published`` may be a column or the index; a missing one is taken from ``fetched``.

    Raises
    ------
    ValueError
        If a column is missing.
    """
    if "published" not in frame.columns:
        frame = frame.rename_axis("published").reset_index()
    missing = [c for c in ITEM_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"scored items lack columns {missing}")
    columns = {}
    for name, dtype in ITEM_COLUMNS.items():
        values = frame[name]
        columns[name] = _text(values.tolist()) if dtype is object else values.to_numpy(dtype=dtype)
    stamps = columns.pop("published")
    stamps = np.where(np.isnat(stamps), columns["fetched"], stamps)
    out = pd.DataFrame(columns, index=pd.DatetimeIndex(stamps, name="published"), columns=STORED_COLUMNS)
    return out.iloc[np.argsort(out.index.values, kind="stable")]


def _range(start, end):
    start = None if start is None else pd.Timestamp(start)
    end = None if end is None else pd.Timestamp(end)
    for name, stamp in (("start", start), ("end", end)):
        if stamp is not None and stamp.tzinfo is not None:
            raise ValueError(f"{name} must be a UTC time without a time zone, got {stamp}")
    return start, end


class NewsStore:
    """Scored news items and sentiment bars in the ArcticDB of a :class:`~analytics.storage.TickStore`.

    Parameters
    ----------
    store : TickStore or str
        The tick store (or its URI) whose ArcticDB instance gets libraries ``news`` and ``sentiment``.

    Examples
    --------
    >>> news = NewsStore(TickStore("mem://"))
    >>> news.write_items(scored)  # doctest: +SKIP
    >>> news.read_items(coin="BTC", limit=50)  # doctest: +SKIP
    """

    def __init__(self, store):
        self.tickstore = TickStore(store) if isinstance(store, str) else store
        if not isinstance(self.tickstore, TickStore):
            raise ValueError(f"store must be a TickStore or an ArcticDB URI, got {store!r}")
        self._shared = _shared(self.tickstore)
        self.news, self.sentiment = self._shared.news, self._shared.sentiment

    def __repr__(self) -> str:
        return f"NewsStore({self.tickstore.uri!r})"

    # -- items -----------------------------------------------------------------------
    def write_items(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Store scored items not stored yet (by ``id``); the rows stored, as :meth:`read_items` gives them.

        Parameters
        ----------
        frame : pandas.DataFrame
            Columns :data:`ITEM_COLUMNS` (``published`` may be the index instead).

        Raises
        ------
        ValueError
            If a column is missing.
        StoreError
            If ArcticDB refuses a day's items (the other days are stored).
        """
        items = normalise(frame)
        items = items[~items["id"].duplicated().to_numpy()]
        days = pd.Index(items.index.strftime(DAY))
        appends, rewrites, new, failed = [], [], [], {}
        with self._shared.lock:
            for day in days.unique():
                part = items[days == day]
                stored = _read(self.news, day, columns=["id"]) if self.news.has_symbol(day) else None
                if stored is not None:
                    part = part[~part["id"].isin(stored["id"]).to_numpy()]
                if not len(part):
                    continue
                new.append(part)
                if stored is None or not len(stored) or part.index[0] >= stored.index[-1]:
                    appends.append(WritePayload(day, part))
                else:  # older than the day's newest: the day written again, in order
                    merged = pd.concat([_read(self.news, day), part])
                    rewrites.append(WritePayload(day, merged.iloc[np.argsort(merged.index.values, kind="stable")]))
            if appends:
                failed.update(_failures(appends, self.news.append_batch(appends, prune_previous_versions=True)))
                self._compact([p.symbol for p in appends if p.symbol not in failed])
            if rewrites:
                failed.update(_failures(rewrites, self.news.write_batch(rewrites, prune_previous_versions=True)))
        if failed:
            day, error = next(iter(failed.items()))
            raise StoreError(f"news items of {len(failed)} days not stored, e.g. {day}: {error}")
        return pd.concat(new).sort_index(kind="stable") if new else items.iloc[:0]

    def _compact(self, days: list) -> None:
        """Count appends per day; compact a day appended to :data:`COMPACT_AFTER` times (hold the lock)."""
        appends = self._shared.appends
        for day in days:
            appends[day] = appends.get(day, 0) + 1
            if appends[day] >= COMPACT_AFTER:
                self.news.compact_data(day, prune_previous_versions=True)
                appends[day] = 0

    def _days(self, start=None, end=None) -> list:
        """The stored days (symbols), oldest first, within ``start..end`` if given."""
        first = None if start is None else start.strftime(DAY)
        last = None if end is None else end.strftime(DAY)
        days = self.news.list_symbols()
        return sorted(d for d in days if (first is None or d >= first) and (last is None or d <= last))

    def read_items(self, start=None, end=None, coin=None, source=None, limit=None) -> pd.DataFrame:
        """Stored items published in ``start..end`` (inclusive), newest last, indexed by ``published``.

        Parameters
        ----------
        start, end : optional
            Anything :class:`pandas.Timestamp` takes, UTC without a time zone.
        coin : str, optional
            Only items tagged with this code (``"BTC"``).
        source : str, optional
            Only items of this source name.
        limit : int, optional
            Only the newest ``limit`` items (days are read newest first, so a small limit reads little).

        Returns
        -------
        pandas.DataFrame
            Columns :data:`STORED_COLUMNS`.
        """
        start, end = _range(start, end)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
        frames, held = [], 0
        for day in reversed(self._days(start, end)):
            if limit is not None and held >= limit:
                break
            part = _select(_read(self.news, day, date_range=(start, end)), coin, source)
            frames.append(part)
            held += len(part)
        if not frames:
            return _empty_items()
        items = pd.concat(frames[::-1]) if len(frames) > 1 else frames[0]
        return items.iloc[-limit:] if limit is not None and limit < len(items) else items

    def seen_ids(self, limit: int = 100_000) -> list:
        """The ids of the newest ``limit`` stored items, oldest first (to seed a poller's de-duplication)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        frames, held = [], 0
        for day in reversed(self._days()):
            if held >= limit:
                break
            frames.append(_read(self.news, day, columns=["id"])["id"])
            held += len(frames[-1])
        return pd.concat(frames[::-1]).tolist()[-limit:] if frames else []

    # -- sentiment bars --------------------------------------------------------------
    def write_sentiment(self, frame: pd.DataFrame) -> int:
        """Store sentiment bars (columns :data:`~analytics.sentiment.aggregate.BAR_COLUMNS`), replacing
        stored bars of the same coin, timeframe and start; the number of bars written.

        Raises
        ------
        ValueError
            If a column is missing or a timeframe is unknown.
        StoreError
            If ArcticDB refuses a symbol's bars (the others are stored).
        """
        missing = [c for c in BAR_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"sentiment bars lack columns {missing}")
        if not len(frame):
            return 0
        for timeframe in frame["timeframe"].unique():
            check_timeframe(timeframe)
        payloads = []
        with self._shared.lock:
            for (coin, timeframe), part in frame.groupby(["coin", "timeframe"], sort=True):
                bars = _bar_values(part)
                name = f"{coin}/{timeframe}"
                if self.sentiment.has_symbol(name):  # an update replaces its date range: keep the bars inside it
                    stored = self.sentiment.read(name, date_range=(bars.index[0], bars.index[-1])).data
                    bars = pd.concat([stored, bars])
                    bars = bars[~bars.index.duplicated(keep="last")].sort_index(kind="stable")
                payloads.append(UpdatePayload(name, bars))
            results = self.sentiment.update_batch(payloads, upsert=True, prune_previous_versions=True)
        failed = [f"{p.symbol}: {' '.join(str(r.exception_string).split())}"
                  for p, r in zip(payloads, results) if isinstance(r, DataError)]
        if failed:
            raise StoreError(f"sentiment bars of {len(failed)} symbols not stored, e.g. {failed[0]}")
        return len(frame)

    def read_sentiment(self, coin: str, timeframe: str, start=None, end=None) -> pd.DataFrame:
        """Stored bars of ``coin`` at ``timeframe``, indexed by ``start``, ``start..end`` inclusive.

        Columns ``mean, count, pos_share, neg_share, closed``; empty for a coin never mentioned.
        """
        check_timeframe(timeframe)
        start, end = _range(start, end)
        name = f"{coin}/{timeframe}"
        if not isinstance(coin, str) or not coin or not self.sentiment.has_symbol(name):
            return _bar_values(pd.DataFrame(columns=BAR_COLUMNS))
        return _read(self.sentiment, name, date_range=(start, end))


def _failures(payloads: list, results: list) -> dict:
    """``{symbol: one-line error}`` of the batch results that failed."""
    return {p.symbol: " ".join(str(r.exception_string).split()) for p, r in zip(payloads, results)
            if isinstance(r, DataError)}


def _select(items: pd.DataFrame, coin, source) -> pd.DataFrame:
    """The items tagged with ``coin`` and from ``source`` (None: any)."""
    if coin is not None:
        items = items[np.array([coin in text.split(",") for text in items["coins"].tolist()], dtype=bool)]
    if source is not None:
        items = items[(items["source"] == source).to_numpy()]
    return items


def _empty_items() -> pd.DataFrame:
    columns = {c: np.empty(0, dtype=ITEM_COLUMNS[c]) for c in STORED_COLUMNS}
    return pd.DataFrame(columns, index=pd.DatetimeIndex([], dtype="datetime64[ns]", name="published"))


def _bar_values(bars: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "mean": bars["mean"].to_numpy(dtype=np.float64), "count": bars["count"].to_numpy(dtype=np.int64),
        "pos_share": bars["pos_share"].to_numpy(dtype=np.float64),
        "neg_share": bars["neg_share"].to_numpy(dtype=np.float64), "closed": bars["closed"].to_numpy(dtype=bool),
    }, index=pd.DatetimeIndex(bars["start"].to_numpy(dtype="datetime64[ns]"), name="start"), columns=BAR_VALUES)
