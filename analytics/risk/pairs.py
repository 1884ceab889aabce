"""Two coins: cointegration (Engle-Granger) and lead-lag (cross-correlation, Granger causality).

The two series are aligned on the intersection of their indexes and rows with a missing
value are dropped, so lags count rows (bars present in both). Names in the sentences are
the Series' names (``"a"``/``"b"`` when unnamed).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.regression.linear_model import OLS
from statsmodels.tools import add_constant
from statsmodels.tsa.stattools import coint, grangercausalitytests

from .base import align, as_prices, as_series

LEVEL = 0.05
MIN_COINT_OBS = 20
# ADF lags tried (by AIC) in the cointegration test. statsmodels' default, 12 (n/100)^(1/4), is 55 for a
# month of minutes and makes the test take ~5 s (50 regressions of 45k rows x 57); 20 minutes of lags
# whiten one-minute residuals and the test takes ~0.4 s.
COINT_MAXLAG = 20


def format_p(p: float) -> str:
    """``p = 0.41``, ``p = 0.003``, ``p < 0.001``."""
    if not np.isfinite(p):
        return "p = n/a"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def _names(a: pd.Series, b: pd.Series) -> tuple[str, str]:
    return (str(a.name) if a.name is not None else "a", str(b.name) if b.name is not None else "b")


def _complete_pair(a: pd.Series, b: pd.Series) -> tuple[pd.Series, pd.Series]:
    a, b = align(a, b)
    both = a.notna() & b.notna()
    return a[both], b[both]


@dataclass(frozen=True)
class CointResult:
    """Engle-Granger test of ``ln a_t = c + hedge_ratio ln b_t + u_t`` with stationary ``u``.

    Attributes
    ----------
    tstat, pvalue : float
        ADF statistic of the residual ``u`` and its MacKinnon p-value (null: no cointegration).
    crit : dict
        Critical values of ``tstat`` at ``"1%"``, ``"5%"``, ``"10%"``.
    hedge_ratio, intercept : float
        OLS coefficients of the cointegrating regression in log prices.
    nobs : int
    names : tuple of str
    """

    tstat: float
    pvalue: float
    crit: dict
    hedge_ratio: float
    intercept: float
    nobs: int
    names: tuple

    def words(self, level: float = LEVEL) -> str:
        a, b = self.names
        if self.pvalue < level:
            return (f"{a} and {b} are cointegrated (Engle-Granger {format_p(self.pvalue)}): "
                    f"ln {a} − {self.hedge_ratio:#.3g} × ln {b} tends to revert to its mean")
        return f"no evidence of cointegration between {a} and {b} (Engle-Granger {format_p(self.pvalue)})"


def cointegration(a: pd.Series, b: pd.Series, maxlag=COINT_MAXLAG) -> CointResult:
    """Engle-Granger cointegration of two price series, on log prices (statsmodels ``coint``).

    Parameters
    ----------
    a, b : Series
        Positive prices; ``a`` is the dependent side of the regression.
    maxlag : int or None
        Most lags of the residual's ADF regression (chosen by AIC); None: statsmodels'
        default ``12 (n/100)^(1/4)``, slow on long series.
    """
    if maxlag is not None and (isinstance(maxlag, bool) or not isinstance(maxlag, (int, np.integer)) or maxlag < 0):
        raise ValueError(f"maxlag must be a non-negative integer or None, got {maxlag!r}")
    pa, pb = _complete_pair(as_prices(a, "a"), as_prices(b, "b"))
    if len(pa) < MIN_COINT_OBS:
        raise ValueError(f"too few observations for cointegration: {len(pa)} common rows, {MIN_COINT_OBS} needed")
    la, lb = np.log(pa.to_numpy()), np.log(pb.to_numpy())
    if np.ptp(la) == 0 or np.ptp(lb) == 0:
        raise ValueError("a price series is constant: cointegration is undefined")
    tstat, pvalue, crit = coint(la, lb, trend="c", maxlag=maxlag, autolag="aic")
    intercept, hedge = OLS(la, add_constant(lb)).fit().params
    return CointResult(tstat=float(tstat), pvalue=float(pvalue), crit=dict(zip(("1%", "5%", "10%"), map(float, crit))),
                       hedge_ratio=float(hedge), intercept=float(intercept), nobs=len(pa), names=_names(a, b))


@dataclass(frozen=True)
class LeadLagResult:
    """Lead-lag between returns ``a`` and ``b``.

    Attributes
    ----------
    xcorr : Series
        ``corr(a_t, b_{t+k})`` indexed by lag k in -max_lag .. max_lag: a peak at k > 0
        means ``a`` moves first (leads ``b`` by k bars), at k < 0 that ``b`` leads.
    granger_a_to_b, granger_b_to_a : Series
        p-values, by lag order 1 .. max_lag, of the Granger test (ssr F test) that the
        first named series does not help predict the second.
    best_lag : int
        The non-zero lag of largest ``|xcorr|`` (signed as above).
    pvalue : float
        The Granger p-value in the direction of ``best_lag`` at order ``|best_lag|``.
    nobs : int
    names : tuple of str
    """

    xcorr: pd.Series
    granger_a_to_b: pd.Series
    granger_b_to_a: pd.Series
    best_lag: int
    pvalue: float
    nobs: int
    names: tuple

    def leader(self, level: float = LEVEL):
        """The name of the series that leads, or None when the Granger test is not significant."""
        return self.names[0 if self.best_lag > 0 else 1] if self.pvalue < level else None

    def words(self, level: float = LEVEL) -> str:
        a, b = self.names
        lag = abs(self.best_lag)
        bars = f"{lag} bar{'s' if lag != 1 else ''}"
        if self.leader(level) is None:
            return (f"no significant lead-lag between {a} and {b} up to {len(self.granger_a_to_b)} bars "
                    f"(strongest cross-correlation {self.xcorr[self.best_lag]:.2f} at {bars}, "
                    f"Granger {format_p(self.pvalue)}); same-bar correlation {self.xcorr[0]:.2f}")
        lead, follow = (a, b) if self.best_lag > 0 else (b, a)
        back = (self.granger_b_to_a if self.best_lag > 0 else self.granger_a_to_b)[lag]
        text = f"{lead} leads {follow} by {bars} (Granger {format_p(self.pvalue)})"
        if back < level:
            text += f"; {follow} also helps predict {lead} ({format_p(back)}): feedback both ways"
        return text


def _xcorr(x: np.ndarray, y: np.ndarray, max_lag: int) -> pd.Series:
    n = len(x)
    values = {}
    for k in range(-max_lag, max_lag + 1):
        xs, ys = (x[: n - k], y[k:]) if k >= 0 else (x[-k:], y[: n + k])
        values[k] = np.corrcoef(xs, ys)[0, 1]
    return pd.Series(values, name="xcorr").rename_axis("lag")


def _granger(effect: np.ndarray, cause: np.ndarray, max_lag: int) -> pd.Series:
    """p-values of the ssr F test that ``cause`` does not Granger-cause ``effect``, by lag order."""
    tests = grangercausalitytests(np.column_stack([effect, cause]), maxlag=max_lag)
    return pd.Series({lag: tests[lag][0]["ssr_ftest"][1] for lag in tests}, name="pvalue").rename_axis("lag")


def lead_lag(a: pd.Series, b: pd.Series, max_lag: int = 10) -> LeadLagResult:
    """Cross-correlation by lag and Granger causality both ways between two return series.

    Examples
    --------
    >>> lead_lag(log_returns(btc).rename("BTC-USDT"), log_returns(eth).rename("ETH-USDT")).words()  # doctest: +SKIP
    'BTC-USDT leads ETH-USDT by 2 bars (Granger p = 0.003)'
    """
    if isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)) or max_lag < 1:
        raise ValueError(f"max_lag must be a positive integer, got {max_lag!r}")
    ra, rb = _complete_pair(as_series(a, "a"), as_series(b, "b"))
    needed = 3 * max_lag + 2
    if len(ra) < needed:
        raise ValueError(f"too few observations for max_lag={max_lag}: {len(ra)} common rows, {needed} needed")
    x, y = ra.to_numpy(), rb.to_numpy()
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("returns contain infinite values")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise ValueError("a return series is constant: lead-lag is undefined")
    xcorr = _xcorr(x, y, max_lag)
    best = int(xcorr.drop(0).abs().idxmax())
    a_to_b, b_to_a = _granger(y, x, max_lag), _granger(x, y, max_lag)
    pvalue = (a_to_b if best > 0 else b_to_a)[abs(best)]
    return LeadLagResult(xcorr=xcorr, granger_a_to_b=a_to_b, granger_b_to_a=b_to_a, best_lag=best,
                         pvalue=float(pvalue), nobs=len(ra), names=_names(a, b))
