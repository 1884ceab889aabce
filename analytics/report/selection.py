"""What a report covers (markets, timeframe, time range), checked against the store, and the bars it reads."""

from dataclasses import dataclass

import pandas as pd

from analytics.bars import timeframe_ns
from analytics.storage.reads import timestamp

MAX_CANDLES = 2_000
# Chart timeframes to fall back on when a range holds more than MAX_CANDLES bars.
CHART_TIMEFRAMES = ("1m", "2min", "5m", "10min", "15min", "30min", "1h", "2h", "4h", "12h", "1D")


@dataclass(frozen=True)
class Selection:
    """The markets, timeframe and inclusive range (bar starts) of one report."""

    markets: tuple  # ((exchange, symbol), ...), symbols in the order asked, exchanges sorted
    timeframe: str
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def symbols(self) -> list[str]:
        return list(dict.fromkeys(symbol for _, symbol in self.markets))

    @property
    def exchanges(self) -> list[str]:
        return sorted({exchange for exchange, _ in self.markets})


def _listing(names) -> str:
    return ", ".join(sorted(set(names))) or "nothing"


def select(stored: pd.DataFrame, symbols, exchanges=None, timeframe: str = "1m", start=None,
           end=None) -> Selection:
    """Check a report's request against the store's bars and fill in the defaults.

    Parameters
    ----------
    stored : pandas.DataFrame
        :meth:`analytics.storage.TickStore.symbols` of ``"bars"``.
    symbols : list of str
        Normalized symbols, e.g. ``["BTC-USDT", "ETH-USDT"]``.
    exchanges : list of str, optional
        Default: every exchange holding a symbol at ``timeframe``.
    timeframe : str
        A stored timeframe.
    start, end : optional
        Bar starts, inclusive (naive is UTC); default: the stored range of the selected markets.

    Returns
    -------
    Selection
        Markets with bars in the range.

    Raises
    ------
    ValueError
        One line naming the bad value: an unknown symbol, timeframe or exchange (with what is
        stored), a bad date, ``start`` after ``end``, or a symbol without bars in the range.
    """
    symbols = [symbols] if isinstance(symbols, str) else list(symbols or [])
    if not symbols or len(set(symbols)) != len(symbols):
        raise ValueError(f"give distinct symbols, got {symbols}")
    unknown = [s for s in symbols if s not in set(stored["symbol"])]
    if unknown:
        raise ValueError(f"no bars stored for {' '.join(unknown)}; stored: {_listing(stored['symbol'])}")
    timeframe_ns(timeframe)
    at = stored[stored["timeframe"] == timeframe]
    lacking = [s for s in symbols if s not in set(at["symbol"])]
    if lacking:
        have = stored.loc[stored["symbol"].isin(lacking), "timeframe"]
        raise ValueError(f"no {timeframe} bars stored for {' '.join(lacking)}; stored timeframes: {_listing(have)}")
    at = at[at["symbol"].isin(symbols)]
    if exchanges is not None:
        exchanges = [exchanges] if isinstance(exchanges, str) else list(exchanges)
        unknown = [e for e in exchanges if e not in set(at["exchange"])]
        if unknown or not exchanges:
            raise ValueError(f"no {timeframe} bars of {' '.join(symbols)} on {' '.join(unknown) or 'no exchange'}; "
                             f"stored on: {_listing(at['exchange'])}")
        at = at[at["exchange"].isin(exchanges)]
        missing = [s for s in symbols if s not in set(at["symbol"])]
        if missing:
            raise ValueError(f"no {timeframe} bars of {' '.join(missing)} on {' '.join(exchanges)}")
    first, last = timestamp(start, "start"), timestamp(end, "end")
    if first is not None and last is not None and first > last:
        raise ValueError(f"start {first} is after end {last}")
    first = at["start"].min() if first is None else first
    last = at["end"].max() if last is None else last
    if first > last:
        raise ValueError(f"start {first} is after end {last}")
    inside = at[(at["rows"] > 0) & (at["start"] <= last) & (at["end"] >= first)]
    empty = [s for s in symbols if s not in set(inside["symbol"])]
    if empty:
        held = at[at["symbol"].isin(empty)]
        raise ValueError(f"no {timeframe} bars of {' '.join(empty)} between {first} and {last}; stored from "
                         f"{held['start'].min()} to {held['end'].max()}")
    order = {s: i for i, s in enumerate(symbols)}
    markets = sorted(zip(inside["exchange"], inside["symbol"]), key=lambda m: (order[m[1]], m[0]))
    return Selection(tuple(markets), timeframe, first, last)


def load(store, selection: Selection, as_of=None) -> dict:
    """Closed bars of every market of ``selection`` in its range: ``{(exchange, symbol): frame}``.

    Frames are indexed by bar start and hold ``open, high, low, close, volume, vwap, trades``;
    markets without closed bars in the range are left out.
    """
    frames = {}
    for exchange, symbol in selection.markets:
        bars = store.read_bars(exchange, symbol, selection.timeframe, selection.start, selection.end, as_of=as_of)
        bars = bars[bars["closed"]].drop(columns="closed")
        if len(bars):
            frames[(exchange, symbol)] = bars
    return frames


def chart_timeframe(selection: Selection, max_candles: int = MAX_CANDLES) -> str:
    """The finest timeframe, at least the stored one, giving at most ``max_candles`` bars over the range."""
    span = (selection.end - selection.start).value
    stored = timeframe_ns(selection.timeframe)
    for candidate in (selection.timeframe, *CHART_TIMEFRAMES):
        step = timeframe_ns(candidate)
        if step >= stored and step % stored == 0 and span // step + 1 <= max_candles:
            return candidate
    return CHART_TIMEFRAMES[-1]


def step(timeframe: str) -> pd.Timedelta:
    """The length of one bar of ``timeframe``."""
    return pd.Timedelta(timeframe_ns(timeframe), "ns")
