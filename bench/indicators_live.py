"""Incremental indicators: µs to update the full set of one coin on one new bar, against TA-Lib recomputation.

The set is :class:`analytics.indicators.live.IndicatorSet` with all 23 indicators at their
default parameters, on the real BTC one-minute bars in ../shared/data, warmed on the
first bars of the file. Measured, each as the best (over ``--repeats`` fresh sets) of the
median per-update time:

- ``closed``: one ``update(..., closed=True)`` per new bar;
- ``forming``: ``update(..., closed=False)`` with intermediate prices of the forming
  bar (``--forming`` calls before each close), what the pipeline does many times a
  second on the forming candle;
- the baseline, what a naive live chart does: for each new bar, recompute the same
  indicators with TA-Lib over the last ``--window`` bars (Donchian with numpy, the
  session VWAP with a numpy sum over the day's bars).

The target (issue 4) is ≤ 50 µs per update of the full set: PASS/FAIL is printed for
both paths. ``--json`` prints one JSON object.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import talib

sys.path.insert(0, str(Path(__file__).parents[1]))
from analytics.indicators.live import INDICATORS, IndicatorSet  # noqa: E402
from common import emit  # noqa: E402

BARS = Path(__file__).parents[2] / "shared" / "data" / "bars" / "btc-perp-20211231-20220201_1m.csv.gz"
TARGET_US = 50.0
FIELDS = ("open", "high", "low", "close", "volume")


def load_bars() -> pd.DataFrame:
    return pd.read_csv(BARS, parse_dates=["timestamp"], index_col="timestamp")


def full_set() -> IndicatorSet:
    return IndicatorSet({name: (name, {}) for name in INDICATORS})


def rows(bars: pd.DataFrame) -> list[tuple]:
    """(start ns, open, high, low, close, volume) as Python values, the way the pipeline hands them over."""
    starts = bars.index.as_unit("ns").asi8.tolist()
    return list(zip(starts, *(bars[c].to_numpy(float).tolist() for c in FIELDS)))


def time_closed(bars: pd.DataFrame, warm: int, count: int) -> float:
    """Median µs of one closed update of a fresh set warmed on ``warm`` bars."""
    indicators = full_set()
    indicators.run(bars.iloc[:warm])
    update, samples = indicators.update, []
    for row in rows(bars.iloc[warm:warm + count]):
        began = time.perf_counter_ns()
        update(*row)
        samples.append(time.perf_counter_ns() - began)
    return statistics.median(samples) / 1e3


def time_forming(bars: pd.DataFrame, warm: int, count: int, forming: int, rng) -> float:
    """Median µs of one forming update (``forming`` of them with random intermediate prices before each close)."""
    indicators = full_set()
    indicators.run(bars.iloc[:warm])
    update, samples = indicators.update, []
    for start, open_, high, low, close, volume in rows(bars.iloc[warm:warm + count]):
        prices = rng.uniform(low, high, forming).tolist()
        for j, price in enumerate(prices):
            hi, lo = max(open_, *prices[:j + 1]), min(open_, *prices[:j + 1])
            began = time.perf_counter_ns()
            update(start, open_, hi, lo, price, volume * (j + 1) / (forming + 1), closed=False)
            samples.append(time.perf_counter_ns() - began)
        update(start, open_, high, low, close, volume)
    return statistics.median(samples) / 1e3


def recompute(o, h, low, c, v, day_start: int) -> None:
    """Every indicator of the set recomputed by TA-Lib (numpy for Donchian and VWAP) over the window."""
    talib.SMA(c, 30), talib.EMA(c, 30), talib.WMA(c, 30), talib.DEMA(c, 30), talib.TEMA(c, 30), talib.RSI(c, 14)
    talib.MACD(c, 12, 26, 9), talib.BBANDS(c, 20, 2.0, 2.0, 0), talib.ATR(h, low, c, 14), talib.NATR(h, low, c, 14)
    talib.STOCH(h, low, c, 5, 3, 0, 3, 0), talib.STOCHRSI(c, 14, 5, 3, 0), talib.CCI(h, low, c, 14)
    talib.ADX(h, low, c, 14), talib.MFI(h, low, c, v, 14), talib.OBV(c, v), talib.ROC(c, 10), talib.MOM(c, 10)
    talib.WILLR(h, low, c, 14), talib.KAMA(c, 30), talib.SAR(h, low, 0.02, 0.2)
    upper, lower = h[-20:].max(), low[-20:].min()
    (upper + lower) / 2
    typical = (h[day_start:] + low[day_start:] + c[day_start:]) / 3
    (typical * v[day_start:]).sum() / v[day_start:].sum()


def time_recompute(bars: pd.DataFrame, warm: int, count: int, window: int) -> float:
    """Median µs to recompute the set with TA-Lib over the last ``window`` bars, per new bar."""
    arrays = [bars[c].to_numpy(float) for c in FIELDS]
    days = bars.index.normalize().asi8
    samples = []
    for i in range(warm, warm + count):
        lo = i + 1 - window
        o, h, low, c, v = (a[lo:i + 1] for a in arrays)
        day_start = int(np.searchsorted(days[lo:i + 1], days[i]))
        began = time.perf_counter_ns()
        recompute(o, h, low, c, v, day_start)
        samples.append(time.perf_counter_ns() - began)
    return statistics.median(samples) / 1e3


def time_each(bars: pd.DataFrame, warm: int, count: int) -> dict:
    """Median µs of one closed update of each indicator alone (default parameters)."""
    result = {}
    for name in INDICATORS:
        indicators = IndicatorSet({name: (name, {})})
        indicators.run(bars.iloc[:warm])
        update, samples = indicators.indicators[name].update, []
        data = {"time": bars.index.as_unit("ns").asi8[warm:warm + count].tolist(),
                **{c: bars[c].to_numpy(float)[warm:warm + count].tolist() for c in FIELDS}}
        data["price"] = [(h + lo + c) / 3 for h, lo, c in zip(data["high"], data["low"], data["close"])]
        for args in zip(*(data[field] for field in update.__self__.inputs)):
            began = time.perf_counter_ns()
            update(*args)
            samples.append(time.perf_counter_ns() - began)
        result[name] = statistics.median(samples) / 1e3
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=5000, help="new bars timed per repeat")
    parser.add_argument("--warm", type=int, default=2000, help="bars the set is warmed on first")
    parser.add_argument("--forming", type=int, default=5, help="forming updates before each close")
    parser.add_argument("--repeats", type=int, default=5, help="fresh sets timed (best median is kept)")
    parser.add_argument("--window", type=int, default=500, help="bars the TA-Lib baseline recomputes")
    parser.add_argument("--baseline-bars", type=int, default=1000, help="new bars timed for the baseline")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    bars = load_bars()
    warm = max(args.warm, args.window)
    rng = np.random.default_rng(0)
    closed = min(time_closed(bars, warm, args.bars) for _ in range(args.repeats))
    forming = min(time_forming(bars, warm, args.bars // args.forming, args.forming, rng) for _ in range(args.repeats))
    baseline = min(time_recompute(bars, warm, args.baseline_bars, args.window) for _ in range(args.repeats))
    each = time_each(bars, warm, args.bars)
    result = {
        "indicators": len(INDICATORS),
        "closed_us_per_update": closed,
        "forming_us_per_update": forming,
        "talib_recompute_us_per_bar": baseline,
        "speedup_closed": baseline / closed,
        "speedup_forming": baseline / forming,
        "target_us": TARGET_US,
        "closed": "PASS" if closed <= TARGET_US else "FAIL",
        "forming": "PASS" if forming <= TARGET_US else "FAIL",
        "sum_of_single_indicator_us": sum(each.values()),
        **{f"us_{name}": value for name, value in each.items()},
    }
    emit(result, args.json, f"Incremental indicators: full set of {len(INDICATORS)} on one new bar "
                            f"vs TA-Lib over the last {args.window} bars")
    return result


if __name__ == "__main__":
    main()
