"""The Exchanges page: one coin across exchanges, against a running ingest and a hand-fed hub."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from bokeh.models import ColumnDataSource

from analytics.ingest import Ingest
from analytics.metrics import LatencyHistogram
from analytics.pipeline import Hub
from analytics.schema import conform
from analytics.views.base import active_views
from analytics.views.exchanges import EXCHANGES, CrossExchange, arbitrage, basis_bp, spread_bp
from polling import poll

SYMBOLS = ["BTC-USDT", "ETH-USDT"]


@pytest.fixture
async def ingest():
    ingest = Ingest(source="simulator", store=False, symbols=SYMBOLS, rate=200, seed=11, workers=False)
    await ingest.start()
    try:
        yield ingest
    finally:
        await ingest.stop()


def has_bars(ingest, symbol, n=2, exchanges=EXCHANGES) -> bool:
    return all(len(ingest.hub.latest(("bars", ex, symbol, "1s"))) >= n for ex in exchanges)


def refreshed(view):
    """A condition that refreshes ``view`` each time it is checked."""
    def check():
        view.refresh()
        return len(view._source.data["time"]) > 0 and not view._message.visible
    return check


def last_trade_price(hub, exchange, symbol) -> float:
    """The price of the trade with the newest exchange time, the last received among ties (a bar's close)."""
    trades = hub.tail(("trades", exchange, symbol), 1000)
    order = np.lexsort((np.arange(len(trades)), trades["timestamp"].to_numpy()))
    return float(trades["price"].iloc[order[-1]])


def aligned_closes(hub, symbol, times) -> pd.DataFrame:
    """Each exchange's 1 s closes from the hub, carried forward, at ``times``: the slow, obvious way."""
    closes = pd.concat({ex: hub.latest(("bars", ex, symbol, "1s")).set_index("start")["close"] for ex in EXCHANGES},
                       axis=1).sort_index().ffill()
    return closes.reindex(times)


async def test_prices_spread_and_basis_match_the_hub(ingest):
    await poll(lambda: has_bars(ingest, "BTC-USDT", 3), what="three 1 s bars on every exchange")
    view = CrossExchange(ingest=ingest, symbol="BTC-USDT")
    view.__panel__()
    try:
        await poll(refreshed(view), what="prices on the page")
        view.refresh()  # nothing is published between this and the checks: the feed runs on this loop
        data = view._source.data
        for ex in EXCHANGES:
            assert data[ex][-1] == last_trade_price(ingest.hub, ex, "BTC-USDT"), ex
        times = pd.to_datetime(np.asarray(data["time"]), unit="ms")
        closes = aligned_closes(ingest.hub, "BTC-USDT", times)
        for ex in EXCHANGES:
            np.testing.assert_array_equal(np.asarray(data[ex]), closes[ex].to_numpy())
        high, low, median = closes.max(axis=1), closes.min(axis=1), closes.median(axis=1)
        spread = ((high - low) / ((high + low) / 2) * 1e4).where(closes.count(axis=1) >= 2)
        np.testing.assert_allclose(np.asarray(data["spread"]), spread.to_numpy(), rtol=1e-12, equal_nan=True)
        assert np.isfinite(np.asarray(data["spread"])[-1]) and np.asarray(data["spread"])[-1] > 0
        for ex in EXCHANGES:
            basis = ((closes[ex] - median) / median * 1e4).where(closes.count(axis=1) >= 2)
            np.testing.assert_allclose(np.asarray(data[f"basis_{ex}"]), basis.to_numpy(), rtol=1e-9, atol=1e-9,
                                       equal_nan=True)
        quotes = view._quotes
        assert list(quotes["exchange"]) == list(EXCHANGES)
        for i, ex in enumerate(EXCHANGES):
            latest = ingest.hub.latest(("quotes", ex, "BTC-USDT"))
            assert (quotes["bid"][i], quotes["ask"][i]) == (latest["bid"].iat[-1], latest["ask"].iat[-1])
        assert f"{quotes['bid'][0]:,.2f}" in view._board.text
        assert "Arbitrage: buy on" in view._board.text or "No arbitrage: the best bid" in view._board.text
        view.reference = "KRAKEN"  # basis against one exchange: that exchange's basis is 0 wherever it has a price
        view.refresh()
        basis = np.asarray(view._source.data["basis_KRAKEN"])
        assert np.nanmax(np.abs(basis)) == 0 and "KRAKEN" in view._basis.title.text
        assert view._error.visible is False
    finally:
        view.close()


async def test_streaming_sends_only_new_rows(ingest, monkeypatch):
    calls = []
    for method in ("stream", "patch"):
        original = getattr(ColumnDataSource, method)

        def spy(self, new, *args, _original=original, _method=method, **kwargs):
            calls.append((self, _method, new, kwargs.get("rollover")))
            return _original(self, new, *args, **kwargs)

        monkeypatch.setattr(ColumnDataSource, method, spy)
    await poll(lambda: has_bars(ingest, "BTC-USDT", 2), what="1 s bars")
    view = CrossExchange(ingest=ingest, symbol="BTC-USDT", window=120)
    view.__panel__()
    try:
        await poll(refreshed(view), what="prices on the page")
        source = view._source
        data, first = source.data, np.asarray(source.data["time"]).copy()
        calls.clear()
        await poll(lambda: view.refresh() or len(source.data["time"]) >= len(first) + 3, what="three more seconds")
        assert source.data is data  # never replaced: only streamed and patched
        streams = [new for cds, kind, new, _ in calls if cds is source and kind == "stream"]
        patches = [new for cds, kind, new, _ in calls if cds is source and kind == "patch"]
        sent = np.concatenate([np.asarray(new["time"]) for new in streams])
        assert sent[0] > first[-1] and np.all(np.diff(sent) > 0)  # each second sent once, after the old ones
        assert all(rollover == 120 for cds, kind, _, rollover in calls if cds is source and kind == "stream")
        assert len(source.data["time"]) == len(first) + len(sent)
        assert all(set(p) == set(data) - {"time"} for p in patches)
        assert ingest.screen_latency.count > 0 and ingest.screen_latency.quantile(0.99) < 5  # receipt→session
        for patch in patches:  # only the newest rows change (the forming second, a late trade)
            (where, values), = patch["spread"]
            assert where.start >= len(first) - 3 and where.stop - where.start == len(values) <= 3
        view.refresh()
        closes = aligned_closes(ingest.hub, "BTC-USDT", pd.to_datetime(np.asarray(source.data["time"]), unit="ms"))
        for ex in EXCHANGES:  # what was streamed and patched adds up to the hub's bars
            np.testing.assert_array_equal(np.asarray(source.data[ex]), closes[ex].to_numpy())
    finally:
        view.close()


async def test_bad_symbols_give_one_line_and_the_page_recovers(ingest):
    before = ingest.hub.subscribers
    view = CrossExchange(ingest=ingest, symbol="DOGE-USDT")
    view.__panel__()
    try:
        assert view._message.visible and "DOGE-USDT is not traded here" in view._message.object
        assert "BTC-USDT, ETH-USDT" in view._message.object and not view._error.visible
        assert ingest.hub.subscribers == before and len(view._source.data["time"]) == 0
        view.symbol = "ETH-USDT"
        await poll(refreshed(view), what="ETH-USDT prices")
        assert view._selector.value == "ETH-USDT" and view._selector.options == SYMBOLS
        await poll(lambda: has_bars(ingest, "BTC-USDT"), what="BTC-USDT bars on every exchange")
        view._selector.value = "BTC-USDT"  # the selector re-subscribes and reloads
        assert view.symbol == "BTC-USDT"
        await poll(refreshed(view), what="BTC-USDT prices")
        assert abs(view._source.data["BINANCE"][-1] - last_trade_price(ingest.hub, "BINANCE", "BTC-USDT")) < 1e3
        view.symbol = "not a coin"
        assert "not a coin is not traded here" in view._message.object and not view._error.visible
        assert len(view._source.data["time"]) == 0 and ingest.hub.subscribers == before
    finally:
        view.close()


async def test_no_data_yet_then_a_coin_on_one_exchange():
    ingest = Ingest(source="simulator", store=False, exchanges=["BINANCE"], symbols=["BTC-USDT"], rate=200,
                    workers=False)
    view = CrossExchange(ingest=ingest, symbol="BTC-USDT")
    view.__panel__()
    try:
        assert "Waiting for the feed to start" in view._message.object  # not started: no markets yet
        await ingest.start()
        view.refresh()
        if not len(view._source.data["time"]):
            assert "Waiting for BTC-USDT trades from BINANCE" in view._message.object
        await poll(lambda: view.refresh() or len(view._source.data["time"]) > 1, what="BINANCE prices")
        assert view._message.object == "BTC-USDT is only on BINANCE here: nothing to compare it with."
        data = view._source.data
        assert np.isfinite(data["BINANCE"][-1]) and np.isnan(data["KRAKEN"]).all()
        assert np.isnan(data["spread"]).all() and np.isnan(data["basis_BINANCE"]).all()
        assert view._lines["BINANCE"].visible and not view._lines["KRAKEN"].visible
        assert "at least two exchanges" in view._board.text and not view._error.visible
    finally:
        view.close()
        await ingest.stop()


async def test_close_releases_the_cursors(ingest):
    before, views = ingest.hub.subscribers, active_views()
    first, second = CrossExchange(ingest=ingest), CrossExchange(ingest=ingest)
    first.__panel__(), second.__panel__()
    opened = ingest.hub.subscribers - before
    assert opened == 3 * len(EXCHANGES) and active_views() == views + 2  # one shared set of cursors per coin
    second.symbol = "ETH-USDT"
    assert ingest.hub.subscribers == before + 2 * opened
    first.close()
    assert ingest.hub.subscribers == before + opened and active_views() == views + 1
    second.close()
    second.close()
    assert ingest.hub.subscribers == before and active_views() == views


def bars(exchange, seconds, closes) -> pd.DataFrame:
    start = pd.to_datetime(np.asarray(seconds) * 10**9 + 1_700_000_000 * 10**9)
    n = len(start)
    return conform("bars", pd.DataFrame({
        "exchange": exchange, "symbol": "BTC-USDT", "timeframe": "1s", "start": start, "open": closes,
        "high": closes, "low": closes, "close": np.asarray(closes, float), "volume": 1.0, "vwap": closes,
        "trades": np.ones(n, np.int64), "closed": False}))


async def test_patches_and_streams_against_a_hand_fed_hub(monkeypatch):
    hub = Hub(maxlen=1000)
    ingest = SimpleNamespace(hub=hub, markets={ex: ["BTC-USDT"] for ex in EXCHANGES},
                             screen_latency=LatencyHistogram())
    hub.publish(("bars", "BINANCE", "BTC-USDT", "1s"), bars("BINANCE", [0, 1, 2], [100.0, 101.0, 102.0]))
    hub.publish(("bars", "KRAKEN", "BTC-USDT", "1s"), bars("KRAKEN", [0, 2], [100.5, 101.0]))
    calls = []
    for method in ("stream", "patch"):
        monkeypatch.setattr(ColumnDataSource, method,
                            lambda self, new, *args, _m=method, **kw: calls.append((_m, new, kw.get("rollover"))))
    view = CrossExchange(ingest=ingest, window=60)  # no await below: the view's own timer never runs
    view.__panel__()
    data = view._source.data
    np.testing.assert_array_equal(data["BINANCE"], [100.0, 101.0, 102.0])
    np.testing.assert_array_equal(data["KRAKEN"], [100.5, 100.5, 101.0])  # carried forward over second 1
    assert np.isnan(data["BITFINEX"]).all() and not calls
    np.testing.assert_allclose(data["spread"], [0.5 / 100.25 * 1e4, 0.5 / 100.75 * 1e4, 1 / 101.5 * 1e4])
    np.testing.assert_allclose(data["basis_KRAKEN"], [0.25 / 100.25 * 1e4, -0.25 / 100.75 * 1e4, -0.5 / 101.5 * 1e4])

    view.refresh()
    assert not calls  # the hub did not change: nothing sent
    hub.publish(("bars", "BINANCE", "BTC-USDT", "1s"), bars("BINANCE", [2, 3], [102.5, 103.0]))  # forming, new
    view.refresh()
    assert [kind for kind, _, _ in calls] == ["patch", "stream"]
    (where, values), = calls[0][1]["BINANCE"]
    assert (where, list(values)) == (slice(2, 3), [102.5])
    assert list(calls[1][1]["time"]) == [(1_700_000_000 + 3) * 1e3] and calls[1][2] == 60
    assert list(calls[1][1]["KRAKEN"]) == [101.0]

    calls.clear()
    hub.publish(("bars", "KRAKEN", "BTC-USDT", "1s"), bars("KRAKEN", [1], [100.7]))  # a late bar of an older second
    view.refresh()
    (where, values), = calls[0][1]["KRAKEN"]  # patched from the changed row on
    assert [kind for kind, _, _ in calls] == ["patch"] and where == slice(1, 4) and list(values) == [100.7, 101, 101]

    calls.clear()
    hub.publish(("bars", "BITFINEX", "BTC-USDT", "1s"), bars("BITFINEX", [-1], [99.0]))  # a second nobody had
    view.refresh()
    assert not calls and view._source.data is not data  # rows cannot be inserted in place: reloaded
    np.testing.assert_array_equal(view._source.data["BITFINEX"], [99.0] * 5)
    view.close()


@pytest.mark.parametrize("prices, spread, basis, against_first", [
    ([100.0, 101.0, 102.0], 2 / 101 * 1e4, [-1 / 101 * 1e4, 0.0, 1 / 101 * 1e4], [0.0, 100.0, 200.0]),
    ([100.0, np.nan, 102.0], 2 / 101 * 1e4, [-1 / 101 * 1e4, np.nan, 1 / 101 * 1e4], [0.0, np.nan, 200.0]),
    ([100.0, np.nan, np.nan], np.nan, [np.nan] * 3, [np.nan] * 3),
    ([np.nan, np.nan, np.nan], np.nan, [np.nan] * 3, [np.nan] * 3),
], ids=["three", "two", "one", "none"])
def test_spread_and_basis_per_row(prices, spread, basis, against_first):
    prices = np.array([prices, prices[::-1]])  # the column order does not matter but for the reference
    np.testing.assert_allclose(spread_bp(prices), [spread, spread], equal_nan=True)
    np.testing.assert_allclose(basis_bp(prices), [basis, basis[::-1]], equal_nan=True, atol=1e-12)
    np.testing.assert_allclose(basis_bp(prices[:1], 0), [against_first], equal_nan=True, atol=1e-12)


@pytest.mark.parametrize("bids, asks, text", [
    ([100.0, 100.05], [100.1, 100.15], "No arbitrage: the best bid (B 100.05) is 5.0 bp below the best ask "
                                       "elsewhere (A 100.10)."),
    ([100.0, 100.3, 99.0], [100.1, 100.4, 100.2], "Arbitrage: buy on A at 100.10, sell on B at 100.30: +20.0 bp "
                                                  "before fees."),
    ([100.0, np.nan], [100.1, np.nan], "Waiting for quotes from at least two exchanges."),
], ids=["none", "crossed", "one-quote"])
def test_arbitrage_in_plain_words(bids, asks, text):
    assert arbitrage(["A", "B", "C"][:len(bids)], bids, asks) == text
