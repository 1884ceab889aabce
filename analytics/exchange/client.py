"""cryptofeed exchange classes pointed at a local exchange, in this process or another.

cryptofeed takes its endpoints from class attributes, so :func:`local_feed_class` builds a
subclass of the real exchange class (same ``id``, same parsers, same connection limits and
filters) whose websocket and REST endpoints are the local ones, with an SSL context that
trusts the local certificate. cryptofeed caches symbol information per exchange ``id`` for
the whole process; the subclass reloads it from its own server whenever another source
(live exchange, another local exchange, ``playback``) has replaced the cache.

:func:`attach` does the same for a local exchange running in another process
(``python -m analytics exchange``), from its status URL.
"""

import ssl

import requests
from cryptofeed.connection import RestEndpoint, WebsocketEndpoint
from cryptofeed.exchanges import EXCHANGE_MAP
from cryptofeed.symbols import Symbols


def local_feed_class(exchange: str, websocket: str, rest: str, ssl_context: ssl.SSLContext) -> type:
    """A subclass of cryptofeed's ``exchange`` class served at ``websocket`` and ``rest``.

    Parameters
    ----------
    exchange : str
        cryptofeed's exchange id, e.g. ``"BINANCE"``.
    websocket, rest : str
        Base addresses, e.g. ``wss://127.0.0.1:8765/binance`` and ``http://127.0.0.1:8766/binance``.
    ssl_context : ssl.SSLContext
        Passed to ``websockets.connect``; must trust the server's certificate.
    """
    base = EXCHANGE_MAP[exchange]
    websocket_endpoints = [
        WebsocketEndpoint(websocket, instrument_filter=ep.instrument_filter, channel_filter=ep.channel_filter,
                          limit=ep.limit, options={**ep.options, "ssl": ssl_context},
                          authentication=ep.authentication)
        for ep in base.websocket_endpoints
    ]
    rest_endpoints = [RestEndpoint(rest, instrument_filter=ep.instrument_filter, routes=ep.routes)
                      for ep in base.rest_endpoints]

    class LocalFeed(base):
        _loaded = None  # the cache entry this class loaded from its server

        def __init__(self, *args, **kwargs):
            type(self).symbol_mapping()
            super().__init__(*args, **kwargs)

        @classmethod
        def symbol_mapping(cls, refresh=False, headers=None):
            if not refresh and Symbols.populated(cls.id) and Symbols.data[cls.id] is cls._loaded:
                return Symbols.get(cls.id)[0]
            mapping = super().symbol_mapping(refresh=True, headers=headers)
            cls._loaded = Symbols.data[cls.id]
            return mapping

    LocalFeed.websocket_endpoints = websocket_endpoints
    LocalFeed.rest_endpoints = rest_endpoints
    LocalFeed.__name__ = LocalFeed.__qualname__ = f"Local{base.__name__}"
    return LocalFeed


class RemoteExchange:
    """A local exchange running in another process, seen through its status URL.

    Offers the client half of :class:`~analytics.exchange.server.LocalExchange`:
    ``exchanges``, :meth:`symbols_for`, :meth:`channels_for`, :meth:`endpoints`,
    :meth:`feed_class`, :meth:`status`, and fault switches via :meth:`set_faults`.
    """

    def __init__(self, status_url: str):
        self.status_url = status_url
        self._status = self.status()
        self.exchanges = list(self._status["exchanges"])
        self._ssl = ssl.create_default_context(cadata=self._status["certificate"])

    def status(self) -> dict:
        reply = requests.get(self.status_url, timeout=10)
        reply.raise_for_status()
        return reply.json()

    def symbols_for(self, exchange: str) -> list:
        return self._status["exchanges"][exchange]["symbols"]

    def channels_for(self, exchange: str) -> list:
        return self._status["exchanges"][exchange]["channels"]

    def endpoints(self, exchange: str) -> dict:
        info = self._status["exchanges"][exchange]
        return {"websocket": info["websocket"], "rest": info["rest"], "ssl": self._ssl}

    def feed_class(self, exchange: str) -> type:
        ends = self.endpoints(exchange)
        return local_feed_class(exchange, ends["websocket"], ends["rest"], ends["ssl"])

    def set_faults(self, **switches) -> dict:
        """POST fault switches (see :meth:`Faults.update`); returns the new fault state."""
        url = self.status_url.rsplit("/", 1)[0] + "/faults"
        reply = requests.post(url, json=switches, timeout=10)
        reply.raise_for_status()
        return reply.json()


def attach(status_url: str) -> RemoteExchange:
    """Connect to a local exchange in another process, e.g. ``http://127.0.0.1:8766/tickscope/status``."""
    return RemoteExchange(status_url)
