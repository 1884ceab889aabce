"""Risk analytics benchmark: ``analytics.risk`` against naive baselines, in one run.

All inputs come from the real bars in ../shared/data:

1. a correlation matrix with p-values of 50 coins over one day of one-minute bars (1,440
   rows; the columns are one-day slices of the BTC perpetual and the four Bittrex coins'
   returns): ``corr_matrix`` against ``scipy.stats.pearsonr`` called for each of the
   1,225 pairs;
2. a GARCH(1,1) fit on the 45,030 BTC one-minute returns: ``fit_garch`` (statsmodels
   ML, numba likelihood) against ``arch`` (``arch_model(..., mean="Zero")``, returns in
   basis points, as it needs them scaled);
3. all five realized-volatility estimators (window 30) over 1,000,000 bars bootstrapped
   from the BTC bars' shapes: ``realized_vol`` against the explicit formulas over numpy
   sliding windows (two-pass, chunked), and pandas ``rolling`` for reference.

Times are the best of ``--repeat`` runs after a warm-up; ``ratio`` is baseline / ours
(above 1: ours is faster). ``--json`` prints one JSON object.
"""

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats
from arch import arch_model
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, str(Path(__file__).parents[1]))
from analytics import risk  # noqa: E402
from common import best_ms, emit  # noqa: E402

DATA = Path(__file__).parents[2] / "shared" / "data" / "bars"
DAY = 1440
LN2 = math.log(2.0)


def read_bars(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name, parse_dates=["timestamp"], index_col="timestamp")


def fifty_coin_day(btc: pd.DataFrame) -> pd.DataFrame:
    """50 columns of one-day (1,440-row) return slices of real coins, on one index."""
    series = [risk.log_returns(btc["close"]).iloc[1:]]
    series += [risk.log_returns(read_bars(f"bittrex_1m/{coin}_BTC-1m.csv.gz")["close"]).iloc[1:]
               for coin in ("ETH", "LTC", "ADA", "XLM")]
    slices = [s.to_numpy()[i:i + DAY] for s in series for i in range(0, len(s) - DAY + 1, DAY)]
    index = pd.date_range("2022-01-01", periods=DAY, freq="1min")
    return pd.DataFrame(np.column_stack(slices[:50]), index=index, columns=[f"C{i:02d}" for i in range(50)])


