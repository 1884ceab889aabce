"""Simulated history: days of bars from the simulated market, to fill a store before it goes live.

:func:`simulated_history` samples the simulator's own model (:func:`analytics.exchange.market.simulate_bars`:
clustered, fat-tailed volatility, a market and sector factor structure) into one-minute bars, gives
each exchange its own copy through a small mean-reverting basis, scales every path so that its last
close is the coin's :data:`~analytics.exchange.market.COIN_SPECS` price (where the live simulator
starts) and adds plausible volume, VWAP and trade counts. Coarser timeframes are aggregated from the
one-minute bars by :func:`resample_bars`, as the pipeline's bar builder would have made them.
"""

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from analytics import schema
from analytics.bars import timeframe_ns
from analytics.exchange.market import COIN_SPECS, EXCHANGE_SPECS, OTHER_EXCHANGE, simulate_bars
from analytics.storage import TickStore
from analytics.storage.reads import timestamp

HISTORY_TIMEFRAMES = ("1m", "5m", "1h")
QUOTE = "USDT"
TRADES_PER_SECOND = 50.0  # per exchange over all coins: the live simulator's default rate
NOTIONAL_SPREAD = 0.25  # sd of the log notional traded in a minute, given its trade count


def coins_of(symbols) -> list[str]:
    """The simulator's coins behind normalized symbols (``BTC-USDT`` -> ``BTC``).

    Raises
    ------
    ValueError
        If a symbol is not a simulated coin against USDT, or symbols repeat.
    """
    symbols = [symbols] if isinstance(symbols, str) else list(symbols)
    bad = [s for s in symbols if not isinstance(s, str) or s.rpartition("-")[::2] not in
           {(coin, QUOTE) for coin in COIN_SPECS}]
    if bad or not symbols:
        known = " ".join(f"{coin}-{QUOTE}" for coin in COIN_SPECS)
        raise ValueError(f"no simulated history for {bad or 'no symbols'}: choose from {known}")
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"symbols repeat: {symbols}")
    return [s.partition("-")[0] for s in symbols]


def _end_seconds(end) -> float:
    return time.time() if end is None else timestamp(end, "end").value / 1e9


def _basis(rng, spec, minutes: int) -> np.ndarray:
    """An exchange's log basis at each minute's close: AR(1) with the spec's sd and memory, pinned to zero
    at the end by a correction that decays backwards as fast as the basis forgets."""
    a, sd = math.exp(-60.0 / spec.basis_tau), spec.basis_bp * 1e-4
    shocks = rng.standard_normal(minutes) * sd * math.sqrt(1 - a * a)
    basis, _ = lfilter([1.0], [1.0, -a], shocks, zi=[a * rng.standard_normal() * sd])
    return basis - basis[-1] * a ** np.arange(minutes)[::-1]


def _exchange_copy(bars: pd.DataFrame, basis: np.ndarray, tick: float) -> pd.DataFrame:
    """The efficient bars seen on one exchange: closes moved by its basis, opens at the previous close."""
    close = bars["close"].to_numpy() * np.exp(basis)
    open_ = np.concatenate([bars["open"].to_numpy()[:1] * math.exp(basis[0]), close[:-1]])
    high = np.maximum(bars["high"].to_numpy() * np.exp(basis), np.maximum(open_, close))
    low = np.minimum(bars["low"].to_numpy() * np.exp(basis), np.minimum(open_, close))
    per_unit = round(1 / tick)
    return pd.DataFrame({name: np.round(values * per_unit) / per_unit for name, values in
                         (("open", open_), ("high", high), ("low", low), ("close", close))}, index=bars.index)


