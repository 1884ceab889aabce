"""The price board: one row per coin, last price, change and spread per exchange, live.

The board is computed from the hub once per hub state for every session of the process
(:func:`shared_board`, one :class:`BoardState` per hub): it re-reads only the keys whose
sequence number moved (newest trade, newest quote, the 1-minute bars) and formats the
cells once. Each :class:`PriceBoard` session then compares the cells with what it last
sent and patches only those that changed; a tick where the hub did not move costs a
version comparison.
"""

import html
import math
import threading
import time
import weakref
from itertools import islice
from urllib.parse import quote

import numpy as np
import pandas as pd
import panel as pn
import param

from analytics.feeds import DEFAULT_SYMBOLS
from analytics.views.base import LiveView

UP, DOWN = "#26a69a", "#ef5350"
WINDOW = 24 * 3600 * 10**9  # the change window (ns) when the history reaches back that far
MINUTE = 60 * 10**9
SPARK_POINTS = 60  # 1-minute closes in a sparkline
SPARK_WIDTH, SPARK_HEIGHT = 84, 24
WIDTHS = {"coin": 112, "chart": 100, "": 100, "_change": 96, "_spread": 76}  # px, by field (suffix): 1,028 in all
BARS_INTERVAL = 1.0  # seconds between reads of a market's bars (sparkline, change reference)
MIN_INTERVAL = 0.1  # seconds: a session ticking sooner after the last shared computation reuses it
MAX_DECIMALS = 8
WAITING = "waiting for market data…"
# Panel's Tabulator re-renders every row on each patch, so a click (press and release on one
# element) that straddles an update is lost: links follow a plain left press instead.
_PRESS = "if(event.button===0&&!(event.ctrlKey||event.metaKey||event.shiftKey||event.altKey))location.assign(this.href)"


def price_decimals(price: float) -> int:
    """Decimals a price needs (trailing zeros dropped, at most :data:`MAX_DECIMALS`)."""
    if not math.isfinite(price):
        return 0
    text = f"{price:.{MAX_DECIMALS}f}".rstrip("0")
    return len(text) - text.index(".") - 1


