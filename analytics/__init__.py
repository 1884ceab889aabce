"""Tickscope analytics: the library behind the live crypto market observatory.

Sub-packages follow the data's way through the system:

- ``analytics.exchange``: a local exchange speaking Binance, Kraken and Bitfinex wire
  protocols on 127.0.0.1, fed by a simulated market or by replayed captures.
- ``analytics.feeds``: cryptofeed adapters and the columnar batcher.
- ``analytics.pipeline``: the streamz graph (storage sink, bars, hub).
- ``analytics.storage``: the ArcticDB tick store.
- ``analytics.bars``: OHLCV bars as a pure function.

Importing the package starts nothing.
"""

__version__ = "0.1.0"
