"""The Sentiment page: per-coin gauges, the coin's sentiment under its price, live headlines, sentiment vs returns.

The numbers come from :mod:`analytics.views.sentimentfeed`: one computation per change of
the hub's sentiment or price bars for all the sessions of a process that show the same
coins, coin, market and windows, on a background thread. The headlines are read once for
the process, their display columns (escaped: a title is text, never markup) made once; a
session streams only the headlines new to it, and sends only the rows of its series that
changed (the forming bar) or are new.
"""

import html

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.layouts import column as bokeh_column
from bokeh.models import ColumnDataSource, Div, FactorRange, HoverTool, InlineStyleSheet, Range1d, Span
from bokeh.plotting import figure

from analytics.feeds import DEFAULT_SYMBOLS
from analytics.sentiment import COINS
from analytics.views.base import LiveView, url_bar_counts
from analytics.views.history import DOWN, UP, known_markets, timeframe_ms
from analytics.views.sentimentfeed import (KEEP, MAX_LAG, NEUTRAL, TIMEFRAMES_SHOWN, Headlines, SentimentData,
                                           SentimentSpec, duration, bar_length)

COLUMNS = {"time": "Published UTC", "source": "Source", "coins": "Coins", "score": "Score", "headline": "Headline"}
QUOTES = ("USDT", "USD", "USDC", "EUR")  # the market a coin's price is read from, in this order of preference
_TEXT_CSS = ":host { font-size: 13px; } p { margin: 4px 8px; }"
_NOTE_CSS = ":host { opacity: 0.85; font-size: 13px; }"


def market_symbol(coin: str, symbols) -> str:
    """The market of ``coin`` among ``symbols`` (``BTC`` → ``BTC-USDT``, else ``BTC-USD``, ...), "" if none."""
    listed = set(symbols)
    for quote in QUOTES:
        if f"{coin}-{quote}" in listed:
            return f"{coin}-{quote}"
    return next((s for s in sorted(listed) if s.split("-")[0] == coin), "")


def _order(coin: str):
    """The feed's default coins first, in their order (BTC, ETH, ...), then the others by name."""
    bases = [s.split("-")[0] for s in DEFAULT_SYMBOLS]
    return (bases.index(coin), coin) if coin in bases else (len(bases), coin)


def news_counts(news) -> str:
    """`` · 1,234 news items scored, 2 errors (last: …)`` from a news feed's ``stats()`` ("" without them)."""
    stats = getattr(news, "stats", None)
    if stats is None:
        return ""
    total = stats()["total"]
    text = f" · {total['scored']:,} news item{'s' if total['scored'] != 1 else ''} scored"
    if total["errors"]:
        text += f", {total['errors']:,} errors (last: {total['last_error']})"
    return text


def gauge_columns(table: pd.DataFrame) -> dict:
    """The gauge bars of a :attr:`~analytics.views.sentimentfeed.SentimentResult.gauges` table, one per coin."""
    mean = table["mean"].to_numpy(float)
    labels = [f"{count:,} mention{'s' if count != 1 else ''} · {pos:.0%} positive · {neg:.0%} negative"
              if count else "no mention" for count, pos, neg in zip(table["count"], table["pos_share"],
                                                                      table["neg_share"])]
    return {"coin": list(table.index), "mean": np.nan_to_num(mean), "score": mean,
            "count": table["count"].to_numpy(np.int64), "pos": table["pos_share"].to_numpy(float),
            "neg": table["neg_share"].to_numpy(float), "label": labels,
            "color": np.where(np.isnan(mean), NEUTRAL, np.where(mean >= 0, UP, DOWN)).astype(object)}


