"""The Sentiment page's numbers and headlines: computed once per change, shared by every session.

A :class:`SentimentSpec` names what is computed (the coins, the coin in focus and its
market, the timeframe, the gauge's window, the lookback). :func:`compute` is the pure part:
per-coin sentiment bars and the coin's price bars in, a :class:`SentimentResult` out.
:class:`SentimentData` is the shared part: the sessions of a process with one spec hold
one; it watches the hub's sentiment and price keys (a cursor's lag, microseconds) and
recomputes on a background thread at most every :data:`PERIOD` seconds while they change,
so a session's timer only compares a version number.

Sentiment bars are the stored series (:meth:`~analytics.sentiment.store.NewsStore.read_sentiment`,
read at most every :data:`MAX_AGE` seconds) with the hub's rows on top: ``mean`` (mean
compound score of the bar's items), ``count`` (mentions), ``pos_share``, ``neg_share``. The
price is stored bars merged with the hub's (:mod:`analytics.views.history`).

:class:`Headlines` holds the newest scored items of an ingest (the store's, then the hub's)
with their display columns made once, escaped: a title is text, never markup.
"""

import html
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from analytics import risk
from analytics.schema import TIMEFRAMES
from analytics.sentiment.store import NewsStore
from analytics.storage.errors import one_line
from analytics.views.history import DOWN, UP, empty_bars, hub_bars, merge_bars, read_history
from analytics.views.sharing import Shared

LOG = logging.getLogger(__name__)

TIMEFRAMES_SHOWN = ("5m", "1h")  # the sentiment series the pipeline keeps
MAX_LAG = 6  # bars of lead-lag tested between sentiment and returns
NEEDED = 3 * MAX_LAG + 2  # common bars analytics.risk.lead_lag needs
MIN_NEWS_BARS = 10  # bars with at least one mention before correlating
MIN_INTERVAL = 0.25  # seconds between hub polls of a shared object, whatever the sessions
PERIOD = 1.0  # seconds between two computations of one spec while its inputs change
MAX_AGE = 30.0  # seconds a stored read serves
KEEP = 500  # newest items a Headlines holds
SUMMARY = 400  # characters of a headline's tooltip (its title and summary)
NEUTRAL = "#9e9e9e"
LABEL_COLORS = {"positive": UP, "negative": DOWN, "neutral": NEUTRAL}
LINK_STYLE = ' style="color:inherit"'  # readable in dark and light themes
SERIES_FIELDS = ["mean", "count", "pos_share", "neg_share", "closed"]

_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tickscope-sentiment")  # started on first use


class SentimentSpec(NamedTuple):
    """What one Sentiment computation covers.

    Gauges for ``coins`` (codes, e.g. ``BTC``) over the last ``window`` bars of
    ``timeframe`` (5m or 1h); ``coin``'s series over ``lookback`` bars under the price of
    ``symbol`` on ``exchange`` (``symbol`` empty: no market for the coin).
    """

    coins: tuple
    coin: str
    exchange: str
    symbol: str
    timeframe: str
    window: int
    lookback: int


@dataclass(frozen=True)
class SentimentResult:
    """Every number of the Sentiment page for one :class:`SentimentSpec`.

    Attributes
    ----------
    through : Timestamp or None
        Start of the newest sentiment bar of any coin: the gauges' window ends with it.
    gauges : DataFrame
        By coin: ``mean`` (compound score, mention-weighted; NaN without mentions),
        ``count`` (mentions), ``pos_share``, ``neg_share`` over the window.
    series : DataFrame
        The coin's sentiment bars with a mention in the sample, indexed by start.
    price : DataFrame
        The coin's price bars in the sample (``close``, ``closed``), indexed by start.
    leadlag : LeadLagResult or None
        :func:`analytics.risk.lead_lag` of the coin's sentiment and its price's log returns.
    forward : DataFrame or None
        By lag k = 1 .. :data:`MAX_LAG`: ``corr`` of sentiment with the return k bars later,
        and ``band`` (half-width of the band of chance).
    words : str
        Sentiment vs forward returns in plain words ("" without enough data).
    notes : dict
        By section (``gauges``, ``series``, ``price``, ``forward``): one line when it lacks data.
    elapsed : float
        Seconds the computation took.
    """

    spec: SentimentSpec
    through: pd.Timestamp | None = None
    gauges: pd.DataFrame | None = None
    series: pd.DataFrame | None = None
    price: pd.DataFrame | None = None
    leadlag: risk.LeadLagResult | None = None
    forward: pd.DataFrame | None = None
    words: str = ""
    notes: dict = field(default_factory=dict)
    elapsed: float = 0.0


