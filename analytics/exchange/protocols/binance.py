"""Binance spot: combined streams named in the URL, REST exchangeInfo and depth snapshots.

Streams: ``<symbol>@aggTrade`` (trades), ``<symbol>@bookTicker`` (ticker),
``<symbol>@depth@100ms`` (book diffs with update ids ``U``/``u`` continuing the REST
snapshot's ``lastUpdateId``), as ``{"stream": ..., "data": ...}`` envelopes.
"""

import json
import logging
import time
from urllib.parse import parse_qs, urlsplit

from cryptofeed.defines import CANDLES, L2_BOOK, TICKER, TRADES

from analytics.exchange.protocols.base import ExchangeProtocol, Session

LOG = logging.getLogger(__name__)

STREAM_CHANNELS = {"aggTrade": TRADES, "bookTicker": TICKER, "depth": L2_BOOK, "kline": CANDLES}


def stream_key(stream: str):
    """``("trades", "BTCUSDT")`` for ``"btcusdt@aggTrade"``; None for unknown streams."""
    symbol, _, name = stream.partition("@")
    channel = STREAM_CHANNELS.get(name.split("@")[0].split("_")[0])
    return None if channel is None else (channel, symbol.upper())


class BinanceSession(Session):
    """Subscribes to the streams listed in the URL (``/stream?streams=a/b/c``)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.depth_messages = 0

    def open(self):
        query = parse_qs(urlsplit(self.path).query)
        for stream in "/".join(query.get("streams", [])).split("/"):
            key = stream_key(stream)
            if key is None or not self.venue.lists(key[1]):
                LOG.warning("BINANCE: unknown stream %r requested", stream)
                continue
            self.subscribe(key)

    def frame(self, key, payloads):
        if key[0] != L2_BOOK:
            return payloads
        sent, self.depth_messages = self.depth_messages, self.depth_messages + len(payloads)
        if self.venue.faults.take("skip", "BINANCE", sent, len(payloads)):
            self.venue.count_fault()
            return payloads[1:]  # the client sees a gap in the update ids
        return payloads


class Binance(ExchangeProtocol):
    id = "BINANCE"
    path = "/binance"
    session_class = BinanceSession

    def exchange_symbol(self, symbol):
        return symbol.replace("-", "")

    def symbol_info(self, listings):
        symbols = [
            {
                "symbol": self.exchange_symbol(x.symbol),
                "status": "TRADING",
                "baseAsset": x.base,
                "baseAssetPrecision": 8,
                "quoteAsset": x.quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "MARKET"],
                "isSpotTradingAllowed": True,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": x.tick_size, "maxPrice": "1000000.00",
                     "tickSize": x.tick_size},
                    {"filterType": "LOT_SIZE", "minQty": x.step_size, "maxQty": "9000000.00",
                     "stepSize": x.step_size},
                ],
                "permissions": ["SPOT"],
            }
            for x in listings
        ]
        body = {"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [],
                "exchangeFilters": [], "symbols": symbols}
        return {"/api/v3/exchangeInfo": json.dumps(body)}

    def trades(self, key, ids, millis, prices, amounts, sides):
        symbol = key[1]
        head = f'{{"stream":"{symbol.lower()}@aggTrade","data":{{"e":"aggTrade","E":'
        return [
            f'{head}{ms},"s":"{symbol}","a":{i},"p":"{p}","q":"{q}","f":{i},"l":{i},"T":{ms},'
            f'"m":{"true" if s == "sell" else "false"},"M":true}}}}'
            for i, ms, p, q, s in zip(ids, millis, prices, amounts, sides)
        ]

    def ticker(self, key, bid, bid_size, ask, ask_size, millis, update_id):
        symbol = key[1]
        return (f'{{"stream":"{symbol.lower()}@bookTicker","data":{{"u":{update_id},"s":"{symbol}",'
                f'"b":"{bid}","B":"{bid_size}","a":"{ask}","A":"{ask_size}"}}}}')

    def book_snapshot(self, key, bids, asks, millis):
        return None  # Binance clients fetch /api/v3/depth

    def book_update(self, key, bids, asks, millis, first_id, last_id):
        symbol = key[1]
        b = ",".join(f'["{p}","{s}"]' for p, s in bids)
        a = ",".join(f'["{p}","{s}"]' for p, s in asks)
        return [f'{{"stream":"{symbol.lower()}@depth@100ms","data":{{"e":"depthUpdate","E":{millis},'
                f'"s":"{symbol}","U":{first_id},"u":{last_id},"b":[{b}],"a":[{a}]}}}}']

    def depth_reply(self, bids, asks, last_id):
        b = ",".join(f'["{p}","{s}"]' for p, s in bids)
        a = ",".join(f'["{p}","{s}"]' for p, s in asks)
        return f'{{"lastUpdateId":{last_id},"bids":[{b}],"asks":[{a}]}}'

    def wrong_shape(self, key):
        return f'{{"stream":"{key[1].lower()}@aggTrade","data":{{"e":"aggTrade","s":"{key[1]}"}}}}'

    def recorded(self, messages):
        out = []
        for i, text in enumerate(messages):
            stream = json.loads(text).get("stream") if text.startswith("{") else None
            key = stream_key(stream) if stream else None
            if key is not None:
                out.append((i, key, text))
        return out
