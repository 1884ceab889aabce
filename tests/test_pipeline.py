"""Streaming bars, the hub and the streamz pipeline, on the real trades in shared/data."""

import asyncio
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamz.sinks

from analytics.bars import ohlcv
from analytics.pipeline import BarBuilder, Hub, Pipeline
from analytics.pipeline.groups import Groups
from analytics.schema import BAR_COLUMNS, TIMEFRAMES, conform
from analytics.storage import StoreWriter, TickStore

DATA = Path(__file__).parents[1].parent / "shared" / "data" / "trades"
FIELDS = ["open", "high", "low", "close", "volume", "vwap", "trades"]


def trade_frame(exchange, symbol, timestamp, price, amount, trade_id=None) -> pd.DataFrame:
    timestamp = pd.to_datetime(pd.Series(timestamp)).reset_index(drop=True)
    n = len(timestamp)
    return conform("trades", pd.DataFrame({
        "exchange": exchange, "symbol": symbol, "timestamp": timestamp, "receipt_timestamp": timestamp,
        "price": np.asarray(price, dtype=float), "amount": np.asarray(amount, dtype=float),
        "side": "buy", "trade_id": np.asarray(trade_id if trade_id is not None else range(n)).astype(np.int64)}))


@pytest.fixture(scope="module")
def xrp() -> pd.DataFrame:
    raw = pd.read_csv(DATA / "XRP_ETH-trades.csv.gz")
    return trade_frame("BINANCE", "XRP-ETH", pd.to_datetime(raw["timestamp"], unit="ms"),
                       raw["price"], raw["amount"], raw["id"])


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    raw = pd.read_csv(DATA / "btcusdt-trades.csv.gz")
    return trade_frame("BINANCE", "BTC-USDT", pd.to_datetime(raw["timestamp"]).dt.tz_localize(None),
                       raw["price"], raw["quantity"], raw["trade_id"])


@pytest.fixture(scope="module")
def mixed(xrp, btc) -> pd.DataFrame:
    """Three keys interleaved in time: the BTC trades also shifted onto the XRP period."""
    shifted = btc.assign(exchange="KRAKEN", timestamp=btc["timestamp"] - (btc["timestamp"].iloc[0]
                                                                           - xrp["timestamp"].iloc[50]))
    both = pd.concat([xrp, btc, shifted.assign(receipt_timestamp=shifted["timestamp"])])
    return both.sort_values("timestamp", kind="stable").reset_index(drop=True)


