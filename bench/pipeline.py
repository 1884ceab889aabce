"""Pipeline profile: the event-loop cost of one batch through the streamz graph, by kind.

Emits realistic batches into a :class:`analytics.pipeline.Pipeline` without storage:
24 keys (3 exchanges x 8 coins), trades with int64 ids and 1 s of market time per batch
(so 1 s bars close every batch, 1 m bars every 60), quotes of the same keys, and depth
snapshots of 24 books. For each kind the median time per batch is measured at several
batch sizes and fitted as ``fixed + per_row * rows``: the fixed part is what a batch
costs however small, the per-row part what each row adds. The trade path is also timed
stage by stage (bar builder, hub trades, hub bars) to show where the fixed cost goes.

This is a profile tool, not a comparison: run it before and after a change. ``--json``
prints one JSON object; ``--profile`` writes a cProfile of the trades path instead.
"""

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parents[1]))
from analytics.pipeline import Pipeline  # noqa: E402
from analytics.pipeline.groups import Groups  # noqa: E402
from analytics.schema import DEPTH_COLUMNS, QUOTE_COLUMNS, TRADE_COLUMNS  # noqa: E402
from common import emit  # noqa: E402

EXCHANGES = ["BINANCE", "KRAKEN", "BITFINEX"]
COINS = {"BTC": 40_000.0, "ETH": 2_500.0, "SOL": 150.0, "XRP": 0.6, "ADA": 0.5, "DOGE": 0.1, "LTC": 80.0,
         "DOT": 7.0}
KEYS = [(e, f"{c}-USDT") for e in EXCHANGES for c in COINS]
BASE = [COINS[s.split("-")[0]] for _, s in KEYS]
START = pd.Timestamp("2024-01-01").value
SECOND = 10**9


def _keys(rng, rows: int):
    k = rng.integers(0, len(KEYS), rows)
    exchange = np.array([e for e, _ in KEYS], dtype=object)[k]
    symbol = np.array([s for _, s in KEYS], dtype=object)[k]
    return k, exchange, symbol


def trades(rng, rows: int, second: int) -> pd.DataFrame:
    """``rows`` trades of the 24 keys spread over market second ``second``, in time order."""
    k, exchange, symbol = _keys(rng, rows)
    stamps = START + second * SECOND + np.sort(rng.integers(0, SECOND, rows))
    price = np.array(BASE)[k] * np.exp(rng.normal(0, 1e-4, rows))
    return pd.DataFrame({
        "exchange": exchange, "symbol": symbol, "timestamp": stamps.view("datetime64[ns]"),
        "receipt_timestamp": (stamps + 5_000_000).view("datetime64[ns]"), "price": price,
        "amount": rng.lognormal(0, 1, rows), "side": np.where(rng.random(rows) < 0.5, "buy", "sell").astype(object),
        "trade_id": np.arange(second * rows, (second + 1) * rows, dtype=np.int64),
    }).astype(TRADE_COLUMNS)


def quotes(rng, rows: int, second: int) -> pd.DataFrame:
    k, exchange, symbol = _keys(rng, rows)
    stamps = START + second * SECOND + np.sort(rng.integers(0, SECOND, rows))
    mid = np.array(BASE)[k]
    return pd.DataFrame({
        "exchange": exchange, "symbol": symbol, "timestamp": stamps.view("datetime64[ns]"),
        "receipt_timestamp": (stamps + 5_000_000).view("datetime64[ns]"), "bid": mid * 0.9999,
        "bid_size": rng.lognormal(0, 1, rows), "ask": mid * 1.0001, "ask_size": rng.lognormal(0, 1, rows),
        "source": np.full(rows, "book", dtype=object),
    }).astype(QUOTE_COLUMNS)


