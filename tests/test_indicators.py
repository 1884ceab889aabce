"""analytics.indicators (batch) against TA-Lib on real BTC one-minute bars, and VWAP against pandas."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

import analytics.indicators as ind

DATA = Path(__file__).parents[2] / "shared" / "data"
RTOL = 1e-9


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    """45,031 one-minute bars of a BTC perpetual, indexed by time."""
    bars = pd.read_csv(DATA / "bars" / "btc-perp-20211231-20220201_1m.csv.gz", parse_dates=["timestamp"],
                       index_col="timestamp")
    assert len(bars) == 45_031
    return bars


@pytest.fixture(scope="module")
def coarse(real) -> pd.DataFrame:
    """The same bars in coarse steps of 0.1 (each $200), every 7th volume zero: many flat windows and empty flows.

    0.1 has no exact binary form, so sums over flat windows keep rounding residue: TA-Lib's zero tests matter.
    """
    bars = real.copy()
    prices = ["open", "high", "low", "close"]
    bars[prices] = (bars[prices] / 200).round() * 0.1
    bars.iloc[::7, bars.columns.get_loc("volume")] = 0.0
    assert (bars["close"].diff() == 0).mean() > 0.8
    return bars


def _ours_and_talib(bars: pd.DataFrame, name: str, params: tuple):
    """(our output as a DataFrame, TA-Lib's outputs in the same column order) for one call."""
    h, lo, c, v = (bars[col] for col in ("high", "low", "close", "volume"))
    H, L, C, V = (s.to_numpy() for s in (h, lo, c, v))
    calls = {
        "sma": (lambda *p: ind.sma(c, *p), lambda *p: talib.SMA(C, *p)),
        "ema": (lambda *p: ind.ema(c, *p), lambda *p: talib.EMA(C, *p)),
        "wma": (lambda *p: ind.wma(c, *p), lambda *p: talib.WMA(C, *p)),
        "dema": (lambda *p: ind.dema(c, *p), lambda *p: talib.DEMA(C, *p)),
        "tema": (lambda *p: ind.tema(c, *p), lambda *p: talib.TEMA(C, *p)),
        "kama": (lambda *p: ind.kama(c, *p), lambda *p: talib.KAMA(C, *p)),
        "rsi": (lambda *p: ind.rsi(c, *p), lambda *p: talib.RSI(C, *p)),
        "macd": (lambda *p: ind.macd(c, *p), lambda *p: talib.MACD(C, *p)),
        "bollinger": (lambda *p: ind.bollinger(c, *p),
                      lambda *p: talib.BBANDS(C, p[0], p[1], p[1], 0)[::-1] if p else talib.BBANDS(C)[::-1]),
        "atr": (lambda *p: ind.atr(h, lo, c, *p), lambda *p: talib.ATR(H, L, C, *p)),
        "natr": (lambda *p: ind.natr(h, lo, c, *p), lambda *p: talib.NATR(H, L, C, *p)),
        "stoch": (lambda *p: ind.stoch(h, lo, c, *p),
                  lambda *p: talib.STOCH(H, L, C, p[0], p[1], 0, p[2], 0) if p else talib.STOCH(H, L, C)),
        "stochrsi": (lambda *p: ind.stochrsi(c, *p), lambda *p: talib.STOCHRSI(C, *p)),
        "cci": (lambda *p: ind.cci(h, lo, c, *p), lambda *p: talib.CCI(H, L, C, *p)),
        "adx": (lambda *p: ind.adx(h, lo, c, *p), lambda *p: talib.ADX(H, L, C, *p)),
        "mfi": (lambda *p: ind.mfi(h, lo, c, v, *p), lambda *p: talib.MFI(H, L, C, V, *p)),
        "obv": (lambda: ind.obv(c, v), lambda: talib.OBV(C, V)),
        "roc": (lambda *p: ind.roc(c, *p), lambda *p: talib.ROC(C, *p)),
        "mom": (lambda *p: ind.mom(c, *p), lambda *p: talib.MOM(C, *p)),
        "willr": (lambda *p: ind.willr(h, lo, c, *p), lambda *p: talib.WILLR(H, L, C, *p)),
        "sar": (lambda *p: ind.sar(h, lo, *p), lambda *p: talib.SAR(H, L, *p)),
        "donchian": (lambda *p: ind.donchian(h, lo, *p),
                     lambda p=20: (talib.MIN(L, p), (talib.MIN(L, p) + talib.MAX(H, p)) / 2, talib.MAX(H, p))),
        "typical_price": (lambda: ind.typical_price(h, lo, c), lambda: talib.TYPPRICE(H, L, C)),
        "plus_di": (lambda *p: ind.plus_di(h, lo, c, *p), lambda *p: talib.PLUS_DI(H, L, C, *p)),
        "minus_di": (lambda *p: ind.minus_di(h, lo, c, *p), lambda *p: talib.MINUS_DI(H, L, C, *p)),
        "aroon": (lambda *p: ind.aroon(h, lo, *p), lambda *p: talib.AROON(H, L, *p)),
    }
    ours, theirs = calls[name]
    result, reference = ours(*params), theirs(*params)
    frame = result.to_frame() if isinstance(result, pd.Series) else result
    return frame, reference if isinstance(reference, (tuple, list)) else (reference,)


# Parameter sets: TA-Lib's defaults (empty), the smallest periods it accepts, and others.
CASES = {
    "sma": [(), (1,), (2,), (7,)], "ema": [(), (1,), (2,), (9,)], "wma": [(), (1,), (2,), (10,)],
    "dema": [(), (1,), (2,), (8,)], "tema": [(), (1,), (2,), (5,)], "kama": [(), (1,), (2,), (10,)],
    "rsi": [(), (2,), (5,), (30,)], "macd": [(), (2, 2, 1), (5, 3, 2), (3, 10, 4), (8, 21, 5)],
    "bollinger": [(), (2, 1.0), (5, 1.5), (50, 3.0)], "atr": [(), (1,), (2,), (30,)], "natr": [(), (2,), (30,)],
    "stoch": [(), (1, 1, 1), (3, 1, 2), (14, 3, 5)], "stochrsi": [(), (2, 1, 1), (5, 3, 2), (14, 14, 3)],
    "cci": [(), (2,), (5,), (20,)], "adx": [(), (2,), (5,), (30,)], "mfi": [(), (2,), (5,), (30,)],
    "obv": [()], "roc": [(), (1,), (30,)], "mom": [(), (1,), (30,)], "willr": [(), (2,), (5,), (30,)],
    "sar": [(), (0.01, 0.1), (0.3, 0.2)], "donchian": [(), (2,), (55,)], "typical_price": [()],
    "plus_di": [(), (2,), (30,)], "minus_di": [(), (2,), (30,)], "aroon": [(), (2,), (25,)],
}
# Absolute tolerance only where the values cross zero (in price units for MACD and momentum, percent for
# ROC and CCI): there a relative bound means nothing, and the TA-Lib build's rounding (its FMA
# contraction varies between platforms) moves results by ~1e-14 absolute. Here they agree bit for bit.
ATOL = {"macd": 1e-9, "mom": 1e-9, "roc": 1e-9, "cci": 1e-9}


@pytest.mark.parametrize("data", ["real", "coarse"])
@pytest.mark.parametrize("name,params", [(n, p) for n, sets in CASES.items() for p in sets],
                         ids=[f"{n}{list(p) if p else ''}" for n, sets in CASES.items() for p in sets])
def test_equals_talib(request, data, name, params):
    bars = request.getfixturevalue(data)
    frame, reference = _ours_and_talib(bars, name, params)
    assert frame.index is bars.index
    assert frame.shape[1] == len(reference)
    for column, expected in zip(frame, reference):
        got = frame[column].to_numpy()
        assert np.array_equal(np.isnan(got), np.isnan(expected)), f"{column}: NaN warm-up differs"
        assert np.isnan(got).sum() < len(got) // 100, f"{column}: nothing compared"
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL.get(name, 0.0), equal_nan=True,
                                   err_msg=f"{name}{params} {column}")


