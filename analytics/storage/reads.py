"""Argument checking and small frames for the store's read side."""

import pandas as pd


def timestamp(value, name: str) -> pd.Timestamp | None:
    """``value`` as a naive UTC :class:`pandas.Timestamp` (naive input is UTC); None stays None.

    Raises
    ------
    ValueError
        If ``value`` is not a date.
    """
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name}={value!r} is not a date") from None
    if pd.isna(ts):
        raise ValueError(f"{name}={value!r} is not a date")
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def date_range(start, end) -> tuple[pd.Timestamp | None, pd.Timestamp | None] | None:
    """The ArcticDB ``date_range`` for ``start``..``end`` (inclusive), or None for all."""
    start, end = timestamp(start, "start"), timestamp(end, "end")
    if start is not None and end is not None and start > end:
        raise ValueError(f"start {start} is after end {end}")
    return None if start is None and end is None else (start, end)


def split_symbol(name: str, parts: int) -> list[str]:
    """Split ``EXCHANGE/SYMBOL[/TIMEFRAME]`` into its ``parts`` key values."""
    if parts == 2:
        return name.split("/", 1)
    exchange, rest = name.split("/", 1)
    symbol, timeframe = rest.rsplit("/", 1)
    return [exchange, symbol, timeframe]


def unknown_symbol(kind: str, key: tuple, stored: list[str], shown: int = 12) -> ValueError:
    """The one-line error for a read of something not stored."""
    names = sorted(stored)
    listing = ", ".join(names[:shown]) + (f", ... ({len(names)} in all)" if len(names) > shown else "")
    return ValueError(f"no {kind} stored for {' '.join(key)}; stored: {listing or 'nothing'}")


def describe(keys: list[str], split: list[list[str]], descriptions: list) -> pd.DataFrame:
    """The :meth:`TickStore.symbols` frame from split names and ArcticDB descriptions."""
    frame = pd.DataFrame(split, columns=keys).astype(object)
    frame["rows"] = pd.Series([d.row_count for d in descriptions], dtype="int64")
    for position, column in enumerate(("start", "end")):
        frame[column] = pd.Series([d.date_range[position] for d in descriptions], dtype="datetime64[ns]")
    return frame
