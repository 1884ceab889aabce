"""A simulated crypto market: one efficient price per coin, one book per exchange.

The model, calibrated to one month of real one-minute BTC bars (see ``tests/test_market.py``):

- **Volatility.** A market-wide variance multiplier ``g`` on a one-second grid (mean 1): four
  log-volatility OU components (2 min, 30 min, 4 h, 2 days), a diurnal cycle peaking at 15:00
  UTC, and a per-second inverse-gamma mixing draw, which makes each second's return Student-t
  with ``T_DOF`` degrees of freedom. Volatility clusters on all scales and returns are fat-tailed.
- **Prices.** Log-returns on a 10 ms grid are conditionally normal with variance ``sigma**2 * g``,
  loaded on a market factor, a sector factor and an idiosyncratic one (BTC-ETH ~0.8 at one minute,
  alts 0.45-0.75). ``simulate_bars`` samples the same process exactly at one minute.
- **Exchanges.** Each exchange quotes the efficient price times ``exp(basis)``, the basis an OU
  process of a few bp whose shocks scale with volatility; its book has a spread of a few ticks
  and persistent, random level sizes.
- **Trades.** A Cox process per exchange and coin: intensity ``trade_rate * share * activity *
  bursts``, where activity follows volatility and bursts are shot noise (common to a coin across
  exchanges, and per exchange); both have mean 1. Sizes are lognormal; the taker side leans with
  the last second's price move; takers hit the best bid or ask of their exchange.
"""

import math
import time
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from scipy.special import ndtri

