"""The incremental indicators against TA-Lib (and pandas where TA-Lib has none) on real bars.

Every class, at its defaults and at small or edge parameters, is fed the 45,031 real BTC
one-minute bars and must give TA-Lib's batch result: the same NaN warm-up and values equal
to 1e-9 relative. The forming path (``closed=False``) must give the value TA-Lib gives for
the series with that bar replaced, and leave the committed values untouched.
"""

import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from analytics.indicators import live

DATA = Path(__file__).parents[2] / "shared" / "data"
BARS = DATA / "bars" / "btc-perp-20211231-20220201_1m.csv.gz"
TRADES = DATA / "trades" / "XRP_ETH-trades.csv.gz"
RTOL = 1e-9


@functools.lru_cache(maxsize=None)
def bars() -> pd.DataFrame:
    return pd.read_csv(BARS, parse_dates=["timestamp"], index_col="timestamp")


@functools.lru_cache(maxsize=None)
def arrays() -> dict:
    """The bars as float64 arrays by input name (time in ns; price is the typical price)."""
    frame = bars()
    data = {c: frame[c].to_numpy(float) for c in ("open", "high", "low", "close", "volume")}
    data["time"] = frame.index.as_unit("ns").asi8
    data["price"] = (data["high"] + data["low"] + data["close"]) / 3
    return data


# -- independent references ----------------------------------------------------------------------


def vwap_reference(time, price, volume, anchor) -> np.ndarray:
    """Σ price·volume / Σ volume per anchor period, by a pandas groupby."""
    index = pd.to_datetime(np.asarray(time))
    frame = pd.DataFrame({"pv": price * volume, "v": volume}, index=index)
    if anchor is None:
        key = np.zeros(len(frame))
    elif isinstance(pd.tseries.frequencies.to_offset(anchor), pd.offsets.Tick):
        key = index.floor(anchor)
    else:
        key = index.to_period(anchor)
    sums = frame.groupby(key).cumsum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums["pv"] / sums["v"]).to_numpy()


def reference(name: str, params: dict, a: dict) -> np.ndarray:
    """The indicator over arrays ``a``: shape (bars, outputs), outputs in the class's order."""
    h, lo, c, v, p = a["high"], a["low"], a["close"], a["volume"], params
    if name == "donchian":
        upper = pd.Series(h).rolling(p["period"]).max().to_numpy()
        lower = pd.Series(lo).rolling(p["period"]).min().to_numpy()
        out = (lower, (upper + lower) / 2.0, upper)
    elif name == "vwap":
        out = (vwap_reference(a["time"], a["price"], v, p["anchor"]),)
    elif name == "natr" and p["period"] == 1:  # TA-Lib's NATR(1) is the raw true range; ours is normalised
        out = (100.0 * talib.TRANGE(h, lo, c) / c,)
    else:
        out = {
            "sma": lambda: talib.SMA(c, p["period"]), "ema": lambda: talib.EMA(c, p["period"]),
            "wma": lambda: talib.WMA(c, p["period"]), "dema": lambda: talib.DEMA(c, p["period"]),
            "tema": lambda: talib.TEMA(c, p["period"]), "kama": lambda: talib.KAMA(c, p["period"]),
            "rsi": lambda: talib.RSI(c, p["period"]),
            "macd": lambda: talib.MACD(c, p["fast"], p["slow"], p["signal"]),
            "bollinger": lambda: talib.BBANDS(c, p["period"], p["k"], p["k"], 0)[::-1],
            "atr": lambda: talib.ATR(h, lo, c, p["period"]), "natr": lambda: talib.NATR(h, lo, c, p["period"]),
            "stoch": lambda: talib.STOCH(h, lo, c, p["fastk_period"], p["slowk_period"], 0, p["slowd_period"], 0),
            "stochrsi": lambda: talib.STOCHRSI(c, p["period"], p["fastk_period"], p["fastd_period"], 0),
            "cci": lambda: talib.CCI(h, lo, c, p["period"]), "adx": lambda: talib.ADX(h, lo, c, p["period"]),
            "mfi": lambda: talib.MFI(h, lo, c, v, p["period"]), "obv": lambda: talib.OBV(c, v),
            "roc": lambda: talib.ROC(c, p["period"]), "mom": lambda: talib.MOM(c, p["period"]),
            "willr": lambda: talib.WILLR(h, lo, c, p["period"]),
            "sar": lambda: talib.SAR(h, lo, p["acceleration"], p["maximum"]),
        }[name]()
    return np.column_stack(out if isinstance(out, (tuple, list)) else (out,))


