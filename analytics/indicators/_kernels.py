"""Numba kernels: moving averages, bands, rolling extrema and SAR, in TA-Lib's arithmetic.

Every kernel takes contiguous float64 arrays that hold no NaN (the caller cuts off leading NaNs) and
returns arrays of the same length, NaN over TA-Lib's warm-up. Sums run in TA-Lib's order so results agree
with it to rounding, and its zero tests are kept (``EPSILON`` is its ``TA_EPSILON``). Helpers named
``*_into`` write into an output array from a given bar, so that composite indicators chain without copies.
"""

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

EPSILON = 1e-14


@intrinsic
def fma(typingctx, a, b, c):
    """a·b + c rounded once, as TA-Lib's build computes its multiply-adds."""
    def codegen(context, builder, signature, args):
        return builder.fma(*args)
    return types.float64(types.float64, types.float64, types.float64), codegen


@njit(cache=True)
def scan_nan(x):
    """(first non-NaN position or len(x), position of the first NaN after it or -1)."""
    size = x.shape[0]
    count = 0
    for i in range(size):
        count += x[i] != x[i]
    if count == 0:
        return 0, -1
    first = size
    for i in range(size):
        if not np.isnan(x[i]):
            first = i
            break
    for i in range(first + 1, size):
        if np.isnan(x[i]):
            return first, i
    return first, -1


@njit(cache=True)
def is_zero_scaled(value, scale):
    """TA-Lib's scale-aware zero test: ``|value|`` within EPSILON of ``scale``."""
    return abs(value) <= EPSILON * scale


@njit(cache=True)
def sma_into(x, begin, n, out):
    """Simple moving average of ``x[begin:]``: a running sum, first value at ``begin + n - 1``."""
    size = x.shape[0]
    out[:min(begin + n - 1, size)] = np.nan
    if n == 1:
        out[begin:] = x[begin:]
        return
    total = 0.0
    for i in range(begin, min(begin + n - 1, size)):
        total += x[i]
    for i in range(begin + n - 1, size):
        total += x[i]
        out[i] = total / n
        total -= x[i - n + 1]


@njit(cache=True, inline="always")
def _ema_step(value, state, i, seed, n, k):
    """One bar of an EMA seeded at bar ``seed``: a running sum before it, the seed mean at it, then the EMA."""
    if i < seed:
        return state + value
    if i == seed:
        return (state + value) / n
    return fma(value - state, k, state)


@njit(cache=True)
def sma(x, n):
    out = np.empty_like(x)
    sma_into(x, 0, n, out)
    return out


@njit(cache=True)
def ema(x, n):
    """EMA with k = 2/(n+1), seeded at bar ``n - 1`` with the mean of the first ``n`` values."""
    out = np.empty_like(x)
    if n == 1:
        out[:] = x
        return out
    k = 2.0 / (n + 1)
    state = 0.0
    for i in range(x.shape[0]):
        state = _ema_step(x[i], state, i, n - 1, n, k)
        out[i] = state if i >= n - 1 else np.nan
    return out


@njit(cache=True)
def dema(x, n):
    """2·EMA − EMA(EMA) in one pass; the second EMA is seeded with the mean of the first's first ``n`` values."""
    size = x.shape[0]
    out = np.empty_like(x)
    if n == 1:
        out[:] = x
        return out
    k = 2.0 / (n + 1)
    first, second = 0.0, 0.0
    for i in range(size):
        first = _ema_step(x[i], first, i, n - 1, n, k)
        if i >= n - 1:
            second = _ema_step(first, second, i, 2 * (n - 1), n, k)
        out[i] = 2.0 * first - second if i >= 2 * (n - 1) else np.nan
    return out


@njit(cache=True)
def tema(x, n):
    """3·EMA − 3·EMA² + EMA³ in one pass, each EMA seeded on the first ``n`` values of the one before."""
    size = x.shape[0]
    out = np.empty_like(x)
    if n == 1:
        out[:] = x
        return out
    k = 2.0 / (n + 1)
    first, second, third = 0.0, 0.0, 0.0
    for i in range(size):
        first = _ema_step(x[i], first, i, n - 1, n, k)
        if i >= n - 1:
            second = _ema_step(first, second, i, 2 * (n - 1), n, k)
        if i >= 2 * (n - 1):
            third = _ema_step(second, third, i, 3 * (n - 1), n, k)
        out[i] = third + (3.0 * first - 3.0 * second) if i >= 3 * (n - 1) else np.nan
    return out


