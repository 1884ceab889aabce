"""Running cryptofeed on the caller's event loop, guarded so bad messages never stop a feed."""

import asyncio
import decimal
import logging
from typing import NamedTuple

from cryptofeed import FeedHandler
from cryptofeed.defines import L2_BOOK, TICKER, TRADES
from cryptofeed.exceptions import BadChecksum, BidAskOverlapping, MissingMessage, MissingSequenceNumber

from analytics.feeds.callbacks import Callbacks
from analytics.metrics import Counters

LOG = logging.getLogger(__name__)

CHANNELS = (TRADES, TICKER, L2_BOOK)

# No uvloop (it breaks running inside another loop), no feedhandler.log in the working directory.
FEEDHANDLER_CONFIG = {"uvloop": False, "log": {"disabled": True}}

# Errors cryptofeed raises on purpose to resynchronise: let them reconnect the feed.
RESYNC_ERRORS = (MissingSequenceNumber, MissingMessage, BadChecksum, BidAskOverlapping)

# What parsing a malformed message raises (bad JSON is a ValueError); anything else, such as
# a failed REST call for a book snapshot, reconnects with cryptofeed's backoff as usual.
PARSE_ERRORS = (ValueError, KeyError, IndexError, TypeError, AttributeError, decimal.InvalidOperation)


class GuardedFeed:
    """Mixin for a cryptofeed exchange class: counts reconnects and skips malformed messages.

    cryptofeed reconnects on any exception raised while handling a message, losing the
    trades of the gap. A message that cannot be parsed is instead counted under
    ``(exchange, "errors", "malformed")``, logged in one line, and skipped; sequence and
    checksum errors still reconnect, as they must, and are counted as ``gaps``.
    """

    counters: Counters = None

    async def message_handler(self, msg, conn, timestamp):
        try:
            await super().message_handler(msg, conn, timestamp)
        except RESYNC_ERRORS:
            self.counters.add((self.id, "errors", "gaps"))
            raise
        except PARSE_ERRORS as exc:
            key = (self.id, "errors", "malformed")
            self.counters.add(key)
            count = self.counters.get(key)
            if count <= 5 or count % 1000 == 0:
                LOG.warning("%s: skipped malformed message #%d (%s: %s): %.160r", conn.uuid, count,
                            type(exc).__name__, exc, msg)

    async def subscribe(self, conn):
        key = (self.id, "connections", conn.uuid)
        if self.counters.get(key):
            self.counters.add((self.id, "errors", "reconnects"))
        self.counters.add(key)
        await super().subscribe(conn)


def guarded(feed_class: type, counters: Counters) -> type:
    """A subclass of ``feed_class`` (a cryptofeed exchange) with :class:`GuardedFeed` behaviour."""
    return type(f"Guarded{feed_class.__name__}", (GuardedFeed, feed_class), {"counters": counters})


def listed_symbols(feed_class: type) -> set:
    """The exchange's symbols, read afresh over REST (a blocking call).

    Raises
    ------
    ValueError
        One line when the exchange cannot be read (cryptofeed's own traceback is not logged).
    """
    log = logging.getLogger("feedhandler")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        return set(feed_class.symbols(refresh=True))
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{feed_class.id}: cannot read its symbols: {reason}") from None
    finally:
        log.setLevel(level)


def check_symbols(feed_class: type, symbols: list[str]) -> list[str]:
    """Refresh the exchange's symbol list and validate ``symbols``.

    Raises
    ------
    ValueError
        One line naming the unknown symbols and a few that exist.
    """
    known = listed_symbols(feed_class)
    unknown = [s for s in symbols if s not in known]
    if unknown:
        quotes = sorted({s.split("-")[-1] for s in symbols})
        examples = sorted(s for s in known if s.split("-")[-1] in quotes)[:6]
        raise ValueError(f"{feed_class.id} does not list {', '.join(unknown)} (it has e.g. {', '.join(examples)})")
    return symbols


class Subscription(NamedTuple):
    """What to subscribe to on one exchange: a cryptofeed exchange class, symbols, channels."""

    feed_class: type
    symbols: list
    channels: list


class MarketFeed:
    """cryptofeed's ``FeedHandler`` for several exchanges, feeding one batcher.

    Parameters
    ----------
    batcher : analytics.feeds.batcher.Batcher
        Where the callbacks put their rows; started and stopped with the feed.
    subscriptions : list of Subscription
        One per exchange; ``feed_class`` is a cryptofeed exchange class (the real one,
        or one pointed at the local exchange); channels are a subset of trades,
        ticker, l2_book.
    depth : int
        Book levels kept (cryptofeed's ``max_depth``).
    counters : analytics.metrics.Counters, optional
        Messages, malformed messages, gaps and reconnects per exchange.
    """

    def __init__(self, batcher, subscriptions: list, depth: int = 10, counters=None):
        for sub in subscriptions:
            bad = set(sub.channels) - set(CHANNELS)
            if bad:
                raise ValueError(f"unsupported channels {sorted(bad)}; choose from {list(CHANNELS)}")
        self.batcher = batcher
        self.subscriptions = subscriptions
        self.depth = depth
        self.counters = counters if counters is not None else Counters()
        batcher.counters = self.counters  # it counts the trades it flushes
        self.callbacks = Callbacks(batcher, self.counters)
        self.handler = None

    def _build(self) -> list:
        callbacks = {TRADES: self.callbacks.trade, TICKER: self.callbacks.ticker, L2_BOOK: self.callbacks.book}
        feeds = []
        for sub in self.subscriptions:
            check_symbols(sub.feed_class, sub.symbols)
            cls = guarded(sub.feed_class, self.counters)
            feeds.append(cls(symbols=sub.symbols, channels=sub.channels, max_depth=self.depth, retries=-1,
                             callbacks={c: callbacks[c] for c in sub.channels}, config=FEEDHANDLER_CONFIG))
        return feeds

    @property
    def errors(self) -> int:
        """Batches the pipeline failed on."""
        return self.batcher.errors

    async def start(self) -> None:
        """Build the feeds (their symbol look-ups block, so in a thread) and start them on this loop."""
        feeds = await asyncio.to_thread(self._build)
        self.handler = FeedHandler(config=FEEDHANDLER_CONFIG)
        for feed in feeds:
            self.handler.add_feed(feed)
        self.batcher.start()
        self.handler.run(start_loop=False, install_signal_handlers=False)

    async def stop(self) -> None:
        """Flush the rows waiting in the batcher, close the connections, flush what came meanwhile."""
        self.batcher.flush()
        if self.handler is not None:
            await self.handler.stop_async()
            self.handler = None
        await self.batcher.stop()
