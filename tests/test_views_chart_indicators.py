"""Indicators on the chart page: chosen by text, computed over the chart's bars, live on the forming candle.

Every value the chart holds is compared with TA-Lib on the same closes (real BTC bars).
"""

import numpy as np
import pandas as pd
import pytest
import talib
from bokeh.document.events import ColumnsPatchedEvent, ColumnsStreamedEvent

from analytics.indicators.catalog import CATALOG, parse, spec_text
from analytics.storage import TickStore
from analytics.views.chart import CandleChart
from test_views_chart import BARS, fake_ingest, hub_rows, minute, real_bars, sent

pytestmark = pytest.mark.filterwarnings("ignore:Passing a BlockManager:DeprecationWarning")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = TickStore(f"lmdb://{tmp_path_factory.mktemp('indicators')}/arctic")
    store.write("bars", real_bars())
    return store


def held(chart) -> pd.DataFrame:
    return pd.DataFrame({k: v for k, v in chart._candles.data.items() if k != "color"})


def assert_talib(actual, expected):
    """Same NaN warm-up, equal to 1e-9 relative after it."""
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=0, equal_nan=True)


# -- specs ----------------------------------------------------------------------------------
def test_specs_name_talib_parameters_in_order_with_defaults():
    specs = parse("ema 20, Bollinger(20, 2.5), macd, rsi 7, ema 20, sar 0.01 0.1")
    assert [key for key, _, _ in specs] == ["ema_20", "bollinger_20_2p5", "macd_12_26_9", "rsi_7", "sar_0p01_0p1"]
    assert specs[1][2] == {"period": 20, "k": 2.5}
    assert specs[2][2] == {"fast": 12, "slow": 26, "signal": 9}
    assert parse(spec_text(specs)) == specs
    assert parse("") == [] and parse(" , ") == []


@pytest.mark.parametrize("text, match", [
    ("ema 20, foo 3", "unknown indicator 'foo'"),
    ("rsi 14 3", "rsi takes at most 1 parameters"),
    ("ema 2.5", "ema period: expected an integer, got 2.5"),
    ("rsi 0", "rsi: "),
    ("macd 26 12 x", "unknown indicator 'macd'"),
])
def test_bad_specs_are_one_line(text, match):
    with pytest.raises(ValueError, match=match) as error:
        parse(text)
    assert "\n" not in str(error.value)


def test_every_catalog_entry_is_drawable():
    for name, entry in CATALOG.items():
        assert entry.params is not None and entry.cls.outputs, name
        if entry.bounds:
            assert entry.bounds[0] < entry.bounds[1]


# -- on the chart -----------------------------------------------------------------------------
def test_indicator_columns_equal_talib_over_the_bars_held(store):
    chart = CandleChart(ingest=fake_ingest(store), bars=600, indicators="ema 20, bollinger 20 2, rsi 14, macd, atr 14")
    chart.__panel__()
    try:
        data = held(chart)
        assert len(data) == 600
        close, high, low = data["close"].to_numpy(), data["high"].to_numpy(), data["low"].to_numpy()
        assert_talib(data["ema_20"], talib.EMA(close, 20))
        upper, middle, lower = talib.BBANDS(close, 20, 2, 2)
        assert_talib(data["bollinger_20_2__upper"], upper)
        assert_talib(data["bollinger_20_2__lower"], lower)
        assert_talib(data["rsi_14"], talib.RSI(close, 14))
        macd, signal, hist = talib.MACD(close)
        assert_talib(data["macd_12_26_9__signal"], signal)
        assert_talib(data["atr_14"], talib.ATR(high, low, close, 14))
        names = [fig.name for fig in chart._figures.children]
        assert names == ["candles", "volume", "indicator-rsi_14", "indicator-macd_12_26_9", "indicator-atr_14",
                         "navigator"]
        assert not chart._message.visible
    finally:
        chart.close()


def test_the_forming_candle_moves_the_indicators_and_closing_commits_them():
    ingest = fake_ingest(None)
    closes = real_bars(rows=80)["close"].to_numpy()
    ingest.hub.publish(BARS, hub_rows([minute(i) for i in range(60)], closes[:60], [True] * 59 + [False]))
    chart = CandleChart(ingest=ingest, indicators="rsi 14, ema 10")
    chart.__panel__()
    try:
        events = sent(chart._candles)
        series = closes[:60].copy()
        assert_talib(held(chart)["rsi_14"], talib.RSI(series, 14))
        for price in (closes[60], closes[61], closes[62]):  # the forming bar moves three times
            series[-1] = price
            ingest.hub.publish(BARS, hub_rows([minute(59)], [price], [False]))
            chart.refresh()
            assert_talib(held(chart)["rsi_14"], talib.RSI(series, 14))
            assert_talib(held(chart)["ema_10"], talib.EMA(series, 10))
        assert all(isinstance(e, ColumnsPatchedEvent) and "rsi_14" in e.patches for e in events)
        # it closes, two more close and one forms: streamed, each equal to TA-Lib on the whole series
        series = np.append(series, closes[63:66])
        ingest.hub.publish(BARS, hub_rows([minute(59), minute(60), minute(61), minute(62)], series[-4:],
                                          [True, True, True, False]))
        chart.refresh()
        assert isinstance(events[-1], ColumnsStreamedEvent) and "ema_10" in events[-1].data
        assert_talib(held(chart)["rsi_14"], talib.RSI(series, 14))
        assert_talib(held(chart)["ema_10"], talib.EMA(series, 10))
    finally:
        chart.close()


def test_a_corrected_closed_bar_recomputes_the_window():
    ingest = fake_ingest(None)
    closes = real_bars(rows=50)["close"].to_numpy().copy()
    ingest.hub.publish(BARS, hub_rows([minute(i) for i in range(50)], closes, [True] * 50))
    chart = CandleChart(ingest=ingest, indicators="sma 5")
    chart.__panel__()
    try:
        closes[45] += 500.0  # a late trade corrects a closed bar
        ingest.hub.publish(BARS, hub_rows([minute(45)], closes[45:46], [True]))
        chart.refresh()
        assert_talib(held(chart)["sma_5"], talib.SMA(closes, 5))
    finally:
        chart.close()


def test_changing_the_text_changes_overlays_and_panels_and_a_bad_one_is_said(store):
    chart = CandleChart(ingest=fake_ingest(store), bars=300, indicators="ema 20")
    chart.__panel__()
    try:
        price = chart._figures.children[0]
        before = len(price.renderers)
        chart._spec_input.value = "sma 50, donchian 20, stoch"
        data = held(chart)
        assert "ema_20" not in data and "donchian_20__upper" in data
        assert_talib(data["sma_50"], talib.SMA(data["close"].to_numpy(), 50))
        k, d = talib.STOCH(data["high"].to_numpy(), data["low"].to_numpy(), data["close"].to_numpy())
        assert_talib(data["stoch_5_3_3__d"], d)
        assert len(price.renderers) == before - 1 + 1 + 4  # the EMA line went; a line and a 4-glyph channel came
        assert [f.name for f in chart._figures.children][2:-1] == ["indicator-stoch_5_3_3"]

        chart._spec_input.value = "sma 50, wobble 3"
        assert chart._message.visible and "unknown indicator 'wobble'" in chart._message.object
        assert "sma_50" in held(chart) and chart._error.visible is False  # the previous ones stay

        chart._add_select.value = "rsi"
        assert chart.indicators == "sma 50, donchian 20, stoch 5 3 3, rsi 14"
        assert not chart._message.visible and "rsi_14" in held(chart)
    finally:
        chart.close()