CASES = [(name, {}) for name in live.INDICATORS] + [
    ("sma", {"period": 1}), ("sma", {"period": 2}), ("ema", {"period": 1}), ("ema", {"period": 2}),
    ("wma", {"period": 1}), ("wma", {"period": 2}), ("dema", {"period": 2}), ("tema", {"period": 2}),
    ("kama", {"period": 1}), ("kama", {"period": 2}), ("rsi", {"period": 2}),
    ("macd", {"fast": 3, "slow": 5, "signal": 2}), ("macd", {"fast": 5, "slow": 3, "signal": 1}),
    ("bollinger", {"period": 2, "k": 1.0}), ("bollinger", {"period": 5, "k": 0.5}),
    ("atr", {"period": 1}), ("atr", {"period": 2}), ("natr", {"period": 1}), ("natr", {"period": 3}),
    ("stoch", {"fastk_period": 1, "slowk_period": 1, "slowd_period": 1}),
    ("stoch", {"fastk_period": 3, "slowk_period": 2, "slowd_period": 4}),
    ("stochrsi", {"period": 2, "fastk_period": 1, "fastd_period": 1}),
    ("stochrsi", {"period": 3, "fastk_period": 4, "fastd_period": 2}),
    ("cci", {"period": 2}), ("adx", {"period": 2}), ("mfi", {"period": 2}), ("roc", {"period": 1}),
    ("mom", {"period": 1}), ("willr", {"period": 2}), ("sar", {"acceleration": 0.05, "maximum": 0.3}),
    ("sar", {"acceleration": 0.3, "maximum": 0.2}), ("vwap", {"anchor": "1h"}), ("vwap", {"anchor": "W"}),
    ("vwap", {"anchor": None}), ("donchian", {"period": 2}), ("donchian", {"period": 5}),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in params.items()) or 'default'}" for name, params in CASES]


def tolerance(name: str) -> float:
    """Absolute tolerance: none, except for MACD.

    MACD's three outputs are differences of two EMAs of the price and cross zero. TA-Lib
    computes its EMAs with fma() (one rounding instead of two), so its values and ours
    differ by rounding errors of the price's size, 1e-12 of it bounds them; near a zero
    crossing that is no relative bound.
    """
    return 1e-12 * float(np.max(arrays()["close"])) if name == "macd" else 0.0


def assert_matches(got: np.ndarray, expected: np.ndarray, name: str) -> None:
    assert got.shape == expected.shape
    assert np.array_equal(np.isnan(got), np.isnan(expected)), "different NaN warm-up"
    valid = ~np.isnan(expected)
    np.testing.assert_allclose(got[valid], expected[valid], rtol=RTOL, atol=tolerance(name))


def closed_feed(indicator, data: dict, count: int) -> np.ndarray:
    columns = [data[field][:count].tolist() for field in indicator.inputs]
    out = [indicator.update(*row) for row in zip(*columns)]
    return np.array(out, dtype=float).reshape(count, len(indicator.outputs))


@functools.lru_cache(maxsize=None)
def closed_run(name: str, key: tuple) -> np.ndarray:
    data = arrays()
    return closed_feed(live.create(name, **dict(key)), data, len(data["close"]))


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_equals_talib_on_every_bar(name, params):
    indicator = live.create(name, **params)
    got = closed_run(name, tuple(params.items()))
    expected = reference(name, indicator.params, arrays())
    assert_matches(got, expected, name)
    assert np.flatnonzero(~np.isnan(got[:, 0]))[0] == indicator.lookback


def forming_bars(rng, data: dict, i: int, count: int) -> list[dict]:
    """``count`` random states of bar ``i`` while it forms: any prices, part of the volume."""
    spread = max(data["high"][i] - data["low"][i], 1.0)
    states = []
    for _ in range(count):
        close = data["close"][i] + spread * rng.normal()
        high = max(close, data["open"][i]) + spread * abs(rng.normal()) / 2
        low = min(close, data["open"][i]) - spread * abs(rng.normal()) / 2
        states.append({"time": data["time"][i], "high": high, "low": low, "close": close,
                       "price": (high + low + close) / 3, "volume": data["volume"][i] * rng.uniform()})
    return states


