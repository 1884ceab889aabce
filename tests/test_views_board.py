"""The price board: its numbers against the hub, its cells, and a session that patches only what changed."""

import gc
import re
import time
import weakref
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analytics.ingest import Ingest
from analytics.pipeline import Hub
from analytics.schema import BAR_COLUMNS
from analytics.storage import TickStore
from analytics.views import board as board_module
from analytics.views.base import active_views
from analytics.views.board import (WAITING, BoardState, PriceBoard, board_frame, change_cell, price_decimals,
                                   shared_board, sparkline)
from polling import poll

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
EXCHANGES = ["BINANCE", "BITFINEX", "KRAKEN"]
MINUTE = pd.Timedelta(1, "min")


def every_market_has(hub) -> bool:
    return all(hub.last_seq((kind, e, s)) and hub.last_seq(("bars", e, s, "1m"))
               for kind in ("trades", "quotes") for e in EXCHANGES for s in SYMBOLS)


@pytest.fixture
async def ingest():
    ingest = Ingest(source="simulator", store=False, symbols=SYMBOLS, rate=200, workers=False, seed=3)
    await ingest.start()
    try:
        await poll(lambda: every_market_has(ingest.hub), 30, "trades, quotes and bars of every market")
        yield ingest
    finally:
        await ingest.stop()


def quiet_board(ingest, **params) -> PriceBoard:
    """A board shown once, with a timer too slow to tick during a test (the test calls refresh)."""
    board = PriceBoard(ingest=ingest, rate=0.1, **params)
    board.__panel__()
    return board


# -- the numbers ------------------------------------------------------------------------
async def test_board_frame_is_the_newest_trade_and_quote_of_each_market_and_the_change_since_start(ingest):
    hub = ingest.hub
    before = {(k, e, s): hub.last_seq((k, e, s)) for k in ("trades", "quotes") for e in EXCHANGES for s in SYMBOLS}
    frame = board_frame(hub)
    assert sorted(frame.index) == sorted((s, e) for s in SYMBOLS for e in EXCHANGES)
    firsts = {(e, s): hub.latest(("bars", e, s, "1m"))["start"].iloc[0] for e in EXCHANGES for s in SYMBOLS}
    since = max(firsts.values())
    assert frame.attrs["since"] == since and frame.attrs["basis"] == f"since {since:%H:%M} UTC"
    for (symbol, exchange), row in frame.iterrows():
        trades, quotes = ("trades", exchange, symbol), ("quotes", exchange, symbol)
        assert before[trades] <= row.trade_seq <= hub.last_seq(trades)  # the newest when it was read
        trade = hub.read(trades, row.trade_seq - 1)[1].loc[row.trade_seq]
        assert row.price == trade.price and row.timestamp == trade.timestamp
        assert row.receipt_timestamp == trade.receipt_timestamp
        assert before[quotes] <= row.quote_seq <= hub.last_seq(quotes)
        quote = hub.read(quotes, row.quote_seq - 1)[1].loc[row.quote_seq]
        assert row.spread_bp == pytest.approx(1e4 * (quote.ask - quote.bid) / ((quote.ask + quote.bid) / 2))
        bars = hub.latest(("bars", exchange, symbol, "1m"))
        assert row.reference == bars.loc[bars["start"] >= since, "open"].iloc[0]
        assert row.change == pytest.approx(trade.price / row.reference - 1)