def series_columns(series: pd.DataFrame, timeframe: str) -> dict:
    """The sentiment bars of the coin: ``x`` the bar's middle (epoch ms), mean compound, mentions, shares."""
    start = series.index.to_numpy("datetime64[ns]").astype(np.int64) / 1e6
    mean = series["mean"].to_numpy(float)
    return {"x": start + timeframe_ms(timeframe) / 2, "start": start, "mean": mean,
            "count": series["count"].to_numpy(np.int64), "pos": series["pos_share"].to_numpy(float),
            "neg": series["neg_share"].to_numpy(float), "color": np.where(mean >= 0, UP, DOWN).astype(object)}


def price_columns(price: pd.DataFrame, timeframe: str) -> dict:
    """The coin's closes at the end of their bars (epoch ms)."""
    start = price.index.to_numpy("datetime64[ns]").astype(np.int64) / 1e6
    return {"x": start + timeframe_ms(timeframe), "close": price["close"].to_numpy(float)}


def xcorr_columns(leadlag) -> dict:
    """Cross-correlation of sentiment with returns by lag, its band of chance and a colour per side."""
    if leadlag is None:
        return {"lag": [], "r": [], "band": [], "low": [], "color": []}
    lags = leadlag.xcorr.index.to_numpy()
    band = leadlag.xcorr_band().to_numpy()
    return {"lag": lags, "r": leadlag.xcorr.to_numpy(), "band": band, "low": -band,
            "color": np.where(lags > 0, "#1f77b4", np.where(lags < 0, "#ff7f0e", NEUTRAL)).astype(object)}


def _equal_rows(old: dict, new: dict, rows: slice) -> np.ndarray:
    """Per row of ``rows``: True where every column of ``old`` and ``new`` holds the same value (NaN = NaN)."""
    same = None
    for name, values in new.items():
        a, b = np.asarray(old[name])[rows], np.asarray(values)[rows]
        equal = (a == b) | ((a != a) & (b != b)) if a.dtype.kind == "f" else a == b
        same = equal if same is None else same & equal
    return same


def send_changes(source: ColumnDataSource, old: dict | None, new: dict, patch_max: int = 3) -> dict:
    """Send ``new`` columns to ``source``, which holds ``old``, as a change: patch the last few rows that differ,
    stream the new ones (dropping as many from the front); replace everything otherwise. Returns ``new``.

    Rows are matched by ``x`` (sorted): ``new`` must continue ``old`` from one of its rows on.
    """
    x_old = None if old is None else np.asarray(old["x"])
    x_new = np.asarray(new["x"])
    if x_old is None or not len(x_old) or not len(x_new) or set(old) != set(new):
        source.data = new
        return new
    first = int(np.searchsorted(x_old, x_new[0]))
    kept = len(x_old) - first  # old rows also in new
    if first >= len(x_old) or kept > len(x_new) or not np.array_equal(x_old[first:], x_new[:kept]):
        source.data = new
        return new
    added = len(x_new) - kept
    if first and not added:
        source.data = new
        return new
    same = _equal_rows({k: np.asarray(v)[first:] for k, v in old.items()}, new, slice(0, kept))
    changed = np.flatnonzero(~same)
    if len(changed) and changed[0] < kept - patch_max:
        source.data = new
        return new
    if len(changed):
        at = slice(first + int(changed[0]), len(x_old))
        rows = slice(int(changed[0]), kept)
        source.patch({name: [(at, np.asarray(values)[rows])] for name, values in new.items()})
    if added:
        source.stream({name: np.asarray(values)[kept:] for name, values in new.items()}, rollover=len(x_new))
    return new


def _code(name: str) -> str:
    """A coin's code from itself or a market symbol: ``"btc"`` and ``"BTC-USDT"`` are ``"BTC"``."""
    name = name.strip().upper()
    base = name.replace("/", "-").split("-")[0]
    return base if name not in COINS and base in COINS else name


