"""Incremental technical indicators: one new bar in O(1), equal to TA-Lib's batch result.

Each class holds the state of one indicator over one series. ``update(*inputs, closed=True)``
consumes a bar and returns its value: a float (NaN during the warm-up) or a tuple in the
order of ``outputs``. With ``closed=False`` the bar is the *forming* one: the value it would
have if it closed now is returned and nothing is committed, so the pipeline can call it
many times a second on the forming candle and once more, with ``closed=True``, when the
bar closes.

The arithmetic follows TA-Lib 0.8's (its seeds and warm-ups, the order of its operations,
its zero tests), so on the same history the values are those of TA-Lib's batch functions
with the same NaN warm-up: to the last bit for most, within a few units in the last place
where TA-Lib uses fused multiply-adds (MACD, ATR, NATR, KAMA, SAR) or where this module
is steadier than a running sum (the Bollinger variance). The running sums of the price
averages (SMA, WMA, the Bollinger middle) are recomputed exactly every :data:`REFRESH`
bars, so long runs do not drift. Parameters, defaults and ranges are TA-Lib's (periods up
to 100,000); NATR(1) is normalised, as the batch ``natr`` (TA-Lib's is not).

:class:`IndicatorSet` updates several configured indicators of one market from OHLCV bars
and runs them over a history.
"""

import math
import numbers
import warnings
from collections import deque
from operator import itemgetter, mul

import numpy as np
import pandas as pd

NAN = math.nan
NAN2 = (NAN, NAN)
NAN3 = (NAN, NAN, NAN)
EPSILON = 1e-14  # TA-Lib's TA_EPSILON: |v| below it is zero (TA_IS_ZERO)
MAX_PERIOD = 100_000
REFRESH = 1024  # committed bars between exact recomputations of the running sums of price averages


