"""Simulated crypto news: headlines written from the local exchange's simulated market.

:class:`Newsroom` holds the rule: from the coins' prices observed over time, it writes a headline

- when a coin has moved ``move_pct`` percent or more ("Bitcoin surges 2.1% to $66,402 as
  buyers return", "ETH slides below $3,350 amid liquidations"), and
- every ``every`` seconds about the next coin in turn, whatever it did ("Solana trades flat
  near $150.12", "$DOGE edges lower 0.31% in 4 minutes").

A move is measured from the coin's price at its last headline or ``window`` seconds ago,
whichever is later, so a move is reported once.

Direction words follow the sign of the change, their strength its size (flat under
``flat_pct``); coins are named by ticker, name or cashtag.

:class:`NewsDesk` is the live newsroom: it samples the market's prices on a slow timer (every
``sample`` seconds), and the server publishes its last ``keep`` headlines as RSS 2.0 at
``GET /news/rss`` with ETag and Last-Modified (304 when unchanged). Each item has a stable
guid, a link on the server (``/news/items/GUID``), ``<category>simulated</category>`` and a
description giving the price, the change and its start; the channel is titled "Tickscope
simulated news — not real". Last-Modified moves on by at least a second per change, so
If-Modified-Since never misses one (with ``sample`` >= 1 s it stays within a second of the clock).

:func:`news_history` runs the same rule over simulated one-minute bars (the closes of
:mod:`analytics.exchange.history`), so a store filled with simulated price history gets the
news that would have gone with it, as items of the ``simulated`` source.

A replayed market has no news desk and ``/news/rss`` answers 404: recordings carry no news,
and headlines invented for real past prices would pass fiction off as record.
"""

import asyncio
import math
import random
import time
import xml.etree.ElementTree as ET
from collections import deque
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import NamedTuple

import numpy as np
import pandas as pd
from aiohttp import web

CHANNEL_TITLE = "Tickscope simulated news — not real"
HISTORY_EVERY = 300.0  # seconds between routine headlines in a history: a week of 8 coins stays ~2,500 items
NAMES = {"BTC": ["Bitcoin"], "ETH": ["Ethereum", "Ether"], "SOL": ["Solana"], "XRP": ["XRP"],
         "ADA": ["Cardano"], "DOGE": ["Dogecoin"], "LTC": ["Litecoin"], "DOT": ["Polkadot"]}
VERBS = {(1, True): ["surges", "soars", "rallies", "jumps"],
         (1, False): ["climbs", "gains", "rises", "edges higher"],
         (-1, True): ["plunges", "tumbles", "slides", "sinks"],
         (-1, False): ["falls", "drops", "slips", "edges lower"]}
REASONS = {1: ["as buyers return", "on strong demand", "as bulls take charge", ""],
           -1: ["amid liquidations", "as sellers take control", "on risk-off mood", ""],
           0: ["in quiet trading", "as traders wait for direction", ""]}
FLAT = ["{coin} trades flat near {price}", "{coin} holds steady around {price}", "{coin} little changed at {price}"]


class Headline(NamedTuple):
    """One simulated headline: ``change`` is ``price`` over the price at ``since``, minus 1."""

    guid: str
    title: str
    summary: str
    published: float  # epoch seconds
    since: float
    coin: str
    change: float
    price: float


def _decimals(price: float) -> int:
    return 0 if price >= 1000 else 2 if price >= 1 else 4


def _money(price: float, decimals: int | None = None) -> str:
    d = _decimals(price) if decimals is None else decimals
    return f"${price:,.{d}f}"


def _percent(change: float) -> str:
    return f"{abs(change) * 100:.{1 if abs(change) >= 0.01 else 2}f}%"


def _span(seconds: float) -> str:
    if seconds < 90:
        count, unit = max(1, round(seconds)), "second"
    elif seconds < 90 * 60:
        count, unit = round(seconds / 60), "minute"
    else:
        count, unit = round(seconds / 3600), "hour"
    return f"{count} {unit}{'s' if count != 1 else ''}"


def crossed_level(ref: float, price: float):
    """``(level, decimals)`` of the round price crossed going from ``ref`` to ``price``, or None.

    Round prices are multiples of 5 at the third significant digit ($65,000, $3,350, $150, $0.515).
    """
    exponent = math.floor(math.log10(price)) - 2
    step, decimals = 5 * 10.0 ** exponent, max(0, -exponent)
    level = round((math.floor if price > ref else math.ceil)(price / step) * step, decimals)
    return (level, decimals) if min(ref, price) < level <= max(ref, price) else None


