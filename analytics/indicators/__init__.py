"""Technical indicators that give TA-Lib's numbers, as pure functions on pandas.

The batch functions (``analytics.indicators.batch``) take Series in TA-Lib's argument order with its
defaults (``rsi(close, period=14)``, ``macd(close, fast=12, slow=26, signal=9)``, ``atr(high, low, close,
period=14)``, ...) and return a Series or a DataFrame of named columns on the input's index.

TA-Lib's conventions are kept exactly (its Python wrapper is the reference the tests compare with, to
1e-9 relative and usually bit for bit): the same NaN warm-up, counted from the first bar where every
input is valid; EMAs seeded with the SMA of their first ``period`` values; MACD's fast EMA seeded at
the slow one's first bar and all three outputs starting at ``slow + signal - 2``; Wilder's smoothing for
RSI, ATR and ADX without an unstable period; population standard deviation in the Bollinger bands;
SMA smoothing in the stochastics; 0 rather than a division by zero on flat windows (RSI, stochastics,
Williams' %R, CCI, MFI). One deliberate difference: at period 1, ``natr``, ``plus_di`` and ``minus_di``
stay percentages, where TA-Lib returns the raw true range and fractions.

Kernels are compiled with numba on first use and cached on disk.
"""

from .batch import (
    adx,
    aroon,
    atr,
    bollinger,
    cci,
    dema,
    donchian,
    ema,
    kama,
    macd,
    mfi,
    minus_di,
    mom,
    natr,
    obv,
    plus_di,
    roc,
    rsi,
    sar,
    sma,
    stoch,
    stochrsi,
    tema,
    typical_price,
    vwap,
    willr,
    wma,
)

__all__ = [
    "adx", "aroon", "atr", "bollinger", "cci", "dema", "donchian", "ema", "kama", "macd", "mfi", "minus_di", "mom",
    "natr", "obv", "plus_di", "roc", "rsi", "sar", "sma", "stoch", "stochrsi", "tema", "typical_price", "vwap",
    "willr", "wma",
]
