"""De-duplication and merge planning for one stored symbol.

A :class:`Tail` remembers, per stored symbol, the last index value and the keys of the
rows stored at it, so that in steady state a batch is checked against the store without
reading it. :func:`plan` turns an incoming frame (one symbol, indexed, in the schema)
into the single operation that stores it: nothing, an ``append``, or an ``update`` of a
range (late rows merged in order, bars replaced by start).

Row identity per kind:

- trades: (timestamp, trade_id);
- quotes: the timestamp and every value but ``receipt_timestamp`` (an exact repeat of
  a quote re-received after a restart has a new receipt time);
- bars: (start): a re-written bar replaces the stored one.
"""

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

# Columns that, with the index, identify a row; None: the index alone (upsert).
IDENTITY = {
    "trades": ["trade_id"],
    "quotes": ["bid", "bid_size", "ask", "ask_size", "source"],
    "bars": None,
}
NAT = np.datetime64("NaT", "ns")


@dataclass
class Tail:
    """What is stored at the end of one symbol: last index value and the row keys there."""

    last: np.datetime64 = NAT
    keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))

    @property
    def empty(self) -> bool:
        return np.isnat(self.last)

    @classmethod
    def of(cls, index: np.ndarray, keys: np.ndarray) -> "Tail":
        """The tail of sorted rows with index values ``index`` and row ``keys``."""
        if not len(index):
            return cls()
        last = index[-1]
        return cls(last, keys[index == last])

    def advanced(self, index: np.ndarray, keys: np.ndarray) -> "Tail":
        """The tail after appending sorted rows (all at or after ``last``)."""
        if not len(index):
            return self
        new = Tail.of(index, keys)
        if new.last == self.last:
            return Tail(self.last, np.union1d(self.keys, new.keys))
        return new


@dataclass
class Plan:
    """How to store one symbol's batch: ``op`` is None, "append" or "update"."""

    op: str | None
    data: pd.DataFrame
    stored: pd.DataFrame  # the rows actually new to the store
    tail: Tail  # the tail once ``data`` is committed


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: a bijection of uint64 that mixes every bit into every other."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def identity(kind: str, data, rows: np.ndarray | None = None) -> np.ndarray:
    """64-bit identities of rows without their time: a trade's id, else a hash; NaN equals NaN.

    ``data`` maps column names to values (a DataFrame or a dict of arrays); ``rows``
    selects rows (all by default).
    """
    columns = IDENTITY[kind] or []
    values = [np.asarray(data[c]) if rows is None else np.asarray(data[c])[rows] for c in columns]
    if len(values) == 1 and values[0].dtype.kind in "iu" and values[0].dtype.itemsize == 8:
        return values[0].view(np.uint64)
    frame = pd.DataFrame(dict(zip(columns, values)), copy=False)
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def mix(times: np.ndarray, ident: np.ndarray) -> np.ndarray:
    """Row keys from times and identities; for one time, equal keys mean equal identities."""
    return _splitmix(ident ^ _splitmix(np.asarray(times).view(np.uint64)))


def row_keys(kind: str, frame: pd.DataFrame) -> np.ndarray:
    """64-bit keys of the rows' identities (index included); NaN equals NaN."""
    if IDENTITY[kind] is None:
        return frame.index.values.view(np.uint64)
    return mix(frame.index.values, identity(kind, frame))


def _select(frame: pd.DataFrame, keys: np.ndarray, mask: np.ndarray):
    """``frame`` and ``keys`` where ``mask``, without copying when it keeps every row."""
    return (frame, keys) if mask.all() else (frame[mask], keys[mask])


def plan(kind: str, frame: pd.DataFrame, keys: np.ndarray, tail: Tail, read_range: Callable) -> Plan:
    """Plan how to store ``frame`` (one symbol, sorted by its index) given the stored ``tail``.

    Parameters
    ----------
    kind : str
        "trades", "quotes" or "bars".
    frame : pandas.DataFrame
        The incoming rows, sorted (stably) by their time index, possibly with repeats.
    keys : numpy.ndarray
        :func:`row_keys` of ``frame``.
    tail : Tail
        The stored tail of the symbol (empty if nothing is stored).
    read_range : callable
        ``read_range(start, end)`` returns the stored rows in ``[start, end]``; called
        only when rows before the stored tail may overlap stored data.

    Returns
    -------
    Plan
        The operation; ``stored`` holds only rows new to the store, in index order.
    """
    if kind == "bars":
        frame = frame[~frame.index.duplicated(keep="last")]
        return _plan_upsert(frame, tail, read_range)
    first = np.zeros(len(keys), bool)
    first[np.unique(keys, return_index=True)[1]] = True
    index = frame.index.values
    if not tail.empty:
        first &= ~((index == tail.last) & np.isin(keys, tail.keys))
    frame, keys = _select(frame, keys, first)
    index = frame.index.values
    if tail.empty or not len(index) or index[0] >= tail.last:
        return Plan("append" if len(frame) else None, frame, frame, tail.advanced(index, keys))
    stored = read_range(pd.Timestamp(index[0]), pd.Timestamp(tail.last))
    late = index < tail.last
    fresh = ~(late & np.isin(keys, row_keys(kind, stored)))
    new, keys = _select(frame, keys, fresh)
    if not (late & fresh).any():
        recent = new.index.values >= tail.last
        new, keys = _select(new, keys, recent)
        return Plan("append" if len(new) else None, new, new, tail.advanced(new.index.values, keys))
    merged = pd.concat([stored, new]).sort_index(kind="stable")
    merged_index = merged.index.values
    at_last = merged[merged_index == merged_index[-1]]
    return Plan("update", merged, new, Tail(merged_index[-1], row_keys(kind, at_last)))


def _plan_upsert(frame: pd.DataFrame, tail: Tail, read_range: Callable) -> Plan:
    """Bars: rows replace stored rows with the same start; others are inserted in order."""
    if frame.empty:
        return Plan(None, frame, frame, tail)
    index = frame.index.values
    new_tail = Tail(index[-1], index[-1:].view(np.uint64))
    if tail.empty or index[0] > tail.last:
        return Plan("append", frame, frame, new_tail)
    if index[0] == tail.last:  # only the last stored bar lies in the range: replace it
        return Plan("update", frame, frame, new_tail)
    stored = read_range(pd.Timestamp(index[0]), pd.Timestamp(tail.last))
    kept = stored[~stored.index.isin(frame.index)]
    merged = pd.concat([kept, frame]).sort_index(kind="stable")
    last = merged.index.values[-1]
    return Plan("update", merged, frame, Tail(last, np.array([last]).view(np.uint64)))