def replaced(data: dict, i: int, bar: dict) -> dict:
    """The first ``i + 1`` bars with bar ``i`` replaced by ``bar``."""
    prefix = {k: v[:i + 1].copy() for k, v in data.items()}
    for k, value in bar.items():
        prefix[k][i] = value
    return prefix


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_forming_previews_the_bar_and_commits_nothing(name, params):
    """Three forming updates before closed bars (each of the first 2,000, then every 20th).

    At the warm-up edge and at random bars each preview equals the reference over the
    series with the bar replaced by the forming one; the committed values are those of a
    run without forming updates, to the bit.
    """
    data, rng = arrays(), np.random.default_rng(7)
    indicator = live.create(name, **params)
    n = len(data["close"])
    edge = range(max(0, indicator.lookback - 3), min(n, indicator.lookback + 3))
    checked = set(range(5)) | set(edge) | set(rng.choice(np.arange(0, n, 20), 12).tolist()) | {n - 1}
    columns = [data[field].tolist() for field in indicator.inputs]
    committed, previews = [], 0
    for i, row in enumerate(zip(*columns)):
        if i < 2000 or i % 20 == 0 or i in checked:
            for bar in forming_bars(rng, data, i, 3):
                value = indicator.update(*(bar[field] for field in indicator.inputs), closed=False)
                if i in checked:
                    expected = reference(name, indicator.params, replaced(data, i, bar))[-1:]
                    assert_matches(np.array(value, dtype=float).reshape(1, -1), expected, name)
                    previews += 1
        committed.append(indicator.update(*row))
    assert previews >= 3 * len(checked)
    got = np.array(committed, dtype=float).reshape(n, len(indicator.outputs))
    assert np.array_equal(got, closed_run(name, tuple(params.items())), equal_nan=True)


def degenerate_bars() -> dict:
    """Real bars cut with the cases real data rarely has: flat stretches (no range, no change),
    zero volume, equal +DM and −DM, a close outside its bar, no close change at all at first."""
    data = {k: v[:1200].copy() for k, v in arrays().items()}
    data["close"][:40] = data["close"][0]
    for start in (100, 400, 700):  # 40 identical bars
        for k in ("open", "high", "low", "close", "price"):
            data[k][start:start + 40] = data["close"][start - 1]
    data["volume"][300:330] = 0.0
    data["volume"][410:415] = 0.0
    for i in range(900, 1000, 7):  # the bar is its predecessor widened by the same amount up and down
        data["high"][i], data["low"][i] = data["high"][i - 1] + 3.0, data["low"][i - 1] - 3.0
    data["close"][1100:1103] = data["high"][1100:1103] + 2.0
    data["high"][1], data["low"][1] = data["high"][0] + 1.0, data["low"][0] - 1.0  # SAR's first direction: a tie
    return data


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_equals_talib_on_degenerate_bars(name, params):
    data = degenerate_bars()
    indicator = live.create(name, **params)
    got = closed_feed(indicator, data, len(data["close"]))
    assert_matches(got, reference(name, indicator.params, data), name)


def test_sar_first_direction_follows_talib():
    """Long unless the second bar's −DM is positive and above its +DM (a tie is long)."""
    for high, low in [([10, 11], [9, 8]), ([10, 10.5], [9, 8]), ([10, 12], [9, 8]), ([10, 9], [9, 8]),
                      ([10, 11], [9, 9.5])]:
        h, lo = np.array(high + [11.5, 10.0]), np.array(low + [9.0, 8.5])
        sar = live.SAR()
        got = [sar.update(a, b) for a, b in zip(h.tolist(), lo.tolist())]
        np.testing.assert_array_equal(got, talib.SAR(h, lo))


def test_forming_updates_replace_each_other():
    """Only the last forming state counts: the closing update sees none of the earlier ones."""
    data = arrays()
    plain, noisy = live.MACD(), live.MACD()
    for i, close in enumerate(data["close"][:200].tolist()):
        for price in (close * 0.9, close * 1.1, close * 2):
            noisy.update(price, closed=False)
        assert noisy.update(close) == plain.update(close) or i < plain.lookback


