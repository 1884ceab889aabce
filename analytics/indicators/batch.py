"""Batch technical indicators: pure functions of pandas Series, equal to TA-Lib's.

Every function takes Series (numpy arrays and lists are accepted too and get a RangeIndex), in TA-Lib's
argument order and with its defaults, and returns a Series named after the function, or a DataFrame with
the named columns, on the input's index. Results follow TA-Lib's conventions: the same NaN warm-up (the
first valid bar is TA-Lib's lookback, counted from the first bar where every input is valid, as in its
Python wrapper) and the same values to rounding.

Raises
------
ValueError
    For a period below TA-Lib's minimum or not an int, inputs of unequal length or index, a non-numeric
    input, or a NaN after an input's first valid value (leading NaNs are allowed).
"""

import numpy as np
import pandas as pd

from . import _kernels, _oscillators
from ._validate import frame, inputs, period as _period, real, series


def sma(close, period=30) -> pd.Series:
    """Simple moving average; first value at ``period - 1``."""
    (x,), index, start = inputs(close=close)
    return series(_kernels.sma(x[start:], _period("period", period, 1)), index, start, "sma")


def ema(close, period=30) -> pd.Series:
    """Exponential moving average, k = 2/(period+1), seeded with the SMA of the first ``period`` closes."""
    (x,), index, start = inputs(close=close)
    return series(_kernels.ema(x[start:], _period("period", period, 1)), index, start, "ema")


def wma(close, period=30) -> pd.Series:
    """Linearly weighted moving average (weights 1..period); first value at ``period - 1``."""
    (x,), index, start = inputs(close=close)
    return series(_kernels.wma(x[start:], _period("period", period, 1)), index, start, "wma")


def dema(close, period=30) -> pd.Series:
    """Double EMA, 2·EMA − EMA(EMA); first value at ``2·(period − 1)``."""
    (x,), index, start = inputs(close=close)
    return series(_kernels.dema(x[start:], _period("period", period, 1)), index, start, "dema")


def tema(close, period=30) -> pd.Series:
    """Triple EMA, 3·EMA − 3·EMA² + EMA³; first value at ``3·(period − 1)``."""
    (x,), index, start = inputs(close=close)
    return series(_kernels.tema(x[start:], _period("period", period, 1)), index, start, "tema")


def kama(close, period=30) -> pd.Series:
    """Kaufman's adaptive moving average (efficiency ratio between EMA(2) and EMA(30)); first value at ``period``."""
    (x,), index, start = inputs(close=close)
    return series(_kernels.kama(x[start:], _period("period", period, 1)), index, start, "kama")


def rsi(close, period=14) -> pd.Series:
    """Wilder's relative strength index, 0..100; first value at ``period``."""
    (x,), index, start = inputs(close=close)
    return series(_oscillators.rsi(x[start:], _period("period", period, 2)), index, start, "rsi")


def macd(close, fast=12, slow=26, signal=9) -> pd.DataFrame:
    """MACD: columns ``macd`` (EMA(fast) − EMA(slow)), ``signal`` (its EMA) and ``hist`` (their difference).

    As in TA-Lib, both EMAs are seeded at bar ``slow − 1`` (the fast one on its last ``fast`` closes), all
    three columns start at ``slow + signal − 2``, and ``fast`` and ``slow`` are swapped if ``slow < fast``.
    """
    (x,), index, start = inputs(close=close)
    rows = _kernels.macd(x[start:], _period("fast", fast, 2), _period("slow", slow, 2), _period("signal", signal, 1))
    return frame(rows, index, start, ["macd", "signal", "hist"])


def bollinger(close, period=20, k=2.0) -> pd.DataFrame:
    """Bollinger bands (TA-Lib BBANDS, SMA): columns ``lower``, ``middle``, ``upper`` = SMA ∓ k·σ.

    σ is the population standard deviation (ddof=0) of the last ``period`` closes.
    """
    (x,), index, start = inputs(close=close)
    rows = _kernels.bbands(x[start:], _period("period", period, 2), real("k", k))
    return frame(rows, index, start, ["lower", "middle", "upper"])



