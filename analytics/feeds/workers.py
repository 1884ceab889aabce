"""Feed workers: cryptofeed, its callbacks and the batcher in one process per exchange.

Parsing exchange messages is the heaviest per-message work there is, and Python runs
it on one core. A worker process per exchange takes it off the main process, whose
event loop then only sees pandas batches (pipeline, hub, storage) and, when served,
browser sessions. Workers send ``(tag, kind, batch, counters)`` messages over a pipe:
``ready`` once their feeds run (or ``error`` with a one-line reason), ``batch`` for every
DataFrame, ``done`` after the last one. A full pipe blocks the worker, never drops data.
"""

import asyncio
import gc
import logging
import multiprocessing
import pickle
import signal
import time
from dataclasses import dataclass, field

from analytics.feeds.batcher import Batcher
from analytics.feeds.handler import MarketFeed, Subscription
from analytics.metrics import Counters

LOG = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("spawn")  # no fork of a process running threads


def _send(conn, *message) -> None:
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _feed_class(status_url, exchange):
    if status_url:
        from analytics.exchange import attach

        return attach(status_url).feed_class(exchange)
    from analytics.feeds.sources import LIVE_EXCHANGES

    return LIVE_EXCHANGES[exchange]


async def _serve(conn, spec: dict) -> None:
    counters = Counters()
    batcher = Batcher(lambda kind, df: _send(conn, "batch", kind, df, counters.snapshot()),
                      interval=spec["interval"], max_rows=spec["rows"], depth=spec["depth"])
    try:
        sub = Subscription(_feed_class(spec["status_url"], spec["exchange"]), spec["symbols"], spec["channels"])
        feed = MarketFeed(batcher, [sub], depth=spec["depth"], counters=counters)
        await feed.start()
    except Exception as exc:
        _send(conn, "error", None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__, None)
        return
    gc.collect()
    gc.freeze()  # the libraries' long-lived objects: no full collection walks them again (latency)
    _send(conn, "ready", None, None, counters.snapshot())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(conn.fileno(), stop.set)  # a message or EOF from the parent: stop
    await stop.wait()
    loop.remove_reader(conn.fileno())
    await feed.stop()  # flushes the batcher: the last batches go out before "done"
    _send(conn, "done", None, None, counters.snapshot())


def _main(conn, spec: dict) -> None:
    # Ctrl-C reaches the parent, which stops us after a flush. SIGINT was blocked while we
    # were spawned (see FeedWorkers.start), so none can interrupt our imports either.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    logging.basicConfig(level=spec["log_level"], datefmt="%H:%M:%S",
                        format=f"%(asctime)s %(levelname)s feed {spec['exchange']} %(name)s: %(message)s")
    for noisy in ("feedhandler", "websockets"):
        logging.getLogger(noisy).setLevel(max(spec["log_level"], logging.WARNING))
    asyncio.run(_serve(conn, spec))
    conn.close()


@dataclass
class _Worker:
    exchange: str
    process: object
    conn: object
    last: dict = field(default_factory=dict)