class SentimentView(LiveView):
    """What the news says about each coin, next to its price, and whether it leads the price.

    Gauges of every coin (mean compound score over the last ``window`` bars, mentions,
    shares positive and negative), the coin's sentiment bars and mentions under its price,
    the live headlines (filtered by coin and source), and the lead-lag of sentiment and
    forward returns in plain words. The news source is named above it: simulated news is
    never taken for real.

    Examples
    --------
    >>> SentimentView(ingest=ingest, coin="ETH", timeframe="1h", source="coindesk")  # doctest: +SKIP
    """

    coins = param.List(default=None, item_type=str, allow_None=True,
                       doc="Coins of the gauges (codes, e.g. BTC); None: the coins the feed trades, on any exchange, "
                           "that the news tagger knows.")

    coin = param.String(default=None, allow_None=True, doc="The coin of the series under its price; None: the first.")

    exchange = param.String(default="BINANCE", doc="Exchange whose price of the coin is shown, e.g. BINANCE.")

    timeframe = param.Selector(default="5m", objects=list(TIMEFRAMES_SHOWN), doc="Length of the sentiment bars.")

    window = param.Integer(default=12, bounds=(1, 288),
                           doc="Bars of the gauges' window (12 five-minute bars: the last hour).")

    lookback = param.Integer(default=288, bounds=(30, 10_000),
                             doc="Bars of the series and of the sentiment vs returns sample (288 at 5m: a day).")

    about = param.String(default="", doc="Headlines that mention this coin only ('': every coin).")

    source = param.String(default="", doc="Headlines from this source only ('': every source).")

    headlines = param.Integer(default=50, bounds=(5, KEEP), doc="Headlines listed, the newest first.")

    def __init__(self, **params):
        super().__init__(**params)
        self._data = self._spec = self._news = None
        self._problems = []
        self._version, self._after, self._sent = -1, -1, {}
        self._syncing = False
        self.param.watch(self._reload, ["coins", "coin", "exchange", "timeframe", "window", "lookback"])
        self.param.watch(self._refilter, ["about", "source", "headlines"])

    # -- layout ------------------------------------------------------------------------------
    def _layout(self):
        self._banner = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width", margin=(0, 5))
        self._exchange_select = pn.widgets.Select(label="Price from", width=130)
        self._coin_select = pn.widgets.Select(label="Coin", width=110)
        self._about_select = pn.widgets.Select(label="Headlines about", width=140)
        self._source_select = pn.widgets.Select(label="from", width=180)
        self._watch_widgets()
        self._status = Div(text="", css_classes=["tickscope-sentiment-status"], sizing_mode="stretch_width")
        style = [InlineStyleSheet(css=_NOTE_CSS)]
        self._notes = {section: Div(text="", visible=False, css_classes=["tickscope-sentiment-note"],
                                    sizing_mode="stretch_width", stylesheets=style)
                       for section in ("gauges", "series", "price", "forward")}
        self._words = Div(text="", css_classes=["tickscope-sentiment-words"], sizing_mode="stretch_width",
                          stylesheets=[InlineStyleSheet(css=_TEXT_CSS)])
        self._table = pn.widgets.Tabulator(
            pd.DataFrame(columns=list(COLUMNS)), disabled=True, show_index=False, selectable=False,
            sorters=[{"field": "time", "dir": "desc"}], titles=COLUMNS, height=420, layout="fit_columns",
            widths={"time": 185, "source": 150, "coins": 100, "score": 130},
            formatters={name: {"type": "html"} for name in COLUMNS}, sizing_mode="stretch_width",
            css_classes=["tickscope-headlines"])

        def bokeh(*models, **kwargs):
            return [pn.pane.Bokeh(model, **kwargs) for model in models]

        controls = pn.Row(self._coin_select, self._exchange_select,
                          pn.widgets.RadioButtonGroup.from_param(self.param.timeframe, align="end", width=110),
                          pn.widgets.IntInput.from_param(self.param.window, label="Gauge window (bars)", width=140),
                          pn.widgets.IntInput.from_param(self.param.lookback, label="Lookback (bars)", width=120))
        return pn.Column(
            self._banner, controls, *bokeh(self._status),
            "### Sentiment by coin", *bokeh(self._notes["gauges"], self._gauge_figure(), sizing_mode="stretch_width"),
            "### The coin: price, sentiment and mentions",
            *bokeh(self._notes["price"], self._notes["series"], self._series_figures(),
                   sizing_mode="stretch_width"),
            "### Sentiment vs forward returns",
            *bokeh(self._notes["forward"], self._words, self._xcorr_figure(), sizing_mode="stretch_width"),
            "### Headlines", pn.Row(self._about_select, self._source_select), self._table,
            sizing_mode="stretch_width")

    def _gauge_figure(self):
        self._gauges = ColumnDataSource(gauge_columns(pd.DataFrame(columns=["mean", "count", "pos_share",
                                                                             "neg_share"])))
        fig = figure(height=120, sizing_mode="stretch_width", y_range=FactorRange(), x_range=Range1d(-1, 2.1),
                     tools="", toolbar_location=None, name="sentiment-gauges",
                     css_classes=["tickscope-sentiment-gauges"],
                     title="Mean compound score (−1 … +1) over the gauge window")
        bars = fig.hbar(y="coin", left=0, right="mean", height=0.7, source=self._gauges, color="color")
        fig.text(x=1.06, y="coin", text="label", source=self._gauges, text_baseline="middle", text_font_size="12px",
                 text_color="#aaaaaa")
        fig.add_layout(Span(location=0, dimension="height", line_color="#888888", line_width=1))
        fig.add_tools(HoverTool(renderers=[bars], tooltips=[("coin", "@coin"), ("score", "@score{+0.000}"),
                                                            ("mentions", "@count"), ("positive", "@pos{0%}"),
                                                            ("negative", "@neg{0%}")]))
        fig.xaxis.ticker = [-1, -0.5, 0, 0.5, 1]
        fig.ygrid.visible = False
        self._gauge_fig = fig
        return fig

    def _series_figures(self):
        self._price = ColumnDataSource(price_columns(pd.DataFrame({"close": []}, index=pd.DatetimeIndex([])), "5m"))
        self._series = ColumnDataSource(series_columns(pd.DataFrame(
            {c: [] for c in ("mean", "count", "pos_share", "neg_share")}, index=pd.DatetimeIndex([])), "5m"))
        tools = "xpan,xwheel_zoom,box_zoom,reset,save"
        price = figure(height=240, sizing_mode="stretch_width", x_axis_type="datetime", tools=tools,
                       name="sentiment-price", css_classes=["tickscope-sentiment-price"], y_axis_label="price")
        price.line("x", "close", source=self._price, color="#1f77b4", line_width=1.6)
        price.scatter("x", "close", source=self._price, color="#1f77b4", size=3)
        mood = figure(height=170, sizing_mode="stretch_width", x_axis_type="datetime", tools=tools,
                      x_range=price.x_range, y_range=Range1d(-1.05, 1.05), name="sentiment-series",
                      y_axis_label="compound", title="Mean compound score per bar")
        self._mood_bars = mood.vbar(x="x", top="mean", width=timeframe_ms("5m") * 0.8, source=self._series,
                                    color="color")
        mood.add_tools(HoverTool(renderers=[self._mood_bars], formatters={"@start": "datetime"}, tooltips=[
            ("bar", "@start{%F %H:%M}"), ("score", "@mean{+0.000}"), ("mentions", "@count"),
            ("positive", "@pos{0%}"), ("negative", "@neg{0%}")]))
        mood.add_layout(Span(location=0, dimension="width", line_color="#888888", line_width=1))
        count = figure(height=130, sizing_mode="stretch_width", x_axis_type="datetime", tools=tools,
                       x_range=price.x_range, name="sentiment-mentions", y_axis_label="mentions",
                       title="Mentions per bar")
        self._count_bars = count.vbar(x="x", top="count", width=timeframe_ms("5m") * 0.8, source=self._series,
                                      color="#8c8c8c")
        self._series_figs = (price, mood, count)
        return bokeh_column(price, mood, count, sizing_mode="stretch_width")

    def _xcorr_figure(self):
        self._xcorr = ColumnDataSource(xcorr_columns(None))
        fig = figure(height=200, sizing_mode="stretch_width", tools="save", toolbar_location=None,
                     name="sentiment-xcorr", x_axis_label="lag k (bars): k > 0 sentiment first, k < 0 returns first",
                     y_axis_label="correlation", visible=False)
        bars = fig.vbar(x="lag", top="r", width=0.7, source=self._xcorr, color="color")
        for edge in ("band", "low"):
            fig.line("lag", edge, source=self._xcorr, color="#888888", line_dash="dashed")
        fig.add_tools(HoverTool(renderers=[bars], tooltips=[("lag", "@lag"), ("correlation", "@r{+0.000}"),
                                                            ("band of chance", "±@band{0.000}")]))
        self._xcorr_fig = fig
        return fig

    # -- widgets ---------------------------------------------------------------------------
    def _watch_widgets(self) -> None:
        def on(widget, name):
            widget.param.watch(lambda event: None if self._syncing else setattr(self, name, event.new), "value")

        for widget, name in ((self._exchange_select, "exchange"), (self._coin_select, "coin"),
                             (self._about_select, "about"), (self._source_select, "source")):
            on(widget, name)

    def _sync_widgets(self, markets: dict) -> None:
        spec, shared = self._spec, self._news
        self._syncing = True
        try:
            self._exchange_select.param.update(options=sorted(set(markets) | {self.exchange}), value=self.exchange)
            coins = list(spec.coins) if spec else []
            self._coin_select.param.update(options=coins, value=spec.coin if spec else None)
            about = sorted(set(COINS) | set(coins) | ({self.about} - {""}), key=_order)
            self._about_select.param.update(options={"every coin": "", **{c: c for c in about}}, value=self.about)
            self._sync_sources(shared.sources if shared else [])
        finally:
            self._syncing = False

    def _sync_sources(self, sources) -> None:
        options = {"every source": "", **{s: s for s in sorted(set(sources) | ({self.source} - {""}))}}
        if options != self._source_select.options:
            syncing, self._syncing = self._syncing, True
            try:
                self._source_select.param.update(options=options, value=self.source)
            finally:
                self._syncing = syncing

    # -- what to compute -------------------------------------------------------------------
    @staticmethod
    def _feed_coins(markets: dict) -> list:
        """The coins the feed trades (on any exchange) that the news tagger knows."""
        traded = {s.split("-")[0] for symbols in markets.values() for s in symbols}
        return sorted((c for c in traded if c in COINS), key=_order)

    def _resolve(self, markets: dict):
        """The :class:`SentimentSpec` of the parameters, and what is wrong with them (one sentence each)."""
        problems = []
        wanted = [_code(c) for c in self.coins] if self.coins else self._feed_coins(markets)
        unknown = [c for c in wanted if c not in COINS]
        coins = list(dict.fromkeys(c for c in wanted if c in COINS))
        if unknown:
            problems.append(f"Unknown coin {', '.join(unknown)}: choose from {', '.join(sorted(COINS, key=_order))}.")
        if not coins:
            return None, problems or ["No coin to show: the feed trades no coin the news tagger knows."]
        coin = _code(self.coin or "")
        if self.coin is not None and coin not in coins:
            problems.append(f"{self.coin} is not among the coins shown: showing {coins[0]}.")
        coin = coin if coin in coins else coins[0]
        symbol = ""
        if self.exchange not in markets:
            choices = ", ".join(sorted(markets))
            problems.append(f"Unknown exchange {self.exchange!r}: no price shown (choose {choices}).")
        else:
            symbol = market_symbol(coin, markets[self.exchange])
            if not symbol:
                problems.append(f"{coin} is not traded on {self.exchange}: no price shown.")
        return SentimentSpec(tuple(coins), coin, self.exchange, symbol, self.timeframe, self.window,
                             self.lookback), problems

    def _open(self) -> bool:
        """Acquire the shared data of the parameters' spec; False (and why, on the page) if there is none yet."""
        markets = known_markets(self.ingest)
        if not markets:
            self.message("Waiting for the feed to start…", "info")
            return False
        self._spec, self._problems = self._resolve(markets)
        if self._news is None:
            self._news = Headlines.of(self.ingest)
        self._sync_widgets(markets)
        if self._spec is None:
            self.message(html.escape(" ".join(self._problems), quote=False), "warning")
            return False
        self._data = SentimentData.of(self.ingest, self._spec)
        self._version = -1
        bar = timeframe_ms(self._spec.timeframe)
        for renderer in (self._mood_bars, self._count_bars):
            renderer.glyph.width = bar * 0.8
        self._series_figs[0].x_range.min_interval = bar * 12  # a few bars' span, even with one bar
        return True

    def _reload(self, *events) -> None:
        self._release_data()
        if self._panel is not None:
            self._tick()  # errors shown as one line, as on the timer

    def _refilter(self, *events) -> None:
        self._after = -1
        if self._panel is not None:
            self._tick()

    def _release_data(self) -> None:
        if self._data is not None:
            self._data.release()
            self._data = None

    def unsubscribe(self) -> None:
        """Release this view's hub cursors and its share of the shared data and headlines."""
        super().unsubscribe()
        self._release_data()
        if self._news is not None:
            self._news.release()
            self._news = None
        self._after = -1

    @property
    def result(self):
        """The :class:`~analytics.views.sentimentfeed.SentimentResult` behind the page (None before the first)."""
        return None if self._data is None else self._data.result

    # -- updating --------------------------------------------------------------------------
    def refresh(self) -> None:
        news = getattr(self.ingest, "news", None)
        if news is None and getattr(self.ingest, "started", True) is None:
            self.message("Waiting for the feed to start…", "info")
            return
        self._show_banner(news)
        if news is None:
            self.message("News is off for this feed (a replay has none; --no-news turns it off): no sentiment to "
                         "show.", "info")
            return
        if self._data is None and not self._open():
            return
        data, shared = self._data, self._news
        shared.update()
        data.update()
        about, source, note = self._filters(shared.sources)
        self._show_headlines(shared, about, source)
        waiting = "" if shared.version else f"Waiting for the first news item from {news.label}…"
        warnings = [*self._problems, data.history, shared.history]
        lines = " ".join(filter(None, [*warnings, note, waiting]))
        self.message(html.escape(lines, quote=False), "warning" if any(warnings) else "info")
        if data.error:  # the headlines go on; the numbers' failure is said as one line
            raise RuntimeError(data.error)
        if data.version != self._version and data.result is not None:
            self._version = data.version
            self._show(data.result)

    def _show_banner(self, news) -> None:
        if news is None:
            text, kind = "**News: off.**", "secondary"
        elif "SIMULATED" in news.label.upper():
            text, kind = (f"**News: {news.label}.** Headlines are made up by the simulator from its own prices: "
                          "they are not real news."), "warning"
        else:
            text, kind = f"**News: {news.label}**", "success"
        if self._banner.object != text:
            self._banner.param.update(object=text, alert_type=kind, visible=True)

    def _filters(self, sources) -> tuple[str, str, str]:
        """The headline filters in effect (coin, source) and a line on a filter that cannot match."""
        about, note = self.about.upper(), ""
        if about and about not in COINS:
            about, note = "", f"Unknown coin {self.about!r} for the headlines: showing every coin."
        if self.source and sources and self.source not in sources:
            note += f" No headline from {self.source!r} yet (sources so far: {', '.join(sources)})."
        return about, self.source, note.strip()

    def _show_headlines(self, shared, about: str, source: str) -> None:
        self._sync_sources(shared.sources)
        if shared.version == self._after:
            return
        fresh = self._after < 0
        rows = shared.select(max(self._after, 0), about, source, self.headlines)
        self._after = shared.version
        if not fresh and not len(rows):
            return
        shown = pd.DataFrame({name: rows[f"show_{name}"].to_numpy(object) for name in COLUMNS}) if len(rows) \
            else pd.DataFrame(columns=list(COLUMNS))
        if fresh:
            self._table.value = shown
        else:
            self._table.stream(shown, rollover=self.headlines)
            self.shown(rows["fetched"].to_numpy("datetime64[ns]"))

    def _show(self, result) -> None:
        spec = result.spec
        for section, div in self._notes.items():
            text = html.escape(result.notes.get(section, ""))
            if div.text != text:
                div.update(text=text, visible=bool(text))
        window = duration(bar_length(spec.timeframe) * spec.window)
        through = "no sentiment bar yet" if result.through is None else f"newest bar {result.through:%F %H:%M} UTC"
        self._status.text = html.escape(f"{spec.coin} · {spec.timeframe} · gauges over the last {spec.window} bars "
                                        f"({window}) · {through} · computed in {result.elapsed * 1e3:,.0f} ms"
                                        f"{news_counts(getattr(self.ingest, 'news', None))}")
        factors = list(spec.coins)[::-1]
        if list(self._gauge_fig.y_range.factors) != factors:
            self._gauge_fig.y_range.factors = factors
            self._gauge_fig.height = 50 + 30 * len(factors)
        gauges = gauge_columns(result.gauges)
        self._gauges.data = gauges
        price_fig, mood, _ = self._series_figs
        price_fig.title.text = (f"{spec.symbol} on {spec.exchange}, {spec.timeframe} close" if spec.symbol
                                else f"No price of {spec.coin}")
        mood.title.text = f"{spec.coin}: mean compound score per {spec.timeframe} bar"
        self._sent["price"] = send_changes(self._price, self._sent.get("price"),
                                           price_columns(result.price, spec.timeframe))
        self._sent["series"] = send_changes(self._series, self._sent.get("series"),
                                            series_columns(result.series, spec.timeframe))
        self._xcorr.data = xcorr_columns(result.leadlag)
        self._xcorr_fig.visible = result.leadlag is not None
        self._xcorr_fig.title.text = (f"Correlation of {spec.coin} sentiment with {spec.symbol or 'price'} returns "
                                      f"k bars later (up to {MAX_LAG}), dashed: band of chance")
        text = f"<p>{html.escape(result.words)}</p>" if result.words else ""
        if self._words.text != text:
            self._words.text = text


