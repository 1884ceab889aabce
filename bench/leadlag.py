"""Lead-lag benchmark: ``analytics.risk.lead_lag`` against statsmodels baselines, in one run.

1. Speed, on real BTC one-minute returns against the same series a day later, for one day
   (1,440 rows: what the Risk page tests on every closed bar) and for the whole month (45,030):
   ``lead_lag(max_lag=10)`` against (a) the same robust tests through statsmodels, ``OLS`` with
   ``cov_type="HC3"`` and ``wald_test`` for every order both ways (the reference the tests pin
   ours to; max |difference| of the p-values printed), and (b) the textbook tests of the first
   version, ``grangercausalitytests`` both ways (ssr F test, no robust covariance).
2. Calibration: how often a leader is named when there is none, on 93 pairs of different BTC
   days (aligned by minute of the day) and on 40 seeds of the simulated BTC/ETH market (two
   days each): ours against the first version's rule (textbook F test at the order of the
   cross-correlation peak, uncorrected), at the 5 % level.

Times are the best of ``--repeat`` runs after a warm-up; ``ratio`` is baseline / ours
(above 1: ours is faster). ``--json`` prints one JSON object.
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tsa.stattools import grangercausalitytests

sys.path.insert(0, str(Path(__file__).parents[1]))
from analytics import risk  # noqa: E402
from analytics.exchange.history import simulated_history  # noqa: E402
from common import best_ms, emit  # noqa: E402

DATA = Path(__file__).parents[2] / "shared" / "data" / "bars"
DAY = 1440
MAX_LAG = 10


def statsmodels_hc3(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Robust Granger p-values x to y then y to x, orders 1..MAX_LAG, by statsmodels OLS HC3 + wald_test."""
    frame = pd.DataFrame({"x": x, "y": y})
    out = []
    for effect, cause in (("y", "x"), ("x", "y")):
        for p in range(1, MAX_LAG + 1):
            design = pd.concat({f"{s}{j}": frame[s].shift(j) for s in ("x", "y") for j in range(1, p + 1)}, axis=1)
            design = sm.add_constant(design).iloc[MAX_LAG:]
            fit = sm.OLS(frame[effect].iloc[MAX_LAG:], design).fit(cov_type="HC3")
            out.append(fit.wald_test(", ".join(f"{cause}{j} = 0" for j in range(1, p + 1)), use_f=True,
                                     scalar=True).pvalue)
    return np.array(out, dtype=float)


def textbook(x: np.ndarray, y: np.ndarray) -> None:
    """The first version's tests: statsmodels' ssr F test both ways, every order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grangercausalitytests(np.column_stack([y, x]), maxlag=MAX_LAG)
        grangercausalitytests(np.column_stack([x, y]), maxlag=MAX_LAG)


def textbook_leader(x: np.ndarray, y: np.ndarray) -> bool:
    """The first version's rule: the ssr F test at the order and in the direction of the cross-correlation peak."""
    xcorr = risk.lead_lag(*as_series(x, y), MAX_LAG).xcorr.drop(0)
    peak = int(xcorr.abs().idxmax())
    data = np.column_stack([y, x] if peak > 0 else [x, y])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tests = grangercausalitytests(data, maxlag=[abs(peak)])
    return tests[abs(peak)][0]["ssr_ftest"][1] < 0.05


def as_series(x: np.ndarray, y: np.ndarray) -> tuple[pd.Series, pd.Series]:
    index = pd.date_range("2022-01-01", periods=len(x), freq="1min")
    return pd.Series(x, index, name="A"), pd.Series(y, index, name="B")