def random_batches(trades: pd.DataFrame, rng) -> list:
    cuts = np.sort(rng.integers(0, len(trades), rng.integers(1, 300)))
    cuts = np.sort(np.r_[cuts, cuts[: len(cuts) // 4] + 1])  # some one-row and empty batches
    return [trades.iloc[a:b] for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(trades)])]


def final_bars(outputs: list, corrections: bool = False) -> pd.DataFrame:
    """The last version of every bar emitted; closed bars come once unless corrected."""
    bars = pd.concat(outputs, ignore_index=True)
    keys = ["exchange", "symbol", "timeframe", "start"]
    assert corrections or not bars[bars["closed"]].duplicated(keys).any()
    return bars.drop_duplicates(keys, keep="last").sort_values(keys, kind="stable")


def assert_equals_batch(bars: pd.DataFrame, trades: pd.DataFrame, timeframes) -> None:
    for timeframe in timeframes:
        got = bars[bars["timeframe"] == timeframe].set_index("start")
        expected = ohlcv(trades, timeframe)
        pd.testing.assert_frame_equal(got[["exchange", "symbol", *FIELDS]], expected, check_exact=True,
                                      check_names=False, check_freq=False)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("data", ["xrp", "btc", "mixed"])
def test_streaming_bars_equal_batch_bars_under_random_splits(request, data, seed):
    trades = request.getfixturevalue(data)
    builder = BarBuilder()
    outputs = [builder.update(batch) for batch in random_batches(trades, np.random.default_rng(seed))]
    bars = final_bars(outputs)
    assert_equals_batch(bars, trades, TIMEFRAMES)
    forming = bars.groupby(["exchange", "symbol", "timeframe"])["closed"].agg(["last", "sum", "size"])
    assert not forming["last"].any() and (forming["sum"] == forming["size"] - 1).all()
    keys = ["exchange", "symbol", "timeframe"]
    pd.testing.assert_frame_equal(builder.forming().sort_values(keys).reset_index(drop=True),
                                  bars[~bars["closed"]].reset_index(drop=True))
    assert sum(builder.late_trades.values()) == 0


def test_bars_follow_the_schema():
    builder = BarBuilder(["1m", "15min"])
    bars = builder.update(trade_frame("BINANCE", "A", ["2024-01-01 00:00:01"], [1.0], [2.0]))
    assert dict(bars.dtypes) == {c: np.dtype(t) for c, t in BAR_COLUMNS.items()}
    assert bars["timeframe"].tolist() == ["1m", "15min"] and not bars["closed"].any()
    assert dict(builder.update(trade_frame("BINANCE", "A", [], [], [])).dtypes) == dict(bars.dtypes)
    with pytest.raises(ValueError, match="timeframe"):
        BarBuilder(["1m", "fortnightly"])


def test_late_trades_are_merged_counted_and_reemitted():
    t = pd.Timestamp("2024-01-01")
    s = pd.Timedelta(seconds=1)
    batches = [trade_frame("X", "A", [t + 10 * s, t + 50 * s], [1, 2], [1, 2]),
               trade_frame("X", "A", [t + 80 * s, t + 65 * s], [3, 4], [3, 1]),  # out of order in a bar
               trade_frame("X", "A", [t + 30 * s], [5], [1])]                    # late for minute 0
    builder = BarBuilder(["1s", "1m", "1h"])
    outputs = [builder.update(b) for b in batches]
    assert builder.late_trades == {"1s": 1, "1m": 1, "1h": 0}
    minute = outputs[1][outputs[1]["timeframe"] == "1m"]
    assert minute["closed"].tolist() == [True, False] and minute["open"].tolist() == [1.0, 4.0]
    reemitted = outputs[2][outputs[2]["timeframe"] != "1h"]
    assert reemitted["closed"].all() and reemitted["start"].tolist() == [t + 30 * s, t]
    assert reemitted["high"].tolist() == [5.0, 5.0] and reemitted["close"].tolist() == [5.0, 2.0]
    assert outputs[2].loc[outputs[2]["timeframe"] == "1h", "closed"].tolist() == [False]
    assert_equals_batch(final_bars(outputs, corrections=True), pd.concat(batches), ["1s", "1m", "1h"])


def test_late_trades_beyond_the_history_are_counted_lost():
    t = pd.Timestamp("2024-01-01")
    builder = BarBuilder(["1m"], history=2)
    builder.update(trade_frame("X", "A", [t + pd.Timedelta(minutes=m) for m in range(5)], range(5), [1] * 5))
    late = builder.update(trade_frame("X", "A", [t + pd.Timedelta(seconds=5)], [9], [1]))
    assert late.empty and builder.late_trades == {"1m": 1} and builder.late_lost == {"1m": 1}
    # before the first bar this builder saw: maybe stored by an earlier run, never overwritten
    builder.update(trade_frame("X", "B", [t + pd.Timedelta(minutes=5)], [1], [1]))
    assert builder.update(trade_frame("X", "B", [t], [1], [1])).empty and builder.late_lost == {"1m": 2}


def test_close_until_closes_quiet_bars_by_wall_clock():
    t = pd.Timestamp("2024-01-01")
    ms = pd.Timedelta(milliseconds=1)
    builder = BarBuilder(["1s", "1m"])
    builder.update(trade_frame("X", "A", [t + 10_500 * ms], [1], [1]))
    builder.update(trade_frame("X", "B", [t + 70_000 * ms], [1], [1]))
    first = builder.close_until(t + 11_000 * ms)
    assert first[["symbol", "timeframe", "start", "closed"]].values.tolist() == [["A", "1s", t + 10_000 * ms, True]]
    assert builder.close_until(t + 59_999 * ms).empty
    second = builder.close_until(t + 60_000 * ms)
    assert second[["symbol", "timeframe"]].values.tolist() == [["A", "1m"]]
    late = builder.update(trade_frame("X", "A", [t + 40_000 * ms], [3], [2]))
    # newer than A's last 1s bar: a new forming bar; inside the closed minute: corrected
    assert late[["timeframe", "closed", "trades"]].values.tolist() == [["1s", False, 1], ["1m", True, 2]]
    assert builder.late_trades == {"1s": 0, "1m": 1}
    later = builder.update(trade_frame("X", "A", [t + 90_000 * ms], [4], [1]))
    assert later[["timeframe", "closed"]].values.tolist() == [["1s", True], ["1s", False], ["1m", False]]
    assert builder.close_until(t + 3600 * 10**9 * ms).shape[0] == 4  # A and B, 1s and 1m


# -- hub ---------------------------------------------------------------------------------

def rows(first: int, n: int) -> pd.DataFrame:
    return pd.DataFrame({"value": np.arange(first, first + n), "name": [f"r{i}" for i in range(first, first + n)]})


def test_hub_sequence_numbers():
    hub = Hub(maxlen=1000)
    key = ("trades", "X", "A")
    assert hub.publish(key, rows(1, 3)) == 3 and hub.publish(key, rows(4, 2)) == 5
    assert hub.publish(key, rows(6, 0)) == 5
    seq, got = hub.read(key, since=2)
    assert seq == 5 and got.index.tolist() == [3, 4, 5] and got["value"].tolist() == [3, 4, 5]
    assert hub.read(key, since=5)[1].empty and hub.read(key)[1]["name"].tolist()[0] == "r1"
    seq, empty = hub.read(("trades", "X", "unknown"))
    assert seq == 0 and empty.empty
    assert hub.tail(key, 2)["value"].tolist() == [4, 5] and hub.latest(key)["value"].tolist() == [5]
    hub.publish(("quotes", "X", "A"), rows(1, 1))
    assert hub.keys() == [key, ("quotes", "X", "A")] and hub.keys("quotes") == [("quotes", "X", "A")]
    with pytest.raises(ValueError, match="hub key"):
        hub.publish(("trade", "X", "A"), rows(1, 1))
    with pytest.raises(ValueError, match="columns"):
        hub.publish(key, rows(1, 1).rename(columns={"value": "other"}))


def test_hub_memory_is_bounded_and_slow_subscribers_count_drops():
    hub = Hub(maxlen=100)
    key = ("trades", "X", "A")
    subscription = hub.subscribe(key)
    for first in range(1, 1001, 7):
        hub.publish(key, rows(first, min(7, 1001 - first)))
    ring = hub._rings[key]
    assert ring.size == 100 and len(ring.seq) == 100 and ring.evicted == 900
    got = subscription.read()
    assert got["value"].tolist() == list(range(901, 1001)) and subscription.dropped == 900
    hub.publish(key, rows(1001, 5))
    assert subscription.read().index.tolist() == list(range(1001, 1006)) and subscription.dropped == 900
    assert subscription.lag == 0
    hub.publish(key, rows(1006, 250))  # one batch larger than the buffer
    assert subscription.read()["value"].tolist() == list(range(1156, 1256)) and subscription.dropped == 1050


@pytest.mark.parametrize("kind", ["trades", "bars"])
def test_hub_matches_a_list_model(kind):
    """Random batch sizes (some larger than the buffer) against a plain Python list."""
    rng = np.random.default_rng(11)
    hub, maxlen = Hub(maxlen=37), 37
    key = ("bars", "X", "A", "1m") if kind == "bars" else ("trades", "X", "A")
    model, seq, start = [], 0, 0
    for _ in range(300):
        n = int(rng.choice([0, 1, 2, 5, 40, 80]))
        starts = start + np.arange(n) - (1 if kind == "bars" and rng.random() < 0.7 else 0)
        start = starts[-1] + 1 if n else start
        batch = pd.DataFrame({"start": starts, "value": rng.random(n)})
        rows = list(zip(batch["start"], batch["value"]))
        if kind == "bars" and model and rows and rows[0][0] == model[-1][1]:
            seq += 1
            model[-1] = (seq, *rows.pop(0))
        for row in rows:
            seq += 1
            model.append((seq, *row))
        del model[: max(0, len(model) - maxlen)]
        assert hub.publish(key, batch) == seq
        since = int(rng.integers(0, seq + 2))
        last, got = hub.read(key, since)
        expected = [r for r in model if r[0] > since]
        assert last == seq and list(zip(got.index, got["start"], got["value"])) == expected


def test_subscribers_are_counted_until_closed():
    hub = Hub()
    with hub.subscribe(("bars", "X", "A", "1m")) as first:
        second = hub.subscribe(("trades", "X", "A"))
        assert hub.subscribers == 2 and first.read().empty
        second.close()
        second.close()
        assert hub.subscribers == 1
    assert hub.subscribers == 0


def bar_rows(starts, closes, closed) -> pd.DataFrame:
    return pd.DataFrame({"start": pd.to_datetime([f"2024-01-01 {s}" for s in starts]), "close": closes,
                         "closed": closed})


def test_hub_keeps_one_row_per_bar():
    hub = Hub(maxlen=3)
    key = ("bars", "X", "A", "1m")
    subscription = hub.subscribe(key)
    hub.publish(key, bar_rows(["00:00"], [1.0], [False]))
    hub.publish(key, bar_rows(["00:00"], [2.0], [False]))  # the forming bar, updated
    assert subscription.read()["close"].tolist() == [2.0]
    hub.publish(key, bar_rows(["00:00", "00:01"], [3.0, 4.0], [True, False]))
    hub.publish(key, bar_rows(["00:01", "00:02"], [5.0, 6.0], [True, False]))
    assert subscription.read()["close"].tolist() == [3.0, 5.0, 6.0] and subscription.dropped == 0
    assert hub._rings[key].size == 3
    hub.publish(key, bar_rows(["00:00"], [7.0], [True]))  # a late correction of an older bar
    table = hub.latest(key)
    assert table["start"].dt.strftime("%H:%M").tolist() == ["00:00", "00:01", "00:02"]
    assert table["close"].tolist() == [7.0, 5.0, 6.0]
    assert hub.tail(key, 2)["close"].tolist() == [5.0, 6.0]
    hub.publish(key, bar_rows(["00:03"], [8.0], [False]))
    assert subscription.read()["close"].tolist() == [7.0, 8.0] and subscription.dropped == 0
    for minute in range(4, 8):  # evicts 00:02, 00:00, 00:03 (read) and 00:04 (never read)
        hub.publish(key, bar_rows([f"00:0{minute}"], [float(minute)], [False]))
    assert subscription.read()["close"].tolist() == [5.0, 6.0, 7.0] and subscription.dropped == 1


def test_hub_latest_depth_is_the_last_snapshot():
    hub = Hub()
    key = ("depth", "X", "A")
    t = pd.Timestamp("2024-01-01")
    snapshot = lambda at, price: pd.DataFrame({  # noqa: E731
        "timestamp": [at] * 4, "receipt_timestamp": [at] * 4, "side": ["bid", "bid", "ask", "ask"],
        "level": [0, 1, 0, 1], "price": [price - 1, price - 2, price + 1, price + 2]})
    hub.publish(key, pd.concat([snapshot(t, 10.0), snapshot(t + pd.Timedelta(1, "s"), 20.0)]))
    assert hub.latest(key)["price"].tolist() == [19.0, 18.0, 21.0, 22.0]


def test_groups_number_keys_by_first_appearance():
    exchange = np.array(["K", "B", "K", "B", "K"], dtype=object)
    symbol = np.array(["S1", "S0", "S0", "S0", "S1"], dtype=object)
    groups = Groups([exchange, symbol])
    assert groups.keys == [("K", "S1"), ("K", "S0"), ("B", "S0")] and groups.bounds.tolist() == [0, 2, 3, 5]
    assert groups.take(np.arange(5)).tolist() == [0, 4, 2, 1, 3]  # stable within a key
    grouped = Groups([exchange[[0, 4, 2, 1, 3]], symbol[[0, 4, 2, 1, 3]]])
    assert grouped.order is None and grouped.keys == groups.keys
    assert Groups([np.array(["A", None, "A"], dtype=object)]).keys == [("A",), (None,)]
    assert Groups([exchange[:0]]).keys == [] and Groups([exchange[:0]]).bounds.tolist() == [0]


def random_bar_batches(rng, batches: int) -> list:
    """Bars of 3 keys and 2 timeframes: forming updates, closes, gaps and late corrections."""
    newest = {}
    out = []
    for _ in range(batches):
        parts = []
        for key in [(e, s, tf) for e in ("B", "K") for s in ("X", "Y") for tf in ("1m", "5m")][: rng.integers(1, 9)]:
            last = newest.get(key, 0)
            starts = np.sort(last + rng.integers(-3, 3, rng.choice([1, 1, 1, 2, 2, 3, 5])))
            newest[key] = max(last, starts[-1])
            parts.append(pd.DataFrame({"exchange": key[0], "symbol": key[1], "timeframe": key[2],
                                       "start": pd.Timestamp("2024-01-01") + pd.to_timedelta(starts, "min"),
                                       "close": rng.random(len(starts)), "closed": rng.random(len(starts)) < 0.5}))
        batch = pd.concat(parts, ignore_index=True)
        out.append(batch.sample(frac=1.0, random_state=int(rng.integers(1000))) if rng.random() < 0.3 else batch)
    return out


@pytest.mark.parametrize("maxlen", [4, 1000])
def test_batch_publish_equals_publishing_each_key(maxlen):
    """The hub's batch path (rows of many keys, bars upserted in place) against one publish per key."""
    batched, alone = Hub(maxlen=maxlen), Hub(maxlen=maxlen)
    for batch in random_bar_batches(np.random.default_rng(3), 200):
        result = batched.publish_batch("bars", batch)
        for (exchange, symbol, timeframe), rows in batch.groupby(["exchange", "symbol", "timeframe"], sort=False):
            key = ("bars", exchange, symbol, timeframe)
            assert alone.publish(key, rows.reset_index(drop=True)) == result[key]
    assert batched.keys() == alone.keys()
    for key in alone.keys():
        pd.testing.assert_frame_equal(batched.read(key)[1], alone.read(key)[1])
        assert batched.stats()[key] == alone.stats()[key]


def test_reads_never_wait_for_a_publishing_thread():
    hub = Hub(maxlen=500)
    key = ("trades", "X", "A")
    stop = threading.Event()

    def publish():
        first = 1
        while not stop.is_set():
            hub.publish(key, rows(first, 13))
            first += 13

    subscription = hub.subscribe(key)
    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    seen, reads, last = 0, 0, 0
    while reads < 300 or seen == 0:
        got = subscription.read()
        reads += 1
        if len(got):
            assert (got.index.to_numpy() == got["value"].to_numpy()).all()
            assert (np.diff(got.index.to_numpy()) == 1).all() and got.index[0] > last
            last, seen = got.index[-1], seen + len(got)
    concurrent = publisher.is_alive()
    stop.set()
    publisher.join(timeout=30)
    assert concurrent and not publisher.is_alive()
    assert seen + subscription.dropped == subscription.seq
    assert hub._rings[key].size <= 500


# -- pipeline ----------------------------------------------------------------------------

@pytest.fixture
def quotes() -> pd.DataFrame:
    raw = pd.read_csv(DATA / "btcusdt-quotes.csv.gz")
    stamps = pd.to_datetime(raw["timestamp"]).dt.tz_localize(None)
    return conform("quotes", raw.assign(exchange="BINANCE", symbol="BTC-USDT", timestamp=stamps,
                                        receipt_timestamp=stamps, source="book"))


def depth_snapshots(quotes: pd.DataFrame) -> pd.DataFrame:
    """Two-level books at each quote (level 1 one tick away)."""
    q = quotes.iloc[:50]
    parts = []
    for side, level, price, size in [("bid", 0, q["bid"], q["bid_size"]), ("bid", 1, q["bid"] - 0.01, q["bid_size"]),
                                     ("ask", 0, q["ask"], q["ask_size"]), ("ask", 1, q["ask"] + 0.01, q["ask_size"])]:
        parts.append(q[["exchange", "symbol", "timestamp", "receipt_timestamp"]].assign(
            side=side, level=level, price=price, size=size, order=np.arange(len(q))))
    return conform("depth", pd.concat(parts).sort_values(["order", "side", "level"], kind="stable"))


def test_pipeline_end_to_end_into_the_real_store(tmp_path, mixed, quotes):
    store = TickStore(f"lmdb://{tmp_path}")
    writer = StoreWriter(store, flush_interval=0.05, compact_interval=None)
    pipeline = Pipeline(writer=writer, hub=Hub(maxlen=20_000))
    emitted = []
    tap = pipeline.bars.sink(emitted.append)
    for batch in random_batches(mixed, np.random.default_rng(5)):
        pipeline.emit("trades", batch.reset_index(drop=True))
    for first in range(0, len(quotes), 70):
        pipeline.emit("quotes", quotes.iloc[first:first + 70])
    depth = depth_snapshots(quotes)
    pipeline.emit("depth", depth)
    hub = pipeline.hub
    for (exchange, symbol), trades in mixed.groupby(["exchange", "symbol"]):
        seq, held = hub.read(("trades", exchange, symbol))
        assert seq == len(trades)
        pd.testing.assert_frame_equal(held.reset_index(drop=True), trades.reset_index(drop=True))
        for timeframe in TIMEFRAMES:
            table = hub.latest(("bars", exchange, symbol, timeframe)).set_index("start")
            pd.testing.assert_frame_equal(table[FIELDS], ohlcv(trades, timeframe)[FIELDS],
                                          check_exact=True, check_freq=False)
            assert table["closed"].tolist() == [True] * (len(table) - 1) + [False]
    assert len(hub.latest(("depth", "BINANCE", "BTC-USDT"))) == 4
    assert hub.read(("quotes", "BINANCE", "BTC-USDT"))[0] == len(quotes)
    pipeline.tick(mixed["timestamp"].max() + pd.Timedelta(hours=2))  # the clock closes every bar
    xrp = mixed[mixed["symbol"] == "XRP-ETH"]
    late = trade_frame("BINANCE", "XRP-ETH", [xrp["timestamp"].iloc[-1] - pd.Timedelta(1, "ms")], [0.0016], [7])
    pipeline.emit("trades", late)  # corrects the last bar of every timeframe, already stored
    mixed = pd.concat([mixed, late]).sort_values("timestamp", kind="stable")
    assert writer.flush(timeout=120)
    for (exchange, symbol), trades in mixed.groupby(["exchange", "symbol"]):
        stored = store.read_trades(exchange, symbol)
        assert len(stored) == len(trades) and (stored["price"].to_numpy() == trades["price"].to_numpy()).all()
        for timeframe in TIMEFRAMES:
            bars = store.read_bars(exchange, symbol, timeframe)
            pd.testing.assert_frame_equal(bars[FIELDS], ohlcv(trades, timeframe)[FIELDS], check_exact=True,
                                          check_names=False, check_freq=False)
    assert len(store.read_quotes("BINANCE", "BTC-USDT")) == len(quotes)
    stats = pipeline.stats
    assert stats["rows"] == {"trades": len(mixed), "quotes": len(quotes), "depth": len(depth)}
    assert stats["late_trades"] == dict.fromkeys(TIMEFRAMES, 1)
    assert stats["bars_closed"] == sum(len(ohlcv(mixed, tf)) + 1 for tf in TIMEFRAMES)
    assert pipeline.hub_latency.count == len(mixed)
    assert sum(len(b) for b in emitted) > 0
    tap.destroy()
    pipeline.close()
    writer.close(timeout=60)


def test_close_destroys_the_streamz_nodes(btc):
    before = len(streamz.sinks._global_sinks)
    pipeline = Pipeline(writer=None)
    assert len(streamz.sinks._global_sinks) > before
    pipeline.close()
    pipeline.close()
    assert len(streamz.sinks._global_sinks) == before
    assert not pipeline.trades.downstreams and not pipeline.bars.downstreams
    pipeline.emit("trades", btc)
    assert pipeline.hub.keys() == [] and pipeline.stats["rows"]["trades"] == 0


def test_bad_batches_are_value_errors(btc):
    pipeline = Pipeline()
    with pytest.raises(ValueError, match="kind"):
        pipeline.emit("bars", btc)
    with pytest.raises(ValueError, match="price"):
        pipeline.emit("trades", btc.drop(columns="price"))
    pipeline.close()


async def test_the_clock_runs_on_the_event_loop_at_the_market_time(btc):
    pipeline = Pipeline(loop=asyncio.get_running_loop(), tick_interval=0.01, close_delay=0)
    pipeline.emit("trades", btc)  # recorded in 2021: the clock continues from its last trade
    key = ("bars", "BINANCE", "BTC-USDT", "1s")
    deadline = asyncio.get_running_loop().time() + 30
    while not pipeline.hub.latest(key)["closed"].all():  # the last second ends ~0.3 s later
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    assert len(pipeline.hub.latest(key)) == len(ohlcv(btc, "1s"))
    assert pipeline.hub.latest(("bars", "BINANCE", "BTC-USDT", "1m"))["closed"].tolist() == [False]
    pipeline.close()


def test_the_hub_reports_the_largest_lag_of_its_open_subscriptions():
    hub = Hub(maxlen=100)
    key, other = ("trades", "BINANCE", "BTC-USDT"), ("trades", "KRAKEN", "BTC-USDT")
    behind, current = hub.subscribe(key), hub.subscribe(other)
    hub.publish(key, pd.DataFrame({"price": [1.0, 2.0, 3.0]}))
    hub.publish(other, pd.DataFrame({"price": [1.0]}))
    current.read()
    assert hub.max_lag() == 3
    behind.read()
    assert hub.max_lag() == 0
    hub.publish(other, pd.DataFrame({"price": [2.0, 3.0]}))
    assert hub.max_lag() == 2
    current.close()
    assert hub.max_lag() == 0 and hub.subscribers == 1
