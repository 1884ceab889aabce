"""The tick store: trades, quotes and bars in ArcticDB, one symbol per exchange and pair.

Layout: libraries ``trades``, ``quotes`` and ``bars``; symbols ``EXCHANGE/SYMBOL`` (bars:
``EXCHANGE/SYMBOL/TIMEFRAME``); each stored frame holds the schema's columns minus the
key columns, indexed by ``timestamp`` (bars: ``start``). Writes de-duplicate (see
:mod:`analytics.storage.dedup`), append in index order through ArcticDB's batch calls
and prune previous versions; :meth:`TickStore.compact` merges the small segments many
appends leave behind.
"""

import functools
from dataclasses import dataclass

import arcticdb
import numpy as np
import pandas as pd
from arcticdb.version_store.library import DataError, UpdatePayload, WritePayload

from .backend import KEYS, KINDS, open_backend
from .batch import Batch, columns, drop_stored, plan_append
from .dedup import Tail, plan, row_keys
from .errors import LockError, StoreError, one_line
from .reads import date_range, describe, split_symbol, unknown_symbol


@dataclass
class WriteResult:
    """What one :meth:`TickStore.write_result` call stored, and which symbols failed."""

    rows: int
    receipts: np.ndarray  # receipt_timestamp of each stored row (trades, quotes)
    failed: dict  # symbol -> the error (StoreError or LockError), one line


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")


