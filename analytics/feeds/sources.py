"""Where market data comes from: the ``--source`` switch.

``live``
    the real exchanges over the internet.
``simulator``
    the local exchange on 127.0.0.1 serving a simulated market.
``replay:PATH``
    the local exchange replaying the cryptofeed captures in folder ``PATH``.
``auto`` (the default)
    live when an exchange answers within a few seconds, else the simulator.
"""

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from cryptofeed.exchanges import Binance, Bitfinex, Kraken

LOG = logging.getLogger(__name__)

LIVE_EXCHANGES = {"BINANCE": Binance, "KRAKEN": Kraken, "BITFINEX": Bitfinex}

DEFAULT_COINS = ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "LTC", "DOT")
DEFAULT_SYMBOLS = tuple(f"{coin}-USDT" for coin in DEFAULT_COINS)

# Cheap public endpoints that answer without a key: one per exchange.
PROBE_URLS = {
    "BINANCE": "https://api.binance.com/api/v3/ping",
    "KRAKEN": "https://api.kraken.com/0/public/Time",
    "BITFINEX": "https://api-pub.bitfinex.com/v2/platform/status",
}

KINDS = ("auto", "live", "simulator", "replay")


@dataclass(frozen=True)
class Source:
    """A parsed ``--source`` value.

    Attributes
    ----------
    kind : str
        ``auto``, ``live``, ``simulator`` or ``replay``.
    path : pathlib.Path or None
        The capture folder of a replay.
    """

    kind: str
    path: Path | None = None

    @property
    def local(self) -> bool:
        """True when data comes from the local exchange."""
        return self.kind in ("simulator", "replay")

    @property
    def label(self) -> str:
        """How the UI and logs name this source; simulated and replayed data say so."""
        if self.kind == "simulator":
            return "SIMULATED market (local exchange on 127.0.0.1)"
        if self.kind == "replay":
            return f"REPLAY of recorded captures in {self.path} (local exchange on 127.0.0.1)"
        return f"{self.kind.upper()} exchanges"

    @property
    def spec(self) -> str:
        """The string the local exchange takes as its source."""
        return f"replay:{self.path}" if self.kind == "replay" else self.kind


def parse_source(text: str) -> Source:
    """Parse ``live``, ``simulator``, ``replay:PATH`` or ``auto``.

    Raises
    ------
    ValueError
        One line: an unknown kind, or a replay folder that is missing or holds no captures.
    """
    kind, _, rest = text.partition(":")
    if kind not in KINDS or (rest and kind != "replay"):
        raise ValueError(f"unknown source {text!r}: use live, simulator, replay:PATH or auto")
    if kind != "replay":
        return Source(kind)
    if not rest:
        raise ValueError("replay needs a folder of capture files: replay:PATH")
    path = Path(rest).expanduser()
    if not path.is_dir():
        raise ValueError(f"replay folder {path} does not exist")
    names = {p.name.split(".")[0] for p in path.iterdir()}
    found = sorted(names & set(LIVE_EXCHANGES))
    if not found:
        raise ValueError(f"no {', '.join(LIVE_EXCHANGES)} captures in {path}")
    return Source(kind, path.resolve())


async def probe_live(urls=None, timeout: float = 3.0) -> list[str]:
    """The exchanges whose public REST answers within ``timeout`` seconds."""
    urls = PROBE_URLS if urls is None else urls

    async def answers(session, url):
        try:
            async with session.get(url) as response:
                return response.status < 500
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False

    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        results = await asyncio.gather(*(answers(session, url) for url in urls.values()))
    return [name for name, ok in zip(urls, results) if ok]


async def resolve(source: Source, probe_urls=None, timeout: float = 3.0) -> Source:
    """Turn ``auto`` into ``live`` or ``simulator``, saying which and why."""
    if source.kind != "auto":
        return source
    up = await probe_live(probe_urls, timeout)
    if up:
        LOG.info("source auto: %s answered, using live exchanges", ", ".join(up))
        return Source("live")
    LOG.warning("source auto: no exchange answered within %.0f s, using the SIMULATED market", timeout)
    return Source("simulator")
