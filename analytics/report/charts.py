"""The report's charts as HoloViews objects (Bokeh backend): zoom and hover on every plot.

Time axes share the dimension ``start`` (bar open time, UTC), so the plots of one market stacked
in a layout zoom together; prices share ``price``. Indicators follow TA-Lib's conventions
(:mod:`analytics.indicators`).
"""

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import NumeralTickFormatter

from analytics import indicators

UP, DOWN = "#26a69a", "#ef5350"
TOOLS = ["xwheel_zoom", "box_zoom", "hover"]
TIME = hv.Dimension("start", label="time (UTC)")
PRICE = hv.Dimension("price")
NUMBER = "{0,0.[000000]}"
PERCENT = NumeralTickFormatter(format="0 %")
BLUE, ORANGE, GREY = "#1f77b4", "#ff7f0e", "#aaaaaa"


def pane(plot) -> pn.pane.HoloViews:
    """A full-width pane whose axes stay its own (Panel links same-named axes across panes by default)."""
    return pn.pane.HoloViews(plot, sizing_mode="stretch_width", linked_axes=False)


def _time_opts(height: int, **extra) -> dict:
    """Options every time-series plot shares: tools, pan active (the page still scrolls), full width."""
    return {"tools": TOOLS, "default_tools": ["xpan", "reset", "save"], "active_tools": ["xpan"],
            "toolbar": "above", "responsive": True, "height": height, "show_grid": True, **extra}


def _hover(*fields: tuple) -> dict:
    tooltips = [("time", "@{time}{%F %H:%M}"), *((name, f"@{{{column}}}{fmt}") for name, column, fmt in fields)]
    return {"hover_tooltips": tooltips, "hover_formatters": {"@{time}": "datetime"}}


def _line(series: pd.Series, vdim: str, label: str, **opts) -> hv.Curve:
    frame = pd.DataFrame({"start": series.index, vdim: series.to_numpy(), "time": series.index})
    return hv.Curve(frame, TIME, [vdim, "time"], label=label).opts(**_hover((label, vdim, NUMBER)), **opts)


def candles(bars: pd.DataFrame, step: pd.Timedelta) -> hv.Overlay:
    """Candlesticks: wicks from low to high, bodies from open to close, green up and red down."""
    up = (bars["close"] >= bars["open"]).to_numpy()
    half = step * 0.4
    wicks = hv.Segments((bars.index, bars["low"], bars.index, bars["high"]), [TIME, PRICE, "start_end", "price_top"])
    frame = pd.DataFrame({
        "start": bars.index - half, "price": np.minimum(bars["open"], bars["close"]), "start_end": bars.index + half,
        "price_top": np.maximum(bars["open"], bars["close"]), "time": bars.index, "open": bars["open"],
        "high": bars["high"], "low": bars["low"], "close": bars["close"], "volume": bars["volume"],
        "color": np.where(up, UP, DOWN)})
    bodies = hv.Rectangles(frame, [TIME, PRICE, "start_end", "price_top"],
                           ["time", "open", "high", "low", "close", "volume", "color"])
    hover = _hover(*((name, name, NUMBER) for name in ("open", "high", "low", "close", "volume")))
    return wicks.opts(color="#777777", line_width=1) * bodies.opts(color="color", line_color="color", **hover)


def _volume(bars: pd.DataFrame, step: pd.Timedelta) -> hv.Rectangles:
    half = step * 0.4
    frame = pd.DataFrame({"start": bars.index - half, "volume": 0.0, "start_end": bars.index + half,
                          "volume_top": bars["volume"], "time": bars.index, "amount": bars["volume"],
                          "color": np.where(bars["close"] >= bars["open"], UP, DOWN)})
    return hv.Rectangles(frame, [TIME, "volume", "start_end", "volume_top"], ["time", "amount", "color"]).opts(
        color="color", line_alpha=0, alpha=0.6, ylabel="volume", xaxis=None, **_hover(("volume", "amount", NUMBER)),
        **_time_opts(110))


def price_panel(bars: pd.DataFrame, step: pd.Timedelta, title: str) -> hv.Layout:
    """Candles with EMA 20, SMA 50 and Bollinger(20, 2); volume, RSI(14) and MACD(12, 26, 9) below, zoomed together."""
    close = bars["close"]
    band = indicators.bollinger(close, 20, 2.0)
    area = hv.Area((bars.index, band["lower"], band["upper"]), TIME, [PRICE, "price_upper"],
                   label="Bollinger 20, 2").opts(alpha=0.12, color="#7f7f7f", line_alpha=0)
    lines = [_line(indicators.ema(close, 20), "price", "EMA 20", color=BLUE, line_width=1.2),
             _line(indicators.sma(close, 50), "price", "SMA 50", color=ORANGE, line_width=1.2)]
    price = (area * candles(bars, step) * hv.Overlay(lines)).opts(
        title=title, legend_position="top_left", legend_cols=3, ylabel="price (USDT)", autorange="y", xaxis=None,
        **_time_opts(380))
    volume = _volume(bars, step)
    rsi = (_line(indicators.rsi(close, 14), "rsi", "RSI 14", color="#9467bd")
           * hv.HLine(70).opts(color=GREY, line_dash="dashed")
           * hv.HLine(30).opts(color=GREY, line_dash="dashed")).opts(
        title="", ylim=(0, 100), ylabel="RSI 14", xaxis=None, **_time_opts(130))
    macd = indicators.macd(close, 12, 26, 9)
    histogram = hv.Spikes(pd.DataFrame({"start": macd.index, "macd": macd["hist"]}), TIME, "macd",
                          label="histogram").opts(color="#bbbbbb", line_width=2)
    macd_plot = (histogram * _line(macd["macd"], "macd", "MACD", color=BLUE)
                 * _line(macd["signal"], "macd", "signal", color=ORANGE)).opts(
        title="", ylabel="MACD 12 26 9", legend_position="top_left", legend_cols=3, **_time_opts(170))
    return hv.Layout([price, volume, rsi, macd_plot]).cols(1).opts(shared_axes=True)


