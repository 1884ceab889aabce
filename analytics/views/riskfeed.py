"""The Risk page's numbers: one computation per closed bar, shared by every session that asks the same.

A :class:`RiskSpec` names what is computed (exchange, timeframe, coins, windows, the coin
and the pair in focus). :func:`compute` is the pure part: closed bars in, a
:class:`RiskResult` out, every figure from :mod:`analytics.risk`. :class:`RiskFeed` is the
shared part: the sessions of a process with one spec hold one feed; it watches the hub
for closed bars (a cursor read, microseconds) and recomputes on a background thread
once bars have closed, so a session's timer only compares a version number.

Only closed bars are used: stored history (:func:`~analytics.views.history.read_history`,
one read per key for the process) merged with the hub's closed bars. The forming bar is
left out, so the numbers change when a bar closes, not with every trade. The sample is
time based: the bars of the last ``lookback`` bar periods up to the newest closed bar of
the coins (a coin with missing bars has fewer); statistics across coins use the times
every coin has a bar.
"""

import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from analytics import risk
from analytics.schema import TIMEFRAMES
from analytics.storage.errors import one_line
from analytics.views.history import empty_bars, hub_bars, merge_bars, read_history
from analytics.views.sharing import Shared

LOG = logging.getLogger(__name__)

LAMBDA = 0.94  # RiskMetrics EWMA decay
CONE_WINDOWS = (15, 30, 60, 120, 240)  # bars
CORR_MIN = 30  # returns for a correlation matrix
GARCH_MIN = 200  # returns for a GARCH fit
PAIR_MIN = 100  # common bars for cointegration and lead-lag
MAX_LAG = 10  # bars of lead-lag tested
HORIZON = 60  # bars of GARCH forecast
MIN_INTERVAL = 0.25  # seconds between hub reads of a feed (~2 ms for 10 keys), whatever the sessions
SETTLE = 0.25  # seconds without a new closed bar before recomputing (the coins close a bar together)...
MAX_SETTLE = 1.0  # ... but no longer than this after the first one
BACKFILL = "python -m analytics backfill --days 7"
SECTIONS = ("vol", "cone", "garch", "corr", "xcorr", "pair", "words")

_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tickscope-risk")  # threads start on first use
_FITS = OrderedDict()  # GARCH fits by data fingerprint, shared by every feed of the process
_FITS_LOCK = threading.Lock()
_FITS_KEPT = 64


class RiskSpec(NamedTuple):
    """What one Risk computation covers.

    ``symbols`` on ``exchange`` at ``timeframe``; ``window`` bars in the rolling
    statistics; ``lookback`` bar periods of history; ``coin`` for the cone, GARCH and the
    heatmap across ``exchanges`` (those carrying it); ``pair`` (two symbols, or empty).
    """

    exchange: str
    timeframe: str
    symbols: tuple
    window: int
    lookback: int
    coin: str
    pair: tuple
    exchanges: tuple


