"""Risk analytics: volatility, GARCH, correlation and pair statistics as pure functions on pandas.

- ``volatility``: log returns, realized volatility estimators (close-to-close, Parkinson,
  Garman-Klass, Rogers-Satchell, Yang-Zhang), RiskMetrics EWMA, the volatility cone;
- ``garch``: zero-mean GARCH(1,1) fitted by maximum likelihood with statsmodels;
- ``correlation``: rolling and EWMA correlation, a correlation matrix with p-values,
  rolling beta (statsmodels ``RollingOLS``);
- ``pairs``: cointegration (Engle-Granger) and lead-lag (cross-correlation, Granger).

Inputs are validated at the boundary (``ValueError``, one line); outputs keep the input's
index. Volatilities are annualised for 24/7 markets (365 days a year) unless
``annualize=False``.
"""

from .base import periods_per_year
from .correlation import CorrMatrix, corr_matrix, ewma_corr, rolling_beta, rolling_corr
from .garch import GarchResult, fit_garch
from .pairs import CointResult, LeadLagResult, cointegration, format_p, lead_lag
from .volatility import (
    ESTIMATORS,
    close_to_close,
    ewma_vol,
    garman_klass,
    log_returns,
    parkinson,
    realized_vol,
    rogers_satchell,
    vol_cone,
    yang_zhang,
)

__all__ = [
    "ESTIMATORS", "CointResult", "CorrMatrix", "GarchResult", "LeadLagResult", "close_to_close", "cointegration",
    "corr_matrix", "ewma_corr", "ewma_vol", "fit_garch", "format_p", "garman_klass", "lead_lag", "log_returns",
    "parkinson", "periods_per_year", "realized_vol", "rogers_satchell", "rolling_beta", "rolling_corr",
    "vol_cone", "yang_zhang",
]
