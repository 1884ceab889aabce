"""Indicator benchmark: analytics.indicators against TA-Lib on the same synthetic bars, one run.

The bars are a seeded geometric random walk of one-minute closes (Student-t returns, $0.10 ticks),
opens at the previous close, highs and lows beyond both by a half-normal wick, and volumes log-normal,
larger on larger moves. Each of our functions is called on pandas Series, as a user would; TA-Lib's
equivalent on the numpy arrays (Donchian: MAX + MIN; VWAP: a pandas groupby cumsum per day, TA-Lib has
none). Every call is warmed up once, then timed as the best of ``--repeats``; the warm-up of ours is
reported on its own: it compiles the numba kernels, or loads them from numba's on-disk cache (pass
``--cold`` to time a compilation into a fresh cache).

    python bench/indicators.py [--bars 1000000] [--repeats 7] [--cold] [--json]

Target (issue 4): all indicators together within 3x TA-Lib's time.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import talib

sys.path.insert(0, str(Path(__file__).parents[1]))

from common import best_ms  # noqa: E402

TARGET_RATIO = 3.0


def synthetic_bars(count: int, seed: int = 4) -> pd.DataFrame:
    """``count`` one-minute OHLCV bars of a BTC-like market (see the module docstring)."""
    rng = np.random.default_rng(seed)
    returns = rng.standard_t(4, count) * 0.0006
    close = np.round(40_000.0 * np.exp(np.cumsum(returns)), 1)
    open_ = np.r_[40_000.0, close[:-1]]
    wick = np.abs(rng.normal(0.0, 0.0004, (2, count)))
    high = np.round(np.maximum(open_, close) * (1.0 + wick[0]), 1)
    low = np.round(np.minimum(open_, close) * (1.0 - wick[1]), 1)
    volume = rng.lognormal(2.0, 0.8, count) * (1.0 + 400.0 * np.abs(returns))
    index = pd.date_range("2024-01-01", periods=count, freq="min", name="timestamp")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index)


def _pandas_vwap(high: pd.Series, low: pd.Series, close: pd.Series, volume: pd.Series) -> pd.Series:
    price = (high + low + close) / 3.0
    day = high.index.floor("D")
    return (price * volume).groupby(day).cumsum() / volume.groupby(day).cumsum()


def pairs(bars: pd.DataFrame) -> dict:
    """Indicator name -> (our call, the baseline call), with TA-Lib's default parameters."""
    import analytics.indicators as ind

    h, lo, c, v = (bars[col] for col in ("high", "low", "close", "volume"))
    H, L, C, V = (s.to_numpy() for s in (h, lo, c, v))
    return {
        "sma": (lambda: ind.sma(c), lambda: talib.SMA(C)),
        "ema": (lambda: ind.ema(c), lambda: talib.EMA(C)),
        "wma": (lambda: ind.wma(c), lambda: talib.WMA(C)),
        "dema": (lambda: ind.dema(c), lambda: talib.DEMA(C)),
        "tema": (lambda: ind.tema(c), lambda: talib.TEMA(C)),
        "kama": (lambda: ind.kama(c), lambda: talib.KAMA(C)),
        "rsi": (lambda: ind.rsi(c), lambda: talib.RSI(C)),
        "macd": (lambda: ind.macd(c), lambda: talib.MACD(C)),
        "bollinger": (lambda: ind.bollinger(c), lambda: talib.BBANDS(C, 20, 2.0, 2.0)),
        "atr": (lambda: ind.atr(h, lo, c), lambda: talib.ATR(H, L, C)),
        "natr": (lambda: ind.natr(h, lo, c), lambda: talib.NATR(H, L, C)),
        "stoch": (lambda: ind.stoch(h, lo, c), lambda: talib.STOCH(H, L, C)),
        "stochrsi": (lambda: ind.stochrsi(c), lambda: talib.STOCHRSI(C)),
        "cci": (lambda: ind.cci(h, lo, c), lambda: talib.CCI(H, L, C)),
        "adx": (lambda: ind.adx(h, lo, c), lambda: talib.ADX(H, L, C)),
        "mfi": (lambda: ind.mfi(h, lo, c, v), lambda: talib.MFI(H, L, C, V)),
        "obv": (lambda: ind.obv(c, v), lambda: talib.OBV(C, V)),
        "roc": (lambda: ind.roc(c), lambda: talib.ROC(C)),
        "mom": (lambda: ind.mom(c), lambda: talib.MOM(C)),
        "willr": (lambda: ind.willr(h, lo, c), lambda: talib.WILLR(H, L, C)),
        "sar": (lambda: ind.sar(h, lo), lambda: talib.SAR(H, L)),
        "donchian": (lambda: ind.donchian(h, lo), lambda: (talib.MAX(H, 20), talib.MIN(L, 20))),
        "typical_price": (lambda: ind.typical_price(h, lo, c), lambda: talib.TYPPRICE(H, L, C)),
        "plus_di": (lambda: ind.plus_di(h, lo, c), lambda: talib.PLUS_DI(H, L, C)),
        "minus_di": (lambda: ind.minus_di(h, lo, c), lambda: talib.MINUS_DI(H, L, C)),
        "aroon": (lambda: ind.aroon(h, lo), lambda: talib.AROON(H, L)),
        "vwap": (lambda: ind.vwap(ind.typical_price(h, lo, c), v), lambda: _pandas_vwap(h, lo, c, v)),
    }


