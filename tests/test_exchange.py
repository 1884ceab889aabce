"""The local exchange against cryptofeed's real client: simulator, replay and faults."""

import asyncio
import contextlib
import glob
import gzip
import shutil
import socket
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import requests
from cryptofeed import FeedHandler
from cryptofeed.defines import L2_BOOK, TICKER, TRADES
from cryptofeed.raw_data_collection import playback
from cryptofeed.symbols import Symbols

from analytics.exchange import Faults, LocalExchange, attach

CAPTURES = Path(__file__).parents[1].parent / "shared" / "data" / "captures"
FH_CONFIG = {"uvloop": False, "log": {"disabled": True}}
EXCHANGES = ["BINANCE", "KRAKEN", "BITFINEX"]
CHANNELS = [TRADES, TICKER, L2_BOOK]


class Recorder:
    """What cryptofeed delivered, per exchange."""

    def __init__(self):
        self.trades = defaultdict(list)
        self.counts = Counter()
        self.seen = defaultdict(set)  # (exchange, channel) -> symbols
        self.books = {}  # (exchange, symbol) -> the live OrderBook object
        self.book_updates = Counter()

    async def trade(self, t, receipt):
        self.trades[t.exchange].append((t.symbol, t.id, t.timestamp, float(t.price), float(t.amount), t.side))
        self._saw(t.exchange, TRADES, t.symbol)

    async def ticker(self, t, receipt):
        self._saw(t.exchange, TICKER, t.symbol)

    async def book(self, b, receipt):
        self.books[(b.exchange, b.symbol)] = b
        self.book_updates[(b.exchange, b.symbol)] += 1
        self._saw(b.exchange, L2_BOOK, b.symbol)

    def _saw(self, exchange, channel, symbol):
        self.counts[(exchange, channel)] += 1
        self.seen[(exchange, channel)].add(symbol)

    @property
    def callbacks(self):
        return {TRADES: self.trade, TICKER: self.ticker, L2_BOOK: self.book}

    def covers(self, exchange, symbols):
        return all(self.seen[(exchange, c)] >= set(symbols) for c in CHANNELS)

    def book_levels(self, exchange, symbol, depth):
        book = self.books[(exchange, symbol)].book.to_dict()
        bids = sorted(((float(p), float(q)) for p, q in book["bid"].items()), reverse=True)[:depth]
        asks = sorted((float(p), float(q)) for p, q in book["ask"].items())[:depth]
        return bids, asks


