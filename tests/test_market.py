"""The simulated market: stylized facts against real one-minute BTC bars, and the trades path."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.exchange.market import COIN_SPECS, DEFAULT_COINS, DT, MarketModel, simulate_bars

DATA = Path(__file__).parents[1].parent / "shared" / "data"
START = 1_700_000_000.0  # 2023-11-14 22:13 UTC
MINUTES_PER_YEAR = 525_600


def facts(log_close: pd.Series) -> dict:
    """Stylized facts of one-minute log returns."""
    r = log_close.diff().dropna()
    a = r.abs()
    return {
        "excess_kurtosis": r.kurt(),
        "abs_acf": np.array([a.autocorr(lag) for lag in range(1, 31)]),
        "acf1": r.autocorr(1),
        "annual_vol": r.std() * math.sqrt(MINUTES_PER_YEAR),
    }


@pytest.fixture(scope="module")
def real():
    bars = pd.read_csv(DATA / "bars" / "btc-perp-20211231-20220201_1m.csv.gz")
    return facts(np.log(bars["close"]))


@pytest.fixture(scope="module")
def bars():
    return simulate_bars(seed=0, end=START)


@pytest.fixture(scope="module")
def sim(bars):
    return facts(np.log(bars["BTC"]["close"]))


def test_bars_are_consistent_ohlc_on_ticks(bars):
    assert list(bars) == DEFAULT_COINS
    for coin, frame in bars.items():
        assert len(frame) == 43_200 and frame.index.is_monotonic_increasing
        assert (frame.index[1:] - frame.index[:-1] == pd.Timedelta("1min")).all()
        assert (frame["open"].iloc[1:].values == frame["close"].iloc[:-1].values).all()
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
        ticks = frame.values / COIN_SPECS[coin].tick
        assert np.allclose(ticks, np.round(ticks), atol=1e-6)


def test_returns_are_fat_tailed_like_the_real(real, sim):
    assert real["excess_kurtosis"] > 3
    assert sim["excess_kurtosis"] > 3
    assert 0.3 * real["excess_kurtosis"] < sim["excess_kurtosis"] < 3 * real["excess_kurtosis"]


def test_volatility_clusters_like_the_real(real, sim):
    for acf in (real["abs_acf"], sim["abs_acf"]):
        assert (acf > 0).all() and acf[0] > acf[-1]
    ratio = sim["abs_acf"][:10].mean() / real["abs_acf"][:10].mean()
    assert 0.5 < ratio < 2


def test_raw_returns_are_nearly_uncorrelated(real, sim):
    assert abs(real["acf1"]) < 0.1 and abs(sim["acf1"]) < 0.1


def test_btc_volatility_is_near_the_real(real, sim):
    assert 0.5 * real["annual_vol"] < sim["annual_vol"] < 2 * real["annual_vol"]
    assert 0.5 < sim["annual_vol"] < 1.0


def test_cross_correlation_range(bars):
    returns = pd.DataFrame({c: np.log(f["close"]).diff() for c, f in bars.items()}).dropna()
    corr = returns.corr()
    off = corr.values[~np.eye(len(corr), dtype=bool)]
    assert 0.3 <= off.min() and off.max() <= 0.9
    btc = corr["BTC"].drop("BTC")
    assert btc.idxmax() == "ETH" and 0.7 < btc["ETH"] < 0.9
    assert btc.between(0.4, 0.85).all()


def run(model, seconds, step):
    """Call ``trades`` every ``step`` seconds; yield each frame with the clock before it."""
    now = model.clock
    for _ in range(round(seconds / step)):
        before, now = model.clock, now + step
        yield before, model.trades(now)


def test_trades_are_sorted_on_ticks_and_hit_the_book():
    model = MarketModel(seed=7, start=START)
    for before, frame in run(model, 20, 0.05):
        stamps = frame["timestamp"].to_numpy()
        assert (np.diff(stamps) >= 0).all()
        assert ((stamps > before) & (stamps <= model.clock)).all()
        assert set(frame["side"]) <= {"buy", "sell"} and (frame["amount"] > 0).all()
        for (exchange, coin), group in frame.groupby(["exchange", "coin"]):
            spec = COIN_SPECS[coin]
            for column, unit in (("price", spec.tick), ("amount", spec.lot)):
                units = group[column] / unit
                assert np.allclose(units, np.round(units), atol=1e-6)
            mid = model.mid(exchange, coin)
            assert (abs(group["price"] / mid - 1) < 30e-4).all()
            bids, asks = model.book(exchange, coin)
            last = group[group["timestamp"] > model.clock - DT]
            assert set(last["price"]) <= {bids[0][0], asks[0][0]}
            assert (last["side"] == np.where(last["price"] == asks[0][0], "buy", "sell")).all()


def test_book_has_ten_sorted_levels_around_the_mid():
    model = MarketModel(seed=3, start=START)
    model.trades(START + 5)
    for exchange in model.exchanges:
        for coin in model.coins:
            bids, asks = model.book(exchange, coin)
            assert len(bids) == len(asks) == 10
            bid_prices, ask_prices = [p for p, _ in bids], [p for p, _ in asks]
            assert bid_prices == sorted(bid_prices, reverse=True) and len(set(bid_prices)) == 10
            assert ask_prices == sorted(ask_prices) and len(set(ask_prices)) == 10
            spread = (ask_prices[0] - bid_prices[0]) / COIN_SPECS[coin].tick
            assert 1 <= round(spread) <= 12
            assert bid_prices[0] < model.mid(exchange, coin) < ask_prices[0]
            assert all(size > 0 for _, size in bids + asks)
    assert len(model.book("BINANCE", "BTC", depth=3)[0]) == 3


def test_arrivals_average_the_rate_across_independent_markets():
    rate, seconds, n = 20.0, 30.0, 40
    ratios = []
    for i in range(n):
        start = START + i * 86_400 / n  # spread over the day: the diurnal cycle averages out
        model = MarketModel(seed=100 + i, start=start, trade_rate=rate)
        ratios.append(len(model.trades(start + seconds)) / (rate * seconds * len(model.exchanges)))
    ratios = np.array(ratios)
    assert abs(ratios.mean() - 1) < 4 * ratios.std(ddof=1) / math.sqrt(n)
    assert 0.6 < ratios.mean() < 1.4


def test_arrivals_are_poisson_given_the_bursty_intensity():
    model = MarketModel(seed=11, start=START, trade_rate=50.0)
    frame = model.trades(START + 600)
    expected = model.compensator
    assert abs(len(frame) - expected) < 5 * math.sqrt(expected)
    per_second = np.bincount((frame["timestamp"] - START).astype(int), minlength=600)
    assert per_second.var() / per_second.mean() > 2  # bursts: over-dispersed against Poisson's 1


def test_taker_side_leans_with_the_price_move():
    model = MarketModel(seed=5, start=START, trade_rate=200.0)
    imbalance, moves, mid = [], [], model.mid("BINANCE", "BTC")
    for _, frame in run(model, 300, 1.0):
        btc = frame[(frame["exchange"] == "BINANCE") & (frame["coin"] == "BTC")]
        new_mid = model.mid("BINANCE", "BTC")
        if len(btc):
            imbalance.append((btc["side"] == "buy").mean() - 0.5)
            moves.append(math.log(new_mid / mid))
        mid = new_mid
    assert np.corrcoef(imbalance, moves)[0, 1] > 0.1


def test_exchange_basis_is_small_nonzero_and_mean_reverting():
    model = MarketModel(seed=2, start=START, trade_rate=2.0)
    mids = []
    for _ in run(model, 1_800, 1.0):
        mids.append([model.mid(e, "BTC") for e in model.exchanges])
    mids = np.array(mids)
    basis = np.log(mids[:, 1:] / mids[:, :1]) * 1e4  # KRAKEN and BITFINEX against BINANCE, bp
    assert np.abs(basis).max() < 50
    assert (basis.std(axis=0) > 0.5).all()
    for series in basis.T:
        phi = np.polyfit(series[:-1] - series.mean(), series[1:] - series.mean(), 1)[0]
        assert 10 < -1 / math.log(phi) < 300  # reverts within seconds to minutes, not a random walk


def test_trades_path_keeps_the_cross_correlation():
    model = MarketModel(seed=4, start=START, trade_rate=1.0)
    mids = []
    for _ in run(model, 1_800, 10.0):
        mids.append([model.mid("BINANCE", c) for c in ("BTC", "ETH")])
    returns = np.diff(np.log(mids), axis=0)
    assert np.corrcoef(returns.T)[0, 1] > 0.5


def test_same_seed_same_market():
    frames, books = [], []
    for seed in (9, 9, 10):
        model = MarketModel(seed=seed, start=START)
        frames.append(pd.concat([frame for _, frame in run(model, 2, 0.03)], ignore_index=True))
        books.append(model.book("KRAKEN", "ETH"))
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert books[0] == books[1]
    assert len(frames[0]) != len(frames[2]) or not frames[0].equals(frames[2])


def test_flood_returns_max_trades_over_the_interval():
    model = MarketModel(seed=1, start=START, trade_rate=math.inf)
    before = model.clock
    frame = model.trades(START + 0.5, max_trades=20_000)
    assert len(frame) == 20_000
    assert frame["timestamp"].is_monotonic_increasing
    assert frame["timestamp"].min() > before and frame["timestamp"].max() <= START + 0.5
    model.trade_rate = 1e6
    assert len(model.trades(START + 1.0, max_trades=5_000)) == 5_000
    assert len(model.trades(START + 1.0)) == 0
    with pytest.raises(ValueError, match="max_trades"):
        MarketModel(trade_rate=math.inf).trades(1e12)


@pytest.mark.parametrize("kwargs", [
    {"coins": ["BTC", "PEPE"]}, {"coins": []}, {"coins": ["BTC", "BTC"]},
    {"trade_rate": -1.0}, {"trade_rate": math.nan}, {"exchanges": ()},
], ids=["unknown-coin", "no-coins", "duplicate-coin", "negative-rate", "nan-rate", "no-exchanges"])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        MarketModel(**kwargs)


def test_bad_book_requests_raise():
    model = MarketModel(seed=0, start=START)
    with pytest.raises(ValueError, match="unknown"):
        model.book("COINBASE", "BTC")
    with pytest.raises(ValueError, match="depth"):
        model.book("BINANCE", "BTC", depth=0)
    with pytest.raises(ValueError, match="minutes"):
        simulate_bars(minutes=0)
