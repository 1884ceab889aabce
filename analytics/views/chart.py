"""The chart page: candles, volume, indicators and a navigator of one market, its trades tape and book, live.

History comes from the store (read once per key for all sessions, see
:mod:`analytics.views.history`), the live tail from the hub. Per tick a session reads only
the new hub rows and sends only those: closed bars are streamed with a rollover, the
forming candle is patched in place, and figures and axes are built once. Indicators
(:mod:`analytics.views.indicators`) are columns of the candles, updated incrementally
with the forming candle.
"""

import time

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.layouts import column
from bokeh.models import (ColumnDataSource, CustomJS, DataTable, DateFormatter, Div, HoverTool, NumberFormatter,
                          Range1d, RangeTool, StringFormatter, TableColumn)
from bokeh.plotting import figure

from analytics.indicators.catalog import CATALOG, spec_text
from analytics.schema import TIMEFRAMES
from analytics.storage.errors import one_line
from analytics.views.base import LiveView, in_server
from analytics.views.history import (DOWN, LIMIT, UP, bar_columns, empty_bars, hub_bars, live_columns, merge_bars,
                                     known_markets, overview_columns, read_history, timeframe_ms)
from analytics.views.indicators import DEFAULT, ChartIndicators

PRICE = "0,0.00[000000]"
TAPE_TEXT = "#3a3f44"  # the tape's rows are light in every theme (SlickGrid's own colours)

# Fits the price and volume axes to the candles in view, in the browser (Bokeh has no such range).
_AUTOSCALE = """
const d = source.data, x = d.x, lo = d.low, hi = d.high, v = d.volume;
let min = Infinity, max = -Infinity, top = 0;
for (let i = 0; i < x.length; i++) {
  if (x[i] < xr.start || x[i] > xr.end) continue;
  if (lo[i] < min) min = lo[i];
  if (hi[i] > max) max = hi[i];
  if (v[i] > top) top = v[i];
}
if (min <= max) {
  const pad = (max - min) * 0.05 || Math.abs(max) * 1e-4 || 1;
  if (yr.start != min - pad || yr.end != max + pad) yr.setv({start: min - pad, end: max + pad});
}
if (top > 0 && vr.end != top * 1.1) vr.setv({start: 0, end: top * 1.1});
"""

_BOOKS = {}


def depth_book(hub, key, levels: int = 10) -> dict:
    """The newest depth snapshot of ``key`` as cumulative ladders and a best bid/ask line.

    Computed once per snapshot for all sessions (cached on the key's last sequence
    number) from the newest ``4 * levels`` rows, ``levels`` being the book's depth per side.
    Returns ``{"levels": columns, "bid_area": ..., "ask_area": ..., "text": str, "id": int}``,
    ``id`` equal for equal books; empty columns if no book was published.
    """
    seq = hub.last_seq(key)
    hit = _BOOKS.get(key)
    if hit is not None and hit[0] == seq:
        return hit[1]
    _, rows = hub.read(key, since=max(0, seq - 4 * levels))
    book = _book(rows)
    _BOOKS[key] = (seq, book)
    return book


