"""One coin on every exchange that has it: prices overlaid, cross-exchange spread, basis, arbitrage.

Prices are the closes of the hub's 1 s bars, carried forward on a common 1 s clock, so
every exchange has a price at every second once it has traded. On that clock the
cross-exchange spread is ``(max - min) / mid`` with ``mid = (max + min) / 2``, and the
basis of an exchange is its price against a reference (the median of the exchanges, or
one exchange), both in basis points.

The hub reading and the alignment are done once per hub change for all sessions that
watch a coin (:class:`CrossFeed`); each session then streams only the rows that are new
to it and patches the few that changed (the forming second).
"""

import html
import threading
from collections import deque

import numpy as np
import panel as pn
import param
from bokeh.layouts import column as bokeh_column
from bokeh.models import ColumnDataSource, Div, HoverTool, InlineStyleSheet
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from analytics.feeds.sources import LIVE_EXCHANGES
from analytics.views.base import LiveView
from analytics.views.sharing import Shared

EXCHANGES = tuple(LIVE_EXCHANGES)
COLORS = dict(zip(EXCHANGES, Category10_10))
HISTORY = 3600  # seconds (rows) of aligned prices a CrossFeed keeps: the longest window
_SECOND = 10**9
_BOARD_CSS = """
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 2px 12px; text-align: right; }
th:first-child, td:first-child { text-align: left; font-weight: bold; }
th { border-bottom: 1px solid #ccc; }
p { margin: 6px 12px; }
"""


