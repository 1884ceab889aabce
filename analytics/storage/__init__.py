"""The ArcticDB tick store and the pipeline's storage sink.

- :class:`TickStore`: trades, quotes and bars per exchange and symbol, de-duplicated,
  compacted, one writer process per symbol.
- :class:`StoreWriter`: a background thread that batches submissions into the store.
"""

from .errors import LockError, StoreError
from .store import TickStore
from .writer import StoreWriter

__all__ = ["TickStore", "StoreWriter", "StoreError", "LockError"]
