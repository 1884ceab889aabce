"""Two coins: cointegration (Engle-Granger) and lead-lag (cross-correlation, robust Granger causality).

The two series are aligned on the intersection of their indexes and rows with a missing
value are dropped, so lags count rows (bars present in both). Names in the sentences are
the Series' names (``"a"``/``"b"`` when unnamed).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats
from statsmodels.regression.linear_model import OLS
from statsmodels.tools import add_constant
from statsmodels.tsa.stattools import coint

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
    """Lead-lag between returns ``a`` and ``b``: cross-correlation by lag and robust Granger tests.

    A Granger test of order p regresses one series on a constant and p lags of both (an
    equation of the VAR(p), by OLS) and tests that the other series' lags add nothing: a Wald F
    test on the HC3 (heteroskedasticity-consistent) covariance, because returns cluster in
    volatility and have fat tails, which make the textbook F test reject far too often. Every
    order 1 .. max_lag is tested both ways on the same rows (the first ``max_lag`` dropped), and
    the reported p-value is Holm-corrected for those ``2 max_lag`` tests, so a best lag found by
    search is not mistaken for a significant one. (Choosing one order by BIC instead misses
    effects at lags above 1: BIC rarely pays four VAR coefficients for one cross term.)

    Attributes
    ----------
    xcorr : Series
        ``corr(a_t, b_{t+k})`` indexed by lag k in -max_lag .. max_lag: a peak at k > 0
        means ``a`` moves first (leads ``b`` by k bars), at k < 0 that ``b`` leads.
    xcorr_se : Series
        Standard error of each ``xcorr`` when ``a_t`` and ``b_{t+k}`` are uncorrelated, robust
        to heteroskedasticity and autocorrelation (Newey-West on the products, Bartlett kernel,
        bandwidth ``floor(4 (n/100)^(2/9))``); about ``1/sqrt(n)`` for white noise.
    granger_a_to_b, granger_b_to_a : Series
        Robust p-values, by lag order 1 .. max_lag, of the test that the first named series does
        not help predict the second; each uncorrected (one test at one order).
    lag_order : int
        The order of the smallest of those p-values: the test ``pvalue`` reports.
    best_lag : int
        The non-zero lag of largest ``|xcorr|`` (signed as above); when there is a leader at
        the 5 % level, the largest on the leader's side.
    pvalue : float
        The smallest Holm-adjusted p-value of the ``2 max_lag`` tests (``2 max_lag`` times the
        smallest p-value, at most 1).
    nobs : int
        Complete rows the two series have in common.
    names : tuple of str
    """

    xcorr: pd.Series
    xcorr_se: pd.Series
    granger_a_to_b: pd.Series
    granger_b_to_a: pd.Series
    lag_order: int
    best_lag: int
    pvalue: float
    nobs: int
    names: tuple

    def corrected(self) -> tuple[pd.Series, pd.Series]:
        """``granger_a_to_b`` and ``granger_b_to_a`` Holm-adjusted as one family of ``2 max_lag`` tests."""
        adjusted = _holm(np.concatenate([self.granger_a_to_b.to_numpy(), self.granger_b_to_a.to_numpy()]))
        half = len(self.granger_a_to_b)
        return (pd.Series(adjusted[:half], self.granger_a_to_b.index, name="holm"),
                pd.Series(adjusted[half:], self.granger_b_to_a.index, name="holm"))

    def _forward(self) -> bool:
        """Whether the smallest Granger p-value is in the direction a to b."""
        return self.granger_a_to_b.min() <= self.granger_b_to_a.min()

    def leader(self, level: float = LEVEL):
        """The name of the series that leads, or None when no Granger test is significant after correction."""
        if not self.pvalue < level:
            return None
        return self.names[0 if self._forward() else 1]

    def xcorr_band(self, level: float = LEVEL) -> pd.Series:
        """Half-width, by lag, of the band that ``xcorr`` stays inside at all non-zero lags at once with
        probability ``1 - level`` when there is no lead-lag (Bonferroni over the ``2 max_lag`` lags)."""
        return self.xcorr_se * scipy.stats.norm.isf(level / (2 * (len(self.xcorr) - 1)))

    def words(self, level: float = LEVEL) -> str:
        a, b = self.names
        max_lag = len(self.granger_a_to_b)
        test = (f"robust Granger test, lag orders 1-{max_lag} both ways, Holm-corrected {format_p(self.pvalue)} "
                f"at order {self.lag_order}")
        if self.leader(level) is None:
            lag = _peak(self.xcorr)
            r, band = self.xcorr[lag], self.xcorr_band(level)[lag]
            return (f"no significant lead-lag between {a} and {b} up to {max_lag} bars ({test}); "
                    f"strongest cross-correlation {r:.2f} at {_bars(lag)} ({a if lag > 0 else b} first), "
                    f"{'outside' if abs(r) > band else 'inside'} the ±{band:.2f} band of chance; "
                    f"same-bar correlation {self.xcorr[0]:.2f}")
        forward = self._forward()
        lead, follow = (a, b) if forward else (b, a)
        text = f"{lead} leads {follow} by {_bars(_peak(self.xcorr, 1 if forward else -1))} ({test})"
        back = self.corrected()[1 if forward else 0].min()
        if back < level:
            text += f"; {follow} also helps predict {lead} (Holm-corrected {format_p(back)}): feedback both ways"
        return text


def _bars(lag: int) -> str:
    return f"{abs(lag)} bar{'s' if abs(lag) != 1 else ''}"


def _peak(xcorr: pd.Series, side: int = 0) -> int:
    """The non-zero lag of largest ``|xcorr|``, among lags of the sign of ``side`` unless it is 0."""
    lags = xcorr.drop(0)
    if side:
        lags = lags[np.sign(lags.index) == side]
    return int(lags.abs().idxmax())


def _holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given."""
    pvalues = np.asarray(pvalues, dtype=float)
    order = np.argsort(pvalues)
    steps = (len(pvalues) - np.arange(len(pvalues))) * pvalues[order]
    adjusted = np.empty_like(pvalues)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return adjusted