# -- the computation --------------------------------------------------------------------
def bar_length(timeframe: str) -> pd.Timedelta:
    """The length of a bar of ``timeframe``."""
    return pd.Timedelta(TIMEFRAMES[timeframe])


def duration(delta: pd.Timedelta) -> str:
    """``45 min``, ``2 h``, ``3 days``."""
    seconds = delta.total_seconds()
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86_400:.0f} days"


def empty_series() -> pd.DataFrame:
    """Sentiment bars without rows: :data:`SERIES_FIELDS`, indexed by ``start``."""
    frame = pd.DataFrame({c: pd.Series(dtype=float) for c in SERIES_FIELDS})
    frame.index = pd.DatetimeIndex([], name="start")
    return frame.astype({"count": np.int64, "closed": bool})


def live_series(rows: pd.DataFrame) -> pd.DataFrame:
    """Hub sentiment rows (a ``start`` column, maybe several per start) as bars, the last row per start winning."""
    if rows.empty:
        return empty_series()
    frame = rows.drop_duplicates("start", keep="last").set_index("start")[SERIES_FIELDS]
    return frame.sort_index(kind="stable")


def weighted(bars: pd.DataFrame) -> dict:
    """Mention-weighted sentiment of some bars: mean compound, mentions, share positive and negative."""
    bars = bars[bars["count"] > 0]
    count = int(bars["count"].sum())
    if not count:
        return {"mean": np.nan, "count": 0, "pos_share": np.nan, "neg_share": np.nan}
    weights = bars["count"].to_numpy(float)
    return {"mean": float(bars["mean"].to_numpy(float) @ weights / count), "count": count,
            "pos_share": float(bars["pos_share"].to_numpy(float) @ weights / count),
            "neg_share": float(bars["neg_share"].to_numpy(float) @ weights / count)}


def gauges(frames: dict, through, timeframe: str, window: int) -> pd.DataFrame:
    """Each coin's :func:`weighted` sentiment over the ``window`` bars ending with the one starting at ``through``."""
    rows = {}
    for coin, frame in frames.items():
        if through is None:
            rows[coin] = weighted(frame.iloc[:0])
            continue
        since = through - bar_length(timeframe) * (window - 1)
        rows[coin] = weighted(frame[(frame.index >= since) & (frame.index <= through)])
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "count", "pos_share", "neg_share"])
    return table.astype({"count": np.int64}).rename_axis("coin")


def forward_sample(series: pd.DataFrame, price: pd.DataFrame, coin: str, symbol: str) -> tuple:
    """The coin's sentiment and its price's log returns on the closed price bars.

    A bar's return is the log change of the close from the previous bar, and its sentiment
    the mean compound of the items published during it; a bar without a mention counts as
    neutral (0). Returns ``(sentiment, returns, bars with a mention)``.
    """
    closes = price.loc[price["closed"].to_numpy(bool), "close"]
    returns = risk.log_returns(closes).iloc[1:].rename(f"{symbol} returns")
    counts = series["count"].reindex(returns.index).fillna(0)
    sentiment = series["mean"].reindex(returns.index).where(counts > 0, 0.0).rename(f"{coin} sentiment")
    return sentiment, returns, int((counts > 0).sum())