@dataclass(frozen=True)
class RiskResult:
    """Every number of the Risk page for one :class:`RiskSpec` and one closed bar.

    Volatilities are annualised for a 24/7 market, in percent. A section without enough
    data has no value (None or NaN) and a line in ``notes`` saying what is missing.

    Attributes
    ----------
    through : Timestamp or None
        Start of the newest closed bar used.
    counts : dict
        Closed bars in the sample, by symbol.
    vol : DataFrame
        Symbols × estimators of :data:`analytics.risk.ESTIMATORS` and ``ewma``: the
        latest value of each, over ``window`` bars (EWMA: λ = :data:`LAMBDA`).
    series : DataFrame
        The coin's volatility over time: one column per estimator, ``ewma``, ``garch``.
    cone : DataFrame or None
        :func:`analytics.risk.vol_cone` of the coin over :data:`CONE_WINDOWS`.
    garch : GarchResult or None
        The coin's GARCH(1,1) on its log returns.
    forecast : Series or None
        The GARCH volatility forecast, 1 .. :data:`HORIZON` bars after ``through``.
    corr, xcorr : CorrMatrix or None
        Log-return correlations across coins, and across exchanges for the coin.
    pair : DataFrame or None
        The pair's ``corr`` (rolling), ``ewma_corr``, ``alpha`` and ``beta`` (RollingOLS of
        the first coin's returns on the second's).
    coint, leadlag : CointResult, LeadLagResult or None
    notes : dict
        By section of :data:`SECTIONS`: one line when it lacks data (else absent).
    elapsed : float
        Seconds the computation took.
    """

    spec: RiskSpec
    through: pd.Timestamp | None = None
    counts: dict = field(default_factory=dict)
    vol: pd.DataFrame | None = None
    series: pd.DataFrame | None = None
    cone: pd.DataFrame | None = None
    garch: risk.GarchResult | None = None
    forecast: pd.Series | None = None
    corr: risk.CorrMatrix | None = None
    xcorr: risk.CorrMatrix | None = None
    pair: pd.DataFrame | None = None
    coint: risk.CointResult | None = None
    leadlag: risk.LeadLagResult | None = None
    notes: dict = field(default_factory=dict)
    elapsed: float = 0.0


# -- data ----------------------------------------------------------------------------
def closed_bars(stored: pd.DataFrame, hub_rows: pd.DataFrame) -> pd.DataFrame:
    """Stored bars merged with hub bar rows (:meth:`~analytics.pipeline.Hub.latest`), the forming bar left out.

    The hub's bars win where both have a start.
    """
    bars = merge_bars(stored, hub_bars(hub_rows))
    return bars[bars["closed"].to_numpy(bool)]


def sample(frames: dict, through, timeframe: str, lookback: int) -> dict:
    """Each frame's bars of the ``lookback`` bar periods ending with the bar starting at ``through``."""
    since = through - pd.Timedelta(TIMEFRAMES[timeframe]) * (lookback - 1)
    return {name: frame[(frame.index >= since) & (frame.index <= through)] for name, frame in frames.items()}


def newest(frames) -> pd.Timestamp | None:
    """The newest bar start among ``frames`` (None if all are empty)."""
    ends = [frame.index[-1] for frame in frames if len(frame)]
    return max(ends) if ends else None


# -- too little data ------------------------------------------------------------------
def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86_400:.0f} days"


def shortage(what: str, have: int, need: int, timeframe: str, common: bool = False) -> str:
    """One line: what lacks data, how many bars there are (``common``: at times all series have one), what to do."""
    wait = _duration((need - have) * pd.Timedelta(TIMEFRAMES[timeframe]).total_seconds())
    text = f"{what}: {have:,} closed {timeframe} bars{' at common times' if common else ''}, {need:,} needed."
    if timeframe == "1s":
        return f"{text} Wait about {wait}."
    return f"{text} Choose 1s, wait about {wait}, or run `{BACKFILL}` (simulated history)."


# -- the computation ------------------------------------------------------------------
def _guarded(notes: dict, section: str, what: str, function):
    """``function()``, or None with a note when :mod:`analytics.risk` refuses the data (a ValueError)."""
    try:
        return function()
    except ValueError as error:
        notes[section] = f"{what}: {one_line(error)}"
        return None


def _vol_table(spec: RiskSpec, frames: dict, notes: dict) -> pd.DataFrame:
    table = pd.DataFrame(np.nan, index=pd.Index(spec.symbols, name="symbol"), columns=[*risk.ESTIMATORS, "ewma"])
    short = [(symbol, len(frames[symbol])) for symbol in spec.symbols if len(frames[symbol]) < spec.window + 1]
    for symbol in spec.symbols:
        bars = frames[symbol]
        if len(bars) < spec.window + 1:
            continue

        def row():
            returns = risk.log_returns(bars["close"]).iloc[1:]
            return [*(risk.realized_vol(bars, e, spec.window, spec.timeframe).iloc[-1] for e in risk.ESTIMATORS),
                    risk.ewma_vol(returns, LAMBDA, spec.timeframe).iloc[-1]]

        values = _guarded(notes, "vol", f"Volatility of {symbol}", row)
        if values is not None:
            table.loc[symbol] = values
    if short:
        names = ", ".join(s for s, _ in short)
        notes["vol"] = shortage(f"Volatility of {names} (window {spec.window})", min(n for _, n in short),
                                spec.window + 1, spec.timeframe)
    return table * 100.0