def atr(high, low, close, period=14) -> pd.Series:
    """Wilder's average true range; first value at ``period``."""
    (h, lo, c), index, start = inputs(high=high, low=low, close=close)
    values = _oscillators.atr(h[start:], lo[start:], c[start:], _period("period", period, 1), False)
    return series(values, index, start, "atr")


def natr(high, low, close, period=14) -> pd.Series:
    """Normalized ATR, 100·ATR/close (0 where the close is 0); first value at ``period``.

    At ``period`` = 1 it is 100·TR/close, where TA-Lib returns the raw true range.
    """
    (h, lo, c), index, start = inputs(high=high, low=low, close=close)
    values = _oscillators.atr(h[start:], lo[start:], c[start:], _period("period", period, 1), True)
    return series(values, index, start, "natr")


def stoch(high, low, close, fastk_period=5, slowk_period=3, slowd_period=3) -> pd.DataFrame:
    """Slow stochastic: columns ``k`` (SMA of fast %K) and ``d`` (SMA of ``k``), 0..100.

    Fast %K is 0 on a window without range. Both columns start at ``fastk + slowk + slowd − 3``.
    """
    (h, lo, c), index, start = inputs(high=high, low=low, close=close)
    rows = _oscillators.stoch(h[start:], lo[start:], c[start:], _period("fastk_period", fastk_period, 1),
                   _period("slowk_period", slowk_period, 1), _period("slowd_period", slowd_period, 1))
    return frame(rows, index, start, ["k", "d"])


def stochrsi(close, period=14, fastk_period=5, fastd_period=3) -> pd.DataFrame:
    """Stochastic RSI: columns ``k`` (fast %K of RSI(period)) and ``d`` (its SMA), 0..100.

    Both columns start at ``period + fastk_period + fastd_period − 2``.
    """
    (x,), index, start = inputs(close=close)
    rows = _oscillators.stochrsi(x[start:], _period("period", period, 2), _period("fastk_period", fastk_period, 1),
                      _period("fastd_period", fastd_period, 1))
    return frame(rows, index, start, ["k", "d"])


def cci(high, low, close, period=14) -> pd.Series:
    """Commodity channel index of the typical price; 0 on a flat window; first value at ``period − 1``."""
    (h, lo, c), index, start = inputs(high=high, low=low, close=close)
    return series(_oscillators.cci(h[start:], lo[start:], c[start:], _period("period", period, 2)), index, start, "cci")


def adx(high, low, close, period=14) -> pd.Series:
    """Wilder's average directional index, 0..100; first value at ``2·period − 1``."""
    (h, lo, c), index, start = inputs(high=high, low=low, close=close)
    return series(_oscillators.adx(h[start:], lo[start:], c[start:], _period("period", period, 2)), index, start, "adx")


def plus_di(high, low, close, period=14) -> pd.Series:
    """+DI, Wilder's plus directional indicator in percent; first value at ``period``.

    At ``period`` = 1 it is a percentage like every other period (TA-Lib returns a fraction there).
    """
    (h, lo, c), index, start = inputs(high=high, low=low, close=close)
    rows = _oscillators.dmi(h[start:], lo[start:], c[start:], _period("period", period, 1))
    return series(rows[0], index, start, "plus_di")


def minus_di(high, low, close, period=14) -> pd.Series:
    """−DI, Wilder's minus directional indicator in percent; first value at ``period`` (see ``plus_di``)."""
    (h, lo, c), index, start = inputs(high=high, low=low, close=close)
    rows = _oscillators.dmi(h[start:], lo[start:], c[start:], _period("period", period, 1))
    return series(rows[1], index, start, "minus_di")


def aroon(high, low, period=14) -> pd.DataFrame:
    """Aroon: columns ``down`` and ``up``, 0..100, over the last ``period + 1`` bars; first value at ``period``."""
    (h, lo), index, start = inputs(high=high, low=low)
    return frame(_oscillators.aroon(h[start:], lo[start:], _period("period", period, 2)), index, start, ["down", "up"])


def mfi(high, low, close, volume, period=14) -> pd.Series:
    """Money flow index, 0..100 (0 for a window without money flow); first value at ``period``."""
    (h, lo, c, v), index, start = inputs(high=high, low=low, close=close, volume=volume)
    values = _oscillators.mfi(h[start:], lo[start:], c[start:], v[start:], _period("period", period, 2))
    return series(values, index, start, "mfi")