def _xcorr(x: np.ndarray, y: np.ndarray, max_lag: int) -> tuple[pd.Series, pd.Series]:
    """Cross-correlations by lag, and their Newey-West standard errors under no correlation."""
    n = len(x)
    bandwidth = int(4 * (n / 100) ** (2 / 9))
    kernel = 1 - np.arange(1, bandwidth + 1) / (bandwidth + 1)
    values, errors = {}, {}
    for k in range(-max_lag, max_lag + 1):
        xs, ys = (x[: n - k], y[k:]) if k >= 0 else (x[-k:], y[: n + k])
        xs, ys = xs - xs.mean(), ys - ys.mean()
        products, scale = xs * ys, np.sqrt((xs @ xs) * (ys @ ys))
        autocov = np.array([products[j:] @ products[:-j] for j in range(1, bandwidth + 1)])
        values[k] = products.sum() / scale
        errors[k] = np.sqrt(max(products @ products + 2 * kernel @ autocov, 0.0)) / scale
    return _by_lag(values, "xcorr"), _by_lag(errors, "xcorr_se")


def _by_lag(values: dict, name: str) -> pd.Series:
    return pd.Series(values, name=name, dtype=float).rename_axis("lag")


def _hc3_pvalue(design, xtx_inv, coefs, resid, leverage, tested) -> float:
    """p-value of the Wald F test, on HC3 covariance, that the ``tested`` coefficients are zero."""
    rows = xtx_inv[tested] @ design.T
    cov = (rows * (resid / (1 - leverage)) ** 2) @ rows.T
    stat = coefs[tested] @ np.linalg.solve(cov, coefs[tested]) / len(tested)
    return float(scipy.stats.f.sf(stat, len(tested), design.shape[0] - design.shape[1]))


