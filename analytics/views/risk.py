"""The Risk page: volatility by estimator, the cone, GARCH, correlations, and a pair, live per closed bar.

The numbers come from :mod:`analytics.views.riskfeed`: one computation per closed bar for
all the sessions of a process that show the same coins, windows and timeframe, on a
background thread, from stored bars merged with the hub's. The forming bar is left out:
the page changes when a bar closes. A session's timer compares a version number and, when
a new result is there, replaces the (small) data of its plots and tables.
"""

import html

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.layouts import column as bokeh_column
from bokeh.models import (ColumnDataSource, Div, FactorRange, HoverTool, InlineStyleSheet, LinearColorMapper,
                          Range1d)
from bokeh.palettes import Category10_10, RdBu11
from bokeh.plotting import figure

from analytics.feeds import DEFAULT_SYMBOLS
from analytics.risk import ESTIMATORS
from analytics.schema import TIMEFRAMES
from analytics.views.base import LiveView, url_bar_counts
from analytics.views.history import known_markets
from analytics.views.riskfeed import LAMBDA, MAX_LAG, RiskFeed, RiskSpec

LEVEL = 0.05  # correlations with a p-value at or above this are faded
ESTIMATOR_TITLES = {"close": "close", "parkinson": "Parkinson", "garman_klass": "Garman-Klass",
                    "rogers_satchell": "Rogers-Satchell", "yang_zhang": "Yang-Zhang", "ewma": f"EWMA λ {LAMBDA}"}
_CSS = """
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 12px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { border-bottom: 1px solid #888; font-weight: normal; }
th.chosen { font-weight: bold; text-decoration: underline; }
tr.chosen td { font-weight: bold; }
p { margin: 4px 8px; }
"""
_NOTE_CSS = ":host { opacity: 0.85; font-size: 13px; } code { font-size: 12px; }"


def heatmap_columns(matrix, level: float = LEVEL) -> dict:
    """The cells of a correlation heatmap: one per pair, faded where the p-value is ``level`` or more.

    Parameters
    ----------
    matrix : analytics.risk.CorrMatrix or None
        None gives no cells.
    """
    if matrix is None:
        return {name: [] for name in ("x", "y", "r", "p", "label", "alpha", "color")}
    names = list(matrix.corr.columns)
    x = [a for _ in names for a in names]
    y = [b for b in names for _ in names]
    r = matrix.corr.to_numpy().ravel()
    p = matrix.pvalues.to_numpy().ravel()
    significant = p < level
    return {"x": x, "y": y, "r": r, "p": p, "label": [f"{v:.2f}" for v in r],
            "alpha": np.where(significant, 0.95, 0.25),
            "color": np.where(~significant, "#aaaaaa", np.where(np.abs(r) < 0.6, "#111111", "#ffffff")).tolist()}


def vol_table_html(result, estimator: str, coin: str) -> str:
    """The volatility table (coins × estimators, annualised %) as HTML, the chosen estimator and coin in bold."""
    columns = [*ESTIMATORS, "ewma"]
    head = "".join(f'<th class="{"chosen" if c == estimator else ""}">{ESTIMATOR_TITLES[c]}</th>' for c in columns)
    rows = []
    for symbol, values in result.vol.iterrows():
        cells = "".join(f"<td>{'–' if np.isnan(v) else f'{v:,.1f}'}</td>" for v in values[columns])
        chosen = ' class="chosen"' if symbol == coin else ""
        rows.append(f"<tr{chosen}><td>{html.escape(symbol)}</td><td>{result.counts[symbol]:,}</td>{cells}</tr>")
    return (f'<table class="tickscope-risk-vol"><tr><th>coin</th><th>bars</th>{head}</tr>{"".join(rows)}</table>'
            f"<p>Annualised for a 24/7 market, in %, over the last {result.spec.window} closed {result.spec.timeframe}"
            f" bars (EWMA: all bars of the sample, λ = {LAMBDA}).</p>")


