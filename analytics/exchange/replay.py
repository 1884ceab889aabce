"""Replay of cryptofeed raw-data captures as a data source of the local exchange.

A capture folder holds, per exchange, ``<EX>.0`` (the subscribed configuration and the
symbol-information replies), ``<EX>.http.*`` (other REST replies, e.g. Binance depth
snapshots) and ``<EX>.ws.<n>.<part>`` (one recorded websocket connection each), gzip'd or
not (format: ``shared/data/README.md``). REST requests get the recorded replies. Recorded
data messages are split into streams (channel, symbol); when a client subscribes to a
stream, it receives that stream's messages at ``speed`` times the recorded pace, timed from
the connection's opening as they were from the recorded one's. Clients may spread streams
over connections differently from the recording (cryptofeed's per-connection limits
changed between versions): per-connection sequence numbers are renumbered (Bitfinex).
"""

import asyncio
import gzip
import heapq
import itertools
import json
import logging
import math
import os
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

from cryptofeed.defines import L2_BOOK, TICKER, TRADES

LOG = logging.getLogger(__name__)

SUPPORTED = ("BINANCE", "KRAKEN", "BITFINEX")
SERVED_CHANNELS = (TRADES, TICKER, L2_BOOK)
_BATCH = 256  # messages sent per loop iteration when behind schedule


def _lines(path: Path):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fp:
        for line in fp:
            line = line.rstrip("\n")
            if line:
                yield line


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class _Capture:
    """The parsed files of one exchange."""

    def __init__(self):
        self.config = {}
        self.replies = defaultdict(list)  # path?query -> recorded bodies, in order
        self.connections = []  # per recorded connection: [(received_ts, connect_ts, text)]

    def read_rest(self, path: Path):
        for line in _lines(path):
            if line.startswith("configuration: "):
                self.config = json.loads(line.split(": ", 1)[1])
            elif " -> " in line:
                url, rest = line.split(" -> ", 1)
                body = rest.split(": ", 1)[1].split(" header: ")[0]
                self.replies[_path_of(url)].append(body)

    def read_ws(self, paths: list):
        messages, connected = [], None
        for path in paths:
            for line in _lines(path):
                if line.startswith("wss://"):
                    if " <-> " in line:
                        connected = float(line.rsplit(" <-> ", 1)[1])
                elif line[0].isdigit():
                    ts, text = line.split(": ", 1)
                    messages.append((float(ts), connected if connected is not None else float(ts), text))
        self.connections.append(messages)