def obv(close, volume) -> pd.Series:
    """On-balance volume, starting at the first bar's volume."""
    (c, v), index, start = inputs(close=close, volume=volume)
    return series(_oscillators.obv(c[start:], v[start:]), index, start, "obv")


def roc(close, period=10) -> pd.Series:
    """Rate of change in percent, 100·(close/close[−period] − 1), 0 where that close is 0."""
    (x,), index, start = inputs(close=close)
    return series(_oscillators.roc(x[start:], _period("period", period, 1)), index, start, "roc")


def mom(close, period=10) -> pd.Series:
    """Momentum, close − close[−period]."""
    (x,), index, start = inputs(close=close)
    return series(_oscillators.mom(x[start:], _period("period", period, 1)), index, start, "mom")


def willr(high, low, close, period=14) -> pd.Series:
    """Williams' %R, −100..0 (0 on a flat window); first value at ``period − 1``."""
    (h, lo, c), index, start = inputs(high=high, low=low, close=close)
    values = _oscillators.willr(h[start:], lo[start:], c[start:], _period("period", period, 2))
    return series(values, index, start, "willr")


def sar(high, low, acceleration=0.02, maximum=0.2) -> pd.Series:
    """Parabolic SAR from the second bar; short first if that bar's −DM is positive, else long (TA-Lib)."""
    (h, lo), index, start = inputs(high=high, low=low)
    values = _kernels.sar(h[start:], lo[start:], real("acceleration", acceleration, 0.0), real("maximum", maximum, 0.0))
    return series(values, index, start, "sar")


def donchian(high, low, period=20) -> pd.DataFrame:
    """Donchian channel: columns ``lower`` (rolling min of low), ``middle`` (their mean), ``upper`` (max of high).

    First value at ``period − 1``, like TA-Lib's MIN and MAX.
    """
    (h, lo), index, start = inputs(high=high, low=low)
    rows = _kernels.donchian(h[start:], lo[start:], _period("period", period, 2))
    return frame(rows, index, start, ["lower", "middle", "upper"])


def typical_price(high, low, close) -> pd.Series:
    """(high + low + close) / 3, TA-Lib's TYPPRICE."""
    (h, lo, c), index, _ = inputs(high=high, low=low, close=close)
    return series((h + lo + c) / 3.0, index, 0, "typical_price")


def _sessions(index: pd.Index, anchor) -> tuple[np.ndarray, int]:
    """Stamps and a step such that ``stamps // step`` numbers the anchor periods; step 0 for one session."""
    if anchor is None:
        return np.empty(0, np.int64), 0
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(f"vwap with anchor {anchor!r} needs a DatetimeIndex, got {type(index).__name__}")
    if not index.is_monotonic_increasing:
        raise ValueError("vwap needs an increasing DatetimeIndex")
    try:
        offset = pd.tseries.frequencies.to_offset(anchor)
        local = index.tz_localize(None) if index.tz is not None else index
        if isinstance(offset, pd.offsets.Tick):
            return local.as_unit("ns").asi8, offset.nanos
        return local.to_period(offset).asi8, 1
    except (TypeError, ValueError):
        raise ValueError(f"anchor must be None or a pandas frequency such as 'D', got {anchor!r}") from None


def vwap(price, volume, anchor="D") -> pd.Series:
    """Session VWAP: cumulative Σ price·volume / Σ volume, restarted at each ``anchor`` period.

    Parameters
    ----------
    price : Series
        Trade prices, or bars' typical price (see ``typical_price``) or VWAP.
    volume : Series
        Trade sizes or bar volumes.
    anchor : str or None
        Pandas frequency of the sessions ("D": calendar days of the index's time zone, "h", "W", ...),
        which needs an increasing DatetimeIndex; None never restarts.

    Returns
    -------
    Series
        NaN while the session has had no volume yet.
    """
    (p, v), index, start = inputs(price=price, volume=volume)
    stamps, step = _sessions(index, anchor)
    return series(_oscillators.vwap(p[start:], v[start:], stamps[start:], step), index, start, "vwap")