def test_columns_and_names(real):
    h, lo, c = real["high"], real["low"], real["close"]
    assert list(ind.macd(c)) == ["macd", "signal", "hist"]
    assert list(ind.bollinger(c)) == ["lower", "middle", "upper"]
    assert list(ind.donchian(h, lo)) == ["lower", "middle", "upper"]
    assert list(ind.stoch(h, lo, c)) == list(ind.stochrsi(c)) == ["k", "d"]
    assert ind.rsi(c).name == "rsi" and ind.vwap(c, real["volume"]).name == "vwap"
    assert list(ind.aroon(h, lo)) == ["down", "up"]
    assert len(ind.__all__) >= 23 and all(callable(getattr(ind, name)) for name in ind.__all__)


def test_macd_swaps_fast_and_slow_like_talib(real):
    c = real["close"]
    pd.testing.assert_frame_equal(ind.macd(c, 26, 12, 9), ind.macd(c, 12, 26, 9))
    assert ind.macd(c).iloc[:33].isna().all().all() and ind.macd(c).iloc[33:].notna().all().all()


def test_period_one_stays_a_percentage(real):
    """TA-Lib's NATR(1) is the raw true range and its ±DI(1) fractions; ours are percentages at every period."""
    h, lo, c = (real[col].to_numpy() for col in ("high", "low", "close"))
    true_range = talib.TRANGE(h, lo, c)
    np.testing.assert_allclose(ind.natr(h, lo, c, 1), true_range / c * 100.0, rtol=RTOL, equal_nan=True)
    for ours, movement in ((ind.plus_di, talib.PLUS_DM), (ind.minus_di, talib.MINUS_DM)):
        expected = 100.0 * np.divide(movement(h, lo, 1), true_range, out=np.zeros_like(c), where=true_range > 0)
        expected[0] = np.nan  # no range without a previous close; bars without range give 0
        np.testing.assert_allclose(ours(h, lo, c, 1), expected, rtol=RTOL, equal_nan=True)