def sparkline(closes, width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT) -> str:
    """An inline SVG polyline of ``closes`` on whole pixels (so a tiny move changes nothing)."""
    values = [c for c in closes if math.isfinite(c)]
    if not values:
        return ""
    if len(values) == 1:
        values = values * 2
    lo, hi = min(values), max(values)
    step = (width - 2) / (len(values) - 1)
    ys = [round(1 + (height - 2) * (hi - c) / (hi - lo)) for c in values] if hi > lo else [height // 2] * len(values)
    points = " ".join(f"{round(1 + i * step)},{y}" for i, y in enumerate(ys))
    color = UP if values[-1] >= values[0] else DOWN
    return (f'<svg class="tickscope-spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/></svg>')


def change_cell(change: float) -> str:
    """A signed percentage, green up, red down, with an arrow for those who do not see colours."""
    if not math.isfinite(change):
        return ""
    text = f"{change * 100:+.2f}%"
    if text[1:] == "0.00%":
        return "0.00%"
    color, arrow = (UP, "▲") if change > 0 else (DOWN, "▼")
    return f'<span style="color:{color}">{arrow} {text}</span>'


def spread_text(bp: float) -> str:
    """A spread in basis points to two significant digits at least (BTC's is often below 0.01 bp)."""
    if not math.isfinite(bp):
        return ""
    return f"{bp:.{2 if bp >= 1 or bp == 0 else min(6, 1 - math.floor(math.log10(bp)))}f}"


def _width(field: str) -> int:
    suffix = next((s for s in ("_change", "_spread") if field.endswith(s)), "")
    return WIDTHS.get(field) or WIDTHS[suffix]


def _order(symbol: str):
    return (DEFAULT_SYMBOLS.index(symbol), symbol) if symbol in DEFAULT_SYMBOLS else (len(DEFAULT_SYMBOLS), symbol)


class _Market:
    """What the board knows of one (exchange, symbol): newest trade and quote, 1-minute bars."""

    __slots__ = ("trade_seq", "price", "time", "receipt", "quote_seq", "bid", "ask", "bars_seq", "bars", "first",
                 "spark")

    def __init__(self):
        self.trade_seq = self.quote_seq = self.bars_seq = 0
        self.price = self.bid = self.ask = float("nan")
        self.time = self.receipt = 0  # ns since the epoch
        self.bars = {}  # start (ns) -> (open, close), sorted by start
        self.first = None  # start (ns) of the oldest bar seen
        self.spark = (-1, "")  # (bars_seq, svg)

    def add_bars(self, starts, opens, closes, keep_from: int, replace: bool = True) -> None:
        """Upsert bars by start (``replace=False``: add only missing ones); drop those before ``keep_from`` (ns).

        The newest :data:`SPARK_POINTS` bars are always kept.
        """
        bars = self.bars
        newest = next(reversed(bars)) if bars else None
        ordered = True
        for start, o, c in zip(starts, opens, closes):
            if not replace and start in bars:
                continue
            ordered &= newest is None or start >= newest
            bars[start] = (o, c)
            newest = start if newest is None else max(newest, start)
        if not ordered:
            self.bars = bars = dict(sorted(bars.items()))
        if bars:
            oldest = next(iter(bars))
            self.first = oldest if self.first is None else min(self.first, oldest)
        while len(bars) > SPARK_POINTS and next(iter(bars)) < keep_from:
            del bars[next(iter(bars))]

    def reference(self, since: int) -> float:
        """The open of the first bar starting at or after ``since`` (ns)."""
        for start, (o, _) in self.bars.items():
            if start >= since:
                return o
        return float("nan")

    def sparkline(self) -> str:
        if self.spark[0] != self.bars_seq:
            closes = [c for _, c in islice(reversed(self.bars.values()), SPARK_POINTS)][::-1]
            self.spark = (self.bars_seq, sparkline(closes))
        return self.spark[1]


class BoardState:
    """The board of one hub, updated incrementally; shared by every session of an ingest.

    Parameters
    ----------
    hub : analytics.pipeline.Hub
        Where trades (``("trades", ex, sym)``), quotes and 1-minute bars are read.
    store : analytics.storage.TickStore, optional
        Where 1-minute bars older than the hub's are read once (in a thread), so the
        change is over 24 h as soon as the store holds a day.

    Attributes
    ----------
    version : int
        Grows by one whenever the board changed; sessions compare it with theirs.
    markets : dict
        ``{(exchange, symbol): market}``: the newest trade (``trade_seq``, ``price``,
        ``time`` and ``receipt`` in ns), quote (``bid``, ``ask``) and recent 1-minute bars
        the board was made of.
    frame : pandas.DataFrame
        The numbers (see :func:`board_frame`).
    symbols, exchanges : list of str
        Rows (coins in market order) and exchanges (sorted) of the board: those listed
        and those with data.
    has_data : bool
        Whether any market has a trade or a quote yet.
    cells : dict
        ``{symbol: tuple of str}`` aligned with :attr:`fields`: the formatted board.
    basis : str
        What the change column means: ``"24h"`` or ``"since HH:MM UTC"``.
    """

    def __init__(self, hub, store=None):
        self.hub, self.store = hub, store
        self.markets = {}
        self.version = 0
        self.computed = 0.0
        self._seqs, self._bars_read = {}, {}
        self.symbols, self.exchanges, self.fields, self.cells = [], [], [], {}
        self.basis, self.newest, self._shown = "", {}, {}
        self._decimals, self._listed = {}, frozenset()
        self._references = (None, {})
        self._history, self._stored = None, {}  # the thread reading stored bars, and what it read
        self._lock = threading.Lock()

    # -- reading the hub ------------------------------------------------------------
    def update(self, now_ns: int | None = None, max_age: float = 0.0, listed: dict | None = None) -> bool:
        """Re-read what moved in the hub; True if the board changed.

        Newest trades and quotes are read when their key's sequence number moved, bars at
        most every :data:`BARS_INTERVAL` seconds per key. ``max_age``: skip the update
        entirely if the last one is more recent (seconds). ``listed``: ``{exchange:
        [symbols]}`` the feed subscribed (the ingest's ``markets``), rows and columns of
        the board from the start, so it keeps its shape as their data arrives.
        """
        with self._lock:
            clock = time.monotonic()
            if max_age and clock - self.computed < max_age:
                return False
            self.computed = clock
            now_ns = time.time_ns() if now_ns is None else now_ns
            hub, read = self.hub, self._seqs
            keys = hub.keys("trades") + hub.keys("quotes") + [k for k in hub.keys("bars") if k[3] == "1m"]
            self._load_history(now_ns)
            listed = frozenset((e, s) for e, symbols in (listed or {}).items() for s in symbols)
            moved, self._listed = listed != self._listed, listed
            for key in keys:
                seq = hub.last_seq(key)
                due = key[0] != "bars" or clock - self._bars_read.get(key, -BARS_INTERVAL) >= BARS_INTERVAL
                if seq != read.get(key) and due:
                    read[key] = seq
                    self._read(key, now_ns)
                    moved = True
            window = self._window(now_ns)
            if not moved and window[0] == self._references[0] and self.version:
                return False
            self._build(*window)
            self.version += 1
            return True

    @property
    def has_data(self) -> bool:
        return bool(self._shown)

    @property
    def seqs(self) -> tuple:
        """``((key, sequence number), ...)`` of the hub rows the board reflects."""
        return tuple(sorted(self._seqs.items()))

    def _market(self, exchange: str, symbol: str) -> _Market:
        market = self.markets.get((exchange, symbol))
        if market is None:
            market = self.markets[(exchange, symbol)] = _Market()
        return market

    def _read(self, key, now_ns: int) -> None:
        kind, exchange, symbol = key[:3]
        market = self._market(exchange, symbol)
        if kind == "trades":
            row = self.hub.tail(key, 1)
            if len(row):
                market.trade_seq = int(row.index[-1])
                market.price = float(row["price"].to_numpy()[-1])
                market.time = int(row["timestamp"].to_numpy()[-1].astype(np.int64))
                market.receipt = int(row["receipt_timestamp"].to_numpy()[-1].astype(np.int64))
                self._note_decimals(symbol, market.price)
        elif kind == "quotes":
            row = self.hub.latest(key)
            if len(row):
                market.quote_seq = int(row.index[-1])
                market.bid, market.ask = float(row["bid"].to_numpy()[-1]), float(row["ask"].to_numpy()[-1])
                self._note_decimals(symbol, market.bid, market.ask)
        else:
            self._bars_read[key] = time.monotonic()
            market.bars_seq, rows = self.hub.read(key, market.bars_seq)
            if len(rows):
                opens = rows["open"].tolist()
                market.add_bars(rows["start"].to_numpy().astype(np.int64).tolist(), opens, rows["close"].tolist(),
                                now_ns - WINDOW - MINUTE)
                self._note_decimals(symbol, *opens[-2:])

    def _note_decimals(self, symbol: str, *prices: float) -> None:
        held = self._decimals.get(symbol, 0)
        self._decimals[symbol] = max(held, *(price_decimals(p) for p in prices))

    def _load_history(self, now_ns: int) -> None:
        """Start (once) reading stored 1-minute bars of the last 24 h; merge them once read."""
        if self.store is None:
            return
        if self._history is None:
            if self.hub.keys("trades"):
                keys = sorted({k[1:3] for k in self.hub.keys("trades")})
                self._history = threading.Thread(target=self._read_store, args=(keys, now_ns), daemon=True,
                                                 name="board-history")
                self._history.start()
        elif self._stored:
            stored, self._stored = self._stored, {}
            for (exchange, symbol), bars in stored.items():
                self._market(exchange, symbol).add_bars(*bars, now_ns - WINDOW - MINUTE, replace=False)

    def _read_store(self, keys, now_ns: int) -> None:
        """Read the stored bars of ``keys`` (on a thread); hub bars of the same minute win when merged."""
        found = {}
        for exchange, symbol in keys:
            try:
                bars = self.store.read_bars(exchange, symbol, "1m", start=pd.Timestamp(now_ns - WINDOW - MINUTE))
            except ValueError:  # nothing stored for this market
                continue
            if len(bars):
                found[(exchange, symbol)] = (bars.index.to_numpy().astype(np.int64).tolist(), bars["open"].tolist(),
                                             bars["close"].tolist())
        self._stored = found

    # -- the board ------------------------------------------------------------------
    def _window(self, now_ns: int) -> tuple:
        """(start of the change window, its label): 24 h ago to the minute, or the latest first bar if later."""
        firsts = [m.first for m in self.markets.values() if m.first is not None]
        if not firsts:
            return None, ""
        day = now_ns - WINDOW - (now_ns - WINDOW) % MINUTE
        if day >= max(firsts):
            return day, "24h"
        return max(firsts), f"since {pd.Timestamp(max(firsts)):%H:%M} UTC"

    def _build(self, since: int | None, basis: str) -> None:
        if since != self._references[0]:
            self._references = (since, {})
        references = self._references[1]
        shown = {}
        for key, m in self.markets.items():
            if m.trade_seq or m.quote_seq:
                reference = references.get(key, math.nan)
                if since is not None and not math.isfinite(reference):
                    reference = references[key] = m.reference(since)
                shown[key] = (m, reference)
        self.basis, self._shown = basis, shown
        self.symbols = sorted({s for _, s in shown} | {s for _, s in self._listed}, key=_order)
        self.exchanges = sorted({e for e, _ in shown} | {e for e, _ in self._listed})
        self.fields = ["chart"] + [f for e in self.exchanges for f in (e, f"{e}_change", f"{e}_spread")]
        self.cells, self.newest = {}, {}
        for symbol in self.symbols:
            decimals = self._decimals.get(symbol, 2)
            cells = [next((m.sparkline() for e in self.exchanges
                           if (m := self.markets.get((e, symbol))) is not None and m.bars), "")]
            newest = 0
            for exchange in self.exchanges:
                m, reference = shown.get((exchange, symbol), (None, math.nan))
                if m is None:
                    cells += ["", "", ""]
                    continue
                newest = max(newest, m.time)
                spread = 1e4 * (m.ask - m.bid) / ((m.bid + m.ask) / 2)
                cells += [f"{m.price:,.{decimals}f}" if math.isfinite(m.price) else "",
                          change_cell(m.price / reference - 1), spread_text(spread)]
            self.cells[symbol] = tuple(cells)
            self.newest[symbol] = newest

    @property
    def frame(self) -> pd.DataFrame:
        """The board's numbers (see :func:`board_frame`)."""
        rows = [(s, e, m.price, m.time if m.trade_seq else None, m.receipt if m.trade_seq else None, m.trade_seq,
                 m.bid, m.ask, m.quote_seq, reference) for (e, s), (m, reference) in self._shown.items()]
        columns = ["symbol", "exchange", "price", "timestamp", "receipt_timestamp", "trade_seq", "bid", "ask",
                   "quote_seq", "reference"]
        frame = pd.DataFrame.from_records(rows, columns=columns)
        frame = frame.astype({"price": float, "timestamp": "datetime64[ns]", "receipt_timestamp": "datetime64[ns]",
                              "trade_seq": np.int64, "bid": float, "ask": float, "quote_seq": np.int64,
                              "reference": float})
        frame["spread_bp"] = 1e4 * (frame["ask"] - frame["bid"]) / ((frame["ask"] + frame["bid"]) / 2)
        frame["change"] = frame["price"] / frame["reference"] - 1
        frame = frame.set_index(["symbol", "exchange"]).sort_index()
        since = self._references[0]
        frame.attrs.update(basis=self.basis, since=None if since is None else pd.Timestamp(since))
        return frame


def board_frame(hub, now=None) -> pd.DataFrame:
    """The board's numbers from a hub, one row per (symbol, exchange) with data.

    Columns: ``price``, ``timestamp``, ``receipt_timestamp`` and ``trade_seq`` (its hub
    sequence number, 0 if none) of the newest trade; ``bid``, ``ask`` and ``quote_seq`` of
    the newest quote and their ``spread_bp``;
    ``reference``, the open of the first 1-minute bar of the change window, and
    ``change`` (a fraction) against it. ``frame.attrs``: ``since``, the window's start
    (24 h before ``now`` to the minute, or the latest first bar of a market if that is
    later), and ``basis`` saying which (``"24h"`` or ``"since HH:MM UTC"``).

    Parameters
    ----------
    hub : analytics.pipeline.Hub
    now : optional
        When the window ends (anything :class:`pandas.Timestamp` takes; default now).
    """
    state = BoardState(hub)
    state.update(None if now is None else pd.Timestamp(now).value)
    return state.frame


_SHARED = weakref.WeakKeyDictionary()  # hub -> BoardState
_SHARED_LOCK = threading.Lock()


def shared_board(ingest, max_age: float | None = None) -> BoardState:
    """The process's :class:`BoardState` of ``ingest``'s hub, updated at most every ``max_age`` seconds.

    ``max_age`` defaults to :data:`MIN_INTERVAL`.
    """
    with _SHARED_LOCK:
        state = _SHARED.get(ingest.hub)
        if state is None:
            state = _SHARED[ingest.hub] = BoardState(ingest.hub, getattr(ingest, "store", None))
    state.update(max_age=MIN_INTERVAL if max_age is None else max_age, listed=getattr(ingest, "markets", None))
    return state


class PriceBoard(LiveView):
    """Every coin on every exchange: last price, change, bid/ask spread, a sparkline, a chart link.

    Examples
    --------
    >>> PriceBoard(ingest=live_ingest("simulator"), symbols=["BTC-USDT", "ETH-USDT"])  # doctest: +SKIP
    """

    symbols = param.List(default=None, item_type=str, allow_None=True,
                         doc="Coins shown (normalized, e.g. BTC-USDT); None: every coin of the feed.")

    chart_url = param.String(default="chart?symbol={symbol}", allow_None=True,
                             doc="Where a coin's link goes: a format string with {symbol}; None: no links.")

    def _layout(self):
        self._version, self._rows, self._fields, self._titles, self._sent, self._seen = None, None, None, None, {}, {}
        self._table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, sortable=False,
                                           selectable=False, sizing_mode="stretch_width", layout="fit_data_table")
        self._tick_line = pn.pane.HTML(self._tick_html(0, ""), margin=(0, 10))
        return pn.Column(pn.Row(pn.pane.Markdown("### Prices", margin=(0, 10)), self._tick_line),
                         self._table, sizing_mode="stretch_width")

    def refresh(self) -> None:
        state = shared_board(self.ingest)
        if state.version == self._version:
            return
        self._version = state.version
        rows = self._select(state)
        if not rows:
            if self._rows is not None:
                self._table.value = pd.DataFrame()
                self._rows = None
            return
        fields = ["coin", *state.fields]
        values = {s: state.cells[s] for s in rows}
        if rows != self._rows or fields != self._fields or self._titles != self._column_titles(state):
            self._set(state, rows, fields, values)
        else:
            self._patch(values)
        receipts = []
        for symbol in rows:
            for exchange in state.exchanges:
                m = state.markets.get((exchange, symbol))
                if m is not None and m.trade_seq and self._seen.get((exchange, symbol)) != m.trade_seq:
                    self._seen[(exchange, symbol)] = m.trade_seq
                    receipts.append(m.receipt)
        self.shown(np.array(receipts, dtype="datetime64[ns]"))
        self._tick_line.object = self._tick_html(max(state.newest[s] for s in rows), state.basis)

    @param.depends("symbols", "chart_url", watch=True)
    def _reselect(self) -> None:
        """Show other coins or links: rebuild the table at the next tick."""
        self._version = self._fields = None

    def _select(self, state) -> list:
        """The rows this session shows; a one-line message if there are none or some are unknown."""
        if not state.has_data:
            self.message(WAITING)
            return []
        if self.symbols is None:
            self.message("")
            return state.symbols
        unknown = [s for s in self.symbols if s not in state.symbols]
        rows = [s for s in state.symbols if s in self.symbols]
        if unknown:
            self.message(f"Unknown symbol {', '.join(unknown)}: the feed has {', '.join(state.symbols)}.")
        elif not rows:
            self.message(WAITING)
        else:
            self.message("")
        return rows

    def _link(self, symbol: str, text: str) -> str:
        if self.chart_url is None:
            return text
        try:
            url = self.chart_url.format(symbol=quote(symbol))
        except (KeyError, IndexError, ValueError):
            url = f"chart?symbol={quote(symbol)}"
        return (f'<a href="{html.escape(url)}" title="chart of {symbol}" style="color:inherit" '
                f'onmousedown="{_PRESS}">{text}</a>')

    def _cell(self, symbol: str, cells: tuple, j: int) -> str:
        """Table cell ``j`` (0: the sparkline) of a row: the sparkline is a link to the chart too."""
        return (self._link(symbol, cells[0]) if cells[0] else "") if j == 0 else cells[j]

    def _set(self, state, rows, fields, values) -> None:
        """Lay the table out again when coins, exchanges or the change's basis come or go (rare)."""
        frame = pd.DataFrame([[self._link(s, s)] + [self._cell(s, values[s], j) for j in range(len(fields) - 1)]
                              for s in rows], columns=fields)
        markup = {"type": "html"}
        self._table.param.update(
            value=frame, formatters={f: markup for f in fields if f in ("coin", "chart") or f.endswith("_change")},
            text_align={f: "right" for f in fields if f not in ("coin", "chart")},
            widths={f: _width(f) for f in fields}, titles=self._column_titles(state),
            groups={e: [e, f"{e}_change", f"{e}_spread"] for e in state.exchanges})
        self._rows, self._fields, self._titles, self._sent = rows, fields, self._column_titles(state), values

    def _patch(self, values) -> None:
        """Send only the cells that changed, as runs of adjacent rows per column."""
        runs = {}
        for position, symbol in enumerate(self._rows):
            old, new = self._sent[symbol], values[symbol]
            if old == new:
                continue
            for j, (a, b) in enumerate(zip(old, new)):
                if a == b:
                    continue
                column = runs.setdefault(j, [])
                if column and column[-1][1] == position:
                    column[-1][1] += 1
                else:
                    column.append([position, position + 1])
        self._sent = values
        if not runs:
            return
        patch = {}
        for j, column in runs.items():
            cells = [self._cell(s, values[s], j) for s in self._rows]
            patch[self._fields[j + 1]] = [(a, cells[a]) if b == a + 1 else (slice(a, b), cells[a:b]) for a, b in column]
        self._table.patch(patch, as_index=False)

    @staticmethod
    def _column_titles(state) -> dict:
        change = "Δ 24h" if state.basis == "24h" else "Δ start"
        titles = {"coin": "coin", "chart": "last hour"}
        for exchange in state.exchanges:
            titles.update({exchange: "last", f"{exchange}_change": change, f"{exchange}_spread": "spread"})
        return titles

    @staticmethod
    def _tick_html(exchange_ns: int, basis: str) -> str:
        """The line above the board; its element carries the newest trade's exchange time (epoch ms)."""
        if not exchange_ns:
            return '<span class="tickscope-last-tick" data-exchange-ms="0">no trade yet</span>'
        ms = exchange_ns // 10**6
        when = pd.Timestamp(exchange_ns).strftime("%H:%M:%S.%f")[:-3]
        window = "over 24 h" if basis == "24h" else f"{basis}, the start of the data"
        return (f'<span style="font-size:0.85em;opacity:0.8">Δ: change {window} · spreads in basis points · '
                f'<span class="tickscope-last-tick" data-exchange-ms="{ms}">last trade {when} UTC</span></span>')
