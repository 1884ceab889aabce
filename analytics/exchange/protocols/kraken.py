"""Kraken websocket API v1: subscribe messages, array payloads ending with channel name and pair.

REST ``/0/public/AssetPairs`` lists pairs by ``wsname`` (``XBT/USDT``: Kraken calls
bitcoin XBT and dogecoin XDG). Payloads: ``[channelID, data, channelName, pair]``; books
send a snapshot (``as``/``bs``) on subscription, then ``a``/``b`` updates. The server
sends ``heartbeat`` events when a connection has been quiet for a second.
"""

import json
import logging

from cryptofeed.defines import CANDLES, L2_BOOK, TICKER, TRADES

from analytics.exchange.protocols.base import ExchangeProtocol, Session

LOG = logging.getLogger(__name__)

CHANNELS = {"trade": TRADES, "ticker": TICKER, "book": L2_BOOK, "ohlc": CANDLES}
ASSET_NAMES = {"BTC": "XBT", "DOGE": "XDG"}
BOOK_CHANNEL = "book-1000"


def seconds(ms: int) -> str:
    """Kraken's time format, from integer epoch milliseconds."""
    return f"{ms // 1000}.{ms % 1000:03d}000"


class KrakenSession(Session):
    """Greets with ``systemStatus`` and acknowledges each subscribed pair."""

    def open(self):
        self.send_json({"connectionID": id(self), "event": "systemStatus", "status": "online",
                        "version": "1.9.0"})

    def receive(self, text):
        try:
            msg = json.loads(text)
            event = msg["event"]
        except (ValueError, KeyError, TypeError):
            self.send_json({"errorMessage": "Malformed request", "event": "error"})
            return
        if event == "ping":
            self.send_json({"event": "pong", "reqid": msg.get("reqid")})
        elif event == "subscribe":
            self._subscribe(msg)
        else:
            self.send_json({"errorMessage": f"Unsupported event {event}", "event": "error"})

    def _subscribe(self, msg):
        subscription = msg.get("subscription") or {}
        name = subscription.get("name")
        channel = CHANNELS.get(name)
        for pair in msg.get("pair") or []:
            if channel is None or not self.venue.lists(pair):
                self.send_json({"errorMessage": f"Subscription not supported {name} {pair}",
                                "event": "subscriptionStatus", "pair": pair, "status": "error",
                                "subscription": subscription})
                continue
            key = (channel, pair)
            channel_name = name
            if channel == L2_BOOK:
                channel_name = f"book-{subscription.get('depth', 10)}"
            elif channel == CANDLES:
                channel_name = f"ohlc-{subscription.get('interval', 1)}"
            self.send_json({"channelID": self.venue.channel_id(key), "channelName": channel_name,
                            "event": "subscriptionStatus", "pair": pair, "status": "subscribed",
                            "subscription": subscription})
            self.subscribe(key)

    def heartbeat(self, now):
        if now - self.connection.last_write >= 1.0:
            self.send_json({"event": "heartbeat"})


class Kraken(ExchangeProtocol):
    id = "KRAKEN"
    path = "/kraken"
    session_class = KrakenSession
    sequenced = False
    trade_ids = False

    def exchange_symbol(self, symbol):
        base, quote = symbol.split("-")
        return f"{ASSET_NAMES.get(base, base)}/{ASSET_NAMES.get(quote, quote)}"

    def symbol_info(self, listings):
        result = {}
        for x in listings:
            wsname = self.exchange_symbol(x.symbol)
            base, quote = wsname.split("/")
            result[base + quote] = {
                "altname": base + quote, "wsname": wsname, "aclass_base": "currency", "base": base,
                "aclass_quote": "currency", "quote": quote, "lot": "unit",
                "pair_decimals": x.price_decimals, "lot_decimals": x.amount_decimals,
                "lot_multiplier": 1, "leverage_buy": [], "leverage_sell": [],
                "fees": [[0, 0.26]], "fees_maker": [[0, 0.16]], "fee_volume_currency": "ZUSD",
                "margin_call": 80, "margin_stop": 40, "ordermin": x.step_size,
            }
        return {"/0/public/AssetPairs": json.dumps({"error": [], "result": result})}

    def trades(self, key, ids, millis, prices, amounts, sides):
        rows = ",".join(
            f'["{p}","{q}","{seconds(ms)}","{"b" if s == "buy" else "s"}","l",""]'
            for ms, p, q, s in zip(millis, prices, amounts, sides)
        )
        return [f'[{self.channel_id(key)},[{rows}],"trade","{key[1]}"]']

    def ticker(self, key, bid, bid_size, ask, ask_size, millis, update_id):
        return (f'[{self.channel_id(key)},{{"a":["{ask}",{int(float(ask_size))},"{ask_size}"],'
                f'"b":["{bid}",{int(float(bid_size))},"{bid_size}"]}},"ticker","{key[1]}"]')

    def book_snapshot(self, key, bids, asks, millis):
        t = seconds(millis)
        a = ",".join(f'["{p}","{s}","{t}"]' for p, s in asks)
        b = ",".join(f'["{p}","{s}","{t}"]' for p, s in bids)
        return f'[{self.channel_id(key)},{{"as":[{a}],"bs":[{b}]}},"{BOOK_CHANNEL}","{key[1]}"]'

    def book_update(self, key, bids, asks, millis, first_id, last_id):
        t = seconds(millis)
        parts = []
        if asks:
            parts.append('{"a":[' + ",".join(f'["{p}","{s}","{t}"]' for p, s in asks) + "]}")
        if bids:
            parts.append('{"b":[' + ",".join(f'["{p}","{s}","{t}"]' for p, s in bids) + "]}")
        return [f'[{self.channel_id(key)},{",".join(parts)},"{BOOK_CHANNEL}","{key[1]}"]'] if parts else []

    def wrong_shape(self, key):
        return f'[0,{{}},"ticker","{key[1]}"]'

    def recorded(self, messages):
        out = []
        for i, text in enumerate(messages):
            if not text.startswith("["):
                continue  # events: the server makes its own
            msg = json.loads(text)
            channel = CHANNELS.get(str(msg[-2]).split("-")[0])
            if channel is not None:
                out.append((i, (channel, msg[-1]), text))
        return out