class TickStore:
    """Trades, quotes and bars of many exchanges and symbols in ArcticDB.

    Parameters
    ----------
    uri : str, optional
        Any ArcticDB URI (``lmdb:///path``, ``mem://``, ``s3://...``). Default:
        ``lmdb://`` under ``./data/arctic`` relative to the working directory, created
        if missing.

    Raises
    ------
    StoreError
        If the store cannot be opened (one-line message).

    Examples
    --------
    >>> store = TickStore("mem://")
    >>> store.write("trades", batch)  # doctest: +SKIP
    >>> store.read_trades("BINANCE", "BTC-USDT", start="2024-01-01")  # doctest: +SKIP
    """

    def __init__(self, uri: str | None = None):
        self.uri, self._backend = open_backend(uri)

    def __repr__(self) -> str:
        return f"TickStore({self.uri!r})"

    # -- writing ---------------------------------------------------------------------
    def write(self, kind: str, df: pd.DataFrame) -> int:
        """De-duplicate and store a multi-symbol batch.

        Parameters
        ----------
        kind : {"trades", "quotes", "bars"}
        df : pandas.DataFrame
            A batch in the schema of :mod:`analytics.schema` (any index, any order).

        Returns
        -------
        int
            Rows actually stored: new trades and quotes, and written bars.

        Raises
        ------
        StoreError
            If some symbols could not be stored (the others are), or another process
            holds a symbol's write lock.
        """
        result = self.write_result(kind, df)
        if len(result.failed) == 1:
            raise next(iter(result.failed.values()))
        if result.failed:
            symbol, error = next(iter(result.failed.items()))
            raise type(error)(f"{len(result.failed)} {kind} symbols not stored, e.g. {error}")
        return result.rows

    def write_result(self, kind: str, df) -> WriteResult:
        """Like :meth:`write`, but report per-symbol failures instead of raising.

        ``df`` may also be a list of batches, stored as if concatenated (without the
        copy). Symbols that fail (another process holds the lock, ArcticDB refuses the
        data) are listed in ``failed``; the others are stored.
        """
        _check_kind(kind)
        frames = [frame for frame in ([df] if isinstance(df, pd.DataFrame) else df) if len(frame)]
        if not frames:
            return WriteResult(0, np.empty(0, "datetime64[ns]"), {})
        batch = Batch(kind, columns(kind, frames))
        backend = self._backend
        library = backend.libraries[kind]
        with backend.mutex:
            failed, tails, late = {}, {}, set()
            for i, symbol in enumerate(batch.symbols):
                if backend.locks is not None:
                    try:
                        backend.locks.acquire(kind, symbol)
                    except LockError as error:
                        failed[symbol] = error
                        continue
                tails[i] = self._tail(kind, symbol)
                if kind == "bars" or not drop_stored(batch, i, tails[i]):
                    late.add(i)
            frame, starts, ends = batch.frame()
            plans = {}
            for i, tail in tails.items():
                symbol, part = batch.symbols[i], frame.iloc[starts[i]:ends[i]]
                if i in late:
                    reader = functools.partial(self._read_range, library, symbol)
                    plans[symbol] = plan(kind, part, row_keys(kind, part), tail, reader)
                else:
                    plans[symbol] = plan_append(batch, i, part, tail)
            stored = []
            for symbol, result in self._commit(library, plans).items():
                if isinstance(result, DataError):
                    failed[symbol] = StoreError(f"{kind} {symbol}: {one_line(Exception(result.exception_string))}")
                    continue
                backend.tails[(kind, symbol)] = plans[symbol].tail
                stored.append(plans[symbol].stored)
        rows = sum(len(frame) for frame in stored)
        receipts = [frame["receipt_timestamp"].to_numpy() for frame in stored if kind != "bars"]
        receipts = np.concatenate(receipts) if receipts else np.empty(0, "datetime64[ns]")
        return WriteResult(rows, receipts, failed)

    @staticmethod
    def _commit(library, plans: dict) -> dict:
        """Run the planned appends and updates, each kind of call batched over symbols."""
        appends = [WritePayload(s, p.data) for s, p in plans.items() if p.op == "append"]
        updates = [UpdatePayload(s, p.data) for s, p in plans.items() if p.op == "update"]
        results = {s: None for s, p in plans.items() if p.op is None}
        if appends:
            done = library.append_batch(appends, prune_previous_versions=True)
            results.update(zip((p.symbol for p in appends), done))
        if updates:
            done = library.update_batch(updates, upsert=True, prune_previous_versions=True)
            results.update(zip((p.symbol for p in updates), done))
        return results

    def _tail(self, kind: str, symbol: str) -> Tail:
        """The cached tail of ``symbol``, read from the store the first time.

        Called only once this process holds the symbol's write lock, so no other
        process can change the tail behind the cache.
        """
        backend = self._backend
        tail = backend.tails.get((kind, symbol))
        if tail is None:
            tail = Tail()
            library = backend.libraries[kind]
            if library.has_symbol(symbol):
                last = library.get_description(symbol).date_range[1]
                if not pd.isna(last):
                    at_last = self._read_range(library, symbol, last, last)
                    tail = Tail.of(at_last.index.values, row_keys(kind, at_last))
            backend.tails[(kind, symbol)] = tail
        return tail

    @staticmethod
    def _read_range(library, symbol: str, start, end) -> pd.DataFrame:
        return library.read(symbol, date_range=(start, end)).data

    # -- reading ---------------------------------------------------------------------
    def read_trades(self, exchange: str, symbol: str, start=None, end=None, *, as_of=None) -> pd.DataFrame:
        """Stored trades of one symbol, indexed by ``timestamp``, ``start``..``end`` inclusive.

        Parameters
        ----------
        exchange, symbol : str
            E.g. ``"BINANCE"``, ``"BTC-USDT"``.
        start, end : optional
            Anything :class:`pandas.Timestamp` accepts; naive times are UTC.
        as_of : int or str, optional
            A version number or snapshot name (see :meth:`snapshot`).

        Raises
        ------
        ValueError
            For a bad date, or if nothing is stored for ``exchange`` ``symbol``.
        """
        return self._read("trades", (exchange, symbol), start, end, as_of)

    def read_quotes(self, exchange: str, symbol: str, start=None, end=None, *, as_of=None) -> pd.DataFrame:
        """Stored quotes of one symbol, indexed by ``timestamp``; as :meth:`read_trades`."""
        return self._read("quotes", (exchange, symbol), start, end, as_of)

    def read_bars(self, exchange: str, symbol: str, timeframe: str, start=None, end=None, *, as_of=None) -> pd.DataFrame:
        """Stored bars of one symbol and timeframe, indexed by ``start``; as :meth:`read_trades`."""
        return self._read("bars", (exchange, symbol, timeframe), start, end, as_of)

    def _read(self, kind: str, key: tuple, start, end, as_of) -> pd.DataFrame:
        dates = date_range(start, end)
        if not all(isinstance(part, str) and part for part in key):
            raise ValueError(f"expected non-empty strings for {', '.join(KEYS[kind])}, got {key!r}")
        library, name = self._backend.libraries[kind], "/".join(key)
        if not library.has_symbol(name, as_of=as_of):
            raise unknown_symbol(kind, key, library.list_symbols())
        return library.read(name, as_of=as_of, date_range=dates).data

    def symbols(self, kind: str = "trades") -> pd.DataFrame:
        """What is stored: one row per symbol with its key columns, ``rows``, ``start``, ``end``."""
        _check_kind(kind)
        library = self._backend.libraries[kind]
        names = sorted(library.list_symbols())
        descriptions = library.get_description_batch(names) if names else []
        return describe(KEYS[kind], [split_symbol(n, len(KEYS[kind])) for n in names], descriptions)

    # -- maintenance -----------------------------------------------------------------
    def compact(self, min_segments: int = 64) -> int:
        """Merge the small segments of fragmented symbols and prune previous versions.

        Parameters
        ----------
        min_segments : int
            Compact a symbol once it has at least this many row slices and compaction
            would reduce them. Symbols another process writes are skipped.

        Returns
        -------
        int
            How many symbols were compacted.
        """
        if not isinstance(min_segments, int) or min_segments < 2:
            raise ValueError(f"min_segments must be an integer >= 2, got {min_segments!r}")
        backend, locks, compacted = self._backend, self._backend.locks, 0
        with backend.mutex:
            for kind, library in backend.libraries.items():
                todo, borrowed = [], []
                for name in library.list_symbols():
                    explained = library.compact_data_explain_plan(name)
                    if not explained.will_do_work or explained.num_row_slices_before < min_segments:
                        continue
                    if locks is not None and not locks.held(kind, name):
                        if not locks.try_acquire(kind, name):
                            continue  # another process writes it: its own compaction will do
                        borrowed.append(name)
                    todo.append(name)
                try:
                    if todo:
                        done = library.compact_data_batch(todo, prune_previous_versions=True)
                        compacted += sum(not isinstance(d, DataError) for d in done)
                finally:
                    for name in borrowed:
                        locks.release(kind, name)
        return compacted

    def version(self, as_of: str | None = None) -> dict:
        """The ArcticDB version, the URI, each library's version per symbol and the snapshots.

        Versions are the latest ones, or those held by snapshot ``as_of`` (libraries without
        it list none).
        """
        libraries, snapshots = {}, set()
        for kind, library in self._backend.libraries.items():
            names = library.list_snapshots(load_metadata=False)
            snapshots.update(names)
            if as_of is not None:
                held = library.list_versions(snapshot=as_of) if as_of in names else {}
            else:  # (list_versions is slow on an empty library)
                held = library.list_versions(latest_only=True, skip_snapshots=True) if library.list_symbols() else {}
            libraries[kind] = {v.symbol: int(v.version) for v in sorted(held, key=lambda v: v.symbol)}
        return {"arcticdb": arcticdb.__version__, "uri": self.uri, "libraries": libraries,
                "snapshots": sorted(snapshots)}

    def snapshot(self, name: str) -> str:
        """Snapshot every non-empty library as ``name`` for point-in-time reads (``as_of=name``).

        Raises
        ------
        ValueError
            If ``name`` is empty or already used.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"snapshot name must be a non-empty string, got {name!r}")
        backend = self._backend
        with backend.mutex:
            for library in backend.libraries.values():
                if name in library.list_snapshots(load_metadata=False):
                    raise ValueError(f"snapshot {name!r} already exists")
            for library in backend.libraries.values():
                if library.list_symbols():
                    library.snapshot(name)
        return name
