"""One client's websocket over TLS, driven by websockets' Sans-I/O protocol.

websockets' :class:`~websockets.server.ServerProtocol` does the opening handshake, parses
the client's frames, answers pings and runs the closing handshake. Outgoing messages are
framed here (text, unmasked, no compression is ever negotiated) and written in one
transport call per batch, which is what lets the local exchange outrun cryptofeed.
"""

import asyncio
import logging
import struct
import time

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

LOG = logging.getLogger(__name__)

_HIGH_WATER = 4 << 20  # bytes buffered in the transport before writers wait (resume at half)


def encode_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame (RFC 6455, server to client) around ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class WebSocketConnection(asyncio.Protocol):
    """An asyncio protocol for one websocket client of the local exchange.

    Parameters
    ----------
    router : callable
        ``router(connection, path) -> session or None``: the exchange session serving the
        request path, or None to answer 404.
    registry : set
        Holds the connection from its TLS handshake until it is lost.
    stalled : callable
        ``stalled() -> bool``: while true, sends are held back (the stall fault).
    """

    def __init__(self, router, registry, stalled):
        self._router = router
        self._registry = registry
        self._ws = ServerProtocol(max_size=2**20)
        self._writable = asyncio.Event()
        self._writable.set()
        self._held = []
        self.transport = None
        self.session = None
        self.closed = False
        self.messages = 0  # data messages sent
        self.last_write = time.time()
        self.stalled = stalled

    # asyncio callbacks
    def connection_made(self, transport):
        self.transport = transport
        self._registry.add(self)
        transport.set_write_buffer_limits(high=_HIGH_WATER, low=_HIGH_WATER // 2)

    def data_received(self, data):
        self._ws.receive_data(data)
        for event in self._ws.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT and self.session:
                self.session.receive(event.data.decode())
        self._write_protocol_data()

    def eof_received(self):
        self._ws.receive_eof()
        self._write_protocol_data()

    def connection_lost(self, exc):
        self.closed = True
        self._writable.set()
        self._registry.discard(self)
        if self.session is not None:
            self.session.close()

    def pause_writing(self):
        self._writable.clear()

    def resume_writing(self):
        self._writable.set()

    # handshake and control frames
    def _handshake(self, request):
        session = self._router(self, request.path)
        if session is None:
            response = self._ws.reject(404, f"no exchange serves {request.path}\n")
        else:
            response = self._ws.accept(request)
        self._ws.send_response(response)
        self._write_protocol_data()
        if session is not None and self._ws.state is State.OPEN:
            self.session = session
            session.open()

    def _write_protocol_data(self):
        for data in self._ws.data_to_send():
            if data:
                self.transport.write(data)
            else:  # end of stream: TLS cannot half-close, so close
                self.transport.close()

    # sending
    @property
    def is_open(self) -> bool:
        return not self.closed and self._ws.state is State.OPEN

    def send(self, texts) -> None:
        """Send a batch of text messages (strings), in order, in one write."""
        if not texts or not self.is_open:
            return
        data = b"".join([encode_frame(t.encode()) for t in texts])
        self.messages += len(texts)
        if self._held or self.stalled():
            self._held.append(data)
            return
        self.transport.write(data)
        self.last_write = time.time()

    def release(self) -> None:
        """Write what was held back during a stall."""
        if self._held and self.is_open:
            self.transport.write(b"".join(self._held))
            self.last_write = time.time()
        self._held = []

    @property
    def backlog(self) -> int:
        """Bytes waiting: in the transport's buffer and held back by a stall."""
        if self.closed:
            return 0
        return self.transport.get_write_buffer_size() + sum(map(len, self._held))

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its high-water mark."""
        await self._writable.wait()

    def abort(self) -> None:
        """Drop the connection now, without a closing handshake."""
        if not self.closed:
            self.closed = True
            self.transport.abort()