def _fit_garch(spec: RiskSpec, returns: pd.Series) -> risk.GarchResult:
    """:func:`analytics.risk.fit_garch`, fitted once per sample for the whole process."""
    values = returns.to_numpy()
    key = (spec.exchange, spec.coin, spec.timeframe, len(values), returns.index[0], returns.index[-1],
           float(values.sum()), float((values**2).sum()))
    with _FITS_LOCK:
        fit = _FITS.get(key)
        if fit is not None:
            _FITS.move_to_end(key)
            return fit
    fit = risk.fit_garch(returns)
    with _FITS_LOCK:
        _FITS[key] = fit
        while len(_FITS) > _FITS_KEPT:
            _FITS.popitem(last=False)
    return fit


def _garch(spec: RiskSpec, returns: pd.Series, through) -> tuple:
    """The GARCH fit, its conditional volatility and its forecast after ``through`` (annualised %)."""
    fit = _fit_garch(spec, returns)
    conditional = fit.conditional_volatility * np.sqrt(risk.periods_per_year(spec.timeframe)) * 100.0
    path = fit.forecast_volatility(HORIZON, annualize=spec.timeframe) * 100.0
    step = pd.Timedelta(TIMEFRAMES[spec.timeframe])
    return fit, conditional, pd.Series(path.to_numpy(), index=through + step * path.index.to_numpy(), name="forecast")


def _coin(spec: RiskSpec, bars: pd.DataFrame, through, notes: dict) -> dict:
    """The coin's volatility over time, its cone, its GARCH fit and forecast."""
    coin, out, series = spec.coin, {}, {}
    if len(bars) >= spec.window + 1:
        series = _guarded(notes, "vol", f"Volatility of {coin}", lambda: {
            e: risk.realized_vol(bars, e, spec.window, spec.timeframe) * 100.0 for e in risk.ESTIMATORS}) or {}
    returns = risk.log_returns(bars["close"]).iloc[1:]
    if len(returns) >= 2:
        series["ewma"] = risk.ewma_vol(returns, LAMBDA, spec.timeframe) * 100.0
    cone = 2 * max(CONE_WINDOWS) + 1
    if len(bars) >= cone:
        out["cone"] = _guarded(notes, "cone", f"Volatility cone of {coin}",
                               lambda: risk.vol_cone(bars["close"], CONE_WINDOWS, annualize=spec.timeframe) * 100.0)
    else:
        notes["cone"] = shortage(f"Volatility cone of {coin}", len(bars), cone, spec.timeframe)
    if len(returns) >= GARCH_MIN:
        fitted = _guarded(notes, "garch", f"GARCH(1,1) of {coin}", lambda: _garch(spec, returns, through))
        if fitted is not None:
            out["garch"], series["garch"], out["forecast"] = fitted
    else:
        notes["garch"] = shortage(f"GARCH(1,1) of {coin}", len(bars), GARCH_MIN + 1, spec.timeframe)
    out["series"] = pd.DataFrame(series, index=bars.index, columns=[*risk.ESTIMATORS, "ewma", "garch"])
    return out


def common_closes(frames: dict) -> pd.DataFrame:
    """The frames' closes, one column each, at the times every frame has a bar (none if one is empty)."""
    if not frames or not all(len(frame) for frame in frames.values()):
        return pd.DataFrame(columns=list(frames), dtype=float)
    return pd.concat({name: frame["close"] for name, frame in frames.items()}, axis=1, join="inner")


