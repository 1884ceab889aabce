"""The pipeline's storage sink: a background thread that batches submissions into a TickStore.

:meth:`StoreWriter.submit` only appends to a list under a lock, so the event loop never
waits on ArcticDB. The thread flushes when the oldest waiting batch has waited
``flush_interval`` seconds, or as soon as ``max_rows`` rows are waiting, or on
:meth:`~StoreWriter.flush`: one :meth:`TickStore.write_result` per kind over every symbol
(ArcticDB's batch calls), given the waiting batches as they are (no concatenation).

The policy follows ArcticDB's costs: an append costs about 1 ms per symbol whatever its
size, so rows per append, not appends, should grow with the message rate. A deadline on
the oldest row does that: at a flood every symbol gets one large append per deadline,
at a calm rate one small append per deadline, and a row never waits longer than
``flush_interval`` plus one commit (the storage latency target is p99 <= 2 s from
receipt). A failed write is logged, counted and retried with backoff: submitted rows are
never dropped, and de-duplication makes retries idempotent.
"""

import logging
import threading
import time

import numpy as np
import pandas as pd

from .. import schema
from ..metrics import LatencyHistogram
from .batch import conformed
from .errors import one_line
from .store import KINDS, TickStore

log = logging.getLogger(__name__)


class StoreWriter:
    """Store batches from any thread without blocking it.

    Parameters
    ----------
    store : TickStore
        Where to store.
    flush_interval : float
        Longest a submitted batch waits before the flush that commits it starts.
    max_rows : int
        Flush early once this many rows wait (bounds memory and a commit's duration).
    compact_interval : float or None
        Seconds between :meth:`TickStore.compact` calls from the writer thread; None: never.
    retry_delay : float
        First wait after a failed write; doubles up to 30 s.

    Attributes
    ----------
    rows_stored : dict
        Rows stored per kind (new trades and quotes, written bars).
    errors : int
        Failed writes (each retried) and rejected batches.
    last_error : str or None
        The last error, one line.
    latency : LatencyHistogram
        Commit time minus ``receipt_timestamp`` of every stored trade and quote.
    on_commit : list
        Callables ``(kind, rows)`` called in the writer thread after each commit.
    """

    def __init__(self, store: TickStore, flush_interval: float = 1.0, max_rows: int = 200_000,
                 compact_interval: float | None = 300.0, retry_delay: float = 0.5):
        if not isinstance(store, TickStore):
            raise ValueError(f"store must be a TickStore, got {type(store).__name__}")
        if not flush_interval > 0 or not max_rows > 0 or not retry_delay > 0:
            raise ValueError("flush_interval, max_rows and retry_delay must be positive")
        if compact_interval is not None and not compact_interval > 0:
            raise ValueError(f"compact_interval must be positive or None, got {compact_interval!r}")
        self.store, self.flush_interval, self.max_rows = store, flush_interval, max_rows
        self.compact_interval, self.retry_delay = compact_interval, retry_delay
        self.rows_stored = dict.fromkeys(KINDS, 0)
        self.errors, self.last_error = 0, None
        self.latency = LatencyHistogram()
        self.on_commit = []
        self._cond = threading.Condition()
        self._pending: list[tuple[int, str, pd.DataFrame, float]] = []  # (sequence, kind, batch, submitted)
        self._submitted = self._committed = self._backlog = 0
        self._flush_now = self._closing = False
        self._thread = threading.Thread(target=self._run, name="tickscope-store-writer", daemon=True)
        self._thread.start()

    @property
    def backlog_rows(self) -> int:
        """Rows submitted and not yet committed."""
        return self._backlog

    def submit(self, kind: str, df: pd.DataFrame) -> None:
        """Queue a batch (the caller must not modify ``df`` afterwards); never blocks.

        Raises
        ------
        ValueError
            For an unknown kind, a batch lacking schema columns, or a closed writer.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        missing = set(schema.SCHEMAS[kind]).difference(df.columns)
        if missing:
            raise ValueError(f"{kind} batch lacks columns {sorted(missing)}")
        if df.empty:
            return
        with self._cond:
            if self._closing:
                raise ValueError("StoreWriter is closed")
            self._submitted += 1
            self._pending.append((self._submitted, kind, df, time.monotonic()))
            self._backlog += len(df)
            if self._backlog >= self.max_rows:
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything submitted before the call is committed; False on timeout."""
        with self._cond:
            target, self._flush_now = self._submitted, True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._committed >= target, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush everything and stop the thread; False if it is still retrying at ``timeout``."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the writer thread -------------------------------------------------------------
    def _run(self) -> None:
        delay, next_compact = self.retry_delay, self._next(self.compact_interval)
        while True:
            with self._cond:
                self._cond.wait_for(self._due, self._until_due(next_compact))
                due, closing = self._due(), self._closing
                batch = []
                if due:
                    batch, self._pending, self._flush_now = self._pending, [], False
            failed = self._commit(batch)
            with self._cond:
                self._pending = failed + self._pending
                self._backlog -= sum(len(item[2]) for item in batch) - sum(len(item[2]) for item in failed)
                self._committed = self._pending[0][0] - 1 if self._pending else self._submitted
                self._cond.notify_all()
                done = closing and not self._pending
            if done:
                return
            if failed:
                time.sleep(delay)  # back off while the store is failing
                delay = min(delay * 2, 30.0)
                continue
            if batch:
                delay = self.retry_delay
            if next_compact is not None and time.monotonic() >= next_compact:
                self._compact()
                next_compact = self._next(self.compact_interval)

    def _due(self) -> bool:
        """Whether to flush now (called holding the lock)."""
        if self._closing or self._flush_now or self._backlog >= self.max_rows:
            return True
        return bool(self._pending) and time.monotonic() - self._pending[0][3] >= self.flush_interval

    def _until_due(self, next_compact: float | None) -> float:
        """Seconds until the oldest waiting batch is due, or until compaction, at most ``flush_interval``."""
        now = time.monotonic()
        wait = self._pending[0][3] + self.flush_interval - now if self._pending else self.flush_interval
        if next_compact is not None:
            wait = min(wait, next_compact - now)
        return max(0.0, wait)

    @staticmethod
    def _next(interval):
        return None if interval is None else time.monotonic() + interval

    def _commit(self, batch: list) -> list:
        """Store ``batch`` one kind at a time; return the items to retry."""
        failed = []
        for kind in KINDS:
            items = [item for item in batch if item[1] == kind]
            frames = [frame for frame in (self._conform(kind, item[2]) for item in items) if frame is not None]
            if not frames:
                continue
            try:
                result = self.store.write_result(kind, frames)
            except Exception as error:  # any store failure: keep the rows and retry
                self._error(f"storing {kind} failed, will retry: {one_line(error)}")
                failed.extend(items)
                continue
            if result.failed:
                error = next(iter(result.failed.values()))
                self._error(f"{len(result.failed)} {kind} symbols not stored, will retry; e.g. {error}")
                failed.extend(items)
            self._committed_rows(kind, result)
        return sorted(failed, key=lambda item: item[0])

    def _conform(self, kind: str, df: pd.DataFrame) -> pd.DataFrame | None:
        """The batch in the schema's dtypes, or None (logged, counted) if it cannot be."""
        try:
            return conformed(kind, df)
        except (TypeError, ValueError) as error:
            self._error(f"rejected a {kind} batch of {len(df)} rows not in the schema: {one_line(error)}")
            return None

    def _committed_rows(self, kind: str, result) -> None:
        self.rows_stored[kind] += result.rows
        if len(result.receipts):
            now = np.datetime64(time.time_ns(), "ns")
            self.latency.add((now - result.receipts) / np.timedelta64(1, "s"))
        for callback in list(self.on_commit):
            try:
                callback(kind, result.rows)
            except Exception:
                log.exception("on_commit callback %r failed", callback)

    def _compact(self) -> None:
        try:
            self.store.compact()
        except Exception as error:
            self._error(f"compaction failed: {one_line(error)}")

    def _error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        log.error(message)