def synthetic_hub(now: pd.Timestamp, minutes: int, markets: dict) -> Hub:
    """1-minute bars (open = close = a price path on the tick of ``price``) for ``minutes`` up to ``now``'s,
    a trade at the last price and a quote one tick under it for each market."""
    hub = Hub()
    starts = pd.date_range(end=now.floor("min"), periods=minutes, freq="min")
    for (exchange, symbol), price in markets.items():
        decimals = max(price_decimals(price), 2)
        path = np.round(price * (1 + 0.001 * np.arange(minutes)), decimals)
        bars = pd.DataFrame({c: np.zeros(minutes, dtype=t) if t != object else np.full(minutes, "", dtype=object)
                             for c, t in BAR_COLUMNS.items()})
        bars = bars.assign(exchange=exchange, symbol=symbol, timeframe="1m", start=starts, open=path, close=path)
        hub.publish(("bars", exchange, symbol, "1m"), bars)
        hub.publish(("trades", exchange, symbol), pd.DataFrame(
            {"price": [path[-1]], "timestamp": [now], "receipt_timestamp": [now + pd.Timedelta(5, "ms")]}))
        hub.publish(("quotes", exchange, symbol), pd.DataFrame({"bid": [path[-1] - 10**-decimals], "ask": [path[-1]]}))
    return hub


def test_the_change_is_over_24_hours_once_the_history_reaches_back_that_far():
    now = pd.Timestamp("2024-05-01 12:30:15")
    markets = {("BINANCE", "BTC-USDT"): 65_000.0, ("KRAKEN", "BTC-USDT"): 65_010.0}
    frame = board_frame(synthetic_hub(now, 25 * 60, markets), now=now)
    since = (now - pd.Timedelta(24, "h")).floor("min")
    assert frame.attrs == {"basis": "24h", "since": since}
    for (symbol, exchange), row in frame.iterrows():
        # the bar 24 h before now's minute is the 60th of 1,500 (the last one starts at now's minute)
        assert row.reference == pytest.approx(markets[(exchange, symbol)] * (1 + 0.001 * 59))
        assert row.change == pytest.approx(row.price / row.reference - 1)
        assert row.change == pytest.approx((1 + 0.001 * 1499) / (1 + 0.001 * 59) - 1)

    short = board_frame(synthetic_hub(now, 90, markets), now=now)
    assert short.attrs["basis"] == f"since {now.floor('min') - 89 * MINUTE:%H:%M} UTC"
    assert (short["reference"] == short["reference"].groupby(level="exchange").transform("first")).all()


async def test_stored_bars_give_the_24_hour_change_before_the_hub_holds_a_day():
    now = pd.Timestamp.now().floor("s")
    markets = {("BINANCE", "ETH-USDT"): 3_400.0}
    hub = synthetic_hub(now, 30, markets)
    store = TickStore("mem://")
    old = pd.date_range(end=now.floor("min") - 30 * MINUTE, periods=24 * 60, freq="min")
    stored = pd.DataFrame({"exchange": "BINANCE", "symbol": "ETH-USDT", "timeframe": "1m", "start": old,
                           "open": 3_000.0, "high": 3_000.0, "low": 3_000.0, "close": 3_000.0, "volume": 1.0,
                           "vwap": 3_000.0, "trades": 1, "closed": True}).astype(BAR_COLUMNS)
    store.write("bars", stored)
    state = BoardState(hub, store)
    state.update()
    assert state.basis.startswith("since")  # the hub alone holds 30 minutes
    await poll(lambda: state.update() and state.basis == "24h", 10, "the stored day to be merged")
    row = state.frame.loc[("ETH-USDT", "BINANCE")]
    assert row.reference == 3_000.0
    assert state.cells["ETH-USDT"][2] == change_cell(row.price / 3_000.0 - 1) and "▲" in state.cells["ETH-USDT"][2]


# -- the cells ----------------------------------------------------------------------------
def test_prices_get_the_decimals_of_their_coin_and_changes_their_colour():
    now = pd.Timestamp("2024-05-01 12:30:15")
    hub = synthetic_hub(now, 3, {("BINANCE", "DOGE-USDT"): 0.15012, ("BINANCE", "BTC-USDT"): 65_012.34})
    state = BoardState(hub)
    state.update(now.value)
    assert state.symbols == ["BTC-USDT", "DOGE-USDT"]  # market order, not alphabetical
    assert state.fields == ["chart", "BINANCE", "BINANCE_change", "BINANCE_spread"]
    assert state.cells["BTC-USDT"][1] == "65,142.36"  # 65,012.34 * 1.002, two decimals
    assert state.cells["DOGE-USDT"][1] == "0.15042"  # five decimals
    assert (price_decimals(65_012.3), price_decimals(0.15012), price_decimals(7.0)) == (1, 5, 0)
    assert change_cell(0.0123).startswith('<span style="color:#26a69a">▲ +1.23%')
    assert change_cell(-0.0005).startswith('<span style="color:#ef5350">▼ -0.05%')
    assert change_cell(0.00001) == "0.00%" and change_cell(float("nan")) == ""