def depth(rng, levels: int, second: int) -> pd.DataFrame:
    """One snapshot of ``levels`` levels a side for each of the 24 books."""
    n = len(KEYS) * 2 * levels
    key = np.repeat(np.arange(len(KEYS)), 2 * levels)
    stamps = START + second * SECOND + rng.integers(0, SECOND, len(KEYS))[key]
    level = np.tile(np.arange(levels), 2 * len(KEYS))
    side = np.tile(np.repeat(np.array(["bid", "ask"], dtype=object), levels), len(KEYS))
    sign = np.where(side == "bid", -1.0, 1.0)
    return pd.DataFrame({
        "exchange": np.array([e for e, _ in KEYS], dtype=object)[key],
        "symbol": np.array([s for _, s in KEYS], dtype=object)[key],
        "timestamp": stamps.view("datetime64[ns]"), "receipt_timestamp": (stamps + 5_000_000).view("datetime64[ns]"),
        "side": side, "level": level, "price": np.array(BASE)[key] * (1 + sign * 1e-4 * (level + 1)),
        "size": rng.lognormal(0, 1, n),
    }).astype(DEPTH_COLUMNS)


def _median_ms(samples) -> float:
    return float(np.median(samples)) / 1e6


def time_kind(kind: str, sizes, batches: int, warmup: int) -> dict:
    """Median ms per batch at each size, and the fitted fixed ms and µs per row."""
    rng = np.random.default_rng(1)
    make = {"trades": trades, "quotes": quotes, "depth": depth}[kind]
    rows, medians = [], []
    for size in sizes:
        pipeline = Pipeline()
        frames = [make(rng, size, s) for s in range(warmup + batches)]
        samples = []
        for i, frame in enumerate(frames):
            began = time.perf_counter_ns()
            pipeline.emit(kind, frame)
            if i >= warmup:
                samples.append(time.perf_counter_ns() - began)
        pipeline.close()
        rows.append(len(frames[0]))
        medians.append(_median_ms(samples))
    per_row, fixed = np.polyfit(rows, medians, 1)
    return {"rows": rows, "ms_per_batch": medians, "fixed_ms": float(fixed), "us_per_row": float(per_row) * 1e3}


def time_stages(size: int, batches: int, warmup: int) -> dict:
    """Median ms per trades batch of each stage of the trade path."""
    rng = np.random.default_rng(2)
    pipeline = Pipeline()
    names = ("group by key", "build bars", "hub trades", "hub bars")
    stages = {name: [] for name in names}
    for s in range(warmup + batches):
        frame = trades(rng, size, s)
        t0 = time.perf_counter_ns()
        groups = Groups([frame["exchange"].to_numpy(), frame["symbol"].to_numpy()])
        t1 = time.perf_counter_ns()
        bars = pipeline.builder.update(frame, groups)
        t2 = time.perf_counter_ns()
        pipeline.hub.publish_batch("trades", frame, groups)
        t3 = time.perf_counter_ns()
        pipeline.hub.publish_arrays("bars", pipeline.builder.columns_of(bars))
        t4 = time.perf_counter_ns()
        if s >= warmup:
            for name, took in zip(names, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                stages[name].append(took)
    pipeline.close()
    return {name: _median_ms(v) for name, v in stages.items()}


def profile(size: int, batches: int, out: str) -> None:
    """cProfile ``batches`` trades batches of ``size`` rows through the pipeline into ``out``."""
    rng = np.random.default_rng(3)
    frames = [trades(rng, size, s) for s in range(batches)]
    pipeline = Pipeline()
    profiler = cProfile.Profile()
    profiler.enable()
    for frame in frames:
        pipeline.emit("trades", frame)
    profiler.disable()
    profiler.dump_stats(out)
    pstats.Stats(out).sort_stats("cumulative").print_stats(40)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="timed batches per size")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the trades path into FILE and print it")
    parser.add_argument("--profile-rows", type=int, default=2000, help="rows per batch with --profile")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile_rows, args.batches, args.profile)
        return
    warmup = 10
    result = {}
    for kind, sizes in (("trades", [500, 2000, 5000]), ("quotes", [500, 2000, 5000]), ("depth", [5, 10, 25])):
        timed = time_kind(kind, sizes, args.batches, warmup)
        result[f"{kind}_fixed_ms"] = timed["fixed_ms"]
        result[f"{kind}_us_per_row"] = timed["us_per_row"]
        for rows, ms in zip(timed["rows"], timed["ms_per_batch"]):
            result[f"{kind}_ms_at_{rows}_rows"] = ms
    for name, ms in time_stages(2000, args.batches, warmup).items():
        result[f"trades_2000_rows_{name.replace(' ', '_')}_ms"] = ms
    emit(result, args.json, "Pipeline cost per batch (event loop thread, no storage)")


if __name__ == "__main__":
    main()