def forward_table(leadlag: risk.LeadLagResult) -> pd.DataFrame:
    """Correlation of sentiment with the return k bars later and its band of chance, k = 1 .. max lag."""
    lags = leadlag.xcorr.index[leadlag.xcorr.index > 0]
    return pd.DataFrame({"corr": leadlag.xcorr[lags], "band": leadlag.xcorr_band()[lags]})


def forward_words(leadlag: risk.LeadLagResult, forward: pd.DataFrame, timeframe: str, mentioned: int) -> str:
    """Sentiment vs forward returns in plain words: who leads whom, and the strongest forward correlation."""
    sentiment, returns = leadlag.names
    leader = leadlag.leader()
    if leader == sentiment:
        verdict = f"Sentiment leads the price: {sentiment} helps predict the {returns}."
    elif leader == returns:
        verdict = f"The price leads sentiment: the news follows the moves ({returns} help predict {sentiment})."
    else:
        verdict = f"No evidence that {sentiment} predicts the {returns}, or follows them, within {MAX_LAG} bars."
    k = int(forward["corr"].abs().idxmax())
    r, band = forward.at[k, "corr"], forward.at[k, "band"]
    inside = "inside" if abs(r) <= band else "outside"
    strongest = (f"The strongest correlation of sentiment with a later return is {r:+.2f}, {k} {timeframe} "
                 f"bar{'s' if k != 1 else ''} ahead: {inside} the ±{band:.2f} band of chance.")
    detail = leadlag.words()
    return (f"{verdict} {strongest} Over {leadlag.nobs:,} {timeframe} bars, {mentioned:,} with news: "
            f"{detail[0].upper()}{detail[1:]}.")


def forward_shortage(coin: str, have: int, need: int, timeframe: str, what: str) -> str:
    """One line: how many bars the sentiment vs returns comparison has and needs, and how long to wait."""
    wait = duration(bar_length(timeframe) * (need - have))
    other = "" if timeframe == "1h" else " (or choose 1h if the store holds a day of news or more)"
    return f"Sentiment vs forward returns of {coin}: {have:,} {what}, {need:,} needed. Wait about {wait}{other}."


def _forward(spec: SentimentSpec, series: pd.DataFrame, price: pd.DataFrame, notes: dict) -> dict:
    if not spec.symbol:
        notes["forward"] = f"Sentiment vs forward returns of {spec.coin}: no market of {spec.coin} on {spec.exchange}."
        return {}
    sentiment, returns, mentioned = forward_sample(series, price, spec.coin, spec.symbol)
    if len(returns) < NEEDED:
        notes["forward"] = forward_shortage(spec.coin, len(returns), NEEDED, spec.timeframe,
                                            f"closed {spec.timeframe} price returns")
        return {}
    if mentioned < MIN_NEWS_BARS:
        notes["forward"] = forward_shortage(spec.coin, mentioned, MIN_NEWS_BARS, spec.timeframe,
                                            f"{spec.timeframe} bars with news of {spec.coin}")
        return {}
    try:
        leadlag = risk.lead_lag(sentiment, returns, MAX_LAG)
    except ValueError as error:  # e.g. every bar neutral: nothing to correlate
        notes["forward"] = f"Sentiment vs forward returns of {spec.coin}: {one_line(error)}."
        return {}
    forward = forward_table(leadlag)
    return {"leadlag": leadlag, "forward": forward,
            "words": forward_words(leadlag, forward, spec.timeframe, mentioned)}


