"""Scored items: their columns, and scoring a batch of :class:`~analytics.sentiment.sources.Item` s.

A scored item is a row of :data:`ITEM_COLUMNS`: the item's fields, the coins its title names
(``coins``: codes joined by commas, ``""`` for none), VADER's ``neg``, ``neu``, ``pos`` and
``compound`` of its title, and the ``label`` of the compound score. Items are scored and tagged
by their title: headlines carry the sentiment, while summaries are teasers or boilerplate and
roundups name many coins. This module imports only the scoring code, so that a scoring process
(see :mod:`analytics.sentiment.feed`) starts light.
"""

import numpy as np
import pandas as pd

from analytics.sentiment import label, scores, tag_many

ITEM_COLUMNS = {
    "source": object, "id": object, "link": object, "title": object, "summary": object,
    "published": "datetime64[ns]", "fetched": "datetime64[ns]", "coins": object,
    "neg": np.float64, "neu": np.float64, "pos": np.float64, "compound": np.float64, "label": object,
}


def well_formed(item) -> bool:
    """True for an item with a non-blank title and a string id."""
    title = getattr(item, "title", None)
    return isinstance(title, str) and bool(title.strip()) and isinstance(getattr(item, "id", None), str)


def scored_items(items: list) -> pd.DataFrame:
    """Well-formed items scored, labelled and tagged by title, in the order given: columns :data:`ITEM_COLUMNS`."""
    titles = [item.title for item in items]
    values = scores(titles)
    compound = values["compound"].to_numpy(dtype=np.float64)
    return pd.DataFrame({
        "source": np.array([item.source for item in items], dtype=object),
        "id": np.array([item.id for item in items], dtype=object),
        "link": np.array([item.link or "" for item in items], dtype=object),
        "title": np.array(titles, dtype=object),
        "summary": np.array([item.summary or "" for item in items], dtype=object),
        "published": pd.DatetimeIndex([item.published for item in items], dtype="datetime64[ns]"),
        "fetched": pd.DatetimeIndex([item.fetched for item in items], dtype="datetime64[ns]"),
        "coins": np.array([",".join(coins) for coins in tag_many(titles)], dtype=object),
        "neg": values["neg"].to_numpy(dtype=np.float64),
        "neu": values["neu"].to_numpy(dtype=np.float64),
        "pos": values["pos"].to_numpy(dtype=np.float64),
        "compound": compound,
        "label": np.asarray(label(compound), dtype=object),
    }, columns=list(ITEM_COLUMNS))
