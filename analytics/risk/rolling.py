"""Rolling mean and variance that stay accurate in near-flat windows, in O(n).

A sliding sum or Welford update (what pandas does) subtracts the value leaving the
window from a running total: when a large value leaves and small ones remain, the
rounding error of the total (``eps`` times the large values) swamps the small result.
On real one-minute bars, with runs of interpolated or unchanged prices, pandas'
rolling std is then off by 1e-4 relative, and its variance of a flat window can come
out negative (a NaN volatility where the answer is 0).

These kernels update in O(1) a step but recompute the window exactly (two passes) when
the running magnitude has fallen below ``GUARD`` times its largest value since the last
recomputation, and at least every ``window`` steps. Rounding error then stays within
about ``sqrt(window) * eps / GUARD`` of the current window's own magnitude, and
recomputations are rare except in degenerate stretches. A window holding a NaN gives
NaN.
"""

import numpy as np
from numba import njit

GUARD = 1e-3


@njit(cache=True)
def _exact(x, start, stop):
    """Mean, sum of squared deviations and sum of |x| of x[start:stop], two passes."""
    total, magnitude = 0.0, 0.0
    for i in range(start, stop):
        total += x[i]
        magnitude += abs(x[i])
    mean = total / (stop - start)
    m2 = 0.0
    for i in range(start, stop):
        m2 += (x[i] - mean) ** 2
    return mean, m2, magnitude


@njit(cache=True)
def _rolling(x, window, want_var):
    """Rolling mean (``want_var`` False) or sum of squared deviations (True) of ``window`` values."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    last_nan = -1
    exact = False
    mean, m2, magnitude, peak, steps = 0.0, 0.0, 0.0, 0.0, 0
    for t in range(n):
        if np.isnan(x[t]):
            last_nan = t
        if t < window - 1:
            continue
        if last_nan > t - window:
            exact = False
            continue
        if exact and steps < window:
            new, old = x[t], x[t - window]
            new_mean = mean + (new - old) / window
            m2 += (new - old) * (new - new_mean + old - mean)
            mean = new_mean
            magnitude += abs(new) - abs(old)
            steps += 1
            watched = m2 if want_var else magnitude
            if watched < GUARD * peak:
                exact = False
            else:
                peak = max(peak, watched)
        if not (exact and steps < window):
            mean, m2, magnitude = _exact(x, t - window + 1, t + 1)
            peak = m2 if want_var else magnitude
            steps = 0
            exact = True
        out[t] = max(m2, 0.0) if want_var else mean
    return out


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of each window of ``window`` values ending at each position (NaN before)."""
    return _rolling(np.ascontiguousarray(x, dtype=np.float64), window, False)


def rolling_var(x: np.ndarray, window: int, ddof: int = 1) -> np.ndarray:
    """Variance (``ddof`` as numpy) of each window of ``window`` values ending at each position."""
    return _rolling(np.ascontiguousarray(x, dtype=np.float64), window, True) / (window - ddof)
