"""cryptofeed callbacks that turn messages into plain rows for the batcher.

The per-message work is a tuple and a list append: no pandas, no locks. Prices and
sizes arrive as ``Decimal`` and leave as ``float``.
"""

import hashlib
import math

from analytics.metrics import Counters

NAN = math.nan
INT64 = 2**63


def key_hash(key: str) -> int:
    """A stable non-negative 63-bit integer for ``key`` (BLAKE2b, the same in every process)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> 1


class Callbacks:
    """Async callbacks for cryptofeed's TRADES, TICKER and L2_BOOK channels.

    Parameters
    ----------
    batcher : analytics.feeds.batcher.Batcher
        Receives the rows.
    counters : analytics.metrics.Counters
        Counts ticker and book messages per ``(exchange, channel, "messages")``; trades
        are counted by the batcher when it flushes them (give it the same counters).

    Notes
    -----
    ``trade_id`` is an int64: the exchange's own id where it is an integer (Binance,
    Bitfinex), else a 63-bit hash of it. Kraken trades carry no id: theirs is the hash
    of what the trade itself holds (exchange time in µs, price, amount, side) plus an
    ordinal among the identical trades at that same time, so the same trade gets the
    same id whenever it is received again (a restart, a replay) and storage can
    de-duplicate it.
    """

    def __init__(self, batcher, counters: Counters | None = None):
        self.batcher = batcher
        self.counters = counters if counters is not None else Counters()
        self._seen = {}  # (exchange, symbol) -> (timestamp, {(price, amount, side): count})

    def _derived_id(self, trade, timestamp: float) -> int:
        instrument = (trade.exchange, trade.symbol)
        last, counts = self._seen.get(instrument, (None, None))
        if last != timestamp:
            counts = {}
            self._seen[instrument] = (timestamp, counts)
        key = (trade.price, trade.amount, trade.side)
        ordinal = counts[key] = counts.get(key, -1) + 1
        return key_hash(f"{round(timestamp * 1e6)}:{trade.price}:{trade.amount}:{trade.side}:{ordinal}")

    async def trade(self, trade, receipt_timestamp: float) -> None:
        receipt = float(receipt_timestamp)
        timestamp = trade.timestamp or receipt
        if trade.id is None:
            trade_id = self._derived_id(trade, timestamp)
        else:
            try:
                trade_id = int(trade.id)
            except (TypeError, ValueError):
                trade_id = key_hash(str(trade.id))
            if not -INT64 <= trade_id < INT64:
                trade_id = key_hash(str(trade.id))
        self.batcher.add_trade((trade.exchange, trade.symbol, timestamp, receipt, float(trade.price),
                                float(trade.amount), trade.side, trade_id))

    async def ticker(self, ticker, receipt_timestamp: float) -> None:
        receipt = float(receipt_timestamp)
        self.batcher.add_quote((ticker.exchange, ticker.symbol, ticker.timestamp or receipt, receipt,
                                float(ticker.bid), NAN, float(ticker.ask), NAN, "ticker"))
        self.counters.add((ticker.exchange, "ticker", "messages"))

    async def book(self, book, receipt_timestamp: float) -> None:
        receipt = float(receipt_timestamp)
        timestamp = book.timestamp or receipt
        bids, asks = book.book.bids, book.book.asks
        if len(bids) and len(asks):
            bid, bid_size = bids.index(0)
            ask, ask_size = asks.index(0)
            self.batcher.add_quote((book.exchange, book.symbol, timestamp, receipt, float(bid), float(bid_size),
                                    float(ask), float(ask_size), "book"))
        self.batcher.set_book(book.exchange, book.symbol, book.book, timestamp, receipt)
        self.counters.add((book.exchange, "l2_book", "messages"))
