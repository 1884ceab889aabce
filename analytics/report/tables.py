"""The report's numbers: per-market summaries and GARCH fits as pandas frames, and how they are printed.

Every statistic comes from :mod:`analytics.risk`; this module only picks windows and formats.
"""

import numpy as np
import pandas as pd

from analytics import risk

ESTIMATOR_NAMES = {"close": "close-to-close", "parkinson": "Parkinson", "garman_klass": "Garman-Klass",
                   "rogers_satchell": "Rogers-Satchell", "yang_zhang": "Yang-Zhang"}
EWMA_LAMBDA = 0.94
CONE_WINDOWS = (15, 30, 60, 120, 240, 480, 1440)


def primary(frames: dict) -> dict:
    """Per symbol, the exchange with the most bars (ties: alphabetical): where cross-coin statistics are taken."""
    best = {}
    for (exchange, symbol), bars in sorted(frames.items()):
        if symbol not in best or len(bars) > len(frames[(best[symbol], symbol)]):
            best[symbol] = exchange
    return best


def label(market: tuple) -> str:
    """``"BTC-USDT · BINANCE"``."""
    exchange, symbol = market
    return f"{symbol} · {exchange}"


def max_drawdown(close: pd.Series) -> float:
    """The largest fall from a running peak, as a negative fraction (0 if prices never fell)."""
    return float((close / close.cummax() - 1.0).min())


def range_vol(bars: pd.DataFrame, estimator: str) -> float:
    """Annualised volatility of one estimator over all of ``bars`` (one window spanning the range)."""
    window = len(bars) - 1
    if window < 2:
        return float("nan")
    return float(risk.realized_vol(bars, estimator, window=window).iloc[-1])


def summary(frames: dict) -> pd.DataFrame:
    """One column per market: bars, range, return, high, low, max drawdown, volatility by estimator, EWMA.

    Fractions stay fractions (0.05 is 5 %); volatilities are annualised.
    """
    columns = {}
    for market, bars in frames.items():
        close = bars["close"]
        row = {"bars": len(bars), "from": bars.index[0], "to": bars.index[-1], "first open": bars["open"].iloc[0],
               "last close": close.iloc[-1], "return": close.iloc[-1] / bars["open"].iloc[0] - 1.0,
               "high": bars["high"].max(), "low": bars["low"].min(), "max drawdown": max_drawdown(close)}
        for estimator, name in ESTIMATOR_NAMES.items():
            row[f"vol {name}"] = range_vol(bars, estimator)
        returns = risk.log_returns(close)
        row[f"EWMA vol (λ {EWMA_LAMBDA}), last"] = (float(risk.ewma_vol(returns, EWMA_LAMBDA).iloc[-1])
                                                    if returns.count() >= 2 else float("nan"))
        columns[label(market)] = row
    return pd.DataFrame(columns)


def _price(value: float) -> str:
    return f"{value:,.{max(2, 6 - int(np.floor(np.log10(abs(value)))) - 1)}f}" if value else "0"


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`summary` as text: prices to about six significant digits, fractions in percent with two decimals."""
    out = table.astype(object).copy()
    for name in table.index:
        values = table.loc[name]
        if name == "bars":
            out.loc[name] = [f"{int(v):,}" for v in values]
        elif name in ("from", "to"):
            out.loc[name] = [f"{pd.Timestamp(v):%Y-%m-%d %H:%M}" for v in values]
        elif name in ("first open", "last close", "high", "low"):
            out.loc[name] = [_price(float(v)) for v in values]
        else:
            out.loc[name] = [f"{100 * float(v):.2f} %" if np.isfinite(float(v)) else "n/a" for v in values]
    return out


def garch_table(fits: dict, bar_seconds: float) -> pd.DataFrame:
    """One row per fitted series: parameters, persistence, half-life, long-run and next-bar volatility (annualised)."""
    year = 365 * 86_400 / bar_seconds
    rows = {}
    for name, fit in fits.items():
        rows[name] = {"ω": f"{fit.omega:.3g}", "α": f"{fit.alpha:.4f}", "β": f"{fit.beta:.4f}",
                      "α + β": f"{fit.persistence:.4f}",
                      "half-life": _duration(fit.half_life * bar_seconds),
                      "long-run vol": f"{100 * np.sqrt(fit.long_run_variance * year):.2f} %"
                      if np.isfinite(fit.long_run_variance) else "none (α + β ≥ 1)",
                      "next-bar vol": f"{100 * np.sqrt(fit.forecast(1).iloc[0] * year):.2f} %",
                      "log-likelihood": f"{fit.llf:,.1f}", "returns": f"{fit.nobs:,}",
                      "converged": "yes" if fit.converged else "NO"}
    return pd.DataFrame(rows).T


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "never"
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def cone_windows(bars: int, candidates=CONE_WINDOWS) -> list[int]:
    """The cone's windows (in bars) that fit at least twice into ``bars`` prices."""
    return [w for w in candidates if 2 * (w + 1) <= bars]