def naive_corr(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    k = frame.shape[1]
    corr, pvalues = np.eye(k), np.zeros((k, k))
    columns = [frame.iloc[:, i].to_numpy() for i in range(k)]
    for i in range(k):
        for j in range(i + 1, k):
            result = scipy.stats.pearsonr(columns[i], columns[j])
            corr[i, j] = corr[j, i] = result.statistic
            pvalues[i, j] = pvalues[j, i] = result.pvalue
    return corr, pvalues


def bench_corr(btc: pd.DataFrame, repeat: int) -> dict:
    frame = fifty_coin_day(btc)
    ours = risk.corr_matrix(frame)
    corr, pvalues = naive_corr(frame)
    ours_ms = best_ms(lambda: risk.corr_matrix(frame), repeat)
    naive_ms = best_ms(lambda: naive_corr(frame), max(1, repeat // 3))
    return {"corr_coins": frame.shape[1], "corr_rows": frame.shape[0], "corr_ours_ms": ours_ms,
            "corr_pearsonr_per_pair_ms": naive_ms, "corr_ratio": naive_ms / ours_ms,
            "corr_max_abs_diff_r": float(np.abs(ours.corr.to_numpy() - corr).max()),
            "corr_max_abs_diff_p": float(np.abs(ours.pvalues.to_numpy() - pvalues).max())}


def bench_garch(btc: pd.DataFrame, repeat: int) -> dict:
    returns = risk.log_returns(btc["close"])
    start = time.perf_counter()
    ours = risk.fit_garch(returns)  # the first call in this process: numba loads its cached kernels
    first_ms = 1e3 * (time.perf_counter() - start)
    bp = returns.dropna() * 1e4

    def fit_arch():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return arch_model(bp, mean="Zero", vol="GARCH", p=1, q=1, dist="normal", rescale=False).fit(disp="off")

    theirs = fit_arch()
    ours_ms = best_ms(lambda: risk.fit_garch(returns), repeat)
    arch_ms = best_ms(fit_arch, repeat)
    a = theirs.params
    return {"garch_returns": ours.nobs, "garch_ours_ms": ours_ms, "garch_ours_first_call_ms": first_ms,
            "garch_arch_ms": arch_ms, "garch_ratio": arch_ms / ours_ms,
            "garch_persistence_ours": ours.persistence, "garch_persistence_arch": a["alpha[1]"] + a["beta[1]"],
            "garch_llf_ours": ours.llf, "garch_llf_arch": theirs.loglikelihood + ours.nobs * math.log(1e4)}


def million_bars(btc: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` bars whose shapes (gap, high, low and close relative to the open) are drawn from real bars."""
    o, h, low, c = (np.log(btc[col].to_numpy()) for col in ("open", "high", "low", "close"))
    draw = np.random.default_rng(seed).integers(1, len(btc), n)
    gap, up, down, body = (o - np.roll(c, 1))[draw], (h - o)[draw], (low - o)[draw], (c - o)[draw]
    log_open = math.log(40_000.0) + np.cumsum(gap + body) - body
    frame = {"open": log_open, "high": log_open + up, "low": log_open + down, "close": log_open + body}
    return pd.DataFrame({k: np.exp(v) for k, v in frame.items()},
                        index=pd.date_range("2020-01-01", periods=n, freq="1min"))


def windows(x: np.ndarray, n: int, reduce, chunk: int = 100_000) -> np.ndarray:
    """``reduce`` over each window of ``n`` values (rows of a sliding view), chunked to bound memory."""
    out = np.full(len(x), np.nan)
    for start in range(0, len(x) - n + 1, chunk):
        view = sliding_window_view(x[start:start + chunk + n - 1], n)
        out[start + n - 1:start + n - 1 + len(view)] = reduce(view)
    return out


def explicit(bars: pd.DataFrame, n: int) -> dict:
    """The textbook formulas, window by window (two-pass variances), per-bar volatility."""
    o, h, low, c = (bars[col].to_numpy() for col in ("open", "high", "low", "close"))
    r = np.full(len(c), np.nan)
    r[1:] = np.log(c[1:] / c[:-1])
    hl, co = np.log(h / low), np.log(c / o)
    rs = np.log(h / c) * np.log(h / o) + np.log(low / c) * np.log(low / o)
    jump = np.full(len(c), np.nan)
    jump[1:] = np.log(o[1:] / c[:-1])
    var = lambda x: windows(x, n, lambda v: v.var(axis=1, ddof=1))  # noqa: E731
    mean = lambda x: windows(x, n, lambda v: v.mean(axis=1))  # noqa: E731
    k = 0.34 / (1.34 + (n + 1) / (n - 1))
    return {"close": np.sqrt(var(r)), "parkinson": np.sqrt(mean(hl**2) / (4 * LN2)),
            "garman_klass": np.sqrt(mean(0.5 * hl**2 - (2 * LN2 - 1) * co**2)), "rogers_satchell": np.sqrt(mean(rs)),
            "yang_zhang": np.sqrt(var(jump) + k * var(co) + (1 - k) * mean(rs))}


def pandas_rolling(bars: pd.DataFrame, n: int) -> dict:
    """The same with pandas ``rolling`` (online sums): the usual vectorised way."""
    o, h, low, c = (bars[col] for col in ("open", "high", "low", "close"))
    hl, co = np.log(h / low), np.log(c / o)
    rs = np.log(h / c) * np.log(h / o) + np.log(low / c) * np.log(low / o)
    k = 0.34 / (1.34 + (n + 1) / (n - 1))
    with np.errstate(invalid="ignore"):
        return {"close": np.sqrt(np.log(c / c.shift(1)).rolling(n).var()),
                "parkinson": np.sqrt((hl**2).rolling(n).mean() / (4 * LN2)),
                "garman_klass": np.sqrt((0.5 * hl**2 - (2 * LN2 - 1) * co**2).rolling(n).mean()),
                "rogers_satchell": np.sqrt(rs.rolling(n).mean()),
                "yang_zhang": np.sqrt(np.log(o / c.shift(1)).rolling(n).var() + k * co.rolling(n).var()
                                      + (1 - k) * rs.rolling(n).mean())}


def bench_realized(btc: pd.DataFrame, rows: int, repeat: int, window: int = 30) -> dict:
    bars = million_bars(btc, rows)
    ours = lambda: {e: risk.realized_vol(bars, e, window, annualize=False) for e in risk.ESTIMATORS}  # noqa: E731
    reference = explicit(bars, window)

    def worst(values: dict) -> float:
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(max(np.nanmax(np.abs(np.asarray(values[e]) / reference[e] - 1)) for e in risk.ESTIMATORS))

    ours_ms = best_ms(ours, repeat)
    explicit_ms = best_ms(lambda: explicit(bars, window), max(1, repeat // 2))
    pandas_ms = best_ms(lambda: pandas_rolling(bars, window), repeat)
    return {"realized_bars": rows, "realized_window": window, "realized_ours_ms": ours_ms,
            "realized_explicit_windows_ms": explicit_ms, "realized_ratio": explicit_ms / ours_ms,
            "realized_pandas_rolling_ms": pandas_ms, "realized_ratio_pandas": pandas_ms / ours_ms,
            "realized_max_rel_diff_vs_explicit": worst(ours()),
            "realized_pandas_max_rel_diff_vs_explicit": worst(pandas_rolling(bars, window))}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="bars for the realized-volatility part")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (best kept)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    btc = read_bars("btc-perp-20211231-20220201_1m.csv.gz")
    result = {**bench_corr(btc, args.repeat), **bench_garch(btc, args.repeat),
              **bench_realized(btc, args.rows, args.repeat)}
    result["seconds"] = time.perf_counter() - started
    if args.json:
        emit(result, True, "")
    else:
        print(report(result))
    return result


def report(r: dict) -> str:
    return "\n".join([
        "Risk analytics: ours against baselines (ratio = baseline time / ours)",
        f"1. correlation matrix + p-values, {r['corr_coins']} coins x {r['corr_rows']:,} rows:",
        f"   corr_matrix {r['corr_ours_ms']:.2f} ms; pearsonr per pair {r['corr_pearsonr_per_pair_ms']:.1f} ms; "
        f"ratio {r['corr_ratio']:.0f}x (max |diff| r {r['corr_max_abs_diff_r']:.1e}, p {r['corr_max_abs_diff_p']:.1e})",
        f"2. GARCH(1,1) on {r['garch_returns']:,} returns:",
        f"   fit_garch {r['garch_ours_ms']:.1f} ms (first call {r['garch_ours_first_call_ms']:.0f} ms); "
        f"arch {r['garch_arch_ms']:.1f} ms; ratio {r['garch_ratio']:.2f}x",
        f"   persistence {r['garch_persistence_ours']:.5f} vs {r['garch_persistence_arch']:.5f}; "
        f"log-likelihood {r['garch_llf_ours']:,.3f} vs {r['garch_llf_arch']:,.3f}",
        f"3. five realized-volatility estimators, window {r['realized_window']}, {r['realized_bars']:,} bars:",
        f"   realized_vol {r['realized_ours_ms']:.0f} ms; explicit sliding windows "
        f"{r['realized_explicit_windows_ms']:.0f} ms, ratio {r['realized_ratio']:.1f}x; pandas rolling "
        f"{r['realized_pandas_rolling_ms']:.0f} ms, ratio {r['realized_ratio_pandas']:.2f}x",
        f"   max relative difference from the explicit formulas: ours {r['realized_max_rel_diff_vs_explicit']:.1e}, "
        f"pandas rolling {r['realized_pandas_max_rel_diff_vs_explicit']:.1e}",
        f"took {r['seconds']:.1f} s",
    ])


if __name__ == "__main__":
    main()
