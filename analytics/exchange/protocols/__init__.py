"""The exchanges' public market-data wire protocols, one module per exchange.

Each speaks what cryptofeed 2.4.1 consumes: REST symbol information (and Binance depth
snapshots) plus TLS websockets for trades, best bid/ask and L2 book updates.
"""

from analytics.exchange.protocols.base import ExchangeProtocol, Listing, Session, Venue
from analytics.exchange.protocols.binance import Binance
from analytics.exchange.protocols.bitfinex import Bitfinex
from analytics.exchange.protocols.kraken import Kraken

PROTOCOLS = {cls.id: cls for cls in (Binance, Kraken, Bitfinex)}

__all__ = ["PROTOCOLS", "ExchangeProtocol", "Listing", "Session", "Venue"]
