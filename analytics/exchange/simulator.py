"""The simulated market as a data source of the local exchange.

:class:`Simulator` advances :class:`~analytics.exchange.market.MarketModel` on the wall
clock and turns its trades and books into each exchange's messages: trades as they happen,
book diffs and best bid/ask every ``BOOK_INTERVAL`` seconds. Only streams with a subscriber
are formatted, and only trades written to a subscriber are kept for :meth:`sent_trades`.
With ``rate=inf`` it floods: batches of trades as fast as the slowest client drains them.
"""

import asyncio
import math
import time
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
from cryptofeed.defines import L2_BOOK, TICKER, TRADES

from analytics.exchange.market import COIN_SPECS, MarketModel
from analytics.exchange.protocols import Listing

BOOK_INTERVAL = 0.1  # seconds between book diffs and tickers (Binance depth@100ms)
BOOK_DEPTH = 20  # levels per side
TICK_INTERVAL = 0.02  # seconds between trade batches at finite rates
FLOOD_BATCH = 5000  # trades per exchange per batch when flooding
FLOOD_INTERVAL = 0.01  # the model's time step: batches come at most this often
TRADE_COLUMNS = ["symbol", "trade_id", "timestamp", "price", "amount", "side"]


def _decimals(step: float) -> int:
    return max(0, round(-math.log10(step)))


def listing(symbol: str) -> Listing:
    """The listing of a normalized ``COIN-QUOTE`` symbol, with the model's tick and lot."""
    base, _, quote = symbol.partition("-")
    if base not in COIN_SPECS or not quote or "-" in quote:
        raise ValueError(f"cannot simulate {symbol!r}: use COIN-QUOTE with a coin from {sorted(COIN_SPECS)}")
    spec = COIN_SPECS[base]
    return Listing(symbol, base, quote, _decimals(spec.tick), _decimals(spec.lot))


class _Book:
    """The levels one exchange has published for one symbol, as decimal strings."""

    def __init__(self):
        self.bids, self.asks = {}, {}
        self.update_id = 1_000_000
        self.top = None

    def sorted(self, limit=None):
        bids = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))[:limit]
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))[:limit]
        return bids, asks