def _book(rows: pd.DataFrame) -> dict:
    side = rows["side"].to_numpy(object) if len(rows) else np.empty(0, object)
    price, size = (rows[c].to_numpy(float) if len(rows) else np.empty(0) for c in ("price", "size"))
    if len(rows):  # the trailing snapshot: rows with the newest times, the last per side and level
        times, receipts = rows["timestamp"].to_numpy(), rows["receipt_timestamp"].to_numpy()
        newest = (times == times[-1]) & (receipts == receipts[-1])
        first = 0 if newest.all() else len(newest) - int(np.argmin(newest[::-1]))
        slot = rows["level"].to_numpy()[first:] * 2 + (side[first:] == "ask")
        _, last = np.unique(slot[::-1], return_index=True)
        keep = first + len(slot) - 1 - last
        side, price, size = side[keep], price[keep], size[keep]
    bid, ask = side == "bid", side == "ask"
    order = np.argsort(price[bid])[::-1]  # from the best bid down
    bids = {"price": price[bid][order][::-1], "size": size[bid][order][::-1],
            "cum": np.cumsum(size[bid][order])[::-1]}
    order = np.argsort(price[ask])
    asks = {"price": price[ask][order], "size": size[ask][order], "cum": np.cumsum(size[ask][order])}
    text = ""
    if len(bids["price"]) and len(asks["price"]):
        best_bid, best_ask = bids["price"][-1], asks["price"][0]
        spread = best_ask - best_bid
        text = (f"Bid <b style='color:{UP}'>{best_bid:,.8g}</b> · Ask <b style='color:{DOWN}'>{best_ask:,.8g}</b>"
                f" · Spread {spread:,.6g} ({1e4 * spread / ((best_ask + best_bid) / 2):.2f} bp)")
    levels = {c: np.concatenate([bids[c], asks[c]]) for c in ("price", "size", "cum")}
    levels["color"] = np.array([UP] * len(bids["price"]) + [DOWN] * len(asks["price"]), dtype=object)
    return {"levels": levels, "bid_area": _steps(bids["price"], bids["cum"], before=True),
            "ask_area": _steps(asks["price"], asks["cum"], before=False), "text": text,
            "id": hash(levels["price"].tobytes() + levels["size"].tobytes())}


def _steps(price: np.ndarray, cum: np.ndarray, before: bool) -> dict:
    """The outline of a cumulative depth curve over ascending prices, as points for a ``varea``.

    Between two levels the size of the upper one holds for bids (``before``), of the lower
    one for asks. (Bokeh's ``varea_step`` would do, but hangs BokehJS 3.9 when its source is empty.)
    """
    if len(price) < 2:
        return {"x": price, "y": cum}
    x = np.column_stack([price[:-1], price[1:]]).ravel()
    if before:
        return {"x": np.concatenate([price[:1], x]), "y": np.concatenate([cum[:1], np.repeat(cum[1:], 2)])}
    return {"x": np.concatenate([x, price[-1:]]), "y": np.concatenate([np.repeat(cum[:-1], 2), cum[-1:]])}


def _ms(times) -> np.ndarray:
    return np.asarray(times, dtype="datetime64[ns]").astype(np.int64) / 1e6


def _choices(names) -> str:
    names = sorted(names)
    return ", ".join(names[:8]) + (f", … ({len(names)} in all)" if len(names) > 8 else "")