def garch_html(result) -> str:
    """The GARCH(1,1) fit in a table and in words."""
    fit = result.garch
    if fit is None:
        return ""
    bar = pd.Timedelta(TIMEFRAMES[result.spec.timeframe])
    half = fit.half_life
    half_text = "never" if not np.isfinite(half) else f"{half:,.1f} bars ({_span(half * bar)})"
    long_run = result.forecast.iloc[-1] if result.forecast is not None else np.nan
    cells = [("ω", f"{fit.omega:.3g}"), ("α", f"{fit.alpha:.4f}"), ("β", f"{fit.beta:.4f}"),
             ("persistence α + β", f"{fit.persistence:.4f}"), ("half-life", half_text),
             ("log-likelihood", f"{fit.llf:,.1f}"), ("returns", f"{fit.nobs:,}")]
    rows = "".join(f"<tr><td>{name}</td><td>{value}</td></tr>" for name, value in cells)
    forecast = result.forecast
    words = (f"Next bar {forecast.iloc[0]:.1f} %, in {len(forecast)} bars {long_run:.1f} % (annualised)."
             if forecast is not None else "")
    warning = "" if fit.converged else " The optimizer did not report convergence: read with caution."
    return f'<table class="tickscope-risk-garch">{rows}</table><p>{html.escape(words + warning)}</p>'


