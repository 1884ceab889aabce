"""The local exchange: Binance, Kraken and Bitfinex protocols served on 127.0.0.1.

Two listening ports: websockets over TLS (``port``; cryptofeed only opens ``wss://``) and
plain HTTP for REST (``rest_port``; cryptofeed fetches symbol information with ``requests``
and default certificate checks, which a self-signed certificate would fail). Each exchange
lives under its own path prefix on both ports (``/binance``, ``/kraken``, ``/bitfinex``).
``GET /tickscope/status`` describes the server (JSON, with the certificate);
``POST /tickscope/faults`` switches faults (:meth:`Faults.update`); ``GET /news/rss`` serves
the simulator's simulated news (:mod:`.news`; 404 in replay mode).
"""

import asyncio
import concurrent.futures
import functools
import json
import logging
import threading
import time

from aiohttp import web
from cryptofeed.exchanges import EXCHANGE_MAP

from analytics.exchange.client import local_feed_class
from analytics.exchange.connection import WebSocketConnection
from analytics.exchange.faults import Faults
from analytics.exchange.news import NewsDesk, mids
from analytics.exchange.protocols import PROTOCOLS, Venue
from analytics.exchange.replay import Replay
from analytics.exchange.simulator import Simulator
from analytics.exchange.tls import Certificate
from analytics.metrics import Counters

LOG = logging.getLogger(__name__)

DEFAULT_SYMBOLS = [f"{c}-USDT" for c in ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "LTC", "DOT")]


