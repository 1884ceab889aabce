"""What every exchange protocol of the local exchange shares.

A *stream* is keyed ``(channel, exchange_symbol)`` with cryptofeed's channel names
(``trades``, ``ticker``, ``l2_book``, ``candles``) and the exchange's own symbol
(``BTCUSDT``, ``XBT/USDT``, ``tBTCUST``). A :class:`Venue` is one exchange on the server:
its :class:`Session` objects (one per websocket client) subscribe to streams, and a data
source (simulator or replay) publishes pre-formatted payloads to them.
"""

import json
import logging
import time
from collections import defaultdict
from typing import NamedTuple

from cryptofeed.defines import L2_BOOK, TICKER, TRADES

LOG = logging.getLogger(__name__)

# The name each channel has in the ``sent`` counters.
COUNTER_NAMES = {TRADES: "trades", TICKER: "ticker", L2_BOOK: "book"}


class Listing(NamedTuple):
    """A symbol the simulator lists: normalized name, assets and display precision."""

    symbol: str
    base: str
    quote: str
    price_decimals: int
    amount_decimals: int

    @property
    def tick_size(self) -> str:
        return f"{10.0 ** -self.price_decimals:.{self.price_decimals}f}"

    @property
    def step_size(self) -> str:
        return f"{10.0 ** -self.amount_decimals:.{self.amount_decimals}f}"


class Session:
    """One websocket client of one exchange: its subscriptions and per-connection state.

    Subclasses parse the client's messages (:meth:`receive`), greet it (:meth:`open`) and
    may rewrite payloads per connection (:meth:`frame`, e.g. Bitfinex sequence numbers).
    """

    def __init__(self, venue, connection, path: str):
        self.venue = venue
        self.connection = connection
        self.path = path
        self.streams = set()
        self.opened_at = time.time()
        self.delivered = 0  # payloads sent

    def open(self) -> None:
        """Called once the websocket handshake is done."""

    def receive(self, text: str) -> None:
        """A text message from the client."""

    def heartbeat(self, now: float) -> None:
        """Called about once a second: send keep-alives where the protocol has them."""

    def subscribe(self, key) -> None:
        self.streams.add(key)
        self.venue.subscribe(self, key)

    def frame(self, key, payloads: list) -> list:
        """The messages to send for ``payloads`` of stream ``key`` on this connection."""
        return payloads

    def deliver(self, key, payloads: list, rows: int | None = None) -> bool:
        """Send ``payloads`` of stream ``key``; count ``rows`` (default: one per payload).

        Returns False when the connection is already closed (nothing sent).
        """
        if not self.connection.is_open:
            return False
        venue = self.venue
        texts = self.frame(key, payloads)
        sent, self.delivered = self.delivered, self.delivered + len(payloads)
        if venue.faults.take("garbage", venue.id, sent, len(payloads)):
            texts = [venue.protocol.malformed(key)] + texts
            venue.count_fault()
        self.connection.send(texts)
        name = COUNTER_NAMES.get(key[0], key[0])
        venue.counters.add((venue.id, venue.std_symbol(key[1]), name), len(payloads) if rows is None else rows)
        return True

    def send_json(self, obj) -> None:
        """Send one protocol message (not a stream payload)."""
        self.connection.send([json.dumps(obj, separators=(",", ":"))])

    def close(self) -> None:
        self.venue.unsubscribe_all(self)