def write_title(rng: random.Random, coin: str, price: float, ref: float, seconds: float,
                flat: float, big: float) -> str:
    """A headline on ``coin`` moving from ``ref`` to ``price`` in ``seconds``; ``flat``/``big`` are fractions."""
    form = rng.choices(["name", "ticker", "cashtag"], weights=[5, 3, 2])[0]
    subject = rng.choice(NAMES.get(coin, [coin])) if form == "name" else coin if form == "ticker" else f"${coin}"
    change = price / ref - 1
    if abs(change) < flat:
        title, sign = rng.choice(FLAT).format(coin=subject, price=_money(price)), 0
    else:
        sign = 1 if change > 0 else -1
        verb = rng.choice(VERBS[(sign, abs(change) >= big)])
        forms = [f"{subject} {verb} {_percent(change)} to {_money(price)}",
                 f"{subject} {verb} {_percent(change)} in {_span(seconds)}"]
        level = crossed_level(ref, price)
        if level is not None:
            forms.append(f"{subject} {verb} {'above' if sign > 0 else 'below'} {_money(*level)}")
        title = rng.choice(forms)
    reason = rng.choice(REASONS[sign])
    return f"{title} {reason}" if reason else title


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, timezone.utc), usegmt=True)


def mids(model) -> dict:
    """Each coin's mid price on the model's first exchange."""
    return {coin: model.mid(model.exchanges[0], coin) for coin in model.coins}


class Newsroom:
    """The headline rule: writes simulated headlines from prices observed over time.

    Parameters
    ----------
    every : float
        Seconds between routine headlines (one coin each, in turn).
    window : float
        Seconds over which moves are measured.
    move_pct : float
        A move of this many percent makes a headline at once, in strong words.
    flat_pct : float
        Below this many percent a coin "trades flat".
    quote : str
        Currency of the prices.
    seed : int, optional
        Seed of the wording and of the routine's order of coins.
    edition : str, optional
        Names this run in the guids (``tickscope-sim-EDITION-N``); default the start time in
        hexadecimal milliseconds, which keeps guids distinct across restarts.
    """

    def __init__(self, every: float = 30.0, window: float = 300.0, move_pct: float = 1.0, flat_pct: float = 0.1,
                 quote: str = "USDT", seed=None, edition: str | None = None):
        for name, value in (("every", every), ("window", window), ("move_pct", move_pct), ("flat_pct", flat_pct)):
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be > 0, not {value!r}")
        if not flat_pct < move_pct:
            raise ValueError(f"flat_pct must be below move_pct ({move_pct}), not {flat_pct!r}")
        if edition is not None and (not isinstance(edition, str) or not edition):
            raise ValueError(f"edition must be a non-empty string, not {edition!r}")
        self.every, self.window, self.quote = every, window, quote
        self.move, self.flat = move_pct / 100, flat_pct / 100
        self.edition = f"{time.time_ns() // 1_000_000:x}" if edition is None else edition
        self._rng = random.Random(seed)
        self._samples = deque()  # (epoch s, {coin: price})
        self._last = {}  # coin -> time of its last headline
        self._turns, self._next_routine = [], None
        self._serial = 0

    def observe(self, now: float, prices: dict) -> list:
        """Record ``prices`` (coin -> price) at epoch ``now``; return the headlines this makes."""
        self._samples.append((now, dict(prices)))
        while self._samples[0][0] < now - self.window:
            self._samples.popleft()
        if self._next_routine is None:
            self._next_routine = now + self.every
        new = []
        for coin in prices:
            since, ref = self._reference(coin, now)
            if ref and abs(prices[coin] / ref - 1) >= self.move:
                new.append(self._write(coin, now, since, ref, prices[coin]))
        if now >= self._next_routine:
            self._next_routine = now + self.every
            coin = self._next_coin(prices, {h.coin for h in new})
            since, ref = self._reference(coin, now) if coin else (now, None)
            if ref:
                new.append(self._write(coin, now, since, ref, prices[coin]))
        return new

    def _reference(self, coin, now):
        """``(time, price)`` of ``coin`` at its last headline or ``window`` seconds ago, whichever is later."""
        start = max(now - self.window, self._last.get(coin, -math.inf))
        for t, prices in self._samples:
            if t >= start and prices.get(coin):
                return t, prices[coin]
        return start, None

    def _next_coin(self, prices, skip):
        if not self._turns:
            self._turns = sorted(prices)
            self._rng.shuffle(self._turns)
        while self._turns:
            coin = self._turns.pop()
            if coin not in skip and prices.get(coin):  # a coin without a price now loses its turn
                return coin
        return None

    def _write(self, coin, now, since, ref, price) -> Headline:
        self._last[coin] = now
        self._serial += 1
        title = write_title(self._rng, coin, price, ref, now - since, self.flat, self.move)
        name = NAMES.get(coin, [coin])[0]
        digits = _decimals(price) + 2
        summary = (f"{name} ({coin}) at {price:,.{digits}f} {self.quote}, {price / ref - 1:+.2%} from "
                   f"{ref:,.{digits}f} since {datetime.fromtimestamp(since, timezone.utc):%H:%M:%S} UTC. "
                   "Simulated by Tickscope's local exchange: not real news.")
        return Headline(f"tickscope-sim-{self.edition}-{self._serial}", title, summary, now, since, coin,
                        price / ref - 1, price)


