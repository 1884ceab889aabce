"""Realized volatility estimators, EWMA volatility and the volatility cone.

All estimators work on log price ratios, average a per-bar variance over a rolling window
of ``window`` bars (the kernels of ``analytics.risk.rolling``, accurate even in near-flat
windows) and return the volatility, annualised for a 24/7 market unless
``annualize=False``. A value at bar t uses bars t-window+1 .. t; earlier values are NaN.

Notation for bar i: O, H, L, C its prices, C' the previous close, N = ``window``.

================  ==============================================================  ======
estimator          per-window variance                                            first
================  ==============================================================  ======
close              1/(N-1) sum (r_i - mean r)^2, r_i = ln(C/C')  (sample, ddof=1)  N
parkinson          1/(4 N ln 2) sum ln(H/L)^2                   (Parkinson 1980)   N-1
garman_klass       1/N sum 0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2 (Garman-Klass)   N-1
rogers_satchell    1/N sum ln(H/C) ln(H/O) + ln(L/C) ln(L/O)    (Rogers-Satchell)  N-1
yang_zhang         V_o + k V_c + (1-k) V_rs, V_o, V_c sample variances (ddof=1)    N
                   of ln(O/C') and ln(C/O), k = 0.34 / (1.34 + (N+1)/(N-1))
================  ==============================================================  ======

("first" is the position of the first value.) Garman-Klass is the form without the
opening jump (as in Sinclair, *Volatility Trading*), natural for 24/7 markets.
"""

import numpy as np
import pandas as pd

from .base import annual_factor, as_prices, as_series, check_lambda, check_window, same_index
from .rolling import rolling_mean, rolling_var

ESTIMATORS = ("close", "parkinson", "garman_klass", "rogers_satchell", "yang_zhang")
# 15 minutes, 30 minutes, 1 hour, 4 hours and 1 day of one-minute bars.
CONE_WINDOWS = (15, 30, 60, 240, 1440)
CONE_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def log_returns(close: pd.Series) -> pd.Series:
    """``ln(c_t / c_{t-1})`` on ``close``'s index; the first value is NaN.

    Computed as ``log1p((c_t - c_{t-1}) / c_{t-1})``: exact to rounding even for tiny
    moves, where differencing log prices (~10 for BTC) would lose about 1e-15 absolute.
    """
    c = as_prices(close, "close")
    previous = c.shift(1)
    return np.log1p((c - previous) / previous)


def _ohlc(open=None, high=None, low=None, close=None) -> dict:
    """The given price series validated: positive, one index, low <= open, close <= high."""
    given = {name: as_prices(s, name) for name, s in
             (("open", open), ("high", high), ("low", low), ("close", close)) if s is not None}
    same_index(**given)
    high, low = given["high"], given["low"]
    for name, s in given.items():
        for bad, what in ((s > high, "above high"), (s < low, "below low")):
            if bad.any():
                raise ValueError(f"{name} {what} at {s.index[bad][0]}: not valid OHLC bars")
    return given


def _mean(per_bar: pd.Series, window: int) -> pd.Series:
    return pd.Series(rolling_mean(per_bar.to_numpy(), window), index=per_bar.index)


def _var(x: pd.Series, window: int) -> pd.Series:
    return pd.Series(rolling_var(x.to_numpy(), window, ddof=1), index=x.index)


def _volatility(variance: pd.Series, factor: float, name) -> pd.Series:
    return np.sqrt(variance * factor).rename(name)


def close_to_close(close: pd.Series, window: int = 30, annualize=True) -> pd.Series:
    """Rolling standard deviation of log returns (sample, ddof=1, mean subtracted).

    Parameters
    ----------
    close : Series
        Positive close prices; ``window + 1`` of them at least.
    window : int
        Returns per window.
    annualize : bool, str or float
        True: from the DatetimeIndex (24/7); False: per bar; a frequency (``"1m"``) or
        periods per year.
    """
    c = as_prices(close, "close")
    window = check_window(window, len(c), window + 1)
    factor = annual_factor(c.index, annualize)
    return _volatility(_var(log_returns(c), window), factor, c.name)


def parkinson(high: pd.Series, low: pd.Series, window: int = 30, annualize=True) -> pd.Series:
    """Parkinson (1980) high-low volatility: ``sqrt(mean(ln(H/L)^2) / (4 ln 2))``."""
    p = _ohlc(high=high, low=low)
    window = check_window(window, len(p["high"]), window)
    factor = annual_factor(p["high"].index, annualize)
    per_bar = np.log(p["high"] / p["low"]) ** 2 / (4.0 * np.log(2.0))
    return _volatility(_mean(per_bar, window), factor, p["high"].name)


def garman_klass(open: pd.Series, high: pd.Series, low: pd.Series, close: pd.Series, window: int = 30,
                 annualize=True) -> pd.Series:
    """Garman-Klass (1980): ``mean(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2)``."""
    p = _ohlc(open, high, low, close)
    window = check_window(window, len(p["close"]), window)
    factor = annual_factor(p["close"].index, annualize)
    hl, co = np.log(p["high"] / p["low"]), np.log(p["close"] / p["open"])
    per_bar = 0.5 * hl**2 - (2.0 * np.log(2.0) - 1.0) * co**2
    return _volatility(_mean(per_bar, window), factor, p["close"].name)


def _rogers_satchell_bar(p: dict) -> pd.Series:
    return (np.log(p["high"] / p["close"]) * np.log(p["high"] / p["open"])
            + np.log(p["low"] / p["close"]) * np.log(p["low"] / p["open"]))


