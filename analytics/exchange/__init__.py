"""A local exchange on 127.0.0.1 speaking Binance spot, Kraken and Bitfinex market-data protocols.

Fed by a simulated market (:mod:`analytics.exchange.market`) or by replayed cryptofeed
captures (:mod:`analytics.exchange.replay`), it serves exactly what cryptofeed 2.4.1 reads:
REST symbol information and depth snapshots over HTTP, trades, best bid/ask and L2 books
over TLS websockets with a certificate made at start. Importing starts nothing.

>>> from analytics.exchange import LocalExchange
>>> exchange = LocalExchange(rate=20)
>>> exchange.start_in_thread()
>>> Feed = exchange.feed_class("KRAKEN")   # cryptofeed's Kraken, pointed at 127.0.0.1
"""

from analytics.exchange.client import RemoteExchange, attach, local_feed_class
from analytics.exchange.faults import Faults
from analytics.exchange.server import LocalExchange, run

__all__ = ["Faults", "LocalExchange", "RemoteExchange", "attach", "local_feed_class", "run"]