def test_a_sparkline_is_a_small_svg_on_whole_pixels_coloured_by_its_direction():
    up = sparkline([1.0, 2.0, 3.0])
    points = re.search(r'points="([^"]+)"', up).group(1).split()
    assert points == ["1,23", "42,12", "83,1"] and 'stroke="#26a69a"' in up
    assert 'stroke="#ef5350"' in sparkline([3.0, 1.0])
    assert re.search(r'points="1,12 83,12"', sparkline([5.0]))  # one close: a flat line
    assert sparkline([1.0, 1.0 + 1e-9, 2.0]) == sparkline([1.0, 1.0 + 2e-9, 2.0])  # sub-pixel moves send nothing
    assert sparkline([]) == ""


# -- the session --------------------------------------------------------------------------
def cells_of(table) -> dict:
    frame = table.value
    return {(i, c): frame.iat[i, j] for i in range(len(frame)) for j, c in enumerate(frame.columns)}


async def test_a_session_patches_only_the_cells_that_changed_and_reports_what_it_showed(ingest, monkeypatch):
    board = quiet_board(ingest)
    table = board._table
    try:
        assert list(table.value["coin"].str.extract(r">([A-Z]+-USDT)<")[0]) == SYMBOLS
        patches, reassigned = [], []
        original = table.patch
        monkeypatch.setattr(table, "patch", lambda value, as_index=True: (patches.append(value),
                                                                          original(value, as_index)))
        table.param.watch(lambda event: reassigned.append(event), "value")
        state = shared_board(ingest)
        before = cells_of(table)
        shown = ingest.screen_latency.count

        def refreshed():
            board.refresh()
            return patches

        await poll(refreshed, 10, "a patch after new trades")
        after = cells_of(table)
        changed = {cell for cell in after if after[cell] != before[cell]}
        patched = set()
        for field, entries in patches[0].items():
            for index, _ in entries:
                rows = range(index.start, index.stop) if isinstance(index, slice) else [index]
                patched |= {(i, field) for i in rows}
        assert patched == changed and changed
        assert not any(field == "coin" for _, field in patched)  # links are sent once
        assert reassigned == []  # never the whole table

        frame = state.frame  # what the last refresh showed
        for i, symbol in enumerate(SYMBOLS):
            for exchange in EXCHANGES:
                assert after[(i, exchange)] == f"{frame.loc[(symbol, exchange), 'price']:,.2f}"
        newest = frame["timestamp"].max().value // 10**6
        assert f'data-exchange-ms="{newest}"' in board._tick_line.object
        assert ingest.screen_latency.count > shown  # receipt→session latency of the trades it now shows
    finally:
        board.close()


async def test_a_tick_with_nothing_new_in_the_hub_sends_nothing(ingest, monkeypatch):
    board = quiet_board(ingest)
    try:
        ingest.exchange.pause()
        state, hub = shared_board(ingest), ingest.hub
        history = []

        def settled():  # the hub still for 0.3 s, and the board has read all of it
            state.update()
            seqs = tuple(hub.last_seq(key) for key in hub.keys())
            history.append((time.monotonic(), seqs))
            while history[0][1] != seqs:
                history.pop(0)
            return history[-1][0] - history[0][0] > 0.3 and all(hub.last_seq(k) == seq for k, seq in state.seqs)

        await poll(settled, 10, "the hub to stop moving")
        monkeypatch.setattr(board_module, "MIN_INTERVAL", 0.0)  # every refresh looks at the hub
        board.refresh()  # catch up with the last change
        version, patches = state.version, []
        monkeypatch.setattr(board._table, "patch", lambda *a, **k: patches.append(a))
        monkeypatch.setattr(board, "shown", lambda receipts: patches.append(receipts))
        board.refresh()
        assert state.version == version and patches == []
    finally:
        board.close()


