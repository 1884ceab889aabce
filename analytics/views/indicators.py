"""Indicators on the chart: overlays on the price axis and panels under it, live on the forming candle.

:class:`ChartIndicators` keeps one :class:`~analytics.indicators.live.IndicatorSet` per
chart. Its values are extra columns of the chart's candle source, so they are streamed,
patched and rolled over with the candles they belong to. History is run through the
incremental set once when a window is shown; after that each hub bar row costs one
update: ``closed=False`` on the forming candle (nothing committed), ``closed=True`` once
when it closes. A correction of an already closed bar (a late trade) asks the chart to
recompute its window instead.
"""

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, CustomJS, HoverTool, Range1d, Span
from bokeh.plotting import figure

from analytics.indicators.catalog import CATALOG, parse
from analytics.indicators.live import IndicatorSet

COLORS = ("#f2c94c", "#56ccf2", "#bb6bd9", "#f2994a", "#6fcf97", "#eb5757", "#9b51e0", "#2d9cdb")
LEVEL_COLOR = "#888888"
DEFAULT = "ema 20, bollinger 20 2, rsi 14"

# Fits a panel's y axis to its columns within the visible x range (unless the indicator has fixed bounds).
_AUTOSCALE = """
const d = source.data, x = d.x;
let min = Infinity, max = -Infinity;
for (const name of names) {
  const v = d[name];
  if (v === undefined) continue;
  for (let i = 0; i < x.length; i++) {
    if (x[i] < xr.start || x[i] > xr.end || !isFinite(v[i])) continue;
    if (v[i] < min) min = v[i];
    if (v[i] > max) max = v[i];
  }
}
if (min <= max) {
  const pad = (max - min) * 0.08 || Math.abs(max) * 0.05 || 1;
  if (yr.start != min - pad || yr.end != max + pad) yr.setv({start: min - pad, end: max + pad});
}
"""


def _column(key: str, output: str | None) -> str:
    return key if output is None else f"{key}__{output}"


