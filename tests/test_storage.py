"""The ArcticDB tick store and its writer thread, on real trades, quotes and bars."""

import gc
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics import schema
from analytics.storage import LockError, StoreError, StoreWriter, TickStore

# ArcticDB 6.28 builds its frames through a pandas path that pandas 2.3 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Passing a BlockManagerUnconsolidated:DeprecationWarning")
ROOT = Path(__file__).parents[1]
DATA = ROOT.parent / "shared" / "data"


def real_trades(exchange="BINANCE", symbol="BTC-USDT") -> pd.DataFrame:
    """Binance BTCUSDT trades (2,001 rows) in the trades schema."""
    raw = pd.read_csv(DATA / "trades" / "btcusdt-trades.csv.gz")
    ts = pd.to_datetime(raw["timestamp"]).dt.tz_localize(None)
    return schema.conform("trades", pd.DataFrame({
        "exchange": exchange, "symbol": symbol, "timestamp": ts,
        "receipt_timestamp": ts + pd.Timedelta("3ms"),
        "price": raw["price"], "amount": raw["quantity"],
        "side": np.where(raw["buyer_maker"], "sell", "buy"),
        "trade_id": raw["trade_id"].astype("int64"),
    }))


def real_quotes() -> pd.DataFrame:
    """Binance BTCUSDT best bid/ask (451 rows) in the quotes schema."""
    raw = pd.read_csv(DATA / "trades" / "btcusdt-quotes.csv.gz")
    ts = pd.to_datetime(raw["timestamp"]).dt.tz_localize(None)
    return schema.conform("quotes", pd.DataFrame({
        "exchange": "BINANCE", "symbol": "BTC-USDT", "timestamp": ts, "receipt_timestamp": ts,
        "bid": raw["bid"], "bid_size": raw["bid_size"], "ask": raw["ask"], "ask_size": raw["ask_size"],
        "source": "book",
    }))


