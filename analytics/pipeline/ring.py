"""A bounded columnar ring buffer with a sequence number per row.

One :class:`Ring` holds the recent rows of one hub stream as numpy arrays, one per
column, that grow by doubling up to ``maxlen`` rows and then wrap. Appending copies the
new rows in (O(batch), no allocation once grown); reading copies the requested rows out.
:meth:`Ring.extend` is the hub's fast path for a slice of a batch split by key, costing
a few microseconds per key (a bar upserted in place: one write per column).
Not thread-safe by itself: the hub holds a lock per ring.
"""

import numpy as np

_UNKNOWN = object()  # the newest upsert value is not cached


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
        self._layout = None  # ((name, dtype), ...) of self.columns, in order
        self._newest = _UNKNOWN  # the newest row's upsert value as a Python scalar

    def append(self, columns: dict) -> int:
        """Append rows given as equal-length numpy arrays by column; return the last sequence number."""
        self._check(columns)
        n = len(next(iter(columns.values()))) if columns else 0
        self._newest = _UNKNOWN
        return self._append([columns[name] for name in self.columns], 0, n)

    def extend(self, layout: tuple, arrays: list, a: int, b: int, keys: list | None = None) -> int:
        """:meth:`append` rows ``a:b`` of ``arrays``, laid out as ``layout``; return the last sequence number.

        The fast path of a batch split by key: ``layout`` is ``((name, dtype), ...)`` of
        ``arrays``, one object shared by every call for the batch; ``keys`` is the
        ``upsert`` column as a list of Python scalars (``tolist()``), if any.
        """
        if layout is not self._layout:
            if self.columns is None or layout != self._layout:
                columns = {name: values[a:b] for (name, _), values in zip(layout, arrays)}
                if self.columns is not None:
                    return self.append(columns)
                self._check(columns)
            self._layout = layout
        if keys is not None and self.size and 0 < b - a <= 2:
            held = self._newest if self._newest is not _UNKNOWN else self._newest_value()
            first, newest = keys[a], keys[b - 1]
            if held is not None and first is not None and newest is not None:
                if newest == held and b - a == 2:  # the last match is not the first row
                    self._newest = _UNKNOWN
                    return self._append(arrays, a, b)
                self._newest = newest
                if first == held:
                    self._replace(arrays, a)
                    a += 1
                return self._push(arrays, a, b)
        self._newest = _UNKNOWN
        return self._append(arrays, a, b)

    def _append(self, arrays: list, a: int, b: int) -> int:
        """Upsert, then append rows ``a:b`` of ``arrays`` (ordered as ``self.columns``)."""
        if b > a and self.upsert and self.size:
            arrays, a, b = self._replace_last(arrays, a, b)
        return self._push(arrays, a, b)

    def _push(self, arrays: list, a: int, b: int) -> int:
        """Append rows ``a:b`` of ``arrays`` (ordered as ``self.columns``), evicting the oldest."""
        n = b - a
        if n == 0:
            return self.last_seq
        if n >= self.maxlen:
            self.evicted += self.size + n - self.maxlen
            self.last_seq += n - self.maxlen
            a = b - self.maxlen
            self.head = self.size = 0
            n = self.maxlen
        if self.size + n > len(self.seq):
            self._reserve(self.size + n)
        capacity = len(self.seq)
        overflow = self.size + n - capacity
        if overflow > 0:
            self.head = (self.head + overflow) % capacity
            self.size -= overflow
            self.evicted += overflow
        tail = (self.head + self.size) % capacity
        if n == 1:
            self.seq[tail] = self.last_seq + 1
            for target, values in zip(self.columns.values(), arrays):
                target[tail] = values[a]
        else:
            first = min(n, capacity - tail)
            self.seq[tail : tail + first] = np.arange(self.last_seq + 1, self.last_seq + first + 1)
            for target, values in zip(self.columns.values(), arrays):
                target[tail : tail + first] = values[a : a + first]
            if first < n:  # wrap around
                self.seq[: n - first] = np.arange(self.last_seq + first + 1, self.last_seq + n + 1)
                for target, values in zip(self.columns.values(), arrays):
                    target[: n - first] = values[a + first : b]
        self.size += n
        self.last_seq += n
        return self.last_seq

    def _check(self, columns: dict) -> None:
        if self.columns is None:
            self.columns = {c: np.empty(0, dtype=v.dtype) for c, v in columns.items()}
            self._layout = tuple((c, v.dtype) for c, v in self.columns.items())
            return
        if columns.keys() != self.columns.keys():
            raise ValueError(f"batch columns {list(columns)} differ from the stream's {list(self.columns)}")
        for name, values in columns.items():
            held = self.columns[name].dtype
            if values.dtype != held and not np.can_cast(values.dtype, held, "same_kind"):
                raise ValueError(f"column {name!r} is {values.dtype}, the stream holds {held}")

    def _newest_value(self):
        if self._newest is _UNKNOWN:
            last = (self.head + self.size - 1) % len(self.seq)
            self._newest = self.columns[self.upsert][last : last + 1].tolist()[0]
        return self._newest

    def _replace(self, arrays: list, j: int) -> int:
        """Write row ``j`` over the newest held row, with the next sequence number."""
        last = (self.head + self.size - 1) % len(self.seq)
        self.last_seq += 1
        self.seq[last] = self.last_seq
        for target, values in zip(self.columns.values(), arrays):
            target[last] = values[j]
        return self.last_seq

    def _replace_last(self, arrays: list, a: int, b: int):
        """Write the last row matching the newest held row's ``upsert`` value over it."""
        last = (self.head + self.size - 1) % len(self.seq)
        at = list(self.columns).index(self.upsert)
        match = np.flatnonzero(arrays[at][a:b] == self.columns[self.upsert][last])
        if len(match) == 0:
            return arrays, a, b
        j = a + match[-1]
        self._replace(arrays, j)
        if j == a:
            return arrays, a + 1, b
        keep = np.arange(a, b) != j
        return [v[a:b][keep] for v in arrays], 0, b - a - 1

    def _reserve(self, rows: int) -> None:
        capacity = len(self.seq)
        if rows <= capacity or capacity == self.maxlen:
            return
        grown = min(self.maxlen, max(2 * capacity, rows, 64))
        end = self.head + self.size
        index = slice(self.head, end) if end <= capacity else self._positions(0, self.size)
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
