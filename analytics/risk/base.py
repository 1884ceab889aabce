"""Validation at the boundary and annualisation, shared by the risk modules.

Every public function of ``analytics.risk`` checks its inputs here and raises a one-line
``ValueError`` naming the bad value. Policies:

- one coin's open/high/low/close must share one index (they come from the same bars);
- two coins are aligned on the intersection of their indexes (rows present in both);
- prices must be positive; windows at least 2 and no longer than the data.
"""

import numpy as np
import pandas as pd

SECONDS_PER_YEAR = 365 * 86_400  # crypto trades 24/7: no weekends, no holidays


def as_series(x, name: str) -> pd.Series:
    """``x`` as a float Series; raise unless it is a pandas Series."""
    if not isinstance(x, pd.Series):
        raise ValueError(f"{name} must be a pandas Series, got {type(x).__name__}")
    if not x.index.is_monotonic_increasing:
        raise ValueError(f"{name} index must be sorted in increasing order")
    return x.astype(np.float64)


def as_prices(x, name: str) -> pd.Series:
    """``x`` as a Series of positive prices (NaN allowed: missing)."""
    s = as_series(x, name)
    bad = s <= 0
    if bad.any():
        raise ValueError(f"{name} has non-positive prices ({s[bad].iloc[0]!r} at {s.index[bad][0]})")
    return s


def check_window(window, n: int, needed: int, what: str = "window") -> int:
    """``window`` as an int >= 2 with at least ``needed`` of the ``n`` observations available."""
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"{what} must be an integer >= 2, got {window!r}")
    if n < needed:
        raise ValueError(f"too few observations for {what}={window}: {n} given, {needed} needed")
    return int(window)


def check_lambda(lam) -> float:
    """The EWMA decay ``lam`` in (0, 1)."""
    if not 0.0 < lam < 1.0:
        raise ValueError(f"lam must be in (0, 1), got {lam!r}")
    return float(lam)


def same_index(**series: pd.Series) -> None:
    """Raise unless all ``series`` (one coin's OHLC) share one index."""
    (first, ref), *rest = series.items()
    for name, s in rest:
        if not s.index.equals(ref.index):
            raise ValueError(f"{name} and {first} have different indexes: pass columns of one bars frame")


def align(a: pd.Series, b: pd.Series, names=("a", "b")) -> tuple[pd.Series, pd.Series]:
    """``a`` and ``b`` on the intersection of their indexes; raise if it is empty."""
    if a.index.equals(b.index):
        return a, b
    common = a.index.intersection(b.index)
    if len(common) == 0:
        raise ValueError(f"{names[0]} and {names[1]} have no index value in common")
    return a.loc[common], b.loc[common]


def bar_seconds(index_or_freq) -> float:
    """Seconds per bar of a DatetimeIndex (its freq, else the median spacing) or a frequency."""
    if isinstance(index_or_freq, pd.DatetimeIndex):
        if index_or_freq.freq is not None and isinstance(index_or_freq.freq, pd.offsets.Tick):
            return pd.Timedelta(index_or_freq.freq).total_seconds()
        if len(index_or_freq) < 2:
            raise ValueError(f"cannot infer the bar length from {len(index_or_freq)} timestamp(s)")
        seconds = (index_or_freq[1:] - index_or_freq[:-1]).median().total_seconds()
    elif isinstance(index_or_freq, (int, float, np.integer, np.floating)) and not isinstance(index_or_freq, bool):
        seconds = float(index_or_freq)
    else:
        try:
            seconds = pd.Timedelta(index_or_freq).total_seconds()
        except (ValueError, TypeError):
            raise ValueError(f"not a bar length or DatetimeIndex: {index_or_freq!r}") from None
    if not seconds > 0:
        raise ValueError(f"bar length must be positive, got {index_or_freq!r}")
    return seconds


def periods_per_year(index_or_freq) -> float:
    """Bars in a year of a 24/7 market: 365 days x 86,400 s / seconds per bar.

    Parameters
    ----------
    index_or_freq : DatetimeIndex, str, Timedelta or number
        A bar index (its ``freq``, else the median spacing, robust to missing bars), a
        frequency such as ``"1m"``/``"1min"``/``"5m"``/``"1h"``, or seconds per bar.

    Examples
    --------
    >>> periods_per_year("1m")
    525600.0
    """
    return SECONDS_PER_YEAR / bar_seconds(index_or_freq)


def annual_factor(index: pd.Index, annualize) -> float:
    """The multiplier of a per-bar variance: 1, or periods per year.

    ``annualize`` is False (per bar), True (inferred from a DatetimeIndex), a number of
    periods per year, or a bar length (``"1m"``, a Timedelta).
    """
    if isinstance(annualize, (bool, np.bool_)) and not annualize:
        return 1.0
    if isinstance(annualize, (bool, np.bool_)):
        if not isinstance(index, pd.DatetimeIndex):
            raise ValueError("annualize=True needs a DatetimeIndex; pass annualize=False, a frequency or periods/year")
        return periods_per_year(index)
    if isinstance(annualize, (int, float, np.integer, np.floating)):
        if annualize > 0:
            return float(annualize)
        raise ValueError(f"annualize must be a bool, a bar length or a positive number of periods/year, "
                         f"got {annualize!r}")
    return periods_per_year(annualize)