def _correlations(frames: dict, what: str, timeframe: str, notes: dict, section: str):
    """Correlation matrix of the frames' log returns at common times (None, with a note, when too few)."""
    closes = common_closes(frames)
    if len(closes) < CORR_MIN + 1:
        notes[section] = shortage(what, len(closes), CORR_MIN + 1, timeframe, common=True)
        return None
    return _guarded(notes, section, what, lambda: risk.corr_matrix(closes.apply(risk.log_returns).iloc[1:]))


def _pair(spec: RiskSpec, frames: dict, notes: dict) -> dict:
    """Rolling correlation and beta, cointegration and lead-lag of the pair."""
    a, b = spec.pair
    closes = common_closes({a: frames[a], b: frames[b]})
    out = {}
    if len(closes) >= 2:
        returns = closes.apply(risk.log_returns).iloc[1:]
        ra, rb = returns[a].rename(a), returns[b].rename(b)
    if len(closes) >= spec.window + 1:
        out["pair"] = _guarded(notes, "pair", f"Correlation of {a} and {b}", lambda: pd.concat([
            risk.rolling_corr(ra, rb, spec.window), risk.ewma_corr(ra, rb, LAMBDA).rename("ewma_corr"),
            risk.rolling_beta(ra, rb, spec.window)], axis=1))
    else:
        notes["pair"] = shortage(f"Rolling correlation and beta of {a} and {b} (window {spec.window})", len(closes),
                                 spec.window + 1, spec.timeframe, common=True)
    if len(closes) >= PAIR_MIN:
        out["coint"] = _guarded(notes, "words", "Cointegration",
                                lambda: risk.cointegration(closes[a].rename(a), closes[b].rename(b)))
        out["leadlag"] = _guarded(notes, "words", "Lead-lag", lambda: risk.lead_lag(ra, rb, MAX_LAG))
    else:
        notes["words"] = shortage(f"Cointegration and lead-lag of {a} and {b}", len(closes), PAIR_MIN,
                                  spec.timeframe, common=True)
    return out


def compute(spec: RiskSpec, frames: dict, cross: dict) -> RiskResult:
    """Every number of the Risk page from closed bars.

    Parameters
    ----------
    spec : RiskSpec
    frames : dict
        Closed bars (open, high, low, close, indexed by start) of each symbol of the spec
        on its exchange, however much history: the sample is cut here.
    cross : dict
        Closed bars of the spec's coin by exchange of ``spec.exchanges``.
    """
    began = time.perf_counter()
    notes = {}
    through = newest(frames.values())
    if through is not None:
        frames = sample(frames, through, spec.timeframe, spec.lookback)
        cross = sample(cross, through, spec.timeframe, spec.lookback)
    vol = _vol_table(spec, frames, notes)
    coin = _coin(spec, frames[spec.coin], through, notes)
    corr = xcorr = None
    if len(spec.symbols) < 2:
        notes["corr"] = "Correlation across coins: choose at least two coins."
    else:
        corr = _correlations(frames, "Correlation across coins", spec.timeframe, notes, "corr")
    if len(cross) < 2:
        notes["xcorr"] = (f"{spec.coin} is on {len(cross)} exchange{'s' if len(cross) != 1 else ''} here: "
                          "nothing to correlate across exchanges.")
    else:
        xcorr = _correlations(cross, f"Correlation of {spec.coin} across {', '.join(cross)}", spec.timeframe, notes,
                              "xcorr")
    if spec.pair:
        pair = _pair(spec, frames, notes)
    else:
        pair = {}
        notes["pair"] = notes["words"] = "Pair statistics: choose two coins."
    return RiskResult(spec=spec, through=through, counts={s: len(frames[s]) for s in spec.symbols}, vol=vol,
                      corr=corr, xcorr=xcorr, notes=notes, elapsed=time.perf_counter() - began, **coin, **pair)