# -- VWAP on trades ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def trades() -> pd.DataFrame:
    frame = pd.read_csv(TRADES)
    frame["time"] = pd.to_datetime(frame["timestamp"], unit="ms").astype("datetime64[ns]").astype(np.int64)
    return frame


@pytest.mark.parametrize("anchor", ["D", "1h", "W", None])
def test_vwap_of_trades_equals_a_groupby(anchor):
    """Session VWAP of 3 days of real XRP/ETH trades, against a pandas groupby per period."""
    frame = trades()
    vwap = live.VWAP(anchor)
    got = np.array([vwap.update(t, p, a) for t, p, a in zip(frame["time"].tolist(), frame["price"].tolist(),
                                                           frame["amount"].tolist())])
    index = pd.to_datetime(frame["time"])
    if anchor is None:
        key = np.zeros(len(frame))
    elif anchor == "W":
        key = index.dt.to_period("W")
    else:
        key = index.dt.floor(anchor)
    sums = (frame.assign(pv=frame["price"] * frame["amount"])[["pv", "amount"]]).groupby(key).cumsum()
    np.testing.assert_allclose(got, (sums["pv"] / sums["amount"]).to_numpy(), rtol=RTOL, atol=0)
    if anchor == "D":
        assert index.dt.floor("D").nunique() == 3  # the test crosses two midnights


def test_vwap_is_nan_until_the_period_has_volume():
    vwap = live.VWAP("D")
    day = 86_400 * 10**9
    assert math.isnan(vwap.update(day + 1, 10.0, 0.0))
    assert vwap.update(day + 2, 12.0, 2.0) == 12.0
    assert vwap.update(day + 3, 9.0, 1.0, closed=False) == pytest.approx(11.0)
    assert math.isnan(vwap.update(2 * day, 10.0, 0.0, closed=False))  # a new day without volume yet
    assert vwap.update(day + 4, 15.0, 2.0) == pytest.approx(13.5)  # the forming calls committed nothing


# -- numerical stability -----------------------------------------------------------------------------


def test_bollinger_stays_exact_far_from_zero():
    """Bands of prices 1,000 times the BTC ones (std ~1e-6 of the level) against numpy's two-pass std."""
    close = arrays()["close"] * 1e3 + 0.25
    bands = live.Bollinger(20, 1.0)
    got = np.array([bands.update(x) for x in close.tolist()])
    windows = np.lib.stride_tricks.sliding_window_view(close, 20)
    std = windows.std(axis=1)
    deviation = got[19:, 2] - got[19:, 1]
    np.testing.assert_allclose(deviation, std, rtol=1e-6, atol=1e-9 * close.max())
    np.testing.assert_allclose(got[19:, 1], windows.mean(axis=1), rtol=1e-12)


def test_running_sums_do_not_drift_over_a_long_run():
    """300k bars of a random walk with level shifts: the SMA's running sum against exact window means."""
    rng = np.random.default_rng(3)
    close = np.exp(np.cumsum(rng.normal(0, 0.01, 300_000))) * 1e4
    sma, wma = live.SMA(30), live.WMA(30)
    got = np.array([(sma.update(x), wma.update(x)) for x in close.tolist()])
    windows = np.lib.stride_tricks.sliding_window_view(close, 30)
    np.testing.assert_allclose(got[29:, 0], windows.mean(axis=1), rtol=RTOL)
    np.testing.assert_allclose(got[29:, 1], windows @ np.arange(1, 31) / 465, rtol=RTOL)


# -- IndicatorSet ----------------------------------------------------------------------------------------

SPECS = {"ema20": ("ema", {"period": 20}), "rsi": ("rsi", {}), "macd": ("macd", {}),
         "bb": ("bollinger", {"period": 20, "k": 2.5}), "vwap": ("vwap", {}), "sar": ("sar", {}),
         "mfi": ("mfi", {"period": 10}), "obv": ("obv", {}), "stoch": ("stoch", {})}


def per_class(count: int) -> dict:
    """Each spec's own class fed ``count`` bars: {column: values}."""
    columns = {}
    for key, (name, params) in SPECS.items():
        indicator = live.create(name, **params)
        values = closed_feed(indicator, arrays(), count)
        for j, output in enumerate(indicator.outputs):
            columns[key if len(indicator.outputs) == 1 else f"{key}.{output}"] = values[:, j]
    return columns