def _granger(x: np.ndarray, y: np.ndarray, max_lag: int) -> tuple[pd.Series, pd.Series]:
    """Robust Granger p-values x to y and y to x by order 1 .. max_lag, all on the same rows."""
    rows = len(x) - max_lag
    lags = [np.column_stack([s[max_lag - j: len(s) - j] for j in range(1, max_lag + 1)]) for s in (x, y)]
    full = np.column_stack([np.ones(rows), *lags])  # constant, x lags 1..L, y lags 1..L
    if np.linalg.matrix_rank(full) < full.shape[1]:
        raise ValueError("the lags of a and b are collinear: lead-lag is undefined")
    targets = np.column_stack([x[max_lag:], y[max_lag:]])
    x_to_y, y_to_x = {}, {}
    for p in range(1, max_lag + 1):
        design = full[:, np.r_[0, 1: p + 1, 1 + max_lag: 1 + max_lag + p]]  # constant, p lags of x, of y
        xtx_inv = np.linalg.inv(design.T @ design)
        coefs = xtx_inv @ (design.T @ targets)
        resid = targets - design @ coefs
        leverage = np.einsum("ij,jk,ik->i", design, xtx_inv, design)
        x_to_y[p] = _hc3_pvalue(design, xtx_inv, coefs[:, 1], resid[:, 1], leverage, np.arange(1, p + 1))
        y_to_x[p] = _hc3_pvalue(design, xtx_inv, coefs[:, 0], resid[:, 0], leverage, np.arange(p + 1, 2 * p + 1))
    return _by_lag(x_to_y, "pvalue"), _by_lag(y_to_x, "pvalue")


def lead_lag(a: pd.Series, b: pd.Series, max_lag: int = 10) -> LeadLagResult:
    """Cross-correlation by lag and robust Granger causality both ways between two return series.

    Granger tests of every order 1 .. ``max_lag`` both ways, Holm-corrected together (see
    :class:`LeadLagResult`); a leader is named when the corrected p-value is below the level.

    Raises
    ------
    ValueError
        For a bad ``max_lag``, fewer than ``3 max_lag + 2`` common rows, infinite or constant
        returns, or collinear lags (e.g. ``b`` a multiple of ``a``).

    Examples
    --------
    >>> lead_lag(log_returns(btc).rename("BTC-USDT"), log_returns(eth).rename("ETH-USDT")).words()  # doctest: +SKIP
    'BTC-USDT leads ETH-USDT by 2 bars (robust Granger test, lag orders 1-10 both ways, Holm-corrected p = 0.003 ...'
    """
    if isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)) or max_lag < 1:
        raise ValueError(f"max_lag must be a positive integer, got {max_lag!r}")
    max_lag = int(max_lag)
    ra, rb = _complete_pair(as_series(a, "a"), as_series(b, "b"))
    needed = 3 * max_lag + 2
    if len(ra) < needed:
        raise ValueError(f"too few observations for max_lag={max_lag}: {len(ra)} common rows, {needed} needed")
    x, y = ra.to_numpy(), rb.to_numpy()
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("returns contain infinite values")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise ValueError("a return series is constant: lead-lag is undefined")
    xcorr, xcorr_se = _xcorr(x, y, max_lag)
    a_to_b, b_to_a = _granger(x, y, max_lag)
    forward = a_to_b.min() <= b_to_a.min()
    smallest = a_to_b if forward else b_to_a
    pvalue = min(1.0, 2 * max_lag * smallest.min())
    best = _peak(xcorr, (1 if forward else -1) if pvalue < LEVEL else 0)
    return LeadLagResult(xcorr=xcorr, xcorr_se=xcorr_se, granger_a_to_b=a_to_b, granger_b_to_a=b_to_a,
                         lag_order=int(smallest.idxmin()), best_lag=best, pvalue=float(pvalue), nobs=len(ra),
                         names=_names(a, b))