class Simulator:
    """Feeds venues from a :class:`MarketModel`.

    Parameters
    ----------
    protocols : dict
        Exchange id -> :class:`~analytics.exchange.protocols.ExchangeProtocol`.
    symbols : list of str
        Normalized ``COIN-QUOTE`` symbols served on every exchange, distinct coins.
    rate : float
        Trades per second per exchange; ``inf`` floods.
    seed : int, optional
        Seed of the market model.
    keep_trades : bool
        Keep every trade sent, for :meth:`sent_trades` (turn off for long floods).
    """

    def __init__(self, protocols, symbols, rate=50.0, seed=None, keep_trades=True):
        listings = [listing(s) for s in symbols]
        self.listings = {x.base: x for x in listings}
        if len(self.listings) != len(listings):
            raise ValueError(f"symbols must have distinct coins, got {list(symbols)}")
        self.protocols = protocols
        self.exchanges = list(protocols)
        self.model = MarketModel(list(self.listings), self.exchanges, seed=seed, trade_rate=rate)
        self.keep_trades = keep_trades
        self.paused = False
        self.venues = {}
        self._ids = {ex: int(time.time() * 1000) * 1000 for ex in protocols}  # unique across restarts
        self._kept = {ex: [] for ex in protocols}
        self._books = {(ex, coin): _Book() for ex in protocols for coin in self.listings}
        self._last_books = 0.0

    def symbols_for(self, exchange: str) -> list:
        return [x.symbol for x in self.listings.values()]

    def channels_for(self, exchange: str) -> list:
        return [TRADES, TICKER, L2_BOOK]

    def attach(self, venues: dict) -> None:
        """Start serving ``venues`` (exchange id -> Venue): publish the first books."""
        self.venues = venues
        for venue in venues.values():
            venue.source = self
        self._publish_books(time.time())

    @property
    def flood(self) -> bool:
        return math.isinf(self.model.trade_rate)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.model.trades(time.time(), max_trades=0)  # what happened while paused is never sent
        self.paused = False

    async def run(self, faults, drain) -> None:
        """Publish until cancelled; ``drain()`` waits until every client has room."""
        while True:
            if self.paused or self.flood and (faults.stalled or not self._trade_subscribers()):
                await asyncio.sleep(TICK_INTERVAL)
                continue
            start = time.time()
            self.step(start)
            await drain()
            pause = TICK_INTERVAL if not self.flood else FLOOD_INTERVAL - (time.time() - start)
            await asyncio.sleep(max(0.0, pause))

    def _trade_subscribers(self) -> bool:
        return any(venue.has_subscribers((TRADES, symbol)) for venue in self.venues.values()
                   for symbol in venue.symbols.values())

    def step(self, now: float) -> None:
        """Advance the model to ``now`` and publish what happened."""
        max_trades = FLOOD_BATCH * len(self.venues) if self.flood else None
        self._publish_trades(self.model.trades(now, max_trades=max_trades))
        if now - self._last_books >= BOOK_INTERVAL:
            self._publish_books(now)

    def _publish_trades(self, df: pd.DataFrame) -> None:
        if df.empty:
            return
        ts = df["timestamp"].to_numpy()
        price = df["price"].to_numpy()
        amount = df["amount"].to_numpy()
        side = df["side"].to_numpy()
        for (exchange, coin), rows in df.groupby(["exchange", "coin"], sort=False).indices.items():
            venue, spec = self.venues[exchange], self.listings[coin]
            key = (TRADES, venue.symbols[spec.symbol])
            if not venue.has_subscribers(key):
                continue
            n = len(rows)
            first = self._ids[exchange]
            self._ids[exchange] += n
            millis = (ts[rows] * 1000).astype(np.int64)
            prices = [f"{p:.{spec.price_decimals}f}" for p in price[rows].tolist()]
            amounts = [f"{q:.{spec.amount_decimals}f}" for q in amount[rows].tolist()]
            sides = side[rows].tolist()
            payloads = venue.protocol.trades(key, range(first, first + n), millis.tolist(), prices, amounts, sides)
            if venue.publish(key, payloads, rows=n) and self.keep_trades:
                ids = np.arange(first, first + n).astype(str).astype(object) if venue.protocol.trade_ids else None
                self._kept[exchange].append({
                    "symbol": spec.symbol, "trade_id": ids, "timestamp": millis / 1000.0,
                    "price": np.array(prices, dtype=np.float64), "amount": np.array(amounts, dtype=np.float64),
                    "side": sides,
                })

    def _publish_books(self, now: float) -> None:
        self._last_books = now
        millis = int(now * 1000)
        for (exchange, coin), book in self._books.items():
            venue, spec = self.venues[exchange], self.listings[coin]
            symbol = venue.symbols[spec.symbol]
            bids, asks = self.model.book(exchange, coin, BOOK_DEPTH)
            zero = f"{0:.{spec.amount_decimals}f}"
            changes = []
            for levels, published in ((bids, book.bids), (asks, book.asks)):
                new = {}
                for p, q in levels:
                    new[f"{p:.{spec.price_decimals}f}"] = f"{q:.{spec.amount_decimals}f}"
                diff = [(p, q) for p, q in new.items() if published.get(p) != q]
                diff += [(p, zero) for p in published if p not in new]
                published.clear()
                published.update(new)
                changes.append(diff)
            count = len(changes[0]) + len(changes[1])
            if count:
                first, book.update_id = book.update_id + 1, book.update_id + count
                key = (L2_BOOK, symbol)
                if venue.has_subscribers(key):
                    payloads = venue.protocol.book_update(key, changes[0], changes[1], millis, first, book.update_id)
                    venue.publish(key, payloads)
            (best_bid,), (best_ask,) = book.sorted(1)
            top = (*best_bid, *best_ask)
            if top != book.top:
                book.top = top
                key = (TICKER, symbol)
                if venue.has_subscribers(key):
                    venue.publish(key, [venue.protocol.ticker(key, *top, millis, book.update_id)])

    # data-source interface used by the server
    def on_subscribe(self, session, key) -> None:
        """Send what a new subscriber gets first: book snapshot, current ticker."""
        venue = session.venue
        protocol = venue.protocol
        book = self._books[(venue.id, venue.std_symbol(key[1]).split("-")[0])]
        millis = int(time.time() * 1000)
        if key[0] == TRADES and hasattr(protocol, "trades_snapshot"):
            session.deliver(key, [protocol.trades_snapshot(key)], rows=0)
        elif key[0] == L2_BOOK:
            snapshot = protocol.book_snapshot(key, *book.sorted(), millis)
            if snapshot is not None:
                session.deliver(key, [snapshot])
        elif key[0] == TICKER and venue.id != "BINANCE" and book.top is not None:
            session.deliver(key, [protocol.ticker(key, *book.top, millis, book.update_id)])

    def on_close(self, session) -> None:
        """Nothing to clean up: subscribers are the venue's."""

    def rest(self, exchange: str, path: str, query: str = ""):
        """``(status, body)`` for a REST request to ``exchange``."""
        info = self.protocols[exchange].symbol_info(list(self.listings.values()))
        if path in info:
            return 200, info[path]
        venue = self.venues.get(exchange)
        if venue is not None and exchange == "BINANCE" and path == "/api/v3/depth":
            query = {k: v[-1] for k, v in parse_qs(query).items()}
            std = venue.std_symbol(query.get("symbol", ""))
            if std not in venue.symbols or std.split("-")[0] not in self.listings:
                return 400, '{"code":-1121,"msg":"Invalid symbol."}'
            book = self._books[(exchange, std.split("-")[0])]
            limit = int(query.get("limit") or 100)
            return 200, venue.protocol.depth_reply(*book.sorted(limit), book.update_id)
        return 404, '{"error":"not found"}'

    def book(self, exchange: str, symbol: str):
        """The levels last published for ``symbol``: ``(bids, asks)`` of ``(price, size)`` floats."""
        venue = self.venues[exchange]
        if symbol not in venue.symbols or symbol.split("-")[0] not in self.listings:
            raise ValueError(f"{exchange} does not list {symbol}")
        bids, asks = self._books[(exchange, symbol.split("-")[0])].sorted()
        return ([(float(p), float(q)) for p, q in bids], [(float(p), float(q)) for p, q in asks])

    def sent_trades(self, exchange: str) -> pd.DataFrame:
        """Every trade sent on ``exchange`` (to at least one subscriber), in order."""
        chunks = list(self._kept[exchange])
        if not chunks:
            return pd.DataFrame({c: pd.Series(dtype=object if c in ("symbol", "trade_id", "side") else float)
                                 for c in TRADE_COLUMNS})
        frames = [pd.DataFrame(c, columns=TRADE_COLUMNS) for c in chunks]
        return pd.concat(frames, ignore_index=True)