URL_ARGS = ("coins", "coin", "timeframe", "window", "lookback", "about", "source")


def url_params(args: dict) -> tuple[dict, list]:
    """:class:`SentimentView` parameters from URL query values, and one sentence per bad value.

    Parameters
    ----------
    args : dict
        ``{name: text or None}`` for names of :data:`URL_ARGS` (``coins=BTC,ETH``,
        ``coin=eth``, ``timeframe=1h``, ``about=BTC``, ``source=coindesk``). A bad value is
        left out (the page opens with the default) and named in the returned sentences.
    """
    params, notes = {}, []
    timeframe = args.get("timeframe")
    if timeframe is not None:
        if timeframe in TIMEFRAMES_SHOWN:
            params["timeframe"] = timeframe
        else:
            notes.append(f"Unknown timeframe {timeframe!r} in the URL: showing 5m (sentiment bars are "
                         f"{' or '.join(TIMEFRAMES_SHOWN)}).")
    counts, bad = url_bar_counts(SentimentView, args, ("window", "lookback"))
    params.update(counts)
    notes += bad
    if args.get("coins"):
        params["coins"] = [c.strip().upper() for c in args["coins"].split(",") if c.strip()] or None
    for name in ("coin", "about"):
        if args.get(name):
            params[name] = args[name].upper()
    if args.get("source"):
        params["source"] = args["source"]
    return params, notes