@njit(cache=True)
def wma(x, n):
    """Linearly weighted moving average, weights 1..n, kept as a running weighted sum."""
    size = x.shape[0]
    out = np.empty_like(x)
    out[:min(n - 1, size)] = np.nan
    if n == 1:
        out[:] = x
        return out
    divider = float(n * (n + 1) // 2)
    plain, weighted = 0.0, 0.0
    for i in range(min(n - 1, size)):
        plain += x[i]
        weighted += x[i] * (i + 1)
    trailing = 0.0
    for i in range(n - 1, size):
        plain += x[i]
        plain -= trailing
        weighted += x[i] * n
        trailing = x[i - n + 1]
        out[i] = weighted / divider
        weighted -= plain
    return out


@njit(cache=True)
def kama(x, n):
    """Kaufman's adaptive MA: the efficiency ratio over ``n`` bars picks a factor between EMA(2) and EMA(30).

    The first value (bar ``n``) starts from the close before it. A window of ``n`` unchanged closes resets
    the sliding volatility sum to exactly zero, and a zero or small sum gives the ratio 1, as in TA-Lib.
    """
    size = x.shape[0]
    out = np.empty_like(x)
    if n == 1:
        out[:] = x
        return out
    out[:min(n, size)] = np.nan
    if n >= size:
        return out
    slowest = 2.0 / 31.0
    spread = 2.0 / 3.0 - slowest
    volatility, flat = 0.0, 0
    for i in range(n):
        change = x[i] - x[i + 1]
        volatility += abs(change)
        flat = flat + 1 if change == 0.0 else 0
    prev = x[n - 1]
    for i in range(n, size):
        if i > n:
            change = x[i] - x[i - 1]
            volatility -= abs(x[i - n - 1] - x[i - n])
            volatility += abs(change)
            flat = flat + 1 if change == 0.0 else 0
            if flat >= n:
                flat = n
                volatility = 0.0
        direction = x[i] - x[i - n]
        ratio = 1.0 if volatility <= 0.0 or volatility <= direction else abs(direction / volatility)
        factor = fma(ratio, spread, slowest)
        factor *= factor
        prev = fma(x[i] - prev, factor, prev)
        out[i] = prev
    return out


@njit(cache=True)
def macd(x, fast, slow, signal):
    """Rows macd, signal, hist in one pass; both EMAs are seeded at bar ``slow - 1`` as TA-Lib aligns them."""
    if slow < fast:
        fast, slow = slow, fast
    size = x.shape[0]
    out = np.empty((3, size))
    warmup = slow + signal - 2
    out[:, :min(warmup, size)] = np.nan
    k_fast, k_slow, k_signal = 2.0 / (fast + 1), 2.0 / (slow + 1), 2.0 / (signal + 1)
    quick, steady, smooth = 0.0, 0.0, 0.0
    for i in range(size):
        if i >= slow - fast:
            quick = _ema_step(x[i], quick, i, slow - 1, fast, k_fast)
        steady = _ema_step(x[i], steady, i, slow - 1, slow, k_slow)
        if i < slow - 1:
            continue
        line = quick - steady
        smooth = line if signal == 1 else _ema_step(line, smooth, i, warmup, signal, k_signal)
        if i >= warmup:
            out[0, i] = line
            out[1, i] = smooth
            out[2, i] = line - smooth
    return out


@njit(cache=True)
def _centred_sums(x, stop, n):
    """Mean of the ``n`` values ending before ``stop``, and sums of deviations and squared deviations from it."""
    mean = 0.0
    for j in range(stop - n, stop):
        mean += x[j]
    mean /= n
    first, second = 0.0, 0.0
    for j in range(stop - n, stop):
        d = x[j] - mean
        first += d
        second += d * d
    return mean, first, second


@njit(cache=True)
def bbands(x, n, k):
    """Rows lower, middle, upper: SMA ± k·population standard deviation.

    The variance is taken from sums of deviations from a shift inside the window, recentred every 32·n
    bars or when cancellation shows, so it is as exact as a two-pass variance; below EPSILON it is zero.
    """
    size = x.shape[0]
    out = np.empty((3, size))
    out[:, :min(n - 1, size)] = np.nan
    if n > size:
        return out
    inv = 1.0 / n
    total = 0.0
    for i in range(n - 1):
        total += x[i]
    shift, first, second = _centred_sums(x, n - 1, n - 1)
    countdown = 32 * n
    for i in range(n - 1, size):
        total += x[i]
        d = x[i] - shift
        first += d
        second += d * d
        mean = first * inv
        variance = second * inv - mean * mean
        middle = total / n
        countdown -= 1
        if variance < 1e-6 * second * inv or countdown <= 0:
            shift, first, second = _centred_sums(x, i + 1, n)
            mean = first * inv
            variance = second * inv - mean * mean
            countdown = 32 * n
        trailing = x[i - n + 1]
        total -= trailing
        d = trailing - shift
        first -= d
        second -= d * d
        width = (np.sqrt(variance) if variance >= EPSILON else 0.0) * k
        out[0, i] = middle - width
        out[1, i] = middle
        out[2, i] = middle + width
    return out


@njit(cache=True)
def rolling_range_into(high, low, begin, n, highest, lowest):
    """Highest ``high`` and lowest ``low`` of the ``n`` bars ending at each bar from ``begin + n - 1``.

    Van Herk/Gil-Werman: per block of ``n`` bars, the extremes of each bar's suffix within its block,
    combined with the running extremes of the next block, so each bar costs a few comparisons.
    """
    size = high.shape[0]
    highest[:min(begin + n - 1, size)] = np.nan
    lowest[:min(begin + n - 1, size)] = np.nan
    top, bottom = np.empty(n), np.empty(n)
    for start in range(begin, size - n + 1, n):
        end = start + n - 1
        hi, lo = high[end], low[end]
        top[n - 1], bottom[n - 1] = hi, lo
        for j in range(n - 2, -1, -1):
            hi = max(hi, high[start + j])
            lo = min(lo, low[start + j])
            top[j], bottom[j] = hi, lo
        highest[end], lowest[end] = hi, lo
        hi, lo = -np.inf, np.inf
        for j in range(1, min(n, size - end)):
            hi = max(hi, high[end + j])
            lo = min(lo, low[end + j])
            highest[end + j] = max(top[j], hi)
            lowest[end + j] = min(bottom[j], lo)


@njit(cache=True)
def donchian(high, low, n):
    """Rows lower (rolling min of low), middle (their mean), upper (rolling max of high)."""
    out = np.empty((3, high.shape[0]))
    rolling_range_into(high, low, 0, n, out[2], out[0])
    out[1] = (out[0] + out[2]) / 2.0
    return out


@njit(cache=True)
def sar(high, low, acceleration, maximum):
    """Parabolic SAR from bar 1; it starts short when bar 1's -DM is positive, else long (TA-Lib's rule)."""
    size = high.shape[0]
    out = np.empty_like(high)
    out[:min(1, size)] = np.nan
    if size < 2:
        return out
    if acceleration > maximum:
        acceleration = maximum
    af = acceleration
    down, up = low[0] - low[1], high[1] - high[0]
    is_long = not (down > 0 and up < down)
    if is_long:
        ep, value = high[1], low[0]
    else:
        ep, value = low[1], high[0]
    new_low, new_high = low[1], high[1]
    for i in range(1, size):
        prev_low, prev_high = new_low, new_high
        new_low, new_high = low[i], high[i]
        if is_long:
            if new_low <= value:
                is_long = False
                value = max(ep, prev_high, new_high)
                out[i] = value
                af = acceleration
                ep = new_low
                value = max(fma(af, ep - value, value), prev_high, new_high)
            else:
                out[i] = value
                if new_high > ep:
                    ep = new_high
                    af = min(af + acceleration, maximum)
                value = min(fma(af, ep - value, value), prev_low, new_low)
        elif new_high >= value:
            is_long = True
            value = min(ep, prev_low, new_low)
            out[i] = value
            af = acceleration
            ep = new_high
            value = min(fma(af, ep - value, value), prev_low, new_low)
        else:
            out[i] = value
            if new_low < ep:
                ep = new_low
                af = min(af + acceleration, maximum)
            value = max(fma(af, ep - value, value), prev_high, new_high)
    return out