def compute(spec: SentimentSpec, frames: dict, price: pd.DataFrame) -> SentimentResult:
    """Every number of the Sentiment page.

    Parameters
    ----------
    spec : SentimentSpec
    frames : dict
        Sentiment bars of each coin of the spec (:data:`SERIES_FIELDS`, indexed by start),
        however much history: the samples are cut here.
    price : DataFrame
        Bars of the coin's market (``close``, ``closed``, indexed by start), the forming one included.
    """
    began = time.perf_counter()
    notes = {}
    ends = [frame.index[-1] for frame in frames.values() if len(frame)]
    through = max(ends) if ends else None
    table = gauges(frames, through, spec.timeframe, spec.window)
    if through is None:
        notes["gauges"] = f"No {spec.timeframe} sentiment yet: waiting for news that mentions {', '.join(spec.coins)}."
    newest = max([t for t in (through, price.index[-1] if len(price) else None) if t is not None], default=None)
    series, bars = frames[spec.coin].iloc[:0], price.iloc[:0]
    if newest is not None:
        since = newest - bar_length(spec.timeframe) * (spec.lookback - 1)
        series = frames[spec.coin].loc[since:newest]
        bars = price.loc[since:newest]
    series = series[series["count"] > 0]
    if not len(series):
        notes["series"] = f"No news of {spec.coin} in the last {spec.lookback:,} {spec.timeframe} bars yet."
    if spec.symbol and not len(bars):
        notes["price"] = f"No {spec.timeframe} bars of {spec.symbol} on {spec.exchange} yet."
    extra = _forward(spec, frames[spec.coin], bars, notes)
    return SentimentResult(spec=spec, through=through, gauges=table, series=series, price=bars[["close", "closed"]],
                           notes=notes, elapsed=time.perf_counter() - began, **extra)


# -- sharing ----------------------------------------------------------------------------------
class SentimentData(Shared):
    """The sentiment and price bars and the :class:`SentimentResult` of one spec on one ingest, shared.

    Get one with :meth:`of` and give it back with :meth:`release`. :meth:`update` (cheap,
    any session's timer) looks at the hub's sentiment and price keys at most every
    :data:`MIN_INTERVAL` seconds and, when any changed, starts a recomputation on the
    process's background worker, at most every :data:`PERIOD` seconds; :attr:`version` is
    bumped when its :attr:`result` is ready.

    Attributes
    ----------
    result : SentimentResult or None
    version, computes : int
    error : str
        The last computation's failure ("" if none).
    history : str
        Why stored sentiment or prices could not be read ("" if they could).
    """

    def __init__(self, ingest, spec: SentimentSpec):
        self.hub, self.spec = ingest.hub, spec
        store = getattr(ingest, "store", None)
        self.store, self.news_store = store, NewsStore(store) if store is not None else None
        self.lock = threading.Lock()
        keys = [("sentiment", coin, spec.timeframe) for coin in spec.coins]
        keys += [("bars", spec.exchange, spec.symbol, spec.timeframe)] if spec.symbol else []
        self._cursors = [self.hub.subscribe(key, self.hub.last_seq(key)) for key in keys]
        self._stored = {}  # coin -> (monotonic time read, frame)
        self._dirty, self._running = True, False
        self._polled = self._started = -np.inf
        self.result, self.version, self.computes, self.error, self.history = None, 0, 0, "", ""

    @classmethod
    def of(cls, ingest, spec: SentimentSpec) -> "SentimentData":
        """The process's shared object of ``spec`` on ``ingest``'s hub, one more user counted."""
        return cls.share((id(ingest.hub), spec), lambda: cls(ingest, spec))

    def update(self) -> None:
        """Note hub changes since the last poll; start a recomputation when one is due."""
        now = time.monotonic()
        with self.lock:
            if now - self._polled < MIN_INTERVAL:
                return
            self._polled = now
            for cursor in self._cursors:
                if cursor.lag:
                    cursor.read()
                    self._dirty = True
            if self._dirty and not self._running and now - self._started >= PERIOD:
                self._dirty, self._running, self._started = False, True, now
                _EXECUTOR.submit(self._compute)

    def _compute(self) -> None:
        """Merge stored and live bars and compute (on the worker thread); publish the result."""
        problems, spec = [], self.spec
        try:
            frames = {coin: merge_series(self._stored_series(coin, problems),
                                         live_series(self.hub.latest(("sentiment", coin, spec.timeframe))))
                      for coin in spec.coins}
            result, error = compute(spec, frames, self._price(problems)), ""
        except Exception as failure:  # shown on every page of this spec, and logged once
            result, error = None, one_line(failure)
            if error != self.error:
                LOG.exception("the sentiment computation of %s failed", spec)
        with self.lock:
            self._running = False
            self.error, self.history = error, " ".join(dict.fromkeys(problems))
            if result is not None:
                self.result = result
                self.computes += 1
            self.version += 1

    def _stored_series(self, coin: str, problems: list) -> pd.DataFrame:
        """The store's sentiment bars of ``coin``, read at most every :data:`MAX_AGE` seconds."""
        if self.news_store is None:
            return empty_series()
        now = time.monotonic()
        hit = self._stored.get(coin)
        if hit is not None and now - hit[0] < MAX_AGE:
            return hit[1]
        try:
            frame = self.news_store.read_sentiment(coin, self.spec.timeframe)[SERIES_FIELDS]
        except Exception as failure:  # the live bars go on without history
            problems.append(f"Stored sentiment unavailable: {one_line(failure)}")
            return empty_series()
        self._stored[coin] = (now, frame)
        return frame

    def _price(self, problems: list) -> pd.DataFrame:
        """Stored bars of the coin's market with the hub's on top (none without a market)."""
        spec = self.spec
        if not spec.symbol:
            return empty_bars()
        try:
            stored = read_history(self.store, spec.exchange, spec.symbol, spec.timeframe, spec.lookback)
        except Exception as failure:  # the live bars go on without history
            stored = empty_bars()
            problems.append(f"Price history unavailable: {one_line(failure)}")
        return merge_bars(stored, hub_bars(self.hub.latest(("bars", spec.exchange, spec.symbol, spec.timeframe))))