def _span(delta: pd.Timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def words_html(result) -> str:
    """Cointegration and lead-lag of the pair, in plain words."""
    parts = []
    if result.coint is not None:
        parts.append(f"<p><b>Cointegration.</b> {html.escape(result.coint.words())}.</p>")
    if result.leadlag is not None:
        parts.append(f"<p><b>Lead-lag</b> (cross-correlation and Granger, up to {MAX_LAG} bars). "
                     f"{html.escape(result.leadlag.words())}.</p>")
    return "".join(parts)


def _choices(names) -> str:
    names = sorted(names)
    return ", ".join(names[:8]) + (f", … ({len(names)} in all)" if len(names) > 8 else "")


def _order(symbol: str):
    """The feed's default coins first, in their order (BTC, ETH, ...), then the others by name."""
    return (DEFAULT_SYMBOLS.index(symbol), symbol) if symbol in DEFAULT_SYMBOLS else (len(DEFAULT_SYMBOLS), symbol)


def _ms(index) -> np.ndarray:
    return np.asarray(index, dtype="datetime64[ns]").astype(np.int64) / 1e6


class RiskDashboard(LiveView):
    """Risk of a set of coins on one exchange: volatility, cone, GARCH, correlations and one pair.

    Every number is recomputed when a bar closes (the forming bar is not used), once for
    all sessions showing the same exchange, timeframe, coins, window, lookback, coin and
    pair; GARCH is refitted at most once per closed bar per coin. Too little data is said
    per section, with what to do.

    Examples
    --------
    >>> RiskDashboard(ingest=ingest, timeframe="1s", window=30, pair=["ETH-USDT", "BTC-USDT"])  # doctest: +SKIP
    """

    exchange = param.String(default="BINANCE", doc="Exchange id, e.g. BINANCE.")

    symbols = param.List(default=None, item_type=str, allow_None=True,
                         doc="Coins (normalized, e.g. BTC-USDT); None: every coin the feed has on the exchange.")

    timeframe = param.Selector(default="1m", objects=list(TIMEFRAMES), doc="Bar length.")

    window = param.Integer(default=60, bounds=(5, 480),
                           doc="Bars in the rolling statistics: realized volatility, rolling correlation and beta.")

    lookback = param.Integer(default=1440, bounds=(500, 50_000),
                             doc="Bar periods of history in the sample (1440 one-minute bars: a day).")

    estimator = param.Selector(default="yang_zhang", objects=list(ESTIMATORS),
                               doc="The realized volatility estimator plotted over time and highlighted.")

    coin = param.String(default=None, allow_None=True,
                        doc="The coin of the cone, GARCH and the heatmap across exchanges; None: the first coin.")

    pair = param.List(default=None, item_type=str, allow_None=True, bounds=(2, 2),
                      doc="Two coins: rolling correlation, beta of the first on the second, cointegration, "
                          "lead-lag; None: the first two coins.")

    def __init__(self, **params):
        super().__init__(**params)
        self._feed = self._spec = None
        self._shown = None  # (feed version, estimator) on the page
        self._problems = []
        self._syncing = False
        self.param.watch(self._reload, ["exchange", "symbols", "timeframe", "window", "lookback", "coin", "pair"])

    # -- layout ------------------------------------------------------------------------
    def _layout(self):
        self._exchange_select = pn.widgets.Select(label="Exchange", width=120)
        self._symbols_choice = pn.widgets.MultiChoice(label="Coins", width=320)
        self._coin_select = pn.widgets.Select(label="Coin", width=120)
        self._pair_selects = (pn.widgets.Select(label="Pair", width=120), pn.widgets.Select(label="against", width=120))
        self._watch_widgets()
        controls = pn.Column(
            pn.Row(self._exchange_select,
                   pn.widgets.RadioButtonGroup.from_param(self.param.timeframe, align="end", width=180),
                   self._symbols_choice),
            pn.Row(pn.widgets.IntInput.from_param(self.param.window, label="Window (bars)", width=110),
                   pn.widgets.IntInput.from_param(self.param.lookback, label="Lookback (bars)", width=120),
                   pn.widgets.Select.from_param(self.param.estimator, label="Estimator", width=140),
                   self._coin_select, *self._pair_selects))
        self._status = Div(text="", css_classes=["tickscope-risk-status"], sizing_mode="stretch_width")
        self._notes = {section: Div(text="", visible=False, css_classes=["tickscope-risk-note"],
                                    sizing_mode="stretch_width", stylesheets=[InlineStyleSheet(css=_NOTE_CSS)])
                       for section in ("vol", "cone", "garch", "corr", "xcorr", "pair", "words")}
        style = [InlineStyleSheet(css=_CSS)]
        self._table = Div(text="", css_classes=["tickscope-risk-table"], stylesheets=style)
        self._garch_text = Div(text="", css_classes=["tickscope-risk-garch-text"], stylesheets=style, width=330)
        self._words = Div(text="", css_classes=["tickscope-risk-words"], stylesheets=style,
                          sizing_mode="stretch_width")
        self._corr_caption = Div(text="", css_classes=["tickscope-risk-corr-caption"], stylesheets=style,
                                 sizing_mode="stretch_width")
        self._xcorr_caption = Div(text="", css_classes=["tickscope-risk-xcorr-caption"], stylesheets=style,
                                  sizing_mode="stretch_width")
        cone, history, heat, cross, pair = (self._cone_figure(), self._history_figure(), self._heatmap("corr"),
                                            self._heatmap("xcorr"), self._pair_figures())

        def bokeh(*models, **kwargs):
            return [pn.pane.Bokeh(model, **kwargs) for model in models]

        return pn.Column(
            controls, *bokeh(self._status),
            "### Volatility by estimator", *bokeh(self._notes["vol"], self._table),
            "### Volatility of the coin", *bokeh(self._notes["cone"], self._notes["garch"]),
            pn.Row(*bokeh(cone, sizing_mode="stretch_width"), *bokeh(history, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            "#### GARCH(1,1)", *bokeh(self._garch_text),
            "### Correlation", pn.Row(
                pn.Column(*bokeh(self._notes["corr"], heat, self._corr_caption, sizing_mode="stretch_width"),
                          sizing_mode="stretch_width"),
                pn.Column(*bokeh(self._notes["xcorr"], cross, self._xcorr_caption, sizing_mode="stretch_width"),
                          sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            "### The pair", *bokeh(self._notes["pair"], pair, self._notes["words"], self._words,
                                   sizing_mode="stretch_width"),
            sizing_mode="stretch_width")

    def _cone_figure(self):
        self._cone = ColumnDataSource({c: [] for c in ("window", "min", "q05", "q25", "q50", "q75", "q95", "max",
                                                       "current")})
        fig = figure(height=320, sizing_mode="stretch_width", x_axis_type="log", tools="save,reset",
                     title="Volatility cone (close to close, annualised %)", x_axis_label="window (bars)",
                     css_classes=["tickscope-risk-cone"])
        fig.varea("window", "q05", "q95", source=self._cone, fill_color="#1f77b4", fill_alpha=0.2,
                  legend_label="5–95 %")
        fig.varea("window", "q25", "q75", source=self._cone, fill_color="#1f77b4", fill_alpha=0.35,
                  legend_label="25–75 %")
        fig.line("window", "q50", source=self._cone, color="#1f77b4", line_width=2, legend_label="median")
        for edge in ("min", "max"):
            fig.line("window", edge, source=self._cone, color="#888888", line_dash="dashed", legend_label="min, max")
        fig.line("window", "current", source=self._cone, color="#ef5350", line_width=2)
        now = fig.scatter("window", "current", source=self._cone, color="#ef5350", size=9, legend_label="current")
        fig.add_tools(HoverTool(renderers=[now], tooltips=[
            ("window", "@window bars"), ("current", "@current{0.0} %"), ("median", "@q50{0.0} %"),
            ("5–95 %", "@q05{0.0}–@q95{0.0}")]))
        fig.add_layout(fig.legend[0], "right")
        return fig

    def _history_figure(self):
        self._history = ColumnDataSource({"time": [], "realized": [], "ewma": [], "garch": []})
        self._forecast = ColumnDataSource({"time": [], "vol": []})
        fig = figure(height=320, sizing_mode="stretch_width", x_axis_type="datetime",
                     tools="xpan,xwheel_zoom,box_zoom,reset,save", title="Volatility over time (annualised %)",
                     css_classes=["tickscope-risk-history"])
        lines = [fig.line("time", name, source=self._history, color=color, line_width=width, legend_label=label)
                 for name, color, width, label in (("realized", Category10_10[0], 1.6, "realized"),
                                                    ("ewma", Category10_10[1], 1.2, "EWMA"),
                                                    ("garch", Category10_10[2], 1.2, "GARCH"))]
        fig.line("time", "vol", source=self._forecast, color=Category10_10[2], line_dash="dashed", line_width=2,
                 legend_label="GARCH forecast")
        fig.add_tools(HoverTool(renderers=lines[:1], mode="vline", formatters={"@time": "datetime"}, tooltips=[
            ("time", "@time{%F %T}"), ("realized", "@realized{0.0} %"), ("EWMA", "@ewma{0.0} %"),
            ("GARCH", "@garch{0.0} %")]))
        fig.legend.location, fig.legend.click_policy, fig.legend.background_fill_alpha = "top_left", "hide", 0.5
        self._history_fig = fig
        return fig

    def _heatmap(self, name: str):
        source = ColumnDataSource(heatmap_columns(None))
        mapper = LinearColorMapper(palette=RdBu11, low=-1, high=1)
        fig = figure(height=360, sizing_mode="stretch_width", x_range=FactorRange(), y_range=FactorRange(),
                     tools="save", toolbar_location=None, css_classes=[f"tickscope-risk-{name}"],
                     title="Across coins" if name == "corr" else "Across exchanges")
        cells = fig.rect("x", "y", 0.96, 0.96, source=source, fill_color={"field": "r", "transform": mapper},
                         fill_alpha="alpha", line_color=None)
        fig.text("x", "y", text="label", source=source, text_align="center", text_baseline="middle",
                 text_color="color", text_font_size="12px")
        fig.add_tools(HoverTool(renderers=[cells], tooltips=[("pair", "@y × @x"), ("correlation", "@r{0.000}"),
                                                             ("p-value", "@p{0.0000}")]))
        fig.xaxis.major_label_orientation = 0.7
        fig.grid.visible = False
        fig.axis.axis_line_color = None
        setattr(self, f"_{name}_source", source)
        setattr(self, f"_{name}_fig", fig)
        return fig

    def _pair_figures(self):
        self._pair_source = ColumnDataSource({"time": [], "corr": [], "ewma_corr": [], "beta": []})
        tools = "xpan,xwheel_zoom,box_zoom,reset,save"
        corr = figure(height=220, sizing_mode="stretch_width", x_axis_type="datetime", tools=tools,
                      y_range=Range1d(-1.05, 1.05), css_classes=["tickscope-risk-pair"])
        corr.line("time", "corr", source=self._pair_source, color=Category10_10[0], line_width=1.6,
                  legend_label="rolling")
        corr.line("time", "ewma_corr", source=self._pair_source, color=Category10_10[1], line_width=1.2,
                  legend_label=f"EWMA λ {LAMBDA}")
        corr.legend.location, corr.legend.background_fill_alpha = "bottom_left", 0.5
        beta = figure(height=180, sizing_mode="stretch_width", x_axis_type="datetime", tools=tools,
                      x_range=corr.x_range)
        beta.line("time", "beta", source=self._pair_source, color=Category10_10[3], line_width=1.6)
        self._pair_figs = (corr, beta)
        return bokeh_column(corr, beta, sizing_mode="stretch_width")

    # -- widgets -----------------------------------------------------------------------
    def _watch_widgets(self) -> None:
        def on(widget, handler):
            widget.param.watch(lambda event: None if self._syncing else handler(event.new), "value")

        on(self._exchange_select, self._choose_exchange)
        on(self._symbols_choice, lambda value: self.param.update(
            symbols=list(value) or None, coin=self.coin if self.coin in value else None,
            pair=self.pair if self.pair and set(self.pair) <= set(value) else None))
        on(self._coin_select, lambda value: setattr(self, "coin", value))
        for widget in self._pair_selects:
            on(widget, lambda _: self._choose_pair())

    def _choose_exchange(self, exchange: str) -> None:
        listed = known_markets(self.ingest).get(exchange, set())
        keep = [s for s in self.symbols or () if s in listed]
        self.param.update(exchange=exchange, symbols=keep or None,
                          coin=self.coin if self.coin in listed else None,
                          pair=self.pair if self.pair and set(self.pair) <= listed else None)

    def _choose_pair(self) -> None:
        pair = [widget.value for widget in self._pair_selects]
        if None in pair:  # a selector being filled
            return
        if pair[0] == pair[1]:
            self.message(f"Choose two different coins for the pair (both are {pair[0]}).")
        else:
            self.pair = pair

    def _sync_widgets(self, markets: dict) -> None:
        spec = self._spec
        self._syncing = True
        try:
            self._exchange_select.param.update(options=sorted(set(markets) | {self.exchange}), value=self.exchange)
            listed = sorted(markets.get(self.exchange, ()))
            symbols = list(spec.symbols) if spec else []
            self._symbols_choice.param.update(options=sorted(set(listed) | set(symbols)), value=symbols)
            self._coin_select.param.update(options=symbols, value=spec.coin if spec else None)
            pair = list(spec.pair) if spec and spec.pair else [None, None]
            for widget, value in zip(self._pair_selects, pair):  # no options without a pair: none is chosen for it
                widget.param.update(options=symbols if value else [], value=value, disabled=not value)
        finally:
            self._syncing = False

    # -- what to compute ---------------------------------------------------------------
    def _resolve(self, markets: dict):
        """The :class:`RiskSpec` of the parameters, and what is wrong with them (one sentence each)."""
        if not markets:
            return None, []
        if self.exchange not in markets:
            return None, [f"Unknown exchange {self.exchange!r}: choose {_choices(markets)}."]
        listed = markets[self.exchange]
        fed = (getattr(self.ingest, "markets", None) or {}).get(self.exchange) or listed
        wanted = list(dict.fromkeys(self.symbols or sorted(fed, key=_order)))
        problems = []
        unknown = [s for s in wanted if s not in listed]
        symbols = [s for s in wanted if s in listed]
        if unknown:
            problems.append(f"Unknown symbol {', '.join(unknown)} on {self.exchange}: choose {_choices(listed)}.")
        if not symbols:
            return None, problems
        coin = self.coin if self.coin in symbols else symbols[0]
        if self.coin is not None and self.coin != coin:
            problems.append(f"{self.coin} is not among the coins shown: showing {coin}.")
        pair = tuple(self.pair or symbols[:2])
        if len(set(pair)) != 2 or not set(pair) <= set(symbols):
            if self.pair is not None:
                problems.append(f"The pair {' and '.join(self.pair)} is not two of the coins shown: "
                                f"showing {' and '.join(symbols[:2]) or 'none'}.")
            pair = tuple(symbols[:2]) if len(symbols) >= 2 else ()
        exchanges = tuple(sorted(ex for ex, held in markets.items() if coin in held))
        return RiskSpec(self.exchange, self.timeframe, tuple(symbols), self.window, self.lookback, coin, pair,
                        exchanges), problems

    def _open(self) -> bool:
        """Acquire the feed of the parameters' spec; False (and why, on the page) if there is none yet."""
        markets = known_markets(self.ingest)
        self._spec, self._problems = self._resolve(markets)
        self._sync_widgets(markets)
        if self._spec is None:
            self.message(" ".join(self._problems) or "Waiting for the feed to start…",
                         "warning" if self._problems else "info")
            return False
        self._feed = RiskFeed.acquire(self.ingest, self._spec)
        self._shown = None
        return True

    def _reload(self, *events) -> None:
        self.unsubscribe()
        if self._panel is not None:
            self._tick()  # errors shown as one line, as on the timer

    def unsubscribe(self) -> None:
        """Release this view's hub cursors and its share of the :class:`RiskFeed`."""
        super().unsubscribe()
        if self._feed is not None:
            self._feed.release()
            self._feed = None

    @property
    def result(self):
        """The :class:`~analytics.views.riskfeed.RiskResult` behind the page (None before the first)."""
        return None if self._feed is None else self._feed.result

    # -- updating ----------------------------------------------------------------------
    def refresh(self) -> None:
        if self._feed is None and not self._open():
            return
        feed = self._feed
        feed.update()
        if feed.error:
            raise RuntimeError(feed.error)
        result = feed.result
        if (feed.version, self.estimator) == self._shown:
            return
        problems = " ".join(filter(None, [*self._problems, feed.history]))
        self.message(*((problems, "warning") if problems else ("" if result is not None else "Computing…", "info")))
        if result is None:
            return
        self._shown = (feed.version, self.estimator)
        self._show(result)

    @param.depends("estimator", watch=True)
    def _restyle(self) -> None:
        if self._panel is not None:
            self._tick()

    def _show(self, result) -> None:
        spec = result.spec
        for section, div in self._notes.items():
            text = html.escape(result.notes.get(section, ""))
            text = text.replace("`", "<code>", 1).replace("`", "</code>", 1)
            if div.text != text:
                div.update(text=text, visible=bool(text))
        through = "no closed bar yet" if result.through is None else f"last closed bar {result.through:%F %T} UTC"
        coins = f"{len(spec.symbols)} coin{'s' if len(spec.symbols) != 1 else ''}"
        self._status.text = (f"{spec.exchange} · {spec.timeframe} · {coins} · window {spec.window} · lookback "
                             f"{spec.lookback} bars · {through} · computed in {result.elapsed * 1e3:,.0f} ms")
        self._table.text = vol_table_html(result, self.estimator, spec.coin)
        self._show_coin(result)
        self._show_heatmap("corr", result.corr, f"{spec.timeframe} log returns across coins")
        self._show_heatmap("xcorr", result.xcorr, f"{spec.timeframe} log returns of {spec.coin} across exchanges")
        self._show_pair(result)

    def _show_coin(self, result) -> None:
        spec, cone = result.spec, result.cone
        if cone is None:
            self._cone.data = {name: [] for name in self._cone.data}
        else:
            self._cone.data = {"window": cone.index.to_numpy(float), **{c: cone[c].to_numpy() for c in cone.columns}}
        series = result.series.dropna(how="all")
        self._history.data = {"time": _ms(series.index), "realized": series[self.estimator].to_numpy(),
                              "ewma": series["ewma"].to_numpy(), "garch": series["garch"].to_numpy()}
        forecast = result.forecast
        self._forecast.data = ({"time": _ms(forecast.index), "vol": forecast.to_numpy()} if forecast is not None
                               else {"time": [], "vol": []})
        self._history_fig.title.text = (f"{spec.coin}, annualised %: {ESTIMATOR_TITLES[self.estimator]} "
                                        f"({spec.window} bars), EWMA, GARCH(1,1)")
        self._garch_text.text = garch_html(result)

    def _show_heatmap(self, name: str, matrix, what: str) -> None:
        source, fig = getattr(self, f"_{name}_source"), getattr(self, f"_{name}_fig")
        names = list(matrix.corr.columns) if matrix is not None else []
        if list(fig.x_range.factors) != names:
            fig.x_range.factors, fig.y_range.factors = names, names[::-1]
        source.data = heatmap_columns(matrix)
        caption = getattr(self, f"_{name}_caption")
        caption.text = ("" if matrix is None else
                        f"<p>Pearson correlation of {what}, over {matrix.nobs:,} returns at common times; "
                        f"faded: not significant (p ≥ {LEVEL}).</p>")

    def _show_pair(self, result) -> None:
        pair = result.pair
        corr, beta = self._pair_figs
        if result.spec.pair:
            a, b = result.spec.pair
            corr.title.text = f"Correlation of {a} and {b} ({result.spec.window}-bar rolling and EWMA)"
            beta.title.text = f"β of {a} on {b} (RollingOLS, {result.spec.window} bars)"
        self._pair_source.data = ({"time": _ms(pair.index), **{c: pair[c].to_numpy() for c in
                                                                 ("corr", "ewma_corr", "beta")}}
                                  if pair is not None else {name: [] for name in self._pair_source.data})
        self._words.text = words_html(result)


URL_ARGS = ("symbols", "window", "lookback", "estimator", "coin", "pair")


def _names(text: str) -> list:
    return [name.strip().upper() for name in text.split(",") if name.strip()]


def url_params(args: dict) -> tuple[dict, list]:
    """:class:`RiskDashboard` parameters from URL query values, and one sentence per bad value.

    Parameters
    ----------
    args : dict
        ``{name: text or None}`` for names of :data:`URL_ARGS`; lists are comma-separated
        (``symbols=BTC-USDT,ETH-USDT``, ``pair=ETH-USDT,BTC-USDT``). A bad value is left out
        (the page opens with the default) and named in the returned sentences.
    """
    params, notes = url_bar_counts(RiskDashboard, args, ("window", "lookback"))
    estimator = args.get("estimator")
    if estimator is not None:
        if estimator in ESTIMATORS:
            params["estimator"] = estimator
        else:
            notes.append(f"Unknown estimator {estimator!r} in the URL: showing {RiskDashboard.param.estimator.default}"
                         f" (choose from {', '.join(ESTIMATORS)}).")
    if args.get("symbols") is not None:
        params["symbols"] = _names(args["symbols"]) or None
    if args.get("coin"):
        params["coin"] = args["coin"].upper()
    pair = args.get("pair")
    if pair is not None:
        names = _names(pair)
        if len(names) == 2 and names[0] != names[1]:
            params["pair"] = names
        else:
            notes.append(f"Bad pair {pair!r} in the URL: showing the first two coins (give two coins, e.g. "
                         "pair=ETH-USDT,BTC-USDT).")
    return params, notes