def cone(table: pd.DataFrame, title: str, bar_label: str) -> hv.Overlay:
    """A volatility cone: 5-95 % and 25-75 % bands, median, extremes and today's value per window."""
    windows = table.index.to_numpy()
    x = hv.Dimension("window", label=f"window ({bar_label} bars)")
    vol = hv.Dimension("vol", label="annualised volatility")
    parts = [hv.Area((windows, table["q05"], table["q95"]), x, [vol, "vol2"], label="5-95 %").opts(alpha=0.15),
             hv.Area((windows, table["q25"], table["q75"]), x, [vol, "vol2"], label="25-75 %").opts(alpha=0.3),
             hv.Curve((windows, table["q50"]), x, vol, label="median").opts(color=BLUE),
             hv.Curve((windows, table["min"]), x, vol, label="min").opts(color="#999999", line_dash="dotted"),
             hv.Curve((windows, table["max"]), x, vol, label="max").opts(color="#999999", line_dash="dotted"),
             hv.Curve((windows, table["current"]), x, vol, label="current").opts(color=DOWN, line_width=2),
             hv.Scatter((windows, table["current"]), x, vol).opts(color=DOWN, size=7, tools=["hover"])]
    return hv.Overlay(parts).opts(title=title, logx=True, responsive=True, height=300, legend_position="right",
                                  tools=["wheel_zoom", "box_zoom", "hover"], yformatter=PERCENT, show_grid=True)


def garch(conditional: pd.Series, forecast: pd.Series, title: str) -> hv.Overlay:
    """Annualised conditional volatility and its forecast after the last bar."""
    fitted = _line(conditional.rename("vol"), "vol", "GARCH conditional volatility", color=BLUE)
    ahead = _line(forecast.rename("vol"), "vol", "forecast", color=DOWN, line_dash="dashed", line_width=2)
    return (fitted * ahead).opts(title=title, ylabel="annualised volatility", legend_position="top_left",
                                 yformatter=PERCENT, **_time_opts(260))


def heatmap(corr: pd.DataFrame, pvalues: pd.DataFrame, title: str) -> hv.Overlay:
    """A correlation matrix with the value in each cell and its p-value on hover."""
    names = list(corr.columns)
    rows = [(a, b, float(corr.loc[b, a]), float(pvalues.loc[b, a])) for a in names for b in names]
    frame = pd.DataFrame(rows, columns=["x", "y", "corr", "pvalue"])
    frame["text"] = frame["corr"].map("{:.2f}".format)
    frame["ink"] = np.where(frame["corr"].abs() > 0.6, "white", "#222222")
    size = 70 * len(names) + 150
    cells = hv.HeatMap(frame, ["x", "y"], ["corr", "pvalue"]).opts(
        title=title, xlabel="", ylabel="", cmap="RdBu_r", clim=(-1, 1), colorbar=True, tools=["hover"],
        width=max(420, size + 90), height=max(330, size), xrotation=30, invert_yaxis=True, toolbar="above")
    labels = hv.Labels(frame, ["x", "y"], ["text", "ink"]).opts(text_font_size="10pt", text_color="ink")
    return cells * labels


def grid(plots: list, columns: int = 2) -> hv.Layout:
    """Independent plots side by side (no shared axes)."""
    return hv.Layout(plots).cols(columns).opts(shared_axes=False)


def pair(corr: pd.Series, beta: pd.Series, names: tuple, window: int) -> hv.Layout:
    """Rolling correlation and beta of a pair, zoomed together."""
    a, b = names
    correlation = (_line(corr.rename("corr"), "corr", "correlation", color=BLUE)
                   * hv.HLine(0).opts(color=GREY)).opts(
        title=f"Rolling correlation of {a} and {b} returns ({window} bars)", ylim=(-1, 1), ylabel="correlation",
        **_time_opts(220))
    slope = (_line(beta.rename("beta"), "beta", "beta", color=ORANGE) * hv.HLine(1).opts(color=GREY)).opts(
        title=f"Rolling beta of {b} on {a} ({window} bars, OLS)", ylabel="beta", **_time_opts(220))
    return hv.Layout([correlation, slope]).cols(1).opts(shared_axes=True)
