"""Polling sources on a schedule on the running event loop, passing on only new items.

One asyncio task per source (no threads, no blocking sleeps): fetch, hand the items not yet
seen to ``on_items``, wait ``interval`` seconds (jittered), repeat. A source that fails
(a problem reported and no items) waits twice as long each time, up to ``max_backoff``
intervals, and is back to ``interval`` after its first good fetch. De-duplication is by
:attr:`Item.id` against ``seen``: pass a persisted set to carry it across restarts.
"""

import asyncio
import inspect
import logging
import random
from collections import OrderedDict
from collections.abc import MutableSet
from dataclasses import asdict, dataclass

import aiohttp

from analytics.sentiment.sources import now_utc

LOG = logging.getLogger(__name__)


class SeenIds(MutableSet):
    """A bounded, insertion-ordered set of item ids: past ``limit``, the oldest are forgotten.

    ``limit`` must exceed the number of items all sources show at once (a few hundred for
    the default feeds), or forgotten ids come back as new.

    Raises
    ------
    ValueError
        If ``limit`` is not a positive integer.
    """

    def __init__(self, ids=(), limit: int = 100_000):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, not {limit!r}")
        self.limit = limit
        self._ids = OrderedDict()
        for i in ids:
            self.add(i)

    def __contains__(self, item_id) -> bool:
        return item_id in self._ids

    def __iter__(self):
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self):
        return f"SeenIds({len(self)} ids, limit={self.limit})"

    def add(self, item_id) -> None:
        if item_id not in self._ids:
            self._ids[item_id] = None
            if len(self._ids) > self.limit:
                self._ids.popitem(last=False)

    def discard(self, item_id) -> None:
        self._ids.pop(item_id, None)


@dataclass
class _Tally:
    items: int = 0
    new: int = 0
    faults: int = 0  # exceptions of fetch or on_items (the source counts its own problems)
    last_error: str = ""
    last_fetch: object = None
    delay: float = 0.0


class Poller:
    """Fetch every source every ``interval`` seconds and pass new items to ``on_items``.

    Parameters
    ----------
    sources : list
        Objects with ``name``, ``errors``, ``last_error``, ``not_modified`` and ``async
        fetch(session)`` (see :mod:`analytics.sentiment.sources`); names must be distinct.
    on_items : callable
        ``on_items(items)``, plain or async, with a non-empty list of new items. If it raises,
        the items stay unseen and come again on the next fetch.
    interval : float
        Seconds between fetches of one source.
    seen : set-like, optional
        Ids already handled (``in`` and ``add``); default a fresh :class:`SeenIds`.
    jitter : float
        Each wait is ``interval`` times a uniform factor in ``1 +- jitter``.
    max_backoff : float
        A failing source waits at most this many intervals.

    Raises
    ------
    ValueError
        For no sources, duplicate names, a non-callable ``on_items`` or bad numbers.
    """

    def __init__(self, sources, on_items, interval: float = 60.0, seen=None, *, jitter: float = 0.1,
                 max_backoff: float = 10.0):
        self.sources = list(sources)
        names = [s.name for s in self.sources]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"sources must be one or more with distinct names, not {names}")
        if not callable(on_items):
            raise ValueError(f"on_items must be callable, not {on_items!r}")
        if not isinstance(interval, (int, float)) or not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, not {interval!r}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), not {jitter!r}")
        if not max_backoff >= 1:
            raise ValueError(f"max_backoff must be >= 1 interval, not {max_backoff!r}")
        self.on_items, self.interval, self.jitter, self.max_backoff = on_items, float(interval), jitter, max_backoff
        self.seen = SeenIds() if seen is None else seen
        self._tally = {name: _Tally(delay=self.interval) for name in names}
        self._tasks, self._session = [], None
        self._rng = random.Random()
        self._logged = set()

    async def start(self) -> None:
        """Start one polling task per source on the running loop; the first fetches begin at once."""
        if self._tasks:
            raise RuntimeError("the poller is already running")
        self._session = aiohttp.ClientSession()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(s), name=f"poll {s.name}") for s in self.sources]

    async def stop(self) -> None:
        """Cancel the polling tasks and close the HTTP session."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    def stats(self) -> dict:
        """Per source name: ``items`` fetched, ``new`` passed on, ``errors``, ``last_error``,
        ``last_fetch`` (UTC-naive Timestamp or None), ``not_modified`` (304s) and the current
        ``delay`` before jitter (grows while the source fails)."""
        out = {}
        for source in self.sources:
            tally = asdict(self._tally[source.name])
            faults = tally.pop("faults")
            out[source.name] = {**tally, "errors": source.errors + faults, "not_modified": source.not_modified,
                                "last_error": tally["last_error"] or source.last_error}
        return out

    async def poll(self, source) -> bool:
        """Fetch ``source`` once and pass on its new items; True when the fetch failed."""
        tally = self._tally[source.name]
        errors = source.errors
        try:
            items = await source.fetch(self._session)
            tally.items += len(items)
            new = self._unseen(items)
            if new:
                result = self.on_items(new)
                if inspect.isawaitable(result):
                    await result
                for item in new:
                    self.seen.add(item.id)
                tally.new += len(new)
        except Exception as e:  # a bug in a source or in on_items must not end polling
            tally.faults += 1
            tally.last_error = f"{type(e).__name__}: {e}"
            if (source.name, type(e)) not in self._logged:
                self._logged.add((source.name, type(e)))
                LOG.exception("%s: polling failed", source.name)
            return True
        finally:
            tally.last_fetch = now_utc()
        if source.errors > errors:
            tally.last_error = source.last_error
        return source.errors > errors and not items

    def _unseen(self, items) -> list:
        new, ids = [], set()
        for item in items:
            if item.id not in self.seen and item.id not in ids:
                ids.add(item.id)
                new.append(item)
        return new

    async def _run(self, source) -> None:
        failures = 0
        tally = self._tally[source.name]
        while True:
            failures = min(failures + 1, 64) if await self.poll(source) else 0
            tally.delay = self.interval * min(2.0 ** failures, self.max_backoff)
            await asyncio.sleep(tally.delay * self._rng.uniform(1 - self.jitter, 1 + self.jitter))
