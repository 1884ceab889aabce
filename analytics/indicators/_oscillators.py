"""Numba kernels: oscillators, Wilder's smoothings and volume indicators, in TA-Lib's arithmetic.

Same contract as ``_kernels``: NaN-free contiguous float64 inputs starting at the first valid bar, outputs
of the same length with NaN over TA-Lib's warm-up.
"""

import numpy as np
from numba import njit

from ._kernels import EPSILON, fma, is_zero_scaled, rolling_range_into, sma_into


@njit(cache=True)
def rsi(x, n):
    """Wilder's RSI: average gain and loss seeded with the mean of the first ``n`` changes; 0 if both are 0."""
    size = x.shape[0]
    out = np.empty_like(x)
    out[:min(n, size)] = np.nan
    gain, loss, inv = 0.0, 0.0, 1.0 / n
    for i in range(1, size):
        change = x[i] - x[i - 1]
        up, down = (0.0, -change) if change < 0.0 else (change, 0.0)
        if i <= n:
            gain += up
            loss += down
            if i < n:
                continue
            gain /= n
            loss /= n
        else:
            gain = (gain * (n - 1) + up) * inv
            loss = (loss * (n - 1) + down) * inv
        total = gain + loss
        out[i] = 100.0 * (gain / total) if total > 0.0 else 0.0
    return out


@njit(cache=True)
def _fast_k_into(high, low, close, begin, n, out):
    """Fast %K of ``close`` in the range of the last ``n`` highs and lows, from bar ``begin + n - 1``."""
    size = close.shape[0]
    highest, lowest = np.empty_like(close), np.empty_like(close)
    rolling_range_into(high, low, begin, n, highest, lowest)
    out[:min(begin + n - 1, size)] = np.nan
    for i in range(begin + n - 1, size):
        width = highest[i] - lowest[i]
        if is_zero_scaled(width, abs(highest[i]) + abs(lowest[i])):
            out[i] = 0.0
        else:
            out[i] = (close[i] - lowest[i]) / width * 100.0


@njit(cache=True)
def stoch(high, low, close, fastk, slowk, slowd):
    """Rows slow %K (SMA of fast %K) and %D (SMA of slow %K), both from TA-Lib's full lookback."""
    fast = np.empty_like(close)
    _fast_k_into(high, low, close, 0, fastk, fast)
    out = np.empty((2, close.shape[0]))
    sma_into(fast, fastk - 1, slowk, out[0])
    sma_into(out[0], fastk + slowk - 2, slowd, out[1])
    out[0, :min(fastk + slowk + slowd - 3, close.shape[0])] = np.nan
    return out


@njit(cache=True)
def stochrsi(x, n, fastk, fastd):
    """Rows fast %K of the RSI in its own ``fastk`` range and %D, its SMA; both from the full lookback."""
    strength = rsi(x, n)
    out = np.empty((2, x.shape[0]))
    _fast_k_into(strength, strength, strength, n, fastk, out[0])
    sma_into(out[0], n + fastk - 1, fastd, out[1])
    out[0, :min(n + fastk + fastd - 2, x.shape[0])] = np.nan
    return out


@njit(cache=True)
def cci(high, low, close, n):
    """Commodity Channel Index over typical prices held in a ring, summed in ring order as TA-Lib does."""
    size = close.shape[0]
    out = np.empty_like(close)
    out[:min(n - 1, size)] = np.nan
    ring = np.zeros(n)
    slot = 0
    for i in range(size):
        last = (high[i] + low[i] + close[i]) / 3
        ring[slot] = last
        slot = slot + 1 if slot + 1 < n else 0
        if i < n - 1:
            continue
        average = 0.0
        for j in range(n):
            average += ring[j]
        average /= n
        deviation = 0.0
        for j in range(n):
            deviation += abs(ring[j] - average)
        deviation /= n
        distance = last - average
        scale = abs(average)
        if is_zero_scaled(distance, scale) or is_zero_scaled(deviation, scale):
            out[i] = 0.0
        else:
            out[i] = distance / (0.015 * deviation)
    return out