def rogers_satchell(open: pd.Series, high: pd.Series, low: pd.Series, close: pd.Series, window: int = 30,
                    annualize=True) -> pd.Series:
    """Rogers-Satchell (1991), drift-independent: ``mean(ln(H/C) ln(H/O) + ln(L/C) ln(L/O))``."""
    p = _ohlc(open, high, low, close)
    window = check_window(window, len(p["close"]), window)
    factor = annual_factor(p["close"].index, annualize)
    return _volatility(_mean(_rogers_satchell_bar(p), window), factor, p["close"].name)


def yang_zhang(open: pd.Series, high: pd.Series, low: pd.Series, close: pd.Series, window: int = 30,
               annualize=True) -> pd.Series:
    """Yang-Zhang (2000): ``V_open + k V_close + (1 - k) V_rs``, ``k = 0.34 / (1.34 + (N+1)/(N-1))``.

    ``V_open``, ``V_close``: sample variances (ddof=1) of ``ln(O/C')`` and ``ln(C/O)``;
    ``V_rs``: the Rogers-Satchell mean, all over the same ``N`` bars (the first bar has no
    previous close, so the first value is at position N).
    """
    p = _ohlc(open, high, low, close)
    window = check_window(window, len(p["close"]), window + 1)
    factor = annual_factor(p["close"].index, annualize)
    k = 0.34 / (1.34 + (window + 1) / (window - 1))
    jump = _var(np.log(p["open"] / p["close"].shift(1)), window)
    body = _var(np.log(p["close"] / p["open"]), window)
    rs = _mean(_rogers_satchell_bar(p), window)
    return _volatility(jump + k * body + (1.0 - k) * rs, factor, p["close"].name)


def realized_vol(bars: pd.DataFrame, estimator: str = "close", window: int = 30, annualize=True) -> pd.Series:
    """One of ``ESTIMATORS`` on a bars frame with open/high/low/close columns.

    Examples
    --------
    >>> realized_vol(bars, "yang_zhang", window=60)  # doctest: +SKIP
    """
    if not isinstance(bars, pd.DataFrame):
        raise ValueError(f"bars must be a pandas DataFrame, got {type(bars).__name__}")
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    needed = ("close",) if estimator == "close" else ("high", "low") if estimator == "parkinson" \
        else ("open", "high", "low", "close")
    missing = [c for c in needed if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack column(s) {', '.join(missing)} needed by {estimator}")
    if estimator == "close":
        return close_to_close(bars["close"], window, annualize)
    if estimator == "parkinson":
        return parkinson(bars["high"], bars["low"], window, annualize)
    function = {"garman_klass": garman_klass, "rogers_satchell": rogers_satchell, "yang_zhang": yang_zhang}
    return function[estimator](bars["open"], bars["high"], bars["low"], bars["close"], window, annualize)


def ewma_variance(returns: pd.Series, lam: float) -> pd.Series:
    """RiskMetrics variance: ``sum_i lam^i r_{t-i}^2 / sum_i lam^i`` over the returns so far (zero mean)."""
    return (returns**2).ewm(alpha=1.0 - lam, adjust=True).mean()


def ewma_vol(returns: pd.Series, lam: float = 0.94, annualize=True) -> pd.Series:
    """RiskMetrics (J.P. Morgan 1996) EWMA volatility of zero-mean returns.

    The value at t uses returns up to and including t (it is the forecast for t+1). The
    weights ``lam^i`` are normalised over the returns available, so no seed is needed
    and, after a few hundred bars, this equals the recursion
    ``s2_t = lam s2_{t-1} + (1 - lam) r_t^2``.
    """
    r = as_series(returns, "returns")
    lam = check_lambda(lam)
    if r.count() < 2:
        raise ValueError(f"too few observations for ewma_vol: {r.count()} returns given, 2 needed")
    factor = annual_factor(r.index, annualize)
    return _volatility(ewma_variance(r, lam), factor, r.name)


def _quantile_name(q: float) -> str:
    percent = q * 100
    return f"q{percent:02.0f}" if float(percent).is_integer() else f"q{percent:g}"


def vol_cone(close: pd.Series, windows=CONE_WINDOWS, quantiles=CONE_QUANTILES, annualize=True) -> pd.DataFrame:
    """Volatility cone (Burghardt & Lane 1990): the spread of close-to-close volatility by window.

    For each window the rolling close-to-close volatility over all (overlapping) windows
    of the data gives min, quantiles, max and ``current`` (the latest value).

    Returns
    -------
    DataFrame
        Index ``window`` (bars); columns ``min``, ``q05`` ... ``q95``, ``max``, ``current``.
    """
    c = as_prices(close, "close")
    windows = tuple(windows)
    if not windows:
        raise ValueError("windows is empty")
    quantiles = tuple(quantiles)
    if not all(0.0 < q < 1.0 for q in quantiles):
        raise ValueError(f"quantiles must lie in (0, 1), got {quantiles!r}")
    for window in windows:
        check_window(window, len(c), window + 1)
    rows = {}
    for window in windows:
        vol = close_to_close(c, window, annualize).dropna()
        if vol.empty:
            raise ValueError(f"no complete window of {window} returns without missing prices")
        rows[window] = [vol.min(), *vol.quantile(list(quantiles)), vol.max(), vol.iloc[-1]]
    columns = ["min", *map(_quantile_name, quantiles), "max", "current"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("window")