DEFAULT_COINS = ["BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "LTC", "DOT"]
CELLS_PER_SECOND = 100
DT = 1.0 / CELLS_PER_SECOND
SECONDS_PER_YEAR = 525_600 * 60
TRADE_COLUMNS = ["exchange", "coin", "timestamp", "price", "amount", "side"]
FLOAT_COLUMNS = {"timestamp", "price", "amount"}

VOL_TAUS = np.array([120.0, 1_800.0, 14_400.0, 172_800.0])  # seconds
VOL_SDS = np.array([0.45, 0.35, 0.40, 0.35])  # stationary sd of each log-volatility component
T_DOF = 3.5
DIURNAL = 0.5  # amplitude of the daily variance cycle
FLOW_TAU = 1.0  # seconds over which the taker side follows the price move
BURSTS = {"coin": (1 / 60, 3.0, 0.25), "stream": (1 / 40, 1.5, 0.15)}  # (rate /s, decay s, mean level)
PARETO_ALPHA = 1.8


class CoinSpec(NamedTuple):
    """A coin's starting price (USDT), tick and lot (powers of ten), annualized volatility, share of
    an exchange's trades, market and sector loadings (sector -1: none) and median trade notional."""

    price: float
    tick: float
    lot: float
    vol: float
    share: float
    market: float
    sector: int
    sector_loading: float
    notional: float


class ExchangeSpec(NamedTuple):
    """An exchange's basis sd (bp) and mean-reversion time (s), and its usual spread in ticks."""

    basis_bp: float
    basis_tau: float
    spread_ticks: int


COIN_SPECS = {
    "BTC": CoinSpec(65_000.0, 0.01, 1e-5, 0.70, 0.30, 0.93, -1, 0.0, 300.0),
    "ETH": CoinSpec(3_400.0, 0.01, 1e-4, 0.85, 0.20, 0.86, 0, 0.30, 250.0),
    "SOL": CoinSpec(150.0, 0.01, 1e-3, 1.10, 0.12, 0.75, 0, 0.35, 150.0),
    "XRP": CoinSpec(0.52, 1e-4, 0.1, 0.95, 0.08, 0.62, 1, 0.35, 100.0),
    "ADA": CoinSpec(0.45, 1e-4, 0.1, 1.00, 0.07, 0.72, 0, 0.30, 80.0),
    "DOGE": CoinSpec(0.15, 1e-5, 1.0, 1.10, 0.10, 0.60, 1, 0.35, 100.0),
    "LTC": CoinSpec(80.0, 0.01, 1e-3, 0.95, 0.06, 0.78, 1, 0.30, 100.0),
    "DOT": CoinSpec(6.5, 1e-3, 0.01, 1.05, 0.07, 0.74, 0, 0.30, 80.0),
}
EXCHANGE_SPECS = {
    "BINANCE": ExchangeSpec(0.5, 20.0, 1),
    "KRAKEN": ExchangeSpec(3.0, 60.0, 2),
    "BITFINEX": ExchangeSpec(4.0, 90.0, 3),
}
OTHER_EXCHANGE = ExchangeSpec(3.0, 60.0, 2)


def _ar1(shocks, a, x0):
    """``x[k] = a * x[k-1] + shocks[k]`` along axis 0, starting after ``x0``."""
    out, _ = lfilter([1.0], [1.0, -a], shocks, axis=0, zi=(a * np.asarray(x0, float))[None])
    return out


def _specs(coins):
    coins = list(coins)
    unknown = sorted(set(coins) - set(COIN_SPECS))
    if unknown or not coins or len(set(coins)) != len(coins):
        raise ValueError(f"coins must be distinct names from {sorted(COIN_SPECS)}, got {coins}")
    return coins, [COIN_SPECS[c] for c in coins]


def _loadings(specs):
    """Factor loadings (factors x coins): market, one per sector, one idiosyncratic per coin."""
    sectors = sorted({s.sector for s in specs if s.sector >= 0})
    n = len(specs)
    loads = np.zeros((1 + len(sectors) + n, n))
    for i, s in enumerate(specs):
        loads[0, i] = s.market
        if s.sector >= 0:
            loads[1 + sectors.index(s.sector), i] = s.sector_loading
        loads[1 + len(sectors) + i, i] = math.sqrt(1.0 - s.market**2 - s.sector_loading**2)
    return loads


class _VolatilityClock:
    """The market-wide per-second variance multiplier ``g`` and trade activity, both of mean 1."""

    def __init__(self, rng, t0):
        self._rng, self._t = rng, math.floor(t0)
        self._h = rng.standard_normal(len(VOL_SDS)) * VOL_SDS
        self._decay = np.exp(-1.0 / VOL_TAUS)
        shape, scale = T_DOF / 2, T_DOF / 2 - 1
        self._mix = (shape, scale)
        day = 1 + DIURNAL * np.cos(2 * np.pi * np.arange(1440) / 1440)
        var_h = float(np.sum(VOL_SDS**2))
        # E[sqrt g] = E[sqrt u] E[sqrt w] E[sqrt d], u lognormal, w inverse gamma, d diurnal.
        e_sqrt_w = math.sqrt(scale) * math.gamma(shape - 0.5) / math.gamma(shape)
        self._act_norm = math.exp(-var_h / 2) * e_sqrt_w * np.sqrt(day).mean()
        self._var_h = var_h

    def advance(self, n):
        """Return ``(g, activity)`` for the next ``n`` seconds."""
        shocks = self._rng.standard_normal((n, len(VOL_SDS))) * VOL_SDS * np.sqrt(1 - self._decay**2)
        h = np.column_stack([_ar1(shocks[:, j], a, self._h[j]) for j, a in enumerate(self._decay)])
        self._h = h[-1]
        shape, scale = self._mix
        mix = scale / self._rng.standard_gamma(shape, n)
        hours = ((self._t + np.arange(n)) % 86_400) / 3_600
        self._t += n
        diurnal = 1 + DIURNAL * np.cos(2 * np.pi * (hours - 15) / 24)
        g = np.exp(2 * h.sum(axis=1) - 2 * self._var_h) * mix * diurnal
        return g, np.sqrt(g) / self._act_norm


def _mix64(x):
    """splitmix64 finalizer on uint64 arrays: a cheap, deterministic hash."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _hash(*keys):
    """A uint64 hash of integer (or integral float) keys, broadcast."""
    h = np.uint64(0)
    for key in keys:
        key = np.asarray(key)
        h = _mix64(h ^ (key if key.dtype == np.uint64 else key.astype(np.int64).view(np.uint64)))
    return h


def _uniform(*keys):
    """Uniform (0, 1) numbers hashed from keys (see ``_hash``)."""
    return ((_hash(*keys) >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53


def simulate_bars(coins=DEFAULT_COINS, minutes: int = 43_200, seed=None, *, end: float | None = None):
    """Sample the model's efficient prices into one-minute OHLC bars, without individual trades.

    Minute returns aggregate the per-second variance exactly; highs and lows are drawn from the
    Brownian bridge between open and close. Prices are rounded to each coin's tick.

    Parameters
    ----------
    coins : list of str
        Coins from ``COIN_SPECS``.
    minutes : int
        Number of bars.
    seed : int, optional
        Seed of the random generator.
    end : float, optional
        Epoch seconds the last bar closes at or before (default: now); sets the bars' times and
        the phase of the diurnal cycle.

    Returns
    -------
    dict of str to pandas.DataFrame
        Per coin: ``open, high, low, close``, indexed by bar open time (tz-naive UTC).
    """
    coins, specs = _specs(coins)
    if int(minutes) != minutes or minutes < 1:
        raise ValueError(f"minutes must be a positive integer, got {minutes}")
    rng = np.random.default_rng(seed)
    t0 = (math.floor((time.time() if end is None else end) / 60) - minutes) * 60
    g, _ = _VolatilityClock(rng, t0).advance(minutes * 60)
    var = g.reshape(minutes, 60).sum(axis=1)
    sigma = np.array([s.vol for s in specs]) / math.sqrt(SECONDS_PER_YEAR)
    loads = _loadings(specs)
    returns = (rng.standard_normal((minutes, len(loads))) * np.sqrt(var)[:, None]) @ loads * sigma
    close = np.log([s.price for s in specs]) + np.cumsum(returns, axis=0)
    open_ = np.vstack([close[:1] - returns[:1], close[:-1]])
    spread2 = var[:, None] * sigma**2 * -2 * np.log(rng.uniform(size=(2, minutes, len(specs))))
    half_range = np.sqrt((close - open_) ** 2 + spread2) / 2
    mid = (close + open_) / 2
    index = pd.to_datetime(t0 + 60 * np.arange(minutes), unit="s").rename("timestamp")
    bars = {}
    for i, (coin, s) in enumerate(zip(coins, specs)):
        per_unit = round(1 / s.tick)
        cols = {"open": open_[:, i], "high": mid[:, i] + half_range[0, :, i],
                "low": mid[:, i] - half_range[1, :, i], "close": close[:, i]}
        cols = {k: np.round(np.exp(v) * per_unit) / per_unit for k, v in cols.items()}
        bars[coin] = pd.DataFrame(cols, index=index)
    return bars


class MarketModel:
    """A live simulated market: trades and books of several exchanges for several coins.

    Parameters
    ----------
    coins : list of str
        Coins from ``COIN_SPECS``, quoted in USDT.
    exchanges : sequence of str
        Exchange ids; ``EXCHANGE_SPECS`` sets basis and spread (others get ``OTHER_EXCHANGE``).
    seed : int, optional
        Seed: the same seed and the same calls give the same trades and books.
    trade_rate : float
        Long-run mean trades per second per exchange (all coins), from calm (~1) to flood
        (``inf``); mutable.
    start : float, optional
        Epoch seconds of the model's clock origin (default: now).

    Attributes
    ----------
    clock : float
        Epoch seconds up to which the model has advanced (a multiple of ``DT`` after ``start``).
    compensator : float
        Integrated trade intensity so far (finite rates, before any ``max_trades`` cap): the
        expected trade count given the simulated intensity path.
    """

    def __init__(self, coins: list[str] = DEFAULT_COINS, exchanges=("BINANCE", "KRAKEN", "BITFINEX"),
                 seed=None, trade_rate: float = 50.0, start: float | None = None):
        self.coins, specs = _specs(coins)
        self.exchanges = list(exchanges)
        if not self.exchanges or len(set(self.exchanges)) != len(self.exchanges):
            raise ValueError(f"exchanges must be distinct names, got {self.exchanges}")
        self.trade_rate = trade_rate
        self._rng = np.random.default_rng(seed)
        self._start = time.time() if start is None else float(start)
        self._cells, self.compensator = 0, 0.0
        ex = [EXCHANGE_SPECS.get(e, OTHER_EXCHANGE) for e in self.exchanges]
        self._loads = _loadings(specs)
        self._sigma = np.array([s.vol for s in specs]) / math.sqrt(SECONDS_PER_YEAR)
        self._per_tick = np.array([round(1 / s.tick) for s in specs], dtype=float)
        self._per_lot = np.array([round(1 / s.lot) for s in specs], dtype=float)
        self._share = np.array([s.share for s in specs]) / sum(s.share for s in specs)
        self._notional = np.array([s.notional for s in specs])
        self._base_spread = np.array([e.spread_ticks for e in ex])[:, None]
        self._basis_sd = np.array([e.basis_bp for e in ex]) * 1e-4
        self._basis_decay = np.exp(-DT / np.array([e.basis_tau for e in ex]))
        self._x = np.log([s.price for s in specs])
        self._basis = self._rng.standard_normal((len(ex), len(specs))) * self._basis_sd[:, None]
        self._bursts = {k: np.full((len(ex), len(specs)), mean) for k, (_, _, mean) in BURSTS.items()}
        self._bursts["coin"] = self._bursts["coin"][:1]
        self._flow = np.zeros(len(specs))
        self._vol = _VolatilityClock(self._rng, self._start)
        self._g, self._act = self._vol.advance(1)
        self._sec0 = 0  # second (after start) of self._g[0]
        salt = self._rng.integers(2**62)
        self._book_keys = _hash(salt, np.arange(len(ex))[:, None], np.arange(len(specs)))
        self._bid, self._ask = self._quote(self._x[None] + self._basis, self._base_spread)

    @property
    def trade_rate(self) -> float:
        """Long-run mean trades per second per exchange; ``inf`` floods (each call returns ``max_trades``).

        The momentary rate follows volatility and bursts: typically 0.3-1x this in calm spells,
        several times it in turbulent ones.
        """
        return self._trade_rate

    @trade_rate.setter
    def trade_rate(self, value: float):
        if not value >= 0:
            raise ValueError(f"trade_rate must be >= 0 (inf allowed), got {value}")
        self._trade_rate = float(value)

    @property
    def clock(self) -> float:
        """Epoch seconds the model has advanced to."""
        return self._start + self._cells * DT

    def _quote(self, log_mid, spread_ticks):
        """Best bid and ask in ticks (integers as floats) around ``exp(log_mid)``."""
        bid = np.floor(np.exp(log_mid) * self._per_tick - spread_ticks / 2)
        return bid, bid + spread_ticks

    def _seconds(self, first, last):
        """Variance multiplier and activity for seconds ``first..last`` after start."""
        if last >= self._sec0 + len(self._g):
            g, act = self._vol.advance(last + 1 - self._sec0 - len(self._g))
            self._g, self._act = np.concatenate([self._g, g]), np.concatenate([self._act, act])
        keep = slice(first - self._sec0, None)
        self._g, self._act, self._sec0 = self._g[keep], self._act[keep], first
        return self._g[: last + 1 - first], self._act[: last + 1 - first]

    def _burst_path(self, kind, n, shape):
        rate, tau, mean = BURSTS[kind]
        x_min = mean / (rate * tau) * (PARETO_ALPHA - 1) / PARETO_ALPHA
        size = x_min * (1 + self._rng.pareto(PARETO_ALPHA, (n, *shape)))  # Pareto, mean: level / (rate * tau)
        jumps = self._rng.poisson(rate * DT, (n, *shape)) * size
        path = _ar1(jumps, math.exp(-DT / tau), self._bursts[kind])
        self._bursts[kind] = path[-1]
        return path

    def _advance(self, n, quota):
        """Simulate ``n`` cells; return trade columns (cell-ordered) and update the state."""
        E, C = len(self.exchanges), len(self.coins)
        first = self._cells
        sec = (first + np.arange(n)) // CELLS_PER_SECOND
        g, act = self._seconds(int(sec[0]), int(sec[-1]))
        g, act = g[sec - sec[0]], act[sec - sec[0]]
        sd = np.sqrt(g * DT)[:, None] * self._sigma
        z = self._rng.standard_normal((n, len(self._loads))) @ self._loads  # unit variance per coin
        x = self._x + np.cumsum(z * sd, axis=0)
        decay = math.exp(-DT / FLOW_TAU)
        flow = _ar1(z * math.sqrt(1 - decay**2), decay, self._flow)  # unit-variance recent move
        shock_sd = self._basis_sd * np.sqrt(1 - self._basis_decay**2)
        shocks = self._rng.standard_normal((n, E, C)) * shock_sd[:, None] * np.sqrt(g)[:, None, None]
        basis = np.stack([_ar1(shocks[:, e], a, self._basis[e]) for e, a in enumerate(self._basis_decay)], axis=1)
        spread = self._base_spread + self._rng.geometric(0.7, (n, E, C)) - 1
        bid, ask = self._quote(x[:, None] + basis, spread)
        level = 1 - sum(m for _, _, m in BURSTS.values())
        burst = level + self._burst_path("coin", n, (1, C)) + self._burst_path("stream", n, (E, C))
        intensity = act[:, None, None] * self._share * burst
        if math.isinf(self._trade_rate):
            counts = self._rng.multinomial(quota, (intensity / intensity.sum()).ravel())
        else:
            intensity *= self._trade_rate * DT
            self.compensator += float(intensity.sum())
            counts = self._rng.poisson(intensity).ravel()
            if quota is not None and counts.sum() > quota:
                counts = self._rng.multivariate_hypergeometric(counts, quota)
        self._cells += n
        self._x, self._basis, self._bid, self._ask, self._flow = x[-1], basis[-1], bid[-1], ask[-1], flow[-1]
        flat = np.repeat(np.arange(n * E * C), counts)
        cell, e, c = flat // (E * C), flat // C % E, flat % C
        buy = self._rng.uniform(size=len(flat)) < 0.5 + 0.35 * np.tanh(flow[cell, c])
        ticks = np.where(buy, ask[cell, e, c], bid[cell, e, c])
        size = self._notional[c] * np.exp(1.5 * self._rng.standard_normal(len(flat))) / np.exp(x[cell, c])
        lots = np.maximum(1.0, np.round(size * self._per_lot[c]))
        stamp = self._start + (first + cell + self._rng.uniform(size=len(flat))) * DT
        return e, c, stamp, ticks / self._per_tick[c], lots / self._per_lot[c], buy

    def trades(self, now: float, max_trades: int | None = None) -> pd.DataFrame:
        """Advance the model to ``now`` and return the trades since the last call.

        Parameters
        ----------
        now : float
            Wall-clock epoch seconds; the model advances by whole 10 ms cells up to it.
        max_trades : int, optional
            Cap on the rows returned: with a finite rate, a uniform random subset of the trades
            (the rest are never sent); with ``trade_rate = inf``, exactly this many trades spread
            over the elapsed interval by the model's intensity.

        Returns
        -------
        pandas.DataFrame
            ``exchange, coin, timestamp (float epoch s), price, amount, side ('buy'/'sell')``,
            sorted by timestamp, all timestamps in ``(previous clock, clock]``.

        Raises
        ------
        ValueError
            If ``max_trades`` is negative, or missing while ``trade_rate`` is infinite.
        """
        if max_trades is not None and max_trades < 0:
            raise ValueError(f"max_trades must be >= 0, got {max_trades}")
        if math.isinf(self._trade_rate) and max_trades is None:
            raise ValueError("max_trades is required when trade_rate is infinite")
        total = int(math.floor((now - self._start) / DT + 1e-9)) - self._cells
        parts, chunk = [], 60 * CELLS_PER_SECOND
        for done in range(0, max(total, 0), chunk):
            n = min(chunk, total - done)
            quota = None if max_trades is None else (max_trades * (done + n)) // total - (max_trades * done) // total
            parts.append(self._advance(n, quota))
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype=float if c in FLOAT_COLUMNS else object) for c in TRADE_COLUMNS})
        e, c, stamp, price, amount, buy = (np.concatenate(p) for p in zip(*parts))
        order = np.argsort(stamp, kind="stable")
        return pd.DataFrame({
            "exchange": np.array(self.exchanges, dtype=object)[e[order]],
            "coin": np.array(self.coins, dtype=object)[c[order]],
            "timestamp": stamp[order], "price": price[order], "amount": amount[order],
            "side": np.where(buy[order], "buy", "sell").astype(object),
        })

    def _index(self, exchange, coin):
        if exchange not in self.exchanges or coin not in self.coins:
            raise ValueError(f"unknown exchange/coin {exchange}/{coin}: have {self.exchanges} x {self.coins}")
        return self.exchanges.index(exchange), self.coins.index(coin)

    def book(self, exchange: str, coin: str, depth: int = 10):
        """Return the exchange's current book for ``coin``: ``(bids, asks)``.

        Bids descend and asks ascend from the best quotes the last trades hit; each level is
        ``(price, size)``. Levels sit on ticks, about one tick in four empty; a level's size
        persists while it stays in the book and is redrawn every few seconds.

        Raises
        ------
        ValueError
            For an unknown exchange or coin, or ``depth`` outside 1..100.
        """
        e, c = self._index(exchange, coin)
        if not 1 <= depth <= 100:
            raise ValueError(f"depth must be in 1..100, got {depth}")
        key, ticks = self._book_keys[e, c], np.arange(4 * depth)
        levels = np.stack([self._bid[e, c] - ticks, self._ask[e, c] + ticks])
        present = (ticks % 4 == 0) | (_uniform(levels, key, 1) < 0.7)  # at least `depth` per side
        levels = levels[present & (np.cumsum(present, axis=1) <= depth)].reshape(2, depth)
        epoch = np.floor(self.clock / 5.0 + _uniform(levels, key, 2))
        notional = 20 * self._notional[c] * np.exp(ndtri(_uniform(levels, key, epoch)) + 0.1 * np.arange(depth))
        lots = np.maximum(1.0, np.round(notional / levels * self._per_tick[c] * self._per_lot[c]))
        prices, sizes = (levels / self._per_tick[c]).tolist(), (lots / self._per_lot[c]).tolist()
        return list(zip(prices[0], sizes[0])), list(zip(prices[1], sizes[1]))

    def mid(self, exchange: str, coin: str) -> float:
        """Return the midpoint of the exchange's best bid and ask for ``coin``."""
        e, c = self._index(exchange, coin)
        return float((self._bid[e, c] + self._ask[e, c]) / 2 / self._per_tick[c])
