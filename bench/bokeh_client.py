"""A light Bokeh server client: many live sessions from one process, without a browser.

Each :class:`BokehSession` does what BokehJS does when a page loads: GET the page (the
server creates the session and embeds its token), open ``<app path>/ws`` with the
subprotocols ``["bokeh", token]``, wait for ``ACK``, send ``PULL-DOC-REQ``, and once the
``PULL-DOC-REPLY`` is in, announce ``document_ready`` (Panel starts a session's periodic
callbacks only then). From then on it reads every frame the server sends and counts
``PATCH-DOC`` messages and their bytes without decoding their content, so a session never
builds a backlog. Websocket pings measure the round trip through the server's event loop
and through everything already queued on that connection.

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        session = await BokehSession(http, "http://127.0.0.1:5006/").open()
        ...
        print(session.patches, session.updates, await session.ping())
        await session.close()

A Bokeh message is three text frames (header, metadata, content) then, for each of the
header's ``num_buffers``, a text buffer header and a binary payload (bokeh/protocol).
"""

import asyncio
import itertools
import json
import re
import time
from urllib.parse import urlsplit, urlunsplit

import aiohttp

_TOKEN = re.compile(r'"token"\s*:\s*"([^"]+)"')
_APP_PATH = re.compile(r"embed_items\(\s*docs_json\s*,\s*render_items\s*,\s*\"([^\"]*)\"")
_IDS = itertools.count()

# What BokehJS sends once the document is rendered: a bokeh_event "document_ready".
DOCUMENT_READY = {"events": [{"kind": "MessageSent", "msg_type": "bokeh_event",
                              "msg_data": {"type": "event", "name": "document_ready", "values": {"type": "map"}}}]}


class ProtocolError(RuntimeError):
    """The server closed the session, refused it or sent something unexpected."""


def websocket_url(page_url: str, html: str) -> str:
    """The websocket address BokehJS would compute for a page (``_get_ws_url`` in bokeh.js)."""
    parts = urlsplit(page_url)
    match = _APP_PATH.search(html)
    path = match.group(1) if match else parts.path
    path = "" if path == "/" else path.rstrip("/")
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, f"{path}/ws", parts.query, ""))


def session_token(html: str) -> str:
    """The session token a served Bokeh/Panel page embeds in its render items."""
    match = _TOKEN.search(html)
    if match is None:
        raise ProtocolError("no session token in the page (is it a Bokeh server page?)")
    return match.group(1)


