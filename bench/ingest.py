"""Ingest efficiency: the whole path against bare cryptofeed, flooding the same local exchange.

The local exchange runs in its own process at full speed (``--rate inf``). Rounds
alternate in one run: bare cryptofeed (an empty async callback per message, one
process) and the whole path (feed workers: cryptofeed -> batcher in one process per
exchange; then streamz -> ArcticDB + bars + hub in this one). Reported: messages/s of
each (median over rounds), their ratio (target >= 0.8), client CPU per message of each,
and latency from receipt to the hub and to storage (targets p99 <= 100 ms and <= 2 s),
under the flood and at a steady rate the machine keeps up with (``--steady-rate``).

    python bench/ingest.py [--seconds 10] [--rounds 2] [--json]
"""

import argparse
import asyncio
import inspect
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import psutil  # noqa: E402
from common import emit, exchange_process  # noqa: E402
from cryptofeed import FeedHandler  # noqa: E402

from analytics.feeds import CHANNELS  # noqa: E402
from analytics.feeds.handler import FEEDHANDLER_CONFIG  # noqa: E402
from analytics.ingest import Ingest  # noqa: E402


CPU = {}


async def measure(count, seconds: float, warmup: float, label: str, server) -> float:
    """Messages/s over ``seconds`` after ``warmup``; ``count()`` gives the running total.

    Also records the CPU used meanwhile (in cores) by this process and the exchange's.
    """
    await asyncio.sleep(warmup)
    me = psutil.Process()
    workers = [p for p in me.children() if p.pid != server.pid]  # feed worker processes, if any

    def client_cpu():
        return sum(sum(p.cpu_times()[:2]) for p in [me, *workers])

    cpu = [client_cpu(), sum(server.cpu_times()[:2])]
    start, before = time.perf_counter(), count()
    await asyncio.sleep(seconds)
    rate = (count() - before) / (time.perf_counter() - start)
    elapsed = time.perf_counter() - start
    used = [client_cpu() - cpu[0], sum(server.cpu_times()[:2]) - cpu[1]]
    CPU.setdefault(label, []).append([u / elapsed for u in used] + [1e6 * used[0] / max(count() - before, 1)])
    return rate


async def bare(remote, seconds, warmup) -> float:
    received = 0

    async def empty(obj, receipt_timestamp):
        nonlocal received
        received += 1

    def build():
        return [remote.feed_class(ex)(symbols=remote.symbols_for(ex), channels=list(CHANNELS), max_depth=10,
                                      callbacks={c: empty for c in CHANNELS}, config=FEEDHANDLER_CONFIG)
                for ex in remote.exchanges]

    handler = FeedHandler(config=FEEDHANDLER_CONFIG)
    for feed in await asyncio.to_thread(build):
        handler.add_feed(feed)
    handler.run(start_loop=False, install_signal_handlers=False)
    try:
        return await measure(lambda: received, seconds, warmup, "bare", remote.process)
    finally:
        await handler.stop_async()


async def pipeline(remote, seconds, warmup, store, batch_rows) -> tuple[float, Ingest]:
    ingest = Ingest(source="simulator", exchange=remote, store=store, batch_rows=batch_rows)
    await ingest.start()
    try:
        rate = await measure(ingest.messages, seconds, warmup, "pipeline", remote.process)
    finally:
        await ingest.stop()
    return rate, ingest


async def steady(remote, seconds, warmup, store) -> Ingest:
    """The whole path at a steady rate the machine keeps up with: latency without queueing."""
    ingest = Ingest(source="simulator", exchange=remote, store=store)
    await ingest.start()
    try:
        await asyncio.sleep(warmup)
        ingest.pipeline.hub_latency.reset()
        ingest.writer.latency.reset()
        start, before = time.perf_counter(), ingest.messages()
        await asyncio.sleep(seconds)
        ingest.steady_rate = (ingest.messages() - before) / (time.perf_counter() - start)
    finally:
        await ingest.stop()
    return ingest


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per round")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each")
    parser.add_argument("--steady-rate", type=float, default=2000.0,
                        help="trades/s per exchange of the steady latency round (default 2000)")
    parser.add_argument("--batch-rows", type=int, default=inspect.signature(Ingest).parameters["batch_rows"].default,
                        help="rows per batch at most (the ingest's default)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    bare_rates, pipe_rates, hub, store_latency, rows = [], [], [], [], 0
    with exchange_process(rate="inf") as remote, tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            bare_rates.append(asyncio.run(bare(remote, args.seconds, args.warmup)))
            rate, ingest = asyncio.run(pipeline(remote, args.seconds, args.warmup, f"lmdb://{tmp}/round{round_}",
                                                args.batch_rows))
            pipe_rates.append(rate)
            hub.append(ingest.pipeline.hub_latency)
            store_latency.append(ingest.writer.latency)
            rows += ingest.rows_stored()
    with exchange_process(rate=args.steady_rate) as remote, tempfile.TemporaryDirectory() as tmp:
        calm = asyncio.run(steady(remote, args.seconds, args.warmup, f"lmdb://{tmp}/steady"))
    pipe, bare_rate = statistics.median(pipe_rates), statistics.median(bare_rates)

    def ms(histograms, q):
        return max(h.quantile(q) for h in histograms) * 1e3

    result = {
        "pipeline_msgs_per_s": pipe, "bare_msgs_per_s": bare_rate, "ratio": pipe / bare_rate,
        "p50_hub_ms": ms(hub, 0.5), "p99_hub_ms": ms(hub, 0.99),
        "p50_store_ms": ms(store_latency, 0.5), "p99_store_ms": ms(store_latency, 0.99),
        "steady_msgs_per_s": calm.steady_rate,
        "steady_p50_hub_ms": calm.pipeline.hub_latency.quantile(0.5) * 1e3,
        "steady_p99_hub_ms": calm.pipeline.hub_latency.quantile(0.99) * 1e3,
        "steady_p50_store_ms": calm.writer.latency.quantile(0.5) * 1e3,
        "steady_p99_store_ms": calm.writer.latency.quantile(0.99) * 1e3,
        "rows_stored": rows,
        "bare_cpu_cores_client_server": [round(statistics.median(c[i] for c in CPU["bare"]), 2) for i in (0, 1)],
        "pipeline_cpu_cores_client_server": [round(statistics.median(c[i] for c in CPU["pipeline"]), 2)
                                             for i in (0, 1)],
        "bare_client_cpu_us_per_msg": statistics.median(c[2] for c in CPU["bare"]),
        "pipeline_client_cpu_us_per_msg": statistics.median(c[2] for c in CPU["pipeline"]),
        "batch_rows": args.batch_rows, "rounds": args.rounds, "seconds_per_round": args.seconds,
    }
    emit(result, args.json, "Ingest: whole path vs bare cryptofeed, flooding the local exchange")
    return result


if __name__ == "__main__":
    main()
