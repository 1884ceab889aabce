"""The rows of a batch grouped by key, computed once and shared along the graph.

A trades batch is split by (exchange, symbol) twice: into hub streams and into bar
state. :class:`Groups` factorizes the key columns once, numbers the keys and finds a
stable order that makes each key's rows contiguous; the hub and the bar builder both
take it instead of factorizing the object columns again.
"""

import numpy as np
import pandas as pd

# Up to this many possible label combinations, keys are counted with a bincount.
_DENSE = 1 << 16


class Groups:
    """Rows of one batch in a stable order by key, and where each key's rows start.

    Parameters
    ----------
    labels : sequence of numpy.ndarray
        One array per key column (e.g. exchange and symbol), each of the batch's length.

    Attributes
    ----------
    keys : list of tuple
        The key of each group, one value per label array. Groups are numbered as the
        combination of the labels' first appearances: by first label first (in order of
        first appearance), then by the second, and so on.
    bounds : numpy.ndarray
        int64 of ``len(keys) + 1`` positions: group ``g`` is rows
        ``bounds[g]:bounds[g + 1]`` of the grouped order.
    order : numpy.ndarray or None
        The stable permutation of the batch's rows into the grouped order (rows of one
        key keep their order); None when the rows are already grouped.

    Examples
    --------
    >>> g = Groups([np.array(["B", "A", "B"], dtype=object)])
    >>> g.keys, g.bounds.tolist(), g.take(np.array([1, 2, 3])).tolist()
    ([('B',), ('A',)], [0, 2, 3], [1, 3, 2])
    """

    def __init__(self, labels):
        labels = list(labels)
        if not labels:
            raise ValueError("Groups need at least one label column")
        rows = len(labels[0])
        self.order = None
        if rows == 0:
            self.keys, self.bounds = [], np.zeros(1, dtype=np.int64)
            return
        code = np.zeros(rows, dtype=np.int64)
        uniques = []
        for values in labels:
            if len(values) != rows:
                raise ValueError(f"label columns differ in length: {len(values)} and {rows}")
            codes, found = pd.factorize(values)
            found = np.asarray(found, dtype=object)
            if len(found) == 0 or codes.min() < 0:  # missing labels make one more key
                missing = codes < 0
                codes[missing] = len(found)
                found = np.append(found, values[np.flatnonzero(missing)[0]])
            code = code * len(found) + codes
            uniques.append(found)
        size = int(np.prod([len(u) for u in uniques]))
        if size <= _DENSE:
            counts = np.bincount(code, minlength=size)
            present = np.flatnonzero(counts)
            counts = counts[present]
            if len(present) < size:
                rank = np.zeros(size, dtype=np.int64)
                rank[present] = np.arange(len(present))
                code = rank[code]
        else:
            present, code, counts = np.unique(code, return_inverse=True, return_counts=True)
        self.bounds = np.zeros(len(present) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.bounds[1:])
        if len(present) > 1 and (np.diff(code) < 0).any():
            small = code.astype(np.int16 if len(present) < 1 << 15 else np.int64)
            self.order = np.argsort(small, kind="stable")  # a radix sort for int16
        self.keys = _decode(present, uniques)

    def take(self, values: np.ndarray) -> np.ndarray:
        """``values`` (in the batch's row order) in the grouped order."""
        return values if self.order is None else values[self.order]

    @property
    def sizes(self) -> np.ndarray:
        """Rows per group."""
        return np.diff(self.bounds)


def _decode(codes: np.ndarray, uniques: list) -> list:
    """Label tuples of combined codes (``((c0 * n1) + c1) * n2 + c2 ...``)."""
    columns = []
    rest = codes
    for found in reversed(uniques):
        columns.append(found[rest % len(found)].tolist())
        rest = rest // len(found)
    return list(zip(*reversed(columns)))