def test_numpy_and_list_inputs_give_a_range_index(real):
    c = real["close"]
    from_series = ind.rsi(c)
    for values in (c.to_numpy(), c.tolist()):
        result = ind.rsi(values)
        assert isinstance(result.index, pd.RangeIndex) and len(result) == len(c)
        np.testing.assert_array_equal(result.to_numpy(), from_series.to_numpy())
    frame = ind.stoch(real["high"].to_numpy(), real["low"].to_numpy(), c.to_numpy())
    assert isinstance(frame.index, pd.RangeIndex)
    pd.testing.assert_frame_equal(frame.set_axis(c.index), ind.stoch(real["high"], real["low"], c))


def test_integer_input(real):
    volume = real["volume"].round().astype("int64")
    np.testing.assert_array_equal(ind.obv(real["close"], volume), talib.OBV(real["close"].to_numpy(),
                                                                             volume.to_numpy(np.float64)))


@pytest.mark.parametrize("name", ["sma", "rsi", "macd", "stoch", "adx", "mfi", "sar", "obv", "kama"])
def test_leading_nans_start_where_talib_starts(real, name):
    """TA-Lib's wrapper computes from the first bar where every input is valid; so do we."""
    bars = real.iloc[:500].copy()
    bars.iloc[:7, bars.columns.get_loc("close")] = np.nan
    bars.iloc[:11, bars.columns.get_loc("high")] = np.nan
    frame, reference = _ours_and_talib(bars, name, ())
    for column, expected in zip(frame, reference):
        got = frame[column].to_numpy()
        assert np.array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got, expected, rtol=RTOL, equal_nan=True)


@pytest.mark.parametrize("length", [0, 1, 5, 33])
def test_shorter_than_the_warmup_is_all_nan_like_talib(real, length):
    bars = real.iloc[:length]
    for name in ("sma", "tema", "rsi", "macd", "bollinger", "adx", "stochrsi", "kama", "mfi", "donchian"):
        frame, reference = _ours_and_talib(bars, name, ())
        assert len(frame) == length
        for column, expected in zip(frame, reference):
            assert np.array_equal(np.isnan(frame[column].to_numpy()), np.isnan(expected)), (name, column)


# VWAP: an independent pandas computation, per session with groupby.


def _session_vwap(price: pd.Series, volume: pd.Series, keys) -> pd.Series:
    return (price * volume).groupby(keys).cumsum() / volume.groupby(keys).cumsum()


@pytest.fixture(scope="module")
def trades() -> pd.DataFrame:
    """12,477 Binance XRP/ETH trades over three days."""
    raw = pd.read_csv(DATA / "trades" / "XRP_ETH-trades.csv.gz")
    raw.index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], unit="ms"), name="time")
    assert raw.index.normalize().nunique() == 3
    return raw


def test_vwap_of_trades_restarts_each_day(trades):
    price, amount = trades["price"], trades["amount"]
    result = ind.vwap(price, amount)
    assert result.index is trades.index
    np.testing.assert_allclose(result, _session_vwap(price, amount, trades.index.floor("D")), rtol=1e-12)
    first_of_day = ~trades.index.normalize().duplicated()
    np.testing.assert_allclose(result[first_of_day], price[first_of_day], rtol=1e-15)


