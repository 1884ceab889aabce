"""Feeds: cryptofeed on the caller's loop, callbacks to rows, rows to pandas batches."""

from analytics.feeds.batcher import Batcher
from analytics.feeds.callbacks import Callbacks
from analytics.feeds.handler import CHANNELS, MarketFeed, Subscription
from analytics.feeds.sources import DEFAULT_SYMBOLS, LIVE_EXCHANGES, Source, parse_source, resolve

__all__ = ["Batcher", "Callbacks", "CHANNELS", "MarketFeed", "Subscription", "DEFAULT_SYMBOLS", "LIVE_EXCHANGES",
           "Source", "parse_source", "resolve"]
