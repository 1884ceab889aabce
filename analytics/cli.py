"""``python -m analytics``: the local exchange, headless ingest, the app server, reports and backfill.

Bad arguments, an unknown exchange or symbol, a busy port or an unreachable store get
one line on stderr and exit code 2; a failing cell of a report's notebook, exit code 1.
"""

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path

from analytics.feeds.sources import DEFAULT_SYMBOLS, LIVE_EXCHANGES

LOG = logging.getLogger("analytics")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _add_source(parser, default: str) -> None:
    parser.add_argument("--source", default=default,
                        help=f"live, simulator, replay:PATH (a folder of cryptofeed captures) or auto "
                             f"(live if an exchange answers within 3 s, else the simulator); default {default}")
    parser.add_argument("--symbols", nargs="+", metavar="SYMBOL",
                        help=f"normalized symbols (default {' '.join(DEFAULT_SYMBOLS)})")
    parser.add_argument("--rate", type=_positive, default=50.0,
                        help="simulated trades per second per exchange (default 50; 'inf' floods)")
    parser.add_argument("--speed", type=_positive, default=1.0,
                        help="replay speed multiple (default 1; 'inf' as fast as possible)")
    parser.add_argument("--seed", type=int, help="seed of the simulated market")


def _add_news(parser) -> None:
    parser.add_argument("--news", action=argparse.BooleanOptionalAction, default=True,
                        help="score news sentiment per coin: the simulator's simulated news, live the default "
                             "crypto feeds and subreddits, a replay none (default: on)")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m analytics", description="Tickscope: a live crypto market observatory.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    exchange = commands.add_parser("exchange", help="run the local exchange (Binance, Kraken, Bitfinex protocols)")
    _add_source(exchange, "simulator")
    exchange.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    exchange.add_argument("--port", type=int, default=8765,
                          help="websocket (TLS) port (default 8765; 0 picks a free one)")
    exchange.add_argument("--rest-port", type=int,
                          help="REST (HTTP) port, also serving /tickscope/status (default: the next free one)")

    ingest = commands.add_parser("ingest", help="capture market data into the store, headless")
    _add_source(ingest, "auto")
    ingest.add_argument("--exchanges", nargs="+", metavar="EXCHANGE", type=str.upper,
                        help=f"exchanges (default {' '.join(LIVE_EXCHANGES)})")
    ingest.add_argument("--duration", type=_positive, help="seconds to run (default: until Ctrl-C or replay end)")
    ingest.add_argument("--store", help="ArcticDB URI (default lmdb:// under ./data)")
    _add_news(ingest)

    serve = commands.add_parser("serve", help="serve the web app")
    _add_source(serve, "auto")
    serve.add_argument("--exchanges", nargs="+", metavar="EXCHANGE", type=str.upper)
    serve.add_argument("--store", help="ArcticDB URI (default lmdb:// under ./data)")
    serve.add_argument("--port", type=int, default=5006, help="port (default 5006)")
    serve.add_argument("--address", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--update-rate", type=_positive, default=4.0,
                       help="updates per second of each session's live views, 0.1 to 20 (default 4)")
    serve.add_argument("--history", type=float, default=0.0, metavar="DAYS",
                       help="with --source simulator: first store DAYS of simulated 1m/5m/1h bars for markets the "
                            "store holds no bars of (default 0: none)")
    _add_news(serve)

    report = commands.add_parser("report", help="a standalone HTML report of stored bars (runs a notebook)")
    report.add_argument("--symbols", nargs="+", metavar="SYMBOL", required=True, help="normalized symbols")
    report.add_argument("--exchange", "--exchanges", nargs="+", metavar="EXCHANGE", type=str.upper, dest="exchanges",
                        help="exchanges (default: every exchange holding a symbol)")
    report.add_argument("--start", help="first bar start, UTC (default: the first stored)")
    report.add_argument("--end", help="last bar start, UTC (default: the last stored)")
    report.add_argument("--timeframe", default="1m", help="stored bar timeframe to read (default 1m)")
    report.add_argument("--store", help="ArcticDB URI (default lmdb:// under ./data)")
    report.add_argument("--as-of", metavar="SNAPSHOT",
                        help="read this snapshot (to reproduce a report; default: snapshot the store now)")
    report.add_argument("--notebook", help="report notebook to run (default: the packaged report.ipynb)")
    report.add_argument("-o", "--output", required=True, help="the .html file to write")

    backfill = commands.add_parser("backfill", help="fill the store with simulated history of bars (1m, 5m, 1h)")
    backfill.add_argument("--days", type=_positive, default=7.0, help="days of history (default 7)")
    backfill.add_argument("--end", help="when the history ends, UTC (default now)")
    backfill.add_argument("--symbols", nargs="+", metavar="SYMBOL",
                          help=f"simulated coins' symbols (default {' '.join(DEFAULT_SYMBOLS)})")
    backfill.add_argument("--exchanges", nargs="+", metavar="EXCHANGE", type=str.upper,
                          help=f"exchanges (default {' '.join(LIVE_EXCHANGES)})")
    backfill.add_argument("--store", help="ArcticDB URI (default lmdb:// under ./data)")
    backfill.add_argument("--seed", type=int, help="seed of the simulated market")
    backfill.add_argument("--force", action="store_true", help="overwrite bars already stored in the range")
    return parser