def test_set_runs_a_history_and_continues_live():
    frame = bars()
    indicators = live.IndicatorSet(SPECS)
    assert indicators.columns() == ["ema20", "rsi", "macd.macd", "macd.signal", "macd.hist", "bb.lower",
                                    "bb.middle", "bb.upper", "vwap", "sar", "mfi", "obv", "stoch.k", "stoch.d"]
    history = indicators.run(frame.iloc[:3000])
    assert list(history.columns) == indicators.columns()
    assert history.index.equals(frame.index[:3000])
    live_rows = []
    for start, row in frame.iloc[3000:3400].iterrows():
        forming = indicators.update(start, row["open"], row["high"] + 5, row["low"], row["close"] - 3,
                                    row["volume"] / 2, closed=False)
        assert set(forming) == set(SPECS)
        result = indicators.update(start, *(row[c] for c in ("open", "high", "low", "close", "volume")))
        live_rows.append([v for key in SPECS for v in np.atleast_1d(result[key])])
    expected = per_class(3400)
    for j, column in enumerate(indicators.columns()):
        np.testing.assert_array_equal(history[column].to_numpy(), expected[column][:3000])
        np.testing.assert_array_equal(np.array(live_rows)[:, j], expected[column][3000:])


def test_set_update_takes_numpy_scalars_and_timestamps():
    indicators = live.IndicatorSet({"sma": ("sma", {"period": 2}), "vwap": ("vwap", {})})
    row = bars().iloc[0]
    first = indicators.update(bars().index[0], *(np.float64(row[c]) for c in ("open", "high", "low", "close",
                                                                              "volume")))
    assert type(first["vwap"]) is float and math.isnan(first["sma"])
    second = indicators.update(np.datetime64(bars().index[1]), 1.0, 2.0, 1.0, 2.0, 3.0)
    assert type(second["sma"]) is float and second["sma"] == pytest.approx((row["close"] + 2.0) / 2)


def test_set_reads_a_start_column_and_time_zones():
    frame = bars().iloc[:1500]
    indexed = live.IndicatorSet({"vwap": ("vwap", {}), "cci": ("cci", {})}).run(frame)
    with_start = live.IndicatorSet({"vwap": ("vwap", {}), "cci": ("cci", {})}).run(
        frame.reset_index().rename(columns={"timestamp": "start"}))
    zoned = live.IndicatorSet({"vwap": ("vwap", {}), "cci": ("cci", {})}).run(
        frame.tz_localize("UTC").tz_convert("America/New_York"))
    np.testing.assert_array_equal(with_start.to_numpy(), indexed.to_numpy())
    np.testing.assert_array_equal(zoned.to_numpy(), indexed.to_numpy())
    day_starts = np.flatnonzero(frame.index.normalize().to_series().diff().dt.days.fillna(1).to_numpy() > 0)
    assert day_starts.tolist() == [0, 59, 1499]  # the first bar and two UTC midnights: VWAP restarts there
    np.testing.assert_allclose(indexed["vwap"].to_numpy()[day_starts], arrays()["price"][day_starts], rtol=1e-15)


def test_set_reset_and_registry_style_lists():
    indicators = live.IndicatorSet.from_list([{"name": "ema", "params": {"period": 20}}, "rsi",
                                              {"name": "bollinger", "params": {"period": 20, "k": 2.5}},
                                              {"name": "macd", "key": "trend"}])
    assert list(indicators.specs) == ["ema20", "rsi", "bollinger20_2.5", "trend"]
    first = indicators.run(bars().iloc[:500])
    indicators.reset()
    again = indicators.run(bars().iloc[:500])
    pd.testing.assert_frame_equal(first, again)
    empty = live.IndicatorSet({})
    assert empty.columns() == [] and empty.update(0, 1, 1, 1, 1, 1) == {}
    assert list(live.IndicatorSet(SPECS).run(bars().iloc[:0]).columns) == live.IndicatorSet(SPECS).columns()


@pytest.mark.parametrize(("specs", "match"), [
    ({"x": ("nope", {})}, "unknown indicator 'nope'"),
    ({"x": "ema"}, "expected \\(name, params\\)"),
    ({"": ("ema", {})}, "non-empty strings"),
    ({"x": ("ema", {"period": 0})}, "EMA period must be an integer in \\[1, 100000\\], got 0"),
])
def test_set_rejects_bad_specs(specs, match):
    with pytest.raises(ValueError, match=match):
        live.IndicatorSet(specs)


