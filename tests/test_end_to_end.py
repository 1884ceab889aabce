"""Local exchange -> cryptofeed -> batcher -> pipeline -> ArcticDB, with nothing mocked.

Every trade the exchange sent is stored exactly once for all three protocols; a replay of
real captures stores what cryptofeed's own ``playback`` yields; a second ingest over the
same data adds no duplicate; malformed frames and dropped connections are survived and
counted.
"""

import asyncio
import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest
from cryptofeed.defines import TRADES
from cryptofeed.raw_data_collection import playback
from cryptofeed.symbols import Symbols

from analytics.ingest import Ingest
from analytics.storage import TickStore
from polling import poll

CAPTURES = Path(__file__).parents[1].parent / "shared" / "data" / "captures"
EXCHANGES = ("BINANCE", "KRAKEN", "BITFINEX")
SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]


def trades_received(ingest, exchange) -> int:
    return ingest.counters.get((exchange, "trades", "messages"))


def stored_trades(store, exchange, symbols) -> pd.DataFrame:
    frames = [store.read_trades(exchange, s).reset_index().assign(symbol=s) for s in symbols
              if ((store.symbols("trades").exchange == exchange) & (store.symbols("trades").symbol == s)).any()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["symbol", "trade_id"])


def trade_keys(frame: pd.DataFrame, exchange: str) -> list:
    """What identifies a trade: the exchange's id, or for Kraken (no ids) what the trade holds."""
    if exchange == "KRAKEN":
        times = pd.to_datetime(frame["timestamp"], unit="s") if frame["timestamp"].dtype.kind == "f" \
            else frame["timestamp"]
        return sorted(zip(frame["symbol"], times.dt.round("us"), frame["price"].round(10),
                          frame["amount"].round(10), frame["side"]))
    return sorted(zip(frame["symbol"], frame["trade_id"].astype("int64")))


@pytest.mark.parametrize("workers", [True, False], ids=["feed-workers", "in-process"])
async def test_every_trade_sent_is_stored_exactly_once(tmp_path, workers):
    ingest = Ingest(source="simulator", symbols=SYMBOLS, store=f"lmdb://{tmp_path}/store", rate=100, seed=7,
                    workers=workers)
    await ingest.start()
    exchange = ingest.exchange
    try:
        await poll(lambda: all(trades_received(ingest, ex) >= 100 for ex in EXCHANGES), 60, "trades on all three")
        exchange.pause()
        await poll(lambda: all(trades_received(ingest, ex) == len(exchange.sent_trades(ex)) for ex in EXCHANGES),
                   30, "every sent trade to arrive")
    finally:
        await ingest.stop()
    store = TickStore(f"lmdb://{tmp_path}/store")
    for ex in EXCHANGES:
        sent = exchange.sent_trades(ex)
        stored = stored_trades(store, ex, SYMBOLS)
        assert len(sent) >= 100
        assert len(stored) == len(sent), ex
        assert trade_keys(stored, ex) == trade_keys(sent, ex), ex
        assert not stored.duplicated(["symbol", "trade_id"]).any()


@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> Path:
    """The real captures of the three exchanges, gunzipped (cryptofeed's playback reads plain files)."""
    folder = tmp_path_factory.mktemp("captures")
    for path in CAPTURES.glob("*.gz"):
        if path.name.split(".")[0] in EXCHANGES:
            with gzip.open(path, "rb") as src, open(folder / path.name[:-3], "wb") as dst:
                shutil.copyfileobj(src, dst)
    return folder


def played_back(exchange: str, folder: Path) -> pd.DataFrame:
    rows = []

    async def trade(t, receipt_timestamp):
        rows.append((t.symbol, t.id, t.timestamp, float(t.price), float(t.amount), t.side))

    files = [str(p) for p in sorted(folder.glob(f"{exchange}.*"))]
    Symbols.clear()  # playback uses the process-wide symbol cache when it is filled; let it read the capture's
    playback(exchange, files, callbacks={TRADES: trade})
    frame = pd.DataFrame(rows, columns=["symbol", "trade_id", "timestamp", "price", "amount", "side"])
    return frame


def replay_into(store_uri: str, folder: Path) -> Ingest:
    ingest = Ingest(source=f"replay:{folder}", store=store_uri, speed=float("inf"))
    asyncio.run(ingest.run(duration=120))
    return ingest


def test_replay_stores_what_cryptofeed_playback_yields_and_a_second_run_adds_nothing(tmp_path, captures):
    uri = f"lmdb://{tmp_path}/store"
    first = replay_into(uri, captures)
    assert first.finished
    store = TickStore(uri)
    counts = {}
    for ex in EXCHANGES:
        expected = played_back(ex, captures)
        stored = stored_trades(store, ex, sorted(expected.symbol.unique()))
        assert len(expected) > 0
        assert trade_keys(stored, ex) == trade_keys(expected, ex), ex
        counts[ex] = len(stored)
    assert counts == {"BINANCE": 2, "KRAKEN": 10, "BITFINEX": 210}

    replay_into(uri, captures)  # the same recordings again: a restart over overlapping data
    store = TickStore(uri)
    for ex in EXCHANGES:
        symbols = store.symbols("trades").query("exchange == @ex").symbol
        assert len(stored_trades(store, ex, symbols)) == counts[ex], ex


async def test_a_feed_worker_that_dies_is_reported_and_the_others_go_on(tmp_path):
    ingest = Ingest(source="simulator", symbols=SYMBOLS[:1], store=f"lmdb://{tmp_path}/store", rate=100, seed=5)
    await ingest.start()
    try:
        await poll(lambda: all(trades_received(ingest, ex) > 0 for ex in EXCHANGES), 60, "first trades")
        victim = ingest.feed.workers[0]
        victim.process.kill()
        await poll(lambda: ingest.errors().get("workers") == 1, 30, "the dead worker to be reported")
        others = {w.exchange: trades_received(ingest, w.exchange) for w in ingest.feed.workers[1:]}
        await poll(lambda: all(trades_received(ingest, ex) > n for ex, n in others.items()), 30,
                   "the other exchanges to go on")
    finally:
        await ingest.stop()


@pytest.mark.parametrize("workers", [True, False], ids=["feed-workers", "in-process"])
async def test_malformed_frames_and_dropped_connections_are_survived_and_counted(tmp_path, workers):
    ingest = Ingest(source="simulator", symbols=SYMBOLS[:2], store=f"lmdb://{tmp_path}/store", rate=100, seed=3,
                    workers=workers)
    await ingest.start()
    try:
        await poll(lambda: all(trades_received(ingest, ex) > 0 for ex in EXCHANGES), 60, "first trades")
        ingest.exchange.faults.inject_garbage(count=3)
        await poll(lambda: ingest.errors().get("malformed", 0) >= 3, 30, "malformed frames to be counted")
        before = ingest.messages()
        await poll(lambda: ingest.messages() > before + 100, 30, "messages after garbage")

        ingest.exchange.faults.drop_now()
        await poll(lambda: ingest.errors().get("reconnects", 0) >= len(EXCHANGES), 60, "reconnects")
        after = {ex: trades_received(ingest, ex) for ex in EXCHANGES}
        await poll(lambda: all(trades_received(ingest, ex) > after[ex] for ex in EXCHANGES), 60,
                   "trades after reconnecting")
    finally:
        await ingest.stop()
    assert ingest.errors()["storage"] == 0 and ingest.errors()["pipeline"] == 0
