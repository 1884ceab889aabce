"""A bounded columnar ring buffer with a sequence number per row.

One :class:`Ring` holds the recent rows of one hub stream as numpy arrays, one per
column, that grow by doubling up to ``maxlen`` rows and then wrap. Appending copies the
new rows in (O(batch), no allocation once grown); reading copies the requested rows out.
Not thread-safe by itself: the hub holds a lock per ring.
"""

import numpy as np


class Ring:
    """The last ``maxlen`` rows of a stream, each with a sequence number.

    Parameters
    ----------
    maxlen : int
        Rows kept; older rows are evicted first.
    upsert : str, optional
        A column identifying a row (bars: ``"start"``). A new row whose value equals the
        newest held row's replaces it in place (with a new sequence number) instead of
        being appended, so a forming bar updated every batch holds one row.

    Attributes
    ----------
    last_seq : int
        Sequence number of the newest row; every appended row takes the next one.
    evicted : int
        Rows pushed out by newer rows (replaced rows are not counted).
    """

    def __init__(self, maxlen: int, upsert: str | None = None):
        self.maxlen = maxlen
        self.upsert = upsert
        self.columns = None
        self.seq = np.empty(0, dtype=np.int64)
        self.head = 0
        self.size = 0
        self.last_seq = 0
        self.evicted = 0

    def append(self, columns: dict) -> int:
        """Append rows given as equal-length numpy arrays by column; return the last sequence number."""
        self._check(columns)
        n = len(next(iter(columns.values()))) if columns else 0
        if n and self.upsert and self.size:
            columns, n = self._replace_last(columns, n)
        if n == 0:
            return self.last_seq
        if n >= self.maxlen:
            self.evicted += self.size + n - self.maxlen
            self.last_seq += n - self.maxlen
            columns = {c: v[n - self.maxlen :] for c, v in columns.items()}
            self.head = self.size = 0
            n = self.maxlen
        self._reserve(self.size + n)
        capacity = len(self.seq)
        overflow = self.size + n - capacity
        if overflow > 0:
            self.head = (self.head + overflow) % capacity
            self.size -= overflow
            self.evicted += overflow
        tail = (self.head + self.size) % capacity
        first = min(n, capacity - tail)
        self.seq[tail : tail + first] = np.arange(self.last_seq + 1, self.last_seq + first + 1)
        self.seq[: n - first] = np.arange(self.last_seq + first + 1, self.last_seq + n + 1)
        for name, values in columns.items():
            target = self.columns[name]
            target[tail : tail + first] = values[:first]
            if first < n:
                target[: n - first] = values[first:]
        self.size += n
        self.last_seq += n
        return self.last_seq

    def _check(self, columns: dict) -> None:
        if self.columns is None:
            self.columns = {c: np.empty(0, dtype=v.dtype) for c, v in columns.items()}
            return
        if columns.keys() != self.columns.keys():
            raise ValueError(f"batch columns {list(columns)} differ from the stream's {list(self.columns)}")
        for name, values in columns.items():
            held = self.columns[name].dtype
            if values.dtype != held and not np.can_cast(values.dtype, held, "same_kind"):
                raise ValueError(f"column {name!r} is {values.dtype}, the stream holds {held}")

    def _replace_last(self, columns: dict, n: int):
        """Write the row matching the newest held row's ``upsert`` value over it."""
        last = (self.head + self.size - 1) % len(self.seq)
        match = np.flatnonzero(columns[self.upsert] == self.columns[self.upsert][last])
        if len(match) == 0:
            return columns, n
        j = match[-1]
        self.last_seq += 1
        self.seq[last] = self.last_seq
        for name, values in columns.items():
            self.columns[name][last] = values[j]
        if j == 0:
            return {c: v[1:] for c, v in columns.items()}, n - 1
        keep = np.arange(n) != j
        return {c: v[keep] for c, v in columns.items()}, n - 1

    def _reserve(self, rows: int) -> None:
        capacity = len(self.seq)
        if rows <= capacity or capacity == self.maxlen:
            return
        grown = min(self.maxlen, max(2 * capacity, rows, 64))
        index = self._positions(0, self.size)
        self.seq = _grow(self.seq[index], grown)
        self.columns = {c: _grow(v[index], grown) for c, v in self.columns.items()}
        self.head = 0

    def _positions(self, start: int, stop: int) -> np.ndarray:
        """Physical positions of logical rows ``start..stop-1`` (0 = oldest)."""
        capacity = max(len(self.seq), 1)
        return (self.head + np.arange(start, stop)) % capacity

    def count_through(self, seq: int) -> int:
        """How many held rows have a sequence number <= ``seq``."""
        capacity = len(self.seq)
        end = self.head + self.size
        first = self.seq[self.head : min(end, capacity)]
        count = int(np.searchsorted(first, seq, side="right"))
        if count == len(first) and end > capacity:
            count += int(np.searchsorted(self.seq[: end - capacity], seq, side="right"))
        return count

    def rows(self, start: int) -> tuple[np.ndarray, dict]:
        """Copies of the rows from logical row ``start`` (0 = oldest): (sequence numbers, columns)."""
        index = self._positions(start, self.size)
        return self.seq[index], {c: v[index] for c, v in (self.columns or {}).items()}

    def trailing_run(self, names, window: int) -> int:
        """How many newest rows (at most ``window``) equal the newest row in ``names``."""
        start = max(0, self.size - window)
        index = self._positions(start, self.size)
        same = np.ones(len(index), dtype=bool)
        for name in names:
            values = self.columns[name][index]
            same &= values == values[-1]
        breaks = np.flatnonzero(~same)
        return len(index) - (breaks[-1] + 1 if len(breaks) else 0)


def _grow(values: np.ndarray, capacity: int) -> np.ndarray:
    out = np.empty(capacity, dtype=values.dtype)
    out[: len(values)] = values
    return out