class ChartIndicators:
    """The indicators of one chart: their columns, their glyphs and their live state.

    Parameters
    ----------
    source : ColumnDataSource
        The chart's candles (an ``x`` column in epoch ms); indicator columns are added to it.
    price : bokeh figure
        The candle figure, where overlays are drawn.
    x_range : Range1d
        Shared with the panels.
    """

    def __init__(self, source: ColumnDataSource, price, x_range):
        self.source, self.price, self.x_range = source, price, x_range
        self.specs, self.panels = [], []
        self.bar_ms = 60_000.0
        self._overlays, self._callbacks, self._bars = [], [], []
        self._set = IndicatorSet({})
        self._names = []
        self._committed = self._forming = None

    # -- configuration ----------------------------------------------------------------
    def configure(self, text: str) -> None:
        """Show the indicators ``text`` names (see :func:`analytics.indicators.catalog.parse`).

        Raises ValueError (one line) and keeps the current ones when ``text`` is bad. The
        caller then re-shows its bars so that the new columns are filled.
        """
        specs = parse(text)
        self._set = IndicatorSet({key: (name, params) for key, name, params in specs})
        self.specs = specs
        self._names = [self._flat(key, name) for key, name, _ in specs]
        self._committed = self._forming = None
        self._forget()
        data = dict(self.source.data)
        data.update({c: np.full(len(data["x"]), np.nan) for c in self.columns()})
        self.source.data = data
        self.panels = []
        for (key, name, params), names in zip(specs, self._names):
            if CATALOG[name].overlay:
                self._overlay(key, name, names)
            else:
                self.panels.append(self._panel(key, name, params, names))

    @staticmethod
    def _flat(key: str, name: str) -> list[str]:
        outputs = CATALOG[name].cls.outputs
        return [_column(key, None if len(outputs) == 1 else output) for output in outputs]

    def columns(self) -> list[str]:
        """The source columns the indicators fill."""
        return [c for names in self._names for c in names]

    # -- values -------------------------------------------------------------------------
    def history(self, bars: pd.DataFrame) -> dict:
        """Columns for ``bars`` (the chart's window, indexed by start), leaving the state at its end.

        A last bar that is still forming is previewed, not committed.
        """
        self._set.reset()
        self._committed = self._forming = None
        names = self.columns()
        if not names or bars.empty:
            return {c: np.full(len(bars), np.nan) for c in names}
        forming = "closed" in bars and not bool(bars["closed"].iloc[-1])
        closed = bars.iloc[:-1] if forming else bars
        frame = self._set.run(closed[["open", "high", "low", "close", "volume"]])
        columns = {c: frame[original].to_numpy(float)
                   for c, original in zip(names, frame.columns)}
        if len(closed):
            self._committed = int(closed.index[-1].value)
        if forming:
            last = bars.iloc[-1]
            start = int(bars.index[-1].value)
            values = self._values(self._set.update(start, last["open"], last["high"], last["low"], last["close"],
                                                   last["volume"], closed=False))
            self._forming = (start, last)
            columns = {c: np.append(columns[c], v) for c, v in zip(names, values)}
        return columns

    def live(self, rows: pd.DataFrame, x: np.ndarray) -> dict | None:
        """Columns for hub bar ``rows`` aligned with ``x`` (their starts in ms, as the chart holds them).

        Returns None when a row corrects a bar already committed: the chart must then
        recompute its window with :meth:`history`.
        """
        names = self.columns()
        if not names:
            return {}
        starts = rows["start"].to_numpy("datetime64[ns]").astype(np.int64)
        fields = [rows[c].to_numpy(float) for c in ("open", "high", "low", "close", "volume")]
        closed = rows["closed"].to_numpy(bool)
        update, latest = self._set.update, {}
        for i, start in enumerate(starts.tolist()):
            if self._committed is not None and start <= self._committed:
                return None
            if self._forming is not None and start != self._forming[0]:
                if start < self._forming[0]:
                    return None
                bar = self._forming[1]  # a forming bar that never got its closed row: it is closed now
                update(self._forming[0], bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"])
                self._committed = self._forming[0]
            bar = {name: values[i] for name, values in zip(("open", "high", "low", "close", "volume"), fields)}
            latest[start] = self._values(update(start, *bar.values(), closed=bool(closed[i])))
            if closed[i]:
                self._committed, self._forming = start, None
            else:
                self._forming = (start, bar)
        keys = (x * 1e6).round().astype(np.int64)
        table = np.array([latest[k] for k in keys.tolist()], dtype=float).reshape(len(keys), len(names))
        return {c: table[:, j] for j, c in enumerate(names)}

    def _values(self, result: dict) -> list[float]:
        values = []
        for key, _, _ in self.specs:
            value = result[key]
            values.extend(value if isinstance(value, tuple) else (value,))
        return values

    # -- glyphs ---------------------------------------------------------------------------
    def _overlay(self, key: str, name: str, names: list[str]) -> None:
        color = COLORS[len(self._overlays) % len(COLORS)]
        fig, source, label = self.price, self.source, key.replace("_", " ")
        if name == "sar":
            renderers = [fig.scatter("x", names[0], source=source, size=3, color=color, legend_label=label)]
        elif name in ("bollinger", "donchian"):
            lower, middle, upper = names
            renderers = [fig.varea("x", lower, upper, source=source, fill_color=color, fill_alpha=0.07),
                         fig.line("x", lower, source=source, color=color, line_width=1, legend_label=label),
                         fig.line("x", middle, source=source, color=color, line_width=1, line_dash="dashed"),
                         fig.line("x", upper, source=source, color=color, line_width=1)]
        else:
            renderers = [fig.line("x", names[0], source=source, color=color, line_width=1.5, legend_label=label)]
        fig.legend.location = "top_left"
        fig.legend.background_fill_alpha = 0.3
        fig.legend.label_text_font_size = "9pt"
        self._overlays.extend(renderers)

    def _panel(self, key: str, name: str, params: dict, names: list[str]):
        entry = CATALOG[name]
        y_range = Range1d(*(entry.bounds or (0, 1)))
        title = f"{entry.title} ({', '.join(f'{v:g}' for v in params.values() if isinstance(v, (int, float)))})"
        fig = figure(x_axis_type="datetime", x_range=self.x_range, y_range=y_range, height=150, title=title,
                     sizing_mode="stretch_width", tools="xpan,xwheel_zoom,crosshair", active_scroll="xwheel_zoom",
                     toolbar_location=None, y_axis_location="right", name=f"indicator-{key}",
                     css_classes=["tickscope-indicator"], min_border_left=10, min_border_right=70)
        fig.title.text_font_size = "9pt"
        fig.xaxis.visible = False
        outputs = entry.cls.outputs
        renderers = []
        for i, (column, output) in enumerate(zip(names, outputs)):
            if name == "macd" and output == "hist":
                glyph = fig.vbar("x", 0.7 * self.bar_ms, column, 0, source=self.source, fill_color="#7f8c8d",
                                 line_color=None, fill_alpha=0.6)
                self._bars.append(glyph.glyph)
            else:
                legend = {"legend_label": output} if len(outputs) > 1 else {}
                glyph = fig.line("x", column, source=self.source, color=COLORS[i % len(COLORS)], line_width=1.5,
                                 **legend)
            renderers.append(glyph)
        for level in entry.levels:
            fig.add_layout(Span(location=level, dimension="width", line_color=LEVEL_COLOR, line_dash="dotted"))
        fig.add_tools(HoverTool(renderers=renderers[-1:], formatters={"@x": "datetime"}, mode="vline",
                                tooltips=[("time", "@x{%F %H:%M}"),
                                          *((output, f"@{{{column}}}{{0,0.[0000]}}")
                                            for column, output in zip(names, outputs))]))
        if len(outputs) > 1:
            fig.legend.location = "top_left"
            fig.legend.orientation = "horizontal"
            fig.legend.padding = fig.legend.margin = 2
            fig.legend.background_fill_alpha = 0.3
            fig.legend.label_text_font_size = "8pt"
        if entry.bounds is None:
            scale = CustomJS(args={"source": self.source, "xr": self.x_range, "yr": y_range, "names": names},
                             code=_AUTOSCALE)
            self._listen(self.x_range, ("start", "end"), scale)
            self._listen(self.source, ("data", "streaming", "patching"), scale)
        return fig

    def _listen(self, model, events, callback) -> None:
        for event in events:
            model.js_on_change(event, callback)
            self._callbacks.append((model, event, callback))

    def _forget(self) -> None:
        """Remove the glyphs and browser callbacks of the previous configuration."""
        removed = set(self._overlays)
        self.price.renderers = [r for r in self.price.renderers if r not in removed]
        for legend in self.price.legend:
            legend.items = [item for item in legend.items if not removed & set(item.renderers)]
        stale = {id(callback) for _, _, callback in self._callbacks}
        for model in {id(model): model for model, _, _ in self._callbacks}.values():
            model.js_property_callbacks = {event: [c for c in callbacks if id(c) not in stale]
                                           for event, callbacks in model.js_property_callbacks.items()}
        self._overlays, self._callbacks, self._bars = [], [], []

    def set_bar_width(self, bar_ms: float) -> None:
        """The timeframe changed: histogram bars follow the candles' width."""
        self.bar_ms = bar_ms
        for glyph in self._bars:
            glyph.width = 0.7 * bar_ms