def _period(owner: str, name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= MAX_PERIOD:
        raise ValueError(f"{owner} {name} must be an integer in [{low}, {MAX_PERIOD}], got {value!r}")
    return int(value)


def _factor(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < math.inf:
        raise ValueError(f"{owner} {name} must be a finite number >= 0, got {value!r}")
    return float(value)


class Indicator:
    """Base of the incremental indicators.

    Attributes
    ----------
    inputs : tuple of str
        The bar fields :meth:`update` takes, in order.
    outputs : tuple of str
        The values it returns (one: a float; several: a tuple in this order).
    lookback : int
        Index of the first bar with a value (TA-Lib's lookback).
    """

    __slots__ = ("lookback",)
    inputs = ("close",)
    outputs = ()
    _params = ()

    def reset(self) -> None:
        """Forget every bar: start over as if just created."""
        raise NotImplementedError

    @property
    def params(self) -> dict:
        """The constructor's parameters and their values."""
        return {name: getattr(self, name) for name in self._params}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"


class _Highest:
    """Highest of the last ``period`` values, O(1) amortised (a decreasing deque of candidates)."""

    __slots__ = ("period", "_t", "_ids", "_values")

    def __init__(self, period: int):
        self.period = period
        self._t = 0
        self._ids, self._values = deque(), deque()

    def step(self, x: float, closed: bool) -> float:
        ids, values = self._ids, self._values
        t = self._t
        if ids and ids[0] <= t - self.period:  # the oldest candidate leaves the window (only it can)
            if not closed:
                best = values[1] if len(values) > 1 else x
                return best if best > x else x
            ids.popleft()
            values.popleft()
        if not closed:
            if values:
                best = values[0]
                return best if best > x else x
            return x
        while values and values[-1] <= x:
            values.pop()
            ids.pop()
        ids.append(t)
        values.append(x)
        self._t = t + 1
        return values[0]


def _span(highest: float, lowest: float) -> float:
    """highest − lowest, or 0 when within 1e-14 of their scale (TA-Lib's dead zone for %K and %R)."""
    span = highest - lowest
    return span if abs(span) > EPSILON * (abs(highest) + abs(lowest)) else 0.0


def _fast_k(x: float, highest: float, lowest: float) -> float:
    span = _span(highest, lowest)
    return (x - lowest) / span * 100.0 if span else 0.0


# -- moving averages ---------------------------------------------------------------------------


def _exact_sum(ring: list, skip: int) -> float:
    """The correctly rounded sum of ``ring`` without slot ``skip``."""
    return math.fsum(ring[:skip] + ring[skip + 1:])


class SMA(Indicator):
    """Simple moving average: TA-Lib's running sum (add the new value, then drop the oldest).

    The sum is recomputed exactly every :data:`REFRESH` bars, so it does not drift
    on long runs whatever the level of the prices.
    """

    __slots__ = ("period", "_count", "_sum", "_ring", "_pos", "_age")
    _params = ("period",)
    outputs = ("sma",)
    refresh = REFRESH

    def __init__(self, period=30):
        self.period = _period("SMA", "period", period, 1)
        self.lookback = self.period - 1
        self.reset()

    def reset(self) -> None:
        self._count, self._sum, self._ring, self._pos, self._age = 0, 0.0, [0.0] * self.period, 0, 0

    def update(self, close, closed=True):
        total = self._sum + close
        if self._count < self.lookback:
            if closed:
                self._sum = total
                self._ring[self._pos] = close
                self._pos += 1
                self._count += 1
            return NAN
        if closed:
            ring, pos = self._ring, self._pos
            ring[pos] = close
            pos += 1
            if pos == self.period:
                pos = 0
            self._sum = total - ring[pos]
            self._pos = pos
            self._age += 1
            if self._age == self.refresh:
                self._sum, self._age = _exact_sum(ring, pos), 0
        return total / self.period


class _Smoothing(SMA):
    """TA-Lib's running mean exactly (never recomputed), to smooth oscillators bounded in [0, 100].

    Their windows are often all zero, where TA-Lib's sum leaves a rounding residue: it is
    kept, so the smoothed values equal TA-Lib's there too.
    """

    __slots__ = ()
    refresh = 0


class EMA(Indicator):
    """Exponential moving average, k = 2/(period+1), seeded with the SMA of the first ``period``."""

    __slots__ = ("period", "_k", "_count", "_value")
    _params = ("period",)
    outputs = ("ema",)

    def __init__(self, period=30):
        self.period = _period("EMA", "period", period, 1)
        self._k = 2.0 / (self.period + 1)
        self.lookback = self.period - 1
        self.reset()

    def reset(self) -> None:
        self._count, self._value = 0, 0.0  # the value is the seed's running sum until the seed

    def update(self, close, closed=True):
        count = self._count
        if count > self.lookback:
            prev = self._value
            value = (close - prev) * self._k + prev
            if closed:
                self._value = value
            return value
        total = self._value + close
        if closed:
            self._count = count + 1
        if count < self.lookback:
            if closed:
                self._value = total
            return NAN
        value = total / self.period
        if closed:
            self._value = value
        return value


class WMA(Indicator):
    """Linearly weighted moving average (weights 1..period, newest heaviest), TA-Lib's sums.

    The sums are recomputed exactly every :data:`REFRESH` bars.
    """

    __slots__ = ("period", "_divider", "_count", "_sub", "_sum", "_trailing", "_ring", "_pos", "_age")
    _params = ("period",)
    outputs = ("wma",)

    def __init__(self, period=30):
        self.period = _period("WMA", "period", period, 1)
        self._divider = self.period * (self.period + 1) // 2
        self.lookback = self.period - 1
        self.reset()

    def reset(self) -> None:
        self._count, self._sub, self._sum, self._trailing, self._age = 0, 0.0, 0.0, 0.0, 0
        self._ring, self._pos = [0.0] * self.period, 0

    def update(self, close, closed=True):
        if self.period == 1:
            return close
        count = self._count
        if count < self.lookback:
            if closed:
                self._sub += close
                self._sum += close * (count + 1)
                self._ring[count] = close
                self._pos = self._count = count + 1
            return NAN
        total = self._sum + close * self.period
        if closed:
            ring, pos = self._ring, self._pos
            ring[pos] = close
            pos += 1
            if pos == self.period:
                pos = 0
            sub = self._sub + close - self._trailing
            self._trailing = ring[pos]
            self._sum = total - sub
            self._sub, self._pos = sub, pos
            self._age += 1
            if self._age == REFRESH:
                window = ring[pos:] + ring[:pos]  # oldest first, weighted 0..period-1 for the next bar
                self._sub, self._sum = math.fsum(window), math.fsum(map(mul, window, range(self.period)))
                self._age = 0
        return total / self._divider


class DEMA(Indicator):
    """Double EMA: 2·EMA − EMA(EMA), the second EMA seeded on the first's values."""

    __slots__ = ("period", "_e1", "_e2")
    _params = ("period",)
    outputs = ("dema",)

    def __init__(self, period=30):
        self.period = _period("DEMA", "period", period, 1)
        self.lookback = 2 * (self.period - 1)
        self.reset()

    def reset(self) -> None:
        self._e1, self._e2 = EMA(self.period), EMA(self.period)

    def update(self, close, closed=True):
        e1 = self._e1.update(close, closed)
        if e1 != e1:
            return NAN
        return 2.0 * e1 - self._e2.update(e1, closed)


class TEMA(Indicator):
    """Triple EMA: EMA3 + 3·EMA1 − 3·EMA2, each EMA seeded on the previous one's values."""

    __slots__ = ("period", "_e1", "_e2", "_e3")
    _params = ("period",)
    outputs = ("tema",)

    def __init__(self, period=30):
        self.period = _period("TEMA", "period", period, 1)
        self.lookback = 3 * (self.period - 1)
        self.reset()

    def reset(self) -> None:
        self._e1, self._e2, self._e3 = EMA(self.period), EMA(self.period), EMA(self.period)

    def update(self, close, closed=True):
        e1 = self._e1.update(close, closed)
        if e1 != e1:
            return NAN
        e2 = self._e2.update(e1, closed)
        if e2 != e2:
            return NAN
        return self._e3.update(e2, closed) + (3.0 * e1 - 3.0 * e2)


class KAMA(Indicator):
    """Kaufman adaptive moving average (fast 2, slow 30), seeded with the previous close."""

    __slots__ = ("period", "_count", "_sum", "_value", "_last", "_ring", "_pos")
    _params = ("period",)
    outputs = ("kama",)
    _SLOW = 2.0 / (30.0 + 1.0)
    _SPAN = 2.0 / (2.0 + 1.0) - _SLOW

    def __init__(self, period=30):
        self.period = _period("KAMA", "period", period, 1)
        self.lookback = self.period if self.period > 1 else 0  # KAMA(1) is the close itself
        self.reset()

    def reset(self) -> None:
        self._count, self._sum, self._value, self._last = 0, 0.0, 0.0, 0.0
        self._ring, self._pos = [0.0] * (self.period + 1), 0  # the last period+1 closes

    def update(self, close, closed=True):
        count, period = self._count, self.period
        if period == 1:
            return close
        if count == 0:
            if closed:
                self._commit(close, self._sum)
            return NAN
        if count < period:
            if closed:
                self._commit(close, self._sum + abs(self._last - close))
            return NAN
        ring, pos = self._ring, self._pos
        oldest = ring[pos + 1 if pos < period else 0]  # close[t - period]
        if count == period:
            prev, total = self._last, self._sum + abs(self._last - close)
        else:  # ring[pos] is close[t - period - 1]
            prev, total = self._value, self._sum - abs(ring[pos] - oldest) + abs(close - self._last)
        change = close - oldest
        ratio = 1.0 if total <= 0.0 or abs(change) >= total else abs(change / total)
        factor = ratio * self._SPAN + self._SLOW
        factor *= factor
        value = (close - prev) * factor + prev
        if closed:
            self._value = value
            self._commit(close, total)
        return value

    def _commit(self, close: float, total: float) -> None:
        self._sum, self._last = total, close
        self._ring[self._pos] = close
        self._pos = self._pos + 1 if self._pos < self.period else 0
        self._count += 1


class Bollinger(Indicator):
    """Bollinger bands: SMA ± k population standard deviations.

    The middle band is TA-Lib's running-sum SMA. The variance slides the sum of squared
    deviations (no cancellation against the squared mean, unlike a sum of squares). Both
    sums are recomputed exactly from the window every ``period`` bars, so they stay
    accurate on any price scale and over any number of bars.
    """

    __slots__ = ("period", "k", "_count", "_sum", "_squares", "_middle", "_ring", "_pos", "_age")
    _params = ("period", "k")
    outputs = ("lower", "middle", "upper")

    def __init__(self, period=20, k=2.0):
        self.period = _period("Bollinger", "period", period, 2)
        self.k = _factor("Bollinger", "k", k)
        self.lookback = self.period - 1
        self.reset()

    def reset(self) -> None:
        self._count, self._sum, self._squares, self._middle, self._age = 0, 0.0, 0.0, 0.0, 0
        self._ring, self._pos = [0.0] * self.period, 0

    def update(self, close, closed=True):
        ring, pos, period = self._ring, self._pos, self.period
        total = self._sum + close
        if self._count < self.lookback:
            if closed:
                self._sum, ring[pos], self._pos = total, close, pos + 1
                self._count += 1
            return NAN3
        middle = total / period
        oldest = ring[pos]
        if self._count == self.lookback or (closed and self._age == period):
            ring[pos] = close  # the slot is this bar's: at the first bar with a value, or when it closes
            squares = sum(map(_square, map(middle.__rsub__, ring)))
            age = 0
        else:  # drop the oldest, add the new value: the update of the sum of squared deviations
            squares = self._squares + (close - oldest) * ((close - middle) + (oldest - self._middle))
            age = self._age + 1
        variance = squares / period
        deviation = math.sqrt(variance) * self.k if variance > 0.0 else 0.0
        if closed:
            ring[pos] = close
            pos += 1
            if pos == period:
                pos = 0
            self._sum = _exact_sum(ring, pos) if age == 0 else total - ring[pos]
            self._squares, self._middle, self._pos, self._age = squares, middle, pos, age
            self._count = self.lookback + 1
        return (middle - deviation, middle, middle + deviation)


def _square(x: float) -> float:
    return x * x


class Donchian(Indicator):
    """Donchian channel: lowest low, highest high of ``period`` bars and their midpoint."""

    __slots__ = ("period", "_count", "_high", "_low")
    _params = ("period",)
    inputs = ("high", "low")
    outputs = ("lower", "middle", "upper")

    def __init__(self, period=20):
        self.period = _period("Donchian", "period", period, 2)
        self.lookback = self.period - 1
        self.reset()

    def reset(self) -> None:
        self._count, self._high, self._low = 0, _Highest(self.period), _Highest(self.period)

    def update(self, high, low, closed=True):
        upper = self._high.step(high, closed)
        lower = -self._low.step(-low, closed)
        if self._count < self.lookback:
            if closed:
                self._count += 1
            return NAN3
        return (lower, (upper + lower) / 2.0, upper)


class SAR(Indicator):
    """Parabolic SAR; the first direction is short when the second bar's −DM is positive, as in TA-Lib."""

    __slots__ = ("acceleration", "maximum", "_step", "_count", "_long", "_sar", "_ep", "_af", "_high", "_low")
    _params = ("acceleration", "maximum")
    inputs = ("high", "low")
    outputs = ("sar",)

    def __init__(self, acceleration=0.02, maximum=0.2):
        self.acceleration = _factor("SAR", "acceleration", acceleration)
        self.maximum = _factor("SAR", "maximum", maximum)
        self._step = min(self.acceleration, self.maximum)  # TA-Lib lowers the step to the maximum
        self.lookback = 1
        self.reset()

    def reset(self) -> None:
        self._count, self._long, self._sar, self._ep, self._af = 0, True, 0.0, 0.0, self._step
        self._high = self._low = 0.0

    def update(self, high, low, closed=True):
        if self._count == 0:
            if closed:
                self._high, self._low, self._count = high, low, 1
            return NAN
        if self._count == 1:  # the first bar gives the start; the second is its own previous bar
            up, down = high - self._high, self._low - low
            is_long = not (down > 0 and up < down)
            sar, ep = (self._low, high) if is_long else (self._high, low)
            prev_high, prev_low, af = high, low, self._step
        else:
            is_long, sar, ep, af = self._long, self._sar, self._ep, self._af
            prev_high, prev_low = self._high, self._low
        step, maximum = self._step, self.maximum
        if is_long:
            if low <= sar:
                is_long, sar = False, max(ep, prev_high, high)
                out, af, ep = sar, step, low
                sar = max(sar + af * (ep - sar), prev_high, high)
            else:
                out = sar
                if high > ep:
                    ep, af = high, min(af + step, maximum)
                sar = min(sar + af * (ep - sar), prev_low, low)
        elif high >= sar:
            is_long, sar = True, min(ep, prev_low, low)
            out, af, ep = sar, step, high
            sar = min(sar + af * (ep - sar), prev_low, low)
        else:
            out = sar
            if low < ep:
                ep, af = low, min(af + step, maximum)
            sar = max(sar + af * (ep - sar), prev_high, high)
        if closed:
            self._long, self._sar, self._ep, self._af = is_long, sar, ep, af
            self._high, self._low, self._count = high, low, 2
        return out


class VWAP(Indicator):
    """Volume-weighted average price since the start of the current anchor period (UTC).

    Parameters
    ----------
    anchor : str or None
        A pandas frequency: ``"D"`` (UTC days, the default), fixed lengths (``"4h"``,
        ``"30min"``: periods aligned to the Unix epoch, as ``Timestamp.floor``) or calendar
        ones, as pandas' periods (``"W"``: weeks from Monday, ``"W-WED"``, ``"ME"``: months);
        None never resets.

    ``update(time, price, volume)`` takes the time in integer nanoseconds since the epoch
    (UTC). The value is NaN while the period has no volume.
    """

    __slots__ = ("anchor", "_offset", "_start", "_end", "_pv", "_volume", "_seen")
    _params = ("anchor",)
    inputs = ("time", "price", "volume")
    outputs = ("vwap",)

    def __init__(self, anchor="D"):
        self.anchor = anchor
        self._offset = _anchor_offset(anchor)
        self.lookback = 0
        self.reset()

    def reset(self) -> None:
        self._start, self._end, self._pv, self._volume = 0, 0, 0.0, 0.0  # an empty period: the first bar starts one
        self._seen = (0, 0)

    def update(self, time, price, volume, closed=True):
        if self._start <= time < self._end:
            pv, total, start, end = self._pv + price * volume, self._volume + volume, self._start, self._end
        else:
            start, end = self._seen if self._seen[0] <= time < self._seen[1] else self._bounds(time)
            pv, total = price * volume, volume
        if closed:
            self._start, self._end, self._pv, self._volume = start, end, pv, total
        return pv / total if total else NAN

    def _bounds(self, time: int) -> tuple[int, int]:
        """[start, end) in ns of the anchor period holding ``time`` (remembered: forming bars ask again)."""
        offset = self._offset
        if offset is None:
            bounds = (-(2**63), 2**63)
        elif isinstance(offset, int):
            start = time // offset * offset
            bounds = (start, start + offset)
        else:
            period = pd.Timestamp(time).to_period(offset)
            bounds = (period.start_time.value, (period + 1).start_time.value)
        self._seen = bounds
        return bounds


def _anchor_offset(anchor):
    """None, a length in ns (fixed frequencies) or a pandas offset (calendar ones)."""
    if anchor is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pandas' renamed aliases
            offset = pd.tseries.frequencies.to_offset(anchor)
        if isinstance(offset, pd.offsets.Tick):
            if offset.nanos <= 0:
                raise ValueError
            return int(offset.nanos)
        pd.Timestamp(0).to_period(offset)
        return offset
    except (TypeError, ValueError, AttributeError):
        raise ValueError(f"VWAP anchor must be None or a pandas frequency such as 'D', '4h' or 'W', "
                         f"got {anchor!r}") from None


# -- momentum and oscillators ------------------------------------------------------------------


class RSI(Indicator):
    """Relative strength index, Wilder's smoothing seeded with the mean of the first ``period`` changes."""

    __slots__ = ("period", "_count", "_prev", "_gain", "_loss", "_keep", "_inverse")
    _params = ("period",)
    outputs = ("rsi",)

    def __init__(self, period=14):
        self.period = _period("RSI", "period", period, 2)
        self._keep, self._inverse = float(self.period - 1), 1.0 / self.period  # TA-Lib multiplies by 1/period
        self.lookback = self.period
        self.reset()

    def reset(self) -> None:
        self._count, self._prev, self._gain, self._loss = 0, 0.0, 0.0, 0.0

    def update(self, close, closed=True):
        count, period = self._count, self.period
        if count == 0:
            if closed:
                self._prev, self._count = close, 1
            return NAN
        change = close - self._prev
        gain, loss = self._gain, self._loss
        if count > period:
            gain *= self._keep
            loss *= self._keep
        if change < 0.0:
            loss -= change
        else:
            gain += change
        if count < period:
            if closed:
                self._prev, self._gain, self._loss, self._count = close, gain, loss, count + 1
            return NAN
        gain *= self._inverse
        loss *= self._inverse
        if closed:
            self._prev, self._gain, self._loss, self._count = close, gain, loss, period + 1
        total = gain + loss
        return 100.0 * (gain / total) if total > 0.0 else 0.0


class StochRSI(Indicator):
    """Stochastic RSI: TA-Lib's STOCHF (fast %K, SMA %D) of the RSI. Outputs ``k`` and ``d``."""

    __slots__ = ("period", "fastk_period", "fastd_period", "_rsi", "_count", "_high", "_low", "_d")
    _params = ("period", "fastk_period", "fastd_period")
    outputs = ("k", "d")

    def __init__(self, period=14, fastk_period=5, fastd_period=3):
        self.period = _period("StochRSI", "period", period, 2)
        self.fastk_period = _period("StochRSI", "fastk_period", fastk_period, 1)
        self.fastd_period = _period("StochRSI", "fastd_period", fastd_period, 1)
        self.lookback = self.period + self.fastk_period - 1 + self.fastd_period - 1
        self.reset()

    def reset(self) -> None:
        self._rsi, self._count, self._d = RSI(self.period), 0, _Smoothing(self.fastd_period)
        self._high, self._low = _Highest(self.fastk_period), _Highest(self.fastk_period)

    def update(self, close, closed=True):
        rsi = self._rsi.update(close, closed)
        if rsi != rsi:
            return NAN2
        highest = self._high.step(rsi, closed)
        lowest = -self._low.step(-rsi, closed)
        if self._count < self.fastk_period - 1:
            if closed:
                self._count += 1
            return NAN2
        k = _fast_k(rsi, highest, lowest)
        d = self._d.update(k, closed)
        return NAN2 if d != d else (k, d)


class MACD(Indicator):
    """MACD line, signal and histogram, TA-Lib's way.

    Both price EMAs are seeded on the window of the slow one's seed (the fast seed is the
    mean of its last ``fast`` closes), the signal EMA with the mean of the first
    ``signal`` MACD values; everything is NaN before bar ``slow + signal - 2``. As in
    TA-Lib, ``fast`` and ``slow`` are swapped when ``fast > slow``.
    """

    __slots__ = ("fast", "slow", "signal", "_short", "_long", "_kf", "_ks", "_kg", "_count", "_sf", "_ss", "_sig")
    _params = ("fast", "slow", "signal")
    outputs = ("macd", "signal", "hist")

    def __init__(self, fast=12, slow=26, signal=9):
        self.fast = _period("MACD", "fast", fast, 2)
        self.slow = _period("MACD", "slow", slow, 2)
        self.signal = _period("MACD", "signal", signal, 1)
        self._short, self._long = sorted((self.fast, self.slow))
        self._kf, self._ks = 2.0 / (self._short + 1), 2.0 / (self._long + 1)
        self._kg = 2.0 / (self.signal + 1)
        self.lookback = self._long - 1 + self.signal - 1
        self.reset()

    def reset(self) -> None:
        self._count, self._sf, self._ss, self._sig = 0, 0.0, 0.0, 0.0  # fast/slow: seed sums, then EMAs

    def update(self, close, closed=True):
        count, seeded = self._count, self._long - 1
        if count > seeded:
            fast = (close - self._sf) * self._kf + self._sf
            slow = (close - self._ss) * self._ks + self._ss
            line = fast - slow
            if count > self.lookback:
                signal = (line - self._sig) * self._kg + self._sig
            else:
                signal = self._sig + line
                if count == self.lookback:
                    signal /= self.signal
        else:
            fast = self._sf + close if count >= self._long - self._short else 0.0
            slow = self._ss + close
            if count < seeded:
                if closed:
                    self._sf, self._ss, self._count = fast, slow, count + 1
                return NAN3
            fast /= self._short
            slow /= self._long
            line = fast - slow
            signal = 0.0 + line
            if count == self.lookback:
                signal /= self.signal
        if closed:
            self._sf, self._ss, self._sig = fast, slow, signal
            if count <= self.lookback:
                self._count = count + 1
        if count < self.lookback:
            return NAN3
        return (line, signal, line - signal)


class Stoch(Indicator):
    """Slow stochastic: %K = SMA(fast %K, slowk_period), %D = SMA(%K, slowd_period). Outputs ``k``, ``d``."""

    __slots__ = ("fastk_period", "slowk_period", "slowd_period", "_count", "_high", "_low", "_k", "_d")
    _params = ("fastk_period", "slowk_period", "slowd_period")
    inputs = ("high", "low", "close")
    outputs = ("k", "d")

    def __init__(self, fastk_period=5, slowk_period=3, slowd_period=3):
        self.fastk_period = _period("Stoch", "fastk_period", fastk_period, 1)
        self.slowk_period = _period("Stoch", "slowk_period", slowk_period, 1)
        self.slowd_period = _period("Stoch", "slowd_period", slowd_period, 1)
        self.lookback = self.fastk_period + self.slowk_period + self.slowd_period - 3
        self.reset()

    def reset(self) -> None:
        self._count, self._k, self._d = 0, _Smoothing(self.slowk_period), _Smoothing(self.slowd_period)
        self._high, self._low = _Highest(self.fastk_period), _Highest(self.fastk_period)

    def update(self, high, low, close, closed=True):
        highest = self._high.step(high, closed)
        lowest = -self._low.step(-low, closed)
        if self._count < self.fastk_period - 1:
            if closed:
                self._count += 1
            return NAN2
        k = self._k.update(_fast_k(close, highest, lowest), closed)
        if k != k:
            return NAN2
        d = self._d.update(k, closed)
        return NAN2 if d != d else (k, d)


class WillR(Indicator):
    """Williams %R, from −100 (close at the lowest low) to 0 (at the highest high), clamped to that range."""

    __slots__ = ("period", "_count", "_high", "_low")
    _params = ("period",)
    inputs = ("high", "low", "close")
    outputs = ("willr",)

    def __init__(self, period=14):
        self.period = _period("WillR", "period", period, 2)
        self.lookback = self.period - 1
        self.reset()

    def reset(self) -> None:
        self._count, self._high, self._low = 0, _Highest(self.period), _Highest(self.period)

    def update(self, high, low, close, closed=True):
        highest = self._high.step(high, closed)
        lowest = -self._low.step(-low, closed)
        if self._count < self.lookback:
            if closed:
                self._count += 1
            return NAN
        span = _span(highest, lowest)
        if not span:
            return 0.0
        value = (highest - close) / span * -100.0
        return 0.0 if value > 0.0 else max(-100.0, value)  # clamped, as TA-Lib does


class CCI(Indicator):
    """Commodity channel index of the typical price; the mean deviation is O(period), as in TA-Lib."""

    __slots__ = ("period", "_count", "_ring", "_pos")
    _params = ("period",)
    inputs = ("high", "low", "close")
    outputs = ("cci",)

    def __init__(self, period=14):
        self.period = _period("CCI", "period", period, 2)
        self.lookback = self.period - 1
        self.reset()

    def reset(self) -> None:
        self._count, self._ring, self._pos = 0, [0.0] * self.period, 0

    def update(self, high, low, close, closed=True):
        typical = (high + low + close) / 3
        ring, pos = self._ring, self._pos
        ring[pos] = typical  # over the bar leaving the window: a forming value stays until the closing one
        if closed:
            self._pos = pos + 1 if pos + 1 < self.period else 0
        if self._count < self.lookback:
            if closed:
                self._count += 1
            return NAN
        average = sum(ring) / self.period  # TA-Lib sums its circular buffer in slot order: so do we
        deviation = sum(map(abs, map(average.__rsub__, ring)))
        diff, deviation = typical - average, deviation / self.period
        limit = EPSILON * abs(average)  # TA-Lib's dead zone, relative to the average
        if abs(diff) <= limit or abs(deviation) <= limit:
            return 0.0
        deviation *= 0.015
        return diff / deviation if deviation != 0.0 else 0.0


class MFI(Indicator):
    """Money flow index over ``period`` bars (TA-Lib's running sums, dead zone and empty-window rule)."""

    __slots__ = ("period", "_count", "_prev", "_pos_sum", "_neg_sum", "_pos_ring", "_neg_ring", "_slot", "_idle")
    _params = ("period",)
    inputs = ("high", "low", "close", "volume")
    outputs = ("mfi",)

    def __init__(self, period=14):
        self.period = _period("MFI", "period", period, 2)
        self.lookback = self.period
        self.reset()

    def reset(self) -> None:
        self._count, self._prev, self._pos_sum, self._neg_sum = 0, 0.0, 0.0, 0.0
        self._pos_ring, self._neg_ring = [0.0] * self.period, [0.0] * self.period
        self._slot, self._idle = 0, 0

    def update(self, high, low, close, volume, closed=True):
        typical = (high + low + close) / 3.0
        count = self._count
        if count == 0:
            if closed:
                self._prev, self._count = typical, 1
            return NAN
        pos_sum, neg_sum, slot = self._pos_sum, self._neg_sum, self._slot
        if count > self.period:
            pos_sum -= self._pos_ring[slot]
            neg_sum -= self._neg_ring[slot]
        prev = self._prev
        change = typical - prev
        flow = 0.0 if abs(change) <= EPSILON * (abs(typical) + abs(prev)) else typical * volume
        if change < 0.0:
            pos_flow, neg_flow = 0.0, flow
        else:
            pos_flow, neg_flow = flow, 0.0
        pos_sum += pos_flow
        neg_sum += neg_flow
        idle = self._idle + 1 if flow == 0.0 else 0
        if idle >= self.period:  # a whole window without money flow: the sums are exactly zero
            idle, pos_sum, neg_sum = self.period, 0.0, 0.0
        if closed:
            self._pos_ring[slot], self._neg_ring[slot] = pos_flow, neg_flow
            self._slot = slot + 1 if slot + 1 < self.period else 0
            self._pos_sum, self._neg_sum, self._idle, self._prev = pos_sum, neg_sum, idle, typical
            if count <= self.period:
                self._count = count + 1
        if count < self.period:
            return NAN
        total = pos_sum + neg_sum
        if total <= 0.0:
            return 0.0
        return 100.0 * ((0.0 if pos_sum < 0.0 else total if pos_sum > total else pos_sum) / total)


class _Lagged(Indicator):
    """The close against the close ``period`` bars before (a ring of the last closes)."""

    __slots__ = ("period", "_count", "_ring", "_pos")
    _params = ("period",)

    def __init__(self, period=10):
        self.period = _period(type(self).__name__, "period", period, 1)
        self.lookback = self.period
        self.reset()

    def reset(self) -> None:
        self._count, self._ring, self._pos = 0, [0.0] * self.period, 0

    def update(self, close, closed=True):
        ring, pos = self._ring, self._pos
        before = ring[pos]
        if closed:
            ring[pos] = close
            self._pos = pos + 1 if pos + 1 < self.period else 0
        if self._count < self.period:
            if closed:
                self._count += 1
            return NAN
        return self._value(close, before)


class ROC(_Lagged):
    """Rate of change in percent: (close / close[t - period] − 1) · 100 (0 when that close is 0)."""

    __slots__ = ()
    outputs = ("roc",)

    @staticmethod
    def _value(close, before):
        return (close / before - 1.0) * 100.0 if before != 0.0 else 0.0


class MOM(_Lagged):
    """Momentum: close − close[t - period]."""

    __slots__ = ()
    outputs = ("mom",)

    @staticmethod
    def _value(close, before):
        return close - before


class OBV(Indicator):
    """On-balance volume, starting at the first bar's volume."""

    __slots__ = ("_count", "_prev", "_value")
    _params = ()
    inputs = ("close", "volume")
    outputs = ("obv",)

    def __init__(self):
        self.lookback = 0
        self.reset()

    def reset(self) -> None:
        self._count, self._prev, self._value = 0, 0.0, 0.0

    def update(self, close, volume, closed=True):
        if self._count == 0:
            value = volume
        elif close > self._prev:
            value = self._value + volume
        elif close < self._prev:
            value = self._value - volume
        else:
            value = self._value
        if closed:
            self._count, self._prev, self._value = 1, close, value
        return value


# -- volatility and trend ----------------------------------------------------------------------


def _true_range(high: float, low: float, prev_close: float) -> float:
    greatest = high - low
    up = abs(prev_close - high)
    if up > greatest:
        greatest = up
    down = abs(prev_close - low)
    return down if down > greatest else greatest


class ATR(Indicator):
    """Average true range, Wilder's smoothing seeded with the mean of the first ``period`` true ranges."""

    __slots__ = ("period", "_keep", "_count", "_close", "_value")
    _params = ("period",)
    inputs = ("high", "low", "close")
    outputs = ("atr",)

    def __init__(self, period=14):
        self.period = _period(type(self).__name__, "period", period, 1)
        self._keep = float(self.period - 1)
        self.lookback = self.period
        self.reset()

    def reset(self) -> None:
        self._count, self._close, self._value = 0, 0.0, 0.0  # the value is the seed's sum until the seed

    def update(self, high, low, close, closed=True):
        count, period = self._count, self.period
        if count == 0:
            if closed:
                self._close, self._count = close, 1
            return NAN
        true_range = _true_range(high, low, self._close)
        if count > period:
            value = (self._value * self._keep + true_range) / period
        else:
            value = self._value + true_range
            if count == period:
                value /= period
        if closed:
            self._close, self._value = close, value
            if count <= period:
                self._count = count + 1
        return value if count >= period else NAN


class NATR(ATR):
    """Normalized ATR: 100 · ATR / close (0 when the close is 0).

    With ``period=1`` this is 100 · TR / close, like the batch ``natr``; TA-Lib's NATR then
    returns the true range unnormalised.
    """

    __slots__ = ()
    outputs = ("natr",)

    def update(self, high, low, close, closed=True):
        atr = ATR.update(self, high, low, close, closed)
        if atr != atr:
            return NAN
        return atr / close * 100.0 if close != 0.0 else 0.0


class ADX(Indicator):
    """Average directional index, Wilder's smoothing of +DM, −DM, TR and DX (TA-Lib's seeds)."""

    __slots__ = ("period", "_count", "_high", "_low", "_close", "_plus", "_minus", "_range", "_dx", "_value")
    _params = ("period",)
    inputs = ("high", "low", "close")
    outputs = ("adx",)

    def __init__(self, period=14):
        self.period = _period("ADX", "period", period, 2)
        self.lookback = 2 * self.period - 1
        self.reset()

    def reset(self) -> None:
        self._count, self._high, self._low, self._close = 0, 0.0, 0.0, 0.0
        self._plus = self._minus = self._range = self._dx = self._value = 0.0

    def update(self, high, low, close, closed=True):
        count, period = self._count, self.period
        if count == 0:
            if closed:
                self._high, self._low, self._close, self._count = high, low, close, 1
            return NAN
        up, down = high - self._high, self._low - low
        plus, minus, true_range = self._plus, self._minus, self._range
        smooth = count >= period  # the first period-1 moves are summed, later ones smoothed
        if smooth:
            minus -= minus / period
            plus -= plus / period
        if down > 0 and up < down:
            minus += down
        elif up > 0 and up > down:
            plus += up
        tr = _true_range(high, low, self._close)
        true_range = true_range - true_range / period + tr if smooth else true_range + tr
        dx = None
        if smooth and not -EPSILON < true_range < EPSILON:
            minus_di = 100.0 * (minus / true_range)
            plus_di = 100.0 * (plus / true_range)
            total = minus_di + plus_di
            if not -EPSILON < total < EPSILON:
                dx = 100.0 * (abs(minus_di - plus_di) / total)
        sum_dx, value = self._dx, self._value
        if count < self.lookback:
            if dx is not None:
                sum_dx += dx
        elif count == self.lookback:
            value = (sum_dx + dx if dx is not None else sum_dx) / period
        elif dx is not None:
            value = (value * (period - 1) + dx) / period
        if closed:
            self._high, self._low, self._close = high, low, close
            self._plus, self._minus, self._range, self._dx, self._value = plus, minus, true_range, sum_dx, value
            if count <= self.lookback:
                self._count = count + 1
        return value if count >= self.lookback else NAN


INDICATORS = {cls.__name__.lower(): cls for cls in (
    SMA, EMA, WMA, DEMA, TEMA, RSI, MACD, Bollinger, ATR, NATR, Stoch, StochRSI, CCI, ADX, MFI, OBV, ROC, MOM,
    WillR, KAMA, SAR, VWAP, Donchian)}


def create(name: str, **params) -> Indicator:
    """The indicator class ``name`` (lower case, e.g. ``"ema"``) with ``params``."""
    cls = INDICATORS.get(name)
    if cls is None:
        raise ValueError(f"unknown indicator {name!r}: choose from {', '.join(INDICATORS)}")
    return cls(**params)


# -- a set of indicators of one market -----------------------------------------------------------

_FIELDS = ("time", "open", "high", "low", "close", "volume", "price")


class IndicatorSet:
    """Several configured indicators of one market, updated together from OHLCV bars.

    Parameters
    ----------
    specs : mapping
        ``{key: (name, params)}``, e.g. ``{"ema20": ("ema", {"period": 20}), "macd": ("macd", {})}``;
        names are the lower-case class names (see :data:`INDICATORS`).

    Notes
    -----
    VWAP's price is the bar's typical price (high + low + close) / 3, its time the bar's
    start. :meth:`update` returns ``{key: value}`` (a float, or a tuple for indicators
    with several outputs); :meth:`columns` names them flat (``"macd.signal"``).
    """

    def __init__(self, specs):
        self.specs = {}
        for key, spec in dict(specs).items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"indicator keys must be non-empty strings, got {key!r}")
            try:
                name, params = spec
            except (TypeError, ValueError):
                raise ValueError(f"indicator {key!r}: expected (name, params), got {spec!r}") from None
            self.specs[key] = (name, dict(params or {}))
        self.indicators = {key: create(name, **params) for key, (name, params) in self.specs.items()}
        groups = {}
        for key, indicator in self.indicators.items():
            groups.setdefault(indicator.inputs, []).append((key, indicator.update))
        self._groups = [(itemgetter(*(_FIELDS.index(f) for f in inputs), len(_FIELDS)), members)
                        for inputs, members in groups.items()]
        self._needs_price = any("price" in inputs for inputs in groups)

    @classmethod
    def from_list(cls, entries) -> "IndicatorSet":
        """A set from registry-style entries: ``[{"name": "ema", "params": {"period": 20}}, "rsi", ...]``.

        An entry is a name or a mapping with ``name``, optional ``params`` and optional
        ``key`` (default :func:`default_key`).
        """
        specs = {}
        for entry in entries:
            entry = {"name": entry} if isinstance(entry, str) else dict(entry)
            name, params = entry.get("name"), dict(entry.get("params") or {})
            key = entry.get("key") or default_key(name, params)
            if key in specs:
                raise ValueError(f"indicator key {key!r} appears twice")
            specs[key] = (name, params)
        return cls(specs)

    def columns(self) -> list[str]:
        """Flat output names: the key for one output, ``key.output`` for several."""
        return [key if len(ind.outputs) == 1 else f"{key}.{out}"
                for key, ind in self.indicators.items() for out in ind.outputs]

    def reset(self) -> None:
        """Forget every bar."""
        for indicator in self.indicators.values():
            indicator.reset()

    def update(self, time, open, high, low, close, volume, closed=True) -> dict:
        """Update every indicator with one bar (``closed=False``: the forming bar, nothing committed).

        ``time`` is the bar's start: integer ns since the epoch (UTC) or a timestamp.
        """
        high, low, close = float(high), float(low), float(close)
        if type(time) is not int:
            time = _nanoseconds(time)
        price = (high + low + close) / 3 if self._needs_price else NAN
        values = (time, float(open), high, low, close, float(volume), price, closed)
        out = {}
        for arguments, members in self._groups:
            args = arguments(values)
            for key, update in members:
                out[key] = update(*args)
        return out

    def run(self, bars: pd.DataFrame) -> pd.DataFrame:
        """Feed ``bars`` (closed) in order and return the outputs, indexed like ``bars``.

        ``bars`` has columns open, high, low, close, volume and a DatetimeIndex or a
        ``start`` column. The set continues from its current state and is left ready for
        the next bar (call :meth:`reset` first to start over).
        """
        missing = [c for c in ("open", "high", "low", "close", "volume") if c not in bars]
        if missing:
            raise ValueError(f"bars lack columns {missing}")
        starts = bars["start"] if "start" in bars else bars.index
        if not pd.api.types.is_datetime64_any_dtype(starts):
            raise ValueError("bars need a DatetimeIndex or a 'start' column of datetimes")
        times = _utc_ns(pd.DatetimeIndex(starts)).tolist()
        fields = [bars[c].to_numpy(float).tolist() for c in ("open", "high", "low", "close", "volume")]
        rows = [self.update(t, o, h, low, c, v) for t, o, h, low, c, v in zip(times, *fields)]
        data = {}
        for key, indicator in self.indicators.items():
            values = np.array([row[key] for row in rows], dtype=float).reshape(len(rows), len(indicator.outputs))
            for j, output in enumerate(indicator.outputs):
                data[key if len(indicator.outputs) == 1 else f"{key}.{output}"] = values[:, j]
        return pd.DataFrame(data, index=bars.index, columns=self.columns())


def default_key(name: str, params: dict) -> str:
    """The name followed by the parameter values: ``"ema20"``, ``"macd"``, ``"bollinger20_2.5"``."""
    return f"{name}{'_'.join(f'{v:g}' if isinstance(v, float) else str(v) for v in params.values())}"


def _utc_ns(index: pd.DatetimeIndex) -> np.ndarray:
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.as_unit("ns").asi8


def _nanoseconds(time) -> int:
    stamp = pd.Timestamp(time)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(stamp.as_unit("ns").value)
