"""Counters and latency histograms shared by feeds, pipeline and storage.

Cheap enough to update once per batch: a histogram takes a numpy array of latencies in
seconds and bins it on a fixed log scale, so quantiles cost nothing per row.
"""

import threading
from collections import defaultdict

import numpy as np

# 1 microsecond .. ~1000 s on a log scale, 20 bins per decade.
_EDGES = np.logspace(-6, 3, 9 * 20 + 1)


class LatencyHistogram:
    """A fixed-bin log histogram of latencies in seconds.

    Quantiles are exact to the bin width (about 12 % relative). Thread-safe.
    """

    def __init__(self):
        self._counts = np.zeros(len(_EDGES) + 1, dtype=np.int64)
        self._lock = threading.Lock()

    def add(self, seconds) -> None:
        """Add one latency or an array of latencies (seconds; negatives count as 0)."""
        values = np.clip(np.asarray(seconds, dtype=np.float64).ravel(), 0.0, None)
        bins = np.searchsorted(_EDGES, values, side="right")
        counts = np.bincount(bins, minlength=len(self._counts))
        with self._lock:
            self._counts += counts

    @property
    def count(self) -> int:
        return int(self._counts.sum())

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0..1) in seconds, the upper edge of its bin; NaN if empty."""
        with self._lock:
            counts = self._counts.copy()
        total = counts.sum()
        if total == 0:
            return float("nan")
        index = int(np.searchsorted(np.cumsum(counts), q * total, side="left"))
        return float(_EDGES[min(index, len(_EDGES) - 1)])

    def reset(self) -> None:
        with self._lock:
            self._counts[:] = 0


class Counters:
    """Named integer counters, e.g. ``counters.add(("BINANCE", "trades", "messages"), 3)``.

    ``add`` takes no lock (it runs once per message on the feed's loop): each key must be
    incremented from one thread only. Any thread may read.
    """

    def __init__(self):
        self._values = defaultdict(int)

    def add(self, key, n: int = 1) -> None:
        self._values[key] += n

    def get(self, key) -> int:
        return self._values.get(key, 0)

    def snapshot(self) -> dict:
        while True:
            try:
                return dict(self._values)
            except RuntimeError:  # a key was added meanwhile by another thread: copy again
                continue
