"""Callbacks, batcher and the source switch, with cryptofeed's own message types."""

import asyncio
import gzip
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from aiohttp import web
from cryptofeed.types import OrderBook, Ticker, Trade

from analytics.feeds import Batcher, Callbacks
from analytics.feeds.callbacks import key_hash
from analytics.metrics import Counters
from analytics.feeds.sources import Source, parse_source, probe_live, resolve
from analytics.schema import DEPTH_COLUMNS, QUOTE_COLUMNS, TRADE_COLUMNS

DATA = Path(__file__).parents[1].parent / "shared" / "data"


class Collect:
    def __init__(self):
        self.batches = []

    def __call__(self, kind, df):
        self.batches.append((kind, df))

    def frame(self, kind):
        return pd.concat([df for k, df in self.batches if k == kind], ignore_index=True)


def real_trades() -> pd.DataFrame:
    with gzip.open(DATA / "trades" / "btcusdt-trades.csv.gz", "rt") as f:
        raw = pd.read_csv(f)
    raw["seconds"] = pd.to_datetime(raw.timestamp).dt.tz_localize(None).astype("int64") / 1e9
    return raw


async def test_trades_become_schema_batches_with_exact_values():
    sink = Collect()
    counters = Counters()
    batcher = Batcher(sink, interval=0.1, max_rows=500, counters=counters)
    callbacks = Callbacks(batcher, counters)
    raw = real_trades()
    for row in raw.itertuples():
        side = "sell" if row.buyer_maker else "buy"
        trade = Trade("BINANCE", "BTC-USDT", side, Decimal(str(row.quantity)), Decimal(str(row.price)),
                      row.seconds, id=str(row.trade_id))
        await callbacks.trade(trade, row.seconds + 0.01)
    batcher.flush()
    kinds = {k for k, _ in sink.batches}
    assert kinds == {"trades"}
    assert max(len(df) for _, df in sink.batches) == 500  # max_rows triggers a flush at once
    out = sink.frame("trades")
    assert list(out.columns) == list(TRADE_COLUMNS)
    assert out.dtypes.astype(str).tolist() == [str(np.dtype(t)) for t in TRADE_COLUMNS.values()]
    assert len(out) == len(raw)
    np.testing.assert_array_equal(out.price.to_numpy(), raw.price.to_numpy())
    np.testing.assert_array_equal(out.amount.to_numpy(), raw.quantity.to_numpy())
    expected_ts = pd.to_datetime(raw.timestamp).dt.tz_localize(None).to_numpy()
    np.testing.assert_array_equal(out.timestamp.to_numpy(), expected_ts)
    assert (out.receipt_timestamp - out.timestamp).dt.total_seconds().round(6).eq(0.01).all()
    assert out.trade_id.tolist() == raw.trade_id.tolist()
    assert counters.get(("BINANCE", "trades", "messages")) == len(raw)


async def test_kraken_trades_get_a_stable_derived_id():
    async def receive():
        sink = Collect()
        batcher = Batcher(sink)
        callbacks = Callbacks(batcher)
        for side in ("buy", "buy", "sell", "buy"):
            trade = Trade("KRAKEN", "BTC-USDT", side, Decimal("0.5"), Decimal("100.1"), 1.25)
            await callbacks.trade(trade, 2.0)
        batcher.flush()
        return sink.frame("trades").trade_id.tolist()

    ids = await receive()
    assert len(set(ids)) == 4  # identical trades at one time get distinct ordinals
    assert ids == await receive()  # received again (a restart, a replay): the same ids
    assert ids[0] == key_hash("1250000:100.1:0.5:buy:0")
    assert all(0 <= i < 2**63 for i in ids)


async def test_ticker_and_book_become_quotes_and_depth():
    sink = Collect()
    batcher = Batcher(sink, depth=2)
    callbacks = Callbacks(batcher)
    await callbacks.ticker(Ticker("BINANCE", "ETH-USDT", Decimal("10.5"), Decimal("10.7"), None), 100.0)
    book = OrderBook("BITFINEX", "ETH-USDT", bids={Decimal("10"): Decimal("1"), Decimal("9"): Decimal("2"),
                                                  Decimal("8"): Decimal("3")},
                     asks={Decimal("11"): Decimal("4"), Decimal("12"): Decimal("5")})
    await callbacks.book(book, 101.0)
    book.book.bids[Decimal("10.2")] = Decimal("7")  # a later update of the same book object
    await callbacks.book(book, 102.0)
    batcher.flush()
    quotes = sink.frame("quotes")
    assert list(quotes.columns) == list(QUOTE_COLUMNS)
    assert quotes.source.tolist() == ["ticker", "book", "book"]
    assert quotes.bid.tolist() == [10.5, 10.0, 10.2]
    assert np.isnan(quotes.bid_size[0]) and quotes.bid_size[2] == 7.0
    assert quotes.timestamp[0] == pd.Timestamp(100, unit="s")  # no exchange time: receipt time
    depth = sink.frame("depth")
    assert list(depth.columns) == list(DEPTH_COLUMNS)
    # one snapshot of the latest state, two levels a side
    assert depth[["side", "level", "price", "size"]].values.tolist() == [
        ["bid", 0, 10.2, 7.0], ["bid", 1, 10.0, 1.0], ["ask", 0, 11.0, 4.0], ["ask", 1, 12.0, 5.0]]