def real_bars(rows=500) -> pd.DataFrame:
    """One-minute BTC perpetual bars in the bars schema."""
    raw = pd.read_csv(DATA / "bars" / "btc-perp-20211231-20220201_1m.csv.gz", nrows=rows)
    return schema.conform("bars", pd.DataFrame({
        "exchange": "BINANCE", "symbol": "BTC-USDT", "timeframe": "1m",
        "start": pd.to_datetime(raw["timestamp"]), "open": raw["open"], "high": raw["high"],
        "low": raw["low"], "close": raw["close"], "volume": raw["volume"],
        "vwap": (raw["high"] + raw["low"] + raw["close"]) / 3, "trades": (raw["volume"] // 1000).astype(np.int64),
        "closed": True,
    }))


def stored_form(kind: str, batch: pd.DataFrame) -> pd.DataFrame:
    """What the store should give back for a one-symbol batch, in index order."""
    keys = ["exchange", "symbol", "timeframe"] if kind == "bars" else ["exchange", "symbol"]
    index = "start" if kind == "bars" else "timestamp"
    return batch.drop(columns=keys).set_index(index).sort_index(kind="stable")


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a fixed order (equal timestamps may be stored in any order)."""
    return frame.reset_index().sort_values(list(frame.reset_index().columns[:1]) + ["trade_id"]).reset_index(drop=True)


@pytest.fixture
def store(tmp_path):
    return TickStore(f"lmdb://{tmp_path}")


def wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.mark.parametrize("kind, load", [("trades", real_trades), ("quotes", real_quotes), ("bars", real_bars)],
                         ids=["trades", "quotes", "bars"])
def test_round_trip_keeps_values_and_dtypes(store, kind, load):
    batch = load()
    assert store.write(kind, batch) == len(batch)
    read = {"trades": lambda: store.read_trades("BINANCE", "BTC-USDT"),
            "quotes": lambda: store.read_quotes("BINANCE", "BTC-USDT"),
            "bars": lambda: store.read_bars("BINANCE", "BTC-USDT", "1m")}[kind]()
    pd.testing.assert_frame_equal(read, stored_form(kind, batch))


def test_range_reads_are_inclusive_and_check_their_arguments(store):
    trades = real_trades()
    store.write("trades", trades)
    start, end = trades["timestamp"].iloc[100], trades["timestamp"].iloc[900]
    expected = stored_form("trades", trades).loc[start:end]
    pd.testing.assert_frame_equal(store.read_trades("BINANCE", "BTC-USDT", str(start), end), expected)
    aware = store.read_trades("BINANCE", "BTC-USDT", start.tz_localize("UTC").tz_convert("Asia/Tokyo"), end)
    pd.testing.assert_frame_equal(aware, expected)
    assert store.read_trades("BINANCE", "BTC-USDT", start="2030-01-01").empty
    with pytest.raises(ValueError, match="start='yesterday-ish' is not a date"):
        store.read_trades("BINANCE", "BTC-USDT", start="yesterday-ish")
    with pytest.raises(ValueError, match="is after end"):
        store.read_trades("BINANCE", "BTC-USDT", end, start)
    with pytest.raises(ValueError) as error:
        store.read_trades("KRAKEN", "BTC-USD")
    assert str(error.value) == "no trades stored for KRAKEN BTC-USD; stored: BINANCE/BTC-USDT"
    with pytest.raises(ValueError, match="no bars stored for BINANCE BTC-USDT 1m; stored: nothing"):
        store.read_bars("BINANCE", "BTC-USDT", "1m")


def test_trades_are_deduplicated_within_a_batch_and_across_restarts(tmp_path):
    trades = real_trades()
    first = TickStore(f"lmdb://{tmp_path}")
    doubled = pd.concat([trades.iloc[:1200], trades.iloc[600:1200]], ignore_index=True)
    assert first.write("trades", doubled) == 1200
    backend = weakref.ref(first._backend)
    del first
    gc.collect()
    assert backend() is None  # the restarted store reads its tail from disk, not from memory
    restarted = TickStore(f"lmdb://{tmp_path}")
    overlap = trades.iloc[1000:].copy()
    overlap["receipt_timestamp"] += pd.Timedelta("1h")  # re-received later: same trades
    assert restarted.write("trades", overlap) == len(trades) - 1200
    assert restarted.write("trades", trades) == 0
    stored = restarted.read_trades("BINANCE", "BTC-USDT")
    assert stored.index.is_monotonic_increasing
    expected = pd.concat([trades.iloc[:1200], overlap.iloc[200:]])  # the rows as first stored
    pd.testing.assert_frame_equal(canonical(stored), canonical(stored_form("trades", expected)))


def test_late_trades_are_merged_in_order(store):
    trades = real_trades()
    late = trades.iloc[300:700:3]
    on_time = trades.drop(late.index)
    for start in range(0, len(on_time), 250):  # small appends, as the pipeline makes them
        store.write("trades", on_time.iloc[start:start + 250])
    assert store.write("trades", late.sample(frac=1, random_state=0)) == len(late)
    assert store.write("trades", late) == 0
    stored = store.read_trades("BINANCE", "BTC-USDT")
    assert stored.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(canonical(stored), canonical(stored_form("trades", trades)))


def test_bars_are_upserted_by_start(store):
    bars = real_bars(300)
    store.write("bars", bars.iloc[:200])
    forming = bars.iloc[[199]].assign(close=1.0, closed=False)
    assert store.write("bars", pd.concat([forming, bars.iloc[[199]]], ignore_index=True)) == 1  # last wins
    assert store.write("bars", forming) == 1
    revised = bars.iloc[50:60].assign(volume=0.0)  # older bars rewritten, with the next ones
    store.write("bars", pd.concat([revised, bars.iloc[200:]], ignore_index=True))
    expected = stored_form("bars", bars)
    expected.iloc[50:60, expected.columns.get_loc("volume")] = 0.0
    expected.iloc[199] = stored_form("bars", forming).iloc[0]
    pd.testing.assert_frame_equal(store.read_bars("BINANCE", "BTC-USDT", "1m"), expected)


def test_quotes_drop_exact_repeats_only(store):
    quotes = real_quotes()
    quotes.loc[quotes.index[::2], ["bid_size", "ask_size"]] = np.nan  # ticker quotes have no sizes
    identity = ["timestamp", "bid", "bid_size", "ask", "ask_size", "source"]
    unique = quotes.drop_duplicates(identity)  # the reference: pandas' own duplicate test
    repeated = pd.concat([quotes.iloc[:300], quotes.iloc[250:300]], ignore_index=True)
    first = store.write("quotes", repeated)
    assert first == len(quotes.iloc[:300].drop_duplicates(identity))
    again = quotes.iloc[280:].copy()
    again["receipt_timestamp"] += pd.Timedelta("2s")
    assert store.write("quotes", again) == len(unique) - first
    changed = quotes.iloc[[-1]].assign(bid=1.0)  # same time, new values: a new quote
    assert store.write("quotes", changed) == 1
    stored = store.read_quotes("BINANCE", "BTC-USDT")
    assert len(stored) == len(unique) + 1 and stored.index.is_monotonic_increasing
    assert not stored.reset_index().duplicated(identity).any()


def test_compaction_keeps_data_reduces_segments_and_prunes_versions(store):
    trades = real_trades()
    for start in range(0, len(trades), 20):
        store.write("trades", trades.iloc[start:start + 20])
    library = store._backend.libraries["trades"]
    before = library.compact_data_explain_plan("BINANCE/BTC-USDT").num_row_slices_before
    assert before == 101
    assert len(library.list_versions("BINANCE/BTC-USDT")) == 1  # appends prune previous versions
    assert store.compact(min_segments=200) == 0
    assert store.compact(min_segments=50) == 1
    assert library.compact_data_explain_plan("BINANCE/BTC-USDT").num_row_slices_before == 1
    assert len(library.list_versions("BINANCE/BTC-USDT")) == 1
    pd.testing.assert_frame_equal(store.read_trades("BINANCE", "BTC-USDT"), stored_form("trades", trades))
    assert store.write("trades", trades.iloc[-5:]) == 0  # still de-duplicated after compaction


def test_writer_stores_everything_exactly_once(store):
    trades = pd.concat([real_trades(), real_trades("KRAKEN", "BTC-USD")], ignore_index=True)
    bars = real_bars(200)
    writer = StoreWriter(store, flush_interval=0.02)
    commits = []
    writer.on_commit.append(lambda kind, rows: commits.append((kind, rows)))

    def produce():  # many small batches from another thread, with repeats
        for start in range(0, len(trades), 37):
            writer.submit("trades", trades.iloc[max(0, start - 5):start + 37])
        for start in range(0, len(bars), 10):
            writer.submit("bars", bars.iloc[start:start + 10])

    producer = threading.Thread(target=produce)
    producer.start()
    producer.join()
    assert writer.flush(timeout=60)
    assert writer.backlog_rows == 0
    assert writer.rows_stored["trades"] == len(trades) and writer.rows_stored["bars"] == len(bars)
    assert writer.latency.count == len(trades)
    assert sum(rows for kind, rows in commits if kind == "trades") == len(trades)
    writer.submit("trades", trades.iloc[:10])
    writer.submit("quotes", real_quotes())
    assert writer.close(timeout=60)
    with pytest.raises(ValueError, match="closed"):
        writer.submit("trades", trades)
    assert writer.errors == 0 and writer.rows_stored["quotes"] == 451
    for exchange, symbol in [("BINANCE", "BTC-USDT"), ("KRAKEN", "BTC-USD")]:
        stored = store.read_trades(exchange, symbol)
        assert len(stored) == 2001 and not stored.duplicated().any()
    pd.testing.assert_frame_equal(store.read_bars("BINANCE", "BTC-USDT", "1m"), stored_form("bars", bars))


def test_writer_rejects_bad_arguments(store):
    with StoreWriter(store) as writer:
        with pytest.raises(ValueError, match="unknown kind 'depth'"):
            writer.submit("depth", schema.empty("depth"))
        with pytest.raises(ValueError, match="lacks columns"):
            writer.submit("trades", pd.DataFrame({"price": [1.0]}))
    with pytest.raises(ValueError, match="positive"):
        StoreWriter(store, flush_interval=0)


HOLDER = """
import sys
from analytics.storage import TickStore
from tests.test_storage import real_trades
store = TickStore(sys.argv[1])
store.write("trades", real_trades().iloc[:10])
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def lock_holder(tmp_path):
    """Another process that has written BINANCE/BTC-USDT trades and holds its lock until stdin closes."""
    child = subprocess.Popen([sys.executable, "-c", HOLDER, f"lmdb://{tmp_path}"], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    yield child
    child.stdin.close()
    child.wait(timeout=60)


def test_second_writer_process_gets_a_clear_error(store, lock_holder, tmp_path):
    with pytest.raises(LockError) as error:
        store.write("trades", real_trades())
    message = str(error.value)
    assert "\n" not in message and "trades BINANCE/BTC-USDT is being written by another process" in message
    assert store.write("trades", real_trades("BINANCE", "ETH-USDT")) == 2001  # other symbols are free
    assert len(store.read_trades("BINANCE", "BTC-USDT")) == 10  # readers never lock


def test_writer_retries_until_the_lock_is_free(store, lock_holder):
    writer = StoreWriter(store, flush_interval=0.02, retry_delay=0.02)
    writer.submit("trades", real_trades())
    wait_until(lambda: writer.errors >= 2)
    assert "another process" in writer.last_error and writer.backlog_rows == 2001
    lock_holder.stdin.close()
    lock_holder.wait(timeout=60)
    assert writer.close(timeout=60)
    assert writer.rows_stored["trades"] == 2001 - 10  # the holder's 10 rows were not stored twice
    assert len(store.read_trades("BINANCE", "BTC-USDT")) == 2001


def test_any_arcticdb_uri_is_accepted():
    first, second = TickStore("mem://"), TickStore("mem://")
    assert first.write("trades", real_trades()) == 2001
    assert len(first.read_trades("BINANCE", "BTC-USDT")) == 2001
    assert second.symbols().empty  # each mem:// store is its own


@pytest.mark.parametrize("uri", ["foo://bar", "no-scheme", "lmdb:///{file}/store"], ids=["scheme", "bare", "file"])
def test_an_unusable_store_gives_one_line(tmp_path, uri):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StoreError) as error:
        TickStore(uri.format(file=blocker))
    assert "\n" not in str(error.value) and str(error.value).startswith(("cannot open store", "invalid store URI"))


def test_symbols_version_and_snapshots(store):
    store.write("trades", pd.concat([real_trades(), real_trades("KRAKEN", "BTC-USD")], ignore_index=True))
    bars = real_bars(100)
    store.write("bars", pd.concat([bars, bars.assign(timeframe="5m")], ignore_index=True))
    listing = store.symbols()
    assert listing[["exchange", "symbol", "rows"]].values.tolist() == [["BINANCE", "BTC-USDT", 2001],
                                                                       ["KRAKEN", "BTC-USD", 2001]]
    assert listing["start"].dtype == "datetime64[ns]" and listing["end"].iloc[0] == real_trades()["timestamp"].max()
    assert store.symbols("bars")["timeframe"].tolist() == ["1m", "5m"]
    assert store.symbols("quotes").empty
    assert store.snapshot("report-1") == "report-1"
    store.write("bars", bars.iloc[[-1]].assign(close=0.0))
    assert store.read_bars("BINANCE", "BTC-USDT", "1m", as_of="report-1")["close"].iloc[-1] == bars["close"].iloc[-1]
    version = store.version()
    assert version["snapshots"] == ["report-1"] and set(version["libraries"]["bars"]) == {
        "BINANCE/BTC-USDT/1m", "BINANCE/BTC-USDT/5m"}
    held = store.version(as_of="report-1")["libraries"]
    assert held["bars"]["BINANCE/BTC-USDT/1m"] == version["libraries"]["bars"]["BINANCE/BTC-USDT/1m"] - 1
    assert held["bars"]["BINANCE/BTC-USDT/5m"] == version["libraries"]["bars"]["BINANCE/BTC-USDT/5m"]
    assert held["quotes"] == {} and store.version(as_of="nope")["libraries"]["bars"] == {}
    with pytest.raises(ValueError, match="already exists"):
        store.snapshot("report-1")


@pytest.mark.parametrize("long_ties", [False, True], ids=["short-ties", "long-ties"])
def test_multi_symbol_batches_are_deduplicated_like_pandas(store, long_ties):
    """Shuffled symbols, repeats inside tied times (short or long runs), repeats of stored rows."""
    trades = pd.concat([real_trades(), real_trades("KRAKEN", "BTC-USD")], ignore_index=True)
    run = trades.groupby(["exchange", "timestamp"])["trade_id"].transform("size")
    trades = trades if long_ties else trades[run.to_numpy() <= 3]  # doubled: runs of at most 6 rows
    burst = trades.iloc[[0] * 40].assign(timestamp=trades["timestamp"].iloc[1500],
                                         trade_id=np.arange(40) % 25 + 10**12)  # 40 rows, 25 trades, one time
    batch = pd.concat([trades, burst if long_ties else None, trades.sample(500, random_state=1)], ignore_index=True)
    batch = batch.sample(frac=1, random_state=2, ignore_index=True)
    identity = ["exchange", "symbol", "timestamp", "trade_id"]
    expected = batch.drop_duplicates(identity)  # the reference: pandas' own duplicate test, first kept
    first, second = batch.iloc[:3000], batch.iloc[2500:]
    result = store.write_result("trades", [first, second.iloc[:100], second.iloc[100:]])
    assert result.rows == len(expected) and not result.failed and len(result.receipts) == len(expected)
    assert store.write("trades", batch) == 0
    for (exchange, symbol), rows in expected.groupby(["exchange", "symbol"]):
        stored = store.read_trades(exchange, symbol)
        assert stored.index.is_monotonic_increasing
        pd.testing.assert_frame_equal(canonical(stored), canonical(stored_form("trades", rows)))


def test_writer_flushes_on_its_deadline_and_on_max_rows(store):
    trades = real_trades()
    with StoreWriter(store, flush_interval=0.05, compact_interval=None) as writer:
        writer.submit("trades", trades.iloc[:1000])
        wait_until(lambda: writer.rows_stored["trades"] == 1000)  # no flush() call: the deadline
    with StoreWriter(store, flush_interval=3600, max_rows=500, compact_interval=None) as writer:
        writer.submit("trades", trades.iloc[1000:])
        wait_until(lambda: writer.rows_stored["trades"] == 1001)  # far before the deadline: max_rows
        assert writer.backlog_rows == 0
    assert len(store.read_trades("BINANCE", "BTC-USDT")) == 2001