class FeedWorkers:
    """:class:`~analytics.feeds.handler.MarketFeed`'s job, one process per exchange.

    Parameters
    ----------
    emit : callable
        ``emit(kind, df)``, called on the event loop with every batch; an exception is
        logged and counted in ``errors``, never raised into the reader.
    subscriptions : list of Subscription
        As for MarketFeed; each ``feed_class`` is rebuilt in its worker from its ``id``.
    status_url : str or None
        The local exchange to attach to; None for the live exchanges.
    counters : analytics.metrics.Counters
        Receives the workers' counts (messages, malformed, gaps, reconnects).
    """

    def __init__(self, emit, subscriptions: list, status_url=None, depth: int = 10, interval: float = 0.05,
                 max_rows: int = 5000, counters=None, start_timeout: float = 120.0):
        self.emit = emit
        self.specs = [{"exchange": sub.feed_class.id, "symbols": list(sub.symbols), "channels": list(sub.channels),
                       "status_url": status_url, "depth": depth, "interval": interval, "rows": max_rows,
                       "log_level": logging.getLogger().getEffectiveLevel()} for sub in subscriptions]
        self.counters = counters if counters is not None else Counters()
        self.start_timeout = start_timeout
        self.errors = 0
        self.workers: list[_Worker] = []

    async def start(self) -> None:
        """Start every worker and wait until each runs its feeds.

        Raises
        ------
        ValueError
            A worker could not start its feeds (e.g. an unknown symbol): its one-line reason.
        """
        for spec in self.specs:
            parent, child = _CONTEXT.Pipe()
            process = _CONTEXT.Process(target=_main, args=(child, spec), name=f"tickscope-feed-{spec['exchange']}",
                                       daemon=True)
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # inherited by the child
            try:
                process.start()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            child.close()
            self.workers.append(_Worker(spec["exchange"], process, parent))
        loop = asyncio.get_running_loop()
        for worker in self.workers:
            message = await self._first(worker, loop)
            if message is None or message[0] != "ready":
                reason = message[2] if message else "exited before its feeds ran"
                await self.stop()
                raise ValueError(f"{worker.exchange}: {reason}")
            self._handle(worker, message)
            loop.add_reader(worker.conn.fileno(), self._on_readable, worker)

    async def _first(self, worker: _Worker, loop):
        """The first message of ``worker``, awaited on the loop (so a cancelled start ends at once)."""
        readable = loop.create_future()
        loop.add_reader(worker.conn.fileno(), lambda: readable.done() or readable.set_result(None))
        try:
            await asyncio.wait_for(readable, self.start_timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            loop.remove_reader(worker.conn.fileno())
        return self._receive(worker, 0)

    def _receive(self, worker: _Worker, timeout: float):
        """The next message of ``worker``; None on EOF or timeout."""
        try:
            if not worker.conn.poll(timeout):
                return None
            return pickle.loads(worker.conn.recv_bytes())
        except (EOFError, OSError):
            return None

    def _handle(self, worker: _Worker, message) -> None:
        tag, kind, df, counts = message
        for key, value in (counts or {}).items():
            delta = value - worker.last.get(key, 0)
            if delta:
                self.counters.add(key, delta)
        worker.last = counts or worker.last
        if tag == "batch":
            try:
                self.emit(kind, df)
            except Exception:
                self.errors += 1
                LOG.exception("pipeline failed on a %s batch of %d rows", kind, len(df))

    def _on_readable(self, worker: _Worker) -> None:
        while True:
            try:
                if not worker.conn.poll(0):
                    return  # nothing more to read now
                message = pickle.loads(worker.conn.recv_bytes())
            except (EOFError, OSError):  # the worker closed its end
                LOG.error("feed worker %s exited (code %s): %s is no longer fed", worker.exchange,
                          worker.process.exitcode, worker.exchange)
                asyncio.get_running_loop().remove_reader(worker.conn.fileno())
                worker.conn.close()
                self.counters.add((worker.exchange, "errors", "workers"))
                return
            self._handle(worker, message)

    def _drain(self, worker: _Worker, timeout: float) -> list:
        messages, deadline = [], time.monotonic() + timeout
        while (message := self._receive(worker, max(0.0, deadline - time.monotonic()))) is not None:
            messages.append(message)
            if message[0] == "done":
                break
        return messages

    async def stop(self, timeout: float = 30.0) -> None:
        """Ask every worker to stop, then take in its last batches.

        A worker that does not confirm its last batch within ``timeout`` is logged and
        counted under ``(exchange, "errors", "workers")``.
        """
        loop = asyncio.get_running_loop()
        workers, self.workers = self.workers, []
        for worker in workers:
            if not worker.conn.closed:
                loop.remove_reader(worker.conn.fileno())
                try:
                    worker.conn.send_bytes(b"stop")
                except OSError:
                    pass
        for worker in workers:
            if not worker.conn.closed:
                messages = await asyncio.to_thread(self._drain, worker, timeout)
                for message in messages:
                    self._handle(worker, message)
                if not messages or messages[-1][0] != "done":
                    LOG.error("feed worker %s stopped without confirming its last batch", worker.exchange)
                    self.counters.add((worker.exchange, "errors", "workers"))
                worker.conn.close()
            await asyncio.to_thread(worker.process.join, 10)
            if worker.process.is_alive():
                worker.process.terminate()
