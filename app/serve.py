"""``python -m analytics serve``: one shared ingest per process, many sessions watching it."""

import asyncio
import logging
import signal

import panel as pn

from analytics.ingest import Ingest
from analytics.views import FeedHealth, PriceBoard

LOG = logging.getLogger(__name__)


def page(ingest: Ingest):
    """One session's page: what the data is, the price board and feed health."""
    simulated = ingest.source.local
    banner = pn.pane.Alert(f"**Data:** {ingest.label}", alert_type="warning" if simulated else "success",
                           sizing_mode="stretch_width")
    return pn.Column("# Tickscope", banner, PriceBoard(ingest=ingest), FeedHealth(ingest=ingest),
                     sizing_mode="stretch_width", margin=(0, 20))


def serve(source="auto", exchanges=None, symbols=None, store=None, port=5006, address="127.0.0.1", rate=50.0,
          speed=1.0, seed=None) -> int:
    """Start the feed once, then serve sessions until interrupted.

    Raises
    ------
    ValueError
        Bad source, exchange or symbol.
    OSError
        The port is busy.
    """
    ingest = Ingest(source=source, exchanges=exchanges, symbols=symbols, store=store, rate=rate, speed=speed,
                    seed=seed)
    pn.extension("tabulator")
    server = pn.serve({"/": lambda: page(ingest)}, port=port, address=address, show=False, start=False,
                      title="Tickscope", websocket_origin=[f"{address}:{port}", f"localhost:{port}"])
    loop = asyncio.get_event_loop()
    loop.run_until_complete(ingest.start())
    LOG.info("serving %s on http://%s:%d", ingest.label, address, port)
    # SIGTERM stops like Ctrl-C: the loop ends, then the ingest flushes everything to the store
    signal.signal(signal.SIGTERM, lambda *_: server.io_loop.add_callback_from_signal(server.io_loop.stop))
    try:
        server.start()
        server.io_loop.start()
    except KeyboardInterrupt:
        LOG.info("interrupted")
    finally:
        loop.run_until_complete(ingest.stop())
    return 0