def merge_series(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Sentiment bars with ``new`` on top: one row per start, sorted; ``new`` wins where both have a start."""
    if new.empty:
        return old
    if old.empty:
        return new
    if old.index[-1] < new.index[0]:
        return pd.concat([old, new])
    return pd.concat([old[~old.index.isin(new.index)], new]).sort_index(kind="stable")


# -- headlines ------------------------------------------------------------------------------------
def safe_link(url) -> str:
    """``url`` if it is an http(s) address, else "" (no ``javascript:`` or ``data:`` links)."""
    text = str(url or "").strip()
    return text if text.lower().startswith(("https://", "http://")) else ""


def headline_html(title, link, summary="") -> str:
    """A headline as escaped HTML: the title as text in a link to ``link`` (if http(s)); the whole title and the
    summary as its tooltip (a long title is cut in the table)."""
    title = str(title or "(no title)")
    tip = "\n\n".join(filter(None, [title, str(summary or "")]))
    tip = tip if len(tip) <= SUMMARY else tip[: SUMMARY - 1] + "…"
    text, tip = html.escape(title), f' title="{html.escape(tip)}"'
    url = safe_link(link)
    if not url:
        return f"<span{tip}>{text}</span>"
    return f'<a href="{html.escape(url)}" target="_blank" rel="noopener noreferrer"{tip}{LINK_STYLE}>{text}</a>'


def score_html(compound: float, label: str) -> str:
    """The compound score and its label, coloured by the label."""
    color = LABEL_COLORS.get(label, NEUTRAL)
    return f'<span style="color:{color}">{compound:+.2f} {html.escape(str(label))}</span>'


def display_columns(items: pd.DataFrame) -> pd.DataFrame:
    """What the headline table shows of scored items: every text escaped, the title a link."""
    published = pd.to_datetime(items["published"])
    return pd.DataFrame({
        "time": published.dt.strftime("%Y-%m-%d %H:%M:%S").fillna("").to_numpy(object),
        "source": [html.escape(str(s)) for s in items["source"]],
        "coins": [html.escape(str(c).replace(",", ", ")) for c in items["coins"]],
        "score": [score_html(c, label) for c, label in zip(items["compound"].to_numpy(float), items["label"])],
        "headline": [headline_html(t, link, s) for t, link, s in zip(items["title"], items["link"],
                                                                     items["summary"])],
    }, index=items.index)


class Headlines(Shared):
    """The newest scored news items of one ingest, with their display columns, shared by its sessions.

    Get one with :meth:`of`, give it back with :meth:`release`. The first :meth:`update`
    reads the store's newest :data:`KEEP` items, then each one (at most every
    :data:`MIN_INTERVAL` seconds) the hub's new ones; an item is held once (by source and
    id). Rows are numbered in arrival order (column ``n``); :attr:`version` is the last number.

    Attributes
    ----------
    items : DataFrame
        The scored items (the hub's columns) and the display columns of
        :func:`display_columns`, prefixed ``show_``, oldest first.
    sources : list of str
        Sources seen, sorted.
    history : str
        Why the stored items could not be read ("" if they could).
    """

    def __init__(self, ingest, keep: int = KEEP):
        self.hub, self.keep = ingest.hub, keep
        store = getattr(ingest, "store", None)
        self.news_store = NewsStore(store) if store is not None else None
        self.lock = threading.Lock()
        self._cursor = self.hub.subscribe(("news",))
        self._cursors = [self._cursor]
        self._seen = set()
        self._polled, self._loaded = -np.inf, False
        self.items, self.version, self.sources, self.history = None, 0, [], ""

    @classmethod
    def of(cls, ingest) -> "Headlines":
        """The process's headlines of ``ingest``'s hub, one more user counted."""
        return cls.share(id(ingest.hub), lambda: cls(ingest))

    def update(self) -> bool:
        """Take the new items (the store's on the first call); True if any."""
        now = time.monotonic()
        with self.lock:
            if now - self._polled < MIN_INTERVAL:
                return False
            self._polled = now
            frames = []
            if not self._loaded:
                self._loaded = True
                frames.append(self._stored())
            if self._cursor.lag or self.items is None:
                frames.append(self._cursor.read())
            frames = [f for f in frames if len(f)]
            return self._add(pd.concat(frames, ignore_index=True)) if frames else False

    def _stored(self) -> pd.DataFrame:
        if self.news_store is None:
            return pd.DataFrame()
        try:
            return self.news_store.read_items(limit=self.keep).reset_index()
        except Exception as failure:  # the live items go on without the stored ones
            self.history = f"Stored headlines unavailable: {one_line(failure)}"
            return pd.DataFrame()

    def _add(self, rows: pd.DataFrame) -> bool:
        keys = list(zip(rows["source"].astype(str), rows["id"].astype(str)))
        fresh = []
        for i, key in enumerate(keys):
            if key not in self._seen:
                self._seen.add(key)
                fresh.append(i)
        if not fresh:
            return False
        rows = rows.iloc[fresh].reset_index(drop=True)
        shown = display_columns(rows).add_prefix("show_")
        rows = pd.concat([rows, shown], axis=1)
        rows.insert(0, "n", np.arange(self.version + 1, self.version + 1 + len(rows)))
        self.version += len(rows)
        items = rows if self.items is None else pd.concat([self.items, rows], ignore_index=True)
        if len(items) > self.keep:
            gone = items.iloc[: len(items) - self.keep]
            self._seen.difference_update(zip(gone["source"].astype(str), gone["id"].astype(str)))
            items = items.iloc[len(items) - self.keep:].reset_index(drop=True)
        self.items = items
        self.sources = sorted(set(self.sources) | set(rows["source"].astype(str)))
        return True

    def select(self, after: int = 0, coin: str = "", source: str = "", limit: int = KEEP) -> pd.DataFrame:
        """Items numbered above ``after`` about ``coin`` and from ``source`` ("": any), the newest ``limit``."""
        with self.lock:
            items = self.items
        if items is None:
            return pd.DataFrame()
        keep = items["n"].to_numpy() > after
        if coin:
            keep &= ("," + items["coins"].astype(str) + ",").str.contains(f",{coin},", regex=False).to_numpy()
        if source:
            keep &= (items["source"].astype(str) == source).to_numpy()
        return items[keep].iloc[-limit:]
