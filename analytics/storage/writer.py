"""The pipeline's storage sink: a background thread that batches submissions into a TickStore.

:meth:`StoreWriter.submit` only appends to a list under a lock, so the event loop never
waits on ArcticDB. The thread flushes every ``flush_interval`` seconds, or as soon as
``max_rows`` rows are waiting, one :meth:`TickStore.write_result` per kind over every
symbol (ArcticDB's batch calls). A failed write is logged, counted and retried with
backoff: submitted rows are never dropped, and de-duplication makes retries idempotent.
"""

import logging
import threading
import time

import numpy as np
import pandas as pd

from .. import schema
from ..metrics import LatencyHistogram
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
        Seconds between flushes.
    max_rows : int
        Flush early once this many rows wait.
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
        self._pending: list[tuple[int, str, pd.DataFrame]] = []  # (sequence, kind, batch)
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
            self._pending.append((self._submitted, kind, df))
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
                deadline = time.monotonic() + self.flush_interval
                self._cond.wait_for(lambda: self._closing or self._flush_now or self._backlog >= self.max_rows,
                                    max(0.0, deadline - time.monotonic()))
                batch, self._pending, self._flush_now = self._pending, [], False
                closing = self._closing
            failed = self._commit(batch)
            with self._cond:
                self._pending = failed + self._pending
                self._backlog -= sum(len(df) for _, _, df in batch) - sum(len(df) for _, _, df in failed)
                self._committed = self._pending[0][0] - 1 if self._pending else self._submitted
                self._cond.notify_all()
                done = closing and not self._pending
            if done:
                return
            if failed:
                time.sleep(delay)  # back off while the store is failing
                delay = min(delay * 2, 30.0)
                continue
            delay = self.retry_delay
            if next_compact is not None and time.monotonic() >= next_compact:
                self._compact()
                next_compact = self._next(self.compact_interval)

    @staticmethod
    def _next(interval):
        return None if interval is None else time.monotonic() + interval

    def _commit(self, batch: list) -> list:
        """Store ``batch`` one kind at a time; return the items to retry."""
        failed = []
        for kind in KINDS:
            items = [item for item in batch if item[1] == kind]
            frames = [frame for frame in (self._conform(kind, df) for _, _, df in items) if frame is not None]
            if not frames:
                continue
            try:
                result = self.store.write_result(kind, pd.concat(frames, ignore_index=True))
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
            return schema.conform(kind, df)
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