@njit(cache=True)
def willr(high, low, close, n):
    """Williams' %R in [-100, 0]; 0 on a flat window."""
    size = close.shape[0]
    highest, lowest = np.empty_like(close), np.empty_like(close)
    rolling_range_into(high, low, 0, n, highest, lowest)
    out = np.empty_like(close)
    out[:min(n - 1, size)] = np.nan
    for i in range(n - 1, size):
        width = highest[i] - lowest[i]
        if is_zero_scaled(width, abs(highest[i]) + abs(lowest[i])):
            out[i] = 0.0
        else:
            out[i] = min(0.0, max(-100.0, (highest[i] - close[i]) / width * -100.0))
    return out


@njit(cache=True)
def _true_range(high, low, prev_close):
    best = high - low
    best = max(best, abs(high - prev_close))
    return max(best, abs(low - prev_close))


@njit(cache=True)
def atr(high, low, close, n, percent):
    """Wilder's average true range (as a percentage of the close if ``percent``: 0 where the close is 0).

    Seeded with the mean of the first ``n`` true ranges (bars 1..n), then smoothed with TA-Lib's one
    multiply-add, ((n-1)/n)·ATR + (1 - (n-1)/n)·TR.
    """
    size = close.shape[0]
    out = np.empty_like(close)
    out[:min(n, size)] = np.nan
    keep = (n - 1) / n
    share = 1.0 - keep
    value = 0.0
    for i in range(1, size):
        rng = _true_range(high[i], low[i], close[i - 1])
        if i < n:
            value += rng
            continue
        if i == n:
            value = (value + rng) / n
        else:
            value = fma(keep, value, share * rng)
        if not percent:
            out[i] = value
        elif -EPSILON < close[i] < EPSILON:
            out[i] = 0.0
        else:
            out[i] = value / close[i] * 100.0
    return out


@njit(cache=True)
def adx(high, low, close, n):
    """Wilder's ADX: DM and TR sums over ``n - 1`` bars, smoothed; first ADX the mean of ``n`` DX (bar 2n-1)."""
    size = close.shape[0]
    out = np.empty_like(close)
    out[:min(2 * n - 1, size)] = np.nan
    if 2 * n - 1 >= size:
        return out
    minus_dm, plus_dm, ranges, total_dx, value = 0.0, 0.0, 0.0, 0.0, 0.0
    for i in range(1, size):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        if i >= n:
            minus_dm -= minus_dm / n
            plus_dm -= plus_dm / n
        if down > 0 and up < down:
            minus_dm += down
        elif up > 0 and up > down:
            plus_dm += up
        rng = _true_range(high[i], low[i], close[i - 1])
        ranges = ranges + rng if i < n else ranges - ranges / n + rng
        if i < n or not ranges > 0.0:
            dx = -1.0
        else:
            minus_di = 100.0 * (minus_dm / ranges)
            plus_di = 100.0 * (plus_dm / ranges)
            both = minus_di + plus_di
            dx = 100.0 * (abs(minus_di - plus_di) / both) if not -EPSILON < both < EPSILON else -1.0
        if i < 2 * n:
            total_dx += max(dx, 0.0)
            if i == 2 * n - 1:
                value = total_dx / n
                out[i] = value
            continue
        if dx >= 0.0:
            value = (value * (n - 1) + dx) / n
        out[i] = value
    return out


@njit(cache=True)
def dmi(high, low, close, n):
    """Rows +DI and −DI: Wilder-smoothed directional movement over true range, in percent, from bar ``n``.

    The sums start over bars 1..n-1 as in TA-Lib; a window without range gives 0. At ``n`` = 1 the
    values are percentages too, where TA-Lib returns fractions.
    """
    size = close.shape[0]
    out = np.empty((2, size))
    out[:, :min(n, size)] = np.nan
    plus_dm, minus_dm, ranges = 0.0, 0.0, 0.0
    for i in range(1, size):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        plus = up if up > 0 and up > down else 0.0
        minus = down if down > 0 and up < down else 0.0
        rng = _true_range(high[i], low[i], close[i - 1])
        if n == 1:
            plus_dm, minus_dm, ranges = plus, minus, rng
        elif i < n:
            plus_dm += plus
            minus_dm += minus
            ranges += rng
            continue
        else:
            plus_dm = plus_dm - plus_dm / n + plus
            minus_dm = minus_dm - minus_dm / n + minus
            ranges = ranges - ranges / n + rng
        out[0, i] = 100.0 * (plus_dm / ranges) if ranges > 0.0 else 0.0
        out[1, i] = 100.0 * (minus_dm / ranges) if ranges > 0.0 else 0.0
    return out


