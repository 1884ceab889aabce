"""The normalized schema shared by feeds, pipeline, storage and views.

Every batch that flows through the pipeline is a pandas DataFrame with a RangeIndex
and the columns below, in this order. Times are timezone-naive ``datetime64[ns]`` in
UTC. Symbols use cryptofeed's normalized form (``BTC-USDT``); exchanges use
cryptofeed's ids (``BINANCE``, ``KRAKEN``, ``BITFINEX``).

Trades
    exchange, symbol, timestamp (exchange time; receipt time where the exchange
    gives none), receipt_timestamp, price, amount, side (``buy``/``sell``, the taker's
    side), trade_id (int64: the exchange's id; for Kraken, which has none, a stable
    63-bit hash of time, price, amount, side and an ordinal among identical trades).
Quotes
    exchange, symbol, timestamp, receipt_timestamp, bid, bid_size, ask, ask_size,
    source (``ticker`` or ``book``: the top of the L2 book). Ticker sizes are NaN.
Bars
    exchange, symbol, timeframe, start (bar open time), open, high, low, close,
    volume (base amount), vwap, trades (count), closed (False for the forming bar).
Depth
    exchange, symbol, timestamp, receipt_timestamp, side (``bid``/``ask``), level
    (0 = best), price, size: a snapshot of the top levels of one book.
"""

import numpy as np
import pandas as pd

TRADE_COLUMNS = {
    "exchange": object,
    "symbol": object,
    "timestamp": "datetime64[ns]",
    "receipt_timestamp": "datetime64[ns]",
    "price": np.float64,
    "amount": np.float64,
    "side": object,
    "trade_id": np.int64,
}

QUOTE_COLUMNS = {
    "exchange": object,
    "symbol": object,
    "timestamp": "datetime64[ns]",
    "receipt_timestamp": "datetime64[ns]",
    "bid": np.float64,
    "bid_size": np.float64,
    "ask": np.float64,
    "ask_size": np.float64,
    "source": object,
}

BAR_COLUMNS = {
    "exchange": object,
    "symbol": object,
    "timeframe": object,
    "start": "datetime64[ns]",
    "open": np.float64,
    "high": np.float64,
    "low": np.float64,
    "close": np.float64,
    "volume": np.float64,
    "vwap": np.float64,
    "trades": np.int64,
    "closed": bool,
}

DEPTH_COLUMNS = {
    "exchange": object,
    "symbol": object,
    "timestamp": "datetime64[ns]",
    "receipt_timestamp": "datetime64[ns]",
    "side": object,
    "level": np.int64,
    "price": np.float64,
    "size": np.float64,
}

SCHEMAS = {"trades": TRADE_COLUMNS, "quotes": QUOTE_COLUMNS, "bars": BAR_COLUMNS, "depth": DEPTH_COLUMNS}

# Bar timeframes the pipeline maintains, with their pandas frequency.
TIMEFRAMES = {"1s": "1s", "1m": "1min", "5m": "5min", "1h": "1h"}


def empty(kind: str) -> pd.DataFrame:
    """An empty batch of ``kind`` with the right columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in SCHEMAS[kind].items()})


def conform(kind: str, df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with exactly the schema's columns, in order, cast to its dtypes.

    Raises
    ------
    ValueError
        If a column of the schema is missing.
    """
    schema = SCHEMAS[kind]
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise ValueError(f"{kind} batch lacks columns {missing}")
    return df[list(schema)].astype(schema, copy=False)
