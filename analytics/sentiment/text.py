"""Input checking shared by scoring and tagging: what counts as a text, and what as missing."""

import pandas as pd


def is_missing(value) -> bool:
    """``None``, NaN, ``pd.NA`` and ``NaT``: a text that is not there (scored NaN, tagged ``[]``)."""
    return value is None or (not isinstance(value, str) and bool(pd.api.types.is_scalar(value)) and pd.isna(value))


def as_texts(texts) -> tuple[list, pd.Index]:
    """The texts of ``texts`` (a Series keeps its index; any other iterable gets a RangeIndex).

    Missing values become ``None``. Raises ValueError for a single string (ambiguous: one text
    or its characters?) and for items that are neither strings nor missing, naming the first.
    """
    if isinstance(texts, (str, bytes)):
        raise ValueError(f"texts must be an iterable of strings, not one string: {texts!r:.60}")
    if isinstance(texts, pd.DataFrame):
        raise ValueError("texts must be a Series or an iterable of strings, not a DataFrame: pick a column")
    if isinstance(texts, pd.Series):
        values, index = texts.tolist(), texts.index
    else:
        try:
            values = list(texts)
        except TypeError:
            raise ValueError(f"texts must be an iterable of strings, got {type(texts).__name__}") from None
        index = pd.RangeIndex(len(values))
    out = [None] * len(values)
    for i, value in enumerate(values):
        if isinstance(value, str):
            out[i] = value
        elif not is_missing(value):
            raise ValueError(f"text {i} is a {type(value).__name__}, not a string: {value!r:.60}")
    return out, index