@njit(cache=True)
def aroon(high, low, n):
    """Rows Aroon down and up: 100·(n − bars since the lowest low / highest high of the last n+1 bars).

    On ties the latest bar counts, as in TA-Lib.
    """
    size = high.shape[0]
    out = np.empty((2, size))
    out[:, :min(n, size)] = np.nan
    factor = 100.0 / n
    top, bottom, hi, lo = -1, -1, 0.0, 0.0
    for today in range(n, size):
        trailing = today - n
        if bottom < trailing:
            bottom, lo = trailing, low[trailing]
            for j in range(trailing + 1, today + 1):
                if low[j] <= lo:
                    bottom, lo = j, low[j]
        elif low[today] <= lo:
            bottom, lo = today, low[today]
        if top < trailing:
            top, hi = trailing, high[trailing]
            for j in range(trailing + 1, today + 1):
                if high[j] >= hi:
                    top, hi = j, high[j]
        elif high[today] >= hi:
            top, hi = today, high[today]
        out[0, today] = factor * (n - (today - bottom))
        out[1, today] = factor * (n - (today - top))
    return out


@njit(cache=True)
def mfi(high, low, close, volume, n):
    """Money Flow Index: flows in a ring, a flat typical price moves no money, an empty window gives 0."""
    size = close.shape[0]
    out = np.empty_like(close)
    out[:min(n, size)] = np.nan
    if n >= size:
        return out
    ring_pos, ring_neg = np.zeros(n), np.zeros(n)
    slot, still, pos, neg = 0, 0, 0.0, 0.0
    prev = (high[0] + low[0] + close[0]) / 3.0
    for i in range(1, size):
        if i > n:
            pos -= ring_pos[slot]
            neg -= ring_neg[slot]
        typical = (high[i] + low[i] + close[i]) / 3.0
        change = typical - prev
        flow = 0.0 if is_zero_scaled(change, abs(typical) + abs(prev)) else typical * volume[i]
        prev = typical
        ring_pos[slot] = 0.0 if change < 0.0 else flow
        ring_neg[slot] = flow if change < 0.0 else 0.0
        pos += ring_pos[slot]
        neg += ring_neg[slot]
        still = still + 1 if flow == 0.0 else 0
        if still >= n:
            still = n
            pos, neg = 0.0, 0.0
        slot = slot + 1 if slot + 1 < n else 0
        if i >= n:
            total = pos + neg
            out[i] = 100.0 * (min(max(pos, 0.0), total) / total) if total > 0.0 else 0.0
    return out


@njit(cache=True)
def obv(close, volume):
    """On-balance volume, starting from the first bar's volume."""
    out = np.empty_like(close)
    if close.shape[0] == 0:
        return out
    balance = volume[0]
    out[0] = balance
    for i in range(1, close.shape[0]):
        if close[i] > close[i - 1]:
            balance += volume[i]
        elif close[i] < close[i - 1]:
            balance -= volume[i]
        out[i] = balance
    return out


@njit(cache=True)
def roc(x, n):
    """Rate of change in percent, (x / x[-n] - 1) · 100; 0 where x[-n] is 0."""
    out = np.empty_like(x)
    out[:min(n, x.shape[0])] = np.nan
    for i in range(n, x.shape[0]):
        before = x[i - n]
        out[i] = (x[i] / before - 1.0) * 100.0 if before != 0.0 else 0.0
    return out


def mom(x, n):
    """Momentum, x - x[-n] (plain numpy: a vectorised subtraction)."""
    out = np.empty_like(x)
    out[:n] = np.nan
    np.subtract(x[n:], x[:-n], out=out[n:])
    return out


@njit(cache=True)
def vwap(price, volume, stamps, step):
    """Cumulative Σ price·volume / Σ volume, restarted when ``stamps // step`` changes (never if step is 0)."""
    out = np.empty_like(price)
    value, weight = 0.0, 0.0
    edge = np.iinfo(np.int64).min
    for i in range(price.shape[0]):
        if step > 0 and stamps[i] >= edge:
            value, weight = 0.0, 0.0
            edge = (stamps[i] // step + 1) * step
        value += price[i] * volume[i]
        weight += volume[i]
        out[i] = value / weight if weight > 0.0 else np.nan
    return out
