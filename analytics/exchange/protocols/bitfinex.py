"""Bitfinex websocket v2: channel ids, array payloads and per-connection sequence numbers.

REST lists pairs in three ``/v2/conf`` lists (Bitfinex calls USDT "UST": BTC-USDT is
``tBTCUST``, DOGE-USDT ``tDOGE:UST``). After ``{"event": "conf", "flags": 65536}``
(SEQ_ALL, which cryptofeed always sends) every array message ends with the connection's
next sequence number; cryptofeed reconnects on a gap. Payloads are kept as prefixes
(``[chanId,...,``) that each session completes with its own number.
"""

import json
import logging
import time

from cryptofeed.defines import L2_BOOK, L3_BOOK, TICKER, TRADES

from analytics.exchange.protocols.base import ExchangeProtocol, Session

LOG = logging.getLogger(__name__)

SEQ_ALL = 65536
CHANNELS = {"trades": TRADES, "ticker": TICKER}
HEARTBEAT_SECONDS = 15.0


def book_channel(prec: str) -> str:
    return L3_BOOK if prec == "R0" else L2_BOOK


class BitfinexSession(Session):
    """Numbers every array message per connection and sends ``hb`` on quiet channels."""

    def __init__(self, *args):
        super().__init__(*args)
        self.sequenced = False
        self.seq = 0
        self.last_sent = {}

    def open(self):
        self.send_json({"event": "info", "version": 2, "serverId": "tickscope-local",
                        "platform": {"status": 1}})

    def receive(self, text):
        try:
            msg = json.loads(text)
            event = msg["event"]
        except (ValueError, KeyError, TypeError):
            self.send_json({"event": "error", "msg": "malformed request", "code": 10000})
            return
        if event == "conf":
            flags = int(msg.get("flags") or 0)
            self.sequenced = bool(flags & SEQ_ALL)
            self.send_json({"event": "conf", "status": "OK", "flags": flags})
        elif event == "subscribe":
            self._subscribe(msg)
        elif event == "ping":
            self.send_json({"event": "pong", "ts": int(time.time() * 1000), "cid": msg.get("cid")})
        else:
            self.send_json({"event": "error", "msg": f"unknown event {event}", "code": 10000})

    def _subscribe(self, msg):
        name = msg.get("channel")
        symbol = msg.get("symbol") or ""
        channel = book_channel(msg.get("prec", "P0")) if name == "book" else CHANNELS.get(name)
        if channel not in (TRADES, TICKER, L2_BOOK) or not self.venue.lists(symbol):
            self.send_json({"event": "error", "msg": f"subscribe: {name} {symbol} not supported",
                            "code": 10300, "channel": name, "symbol": symbol})
            return
        key = (channel, symbol)
        ack = {"event": "subscribed", "channel": name, "chanId": self.venue.channel_id(key),
               "symbol": symbol}
        if name == "book":
            ack.update(prec=msg.get("prec", "P0"), freq=msg.get("freq", "F0"), len=str(msg.get("len", 25)))
        ack["pair"] = symbol[1:]
        self.send_json(ack)
        self.subscribe(key)

    def frame(self, key, payloads):
        self.last_sent[key] = time.time()
        if not self.sequenced:
            return [p[:-1] + "]" for p in payloads]
        out = []
        faults = self.venue.faults
        for p in payloads:
            self.seq += 1
            if faults.take("skip", "BITFINEX", self.seq - 1):
                self.seq += 1
                self.venue.count_fault()
            out.append(f"{p}{self.seq}]")
        return out

    def heartbeat(self, now):
        for key in self.streams:
            if now - self.last_sent.get(key, self.opened_at) >= HEARTBEAT_SECONDS:
                self.connection.send(self.frame(key, [f'[{self.venue.channel_id(key)},"hb",']))


class Bitfinex(ExchangeProtocol):
    id = "BITFINEX"
    path = "/bitfinex"
    session_class = BitfinexSession

    def exchange_symbol(self, symbol):
        return "t" + self._pair(symbol)

    @staticmethod
    def _asset(name):
        return "UST" if name == "USDT" else name

    def _pair(self, symbol):
        base, quote = (self._asset(a) for a in symbol.split("-"))
        return base + quote if len(base) == len(quote) == 3 else f"{base}:{quote}"

    def symbol_info(self, listings):
        pairs = [self._pair(x.symbol) for x in listings]
        currencies = sorted({self._asset(a) for x in listings for a in (x.base, x.quote)})
        return {
            "/v2/conf/pub:list:pair:exchange": json.dumps([pairs]),
            "/v2/conf/pub:list:currency": json.dumps([currencies]),
            "/v2/conf/pub:list:pair:futures": json.dumps([[]]),
        }

    def trades(self, key, ids, millis, prices, amounts, sides):
        cid = self.channel_id(key)
        return [f'[{cid},"te",[{i},{ms},{"-" if s == "sell" else ""}{q},{p}],'
                for i, ms, p, q, s in zip(ids, millis, prices, amounts, sides)]

    def trades_snapshot(self, key):
        return f"[{self.channel_id(key)},[],"

    def ticker(self, key, bid, bid_size, ask, ask_size, millis, update_id):
        return f"[{self.channel_id(key)},[{bid},{bid_size},{ask},{ask_size},0,0,{bid},0,0,0],"

    def book_snapshot(self, key, bids, asks, millis):
        levels = [f"[{p},1,{s}]" for p, s in bids] + [f"[{p},1,-{s}]" for p, s in asks]
        return f"[{self.channel_id(key)},[{','.join(levels)}],"

    def book_update(self, key, bids, asks, millis, first_id, last_id):
        cid = self.channel_id(key)
        out = []
        for levels, sign in ((bids, ""), (asks, "-")):
            for p, s in levels:
                if float(s) == 0:
                    out.append(f"[{cid},[{p},0,{sign}1],")
                else:
                    out.append(f"[{cid},[{p},1,{sign}{s}],")
        return out

    def wrong_shape(self, key):
        return '{"event":"subscribed","channel":"trades"}'

    def recorded(self, messages):
        channels = {}
        out = []
        for i, text in enumerate(messages):
            msg = json.loads(text)
            if isinstance(msg, dict):
                if msg.get("event") == "subscribed":
                    name = msg["channel"]
                    channel = book_channel(msg.get("prec")) if name == "book" else CHANNELS.get(name)
                    channels[msg["chanId"]] = (channel, msg["symbol"])
                    self.channel_ids[channels[msg["chanId"]]] = msg["chanId"]
            elif msg[0] in channels:
                out.append((i, channels[msg[0]], text[: text.rindex(",") + 1]))
        return out