class CandleChart(LiveView):
    """Candlesticks and volume of one market with a navigator of its history, its trades and its book.

    Opens with the store's history merged with the hub's bars, then follows the live
    tail. Dragging the navigator (or panning the candles) into older history loads that
    window from the store; coming back to the newest bars resumes the live tail.

    Examples
    --------
    >>> CandleChart(ingest=ingest, symbol="ETH-USDT", timeframe="5m")  # doctest: +SKIP
    """

    exchange = param.String(default="BINANCE", doc="Exchange id, e.g. BINANCE.")

    symbol = param.String(default="BTC-USDT", doc="Normalized symbol, e.g. BTC-USDT.")

    timeframe = param.String(default="1m", doc=f"Bar length, one of {', '.join(TIMEFRAMES)}.")

    bars = param.Integer(default=1000, bounds=(10, None),
                         doc="Candles held by the chart: the newest (live), or a window of the history.")

    visible = param.Integer(default=120, bounds=(5, None), doc="Candles in view when a market opens.")

    overview = param.Integer(default=1500, bounds=(0, None),
                             doc="Points of the navigator line, min-max downsampled on the server (0: every bar).")

    history = param.Integer(default=LIMIT, bounds=(1, None), doc="Newest stored bars read (the navigator's span).")

    tape = param.Integer(default=20, bounds=(1, 200), doc="Trades in the tape, the newest last.")

    indicators = param.String(default=DEFAULT, doc="Indicators shown, e.g. 'ema 20, bollinger 20 2, rsi 14, macd' "
                                                   "(name and TA-Lib's parameters; see analytics.indicators.catalog).")

    def __init__(self, **params):
        super().__init__(**params)
        self._key = None
        self._bar_ms = timeframe_ms("1m")
        self._total = 0
        self._live = True
        self._view = None
        self._added = 0
        self._depth_seq = self._book = None
        self._note = ("", "info")
        self.param.watch(self._reload, ["exchange", "symbol", "timeframe", "bars", "visible", "overview", "history",
                                        "tape"])
        self.param.watch(self._change_indicators, "indicators")

    # -- building ---------------------------------------------------------------------
    def _layout(self):
        self._candles = ColumnDataSource(bar_columns(empty_bars()))
        self._line = ColumnDataSource({"x": np.empty(0), "close": np.empty(0)})
        self._trades = ColumnDataSource({"time": [], "side": [], "price": [], "amount": [], "color": []})
        self._levels = ColumnDataSource({"price": [], "size": [], "cum": [], "color": []})
        self._bid_area = ColumnDataSource({"x": [], "y": []})
        self._ask_area = ColumnDataSource({"x": [], "y": []})
        self._x_range, self._y_range, self._v_range = Range1d(0, 1), Range1d(0, 1), Range1d(0, 1)
        price = self._price_figure()
        self._figures = column(price, self._volume_figure(), self._navigator(), sizing_mode="stretch_width")
        self._indicators = ChartIndicators(self._candles, price, self._x_range)
        self._configure_indicators()
        autoscale = CustomJS(args={"source": self._candles, "xr": self._x_range, "yr": self._y_range,
                                   "vr": self._v_range}, code=_AUTOSCALE)
        self._x_range.js_on_change("start", autoscale)
        self._x_range.js_on_change("end", autoscale)
        for event in ("data", "streaming", "patching"):
            self._candles.js_on_change(event, autoscale)

        markets = known_markets(self.ingest)
        self._exchange_select = pn.widgets.Select(label="Exchange", width=130)
        self._symbol_select = pn.widgets.Select(label="Symbol", width=140)
        self._timeframe_buttons = pn.widgets.RadioButtonGroup(options=list(TIMEFRAMES), align="end", width=200)
        self._sync_widgets(markets)
        self._exchange_select.param.watch(lambda event: setattr(self, "exchange", event.new), "value")
        self._symbol_select.param.watch(lambda event: setattr(self, "symbol", event.new), "value")
        self._timeframe_buttons.param.watch(lambda event: setattr(self, "timeframe", event.new), "value")
        self._status = Div(name="status", css_classes=["tickscope-chart-status"])
        self._quote = Div(name="quote", css_classes=["tickscope-chart-quote"], width=330)
        self._load(markets)

        controls = pn.Row(self._exchange_select, self._symbol_select, self._timeframe_buttons,
                          pn.pane.Bokeh(self._status, margin=(32, 10, 5, 10)))
        figures = pn.pane.Bokeh(self._figures, sizing_mode="stretch_width")
        chart = pn.Column(controls, self._indicator_controls(), figures, sizing_mode="stretch_width")
        side = pn.Column("#### Book", pn.pane.Bokeh(self._quote), pn.pane.Bokeh(self._depth_figure()), "#### Trades",
                         pn.pane.Bokeh(self._tape_table()), width=340)
        return pn.Row(chart, side, sizing_mode="stretch_width")

    def _indicator_controls(self):
        self._spec_input = pn.widgets.TextInput(label="Indicators", value=self.indicators, sizing_mode="stretch_width",
                                                placeholder="e.g. ema 20, bollinger 20 2, rsi 14, macd 12 26 9")
        self._add_select = pn.widgets.Select(label="Add", options={"": ""} | {f"{n} · {e.title}": n
                                                                             for n, e in CATALOG.items()}, width=230)
        self._spec_input.param.watch(lambda event: setattr(self, "indicators", event.new), "value")
        self._add_select.param.watch(self._add_indicator, "value")
        return pn.Row(self._spec_input, self._add_select, sizing_mode="stretch_width")

    def _add_indicator(self, event) -> None:
        if event.new:
            specs = [*self._indicators.specs, ("", event.new, CATALOG[event.new].params)]
            self.indicators = spec_text(specs)
            self._add_select.value = ""

    def _configure_indicators(self) -> bool:
        """Show the indicators named by the ``indicators`` text; a bad text is said and the previous ones stay."""
        try:
            self._indicators.configure(self.indicators)
        except ValueError as error:
            self._note = (f"Indicators: {error}", "warning")
            self.message(*self._note)
            return False
        price, volume, navigator = self._figures.children[0], self._figures.children[1], self._figures.children[-1]
        figures = [volume, *self._indicators.panels]
        for fig in figures:  # the time axis under the lowest figure only
            fig.xaxis.visible = fig is figures[-1]
        self._figures.children = [price, *figures, navigator]
        return True

    def _price_figure(self):
        fig = figure(x_axis_type="datetime", x_range=self._x_range, y_range=self._y_range, height=380,
                     sizing_mode="stretch_width", tools="xpan,xwheel_zoom,reset,crosshair,save",
                     active_scroll="xwheel_zoom", active_drag="xpan", y_axis_location="right", name="candles",
                     css_classes=["tickscope-candles"], min_border_left=10, min_border_right=70)
        fig.segment("x", "high", "x", "low", color="color", source=self._candles)
        self._body = fig.vbar("x", self._bar_ms * 0.7, "open", "close", fill_color="color", line_color="color",
                              source=self._candles)
        fig.add_tools(HoverTool(renderers=[self._body], formatters={"@x": "datetime"}, tooltips=[
            ("time", "@x{%F %H:%M:%S}"), ("open", f"@open{{{PRICE}}}"), ("high", f"@high{{{PRICE}}}"),
            ("low", f"@low{{{PRICE}}}"), ("close", f"@close{{{PRICE}}}"), ("volume", "@volume{0,0.[0000]}"),
            ("vwap", f"@vwap{{{PRICE}}}"), ("trades", "@trades{0,0}")]))
        fig.xaxis.visible = False
        return fig

    def _volume_figure(self):
        fig = figure(x_axis_type="datetime", x_range=self._x_range, y_range=self._v_range, height=130,
                     sizing_mode="stretch_width", tools="xpan,xwheel_zoom", active_scroll="xwheel_zoom",
                     toolbar_location=None,
                     y_axis_location="right", name="volume", css_classes=["tickscope-volume"], min_border_left=10,
                     min_border_right=70)
        self._volume = fig.vbar("x", self._bar_ms * 0.7, "volume", fill_color="color", line_color="color",
                                fill_alpha=0.6, source=self._candles)
        fig.yaxis.axis_label = "volume"
        return fig

    def _navigator(self):
        fig = figure(x_axis_type="datetime", height=110, sizing_mode="stretch_width", tools="", toolbar_location=None,
                     y_axis_location="right", name="navigator", css_classes=["tickscope-navigator"],
                     min_border_left=10, min_border_right=70)
        fig.line("x", "close", source=self._line, color="#1f77b4")
        tool = RangeTool(x_range=self._x_range)
        tool.overlay.fill_alpha = 0.2
        fig.add_tools(tool)
        fig.ygrid.grid_line_color = None
        return fig

    def _depth_figure(self):
        fig = figure(height=220, width=330, tools="", toolbar_location=None, name="depth",
                     css_classes=["tickscope-depth"])
        fig.varea("x", 0, "y", source=self._bid_area, fill_color=UP, fill_alpha=0.3)
        fig.varea("x", 0, "y", source=self._ask_area, fill_color=DOWN, fill_alpha=0.3)
        levels = fig.scatter("price", "cum", source=self._levels, color="color", size=4)
        fig.add_tools(HoverTool(renderers=[levels], tooltips=[("price", f"@price{{{PRICE}}}"),
                                                            ("size", "@size{0,0.[0000]}"),
                                                            ("cumulative", "@cum{0,0.[0000]}")]))
        fig.xaxis.major_label_orientation = 0.6
        return fig

    def _tape_table(self):
        colored = StringFormatter(text_color="color")
        stamp = DateFormatter(format="%H:%M:%S.%3N", text_color=TAPE_TEXT)
        columns = [TableColumn(field="time", title="time", width=100, formatter=stamp),
                   TableColumn(field="side", title="side", width=45, formatter=colored),
                   TableColumn(field="price", title="price", formatter=NumberFormatter(format=PRICE,
                                                                                       text_color="color")),
                   TableColumn(field="amount", title="amount", formatter=NumberFormatter(format="0,0.[00000000]",
                                                                                         text_color=TAPE_TEXT))]
        return DataTable(source=self._trades, columns=columns, index_position=None, sortable=False, width=330,
                         height=26 * (self.tape + 1) + 4, row_height=25, name="tape", css_classes=["tickscope-tape"])

    # -- what is known ------------------------------------------------------------------
    def _sync_widgets(self, markets: dict) -> None:
        exchanges = sorted(set(markets) | {self.exchange})
        symbols = sorted(markets.get(self.exchange, set()) | {self.symbol})
        self._exchange_select.param.update(options=exchanges, value=self.exchange)
        self._symbol_select.param.update(options=symbols, value=self.symbol)
        self._timeframe_buttons.value = self.timeframe if self.timeframe in TIMEFRAMES else None

    def _problem(self, markets: dict) -> str:
        if self.timeframe not in TIMEFRAMES:
            return f"Unknown timeframe {self.timeframe!r}: choose {', '.join(TIMEFRAMES)}."
        if markets and self.exchange not in markets:
            return f"Unknown exchange {self.exchange!r}: choose {_choices(markets)}."
        if markets.get(self.exchange) and self.symbol not in markets[self.exchange]:
            return f"No market {self.symbol!r} on {self.exchange}: choose {_choices(markets[self.exchange])}."
        return ""

    # -- loading ----------------------------------------------------------------------
    def _reload(self, *events) -> None:
        if self._panel is None:
            return
        try:
            markets = known_markets(self.ingest)
            self._sync_widgets(markets)
            self._load(markets)
        except Exception as error:  # a bad choice must not take the page down: say it, go on
            self.message(f"Could not load {self.symbol} on {self.exchange}: {one_line(error)}", "danger")

    def _change_indicators(self, *events) -> None:
        if self._panel is None:
            return
        if in_server():  # new figures join the document: only under its lock, i.e. on the next tick
            pn.state.curdoc.add_next_tick_callback(self._apply_indicators)
        else:
            self._apply_indicators()

    def _apply_indicators(self) -> None:
        if self._spec_input.value != self.indicators:
            self._spec_input.value = self.indicators
        if not self._configure_indicators():
            return
        if self._note[0].startswith("Indicators:"):
            self._note = ("", "info")
            self.message()
        view = (self._x_range.start, self._x_range.end)
        if self._key is None:
            self._show(empty_bars(), live=True, view=view)
        elif self._live:
            self._show(self._merged().iloc[-self.bars:], live=True, view=view)
        else:
            self._show_window(*view)

    def _load(self, markets: dict) -> None:
        """Show the chosen market: history and hub bars, then fresh cursors on its streams."""
        self.unsubscribe()
        self._key, self._live, self._added, self._depth_seq = None, True, 0, None
        self._candles.data = bar_columns(empty_bars())
        self._trades.data = {name: np.empty(0, object if name in ("side", "color") else float)
                             for name in self._trades.data}
        self._levels.data = {"price": np.empty(0), "size": np.empty(0), "cum": np.empty(0),
                             "color": np.empty(0, object)}
        for source in (self._line, self._bid_area, self._ask_area):
            source.data = {name: np.empty(0) for name in source.data}
        self._quote.text, self._book = "", None
        problem = self._problem(markets)
        if problem:
            self.message(problem)
            self._status.text = self._label()
            self._show(empty_bars(), live=True)
            return
        self._key = ("bars", self.exchange, self.symbol, self.timeframe)
        self._bar_ms = timeframe_ms(self.timeframe)
        self._body.glyph.width = self._volume.glyph.width = self._bar_ms * 0.7
        self._indicators.set_bar_width(self._bar_ms)
        hub, note = self.ingest.hub, ""
        if self.ingest.store is None:
            note = "No store: live bars only, no history."
        try:
            stored = read_history(self.ingest.store, self.exchange, self.symbol, self.timeframe, self.history)
        except Exception as error:  # the live tail goes on without history
            stored = read_history(None, self.exchange, self.symbol, self.timeframe)
            note = f"History unavailable: {one_line(error)}"
        seq = hub.last_seq(self._key)
        bars = merge_bars(stored, hub_bars(hub.latest(self._key)))
        self._bar_cursor = self.subscribe(self._key, since=seq)
        trades_key = ("trades", self.exchange, self.symbol)
        self._trade_cursor = self.subscribe(trades_key, since=max(0, hub.last_seq(trades_key) - self.tape))
        self._total = len(bars)
        if bars.empty:
            note = f"No {self.timeframe} bars of {self.symbol} on {self.exchange} yet: waiting for trades."
        elif stored.empty and not note:
            note = f"No stored {self.timeframe} history of {self.symbol} on {self.exchange}: live bars only."
        if not self._note[0].startswith("Indicators:"):
            self._note = (note, "warning" if note.startswith("History") else "info")
        self.message(*self._note)
        self._line.data = overview_columns(bars, self.overview)
        self._show(bars.iloc[-self.bars:], live=True)
        self._status.text = self._label()

    def _label(self) -> str:
        """The status line: what is shown and how many bars it has (a page test can wait on it)."""
        count = "no data" if self._key is None else f"{self._total:,} bar{'s' if self._total != 1 else ''}"
        return f"{self.symbol} · {self.exchange} · {self.timeframe} · {count}"

    def _show(self, bars: pd.DataFrame, live: bool, view=None) -> None:
        """Put ``bars`` in the candles, in view the newest ``visible`` of them, or ``view`` (ms)."""
        columns = bar_columns(bars)
        columns.update(self._indicators.history(bars))
        self._candles.data = columns
        self._live = live
        x = columns["x"]
        if view is None:
            end = x[-1] if len(x) else time.time() * 1e3
            view = (end - self._bar_ms * (self.visible - 0.5), end + self._bar_ms * 3)
        self._x_range.update(start=view[0], end=view[1])
        self._view = view
        seen = (x >= view[0]) & (x <= view[1])
        if seen.any():
            low, high = columns["low"][seen].min(), columns["high"][seen].max()
            pad = (high - low) * 0.05 or abs(high) * 1e-4 or 1
            self._y_range.update(start=low - pad, end=high + pad)
            self._v_range.update(start=0, end=float(columns["volume"][seen].max()) * 1.1 or 1)

    # -- updating ---------------------------------------------------------------------
    def refresh(self) -> None:
        if self._key is None:
            return
        self._update_bars()
        self._navigate()
        self._update_trades()
        self._update_depth()

    def _update_bars(self) -> None:
        if not self._bar_cursor.lag:
            return
        rows = self._bar_cursor.read()
        if rows.empty:
            return
        if self._total == 0:
            self._note = ("", "info")
            self.message()
        columns = live_columns(rows)
        self._extend_line(columns["x"], columns["close"])
        if not self._live:
            return
        values = self._indicators.live(rows, columns["x"])
        if values is None:  # a closed bar was corrected: recompute the window's indicators
            self._show(self._merged().iloc[-self.bars:], live=True, view=(self._x_range.start, self._x_range.end))
            return
        columns.update(values)
        x = self._candles.data["x"]
        last = x[-1] if len(x) else -np.inf
        new = columns["x"] > last
        old = columns["x"][~new]
        at = np.searchsorted(x, old)
        found = at < len(x)
        found[found] = x[at[found]] == old[found]
        if found.any():
            rows_at, indexes = np.flatnonzero(~new)[found], at[found]
            self._candles.patch({c: [(int(i), columns[c][r]) for i, r in zip(indexes, rows_at)]
                                 for c in columns if c != "x"})
        if new.any():
            following = not len(x) or self._x_range.end >= last
            self._candles.stream({c: v[new] for c, v in columns.items()}, rollover=self.bars)
            if following and len(x):
                shift = columns["x"][new][-1] - last
                self._x_range.update(start=self._x_range.start + shift, end=self._x_range.end + shift)
                self._view = (self._x_range.start, self._x_range.end)

    def _extend_line(self, x: np.ndarray, close: np.ndarray) -> None:
        """Append new bars' closes to the navigator; re-downsample it once many were added."""
        line = self._line.data["x"]
        last = line[-1] if len(line) else -np.inf
        if len(line) and (x == last).any():
            self._line.patch({"close": [(len(line) - 1, close[x == last][-1])]})
        new = x > last
        if new.any():
            self._line.stream({"x": x[new], "close": close[new]})
            self._added += int(new.sum())
            self._total += int(new.sum())
            self._status.text = self._label()
        if self.overview and self._added > max(200, self.overview // 3):
            self._added = 0
            self._line.data = overview_columns(self._merged(), self.overview)

    def _merged(self) -> pd.DataFrame:
        stored = read_history(self.ingest.store, self.exchange, self.symbol, self.timeframe, self.history)
        return merge_bars(stored, hub_bars(self.ingest.hub.latest(self._key)))

    def _navigate(self) -> None:
        """Load the window of history the user moved to, or go back to the live tail."""
        view = (self._x_range.start, self._x_range.end)
        x, line = self._candles.data["x"], self._line.data["x"]
        if view == self._view or not len(line):
            return
        self._view = view
        start, end = view
        newest, oldest, bar = line[-1], line[0], self._bar_ms
        if end >= newest - bar:  # the live edge is in view: the newest candles, live
            if not self._live:
                self._show(self._merged().iloc[-self.bars:], live=True, view=view)
        elif not len(x) or (start < x[0] - bar and oldest < x[0]) or end > x[-1] + bar:
            self._show_window(start, end)
        x = self._candles.data["x"]
        hidden = len(x) and ((start < x[0] - bar and oldest < x[0]) or (end > x[-1] + bar and newest > x[-1]))
        self.message(*((f"The chart holds {self.bars:,} candles: zoom in to see all of this range.", "info")
                       if hidden else self._note))

    def _show_window(self, start: float, end: float) -> None:
        """Show the bars around ``start``..``end`` (ms), at most ``bars`` of them around its middle."""
        bars = self._merged()
        times = _ms(bars.index)
        span = end - start
        first, last = np.searchsorted(times, [start - span / 2, end + span / 2])
        if last - first > self.bars:
            middle = np.searchsorted(times, (start + end) / 2)
            first = max(0, min(middle - self.bars // 2, len(times) - self.bars))
            last = first + self.bars
        self._show(bars.iloc[first:last], live=False, view=(start, end))

    def _update_trades(self) -> None:
        if not self._trade_cursor.lag:
            return
        rows = self._trade_cursor.read().iloc[-self.tape:]
        if rows.empty:
            return
        side = rows["side"].to_numpy(object)
        self._trades.stream({"time": _ms(rows["timestamp"]), "side": side, "price": rows["price"].to_numpy(float),
                             "amount": rows["amount"].to_numpy(float),
                             "color": np.where(side == "buy", UP, DOWN).astype(object)}, rollover=self.tape)
        self.shown(rows["receipt_timestamp"].to_numpy())

    def _update_depth(self) -> None:
        key = ("depth", self.exchange, self.symbol)
        seq = self.ingest.hub.last_seq(key)
        if seq == self._depth_seq:
            return
        self._depth_seq = seq
        book = depth_book(self.ingest.hub, key, getattr(self.ingest, "depth", 10))
        if self._book is not None and book["id"] == self._book["id"]:
            return
        self._book = book
        self._levels.data = book["levels"]
        self._bid_area.data, self._ask_area.data = book["bid_area"], book["ask_area"]
        if self._quote.text != book["text"]:
            self._quote.text = book["text"]