class BokehSession:
    """One browser-less session of a Bokeh or Panel server page.

    Parameters
    ----------
    http : aiohttp.ClientSession
        Shared by many sessions; give it ``TCPConnector(limit=0)`` for more than 100.
    url : str
        The page, e.g. ``http://127.0.0.1:5006/chart?symbol=BTC-USDT``.
    gap : float
        ``PATCH-DOC`` messages less than ``gap`` seconds apart count as one update
        (one server tick may send several messages).

    Attributes
    ----------
    patches, patch_bytes : int
        ``PATCH-DOC`` messages received and their size (text frames in characters).
    updates : int
        Bursts of ``PATCH-DOC`` messages (see ``gap``).
    doc_bytes : int
        Size of the ``PULL-DOC-REPLY`` (the whole document).
    open_seconds : float
        From the GET to the document being in.
    error : str or None
        Why the session ended, if the server ended it or sent an ``ERROR``.
    """

    def __init__(self, http: aiohttp.ClientSession, url: str, gap: float = 0.1):
        self.http, self.url, self.gap = http, url, gap
        self.token = self.ws_url = self.error = None
        self.patches = self.patch_bytes = self.updates = self.doc_bytes = 0
        self.open_seconds = None
        self.last_patch = -1.0
        self._ws = self._reader = None
        self._waiting = {}  # msgtype or reqid -> Future
        self._pings = {}  # payload -> Future

    @property
    def closed(self) -> bool:
        return self._ws is None or self._ws.closed

    async def open(self, timeout: float = 60.0) -> "BokehSession":
        """Load the page and connect like BokehJS; returns once the document is in."""
        start = time.perf_counter()
        async with asyncio.timeout(timeout):
            async with self.http.get(self.url) as response:
                response.raise_for_status()
                html = await response.text()
            self.token, self.ws_url = session_token(html), websocket_url(self.url, html)
            self._ws = await self.http.ws_connect(self.ws_url, protocols=("bokeh", self.token), autoping=False,
                                                  max_msg_size=0)
            ack = self._expect("ACK")
            self._reader = asyncio.create_task(self._read())
            await ack
            msgid = f"c{next(_IDS)}"
            reply = self._expect(msgid)  # before sending: the reply may come before send() returns
            await self.send("PULL-DOC-REQ", msgid=msgid)
            await reply
            await self.send("PATCH-DOC", DOCUMENT_READY)
        self.open_seconds = time.perf_counter() - start
        return self

    async def send(self, msgtype: str, content=None, msgid=None) -> str:
        """Send one Bokeh message (no buffers); returns its msgid."""
        msgid = msgid or f"c{next(_IDS)}"
        for fragment in ({"msgid": msgid, "msgtype": msgtype}, {}, content or {}):
            await self._ws.send_str(json.dumps(fragment))
        return msgid

    async def ping(self, timeout: float = 30.0) -> float:
        """Round trip of a websocket ping in seconds (behind whatever the server has queued)."""
        payload = str(next(_IDS)).encode()
        future = self._pings[payload] = asyncio.get_running_loop().create_future()
        start = time.perf_counter()
        try:
            await self._ws.ping(payload)
            async with asyncio.timeout(timeout):
                await future
        finally:
            self._pings.pop(payload, None)
        return time.perf_counter() - start

    async def close(self) -> None:
        """Close the websocket as a closing browser tab does (the server keeps the session a while)."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    def _expect(self, key) -> asyncio.Future:
        future = self._waiting[key] = asyncio.get_running_loop().create_future()
        return future

    async def _read(self) -> None:
        header, left, size, content = None, 0, 0, None
        try:
            async for frame in self._ws:
                if frame.type is aiohttp.WSMsgType.PING:
                    await self._ws.pong(frame.data)
                    continue
                if frame.type is aiohttp.WSMsgType.PONG:
                    future = self._pings.get(frame.data)
                    if future is not None and not future.done():
                        future.set_result(None)
                    continue
                if frame.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    continue
                if header is None:
                    header, size, content = json.loads(frame.data), len(frame.data), None
                    left = 2 + 2 * header.get("num_buffers", 0)
                    continue
                size += len(frame.data)
                left -= 1
                if left == 2 * header.get("num_buffers", 0) and header["msgtype"] == "ERROR":
                    content = frame.data
                if left == 0:
                    self._received(header, size, content)
                    header = None
        except Exception as error:  # a broken connection ends this session only; the caller sees .error
            self.error = f"{type(error).__name__}: {error}"
        finally:
            if self.error is None and self._ws.close_code not in (None, 1000):
                self.error = f"closed by the server: {self._ws.close_code}"
            for future in [*self._waiting.values(), *self._pings.values()]:
                if not future.done():
                    future.set_exception(ProtocolError(self.error or "connection closed"))

    def _received(self, header: dict, size: int, content) -> None:
        msgtype = header["msgtype"]
        if msgtype == "PATCH-DOC":
            now = time.perf_counter()
            self.patches += 1
            self.patch_bytes += size
            if now - self.last_patch > self.gap:
                self.updates += 1
            self.last_patch = now
            return
        if msgtype == "PULL-DOC-REPLY":
            self.doc_bytes = size
        elif msgtype == "ERROR":
            self.error = f"server error: {json.loads(content).get('text') if content else '?'}"
        future = self._waiting.pop(header.get("reqid"), None) or self._waiting.pop(msgtype, None)
        if future is not None and not future.done():
            if msgtype == "ERROR":
                future.set_exception(ProtocolError(self.error))
            else:
                future.set_result(header)