# -- sharing ----------------------------------------------------------------------------
class RiskFeed(Shared):
    """The closed bars and the :class:`RiskResult` of one spec on one ingest, shared by its sessions.

    Get one with :meth:`acquire` and give it back with :meth:`release`: the first acquirer
    opens the hub cursors, the last release closes them. :meth:`update` (cheap, any
    session's timer) reads the cursors at most every :data:`MIN_INTERVAL` seconds and,
    once a bar has closed and :data:`SETTLE` seconds passed without another (at most
    :data:`MAX_SETTLE` after the first), starts a recomputation on the process's one
    background worker; bars closing meanwhile make one more, after it. :attr:`version`
    is bumped when its :attr:`result` is ready.

    Attributes
    ----------
    result : RiskResult or None
    version : int
    computes : int
        Computations finished (one per closed bar at most).
    error : str
        The last computation's failure ("" if none).
    history : str
        Why the stored history could not be read ("" if it could).
    """

    def __init__(self, ingest, spec: RiskSpec):
        self.hub, self.store, self.spec = ingest.hub, getattr(ingest, "store", None), spec
        self.lock = threading.Lock()
        keys = [("bars", spec.exchange, s, spec.timeframe) for s in spec.symbols]
        keys += [("bars", ex, spec.coin, spec.timeframe) for ex in spec.exchanges if ex != spec.exchange]
        self._cursors = [self.hub.subscribe(key, self.hub.last_seq(key)) for key in keys]
        self._closed = {}  # key -> newest closed start seen
        self._dirty, self._running = True, False
        self._polled = self._changed = self._since = -np.inf  # last poll, last closed bar, first one not computed
        self.result, self.version, self.computes, self.error, self.history = None, 0, 0, "", ""
        self._history = ""

    @classmethod
    def acquire(cls, ingest, spec: RiskSpec) -> "RiskFeed":
        """The process's feed of ``spec`` on ``ingest``'s hub, one more user counted."""
        return cls.share((id(ingest.hub), spec), lambda: cls(ingest, spec))

    def update(self) -> None:
        """Note bars closed since the last read; start a recomputation when one is due."""
        now = time.monotonic()
        with self.lock:
            if now - self._polled < MIN_INTERVAL:
                return
            self._polled = now
            for cursor in self._cursors:
                if not cursor.lag:
                    continue
                rows = cursor.read()
                if not len(rows):
                    continue
                closed = rows["start"].to_numpy("datetime64[ns]")[rows["closed"].to_numpy(bool)]
                seen = self._closed.get(cursor.key)
                if len(closed) and (seen is None or closed.max() > seen):
                    self._closed[cursor.key] = closed.max()
                    self._since = self._since if self._dirty else now
                    self._dirty, self._changed = True, now
            settled = now - self._changed >= SETTLE or now - self._since >= MAX_SETTLE
            if self._dirty and not self._running and (self.result is None or settled):
                self._dirty, self._running = False, True
                _EXECUTOR.submit(self._compute)

    def _compute(self) -> None:
        """Load the closed bars and compute (on the worker thread); publish the result."""
        spec, self._history = self.spec, ""
        try:
            frames = {s: self._bars(spec.exchange, s) for s in spec.symbols}
            cross = {ex: frames[spec.coin] if ex == spec.exchange else self._bars(ex, spec.coin)
                     for ex in spec.exchanges}
            result, error = compute(spec, frames, cross), ""
        except Exception as failure:  # shown on every page of this spec, and logged once
            result, error = None, one_line(failure)
            if error != self.error:
                LOG.exception("the risk computation of %s failed", spec)
        with self.lock:
            self._running = False
            self.error, self.history = error, self._history
            if result is not None:
                self.result = result
                self.computes += 1
            self.version += 1

    def _bars(self, exchange: str, symbol: str) -> pd.DataFrame:
        """Closed bars of one market; without stored history (said in :attr:`history`) if the store fails."""
        timeframe = self.spec.timeframe
        try:
            stored = read_history(self.store, exchange, symbol, timeframe, self.spec.lookback)
        except Exception as failure:  # the live bars go on without history
            stored, self._history = empty_bars(), f"History unavailable: {one_line(failure)}"
        return closed_bars(stored, self.hub.latest(("bars", exchange, symbol, timeframe)))