class NewsDesk(Newsroom):
    """A :class:`Newsroom` on the local exchange: samples its prices and serves the headlines as RSS.

    Parameters
    ----------
    every, window, move_pct, flat_pct, quote, seed
        As for :class:`Newsroom`.
    sample : float
        Seconds between price samples when running on the server.
    keep : int
        Headlines kept in the feed.
    """

    def __init__(self, every: float = 30.0, window: float = 300.0, move_pct: float = 1.0, flat_pct: float = 0.1,
                 sample: float = 1.0, keep: int = 100, quote: str = "USDT", seed=None):
        super().__init__(every, window, move_pct, flat_pct, quote, seed)
        if not isinstance(sample, (int, float)) or not sample > 0:
            raise ValueError(f"sample must be > 0, not {sample!r}")
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be a positive integer, not {keep!r}")
        self.sample = sample
        self.headlines = deque(maxlen=keep)
        self._version = 0
        self.modified = math.ceil(time.time())
        self._rendered = None

    @property
    def etag(self) -> str:
        return f'"{self.edition}-{self._version}"'  # the edition distinguishes ETags across restarts

    def observe(self, now: float, prices: dict) -> list:
        """Record ``prices`` (coin -> price) at epoch ``now``; return the headlines this makes (kept in the feed)."""
        new = super().observe(now, prices)
        if new:
            self.headlines.extend(new)
            self._version += 1
            self.modified = max(math.ceil(now), self.modified + 1)  # strictly later: If-Modified-Since sees it
            self._rendered = None
        return new

    async def run(self, prices) -> None:
        """Observe ``prices()`` every ``sample`` seconds until cancelled."""
        while True:
            self.observe(time.time(), prices())
            await asyncio.sleep(self.sample)

    def rss(self, base: str) -> bytes:
        """The feed as RSS 2.0, newest first; links start with ``base`` (``http://host:port``)."""
        if self._rendered is not None and self._rendered[0] == base:
            return self._rendered[1]
        root = ET.Element("rss", version="2.0")
        channel = ET.SubElement(root, "channel")
        for tag, text in (("title", CHANNEL_TITLE), ("link", f"{base}/news/rss"),
                          ("description", "Headlines written by Tickscope's local exchange from its simulated "
                                          "market. Simulated, not real news."),
                          ("lastBuildDate", http_date(self.modified)), ("category", "simulated")):
            ET.SubElement(channel, tag).text = text
        for h in reversed(self.headlines):
            item = ET.SubElement(channel, "item")
            for tag, text in (("title", h.title), ("link", f"{base}/news/items/{h.guid}"),
                              ("description", h.summary), ("pubDate", http_date(h.published)),
                              ("category", "simulated"), ("category", h.coin)):
                ET.SubElement(item, tag).text = text
            ET.SubElement(item, "guid", isPermaLink="false").text = h.guid
        self._rendered = base, ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return self._rendered[1]

    def respond(self, request: web.Request, base: str) -> web.Response:
        """Answer ``GET /news/rss`` (conditional) and ``GET /news/items/GUID`` (the headline as text)."""
        if request.method not in ("GET", "HEAD"):
            return web.json_response({"error": f"{request.method} not allowed"}, status=405)
        if request.path == "/news/rss":
            headers = {"ETag": self.etag, "Last-Modified": http_date(self.modified), "Cache-Control": "no-cache"}
            if _unchanged(request.headers, self.etag, self.modified):
                return web.Response(status=304, headers=headers)
            return web.Response(body=self.rss(base), headers=headers, content_type="application/rss+xml",
                                charset="utf-8")
        guid = request.path.removeprefix("/news/items/")
        for h in self.headlines:
            if h.guid == guid:
                return web.Response(text=f"{h.title}\n\n{h.summary}\n")
        return web.json_response({"error": f"no simulated headline at {request.path}"}, status=404)


