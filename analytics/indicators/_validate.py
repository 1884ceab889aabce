"""The batch indicators' boundary: inputs to float64 arrays, parameter checks, results back to pandas."""

import math
import numbers

import numpy as np
import pandas as pd

from ._kernels import scan_nan


def _values(name: str, value) -> tuple[np.ndarray, pd.Index | None]:
    """A one-dimensional numeric input as a contiguous float64 array, and its index if it is a Series."""
    if isinstance(value, pd.Series):
        if getattr(value.dtype, "kind", "O") not in "iuf":
            raise ValueError(f"{name} must be numeric, got dtype {value.dtype}")
        if value.dtype == np.float64:
            return np.ascontiguousarray(value.to_numpy()), value.index
        return np.ascontiguousarray(value.to_numpy(dtype=np.float64, na_value=np.nan)), value.index
    array = np.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float64), None


def inputs(**named) -> tuple[list[np.ndarray], pd.Index, int]:
    """Arrays of the named inputs, their common index and the first bar where all of them are valid.

    Series must share one index, other inputs the length; numpy arrays and lists get a RangeIndex.
    Leading NaNs are allowed (the output is NaN there, as TA-Lib's wrapper starts after them); a NaN after
    an input's first valid value raises ValueError naming its position.
    """
    arrays, index, first_name = [], None, None
    for name, value in named.items():
        array, own_index = _values(name, value)
        if arrays and len(array) != len(arrays[0]):
            raise ValueError(f"{name} has {len(array)} values but {next(iter(named))} has {len(arrays[0])}")
        if own_index is not None:
            if index is None:
                index, first_name = own_index, name
            elif own_index is not index and not own_index.equals(index):
                raise ValueError(f"{name} and {first_name} have different indexes")
        arrays.append(array)
    if index is None:
        index = pd.RangeIndex(len(arrays[0]))
    start = 0
    for name, array in zip(named, arrays):
        first, bad = scan_nan(array)
        if bad >= 0:
            label = "" if isinstance(index, pd.RangeIndex) else f" ({index[bad]})"
            raise ValueError(f"{name} has a NaN at position {bad}{label} after its first valid value")
        start = max(start, first)
    return arrays, index, start


def period(name: str, value, minimum: int) -> int:
    """``value`` as an int of at least ``minimum`` (TA-Lib's lower bound for that parameter)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def real(name: str, value, minimum: float = -math.inf) -> float:
    """``value`` as a finite float of at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return float(value)


def _padded(values: np.ndarray, start: int, length: int) -> np.ndarray:
    """Values computed from bar ``start`` placed at the end of ``length`` bars, NaN before them."""
    if start == 0:
        return values
    full = np.full(values.shape[:-1] + (length,), np.nan)
    full[..., start:] = values
    return full


def series(values: np.ndarray, index: pd.Index, start: int, name: str) -> pd.Series:
    return pd.Series(_padded(values, start, len(index)), index=index, name=name, copy=False)


def frame(rows: np.ndarray, index: pd.Index, start: int, columns: list[str]) -> pd.DataFrame:
    """A DataFrame over ``rows`` (one row per column), without copying them."""
    return pd.DataFrame(_padded(rows, start, len(index)).T, index=index, columns=columns, copy=False)