class LocalExchange:
    """A real server on 127.0.0.1 speaking Binance spot, Kraken (v1) and Bitfinex (v2).

    Parameters
    ----------
    source : str
        ``"simulator"`` (a :class:`~analytics.exchange.market.MarketModel`) or
        ``"replay:PATH"`` (a folder of cryptofeed captures, see :mod:`.replay`).
    host : str
        Address to listen on.
    port : int
        Websocket (TLS) port; 0 picks a free one.
    symbols : list of str, optional
        Simulator only: normalized symbols, default eight coins against USDT.
    rate : float
        Simulator only: trades per second per exchange; ``float("inf")`` floods.
    speed : float
        Replay only: multiple of the recorded pace; ``float("inf")`` as fast as possible.
    seed : int, optional
        Simulator only: seed of the market model.
    faults : Faults, optional
        Fault switches (a fresh :class:`Faults` by default).
    rest_port : int, optional
        REST (HTTP) port; default ``port + 1``, or a free one when ``port`` is 0.
    keep_trades : bool
        Simulator only: keep every trade sent for :meth:`sent_trades` (off for long floods).
    news : NewsDesk, optional
        Simulator only: writes the simulated news served at ``/news/rss`` (default a new
        :class:`~analytics.exchange.news.NewsDesk` seeded with ``seed``).

    Attributes
    ----------
    exchanges : list of str
    sent : analytics.metrics.Counters
        ``(exchange, symbol, "trades" | "ticker" | "book")``: rows or messages sent;
        ``(exchange, "*", "faults")``: faults injected.
    faults : Faults
    news : NewsDesk or None
        None in replay mode.

    Examples
    --------
    >>> ex = LocalExchange(rate=20)
    >>> ex.start_in_thread()
    >>> feed = ex.feed_class("BINANCE")(symbols=ex.symbols_for("BINANCE"), channels=["trades"], callbacks=...)
    >>> ex.stop_in_thread()
    """

    def __init__(self, source="simulator", host="127.0.0.1", port=0, symbols=None, rate=50.0, speed=1.0,
                 seed=None, faults=None, rest_port=None, keep_trades=True, news=None):
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer in 0..65535, not {port!r}")
        if not rate >= 0:
            raise ValueError(f"rate must be >= 0 trades/s (inf floods), not {rate!r}")
        if not speed > 0:
            raise ValueError(f"speed must be > 0 (inf: as fast as possible), not {speed!r}")
        self.source_spec = source
        self.host, self.port = host, port
        self.rest_port = rest_port if rest_port is not None else (port + 1 if port else 0)
        self.faults = faults if faults is not None else Faults()
        self.sent = Counters()
        if source == "simulator":
            protocols = {ex: cls() for ex, cls in PROTOCOLS.items()}
            self._source = Simulator(protocols, symbols or DEFAULT_SYMBOLS, rate, seed, keep_trades)
            self.news = news if news is not None else NewsDesk(seed=seed)
        elif isinstance(source, str) and source.startswith("replay:"):
            self._source = Replay(source.split(":", 1)[1], speed)
            protocols = {ex: PROTOCOLS[ex]() for ex in self._source.exchanges}
            self.news = None
        else:
            raise ValueError(f"source must be 'simulator' or 'replay:PATH', not {source!r}")
        self.exchanges = list(protocols)
        self.venues = {ex: Venue(p, self._symbol_map(ex), self.sent, self.faults) for ex, p in protocols.items()}
        self._source.attach(self.venues)
        self.faults.targets = {"garbage": list(self.venues),
                               "skip": [ex for ex, v in self.venues.items() if v.protocol.sequenced]}
        self._certificate = Certificate()
        self._client_ssl = self._certificate.client_context()
        self._connections = set()
        self._tasks = []
        self._ws_server = self._rest_runner = None
        self._loop = self._thread = self._loop_thread_id = None

    def _symbol_map(self, exchange):
        """Normalized -> exchange symbols, parsed by cryptofeed from the served symbol info."""
        cls = EXCHANGE_MAP[exchange]
        routes = cls.rest_endpoints[0].routes.instruments
        bodies = []
        for route in [routes] if isinstance(routes, str) else routes:
            status, body = self._source.rest(exchange, route)
            if status != 200:
                raise ValueError(f"{exchange}: no symbol information for {route}")
            bodies.append(json.loads(body))
        return cls._parse_symbol_data(bodies if len(bodies) > 1 else bodies[0])[0]

    # public API
    def symbols_for(self, exchange: str) -> list:
        """Normalized symbols served on ``exchange`` (replay: the recorded configuration's)."""
        return self._source.symbols_for(self._check(exchange))

    def channels_for(self, exchange: str) -> list:
        """cryptofeed channel names served on ``exchange``."""
        return self._source.channels_for(self._check(exchange))

    @property
    def status_url(self) -> str:
        """Where :func:`analytics.exchange.attach` finds this exchange from another process."""
        return f"http://{self.host}:{self.rest_port}/tickscope/status"

    def endpoints(self, exchange: str) -> dict:
        """``{"websocket": "wss://...", "rest": "http://...", "ssl": ssl.SSLContext}``."""
        path = self.venues[self._check(exchange)].protocol.path
        if self._ws_server is None:
            raise RuntimeError("the local exchange is not started")
        return {"websocket": f"wss://{self.host}:{self.port}{path}",
                "rest": f"http://{self.host}:{self.rest_port}{path}", "ssl": self._client_ssl}

    def feed_class(self, exchange: str) -> type:
        """cryptofeed's class for ``exchange`` with its endpoints pointed here."""
        ends = self.endpoints(exchange)
        return local_feed_class(exchange, ends["websocket"], ends["rest"], ends["ssl"])

    def sent_trades(self, exchange: str):
        """Every trade sent on ``exchange``: symbol, trade_id (None on Kraken), timestamp, price, amount, side."""
        return self._source.sent_trades(self._check(exchange))

    def book(self, exchange: str, symbol: str):
        """Simulator: the book last published for ``symbol``, ``(bids, asks)`` of ``(price, size)``."""
        if not isinstance(self._source, Simulator):
            raise ValueError("book() is kept by the simulator only")
        return self._call(self._source.book, self._check(exchange), symbol)

    @property
    def finished(self) -> bool:
        """Replay: every recorded stream has been delivered. Always False for the simulator."""
        return bool(getattr(self._source, "finished", False))

    def pause(self) -> None:
        """Simulator: stop publishing; when this returns, no further trade is sent."""
        self._call(self._source.pause)

    def resume(self) -> None:
        self._call(self._source.resume)

    def status(self) -> dict:
        """What the server serves, what it has sent and the fault switches (JSON-ready)."""
        exchanges = {}
        for ex in self.exchanges:
            ends = self.endpoints(ex) if self._ws_server is not None else {}
            exchanges[ex] = {"websocket": ends.get("websocket"), "rest": ends.get("rest"),
                             "symbols": self.symbols_for(ex), "channels": self.channels_for(ex),
                             "connections": len(self.venues[ex].sessions)}
        sent = {"/".join(k): v for k, v in sorted(self.sent.snapshot().items())}
        return {"source": self.source_spec, "exchanges": exchanges, "sent": sent,
                "faults": self.faults.snapshot(), "paused": bool(getattr(self._source, "paused", False)),
                "finished": self.finished, "certificate": self._certificate.cert_pem,
                "news": f"http://{self.host}:{self.rest_port}/news/rss" if self.news is not None else None}

    # running on the caller's loop
    async def start(self) -> None:
        """Listen and start publishing on the running loop.

        Raises
        ------
        OSError
            If a port is busy, with a one-line message naming it.
        """
        loop = asyncio.get_running_loop()
        self._loop, self._loop_thread_id = loop, threading.get_ident()
        try:
            self._ws_server = await loop.create_server(self._accept, self.host, self.port,
                                                       ssl=self._certificate.server_context())
        except OSError as e:
            raise OSError(e.errno, f"cannot listen on {self.host}:{self.port} for websockets: {e.strerror}") from None
        self.port = self._ws_server.sockets[0].getsockname()[1]
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle_rest)
        self._rest_runner = web.AppRunner(app, access_log=None)
        await self._rest_runner.setup()
        try:
            site = web.TCPSite(self._rest_runner, self.host, self.rest_port)
            await site.start()
        except OSError as e:
            await self.stop()
            raise OSError(e.errno, f"cannot listen on {self.host}:{self.rest_port} for REST: {e.strerror}") from None
        self.rest_port = self._rest_runner.addresses[0][1]
        self.faults.on_drop = lambda exchange: loop.call_soon_threadsafe(self._drop, exchange)
        self.faults.on_stall = lambda seconds: loop.call_soon_threadsafe(self._stall, seconds)
        self._tasks = [loop.create_task(self._source.run(self.faults, self._drain)),
                       loop.create_task(self._housekeeping())]
        if self.news is not None:
            self._tasks.append(loop.create_task(self.news.run(functools.partial(mids, self._source.model))))
        LOG.info("local exchange (%s): %s; status http://%s:%d/tickscope/status", self.source_spec,
                 "; ".join(f"{ex} {self.endpoints(ex)['websocket']} {self.endpoints(ex)['rest']}"
                           for ex in self.exchanges), self.host, self.rest_port)

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._ws_server is not None:
            self._ws_server.close()
            for connection in list(self._connections):
                connection.abort()
            await self._ws_server.wait_closed()
        if self._rest_runner is not None:
            await self._rest_runner.cleanup()
        self.faults.on_drop = self.faults.on_stall = None

    # running in a thread of its own
    def start_in_thread(self) -> None:
        """Start on a new event loop in a daemon thread; returns once listening."""
        ready = concurrent.futures.Future()
        loop = asyncio.new_event_loop()

        def main():
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as e:
                ready.set_exception(e)
                loop.close()
                return
            ready.set_result(None)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=main, name="tickscope-exchange", daemon=True)
        self._thread.start()
        ready.result()

    def stop_in_thread(self) -> None:
        """Stop the server started by :meth:`start_in_thread` and join its thread."""
        loop = self._loop
        asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=30)

    # internals
    def _check(self, exchange):
        if exchange not in self.venues:
            raise ValueError(f"unknown exchange {exchange!r}: serving {self.exchanges}")
        return exchange

    def _call(self, fn, *args):
        """Run ``fn(*args)`` on the server's loop and return its result, whatever thread calls."""
        loop = self._loop
        if loop is None or not loop.is_running() or threading.get_ident() == self._loop_thread_id:
            return fn(*args)

        async def call():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=30)

    def _accept(self):
        return WebSocketConnection(self._route, self._connections, lambda: self.faults.stalled)

    def _route(self, connection, path):
        for venue in self.venues.values():
            prefix = venue.protocol.path
            if path == prefix or path.startswith((prefix + "/", prefix + "?")):
                return venue.open_session(connection, path)
        return None

    async def _drain(self):
        for connection in list(self._connections):
            await connection.drain()

    def _drop(self, exchange):
        for connection in list(self._connections):
            if connection.session is not None and exchange in (None, connection.session.venue.id):
                connection.session.venue.count_fault()
                connection.abort()

    def _stall(self, seconds):
        for venue in self.venues.values():
            venue.count_fault()
        self._loop.call_later(seconds + 0.01, self._release)

    def _release(self):
        if not self.faults.stalled:
            for connection in list(self._connections):
                connection.release()

    async def _housekeeping(self):
        """Heartbeats once a second, and the periodic drop fault."""
        last_drop = last_beat = time.time()
        while True:
            await asyncio.sleep(0.25)
            now = time.time()
            every = self.faults.drop_every
            if every is None or now - last_drop >= every:
                if every is not None:
                    self._drop(None)
                last_drop = now
            if now - last_beat >= 1.0:
                last_beat = now
                for venue in self.venues.values():
                    for session in list(venue.sessions):
                        session.heartbeat(now)

    async def _handle_rest(self, request):
        path = request.path
        if path == "/tickscope/status":
            return web.json_response(self.status())
        if path == "/tickscope/faults":
            if request.method == "POST":
                try:
                    self.faults.update(await request.json())
                except (ValueError, TypeError) as e:
                    return web.json_response({"error": str(e)}, status=400)
            return web.json_response(self.faults.snapshot())
        if path == "/news/rss" or path.startswith("/news/"):
            if self.news is None:
                return web.json_response({"error": "no simulated news in replay mode"}, status=404)
            return self.news.respond(request, f"http://{self.host}:{self.rest_port}")
        for venue in self.venues.values():
            prefix = venue.protocol.path
            if path.startswith(prefix + "/"):
                status, body = self._source.rest(venue.id, path[len(prefix):], request.query_string)
                return web.Response(text=body, status=status, content_type="application/json")
        return web.json_response({"error": f"nothing served at {path}"}, status=404)


async def run(source="simulator", host="127.0.0.1", port=8765, rest_port=None, symbols=None, rate=50.0,
              speed=1.0, seed=None) -> None:
    """Serve a local exchange until cancelled (``python -m analytics exchange``).

    Logs one line with the addresses. A busy port raises :class:`OSError` with a one-line
    message; bad arguments raise :class:`ValueError`.
    """
    exchange = LocalExchange(source, host, port, symbols, rate, speed, seed, rest_port=rest_port,
                             keep_trades=False)
    await exchange.start()
    try:
        while not exchange.finished:
            await asyncio.sleep(0.5)
        LOG.info("replay finished: every recorded message delivered; still serving")
        await asyncio.Event().wait()
    finally:
        await exchange.stop()