def test_set_rejects_duplicate_keys_and_bad_bars():
    with pytest.raises(ValueError, match="'rsi14' appears twice"):
        live.IndicatorSet.from_list([{"name": "rsi", "params": {"period": 14}}, {"name": "rsi", "key": "rsi14"}])
    with pytest.raises(ValueError, match="lack columns \\['volume'\\]"):
        live.IndicatorSet({"rsi": ("rsi", {})}).run(bars().drop(columns="volume"))
    with pytest.raises(ValueError, match="DatetimeIndex or a 'start' column"):
        live.IndicatorSet({"rsi": ("rsi", {})}).run(bars().reset_index(drop=True))


# -- parameters ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "params", "match"), [
    ("sma", {"period": 0}, "SMA period must be an integer in \\[1, 100000\\], got 0"),
    ("sma", {"period": 100_001}, "got 100001"),
    ("ema", {"period": 2.5}, "got 2.5"),
    ("wma", {"period": True}, "got True"),
    ("rsi", {"period": 1}, "RSI period must be an integer in \\[2, 100000\\], got 1"),
    ("macd", {"fast": 1}, "MACD fast .* got 1"),
    ("macd", {"signal": 0}, "MACD signal .* got 0"),
    ("bollinger", {"k": -1.0}, "Bollinger k must be a finite number >= 0, got -1.0"),
    ("bollinger", {"k": float("nan")}, "got nan"),
    ("bollinger", {"period": 1}, "Bollinger period .* got 1"),
    ("stoch", {"slowd_period": 0}, "Stoch slowd_period .* got 0"),
    ("stochrsi", {"fastk_period": "5"}, "got '5'"),
    ("cci", {"period": 1}, "CCI period .* got 1"),
    ("adx", {"period": 1}, "ADX period .* got 1"),
    ("mfi", {"period": 1}, "MFI period .* got 1"),
    ("willr", {"period": 1}, "WillR period .* got 1"),
    ("natr", {"period": 0}, "NATR period .* got 0"),
    ("sar", {"acceleration": -0.1}, "SAR acceleration must be a finite number >= 0, got -0.1"),
    ("sar", {"maximum": float("inf")}, "SAR maximum .* got inf"),
    ("vwap", {"anchor": "bogus"}, "VWAP anchor must be None or a pandas frequency .* got 'bogus'"),
    ("vwap", {"anchor": 5}, "got 5"),
    ("donchian", {"period": 1}, "Donchian period must be an integer in \\[2, 100000\\], got 1"),
    ("unknown", {}, "unknown indicator 'unknown': choose from sma, ema"),
])
def test_bad_parameters_raise_one_line(name, params, match):
    with pytest.raises(ValueError, match=match) as error:
        live.create(name, **params)
    assert "\n" not in str(error.value)


def test_classes_describe_themselves():
    for name, cls in live.INDICATORS.items():
        indicator = cls()
        assert cls.__name__.lower() == name and indicator.inputs and indicator.outputs
        assert len(indicator.outputs) > 1 or indicator.outputs == (name,)
        assert eval(f"live.{indicator!r}").params == indicator.params
    assert live.MACD().lookback == 33 and live.ADX().lookback == 27 and live.StochRSI().lookback == 20


# -- the batch functions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_equals_the_batch_function(name, params):
    """``analytics.indicators.<name>`` (same parameters) over all the bars gives the incremental values."""
    import analytics.indicators as batch

    frame = bars()
    series = {c: frame[c] for c in ("high", "low", "close", "volume")}
    series["price"] = batch.typical_price(frame["high"], frame["low"], frame["close"])
    indicator = live.create(name, **params)
    result = getattr(batch, name)(*(series[f] for f in indicator.inputs if f != "time"), **params)
    columns = list(result.columns) if isinstance(result, pd.DataFrame) else [result.name]
    assert columns == list(indicator.outputs) and result.index.equals(frame.index)
    expected = result.to_numpy(float).reshape(len(frame), len(indicator.outputs))
    assert_matches(closed_run(name, tuple(params.items())), expected, name)
