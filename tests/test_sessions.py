"""Served sessions release what they hold: timers, hub cursors and views go when the sessions close."""

import asyncio
import gc
import socket
import sys
from pathlib import Path

import aiohttp
import panel as pn
import pytest
from bokeh.document import Document

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))

from bokeh_client import BokehSession  # noqa: E402

from analytics.ingest import Ingest  # noqa: E402
from analytics.views import PriceBoard  # noqa: E402
from analytics.views.base import active_views  # noqa: E402
from analytics.views.chart import CandleChart  # noqa: E402
from polling import poll  # noqa: E402

# The Viewers served, one page each: every session of a page builds its own.
PAGES = {
    "/market": lambda ingest: PriceBoard(ingest=ingest),
    "/chart": lambda ingest: CandleChart(ingest=ingest, symbol="BTC-USDT", timeframe="1s"),
}
SESSIONS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def periodic_callbacks() -> int:
    """Periodic callbacks Panel holds for documents (``pn.state.add_periodic_callback``'s registry)."""
    return sum(len(callbacks) for callbacks in list(pn.state._periodic.values()))


def documents() -> int:
    """Bokeh documents alive after a full collection (each session has one)."""
    gc.collect()
    return sum(isinstance(o, Document) for o in gc.get_objects())


@pytest.fixture
async def ingest():
    ingest = Ingest(source="simulator", symbols=["BTC-USDT", "ETH-USDT"], store=False, workers=False, rate=100,
                    seed=1)
    await ingest.start()
    yield ingest
    await ingest.stop()


@pytest.fixture
async def server(ingest):
    """The pages served in a thread, closed sessions destroyed after half a second; yields (URL, bokeh Server)."""
    port = free_port()
    thread = pn.serve({path: (lambda build=build: build(ingest)) for path, build in PAGES.items()}, port=port,
                      address="127.0.0.1", websocket_origin=[f"127.0.0.1:{port}"], threaded=True, show=False,
                      verbose=False, check_unused_sessions_milliseconds=200, unused_session_lifetime_milliseconds=500)
    await poll(lambda: thread.server_id in pn.state._servers, 20, "the server starts")
    yield f"http://127.0.0.1:{port}", pn.state._servers[thread.server_id][0]
    thread.stop()


async def test_closed_sessions_release_their_timers_cursors_and_views(ingest, server):
    url, bokeh_server = server
    assert (ingest.hub.subscribers, active_views(), periodic_callbacks()) == (0, 0, 0)
    before_documents = documents()
    pages = [list(PAGES)[i % len(PAGES)] for i in range(SESSIONS)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sessions = await asyncio.gather(*(BokehSession(http, url + page).open() for page in pages))
        assert len(bokeh_server.get_sessions()) == SESSIONS
        assert active_views() == SESSIONS
        assert all(s.document.callbacks.session_callbacks for s in bokeh_server.get_sessions())  # their timers
        assert ingest.hub.subscribers > 0  # the charts follow the hub through cursors
        before = [s.updates for s in sessions]
        await poll(lambda: all(s.updates >= b + 3 for s, b in zip(sessions, before)), 15,
                   "every session receives live updates")
        assert [s.error for s in sessions] == [None] * SESSIONS
        await asyncio.gather(*(s.close() for s in sessions))
    await poll(lambda: not bokeh_server.get_sessions(), 10, "the server destroys the closed sessions")
    await poll(lambda: (ingest.hub.subscribers, active_views(), periodic_callbacks()) == (0, 0, 0), 5,
               "hub cursors, views and periodic callbacks are released")
    await poll(lambda: documents() == before_documents, 5, "nothing keeps the sessions' documents alive")
