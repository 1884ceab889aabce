"""analytics.bars.ohlcv against the golden candles and a per-bar Python loop."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.bars import ohlcv, segment_sums, timeframe_ns

DATA = Path(__file__).parents[1].parent / "shared" / "data" / "trades"


@pytest.fixture(scope="module")
def xrp() -> pd.DataFrame:
    raw = pd.read_csv(DATA / "XRP_ETH-trades.csv.gz")
    return pd.DataFrame({"timestamp": pd.to_datetime(raw["timestamp"], unit="ms"),
                         "price": raw["price"], "amount": raw["amount"]})


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    raw = pd.read_csv(DATA / "btcusdt-trades.csv.gz")
    return pd.DataFrame({"timestamp": pd.to_datetime(raw["timestamp"]).dt.tz_localize(None),
                         "price": raw["price"], "amount": raw["quantity"]})


def loop_bars(trades: pd.DataFrame, step_ns: int) -> pd.DataFrame:
    """The slow, obvious reference: one Python step per trade, in time order."""
    bars = {}
    ordered = trades.sort_values("timestamp", kind="stable")
    for ts, price, amount in zip(ordered["timestamp"].astype("int64"), ordered["price"], ordered["amount"]):
        start = ts // step_ns * step_ns
        bar = bars.setdefault(start, {"open": price, "high": price, "low": price, "close": price,
                                      "volume": 0.0, "notional": 0.0, "trades": 0})
        bar["high"], bar["low"], bar["close"] = max(bar["high"], price), min(bar["low"], price), price
        bar["volume"] += amount
        bar["notional"] += price * amount
        bar["trades"] += 1
    frame = pd.DataFrame.from_dict(bars, orient="index").sort_index()
    frame.index = pd.DatetimeIndex(frame.index.to_numpy().astype("datetime64[ns]"), name="start")
    frame["vwap"] = frame.pop("notional") / frame["volume"]
    return frame


@pytest.mark.parametrize("timeframe", ["1m", "5m"])
def test_equals_golden_candles_exactly(xrp, timeframe):
    golden = pd.read_csv(DATA / f"XRP_ETH-{timeframe}.csv.gz")
    golden.index = pd.DatetimeIndex(pd.to_datetime(golden.pop("timestamp")).dt.tz_localize(None), name="start")
    bars = ohlcv(xrp, timeframe)
    assert len(bars) == len(golden) == {"1m": 2469, "5m": 706}[timeframe]
    pd.testing.assert_frame_equal(bars[golden.columns.tolist()], golden, check_exact=True, check_freq=False)


@pytest.mark.parametrize("data,timeframe", [("xrp", "1s"), ("xrp", "1m"), ("xrp", "5m"), ("xrp", "1h"),
                                            ("btc", "1s"), ("btc", "15s"), ("btc", "1m")])
def test_every_field_equals_a_per_trade_loop(request, data, timeframe):
    trades = request.getfixturevalue(data)
    bars = ohlcv(trades, timeframe)
    expected = loop_bars(trades, timeframe_ns(timeframe))
    pd.testing.assert_frame_equal(bars, expected[bars.columns.tolist()], check_exact=True, check_freq=False)
    assert bars["trades"].sum() == len(trades)


def test_a_tz_aware_datetime_index_works_like_the_column(xrp):
    by_index = xrp.set_index(xrp["timestamp"].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo"))
    pd.testing.assert_frame_equal(ohlcv(by_index.drop(columns="timestamp"), "5m"), ohlcv(xrp, "5m"),
                                  check_exact=True)


def test_unsorted_trades_are_ordered_by_time(xrp):
    expected = ohlcv(xrp, "5m")
    result = ohlcv(xrp.sample(frac=1.0, random_state=3), "5m")
    for name in ("high", "low", "trades"):  # open/close of tied timestamps follow input order
        pd.testing.assert_series_equal(result[name], expected[name], check_exact=True)
    np.testing.assert_allclose(result[["volume", "vwap"]], expected[["volume", "vwap"]], rtol=1e-12)


def test_groups_by_exchange_and_symbol(xrp, btc):
    both = pd.concat([xrp.assign(exchange="BINANCE", symbol="XRP-ETH"),
                      btc.assign(exchange="KRAKEN", symbol="BTC-USDT"),
                      btc.assign(exchange="BINANCE", symbol="BTC-USDT")]).sort_values("timestamp", kind="stable")
    bars = ohlcv(both, "1m")
    assert list(bars.columns[:2]) == ["exchange", "symbol"]
    assert list(bars.drop_duplicates(["exchange", "symbol"])[["exchange", "symbol"]].itertuples(index=False)) == [
        ("BINANCE", "BTC-USDT"), ("BINANCE", "XRP-ETH"), ("KRAKEN", "BTC-USDT")]
    for (exchange, symbol), alone in [(("BINANCE", "XRP-ETH"), xrp), (("KRAKEN", "BTC-USDT"), btc)]:
        part = bars[(bars["exchange"] == exchange) & (bars["symbol"] == symbol)]
        pd.testing.assert_frame_equal(part.drop(columns=["exchange", "symbol"]), ohlcv(alone, "1m"),
                                      check_exact=True)


def test_empty_trades_give_an_empty_frame():
    empty = pd.DataFrame({"timestamp": pd.Series(dtype="datetime64[ns]"), "price": [], "amount": []})
    bars = ohlcv(empty, "1m")
    assert bars.empty and list(bars.columns) == ["open", "high", "low", "close", "volume", "vwap", "trades"]


@pytest.mark.parametrize("timeframe", ["bogus", "1M", "0s", None, "-1min"])
def test_bad_timeframe_is_a_one_line_value_error(xrp, timeframe):
    with pytest.raises(ValueError, match="timeframe") as info:
        ohlcv(xrp, timeframe)
    assert "\n" not in str(info.value)


def test_bad_trades_are_value_errors(xrp):
    with pytest.raises(ValueError, match="amount"):
        ohlcv(xrp.drop(columns="amount"), "1m")
    with pytest.raises(ValueError, match="timestamp"):
        ohlcv(xrp.drop(columns="timestamp"), "1m")
    with pytest.raises(ValueError, match="datetimes"):
        ohlcv(xrp.assign(timestamp=1), "1m")


def test_timeframes_from_the_schema_and_pandas_aliases():
    assert timeframe_ns("1s") == 10**9 and timeframe_ns("1m") == 60 * 10**9
    assert timeframe_ns("5m") == 300 * 10**9 and timeframe_ns("1h") == timeframe_ns("60min")
    assert timeframe_ns("15min") == 900 * 10**9


def test_segment_sums_continue_exactly_across_any_split():
    rng = np.random.default_rng(7)
    values = rng.lognormal(size=5000) * 10.0 ** rng.integers(-6, 6, 5000)
    offsets = np.r_[0, np.sort(rng.choice(np.arange(1, 5000), 40, replace=False))]
    bounds = np.r_[offsets, 5000]
    expected = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        total = 0.0
        for v in values[a:b]:
            total += v
        expected.append(total)
    assert segment_sums(values, offsets).tolist() == expected
    # the same segments fed in two halves, the second continuing the first's sums
    cut = {a: a + (b - a) // 2 for a, b in zip(bounds[:-1], bounds[1:])}
    first = np.concatenate([values[a:cut[a]] for a in bounds[:-1]])
    second = np.concatenate([values[cut[a]:b] for a, b in zip(bounds[:-1], bounds[1:])])
    sizes = np.array([cut[a] - a for a in bounds[:-1]])
    nonempty = sizes > 0
    partial = np.zeros(len(offsets))
    partial[nonempty] = segment_sums(first, np.r_[0, np.cumsum(sizes)[:-1]][nonempty])
    rest = bounds[1:] - np.array([cut[a] for a in bounds[:-1]])
    assert segment_sums(second, np.r_[0, np.cumsum(rest)[:-1]], partial).tolist() == expected


@pytest.mark.parametrize("lengths", [[1], [5000], [3, 4000], [1] * 300 + [2000, 17, 600]],
                         ids=["one value", "one long segment", "two segments", "mixed lengths"])
def test_segment_sums_equal_a_per_value_loop(lengths):
    rng = np.random.default_rng(len(lengths))
    values = rng.lognormal(size=(sum(lengths), 2)) * 10.0 ** rng.integers(-6, 6, (sum(lengths), 2))
    init = rng.lognormal(size=(len(lengths), 2)) * 1e3
    offsets = np.r_[0, np.cumsum(lengths)[:-1]]
    expected = init.copy()
    for segment, (a, n) in enumerate(zip(offsets, lengths)):
        for row in values[a:a + n]:
            expected[segment] += row
    assert segment_sums(values, offsets, init).tolist() == expected.tolist()
    assert segment_sums(values[:, 1], offsets, init[:, 1]).tolist() == expected[:, 1].tolist()