def bench_speed(returns: np.ndarray, rows: int, repeat: int) -> dict:
    x, y = returns[DAY:DAY + rows], returns[:rows]  # y is x a day earlier: x "follows" nothing
    a, b = as_series(x, y)
    ours = risk.lead_lag(a, b, MAX_LAG)
    reference = statsmodels_hc3(x, y)
    ours_ms = best_ms(lambda: risk.lead_lag(a, b, MAX_LAG), repeat)
    hc3_ms = best_ms(lambda: statsmodels_hc3(x, y), max(1, repeat // 3))
    textbook_ms = best_ms(lambda: textbook(x, y), max(1, repeat // 3))
    got = np.concatenate([ours.granger_a_to_b, ours.granger_b_to_a])
    return {f"speed_{rows}_ours_ms": ours_ms, f"speed_{rows}_statsmodels_hc3_ms": hc3_ms,
            f"speed_{rows}_ratio_hc3": hc3_ms / ours_ms, f"speed_{rows}_textbook_ms": textbook_ms,
            f"speed_{rows}_ratio_textbook": textbook_ms / ours_ms,
            f"speed_{rows}_max_abs_diff_p": float(np.abs(got - reference).max())}


def simulated_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    bars = simulated_history(["BTC-USDT", "ETH-USDT"], exchanges=("BINANCE",), days=2, seed=seed, end="2024-01-01")
    closes = bars[bars["timeframe"] == "1m"].pivot(index="start", columns="symbol", values="close")
    returns = np.diff(np.log(closes.to_numpy()), axis=0)
    return returns[:, 0], returns[:, 1]


def rates(pairs: list) -> tuple[float, float]:
    ours = np.mean([risk.lead_lag(*as_series(x, y), MAX_LAG).leader() is not None for x, y in pairs])
    return float(ours), float(np.mean([textbook_leader(x, y) for x, y in pairs]))


def bench_calibration(returns: np.ndarray) -> dict:
    days = len(returns) // DAY
    day = [returns[i * DAY:(i + 1) * DAY] for i in range(days)]
    btc_days = [(day[i], day[(i + s) % days]) for s in (1, 7, 13) for i in range(days)]
    simulated = [simulated_pair(seed) for seed in range(40)]
    (btc_ours, btc_textbook), (sim_ours, sim_textbook) = rates(btc_days), rates(simulated)
    return {"null_btc_days_pairs": len(btc_days), "null_btc_days_ours": btc_ours,
            "null_btc_days_textbook": btc_textbook, "null_simulated_pairs": len(simulated),
            "null_simulated_ours": sim_ours, "null_simulated_textbook": sim_textbook}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (best kept)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    close = pd.read_csv(DATA / "btc-perp-20211231-20220201_1m.csv.gz", index_col="timestamp")["close"]
    returns = np.diff(np.log(close.to_numpy()))
    result = {**bench_speed(returns, DAY, args.repeat), **bench_speed(returns, len(returns) - DAY, args.repeat),
              **bench_calibration(returns)}
    result["seconds"] = time.perf_counter() - started
    if args.json:
        emit(result, True, "")
    else:
        print(report(result, len(returns) - DAY))
    return result


def report(r: dict, month: int) -> str:
    lines = ["Lead-lag: ours against statsmodels (ratio = baseline time / ours)"]
    for rows in (DAY, month):
        lines.append(f"  {rows:,} rows, max_lag {MAX_LAG}: lead_lag {r[f'speed_{rows}_ours_ms']:.1f} ms; "
                     f"statsmodels OLS HC3 + wald_test {r[f'speed_{rows}_statsmodels_hc3_ms']:.0f} ms, ratio "
                     f"{r[f'speed_{rows}_ratio_hc3']:.0f}x (max |diff| p {r[f'speed_{rows}_max_abs_diff_p']:.1e}); "
                     f"textbook grangercausalitytests {r[f'speed_{rows}_textbook_ms']:.0f} ms, ratio "
                     f"{r[f'speed_{rows}_ratio_textbook']:.1f}x")
    lines += [
        "Leader named with no lead-lag (5 % level): ours / textbook F test at the cross-correlation peak",
        f"  {r['null_btc_days_pairs']} pairs of different BTC days: {r['null_btc_days_ours']:.1%} / "
        f"{r['null_btc_days_textbook']:.1%}",
        f"  {r['null_simulated_pairs']} simulated BTC/ETH pairs (2 days): {r['null_simulated_ours']:.1%} / "
        f"{r['null_simulated_textbook']:.1%}",
        f"took {r['seconds']:.1f} s",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