async def test_sessions_share_one_board_computed_once_per_hub_state(ingest, monkeypatch):
    builds = []
    original = BoardState._build
    monkeypatch.setattr(BoardState, "_build", lambda self, *a: (builds.append(a), original(self, *a)))
    monkeypatch.setattr(board_module, "MIN_INTERVAL", 0.0)  # only the hub's state decides
    boards = [quiet_board(ingest) for _ in range(3)]
    try:
        state, hub = shared_board(ingest), ingest.hub
        await poll(lambda: any(hub.last_seq(key) != seq for key, seq in state.seqs), 10, "new trades")
        builds.clear()
        for board in boards:
            board.refresh()
        assert len(builds) == 1 and all(board._version == state.version for board in boards)
        values = [board._table.value for board in boards]
        assert all(v.equals(values[0]) for v in values)
    finally:
        for board in boards:
            board.close()


def test_an_empty_hub_says_it_is_waiting_without_an_error():
    ingest = Ingest(source="simulator", store=False, symbols=SYMBOLS, workers=False)  # never started
    board = quiet_board(ingest)
    try:
        assert board._message.visible and board._message.object == WAITING
        assert not board._error.visible
        assert board._table.value.empty
    finally:
        board.close()


def test_unknown_symbols_are_named_and_the_known_ones_shown():
    now = pd.Timestamp.now()
    hub = synthetic_hub(now, 3, {("BINANCE", "BTC-USDT"): 65_000.0, ("BINANCE", "ETH-USDT"): 3_400.0})
    ingest = SimpleNamespace(hub=hub, store=None, markets={"BINANCE": ["BTC-USDT", "ETH-USDT"]})
    board = quiet_board(ingest, symbols=["ETH-USDT", "NOPE-USDT"])
    try:
        assert board._message.object == "Unknown symbol NOPE-USDT: the feed has BTC-USDT, ETH-USDT."
        assert list(board._table.value["coin"].str.contains("ETH-USDT")) == [True]
        board.symbols = ["NOPE-USDT"]
        board.refresh()
        assert board._message.object.startswith("Unknown symbol NOPE-USDT") and board._table.value.empty
        board.symbols = None
        board.refresh()
        assert not board._message.visible and len(board._table.value) == 2
        assert not board._error.visible
    finally:
        board.close()


def test_links_go_to_the_chart_of_their_coin():
    hub = synthetic_hub(pd.Timestamp.now(), 3, {("BINANCE", "BTC-USDT"): 65_000.0})
    board = quiet_board(SimpleNamespace(hub=hub, store=None, markets={}), chart_url="/chart?symbol={symbol}&tf=1m")
    try:
        coin, chart = board._table.value.loc[0, ["coin", "chart"]]
        assert coin.startswith('<a href="/chart?symbol=BTC-USDT&amp;tf=1m"') and coin.endswith(">BTC-USDT</a>")
        assert chart.startswith('<a href="/chart?symbol=BTC-USDT&amp;tf=1m"') and "<svg" in chart
    finally:
        board.close()


async def test_close_stops_the_timer_and_keeps_nothing_of_the_session(ingest):
    views, subscribers = active_views(), ingest.hub.subscribers
    board = PriceBoard(ingest=ingest)
    board.__panel__()
    assert active_views() == views + 1
    board.close()
    board.close()  # idempotent
    assert active_views() == views and ingest.hub.subscribers == subscribers
    assert board._callback is None
    ref = weakref.ref(board)
    del board
    # the shared board holds nothing of a session (its timer task ends at the loop's next turn)
    await poll(lambda: gc.collect() is not None and ref() is None, 5, "the session to be released")
