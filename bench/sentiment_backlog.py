"""A 24-hour news backlog of 10,000 items scored while prices stream: does the price feed stall?

The local exchange runs in its own process (``--rate`` simulated trades/s per exchange; ``inf``
floods) and feeds the whole ingest of ``python -m analytics ingest`` in this process: feed
workers, pipeline, hub and an ArcticDB store. Rounds alternate on the same ingest:

- baseline: prices only, for as long as the previous backlog round took (``--seconds`` first);
- backlog: a :class:`~analytics.sentiment.feed.SentimentFeed` on the same loop, hub and store
  takes a JSON-lines file of ``--items`` headlines published over the last 24 hours (the
  labelled crypto headlines of ``tests/data``, cycled, each with its own id) and scores, tags,
  publishes and stores them all; the round ends when the last is stored.

Reported: items/s (received to scored, and to stored); the price trades' receipt→hub latency
p50/p99 in each kind of round and the p99 ratio backlog/baseline; the event loop's lag (how
late a 10 ms timer fires) p99 and its ratio; and that nothing was lost: per backlog round,
the distinct ids stored and the hub's news rows equal the items, and no pipeline error.

    python bench/sentiment_backlog.py [--items 10000] [--rate 2000] [--rounds 2] [--json]
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from common import emit, exchange_process  # noqa: E402

from analytics.ingest import Ingest  # noqa: E402
from analytics.metrics import LatencyHistogram  # noqa: E402
from analytics.sentiment.feed import NEWS_KEY, SentimentFeed  # noqa: E402
from analytics.sentiment.sources import JSONLSource, now_utc  # noqa: E402
from analytics.sentiment.store import NewsStore  # noqa: E402

HEADLINES = Path(__file__).parents[1] / "tests" / "data" / "crypto_headlines.tsv"


def write_backlog(path: Path, n: int, tag: str) -> Path:
    """``n`` headlines as JSON lines, published evenly over the 24 hours before now, ids ``tag-i``."""
    texts = pd.read_csv(HEADLINES, sep="\t")["text"].tolist()
    end = now_utc()
    times = end - pd.to_timedelta(np.linspace(86400, 0, n, endpoint=False), unit="s")
    with open(path, "w") as out:
        for i, stamp in enumerate(times):
            out.write(json.dumps({"id": f"{tag}-{i}", "title": texts[i % len(texts)], "link": f"http://x/{tag}/{i}",
                                  "published": stamp.isoformat()}) + "\n")
    return path


async def loop_lag(histogram: LatencyHistogram, period: float = 0.01) -> None:
    """Record how late a ``period`` timer fires, forever."""
    while True:
        start = time.perf_counter()
        await asyncio.sleep(period)
        histogram.add(time.perf_counter() - start - period)


def measures(ingest, lag) -> tuple:
    return ingest.pipeline.hub_latency.quantile(0.5), ingest.pipeline.hub_latency.quantile(0.99), lag.quantile(0.99)


async def backlog_round(ingest, lag, folder: Path, n: int, tag: str) -> dict:
    path = write_backlog(folder / f"{tag}.jsonl", n, tag)
    feed = SentimentFeed([JSONLSource(path, name=f"jsonl:{tag}")], ingest.hub, store=ingest.store, interval=3600.0,
                         history=0.0)  # no earlier round's items re-published
    first_seq = ingest.hub.last_seq(NEWS_KEY)
    ingest.pipeline.hub_latency.reset()
    lag.reset()
    start = time.perf_counter()
    await feed.start()
    marks = {}
    while feed.stats()["total"]["stored"] < n:
        total = feed.stats()["total"]
        if total["errors"]:
            raise RuntimeError(f"the news feed failed: {total['last_error']}")
        for name in ("received", "scored"):
            if name not in marks and total[name] >= n:
                marks[name] = time.perf_counter()
        await asyncio.sleep(0.01)
    marks["stored"] = time.perf_counter()
    p50, p99, lag99 = measures(ingest, lag)
    await feed.stop()
    stored = NewsStore(ingest.store).read_items(source=f"jsonl:{tag}")
    return {"seconds": marks["stored"] - start, "scored_per_s": n / (marks["scored"] - marks["received"]),
            "stored_per_s": n / (marks["stored"] - marks["received"]), "hub_p50": p50, "hub_p99": p99,
            "lag_p99": lag99, "stored": stored["id"].nunique(), "hub_rows": ingest.hub.last_seq(NEWS_KEY) - first_seq}


async def baseline_round(ingest, lag, seconds: float) -> dict:
    ingest.pipeline.hub_latency.reset()
    lag.reset()
    await asyncio.sleep(seconds)
    p50, p99, lag99 = measures(ingest, lag)
    return {"hub_p50": p50, "hub_p99": p99, "lag_p99": lag99}


async def run(remote, store: str, folder: Path, args) -> tuple:
    ingest = Ingest(source="simulator", exchange=remote, store=store, news=False)
    NewsStore(ingest.store)  # opened before the prices flow, as an ingest with news does (a new store pauses 1 s)
    await ingest.start()
    lag = LatencyHistogram()
    probe = asyncio.get_running_loop().create_task(loop_lag(lag))
    baselines, backlogs = [], []
    try:
        await asyncio.sleep(args.warmup)
        seconds = args.seconds
        for round_ in range(args.rounds):
            baselines.append(await baseline_round(ingest, lag, seconds))
            backlogs.append(await backlog_round(ingest, lag, folder, args.items, f"round{round_}"))
            seconds = backlogs[-1]["seconds"]
        messages = ingest.messages()
    finally:
        probe.cancel()
        await ingest.stop()
    return baselines, backlogs, messages, ingest.errors()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000, help="items in the backlog (default 10,000)")
    parser.add_argument("--rate", default="2000", help="simulated trades/s per exchange (default 2000; inf floods)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each kind (default 2)")
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds of the first baseline round")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    with exchange_process(rate=args.rate) as remote, tempfile.TemporaryDirectory() as tmp:
        baselines, backlogs, messages, errors = asyncio.run(run(remote, f"lmdb://{tmp}/store", Path(tmp), args))

    def median(rounds, key, scale=1.0):
        return statistics.median(r[key] for r in rounds) * scale

    result = {
        "items": args.items, "trades_per_s_per_exchange": args.rate, "rounds": args.rounds,
        "items_scored_per_s": median(backlogs, "scored_per_s"),
        "items_stored_per_s": median(backlogs, "stored_per_s"),
        "backlog_seconds": median(backlogs, "seconds"),
        "baseline_hub_p50_ms": median(baselines, "hub_p50", 1e3),
        "backlog_hub_p50_ms": median(backlogs, "hub_p50", 1e3),
        "baseline_hub_p99_ms": median(baselines, "hub_p99", 1e3),
        "backlog_hub_p99_ms": median(backlogs, "hub_p99", 1e3),
        "hub_p99_ratio": median(backlogs, "hub_p99") / median(baselines, "hub_p99"),
        "baseline_loop_lag_p99_ms": median(baselines, "lag_p99", 1e3),
        "backlog_loop_lag_p99_ms": median(backlogs, "lag_p99", 1e3),
        "loop_lag_p99_ratio": median(backlogs, "lag_p99") / median(baselines, "lag_p99"),
        "stored_per_round": [r["stored"] for r in backlogs],
        "hub_rows_per_round": [r["hub_rows"] for r in backlogs],
        "price_messages": messages,
        "pipeline_errors": errors["pipeline"],
        "nothing_lost": all(r["stored"] == args.items and r["hub_rows"] == args.items for r in backlogs)
        and errors["pipeline"] == 0,
    }
    emit(result, args.json, f"News backlog of {args.items:,} items scored during a price feed")
    return result


if __name__ == "__main__":
    main()