class Venue:
    """One exchange served by the local exchange.

    Parameters
    ----------
    protocol : ExchangeProtocol
        The wire protocol.
    symbols : dict
        Normalized symbol -> exchange symbol, as cryptofeed parses the served symbol info.
    counters, faults
        The exchange-wide :class:`~analytics.metrics.Counters` and
        :class:`~analytics.exchange.faults.Faults`.
    """

    def __init__(self, protocol, symbols: dict, counters, faults):
        self.protocol = protocol
        self.id = protocol.id
        self.symbols = dict(symbols)
        self._std = {v: k for k, v in self.symbols.items()}
        self.counters = counters
        self.faults = faults
        self.sessions = set()
        self.subscribers = defaultdict(set)
        self.source = None  # the data source: on_subscribe(session, key), rest(path)

    def std_symbol(self, exchange_symbol: str) -> str:
        return self._std.get(exchange_symbol, exchange_symbol)

    def lists(self, exchange_symbol: str) -> bool:
        """True when the exchange lists this symbol (in its own naming)."""
        return exchange_symbol in self._std

    def channel_id(self, key) -> int:
        return self.protocol.channel_id(key)

    def open_session(self, connection, path: str):
        session = self.protocol.session_class(self, connection, path)
        self.sessions.add(session)
        return session

    def subscribe(self, session, key) -> None:
        self.subscribers[key].add(session)
        if self.source is not None:
            self.source.on_subscribe(session, key)

    def unsubscribe_all(self, session) -> None:
        self.sessions.discard(session)
        for key in session.streams:
            self.subscribers[key].discard(session)
        if self.source is not None:
            self.source.on_close(session)

    def has_subscribers(self, key) -> bool:
        return bool(self.subscribers.get(key))

    def publish(self, key, payloads: list, rows: int | None = None) -> int:
        """Send ``payloads`` to every session subscribed to ``key``; returns how many got them."""
        sessions = self.subscribers.get(key)
        if not sessions or not payloads:
            return 0
        return sum(session.deliver(key, payloads, rows) for session in list(sessions))

    def count_fault(self) -> None:
        self.counters.add((self.id, "*", "faults"))


class ExchangeProtocol:
    """The wire format of one exchange (subclasses fill in every method).

    Payloads are strings ready to send, except where a session completes them per
    connection (Bitfinex leaves the sequence number and closing bracket to the session).
    Prices and amounts arrive as decimal strings.
    """

    id: str = NotImplemented
    path: str = NotImplemented  # URL prefix on both servers, e.g. "/binance"
    session_class = Session
    sequenced = True  # has sequence numbers a fault can skip
    trade_ids = True  # trades carry the exchange's id

    def __init__(self):
        self.channel_ids = {}
        self._malformed = 0

    def channel_id(self, key) -> int:
        """A stable channel id for a stream (Kraken channelID, Bitfinex chanId)."""
        if key not in self.channel_ids:
            self.channel_ids[key] = 1000 + len(self.channel_ids)
        return self.channel_ids[key]

    def exchange_symbol(self, symbol: str) -> str:
        """The exchange's name for a normalized ``BASE-QUOTE`` symbol."""
        raise NotImplementedError

    def symbol_info(self, listings: list) -> dict:
        """REST path -> JSON body of the symbol-information replies for ``listings``."""
        raise NotImplementedError

    def trades(self, key, ids, millis, prices, amounts, sides) -> list:
        """Payloads for trades of one symbol.

        ``millis`` are integer epoch milliseconds, ``sides`` the taker's ``buy``/``sell``.
        """
        raise NotImplementedError

    def ticker(self, key, bid, bid_size, ask, ask_size, millis, update_id) -> str:
        raise NotImplementedError

    def book_snapshot(self, key, bids, asks, millis):
        """A snapshot payload sent on subscription, or None where the client fetches it by REST."""
        raise NotImplementedError

    def book_update(self, key, bids, asks, millis, first_id, last_id) -> list:
        """Payloads for changed levels ``[(price, size)]``; size ``"0"`` deletes a level."""
        raise NotImplementedError

    def depth_reply(self, bids, asks, last_id) -> str:
        """The REST depth snapshot, where the exchange has one."""
        raise NotImplementedError

    def malformed(self, key) -> str:
        """A malformed frame for the fault injector: bad JSON and wrong-shaped messages in turn."""
        self._malformed += 1
        return self.wrong_shape(key) if self._malformed % 2 == 0 else '{"tickscope": "malformed'

    def wrong_shape(self, key) -> str:
        """Valid JSON that the client's parser cannot use."""
        raise NotImplementedError

    def recorded(self, messages: list) -> list:
        """``(index, key, payload)`` for the data messages among one connection's recorded ones."""
        raise NotImplementedError
