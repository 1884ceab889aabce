"""Memory: resident memory of the whole ingest path across millions of ticks.

Floods the local exchange (its own process) into the full path (cryptofeed -> batcher
-> streamz -> ArcticDB + bars + hub) and samples the RSS of this process and its feed
workers. Target: flat, at
most +5 % from the end of warm-up to the end. Warm-up is the first 40 % of the ticks:
the hub's bounded buffers (50,000 rows per stream) fill during it, and the rows the hub
holds are reported beside each sample to show it.

    python bench/memory.py [--ticks 5000000] [--json]
"""

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import psutil  # noqa: E402
from common import emit, exchange_process, rss_mb  # noqa: E402

from analytics.ingest import Ingest  # noqa: E402


def hub_rows(hub) -> int:
    """Rows the hub holds over all its streams."""
    return sum(s["rows"] for s in hub.stats().values())


def client_rss_mb(server) -> float:
    """RSS of this process and its feed workers (not the local exchange's process)."""
    me = psutil.Process()
    return sum(rss_mb(p.pid) for p in [me, *me.children()] if p.pid != server.pid)


def sample(ticks, remote, start, ingest) -> tuple:
    """(ticks, client RSS MB, seconds, rows held by the hub)."""
    return ticks, client_rss_mb(remote.process), time.monotonic() - start, hub_rows(ingest.hub)


async def run(remote, ticks: int, store: str, samples: list) -> Ingest:
    ingest = Ingest(source="simulator", exchange=remote, store=store)
    await ingest.start()
    start = time.monotonic()
    try:
        step = ticks // 40
        while (done := ingest.messages()) < ticks:
            if not samples or done >= samples[-1][0] + step:
                samples.append(sample(done, remote, start, ingest))
            await asyncio.sleep(0.2)
        samples.append(sample(ingest.messages(), remote, start, ingest))
    finally:
        await ingest.stop()
    return ingest


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=5_000_000, help="messages to ingest")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    samples = []
    with exchange_process(rate="inf") as remote, tempfile.TemporaryDirectory() as tmp:
        ingest = asyncio.run(run(remote, args.ticks, f"lmdb://{tmp}/store", samples))
    warm = next(s for s in samples if s[0] >= args.ticks * 0.4)
    after = [s for s in samples if s[0] >= warm[0]]
    peak = max(s[1] for s in after)
    result = {
        "ticks": samples[-1][0], "rows_stored": ingest.rows_stored(), "seconds": samples[-1][2],
        "warmup_ticks": warm[0], "rss_mb_after_warmup": warm[1], "rss_mb_end": samples[-1][1],
        "rss_mb_peak_after_warmup": peak,
        "growth_pct_end": 100 * (samples[-1][1] / warm[1] - 1), "growth_pct_peak": 100 * (peak / warm[1] - 1),
        "rss_mb_samples": [round(s[1]) for s in samples],
        "hub_rows_samples": [s[3] for s in samples],
    }
    emit(result, args.json, "Memory: resident set across ingested ticks")
    return result


if __name__ == "__main__":
    main()