class Progress:
    """A live line on stderr: messages/s, rows stored, errors."""

    def __init__(self):
        self.start = self.last_time = time.monotonic()
        self.last_messages = 0

    def __call__(self, ingest) -> None:
        now, messages = time.monotonic(), ingest.messages()
        rate = (messages - self.last_messages) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_messages = now, messages
        line = (f"{now - self.start:6.0f} s  {rate:9,.0f} msgs/s  {ingest.rows_stored():>11,} rows stored  "
                f"errors {sum(ingest.errors().values())}")
        print(line, end="\r" if sys.stderr.isatty() else "\n", file=sys.stderr, flush=True)


async def _ingest(args) -> int:
    from analytics.ingest import Ingest

    ingest = Ingest(source=args.source, exchanges=args.exchanges, symbols=args.symbols, store=args.store,
                    rate=args.rate, speed=args.speed, seed=args.seed, news=None if args.news else False)
    loop, task = asyncio.get_running_loop(), asyncio.current_task()

    def terminate():  # stop like Ctrl-C does, once: a second SIGTERM must not cut the flush short
        loop.remove_signal_handler(signal.SIGTERM)
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        await ingest.run(duration=args.duration, progress=Progress())
    except asyncio.CancelledError:  # Ctrl-C or SIGTERM: run() has stopped and flushed everything
        LOG.info("interrupted")
    print(file=sys.stderr)
    if ingest.news is not None:
        news = ingest.news.stats()["total"]
        LOG.info("%s: %d new items, %d scored, %d stored; errors %d", ingest.news.label, news["new"], news["scored"],
                 news["stored"], news["errors"])
    trades = sum(v for k, v in ingest.counters.snapshot().items() if k[1:] == ("trades", "messages"))
    stored = ingest.writer.rows_stored if ingest.writer else {}
    LOG.info("%s: %d messages (%d trades); stored %s in %s; errors %s", ingest.label, ingest.messages(), trades,
             stored, ingest.store.uri if ingest.store else "no store", ingest.errors())
    return 0


async def _exchange(args) -> int:
    from analytics.exchange import run

    await run(source=args.source, host=args.host, port=args.port, rest_port=args.rest_port, symbols=args.symbols,
              rate=args.rate, speed=args.speed, seed=args.seed)
    return 0


def _serve(args) -> int:
    root = Path(__file__).resolve().parents[1]  # the app/ folder lives beside analytics/ in the checkout
    if not (root / "app" / "serve.py").is_file():
        raise ValueError(f"the app is not in {root}: serve runs from a source checkout")
    sys.path.insert(0, str(root))
    from app.serve import serve

    return serve(source=args.source, exchanges=args.exchanges, symbols=args.symbols, store=args.store,
                 port=args.port, address=args.address, rate=args.rate, speed=args.speed, seed=args.seed,
                 update_rate=args.update_rate, history=args.history, news=args.news)


def _report(args) -> int:
    from analytics.report.execute import CellError
    from analytics.report.run import make_report

    try:
        report = make_report(args.output, args.symbols, args.exchanges, args.start, args.end, args.timeframe,
                             store=args.store, as_of=args.as_of, notebook=args.notebook)
    except CellError as exc:  # the notebook failed: not the arguments
        print(f"python -m analytics report: {exc}", file=sys.stderr)
        return 1
    LOG.info("wrote %s (%.1f MB, %d markets) from snapshot %s of %s in %.1f s", report.path, report.size / 1e6,
             len(report.selection.markets), report.stamp.snapshot, report.stamp.store, report.seconds)
    LOG.info("reproduce: %s", report.stamp.command())
    LOG.debug("report timings (s): %s", json.dumps(report.timings))
    return 0


def _backfill(args) -> int:
    from analytics.exchange.history import backfill

    written = backfill(args.store, args.symbols or DEFAULT_SYMBOLS, args.exchanges or list(LIVE_EXCHANGES),
                       days=args.days, end=args.end, seed=args.seed, force=args.force)
    LOG.info("%s", written)
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not args.verbose:
        for noisy in ("feedhandler", "websockets", "bokeh", "tornado"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command in ("report", "backfill"):
            return _report(args) if args.command == "report" else _backfill(args)
        return asyncio.run(_ingest(args) if args.command == "ingest" else _exchange(args))
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError) as exc:
        print(f"python -m analytics {args.command}: {exc}", file=sys.stderr)
        return 2