def spread_bp(prices: np.ndarray) -> np.ndarray:
    """Cross-exchange spread ``(max - min) / mid`` in bp per row; NaN where fewer than two prices.

    Parameters
    ----------
    prices : ndarray, shape (rows, exchanges)
        Prices on a common clock, NaN where an exchange has none.
    """
    valid = ~np.isnan(prices)
    high = np.where(valid, prices, -np.inf).max(axis=1, initial=-np.inf)
    low = np.where(valid, prices, np.inf).min(axis=1, initial=np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = (high - low) / ((high + low) / 2) * 1e4
    return np.where(valid.sum(axis=1) >= 2, spread, np.nan)


def basis_bp(prices: np.ndarray, reference: int | None = None) -> np.ndarray:
    """Each column's price against a reference price, in bp; NaN where fewer than two prices.

    Parameters
    ----------
    prices : ndarray, shape (rows, exchanges)
        Prices on a common clock, NaN where an exchange has none.
    reference : int, optional
        The column to compare with; None: the median of the row's prices.
    """
    valid = ~np.isnan(prices)
    count = valid.sum(axis=1)
    if reference is None:
        ordered = np.sort(prices, axis=1)  # NaN sort last
        rows, half = np.arange(len(prices)), count // 2
        upper = ordered[rows, np.minimum(half, prices.shape[1] - 1)]
        lower = ordered[rows, np.maximum(half - 1, 0)]
        ref = np.where(count % 2 == 1, upper, (lower + upper) / 2)
    else:
        ref = prices[:, reference]
    with np.errstate(invalid="ignore", divide="ignore"):
        basis = (prices - ref[:, None]) / ref[:, None] * 1e4
    return np.where((count >= 2)[:, None], basis, np.nan)


def arbitrage(exchanges, bids, asks) -> str:
    """Where a cross-exchange arbitrage is (a bid on one exchange above an ask on another), in plain words.

    Parameters
    ----------
    exchanges : sequence of str
        Exchange names.
    bids, asks : sequence of float
        Each exchange's best bid and ask (NaN: no quote yet; such exchanges are left out).
    """
    bids, asks = np.asarray(bids, np.float64), np.asarray(asks, np.float64)
    quoted = ~(np.isnan(bids) | np.isnan(asks))
    if quoted.sum() < 2:
        return "Waiting for quotes from at least two exchanges."
    names, bids, asks = [n for n, q in zip(exchanges, quoted) if q], bids[quoted], asks[quoted]
    edge = bids[:, None] - asks[None, :]  # selling at row i's bid, buying at column j's ask
    np.fill_diagonal(edge, -np.inf)
    sell, buy = np.unravel_index(np.argmax(edge), edge.shape)
    bid, ask = bids[sell], asks[buy]
    gap = abs(bid - ask) / ((bid + ask) / 2) * 1e4
    if bid > ask:
        return (f"Arbitrage: buy on {names[buy]} at {ask:,.2f}, sell on {names[sell]} at {bid:,.2f}: "
                f"+{gap:.1f} bp before fees.")
    return (f"No arbitrage: the best bid ({names[sell]} {bid:,.2f}) is {gap:.1f} bp below the best ask "
            f"elsewhere ({names[buy]} {ask:,.2f}).")


def _ffill(values: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Carry each column's last value forward over NaN, starting from ``seed`` (a row)."""
    stacked = np.vstack([seed[None, :], values])
    index = np.where(np.isnan(stacked), 0, np.arange(len(stacked))[:, None])
    np.maximum.accumulate(index, axis=0, out=index)
    return stacked[index, np.arange(stacked.shape[1])][1:]


def _first(mask: np.ndarray, default: int) -> int:
    """Index of the first True in ``mask``, or ``default``."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else default


class CrossFeed(Shared):
    """1 s closes of one coin on every exchange, aligned, shared by the views of a process.

    Get one with :meth:`acquire` and give it back with :meth:`release`: the first
    acquirer opens the hub cursors, the last release closes them. :meth:`update` reads
    the hub at most once per change of it, whoever calls it.

    Attributes
    ----------
    times : ndarray of int64
        Bar starts (ns, UTC), one row per second that any exchange traded, sorted.
    prices : ndarray, shape (rows, exchanges)
        Closes carried forward (NaN before an exchange's first trade).
    changed : ndarray of int64
        The :attr:`version` in which each row last changed.
    epoch : int
        Bumped when a row is inserted before the newest one (views must reload).
    bid, ask, quoted : ndarray
        Newest best bid, ask and its receipt time (ns; 0: none yet) per exchange, changed in
        :attr:`quote_version`.
    verdict : str
        :func:`arbitrage` of those quotes.
    """


    def __init__(self, hub, symbol: str, history: int = HISTORY):
        self.hub, self.symbol, self.history = hub, symbol, history
        self.lock = threading.Lock()
        self._bars = [hub.subscribe(("bars", ex, symbol, "1s")) for ex in EXCHANGES]
        self._trades = [hub.subscribe(key, hub.last_seq(key)) for key in (("trades", ex, symbol) for ex in EXCHANGES)]
        self._quotes = [hub.subscribe(key, max(0, hub.last_seq(key) - 1))
                        for key in (("quotes", ex, symbol) for ex in EXCHANGES)]
        self._cursors = self._bars + self._trades + self._quotes
        self.times = np.empty(0, np.int64)
        self.raw = np.empty((0, len(EXCHANGES)))
        self.prices = self.raw.copy()
        self.changed = np.empty(0, np.int64)
        self.version = self.epoch = self.quote_version = 0
        self.bid, self.ask = np.full(len(EXCHANGES), np.nan), np.full(len(EXCHANGES), np.nan)
        self.quoted = np.zeros(len(EXCHANGES), np.int64)
        self.verdict = arbitrage(EXCHANGES, self.bid, self.ask)
        self.receipts = deque(maxlen=256)  # (version, receipt times of the trades and quotes it read)

    @classmethod
    def acquire(cls, hub, symbol: str) -> "CrossFeed":
        """The process's feed of ``symbol`` on ``hub``, one more user counted."""
        return cls.share((id(hub), symbol), lambda: cls(hub, symbol))

    def update(self) -> bool:
        """Read what the hub has new for this coin (nothing if it has not changed); True if anything."""
        with self.lock:
            if not any(cursor.lag for cursor in self._cursors):
                return False
            self.version += 1
            receipts = []
            bars = [(col, cursor.read()) for col, cursor in enumerate(self._bars)]
            bars = [(col, frame) for col, frame in bars if len(frame)]
            if bars:
                self._upsert(np.concatenate([f["start"].to_numpy("datetime64[ns]").view(np.int64) for _, f in bars]),
                             np.concatenate([np.full(len(f), col) for col, f in bars]),
                             np.concatenate([f["close"].to_numpy(np.float64) for _, f in bars]))
            for cursor in self._trades:
                frame = cursor.read()
                if len(frame):
                    receipts.append(frame["receipt_timestamp"].to_numpy("datetime64[ns]"))
            for col, cursor in enumerate(self._quotes):
                frame = cursor.read()
                if len(frame):
                    received = frame["receipt_timestamp"].to_numpy("datetime64[ns]")[-1:]
                    self.bid[col], self.ask[col] = frame["bid"].iat[-1], frame["ask"].iat[-1]
                    self.quoted[col] = received.view(np.int64)[0]
                    self.quote_version = self.version
                    receipts.append(received)
            if self.quote_version == self.version:
                self.verdict = arbitrage(EXCHANGES, self.bid, self.ask)
            if receipts:
                self.receipts.append((self.version, np.concatenate(receipts)))
            return True

    def _upsert(self, starts, cols, closes) -> None:
        """Set closes by (start, exchange), the last of duplicates winning; carry forward again."""
        keys = (starts // _SECOND) * len(EXCHANGES) + cols
        _, last = np.unique(keys[::-1], return_index=True)
        keep = len(keys) - 1 - last
        starts, cols, closes = starts[keep], cols[keep], closes[keep]
        new = np.setdiff1d(starts, self.times)
        if len(new):
            if len(self.times) and new[0] < self.times[-1]:
                self.epoch += 1
            times = np.union1d(self.times, new)
            at = np.searchsorted(times, self.times)
            raw, prices = np.full((len(times), len(EXCHANGES)), np.nan), np.full((len(times), len(EXCHANGES)), np.nan)
            changed = np.full(len(times), self.version)
            raw[at], prices[at], changed[at] = self.raw, self.prices, self.changed
            self.times, self.raw, self.prices, self.changed = times, raw, prices, changed
        rows = np.searchsorted(self.times, starts)
        self.raw[rows, cols] = closes
        first = int(rows.min())
        seed = self.prices[first - 1] if first else np.full(len(EXCHANGES), np.nan)
        filled = _ffill(self.raw[first:], seed)
        differs = ~((filled == self.prices[first:]) | (np.isnan(filled) & np.isnan(self.prices[first:]))).all(axis=1)
        self.prices[first:] = filled
        self.changed[first:][differs] = self.version
        if len(self.times) > self.history:
            cut = len(self.times) - self.history
            self.times, self.raw, self.prices, self.changed = (a[cut:] for a in
                                                               (self.times, self.raw, self.prices, self.changed))


class CrossExchange(LiveView):
    """One coin across exchanges: prices, cross-exchange spread, basis and where arbitrage would be.

    Examples
    --------
    >>> CrossExchange(ingest=ingest, symbol="ETH-USDT", window=600)  # doctest: +SKIP
    """

    symbol = param.String(default="BTC-USDT", doc="The coin, as a normalized symbol (BTC-USDT).")

    window = param.Integer(default=900, bounds=(60, HISTORY), doc="Seconds of history shown, one point a second.")

    reference = param.Selector(default="median", objects=["median", *EXCHANGES],
                               doc="What the basis is measured against: the median of the exchanges, or one.")

    def __init__(self, **params):
        super().__init__(**params)
        self._feed = None
        self._version = self._epoch = self._quote_version = -1
        self._times = np.empty(0, np.int64)
        self._note = ("", "info")

    # -- layout ------------------------------------------------------------------------
    def _layout(self):
        self._source = ColumnDataSource(self._columns(np.empty(0, np.int64), np.empty((0, len(EXCHANGES)))))
        tools = "xpan,xwheel_zoom,box_zoom,reset,save"
        prices = figure(height=320, sizing_mode="stretch_width", x_axis_type="datetime", tools=tools,
                        title="Price (1 s close, last carried forward)", y_axis_label="price")
        self._lines = {ex: prices.line("time", ex, source=self._source, color=COLORS[ex], line_width=1.6,
                                       legend_label=ex) for ex in EXCHANGES}
        prices.add_tools(HoverTool(
            renderers=[self._lines[EXCHANGES[0]]], mode="vline", formatters={"@time": "datetime"},
            tooltips=[("time", "@time{%F %T}"), *((ex, f"@{{{ex}}}{{0,0.00}}") for ex in EXCHANGES),
                      ("spread", "@spread{0.0} bp")]))
        spread = figure(height=150, sizing_mode="stretch_width", x_axis_type="datetime", tools=tools,
                        x_range=prices.x_range, title="Cross-exchange spread: (max − min) / mid", y_axis_label="bp")
        spread.line("time", "spread", source=self._source, color="#e0a030", line_width=1.4)
        self._basis = figure(height=180, sizing_mode="stretch_width", x_axis_type="datetime", tools=tools,
                             x_range=prices.x_range, y_axis_label="bp")
        self._basis_lines = {ex: self._basis.line("time", f"basis_{ex}", source=self._source, color=COLORS[ex],
                                                  line_width=1.2, legend_label=ex) for ex in EXCHANGES}
        for fig in (prices, self._basis):
            fig.legend.location, fig.legend.orientation, fig.legend.click_policy = "top_left", "horizontal", "hide"
            fig.legend.background_fill_alpha = 0.6
        self._quotes = self._quote_columns([])
        self._board = Div(text="", sizing_mode="stretch_width", stylesheets=[InlineStyleSheet(css=_BOARD_CSS)])
        self._selector = pn.widgets.Select(label="Coin", value=self.symbol, options=[self.symbol], width=160)
        self._selector.param.watch(lambda event: setattr(self, "symbol", event.new), "value")
        self._title_basis()
        return pn.Column(
            pn.Row(self._selector, pn.widgets.Select.from_param(self.param.reference, label="Basis against",
                                                                width=160)),
            pn.pane.Bokeh(bokeh_column(prices, spread, self._basis, sizing_mode="stretch_width"),
                          sizing_mode="stretch_width"),
            "#### Best bid and ask",
            pn.pane.Bokeh(self._board, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")

    def _title_basis(self) -> None:
        self._basis.title.text = f"Basis against {'the median' if self.reference == 'median' else self.reference}"

    def _columns(self, times: np.ndarray, prices: np.ndarray) -> dict:
        """Price CDS columns for aligned rows: time (ms), each exchange's price, spread and basis (bp)."""
        reference = None if self.reference == "median" else EXCHANGES.index(self.reference)
        basis = basis_bp(prices, reference)
        return {"time": times / 1e6, **{ex: prices[:, i] for i, ex in enumerate(EXCHANGES)},
                "spread": spread_bp(prices), **{f"basis_{ex}": basis[:, i] for i, ex in enumerate(EXCHANGES)}}

    @staticmethod
    def _quote_columns(rows, bid=(), ask=(), quoted=()) -> dict:
        """Quote table columns for the exchanges at ``rows`` (indices into EXCHANGES)."""
        bid, ask = np.asarray(bid, np.float64)[rows], np.asarray(ask, np.float64)[rows]
        times = np.asarray(quoted, np.int64)[rows].astype("datetime64[ns]")
        updated = [text[11:23] if stamp else "" for text, stamp in zip(np.datetime_as_string(times, "ms"),
                                                                      np.asarray(quoted, np.int64)[rows])]
        with np.errstate(invalid="ignore"):
            spread = (ask - bid) / ((ask + bid) / 2) * 1e4
        return {"exchange": [EXCHANGES[i] for i in rows], "bid": bid, "ask": ask, "spread": spread,
                "updated": updated}

    # -- data --------------------------------------------------------------------------
    def _exchanges(self) -> list:
        markets = getattr(self.ingest, "markets", None) or {}
        return [ex for ex in EXCHANGES if self.symbol in markets.get(ex, ())]

    @param.depends("symbol", "window", "reference", watch=True)
    def _reload(self) -> None:
        self.unsubscribe()
        if self._panel is not None:
            self._times = np.empty(0, np.int64)
            self._source.data = self._columns(self._times, np.empty((0, len(EXCHANGES))))
            self._quotes = self._quote_columns([])
            self._board.text = ""
            self._title_basis()
            self._tick()  # errors shown as one line, as on the timer

    def unsubscribe(self) -> None:
        """Release this view's hub cursors and its share of the coin's :class:`CrossFeed`."""
        super().unsubscribe()
        if self._feed is not None:
            self._feed.release()
            self._feed = None
        self._version = self._epoch = self._quote_version = -1

    def _open(self) -> bool:
        """Acquire the coin's feed if the coin is known; otherwise say why not. True when open."""
        markets = getattr(self.ingest, "markets", None) or {}
        if not markets:
            self.message("Waiting for the feed to start…", "info")
            return False
        symbols = sorted({s for listed in markets.values() for s in listed})
        if self._selector.options != symbols:
            self._selector.options = symbols
        exchanges = self._exchanges()
        if not exchanges:
            self.message(f"{self.symbol} is not traded here: choose one of {', '.join(symbols)}.", "warning")
            return False
        self._selector.value = self.symbol
        for ex in EXCHANGES:
            self._lines[ex].visible = self._basis_lines[ex].visible = ex in exchanges
        if self.reference != "median" and self.reference not in exchanges:
            self._note = (f"{self.reference} does not list {self.symbol}: no basis against it.", "warning")
        elif len(exchanges) == 1:
            self._note = (f"{self.symbol} is only on {exchanges[0]} here: nothing to compare it with.", "info")
        else:
            self._note = ("", "info")
        self._rows = [EXCHANGES.index(ex) for ex in exchanges]
        self._feed = CrossFeed.acquire(self.ingest.hub, self.symbol)
        return True

    def refresh(self) -> None:
        if self._feed is None and not self._open():
            return
        feed = self._feed
        feed.update()
        if feed.version == self._version:
            return
        with feed.lock:
            full = feed.epoch != self._epoch or not len(self._times)
            start = max(0, len(feed.times) - self.window) if full else _first(feed.changed > self._version,
                                                                                len(feed.times))
            times, prices = feed.times[start:].copy(), feed.prices[start:].copy()
            quotes = None
            if feed.quote_version > self._quote_version:
                quotes = self._quote_columns(self._rows, feed.bid, feed.ask, feed.quoted), feed.verdict
            receipts = [r for version, r in feed.receipts if version > self._version] if self._version >= 0 else []
            self._version, self._epoch, self._quote_version = feed.version, feed.epoch, feed.quote_version
        if quotes is not None:
            self._show_quotes(*quotes)
        if not len(times) and not len(self._times):
            self.message(f"Waiting for {self.symbol} trades from {', '.join(self._exchanges())}…", "info")
            return
        self.message(*self._note)
        self._send(times, prices, full)
        if receipts:
            self.shown(np.concatenate(receipts))

    def _send(self, times: np.ndarray, prices: np.ndarray, full: bool) -> None:
        """Patch the rows this session already has and stream the new ones; on a mismatch, reload next tick."""
        if full:
            self._source.data = self._columns(times, prices)
            self._times = times
            return
        keep = times >= self._times[0]
        times, prices = times[keep], prices[keep]
        old = times <= self._times[-1]
        at = np.searchsorted(self._times, times[old])
        if not np.array_equal(self._times[at], times[old]):
            self._epoch = -1
            return
        if old.any():
            patch = self._columns(times[old], prices[old])
            where = slice(int(at[0]), int(at[-1]) + 1)
            self._source.patch({name: [(where, values)] for name, values in patch.items() if name != "time"})
        if (~old).any():
            self._source.stream(self._columns(times[~old], prices[~old]), rollover=self.window)
            self._times = np.concatenate([self._times, times[~old]])[-self.window:]

    def _show_quotes(self, columns: dict, verdict: str) -> None:
        """Render the quotes as a small HTML table (a Div: Bokeh 3.9's DataTable does not redraw on updates)."""
        self._quotes = columns
        rows = "".join(
            f'<tr><td style="color:{COLORS[ex]}">{ex}</td>'
            + "".join(f"<td>{'–' if value != value else f'{value:,.2f}'}</td>" for value in (bid, ask, spread))
            + f"<td>{updated}</td></tr>"
            for ex, bid, ask, spread, updated in zip(*columns.values()))
        text = (f"<table><tr><th>Exchange</th><th>Bid</th><th>Ask</th><th>Spread (bp)</th><th>Received (UTC)</th>"
                f"</tr>{rows}</table><p>{html.escape(verdict)}</p>")
        if text != self._board.text:
            self._board.text = text