async def wait_until(predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def feeding(exchange, names, recorder, **kwargs):
    """cryptofeed's FeedHandler on this loop, one feed per exchange in ``names``."""
    fh = FeedHandler(config=FH_CONFIG)
    for name in names:
        feed = await asyncio.to_thread(exchange.feed_class(name), symbols=exchange.symbols_for(name),
                                       channels=exchange.channels_for(name), callbacks=recorder.callbacks,
                                       retries=-1, **kwargs)
        fh.add_feed(feed)
    fh.run(start_loop=False, install_signal_handlers=False)
    try:
        yield fh
    finally:
        await fh.stop_async()


@pytest.fixture
def serve():
    """Start local exchanges in their own threads; stop them after the test."""
    started = []

    def start(**kwargs):
        exchange = LocalExchange(**kwargs)
        exchange.start_in_thread()
        started.append(exchange)
        return exchange

    yield start
    for exchange in started:
        exchange.stop_in_thread()


def trade_keys(rows, exchange):
    """Comparable trades; Kraken sends no ids, so its trades are their time, price, amount and side."""
    if exchange == "KRAKEN":
        return Counter((s, ts, p, q, side) for s, _, ts, p, q, side in rows)
    return Counter(rows)


def sent_keys(exchange, name):
    sent = exchange.sent_trades(name)
    rows = zip(sent.symbol, sent.trade_id, sent.timestamp, sent.price, sent.amount, sent.side)
    return trade_keys(list(rows), name), len(sent)


def books_equal(exchange, recorder, name, symbols, depth=10):
    return all(recorder.book_levels(name, s, depth) == tuple(x[:depth] for x in exchange.book(name, s))
               for s in symbols)


async def books_converge(exchange, recorder, names, timeout=30.0):
    """Pause the exchange once cryptofeed's books equal the levels it published.

    After a fault a book may be left stale until its next update (Binance re-snapshots a
    book on the first diff after a reconnect): resume until every book has moved, and retry.
    """
    deadline = time.monotonic() + timeout
    while True:
        exchange.pause()
        symbols = {n: exchange.symbols_for(n) for n in names}
        try:
            await wait_until(lambda: all(books_equal(exchange, recorder, n, symbols[n]) for n in names),
                             "books to match the exchange's", timeout=1.0)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        exchange.resume()
        before = Counter(recorder.book_updates)
        await wait_until(lambda: all(recorder.book_updates[(n, s)] > before[(n, s)] for n in names
                                     for s in symbols[n]), "every book to update")


@pytest.mark.parametrize("name", EXCHANGES)
async def test_every_trade_arrives_exactly_once(serve, name):
    exchange = serve(rate=100.0, seed=7)
    symbols = exchange.symbols_for(name)
    assert len(symbols) == 8
    recorder = Recorder()
    async with feeding(exchange, [name], recorder):
        await wait_until(lambda: recorder.covers(name, symbols), f"{name} trades, ticker and book of every symbol")
        exchange.pause()
        expected, n = sent_keys(exchange, name)
        await wait_until(lambda: len(recorder.trades[name]) >= n, f"{n} {name} trades")
        await wait_until(lambda: books_equal(exchange, recorder, name, symbols), f"{name} books to match")
    assert trade_keys(recorder.trades[name], name) == expected
    if name != "KRAKEN":
        assert len({t[1] for t in recorder.trades[name]}) == n  # ids are unique
    for s in symbols:
        assert exchange.sent.get((name, s, "ticker")) > 0 and exchange.sent.get((name, s, "book")) > 0


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    """The shared captures, gunzipped (cryptofeed's playback reads plain files)."""
    folder = tmp_path_factory.mktemp("captures")
    for path in CAPTURES.glob("*.gz"):
        with gzip.open(path, "rb") as src, open(folder / path.name.removesuffix(".gz"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    return folder


def play(folder, name):
    Symbols.clear()  # playback reads symbols from the capture only when cryptofeed's cache is empty
    recorder = Recorder()
    files = sorted(glob.glob(f"{folder}/{name}.*"))
    playback(name, files, callbacks=dict(recorder.callbacks), config=FH_CONFIG)
    return recorder


async def test_replay_over_sockets_equals_playback(serve, captures):
    expected = {name: await asyncio.to_thread(play, captures, name) for name in EXCHANGES}
    Symbols.clear()
    assert {n: len(expected[n].trades[n]) for n in EXCHANGES} == {"BINANCE": 2, "KRAKEN": 10, "BITFINEX": 210}
    exchange = serve(source=f"replay:{CAPTURES}", speed=float("inf"))  # gzip'd files directly
    assert exchange.exchanges == EXCHANGES  # BINANCE_FUTURES skipped
    recorder = Recorder()
    async with feeding(exchange, EXCHANGES, recorder):
        await wait_until(lambda: exchange.finished, "the replay to finish")
        want = {k: v for n in EXCHANGES for k, v in expected[n].counts.items()}
        await wait_until(lambda: recorder.counts == want, f"callback counts {want}, got {recorder.counts}")
    for name in EXCHANGES:
        assert sorted(recorder.trades[name], key=str) == sorted(expected[name].trades[name], key=str)


@pytest.mark.parametrize("fault", ["garbage", "drop", "skip", "stall"])
async def test_feeds_recover_from_faults(serve, fault):
    exchange = serve(rate=60.0, seed=3)
    remote = await asyncio.to_thread(attach, exchange.status()["exchanges"]["BINANCE"]["rest"].rsplit("/", 1)[0]
                                     + "/tickscope/status")
    recorder = Recorder()
    async with feeding(exchange, EXCHANGES, recorder):
        for name in EXCHANGES:
            await wait_until(lambda: recorder.covers(name, exchange.symbols_for(name)), f"{name} to flow")
        switch = {"garbage": {"garbage": 1}, "drop": {"drop": True}, "skip": {"skip": 1}, "stall": {"stall": 1.0}}
        await asyncio.to_thread(remote.set_faults, **switch[fault])
        hit = ["BINANCE", "BITFINEX"] if fault == "skip" else EXCHANGES  # Kraken has no sequence numbers
        await wait_until(lambda: all(exchange.sent.get((n, "*", "faults")) for n in hit), f"{fault} injected")
        before = {n: len(recorder.trades[n]) for n in EXCHANGES}
        await wait_until(lambda: all(len(recorder.trades[n]) > before[n] + 5 for n in EXCHANGES),
                         f"trades to resume after {fault}")
        await books_converge(exchange, recorder, EXCHANGES)
        if fault == "stall":  # nothing was lost
            for name in EXCHANGES:
                expected, n = sent_keys(exchange, name)
                await wait_until(lambda: len(recorder.trades[name]) >= n, f"{n} {name} trades")
                assert trade_keys(recorder.trades[name], name) == expected


def test_busy_port_is_one_clear_oserror(serve):
    first = serve(rate=1.0)
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{first.port} for websockets"):
        LocalExchange(port=first.port).start_in_thread()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        with pytest.raises(OSError, match=f"127.0.0.1:{busy} for REST"):
            LocalExchange(port=0, rest_port=busy).start_in_thread()


def test_status_and_fault_switches_over_http(serve):
    exchange = serve(rate=1.0)
    base = exchange.endpoints("KRAKEN")["rest"].rsplit("/", 1)[0]
    status = requests.get(f"{base}/tickscope/status", timeout=10).json()
    assert set(status["exchanges"]) == set(EXCHANGES)
    assert status["exchanges"]["KRAKEN"]["websocket"].startswith("wss://127.0.0.1:")
    reply = requests.post(f"{base}/tickscope/faults", json={"garbage_every": 50}, timeout=10)
    assert reply.json()["garbage_every"] == 50 and exchange.faults.garbage_every == 50
    reply = requests.post(f"{base}/tickscope/faults", json={"garbage_every": -1}, timeout=10)
    assert reply.status_code == 400 and "garbage_every" in reply.json()["error"]
    assert requests.get(f"{base}/nowhere", timeout=10).status_code == 404


@pytest.mark.parametrize("kwargs, message", [
    ({"source": "bogus"}, "source must be"),
    ({"rate": -1}, "rate must be"),
    ({"speed": 0}, "speed must be"),
    ({"port": 70000}, "port must be"),
    ({"symbols": ["BTC-USDT", "BTC-USD"]}, "distinct coins"),
    ({"symbols": ["FOO-USDT"]}, "cannot simulate"),
    ({"source": "replay:/nonexistent"}, "does not exist"),
])
def test_bad_arguments_are_one_line_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LocalExchange(**kwargs)


def test_fault_switches_validate_then_apply():
    faults = Faults()
    faults.targets = {"garbage": EXCHANGES, "skip": ["BINANCE", "BITFINEX"]}
    with pytest.raises(ValueError, match="skip_every"):
        faults.update({"garbage_every": 10, "skip_every": 0})
    assert faults.garbage_every is None  # nothing applied
    with pytest.raises(ValueError, match="unknown exchange"):
        faults.update({"garbage": 1, "exchange": "NYSE"})
    faults.update({"skip": 2})
    assert [faults.take("skip", "BITFINEX") for _ in range(3)] == [True, True, False]
    assert not faults.take("skip", "KRAKEN")
    faults.garbage_every = 4
    # one fault each time the running count passes a multiple of 4, whatever the batch sizes
    assert [faults.take("garbage", "KRAKEN", sent, n) for sent, n in [(0, 3), (3, 1), (4, 10), (14, 1)]] == \
        [False, True, True, False]