@pytest.mark.parametrize("anchor,keys", [("h", lambda i: i.floor("h")), ("W", lambda i: i.to_period("W")),
                                         (None, lambda i: np.zeros(len(i)))])
def test_vwap_anchors(trades, anchor, keys):
    price, amount = trades["price"], trades["amount"]
    np.testing.assert_allclose(ind.vwap(price, amount, anchor=anchor),
                               _session_vwap(price, amount, keys(trades.index)), rtol=1e-12)


def test_vwap_of_bars_uses_local_days(real):
    """Bars' typical price; with a New York index the sessions are New York days."""
    price = ind.typical_price(real["high"], real["low"], real["close"])
    volume = real["volume"]
    np.testing.assert_allclose(ind.vwap(price, volume), _session_vwap(price, volume, real.index.floor("D")),
                               rtol=1e-12)
    local = real.index.tz_localize("UTC").tz_convert("America/New_York")
    price, volume = price.set_axis(local), volume.set_axis(local)
    expected = _session_vwap(price, volume, local.tz_localize(None).floor("D"))
    np.testing.assert_allclose(ind.vwap(price, volume), expected, rtol=1e-12)
    utc_days = ind.vwap(price.set_axis(real.index), volume.set_axis(real.index))
    assert not np.allclose(ind.vwap(price, volume), utc_days)


def test_vwap_is_nan_until_the_session_has_volume(trades):
    day = trades.iloc[:50].copy()
    day.iloc[:5, day.columns.get_loc("amount")] = 0.0
    day.iloc[:2, day.columns.get_loc("price")] = np.nan
    result = ind.vwap(day["price"], day["amount"])
    assert result.iloc[:5].isna().all()
    expected = _session_vwap(day["price"], day["amount"], np.zeros(len(day)))
    np.testing.assert_allclose(result.iloc[5:], expected.iloc[5:], rtol=1e-12)


# Validation at the boundary: one-line ValueErrors that name the bad value.


@pytest.mark.parametrize("call,message", [
    (lambda c: ind.rsi(c, 1), "period must be >= 2, got 1"),
    (lambda c: ind.sma(c, 0), "period must be >= 1, got 0"),
    (lambda c: ind.ema(c, 2.5), "period must be an int, got 2.5"),
    (lambda c: ind.ema(c, True), "period must be an int, got True"),
    (lambda c: ind.macd(c, 12, 26, 0), "signal must be >= 1, got 0"),
    (lambda c: ind.stoch(c, c, c, 5, 0), "slowk_period must be >= 1, got 0"),
    (lambda c: ind.bollinger(c, 20, float("nan")), "k must be a finite number, got nan"),
    (lambda c: ind.sar(c, c, -0.1), "acceleration must be >= 0.0, got -0.1"),
    (lambda c: ind.atr(c, c.iloc[:-1], c), "low has 99 values but high has 100"),
    (lambda c: ind.atr(c, c.set_axis(c.index + pd.Timedelta("1min")), c), "low and high have different indexes"),
    (lambda c: ind.obv(c, c.astype(str)), "volume must be numeric, got dtype object"),
    (lambda c: ind.sma(np.ones((3, 2))), r"close must be one-dimensional, got shape \(3, 2\)"),
    (lambda c: ind.sma(c.where(c.index != c.index[40])),
     r"close has a NaN at position 40 \(2021-12-31 23:41:00\) after its first valid value"),
    (lambda c: ind.rsi(c.to_numpy() * np.r_[np.ones(99), np.nan]), "close has a NaN at position 99 after"),
    (lambda c: ind.vwap(c.to_numpy(), c.to_numpy()), "vwap with anchor 'D' needs a DatetimeIndex, got RangeIndex"),
    (lambda c: ind.vwap(c.iloc[::-1], c.iloc[::-1]), "vwap needs an increasing DatetimeIndex"),
    (lambda c: ind.vwap(c, c, anchor="fortnight"), "anchor must be None or a pandas frequency"),
])
def test_bad_arguments_raise_one_line_value_errors(real, call, message):
    with pytest.raises(ValueError, match=message) as error:
        call(real["close"].iloc[:100])
    assert "\n" not in str(error.value)


def test_vwap_without_anchor_accepts_any_index(real):
    close = real["close"].iloc[:100]
    result = ind.vwap(close.to_numpy(), np.ones(100), anchor=None)
    np.testing.assert_allclose(result, close.expanding().mean(), rtol=1e-12)
