"""Zero-mean GARCH(1,1) with normal innovations, fitted by maximum likelihood with statsmodels.

Model: ``r_t = s_t z_t``, ``z_t ~ N(0, 1)``, ``s2_t = omega + alpha r_{t-1}^2 + beta s2_{t-1}``.
The recursion starts from the same backcast as the ``arch`` package (an EWMA, lambda 0.94,
of the first 75 squared returns). The log-likelihood and its analytic gradient come from
one numba pass; statsmodels' ``GenericLikelihoodModel`` runs SLSQP under
``omega > 0, alpha, beta >= 0, alpha + beta < 1``.

Returns are divided by their root mean square before fitting (raw one-minute returns,
~1e-3, leave the optimizer at its start); every figure reported is converted back to the
input's units: ``omega`` times the squared scale, ``llf`` minus ``nobs * ln(scale)``,
variances times the squared scale.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import njit
from statsmodels.base.model import GenericLikelihoodModel

from .base import annual_factor, as_series

MIN_OBS = 100
PARAM_NAMES = ["omega", "alpha", "beta"]
_LOG_2PI = math.log(2.0 * math.pi)
_MAX_PERSISTENCE = 1.0 - 1e-6


@njit(cache=True)
def _variance(params, r2, backcast):
    """Conditional variances ``s2_t`` of the recursion."""
    omega, alpha, beta = params[0], params[1], params[2]
    s2 = np.empty(r2.shape[0])
    prev_r2, prev_s2 = backcast, backcast
    for t in range(r2.shape[0]):
        s2[t] = omega + alpha * prev_r2 + beta * prev_s2
        prev_r2, prev_s2 = r2[t], s2[t]
    return s2


@njit(cache=True)
def _loglike_score(params, r2, backcast):
    """Gaussian log-likelihood and its gradient in (omega, alpha, beta), one pass."""
    omega, alpha, beta = params[0], params[1], params[2]
    llf = 0.0
    score = np.zeros(3)
    d = np.zeros(3)  # d s2_t / d params
    prev_r2, prev_s2 = backcast, backcast
    for t in range(r2.shape[0]):
        s2 = omega + alpha * prev_r2 + beta * prev_s2
        if s2 <= 0.0:
            return -np.inf, score
        d[0] = 1.0 + beta * d[0]
        d[1] = prev_r2 + beta * d[1]
        d[2] = prev_s2 + beta * d[2]
        llf -= 0.5 * (_LOG_2PI + math.log(s2) + r2[t] / s2)
        w = -0.5 * (1.0 - r2[t] / s2) / s2
        for j in range(3):
            score[j] += w * d[j]
        prev_r2, prev_s2 = r2[t], s2
    return llf, score


def _backcast(r2: np.ndarray) -> float:
    tau = min(75, r2.shape[0])
    w = 0.94 ** np.arange(tau)
    return float(np.sum(r2[:tau] * w / w.sum()))


class ZeroMeanGarch(GenericLikelihoodModel):
    """statsmodels likelihood model of a zero-mean GARCH(1,1) on (scaled) returns ``endog``."""

    def __init__(self, endog, **kwargs):
        super().__init__(endog, extra_params_names=PARAM_NAMES, **kwargs)
        self._r2 = np.ascontiguousarray(self.endog, dtype=np.float64) ** 2
        self._backcast = _backcast(self._r2)

    def loglike(self, params):
        return _loglike_score(np.asarray(params, dtype=np.float64), self._r2, self._backcast)[0]

    def score(self, params):
        return _loglike_score(np.asarray(params, dtype=np.float64), self._r2, self._backcast)[1]

    def variance(self, params) -> np.ndarray:
        return _variance(np.asarray(params, dtype=np.float64), self._r2, self._backcast)

    def start_values(self) -> np.ndarray:
        """Best of a small grid of (alpha, persistence) at the sample variance (as ``arch`` does)."""
        target = self._r2.mean()
        grid = [np.array([(1.0 - p) * target, a, p - a])
                for a in (0.01, 0.05, 0.1, 0.2) for p in (0.5, 0.8, 0.9, 0.95, 0.98, 0.995) if a < p]
        return max(grid, key=self.loglike)

    def fit(self, start_params=None, **kwargs):
        target = self._r2.mean()
        constraints = ({"type": "ineq", "fun": lambda p: _MAX_PERSISTENCE - p[1] - p[2],
                        "jac": lambda p: np.array([0.0, -1.0, -1.0])},)
        bounds = [(1e-10 * target, 10.0 * target), (0.0, 1.0), (0.0, 1.0)]
        return super().fit(start_params=self.start_values() if start_params is None else start_params,
                           method="minimize", min_method="SLSQP", bounds=bounds, constraints=constraints,
                           maxiter=kwargs.pop("maxiter", 500), disp=kwargs.pop("disp", False), **kwargs)


def _fmt_pct(x: float) -> str:
    return f"{x:.3g}%"


@dataclass(frozen=True)
class GarchResult:
    """A fitted zero-mean GARCH(1,1), in the units of the returns it was given.

    Attributes
    ----------
    omega, alpha, beta : float
        ``s2_t = omega + alpha r_{t-1}^2 + beta s2_{t-1}``.
    llf : float
        Maximised log-likelihood of the returns as given (the scaling accounted for).
    nobs : int
        Returns used (missing ones dropped).
    bse : Series
        Standard errors of omega, alpha, beta (inverse observed Hessian).
    conditional_volatility : Series
        ``s_t`` per bar on the input's index (NaN where the input was missing).
    converged : bool
        Whether the optimizer reported convergence.
    last_return : float
        The last return, from which :meth:`forecast` starts.
    """

    omega: float
    alpha: float
    beta: float
    llf: float
    nobs: int
    bse: pd.Series
    conditional_volatility: pd.Series
    converged: bool
    last_return: float = field(repr=False)

    @property
    def params(self) -> pd.Series:
        return pd.Series([self.omega, self.alpha, self.beta], index=PARAM_NAMES)

    @property
    def persistence(self) -> float:
        """``alpha + beta``: how much of a variance shock is left one bar later."""
        return self.alpha + self.beta

    @property
    def long_run_variance(self) -> float:
        """``omega / (1 - alpha - beta)``, per bar; inf when persistence >= 1."""
        return self.omega / (1.0 - self.persistence) if self.persistence < 1.0 else math.inf

    @property
    def half_life(self) -> float:
        """Bars for a shock to the variance to halve: ``ln 0.5 / ln(alpha + beta)``."""
        p = self.persistence
        return math.log(0.5) / math.log(p) if 0.0 < p < 1.0 else (0.0 if p <= 0.0 else math.inf)

    def forecast(self, horizon: int = 1) -> pd.Series:
        """Variance forecast per bar for 1 .. ``horizon`` bars ahead of the last return.

        ``s2_{T+1} = omega + alpha r_T^2 + beta s2_T``, then
        ``s2_{T+h} = omega sum_{i<h-1} p^i + p^(h-1) s2_{T+1}``, ``p = alpha + beta``.
        """
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
        last_s2 = self.conditional_volatility.dropna().iloc[-1] ** 2
        first = self.omega + self.alpha * self.last_return**2 + self.beta * last_s2
        steps = np.arange(horizon)
        p = self.persistence
        powers = p**steps
        accumulated = self.omega * ((1.0 - powers) / (1.0 - p) if p < 1.0 else steps.astype(float))
        return pd.Series(accumulated + powers * first, index=pd.RangeIndex(1, horizon + 1, name="horizon"),
                         name="variance")

    def forecast_volatility(self, horizon: int = 1, annualize=False) -> pd.Series:
        """``sqrt`` of :meth:`forecast`: volatility per bar, or annualised (True, a frequency or periods/year)."""
        factor = annual_factor(self.conditional_volatility.index, annualize)
        return np.sqrt(self.forecast(horizon) * factor).rename("volatility")

    def summary(self) -> str:
        """The fit in a few plain sentences."""
        p = self.persistence
        text = [f"Zero-mean GARCH(1,1) with normal innovations, maximum likelihood on {self.nobs:,} returns: "
                f"ω = {self.omega:.3g}, α = {self.alpha:.3f}, β = {self.beta:.3f}."]
        if p < 1.0:
            half = self.half_life
            text.append(f"Persistence α + β = {p:.3f}: a shock to the variance halves in "
                        f"{half:,.{1 if half < 10 else 0}f} bars.")
            text.append(self._level("Long-run volatility", self.long_run_variance) + ";"
                        + self._level(" next-bar forecast", self.forecast(1).iloc[0]) + ".")
        else:
            text.append(f"Persistence α + β = {p:.3f}: volatility shocks do not die out (no long-run level).")
        text.append(f"Log-likelihood {self.llf:,.1f}.")
        if not self.converged:
            text.append("The optimizer did not report convergence: treat these estimates with caution.")
        return " ".join(text)

    def _level(self, label: str, variance: float) -> str:
        text = f"{label} {_fmt_pct(100 * math.sqrt(variance))} a bar"
        if isinstance(self.conditional_volatility.index, pd.DatetimeIndex):
            year = annual_factor(self.conditional_volatility.index, True)
            text += f" ({_fmt_pct(100 * math.sqrt(variance * year))} annualised)"
        return text


def fit_garch(returns: pd.Series) -> GarchResult:
    """Fit a zero-mean GARCH(1,1) with normal innovations by maximum likelihood (statsmodels).

    Parameters
    ----------
    returns : Series
        Log returns (e.g. :func:`log_returns`); missing values are dropped, at least 100
        must remain. Any scale: they are rescaled internally and results reported in
        the input's units.

    Returns
    -------
    GarchResult

    Examples
    --------
    >>> fit = fit_garch(log_returns(bars["close"]))  # doctest: +SKIP
    >>> fit.persistence, fit.forecast(60).pipe(np.sqrt)  # doctest: +SKIP
    """
    r = as_series(returns, "returns")
    if not np.isfinite(r.dropna()).all():
        raise ValueError("returns contain infinite values")
    valid = r.dropna()
    if len(valid) < MIN_OBS:
        raise ValueError(f"too few observations for GARCH: {len(valid)} returns given, {MIN_OBS} needed")
    scale = math.sqrt(float(np.mean(valid.to_numpy() ** 2)))
    if scale == 0.0:
        raise ValueError("returns are all zero: no volatility to model")
    model = ZeroMeanGarch(valid.to_numpy() / scale)
    fit = model.fit()
    omega, alpha, beta = fit.params
    sigma = np.sqrt(model.variance(fit.params)) * scale
    units = np.array([scale**2, 1.0, 1.0])
    return GarchResult(
        omega=float(omega * scale**2), alpha=float(alpha), beta=float(beta),
        llf=float(fit.llf - len(valid) * math.log(scale)), nobs=len(valid),
        bse=pd.Series(np.asarray(fit.bse) * units, index=PARAM_NAMES),
        conditional_volatility=pd.Series(sigma, index=valid.index, name=r.name).reindex(r.index),
        converged=bool(fit.mle_retvals.get("converged", False)), last_return=float(valid.iloc[-1]))