def batch(bars: pd.DataFrame, repeats: int) -> dict:
    """Per indicator: first call of ours (compile or cache load), then best times of ours and the baseline."""
    rows = {}
    for name, (ours, baseline) in pairs(bars).items():
        start = time.perf_counter()
        ours()
        first = (time.perf_counter() - start) * 1e3
        ours_ms, baseline_ms = best_ms(ours, repeats), best_ms(baseline, repeats)
        rows[name] = {"ours_ms": ours_ms, "talib_ms": baseline_ms, "ratio": ours_ms / baseline_ms,
                      "first_call_ms": first}
    total_ours = sum(row["ours_ms"] for row in rows.values())
    total_baseline = sum(row["talib_ms"] for row in rows.values())
    # The same totals without VWAP, whose pandas baseline is slow: against TA-Lib alone.
    talib_only = [row for name, row in rows.items() if name != "vwap"]
    ratio_talib_only = sum(r["ours_ms"] for r in talib_only) / sum(r["talib_ms"] for r in talib_only)
    return {"indicators": rows, "total_ours_ms": total_ours, "total_talib_ms": total_baseline,
            "total_ratio": total_ours / total_baseline, "total_ratio_without_vwap": ratio_talib_only,
            "first_calls_ms": sum(row["first_call_ms"] for row in rows.values()), "target_ratio": TARGET_RATIO,
            "pass": max(total_ours / total_baseline, ratio_talib_only) <= TARGET_RATIO}


def print_batch(result: dict, bars: int, repeats: int, cold: bool) -> None:
    print(f"Batch indicators over {bars:,} bars: ours (pandas in and out) vs TA-Lib (numpy), best of {repeats}")
    print(f"  {'indicator':<14}{'ours ms':>10}{'TA-Lib ms':>11}{'ratio':>8}{'first call ms':>15}")
    for name, row in result["indicators"].items():
        print(f"  {name:<14}{row['ours_ms']:>10.2f}{row['talib_ms']:>11.2f}{row['ratio']:>8.2f}"
              f"{row['first_call_ms']:>15.1f}")
    verdict = "PASS" if result["pass"] else "FAIL"
    print(f"  {'total':<14}{result['total_ours_ms']:>10.2f}{result['total_talib_ms']:>11.2f}"
          f"{result['total_ratio']:>8.2f}{result['first_calls_ms']:>15.1f}")
    print(f"  {verdict}: {result['total_ratio']:.2f}x the baselines' time, {result['total_ratio_without_vwap']:.2f}x "
          f"TA-Lib's without vwap (target <= {TARGET_RATIO:g}x)")
    print("  baselines: donchian = TA-Lib MAX + MIN, vwap = pandas groupby cumsum per day (TA-Lib has none)")
    print("  first call = numba " + ("compilation into a fresh cache" if cold else "compilation or cache load"))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000, help="synthetic one-minute bars (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls of each, the best kept")
    parser.add_argument("--cold", action="store_true", help="compile the kernels into a fresh numba cache")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as cache:
        if args.cold:
            os.environ["NUMBA_CACHE_DIR"] = cache  # read when numba is first imported, just below
        bars = synthetic_bars(args.bars)
        result = {"bars": args.bars, "repeats": args.repeats, "cold": args.cold,
                  "batch": batch(bars, args.repeats)}
    # The incremental benchmark (analytics.indicators.live, one new bar at a time) adds its section here.
    if args.json:
        print(json.dumps(result, indent=None, sort_keys=True))
    else:
        print_batch(result["batch"], args.bars, args.repeats, args.cold)
    return result


if __name__ == "__main__":
    main()