def _closes(bars_by_coin) -> pd.DataFrame:
    """Each coin's closes (a column) by the epoch second its one-minute bar closes (the index), sorted."""
    if not isinstance(bars_by_coin, dict) or not bars_by_coin:
        raise ValueError(f"bars_by_coin must be a non-empty dict of coin -> 1m bars, not {bars_by_coin!r}")
    columns = {}
    for coin, bars in bars_by_coin.items():
        if not isinstance(bars, pd.DataFrame) or "close" not in bars or not isinstance(bars.index, pd.DatetimeIndex):
            raise ValueError(f"the bars of {coin!r} must be a DataFrame with a close column indexed by bar start")
        if not bars.index.is_unique or bars.index.tz is not None:
            raise ValueError(f"the bars of {coin!r} must have distinct starts in UTC without a time zone")
        columns[coin] = bars["close"].astype(np.float64)
    closes = pd.DataFrame(columns).sort_index()
    closes.index = closes.index.as_unit("ns").asi8 / 1e9 + 60.0
    return closes


def news_history(bars_by_coin: dict, every: float = HISTORY_EVERY, window: float = 300.0, move_pct: float = 1.0,
                 flat_pct: float = 0.1, seed=None, base: str = "http://127.0.0.1") -> list:
    """The headlines a :class:`Newsroom` would have written on simulated one-minute bars, as news items.

    The newsroom observes every coin's close when its bar closes (one sample a minute, where the
    live desk samples every second): a move of ``move_pct`` percent since the coin's last headline
    (or ``window`` seconds before, whichever is later) makes a headline at that close, and every
    ``every`` seconds the next coin in turn gets a routine one. Pure: the same bars and seed give
    the same items.

    Parameters
    ----------
    bars_by_coin : dict
        Coin code (``"BTC"``) -> its one-minute bars: a DataFrame with a ``close`` column indexed
        by bar start (UTC without a time zone). A coin without a bar at some minute is not
        observed then.
    every, window, move_pct, flat_pct
        As for :class:`Newsroom`; ``every`` defaults to five minutes (the live desk's 30 s would
        write some 20,000 routine headlines a week).
    seed : int, optional
        Seed of the wording and of the routine's order of coins.
    base : str
        Start of the items' links (``BASE/news/items/GUID``, as the local exchange's feed links them).

    Returns
    -------
    list of analytics.sentiment.sources.Item
        In publication order, source ``"simulated"``; ``published`` (and ``fetched``) a bar's close
        time. Ids ``tickscope-sim-history-FIRST-N`` (FIRST: the first close in hexadecimal
        epoch seconds, N counting from 1) never meet the live desk's (``tickscope-sim-MS-N``).

    Raises
    ------
    ValueError
        For bars that are not as described, or the newsroom's bad numbers.
    """
    from analytics.sentiment.sources import SIMULATED, Item  # here: the exchange server does not load nltk

    if not isinstance(base, str) or not base.startswith(("http://", "https://")):
        raise ValueError(f"base must be an http(s) address, not {base!r}")
    closes = _closes(bars_by_coin)
    first = int(closes.index[0]) if len(closes) else 0
    room = Newsroom(every, window, move_pct, flat_pct, seed=seed, edition=f"history-{first:x}")
    coins, headlines = list(closes.columns), []
    for now, row in zip(closes.index.tolist(), closes.to_numpy().tolist()):  # a NaN close: no bar that minute
        headlines += room.observe(now, {coin: price for coin, price in zip(coins, row) if price == price})
    items = []
    for h in headlines:
        published = pd.Timestamp(h.published, unit="s")
        items.append(Item(SIMULATED, h.guid, f"{base}/news/items/{h.guid}", h.title, h.summary, published, published))
    return items


def _unchanged(headers, etag: str, modified: int) -> bool:
    """Whether a conditional GET's validators still hold (If-None-Match wins over If-Modified-Since)."""
    tags = headers.get("If-None-Match")
    if tags is not None:
        return any(t.strip().removeprefix("W/") in (etag, "*") for t in tags.split(","))
    since = headers.get("If-Modified-Since")
    try:
        since = parsedate_to_datetime(since) if since is not None else None
    except (TypeError, ValueError):
        return False
    return since is not None and modified <= since.replace(tzinfo=since.tzinfo or timezone.utc).timestamp()
