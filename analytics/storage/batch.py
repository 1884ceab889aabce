"""A multi-symbol batch as numpy columns: split by symbol, sorted and de-duplicated once.

The write path's hot loop. A batch (one DataFrame, or several to be stored as if
concatenated) is held as the schema's columns in numpy; one stable sort by symbol code
(a radix sort: codes are small integers) groups the symbols, and within a symbol rows
keep their time order unless they arrived out of it. Rows are de-duplicated with
vectorized checks that cost nothing in the steady state: rows can only repeat one
another if they share a time, so only rows in a time tie are keyed and compared, and
only the rows at a symbol's stored tail time are compared with the store (see
:mod:`analytics.storage.dedup`). Per-symbol frames are slices of one taken frame.
"""

import numpy as np
import pandas as pd

from .. import schema
from .backend import INDEX, KEYS
from .dedup import Plan, Tail, identity, mix

MAX_LAG = 16  # tied runs up to this long are compared row by row, longer ones sorted


def conformed(kind: str, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` if it already holds the schema's columns in the schema's dtypes, else :func:`schema.conform`.

    Raises
    ------
    ValueError, TypeError
        If a schema column is missing or cannot be cast.
    """
    dtypes = df.dtypes
    for name, dtype in schema.SCHEMAS[kind].items():
        if name not in dtypes.index or dtypes[name] != dtype:
            return schema.conform(kind, df)
    return df


def columns(kind: str, frames: list[pd.DataFrame]) -> dict[str, np.ndarray]:
    """The schema's columns of ``frames`` (conformed), concatenated, as numpy arrays."""
    frames = [conformed(kind, df) for df in frames]
    if len(frames) == 1:
        return {name: frames[0][name].to_numpy() for name in schema.SCHEMAS[kind]}
    return {name: np.concatenate([df[name].to_numpy() for df in frames]) for name in schema.SCHEMAS[kind]}


class Batch:
    """The rows of one kind, grouped by symbol and sorted by time within each.

    Parameters
    ----------
    kind : str
        "trades", "quotes" or "bars".
    data : dict of numpy.ndarray
        The schema's columns (see :func:`columns`), at least one row.

    Attributes
    ----------
    symbols : list of str
        ``EXCHANGE/SYMBOL[/TIMEFRAME]`` of each segment.
    starts, ends : numpy.ndarray
        Each segment's row range in sorted order.
    times : numpy.ndarray
        The time index in sorted order (int64 nanoseconds).
    keep : numpy.ndarray
        False for sorted rows dropped as repeats; callers may clear more.
    """

    def __init__(self, kind: str, data: dict):
        self.kind, self.data = kind, data
        keys = [data[key] for key in KEYS[kind]]
        codes = np.zeros(len(keys[0]), np.int64)
        for column in keys:
            column_codes, uniques = pd.factorize(column)
            codes = codes * len(uniques) + column_codes
        times = data[INDEX[kind]].view(np.int64)
        order = None
        if len(codes) > 1 and (codes[1:] < codes[:-1]).any():
            small = codes.astype(np.int16) if codes.max() < 2**15 else codes
            order = np.argsort(small, kind="stable")  # a radix sort for 16-bit codes
            codes, times = codes[order], times[order]
        same = codes[1:] == codes[:-1]
        if (same & (times[1:] < times[:-1])).any():  # rows out of time order within a symbol
            resort = np.lexsort((times, codes))
            order = resort if order is None else order[resort]
            codes, times = codes[resort], times[resort]
            same = codes[1:] == codes[:-1]
        self.order, self.times, self.same = order, times, same
        bounds = np.flatnonzero(~same) + 1
        self.starts, self.ends = np.r_[0, bounds], np.r_[bounds, len(codes)]
        rows = self.starts if order is None else order[self.starts]
        self.symbols = ["/".join(str(column[row]) for column in keys) for row in rows]
        self.keep = np.ones(len(codes), bool)
        if kind != "bars":  # bars are upserts: the last of a repeated start wins (see dedup)
            self._drop_repeats()

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """Row numbers in ``data`` of sorted ``positions``."""
        return positions if self.order is None else self.order[positions]

    def keys(self, positions: np.ndarray) -> np.ndarray:
        """:func:`~analytics.storage.dedup.row_keys` of the rows at sorted ``positions``."""
        return mix(self.times[positions], identity(self.kind, self.data, self.rows(positions)))

    def _drop_repeats(self) -> None:
        """Clear ``keep`` for every row equal to an earlier one (same symbol, time and identity)."""
        tie = self.same & (self.times[1:] == self.times[:-1])
        if not tie.any():
            return
        positions = np.flatnonzero(np.r_[tie, False] | np.r_[False, tie])
        ident = identity(self.kind, self.data, self.rows(positions))
        group = np.cumsum(~np.r_[False, tie][positions])  # one group per run of tied rows
        longest = np.bincount(group).max()
        repeat = np.zeros(len(positions), bool)
        if longest <= MAX_LAG:  # ties are short: compare each row with the ones before it
            for lag in range(1, longest):
                repeat[lag:] |= (group[lag:] == group[:-lag]) & (ident[lag:] == ident[:-lag])
        else:
            by = np.lexsort((positions, ident, group))
            repeat[by[1:]] = (group[by][1:] == group[by][:-1]) & (ident[by][1:] == ident[by][:-1])
        self.keep[positions[repeat]] = False

    def frame(self) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """The kept rows, indexed by time without the key columns, and each segment's bounds in it."""
        kept = np.flatnonzero(self.keep) if not self.keep.all() else None
        rows = self.order if kept is None else self.rows(kept)
        index_name = INDEX[self.kind]
        stored = [c for c in schema.SCHEMAS[self.kind] if c != index_name and c not in KEYS[self.kind]]
        take = (lambda values: values) if rows is None else (lambda values: values[rows])
        index = pd.DatetimeIndex(take(self.data[index_name]), name=index_name)
        frame = pd.DataFrame({c: take(self.data[c]) for c in stored}, index=index, copy=False)
        if kept is None:
            return frame, self.starts, self.ends
        counts = np.r_[0, np.cumsum(self.keep)]
        return frame, counts[self.starts], counts[self.ends]


def drop_stored(batch: Batch, i: int, tail: Tail) -> bool:
    """Drop segment ``i``'s rows already stored at ``tail``; False if some rows are older than it.

    In the steady state every row is newer than the tail and nothing is keyed.
    """
    start, end = batch.starts[i], batch.ends[i]
    if tail.empty:
        return True
    last, first = tail.last.astype(np.int64), batch.times[start]
    if first > last:
        return True
    if first < last:
        return False  # late rows: the planner compares them with the store
    at_last = np.arange(start, start + np.searchsorted(batch.times[start:end], last, "right"))
    batch.keep[at_last[np.isin(batch.keys(at_last), tail.keys)]] = False
    return True


def plan_append(batch: Batch, i: int, part: pd.DataFrame, tail: Tail) -> Plan:
    """The plan for segment ``i`` once :func:`drop_stored` kept only rows new to the store."""
    if part.empty:
        return Plan(None, part, part, tail)
    start, end = batch.starts[i], batch.ends[i]
    at_end = np.arange(start + np.searchsorted(batch.times[start:end], batch.times[end - 1]), end)
    at_end = at_end[batch.keep[at_end]]
    times = batch.times[at_end].view("datetime64[ns]")
    return Plan("append", part, part, tail.advanced(times, batch.keys(at_end)))
