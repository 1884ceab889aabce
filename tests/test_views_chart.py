"""The chart page's Viewer and its history module, on real BTC bars and trades, without a browser."""

import asyncio
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bokeh.document import Document
from bokeh.document.events import ColumnDataChangedEvent, ColumnsPatchedEvent, ColumnsStreamedEvent

from analytics import schema
from analytics.ingest import Ingest
from analytics.metrics import LatencyHistogram
from analytics.pipeline import Hub
from analytics.storage import StoreError, TickStore
from analytics.views.base import active_views
from analytics.views.chart import CandleChart
from analytics.views.history import merge_bars, minmax_indices, overview_columns

pytestmark = pytest.mark.filterwarnings("ignore:Passing a BlockManager:DeprecationWarning")
DATA = Path(__file__).parents[2] / "shared" / "data"
END = pd.Timestamp("2024-06-01 12:00")  # the newest stored bar's start
BARS = ("bars", "BINANCE", "BTC-USDT", "1m")


def real_bars(end=END, symbol="BTC-USDT", rows=None) -> pd.DataFrame:
    """The 45,031 one-minute BTC perpetual bars of shared/data, moved to end at ``end``, in the bars schema."""
    raw = pd.read_csv(DATA / "bars" / "btc-perp-20211231-20220201_1m.csv.gz", nrows=rows)
    start = pd.to_datetime(raw["timestamp"])
    return schema.conform("bars", pd.DataFrame({
        "exchange": "BINANCE", "symbol": symbol, "timeframe": "1m", "start": start + (end - start.iloc[-1]),
        "open": raw["open"], "high": raw["high"], "low": raw["low"], "close": raw["close"],
        "volume": raw["volume"] / raw["close"], "vwap": (raw["high"] + raw["low"] + raw["close"]) / 3,
        "trades": (raw["volume"] // 1000).astype(np.int64), "closed": True,
    }))


def hub_rows(starts, close, closed, timeframe="1m") -> pd.DataFrame:
    """Bar rows as the pipeline publishes them."""
    close = np.asarray(close, float)
    return schema.conform("bars", pd.DataFrame({
        "exchange": "BINANCE", "symbol": "BTC-USDT", "timeframe": timeframe, "start": pd.to_datetime(starts),
        "open": close - 5, "high": close + 10, "low": close - 10, "close": close, "volume": 1.5, "vwap": close,
        "trades": 7, "closed": closed,
    }))


def minute(n: int) -> pd.Timestamp:
    return END + pd.Timedelta(minutes=n)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = TickStore(f"lmdb://{tmp_path_factory.mktemp('chart')}/arctic")
    store.write("bars", real_bars())
    return store


def fake_ingest(store, hub=None) -> types.SimpleNamespace:
    """What a CandleChart reads of an Ingest, with a hub the test publishes to."""
    return types.SimpleNamespace(hub=hub or Hub(), store=store, markets={"BINANCE": ["BTC-USDT", "ETH-USDT"]},
                                 screen_latency=LatencyHistogram())


def sent(source) -> list:
    """Record what a ColumnDataSource sends to a browser: its document's events about it."""
    events = []
    Document().add_root(source)
    source.document.on_change(lambda event: events.append(event) if getattr(event, "model", None) is source else None)
    return events


def x_of(*times) -> list:
    return [pd.Timestamp(t).value / 1e6 for t in times]


# -- downsampling ------------------------------------------------------------------------
def reference_minmax(y, points):
    """Slow, obvious min-max: per bucket the positions of its min and max, plus both ends."""
    buckets = points // 2 - 1
    size = -(-len(y) // buckets)
    keep = {0, len(y) - 1}
    for a in range(0, len(y), size):
        chunk = y[a:a + size]
        keep |= {a + int(np.argmin(chunk)), a + int(np.argmax(chunk))}
    return np.array(sorted(keep))


@pytest.mark.parametrize("points", [1500, 2000, 4])
def test_minmax_keeps_each_buckets_extremes_and_both_ends(points):
    close = real_bars()["close"].to_numpy()[:43_200]
    kept = minmax_indices(close, points)
    assert 0.95 * points <= len(kept) <= points
    np.testing.assert_array_equal(kept, reference_minmax(close, points))
    assert close[kept].min() == close.min() and close[kept].max() == close.max()


def test_minmax_leaves_short_series_and_skips_nans():
    assert minmax_indices(np.arange(10.0), 1500).tolist() == list(range(10))
    assert minmax_indices(np.arange(10.0), 0).tolist() == list(range(10))
    y = np.array([1.0, np.nan, 5.0, -2.0, np.nan, 3.0, 0.0, 9.0, 4.0, 2.0])
    kept = minmax_indices(y, 6)
    assert {0, 9, 3, 7} <= set(kept.tolist()) and not np.isnan(y[kept[1:-1]]).any()
    with pytest.raises(ValueError, match="at least 4"):
        minmax_indices(y, 3)


def test_overview_of_43200_bars_is_about_the_target_and_spans_them():
    bars = real_bars().set_index("start").iloc[-43_200:]
    line = overview_columns(bars, 1500)
    assert 1400 <= len(line["x"]) <= 1500
    assert line["x"][0] == bars.index[0].value / 1e6 and line["x"][-1] == bars.index[-1].value / 1e6


def test_merge_lets_hub_rows_win_by_start():
    stored = real_bars(rows=5).set_index("start")[["open", "high", "low", "close", "volume", "vwap", "trades",
                                                    "closed"]]
    live = hub_rows([stored.index[-1], stored.index[-1] + pd.Timedelta("1min")], [1.0, 2.0], [True, False])
    merged = merge_bars(stored, live.set_index("start")[stored.columns])
    assert len(merged) == 6 and merged["close"].tolist()[-2:] == [1.0, 2.0]
    assert merged.index.is_monotonic_increasing


# -- the Viewer ---------------------------------------------------------------------------
def test_opens_with_the_stored_history_merged_with_the_hubs_bars(store):
    ingest = fake_ingest(store)
    ingest.hub.publish(BARS, hub_rows([minute(0), minute(1), minute(2)], [100.0, 101.0, 102.0], [True, True, False]))
    chart = CandleChart(ingest=ingest, bars=500)
    chart.__panel__()
    try:
        data = chart._candles.data
        assert len(data["x"]) == 500
        assert list(data["x"][-3:]) == x_of(minute(0), minute(1), minute(2))
        assert data["close"][-3:].tolist() == [100.0, 101.0, 102.0]  # the hub's bar replaces the stored one
        assert data["close"][-4] == real_bars()["close"].iloc[-2]
        assert "BTC-USDT · BINANCE · 1m · 45,033 bars" in chart._status.text
        line = chart._line.data
        assert 1400 <= len(line["x"]) <= 1500 and line["x"][-1] == x_of(minute(2))[0]
        assert line["x"][0] == real_bars()["start"].iloc[0].value / 1e6
        assert not chart._message.visible and not chart._error.visible
        assert chart._x_range.end > data["x"][-1] > data["x"][-120] > chart._x_range.start
    finally:
        chart.close()


def test_each_tick_sends_only_new_bars_and_the_forming_one():
    ingest = fake_ingest(None)
    ingest.hub.publish(BARS, hub_rows([minute(i) for i in range(5)], np.arange(5) + 100.0, [True] * 4 + [False]))
    chart = CandleChart(ingest=ingest)
    chart.__panel__()
    try:
        events = sent(chart._candles)
        chart.refresh()
        assert events == []  # nothing new: nothing sent
        ingest.hub.publish(BARS, hub_rows([minute(4)], [104.5], [False]))  # the forming bar moves
        chart.refresh()
        assert [type(e) for e in events] == [ColumnsPatchedEvent]
        assert chart._candles.data["close"][-1] == 104.5 and len(chart._candles.data["x"]) == 5
        end = chart._x_range.end
        ingest.hub.publish(BARS, hub_rows([minute(4), minute(5), minute(6), minute(7)], [105.0, 106.0, 107.0, 108.0],
                                          [True, True, True, False]))
        chart.refresh()
        assert [type(e) for e in events[1:]] == [ColumnsPatchedEvent, ColumnsStreamedEvent]
        assert len(events[2].data["x"]) == 3 and len(chart._candles.data["x"]) == 8
        assert chart._candles.data["close"].tolist()[-4:] == [105.0, 106.0, 107.0, 108.0]
        assert chart._x_range.end == end + 3 * 60_000  # the view follows the newest bar
        assert not any(isinstance(e, ColumnDataChangedEvent) for e in events)
        assert "8 bars" in chart._status.text
    finally:
        chart.close()


def test_the_candles_keep_at_most_bars_rows():
    ingest = fake_ingest(None)
    ingest.hub.publish(BARS, hub_rows([minute(i) for i in range(30)], np.arange(30.0), [True] * 30))
    chart = CandleChart(ingest=ingest, bars=20)
    chart.__panel__()
    try:
        assert len(chart._candles.data["x"]) == 20
        ingest.hub.publish(BARS, hub_rows([minute(30), minute(31)], [30.0, 31.0], [True, False]))
        chart.refresh()
        assert len(chart._candles.data["x"]) == 20 and chart._candles.data["close"][-1] == 31.0
    finally:
        chart.close()


def test_trades_tape_streams_the_newest_trades_and_records_latency():
    ingest = fake_ingest(None)
    key = ("trades", "BINANCE", "BTC-USDT")
    raw = pd.read_csv(DATA / "trades" / "btcusdt-trades.csv.gz", nrows=60)
    now = pd.Timestamp.now("UTC").tz_localize(None)
    trades = schema.conform("trades", pd.DataFrame({
        "exchange": "BINANCE", "symbol": "BTC-USDT", "timestamp": pd.to_datetime(raw["timestamp"]).dt.tz_localize(None),
        "receipt_timestamp": now, "price": raw["price"], "amount": raw["quantity"],
        "side": np.where(raw["buyer_maker"], "sell", "buy"), "trade_id": raw["trade_id"]}))
    ingest.hub.publish(key, trades.iloc[:30])
    chart = CandleChart(ingest=ingest, tape=10)
    chart.__panel__()
    try:
        tape = chart._trades.data
        assert list(tape["price"]) == trades["price"].iloc[20:30].tolist()  # only the newest, oldest first
        assert set(tape["color"]) <= {"#26a69a", "#ef5350"}
        ingest.hub.publish(key, trades.iloc[30:33])
        events = sent(chart._trades)
        chart.refresh()
        assert [len(e.data["price"]) for e in events] == [3]
        assert list(chart._trades.data["price"]) == trades["price"].iloc[23:33].tolist()
        assert ingest.screen_latency.count == 13
    finally:
        chart.close()


def test_depth_shows_cumulative_sizes_and_updates_only_when_the_book_changed():
    ingest = fake_ingest(None)
    key = ("depth", "BINANCE", "BTC-USDT")
    now = pd.Timestamp("2024-06-01 12:00:00.5")
    book = schema.conform("depth", pd.DataFrame({
        "exchange": "BINANCE", "symbol": "BTC-USDT", "timestamp": now, "receipt_timestamp": now,
        "side": ["bid"] * 3 + ["ask"] * 3, "level": [0, 1, 2] * 2,
        "price": [99.0, 98.0, 97.0, 101.0, 102.0, 103.0], "size": [1.0, 2.0, 3.0, 0.5, 0.5, 1.0]}))
    ingest.hub.publish(key, book.assign(timestamp=now - pd.Timedelta("1s"), price=book["price"] + 50))  # older
    ingest.hub.publish(key, book)
    chart = CandleChart(ingest=ingest)
    chart.__panel__()
    try:
        levels = chart._levels.data
        assert levels["price"].tolist() == [97.0, 98.0, 99.0, 101.0, 102.0, 103.0]
        assert levels["cum"].tolist() == [6.0, 3.0, 1.0, 0.5, 1.0, 2.0]
        assert chart._bid_area.data["x"].tolist() == [97.0, 97.0, 98.0, 98.0, 99.0]
        assert chart._bid_area.data["y"].tolist() == [6.0, 3.0, 3.0, 1.0, 1.0]
        assert chart._ask_area.data["y"].tolist() == [0.5, 0.5, 1.0, 1.0, 2.0]
        assert "99" in chart._quote.text and "101" in chart._quote.text and "Spread 2 (" in chart._quote.text
        events = sent(chart._levels)
        chart.refresh()
        ingest.hub.publish(key, book.assign(timestamp=now + pd.Timedelta("1s")))  # the same book again
        chart.refresh()
        assert events == []
        ingest.hub.publish(key, book.assign(timestamp=now + pd.Timedelta("2s"), size=book["size"] * 2))
        chart.refresh()
        assert len(events) == 1 and chart._levels.data["cum"].tolist() == [12.0, 6.0, 2.0, 1.0, 2.0, 4.0]
    finally:
        chart.close()


@pytest.mark.parametrize("params, text", [
    ({"symbol": "NOPE-USDT"}, "No market 'NOPE-USDT' on BINANCE: choose BTC-USDT, ETH-USDT"),
    ({"exchange": "FOO"}, "Unknown exchange 'FOO': choose BINANCE"),
    ({"timeframe": "3m"}, "Unknown timeframe '3m': choose 1s, 1m, 5m, 1h"),
], ids=["symbol", "exchange", "timeframe"])
def test_bad_input_gives_one_line_and_the_page_keeps_going(store, params, text):
    ingest = fake_ingest(store)
    chart = CandleChart(ingest=ingest, **params)
    chart.__panel__()
    try:
        assert chart._message.visible and chart._message.object.startswith(text)
        assert "no data" in chart._status.text and len(chart._candles.data["x"]) == 0
        chart.refresh()
        assert not chart._error.visible and ingest.hub.subscribers == 0
        chart.param.update(exchange="BINANCE", symbol="BTC-USDT", timeframe="1m")  # a good choice recovers
        assert not chart._message.visible and len(chart._candles.data["x"]) == 1000
    finally:
        chart.close()


def test_no_store_an_empty_store_and_no_bars_yet_are_said(tmp_path):
    chart = CandleChart(ingest=fake_ingest(None))
    chart.__panel__()
    assert chart._message.object.startswith("No 1m bars of BTC-USDT on BINANCE yet")
    chart.ingest.hub.publish(BARS, hub_rows([minute(0)], [1.0], [False]))
    chart.refresh()
    assert not chart._message.visible and len(chart._candles.data["x"]) == 1
    chart.param.update(timeframe="5m")
    assert chart._message.object.startswith("No 5m bars")
    chart.close()
    ingest = fake_ingest(TickStore(f"lmdb://{tmp_path}/empty"))
    ingest.hub.publish(BARS, hub_rows([minute(0)], [1.0], [False]))
    chart = CandleChart(ingest=ingest)
    chart.__panel__()
    assert chart._message.object.startswith("No stored 1m history of BTC-USDT on BINANCE: live bars only")
    assert len(chart._candles.data["x"]) == 1
    chart.close()


def test_a_failing_store_is_said_and_the_live_bars_go_on(tmp_path, monkeypatch):
    store = TickStore(f"lmdb://{tmp_path}/broken")

    def broken(kind="trades"):
        raise StoreError("the disk is gone\nand more")

    monkeypatch.setattr(store, "symbols", broken)
    ingest = fake_ingest(store)
    ingest.hub.publish(BARS, hub_rows([minute(0)], [1.0], [False]))
    chart = CandleChart(ingest=ingest)
    chart.__panel__()
    try:
        assert chart._message.object == "History unavailable: the disk is gone"
        assert chart._message.alert_type == "warning" and not chart._error.visible
        ingest.hub.publish(BARS, hub_rows([minute(0), minute(1)], [2.0, 3.0], [True, False]))
        chart.refresh()
        assert chart._candles.data["close"].tolist() == [2.0, 3.0]
    finally:
        chart.close()


def test_changing_the_timeframe_reloads_and_resubscribes(store):
    ingest = fake_ingest(store)
    ingest.hub.publish(("bars", "BINANCE", "BTC-USDT", "5m"),
                       hub_rows([minute(0), minute(5)], [10.0, 11.0], [True, False], timeframe="5m"))
    chart = CandleChart(ingest=ingest)
    chart.__panel__()
    try:
        assert ingest.hub.subscribers == 2 and len(chart._candles.data["x"]) == 1000
        chart._timeframe_buttons.value = "5m"  # as the user clicks
        assert chart.timeframe == "5m" and ingest.hub.subscribers == 2
        assert chart._candles.data["close"].tolist() == [10.0, 11.0]
        assert chart._body.glyph.width == pytest.approx(0.7 * 300_000)
        assert "5m · 2 bars" in chart._status.text
        chart._symbol_select.value = "ETH-USDT"
        assert chart._message.object.startswith("No 5m bars of ETH-USDT")
        chart.timeframe = "1m"
        chart.symbol = "BTC-USDT"
        assert len(chart._candles.data["x"]) == 1000 and not chart._message.visible
    finally:
        chart.close()
    assert ingest.hub.subscribers == 0


def test_moving_the_view_into_history_loads_that_window_then_back_to_live(store):
    ingest = fake_ingest(store)
    ingest.hub.publish(BARS, hub_rows([minute(1)], [50_000.0], [False]))
    chart = CandleChart(ingest=ingest, bars=500)
    chart.__panel__()
    try:
        live_view = (chart._x_range.start, chart._x_range.end)
        day = 86_400_000
        start, end = x_of(END)[0] - 10 * day, x_of(END)[0] - 10 * day + 3_600_000
        chart._x_range.update(start=start, end=end)  # as the navigator's range tool does
        chart.refresh()
        x = chart._candles.data["x"]
        assert len(x) == 120 and x[0] == start - 1_800_000 and x[-1] < end + 1_800_000
        assert not chart._message.visible
        ingest.hub.publish(BARS, hub_rows([minute(1), minute(2)], [50_001.0, 50_002.0], [True, False]))
        chart.refresh()
        assert chart._candles.data["x"][-1] <= end + 1_800_000  # the window stays put
        assert chart._line.data["close"][-1] == 50_002.0  # the navigator goes on
        chart._x_range.update(start=start - 30 * day, end=end)
        chart.refresh()
        assert len(chart._candles.data["x"]) == 500 and chart._candles.data["x"][0] > start - 30 * day
        assert chart._message.object == "The chart holds 500 candles: zoom in to see all of this range."
        chart._x_range.update(start=live_view[0] + 60_000, end=live_view[1] + 60_000)
        chart.refresh()
        assert chart._candles.data["close"][-1] == 50_002.0 and len(chart._candles.data["x"]) == 500
        assert not chart._message.visible
        ingest.hub.publish(BARS, hub_rows([minute(3)], [50_003.0], [False]))
        chart.refresh()
        assert chart._candles.data["close"][-1] == 50_003.0  # live again
        chart._x_range.update(start=start, end=chart._x_range.end)  # zoomed out from the live edge
        chart.refresh()
        assert chart._live and chart._candles.data["close"][-1] == 50_003.0 and chart._message.visible
    finally:
        chart.close()


async def test_follows_a_running_ingest_and_close_releases_its_cursors(tmp_path):
    uri = f"lmdb://{tmp_path}/arctic"
    newest = pd.Timestamp.now("UTC").tz_localize(None).floor("1min") - pd.Timedelta("2min")
    TickStore(uri).write("bars", real_bars(end=newest, rows=3000))
    ingest = Ingest(source="simulator", store=uri, symbols=["BTC-USDT"], rate=200, workers=False)
    await ingest.start()
    try:
        before = ingest.hub.subscribers
        chart = CandleChart(ingest=ingest, timeframe="1s", rate=20)
        chart.__panel__()
        assert active_views() >= 1 and ingest.hub.subscribers == before + 2
        deadline = time.monotonic() + 20
        while len(chart._candles.data["x"]) < 3 or not len(chart._trades.data["price"]) or \
                not len(chart._levels.data["price"]):
            assert time.monotonic() < deadline, "the chart did not follow the live feed"
            await asyncio.sleep(0.05)
        assert ingest.screen_latency.count > 0 and not chart._error.visible
        chart.timeframe = "1m"
        x = chart._candles.data["x"]
        live = int((x > x_of(newest)[0]).sum())  # bars the ingest made since it started
        assert len(x) == 1000 and x_of(newest)[0] in x and 1 <= live <= 2  # stored history, then the live bars
        assert chart._status.text.endswith(f"{3000 + live:,} bars")
        views = active_views()
        chart.close()
        assert ingest.hub.subscribers == before and active_views() == views - 1
    finally:
        await ingest.stop()