class Replay:
    """Serves recorded captures; see the module docstring.

    Parameters
    ----------
    folder : str or Path
        A folder of capture files.
    speed : float
        Multiplier of the recorded pace; ``inf`` sends as fast as clients read.

    Raises
    ------
    ValueError
        If the folder is missing or holds no BINANCE, KRAKEN or BITFINEX capture.
    """

    def __init__(self, folder, speed: float = 1.0):
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"replay folder {folder} does not exist")
        self.speed = speed
        self._captures = {}
        groups = defaultdict(lambda: defaultdict(list))
        for path in sorted(folder.iterdir()):
            parts = path.name.removesuffix(".gz").split(".")
            if len(parts) < 2 or not parts[0].isupper():
                continue
            exchange = parts[0]
            if exchange not in SUPPORTED:
                if parts[1:] == ["0"]:
                    LOG.warning("replay: skipping %s captures in %s (not served)", exchange, folder)
                continue
            capture = self._captures.setdefault(exchange, _Capture())
            if parts[1] == "ws":
                groups[exchange][parts[2]].append(path)
            else:
                capture.read_rest(path)
        for exchange, connections in groups.items():
            for number in sorted(connections, key=int):
                paths = sorted(connections[number], key=lambda p: int(p.name.removesuffix(".gz").split(".")[3]))
                self._captures[exchange].read_ws(paths)
        self.exchanges = [ex for ex in SUPPORTED if ex in self._captures]
        if not self.exchanges:
            raise ValueError(f"no {', '.join(SUPPORTED)} captures in {folder}")
        self._served = defaultdict(int)
        self._streams = {}
        self._pending = {}
        self._feeders = {}

    def symbols_for(self, exchange: str) -> list:
        """The symbols of the recorded configuration, in order of appearance."""
        config = self._captures[exchange].config
        return list(dict.fromkeys(s for symbols in config.values() for s in symbols))

    def channels_for(self, exchange: str) -> list:
        """The recorded channels this server serves (trades, ticker, l2_book)."""
        return [c for c in self._captures[exchange].config if c in SERVED_CHANNELS]

    @property
    def finished(self) -> bool:
        """True once every recorded stream of the served channels has been delivered."""
        return bool(self._pending) and not any(self._pending.values())

    def attach(self, venues: dict) -> None:
        """Split the recordings into streams with each venue's protocol."""
        for exchange, venue in venues.items():
            venue.source = self
            streams = defaultdict(list)
            for messages in self._captures[exchange].connections:
                for i, key, payload in venue.protocol.recorded([text for _, _, text in messages]):
                    streams[key].append((messages[i][0], messages[i][1], payload))
            self._streams[exchange] = streams
            self._pending[exchange] = {k for k in streams if k[0] in self.channels_for(exchange)}

    def rest(self, exchange: str, path: str, query: str = ""):
        """``(status, body)``: the recorded replies to this request in turn, the last repeated.

        An unrecorded request gets the reply recorded for the closest request (longest common
        prefix, sharing at least the path less one character: cryptofeed renamed Bitfinex's
        ``pub:list:pair:future`` to ``...:futures``).
        """
        replies = self._captures[exchange].replies
        want = path + (f"?{query}" if query else "")
        if want not in replies:
            best = max(replies, key=lambda k: len(os.path.commonprefix([k, want])), default=None)
            if best is None or len(os.path.commonprefix([best, want])) < len(path) - 1:
                return 404, '{"error":"not recorded"}'
            want = best
        bodies = replies[want]
        served = self._served[(exchange, want)]
        self._served[(exchange, want)] += 1
        return 200, bodies[min(served, len(bodies) - 1)]

    def on_subscribe(self, session, key) -> None:
        exchange = session.venue.id
        if self.finished or key not in self._streams.get(exchange, {}):
            return
        feeder = self._feeders.get(session)
        if feeder is None:
            feeder = self._feeders[session] = _Feeder(session, self.speed, self._delivered)
        feeder.add(key, self._streams[exchange][key])

    def on_close(self, session) -> None:
        feeder = self._feeders.pop(session, None)
        if feeder is not None:
            feeder.task.cancel()

    def _delivered(self, exchange, key):
        self._pending[exchange].discard(key)

    async def run(self, faults, drain) -> None:
        """Nothing to drive: each connection's feeder runs on its own."""
        await asyncio.Event().wait()

    def sent_trades(self, exchange):
        raise ValueError("sent_trades is kept by the simulator only; compare a replay with playback()")


class _Feeder:
    """Sends one connection's subscribed recorded streams on schedule, in recorded order."""

    def __init__(self, session, speed, on_done):
        self.session = session
        self.speed = speed
        self.on_done = on_done
        self._heap = []
        self._left = {}
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    def add(self, key, messages):
        start = self.session.opened_at
        for received, connected, payload in messages:
            due = start if math.isinf(self.speed) else start + (received - connected) / self.speed
            heapq.heappush(self._heap, (due, received, next(self._order), key, payload))
        self._left[key] = self._left.get(key, 0) + len(messages)
        self._wake.set()

    async def _run(self):
        connection = self.session.connection
        while not connection.closed:
            delay = self._heap[0][0] - time.time() if self._heap else None
            if delay is None or delay > 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                continue
            now = time.time()
            for _ in range(_BATCH):
                if not self._heap or self._heap[0][0] > now:
                    break
                *_, key, payload = heapq.heappop(self._heap)
                self.session.deliver(key, [payload])
                self._left[key] -= 1
                if not self._left[key]:
                    self.on_done(self.session.venue.id, key)
            await connection.drain()
            await asyncio.sleep(0)