def _activity(rng, bars: pd.DataFrame, spec) -> pd.DataFrame:
    """Trades, volume and VWAP of one exchange's bars: activity follows the bar's range, as in the simulator."""
    high, low = bars["high"].to_numpy(), bars["low"].to_numpy()
    spread = np.log(high / low)
    activity = spread / max(spread.mean(), 1e-12)
    trades = np.maximum(1, rng.poisson(TRADES_PER_SECOND * 60 * spec.share * activity))
    notional = trades * spec.notional * np.exp(rng.standard_normal(len(trades)) * NOTIONAL_SPREAD)
    typical = bars[["open", "high", "low", "close"]].to_numpy().mean(axis=1)
    vwap = np.clip(typical + (high - low) * 0.1 * rng.standard_normal(len(trades)), low, high)
    volume = np.maximum(spec.lot, np.round(notional / vwap / spec.lot) * spec.lot)
    return bars.assign(volume=volume, vwap=vwap, trades=trades.astype(np.int64))


def resample_bars(bars: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Aggregate bars of one market into a coarser ``timeframe``, aligned to the Unix epoch.

    Parameters
    ----------
    bars : pandas.DataFrame
        Indexed by bar start (sorted), with ``open, high, low, close, volume, vwap, trades``
        (``vwap`` and ``trades`` optional).
    timeframe : str
        See :func:`analytics.bars.timeframe_ns`.

    Returns
    -------
    pandas.DataFrame
        The same columns, indexed by ``start`` of the coarser bars that hold any bar; ``vwap`` is
        the volume-weighted mean of the bars' VWAPs.
    """
    step = timeframe_ns(timeframe)
    starts = bars.index.values.astype("datetime64[ns]").view(np.int64) // step * step
    groups = bars.groupby(starts, sort=True)
    out = pd.DataFrame({"open": groups["open"].first(), "high": groups["high"].max(),
                        "low": groups["low"].min(), "close": groups["close"].last(),
                        "volume": groups["volume"].sum()})
    if "vwap" in bars:
        notional = (bars["vwap"] * bars["volume"]).groupby(starts, sort=True).sum()
        out["vwap"] = (notional / out["volume"]).where(out["volume"] > 0)
    if "trades" in bars:
        out["trades"] = groups["trades"].sum().astype(np.int64)
    out.index = pd.DatetimeIndex(out.index.values.view("datetime64[ns]"), name="start")
    return out


def simulated_history(symbols, exchanges=("BINANCE", "KRAKEN", "BITFINEX"), days: float = 7, end=None,
                      seed=None) -> pd.DataFrame:
    """Bars of the simulated market for the ``days`` before ``end``, in the store's schema.

    Parameters
    ----------
    symbols : list of str
        Normalized symbols of simulated coins (``BTC-USDT``, ...; see ``COIN_SPECS``).
    exchanges : sequence of str
        Exchange ids; each gets its own copy of the prices through a small basis.
    days : float
        Length of the history; whole minutes, at least one.
    end : optional
        When the last bar closes (anything :class:`pandas.Timestamp` accepts, naive is UTC; default
        now), floored to the minute.
    seed : int, optional
        Seed: the same seed and ``end`` give the same bars.

    Returns
    -------
    pandas.DataFrame
        :data:`analytics.schema.BAR_COLUMNS` rows for every exchange, symbol and timeframe of
        ``1m, 5m, 1h``; every 1m bar closed, the last close of each market equal to the coin's
        ``COIN_SPECS`` price. A 5m or 1h bar still open at ``end`` has ``closed`` False.

    Raises
    ------
    ValueError
        For an unknown symbol, no or repeated exchanges, ``days`` under one minute or a bad ``end``.
    """
    coins = coins_of(symbols)
    exchanges = [exchanges] if isinstance(exchanges, str) else list(exchanges)
    if not exchanges or len(set(exchanges)) != len(exchanges) or not all(isinstance(e, str) and e for e in exchanges):
        raise ValueError(f"exchanges must be distinct names, got {exchanges}")
    minutes = round(days * 1440) if isinstance(days, (int, float)) and math.isfinite(days) else 0
    if minutes < 1:
        raise ValueError(f"days must cover at least one minute, got {days!r}")
    close_at = math.floor(_end_seconds(end) / 60) * 60
    rng = np.random.default_rng(seed)
    efficient = simulate_bars(coins, minutes, seed=rng.integers(2**63), end=close_at)
    frames = []
    for coin in coins:
        spec, bars = COIN_SPECS[coin], efficient[coin]
        bars = bars * (spec.price / bars["close"].iloc[-1])
        for exchange in exchanges:
            ex_spec = EXCHANGE_SPECS.get(exchange, OTHER_EXCHANGE)
            one = _exchange_copy(bars, _basis(rng, ex_spec, minutes), spec.tick)
            one = _activity(rng, one, spec).rename_axis("start")
            for timeframe in HISTORY_TIMEFRAMES:
                frame = one if timeframe == "1m" else resample_bars(one, timeframe)
                step = pd.Timedelta(timeframe_ns(timeframe), "ns")
                frames.append(frame.reset_index().assign(
                    exchange=exchange, symbol=f"{coin}-{QUOTE}", timeframe=timeframe,
                    closed=(frame.index + step).values <= np.datetime64(close_at, "s")))
    return schema.conform("bars", pd.concat(frames, ignore_index=True))


@dataclass(frozen=True)
class Backfill:
    """What :func:`backfill` wrote."""

    rows: int
    symbols: list
    exchanges: list
    start: pd.Timestamp  # first 1m bar start
    end: pd.Timestamp  # last 1m bar start
    store: str

    def __str__(self) -> str:
        return (f"wrote {self.rows:,} simulated bars ({', '.join(HISTORY_TIMEFRAMES)}) of {' '.join(self.symbols)} "
                f"on {' '.join(self.exchanges)}, 1m bars from {self.start} to {self.end}, into {self.store}")


def overlaps(stored: pd.DataFrame, bars: pd.DataFrame) -> list[str]:
    """``EXCHANGE/SYMBOL/TIMEFRAME (start to end)`` of stored bars inside the range of ``bars`` of the same key."""
    keys = ["exchange", "symbol", "timeframe"]
    span = bars.groupby(keys)["start"].agg(["min", "max"]).reset_index()
    both = stored.merge(span, on=keys)
    hit = both[(both["rows"] > 0) & (both["start"] <= both["max"]) & (both["end"] >= both["min"])]
    return [f"{'/'.join(row[keys])} ({row['start']} to {row['end']})" for _, row in hit.iterrows()]


def backfill(store, symbols, exchanges=("BINANCE", "KRAKEN", "BITFINEX"), days: float = 7, end=None, seed=None,
             force: bool = False) -> Backfill:
    """Write :func:`simulated_history` into a tick store.

    Parameters
    ----------
    store : str, TickStore or None
        An ArcticDB URI (None: the default store) or an open store.
    symbols, exchanges, days, end, seed
        As for :func:`simulated_history`.
    force : bool
        Replace stored bars in the range (bars are stored by start: a simulated bar replaces the
        stored one with the same start). Without it, any stored bars of the same exchange, symbol
        and timeframe in the range make it refuse and write nothing.

    Raises
    ------
    ValueError
        For bad arguments, stored bars in the range (unless ``force``), or a store that cannot
        be written (e.g. another process writes those symbols).
    """
    bars = simulated_history(symbols, exchanges, days, end, seed)
    tickstore = store if isinstance(store, TickStore) else TickStore(store)
    clash = [] if force else overlaps(tickstore.symbols("bars"), bars)
    if clash:
        more = f" and {len(clash) - 1} more" if len(clash) > 1 else ""
        raise ValueError(f"{tickstore.uri} already holds bars in the backfill's range: {clash[0]}{more}; "
                         "use an earlier --end, another store, or --force to replace them")
    rows = tickstore.write("bars", bars)
    minutes = bars[bars["timeframe"] == "1m"]["start"]
    return Backfill(rows, list(dict.fromkeys(bars["symbol"])), list(dict.fromkeys(bars["exchange"])),
                    minutes.min(), minutes.max(), tickstore.uri)