async def test_batcher_flushes_on_its_timer_and_on_stop():
    sink = Collect()
    batcher = Batcher(sink, interval=0.05)
    batcher.start()
    batcher.add_trade(("BINANCE", "BTC-USDT", 1.0, 1.0, 1.0, 1.0, "buy", 1))
    deadline = time.monotonic() + 5
    while not sink.batches and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(sink.batches) == 1
    batcher.add_trade(("BINANCE", "BTC-USDT", 2.0, 2.0, 1.0, 1.0, "buy", 2))
    await batcher.stop()
    assert sum(len(df) for _, df in sink.batches) == 2


def test_a_failing_pipeline_is_counted_not_raised():
    def broken(kind, df):
        raise RuntimeError("boom")

    batcher = Batcher(broken)
    batcher.add_trade(("BINANCE", "BTC-USDT", 1.0, 1.0, 1.0, 1.0, "buy", 1))
    batcher.flush()
    assert batcher.errors == 1


@pytest.mark.parametrize("text, kind", [("live", "live"), ("simulator", "simulator"), ("auto", "auto")])
def test_parse_source(text, kind):
    assert parse_source(text).kind == kind


def test_parse_replay_finds_captures():
    source = parse_source(f"replay:{DATA / 'captures'}")
    assert source.kind == "replay" and "REPLAY" in source.label


@pytest.mark.parametrize("text, message", [
    ("bogus", "unknown source"), ("live:x", "unknown source"), ("replay:", "needs a folder"),
    ("replay:/nonexistent/folder", "does not exist"), (f"replay:{DATA / 'bars'}", "no BINANCE"),
])
def test_bad_sources_get_one_line(text, message):
    with pytest.raises(ValueError, match=message) as err:
        parse_source(text)
    assert "\n" not in str(err.value)


async def test_auto_picks_live_only_when_an_exchange_answers(unused_tcp_port):
    app = web.Application()
    async def ping(request):
        return web.json_response({})

    app.router.add_get("/ping", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    try:
        up = {"BINANCE": f"http://127.0.0.1:{unused_tcp_port}/ping"}
        down = {"KRAKEN": "http://127.0.0.1:9/closed"}
        assert await probe_live({**up, **down}, timeout=2) == ["BINANCE"]
        assert (await resolve(Source("auto"), {**up, **down}, timeout=2)).kind == "live"
        assert (await resolve(Source("auto"), down, timeout=2)).kind == "simulator"
    finally:
        await runner.cleanup()


async def test_a_row_that_does_not_fit_is_dropped_counted_and_the_timer_goes_on():
    sink = Collect()
    batcher = Batcher(sink, interval=0.02)
    batcher.start()
    try:
        batcher.add_trade(("BINANCE", "BTC-USDT", 1.0, 1.0, 1.0, 1.0, "buy", 2**64))  # no int64 holds it
        batcher.add_trade(("BINANCE", "BTC-USDT", 2.0, 2.0, 1.0, 1.0, "buy", 7))
        await poll_until(lambda: sink.batches)
        batcher.add_trade(("BINANCE", "BTC-USDT", 3.0, 3.0, 1.0, 1.0, "buy", 8))
        await poll_until(lambda: len(sink.batches) == 2)
    finally:
        await batcher.stop()
    assert sink.frame("trades").trade_id.tolist() == [7, 8]
    assert batcher.errors == 1


async def test_an_out_of_range_trade_id_is_hashed():
    sink = Collect()
    batcher = Batcher(sink)
    await Callbacks(batcher).trade(Trade("BINANCE", "BTC-USDT", "buy", Decimal(1), Decimal(2), 3.0,
                                         id=str(2**64)), 4.0)
    batcher.flush()
    assert sink.frame("trades").trade_id.tolist() == [key_hash(str(2**64))]


async def poll_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)
