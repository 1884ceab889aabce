"""The streamz pipeline: storage sink, streaming bars and the hub viewers read from.

- :class:`Pipeline` (``graph.py``): the graph of DataFrame batches.
- :class:`BarBuilder` (``barbuilder.py``): OHLCV bars at several timeframes, batch by batch.
- :class:`Hub` (``hub.py``): bounded, sequence-numbered buffers per stream key.
"""

from analytics.pipeline.barbuilder import BarBuilder
from analytics.pipeline.graph import Pipeline
from analytics.pipeline.hub import Hub, Subscription

__all__ = ["BarBuilder", "Hub", "Pipeline", "Subscription"]
