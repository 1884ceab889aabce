"""Storage benchmark: ArcticDB (LMDB) against SQLite and PostgreSQL on the same ticks, one run.

Ticks are bootstrapped from the real Binance BTCUSDT trades in ../shared/data (inter-arrival
times, returns, sizes and sides resampled, scaled per coin). Measured:

- appends in the batch sizes the pipeline really produces: what ``StoreWriter`` gets in
  one ``flush_interval`` (1 s) from 24 symbols (8 coins x 3 exchanges, rows shared out as
  the simulated market shares its trades), interleaved in time and cut into the batcher's
  20 batches a second, at a flood (100,000 trades/s), a busy market (10,000/s) and the
  simulator's default calm rate (150/s): through ``StoreWriter`` (20 submits and a
  flush), ``TickStore.write`` (de-duplication included) and raw ``append_batch``; SQLite
  (WAL, ``executemany`` in one transaction a flush) and PostgreSQL (one ``COPY`` a flush),
  both with an index on (symbol, timestamp), given the same flushes. ``busy`` is the
  share of one core each store needs to keep up with that rate;
- a sweep of rows per append, to show where the per-call costs cross;
- a one-day range read of one symbol into pandas, from 8 symbols x several days;
- reading a symbol fragmented by 500 small appends, before and after ``compact()``.

PostgreSQL is Debian's (``apt-get install -y postgresql``), run as a throwaway cluster on
127.0.0.1 (as the ``postgres`` user when run as root) and removed at the end; without it
the PostgreSQL columns say why and the rest runs. ``--json`` prints one JSON object.
"""

import argparse
import glob
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parents[1]))
from analytics.exchange.market import COIN_SPECS  # noqa: E402
from analytics.storage import StoreWriter, TickStore  # noqa: E402

DATA = Path(__file__).parents[2] / "shared" / "data" / "trades" / "btcusdt-trades.csv.gz"
COINS = {"BTC": 40_000.0, "ETH": 2_500.0, "SOL": 150.0, "XRP": 0.6, "ADA": 0.5, "DOGE": 0.1, "LTC": 80.0, "DOT": 7.0}
COLUMNS = ["symbol", "timestamp", "receipt_timestamp", "price", "amount", "side", "trade_id"]
EXCHANGES = ("BINANCE", "KRAKEN", "BITFINEX")
# The pipeline's load profiles: trades/s over all 24 symbols, and how many flushes to time.
PROFILES = {"flood": (100_000, 6), "busy": (10_000, 20), "calm": (150, 60)}
SUBMITS_PER_FLUSH = 20  # the batcher emits every 50 ms (or 5,000 rows): 20 batches a 1 s flush


def ticks(rng, exchange: str, coin: str, start: pd.Timestamp, rows: int, seconds: float) -> pd.DataFrame:
    """``rows`` trades of one symbol over ``seconds``, bootstrapped from the real trades."""
    real = pd.read_csv(DATA)
    gaps = np.diff(pd.to_datetime(real["timestamp"]).astype("int64").to_numpy()).astype(np.float64)
    returns = np.diff(np.log(real["price"].to_numpy()))
    times = np.cumsum(rng.choice(gaps, rows))
    times = start.value + (times / times[-1] * seconds * 1e9).astype(np.int64)
    index = rng.integers(0, len(real), rows)
    price = COINS[coin] * np.exp(np.cumsum(rng.choice(returns, rows)))
    ts = times.astype("datetime64[ns]")
    return pd.DataFrame({
        "exchange": exchange, "symbol": f"{coin}-USDT", "timestamp": ts,
        "receipt_timestamp": ts + rng.integers(1_000_000, 50_000_000, rows).astype("timedelta64[ns]"),
        "price": price, "amount": real["quantity"].to_numpy()[index] * 40_000.0 / COINS[coin],
        "side": np.where(real["buyer_maker"].to_numpy()[index], "sell", "buy").astype(object),
        "trade_id": np.arange(rows, dtype=np.int64) + 10**9,
    })


def flushes(rng, count: int, low: int = 50, high: int = 2000) -> list[pd.DataFrame]:
    """``count`` one-second flushes of 24 symbols, 50-2000 rows each (log-uniform)."""
    start = pd.Timestamp("2024-03-01")
    sizes = np.exp(rng.uniform(np.log(low), np.log(high), (24, count))).astype(int)
    parts = []
    for i, (exchange, coin) in enumerate((e, c) for e in EXCHANGES for c in COINS):
        frame = ticks(rng, exchange, coin, start, int(sizes[i].sum()), count)
        frame["flush"] = np.repeat(np.arange(count), sizes[i])
        parts.append(frame)
    every = pd.concat(parts, ignore_index=True)
    return [group.drop(columns="flush").reset_index(drop=True) for _, group in every.groupby("flush")]


def pipeline_flushes(rng, rate: float, count: int, interval: float = 1.0) -> list[list[pd.DataFrame]]:
    """``count`` flushes of ``interval`` s at ``rate`` trades/s, each as the batcher's submissions.

    Each coin gets its share of the simulated market's trades, split evenly over the
    three exchanges; a flush holds every symbol's trades of its interval, interleaved in
    time as they arrive, cut into ``SUBMITS_PER_FLUSH`` batches.
    """
    start, seconds = pd.Timestamp("2024-03-01"), count * interval
    shares = np.array([COIN_SPECS[coin].share for coin in COINS])
    parts = []
    for exchange in EXCHANGES:
        for coin, share in zip(COINS, shares / shares.sum()):
            rows = max(2, rng.poisson(rate * share / len(EXCHANGES) * seconds))
            parts.append(ticks(rng, exchange, coin, start, rows, seconds))
    every = pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable", ignore_index=True)
    flush = ((every["timestamp"] - start) / pd.Timedelta(seconds=interval)).astype(int).clip(upper=count - 1)
    result = []
    for _, group in every.groupby(flush):
        cuts = np.linspace(0, len(group), SUBMITS_PER_FLUSH + 1).astype(int)
        group = group.reset_index(drop=True)
        result.append([group.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:]) if b > a])
    return result


def sql_rows(df: pd.DataFrame):
    """Rows for SQL: symbol as EXCHANGE/SYMBOL, times as integer nanoseconds."""
    return zip((df["exchange"] + "/" + df["symbol"]).tolist(), df["timestamp"].astype("int64").tolist(),
               df["receipt_timestamp"].astype("int64").tolist(), df["price"].tolist(), df["amount"].tolist(),
               df["side"].tolist(), df["trade_id"].tolist())


def sql_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A read SQL result as the store gives it: indexed by a datetime64 timestamp."""
    for column in ("timestamp", "receipt_timestamp"):
        frame[column] = frame[column].astype("datetime64[ns]")
    return frame.drop(columns="symbol").set_index("timestamp")


class SQLite:
    """SQLite used well: WAL, synchronous=NORMAL, executemany in one transaction, (symbol, ts) index."""

    def __init__(self, path: Path):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE trades (symbol TEXT, timestamp INTEGER, receipt_timestamp INTEGER,"
                        " price REAL, amount REAL, side TEXT, trade_id INTEGER)")
        self.db.execute("CREATE INDEX trades_symbol_time ON trades (symbol, timestamp)")

    def append(self, df: pd.DataFrame) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?, ?)", sql_rows(df))
        self.db.execute("COMMIT")

    def read(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        rows = self.db.execute("SELECT * FROM trades WHERE symbol = ? AND timestamp BETWEEN ? AND ?"
                               " ORDER BY timestamp", (symbol, start.value, end.value)).fetchall()
        return sql_frame(pd.DataFrame.from_records(rows, columns=COLUMNS))


class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1: COPY in, COPY out to pandas."""

    def __init__(self):
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = binaries[-1] if binaries else shutil.which("initdb")
        if initdb is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
        import psycopg  # only needed here

        self.psycopg, self.bin = psycopg, Path(initdb).parent
        self.folder = Path(tempfile.mkdtemp(prefix="tickscope-pg-"))
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.folder, "postgres")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._run("initdb", "-D", f"{self.folder}/db", "-A", "trust", "-U", "postgres", "--no-sync")
        self._run("pg_ctl", "-D", f"{self.folder}/db", "-l", f"{self.folder}/log", "-w", "start", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder}")
        self.db = psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", autocommit=True)

    def reset(self) -> None:
        """An empty, indexed ``trades`` table."""
        self.db.execute("DROP TABLE IF EXISTS trades")
        self.db.execute("CREATE TABLE trades (symbol TEXT, timestamp BIGINT, receipt_timestamp BIGINT,"
                        " price DOUBLE PRECISION, amount DOUBLE PRECISION, side TEXT, trade_id BIGINT)")
        self.db.execute("CREATE INDEX trades_symbol_time ON trades (symbol, timestamp)")

    def _run(self, program: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin / program), *args], check=True, capture_output=True)

    def append(self, df: pd.DataFrame) -> None:
        text = pd.DataFrame(dict(zip(COLUMNS, zip(*sql_rows(df))))).to_csv(index=False, header=False)
        with self.db.transaction(), self.db.cursor() as cursor:
            with cursor.copy("COPY trades FROM STDIN (FORMAT csv)") as copy:
                copy.write(text)

    def read(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        sql = self.psycopg.sql
        query = sql.SQL("COPY (SELECT * FROM trades WHERE symbol = {} AND timestamp BETWEEN {} AND {}"
                        " ORDER BY timestamp) TO STDOUT (FORMAT csv)").format(
            sql.Literal(symbol), sql.Literal(start.value), sql.Literal(end.value))
        buffer = io.BytesIO()
        with self.db.cursor() as cursor, cursor.copy(query) as copy:
            for chunk in copy:
                buffer.write(chunk)
        buffer.seek(0)
        types = {"symbol": object, "timestamp": np.int64, "receipt_timestamp": np.int64, "side": object, "trade_id": np.int64}
        return sql_frame(pd.read_csv(buffer, names=COLUMNS, dtype=types))

    def close(self) -> None:
        self.db.close()
        self._run("pg_ctl", "-D", f"{self.folder}/db", "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


def timed(function, *args, repeat: int = 1) -> float:
    """The median wall time of ``function(*args)`` in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def per_symbol(batch: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """A flush as raw ArcticDB calls see it: one sorted, indexed frame per symbol."""
    return [("/".join(key), part.drop(columns=["exchange", "symbol"]).set_index("timestamp").sort_index())
            for key, part in batch.groupby(["exchange", "symbol"], sort=False)]


def append_rates(batches: list[pd.DataFrame], work: Path, postgres) -> dict:
    """Seconds each store takes to store ``batches`` (one call per batch) into a fresh store."""
    from arcticdb.version_store.library import WritePayload

    name, seconds = f"a{len(list(work.iterdir()))}", {}
    store = TickStore(f"lmdb://{work}/{name}-store")
    seconds["arcticdb_tickstore"] = timed(lambda: [store.write("trades", b) for b in batches])
    prepared = [per_symbol(b) for b in batches]
    library = TickStore(f"lmdb://{work}/{name}-batch")._backend.libraries["trades"]
    seconds["arcticdb_raw_append_batch"] = timed(lambda: [library.append_batch(
        [WritePayload(s, f) for s, f in flush], prune_previous_versions=True) for flush in prepared])
    sqlite = SQLite(work / f"{name}.sqlite")
    seconds["sqlite"] = timed(lambda: [sqlite.append(b) for b in batches])
    if postgres is not None:
        postgres.reset()
        seconds["postgres"] = timed(lambda: [postgres.append(b) for b in batches])
    return seconds


def pipeline_rates(flushes: list[list[pd.DataFrame]], work: Path, postgres, interval: float = 1.0) -> dict:
    """Each store given the same flushes as the pipeline makes them (see :func:`pipeline_flushes`)."""
    whole = [pd.concat(flush, ignore_index=True) for flush in flushes]
    rows = sum(map(len, whole))
    writer = StoreWriter(TickStore(f"lmdb://{work}/w{len(list(work.iterdir()))}"), flush_interval=3600,
                         compact_interval=None)

    def through_writer():
        for flush in flushes:
            for batch in flush:
                writer.submit("trades", batch)
            writer.flush()
    seconds = {"arcticdb_storewriter": timed(through_writer)}
    writer.close()
    assert writer.rows_stored["trades"] == rows and writer.errors == 0
    seconds.update(append_rates(whole, work, postgres))
    sizes = [len(part) for batch in whole for _, part in per_symbol(batch)]
    rates = {name: rows / value for name, value in seconds.items()}
    return {"rows": rows, "flushes": len(flushes), "flush_interval": interval,
            "rows_per_flush": rows / len(flushes), "submits_per_flush": SUBMITS_PER_FLUSH,
            "rows_per_symbol_append": {"min": int(np.min(sizes)), "median": float(np.median(sizes)),
                                       "max": int(np.max(sizes))},
            "rows_per_s": rates, "busy": {name: value / (len(flushes) * interval) for name, value in seconds.items()},
            "ratio": ratios(rates, "arcticdb_storewriter"), "ratio_tickstore": ratios(rates, "arcticdb_tickstore")}


def read_rates(rng, work: Path, postgres, days: int, rows_per_day: int) -> dict:
    """Bulk-load 8 symbols over ``days`` into each store, then read one day of one symbol."""
    start = pd.Timestamp("2024-03-01")
    data = pd.concat([ticks(rng, "BINANCE", coin, start, days * rows_per_day, days * 86_400) for coin in COINS],
                     ignore_index=True)
    chunks = [part for _, part in data.groupby(data["timestamp"].dt.floor("6h"))]
    stores = {"arcticdb": TickStore(f"lmdb://{work}/reads"), "sqlite": SQLite(work / "reads.sqlite")}
    if postgres is not None:
        postgres.reset()
        stores["postgres"] = postgres
    load = {"arcticdb": lambda c: stores["arcticdb"].write("trades", c)}
    load.update({name: s.append for name, s in stores.items() if name != "arcticdb"})
    day_start, day_end = start + pd.Timedelta("1D"), start + pd.Timedelta("2D") - pd.Timedelta("1ns")
    reads = {"arcticdb": lambda: stores["arcticdb"].read_trades("BINANCE", "BTC-USDT", day_start, day_end)}
    reads.update({name: (lambda s=s: s.read("BINANCE/BTC-USDT", day_start, day_end))
                  for name, s in stores.items() if name != "arcticdb"})
    result = {"rows_loaded": len(data), "load_rows_per_s": {}, "read_seconds": {}, "read_rows_per_s": {}}
    for name in stores:
        result["load_rows_per_s"][name] = len(data) / timed(lambda: [load[name](c) for c in chunks])
        frame = reads[name]()
        result["read_rows"] = len(frame)
        seconds = timed(reads[name], repeat=5)
        result["read_seconds"][name] = seconds
        result["read_rows_per_s"][name] = len(frame) / seconds
        expected = data[(data["symbol"] == "BTC-USDT") & data["timestamp"].between(day_start, day_end)]
        assert len(frame) == len(expected) and np.isclose(frame["price"].sum(), expected["price"].sum())
    return result


def fragmentation(rng, work: Path, appends: int = 500, rows: int = 200) -> dict:
    """Reads of one symbol after ``appends`` small appends, before and after compact()."""
    store = TickStore(f"lmdb://{work}/fragmented")
    data = ticks(rng, "BINANCE", "BTC", pd.Timestamp("2024-03-01"), appends * rows, appends)
    for i in range(appends):
        store.write("trades", data.iloc[i * rows:(i + 1) * rows])
    library = store._backend.libraries["trades"]
    symbol = "BINANCE/BTC-USDT"
    reads = {"full": lambda: store.read_trades("BINANCE", "BTC-USDT"),
             "numeric": lambda: library.read(symbol, columns=["price", "amount"]).data}
    result = {"rows": len(data), "appends": appends,
              "segments_before": library.compact_data_explain_plan(symbol).num_row_slices_before}
    before = {name: timed(read, repeat=7) for name, read in reads.items()}
    for kind in ("trades", "quotes", "bars"):  # ArcticDB waits ~1 s on a new library's first listing
        store.symbols(kind)
    result["compact_ms"] = timed(store.compact) * 1e3
    result["segments_after"] = library.compact_data_explain_plan(symbol).num_row_slices_before
    after = {name: timed(read, repeat=7) for name, read in reads.items()}
    for name in reads:
        result[f"read_{name}_ms"] = {"fragmented": before[name] * 1e3, "compacted": after[name] * 1e3,
                                     "speedup": before[name] / after[name]}
    return result

def ratios(rates: dict, numerator: str, others=("sqlite", "postgres")) -> dict:
    return {other: rates[numerator] / rates[other] for other in others if other in rates}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--days", type=int, default=3, help="days of ticks for the read test")
    parser.add_argument("--rows-per-day", type=int, default=150_000, help="trades per symbol per day")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    work = Path(tempfile.mkdtemp(prefix="tickscope-bench-"))
    try:
        postgres, postgres_status = Postgres(), "ok"
    except Exception as error:  # not installed, or cannot start: say so and run the rest
        postgres, postgres_status = None, f"unavailable: {str(error).splitlines()[0]}"
    try:
        started = time.perf_counter()
        pipeline = {name: pipeline_rates(pipeline_flushes(rng, rate, count), work, postgres)
                    for name, (rate, count) in PROFILES.items()}
        sweep = {}
        for size in (50, 200, 1000, 5000, 20000):
            sized = flushes(rng, max(2, 100_000 // (24 * size)), size, size + 1)
            rows = sum(map(len, sized))
            sweep[size] = {name: rows / value for name, value in append_rates(sized, work, postgres).items()}
        reads = read_rates(rng, work, postgres, args.days, args.rows_per_day)
        result = {
            "postgres": postgres_status,
            "pipeline_trades_per_s": {name: rate for name, (rate, _) in PROFILES.items()},
            "append_pipeline": pipeline,
            "append_sweep_rows_per_s": sweep,
            "append_sweep_ratio": {size: ratios(rates, "arcticdb_tickstore") for size, rates in sweep.items()},
            "read_one_day": reads,
            "read_ratio": ratios(reads["read_rows_per_s"], "arcticdb"),
            "fragmentation": fragmentation(rng, work),
            "targets": {"append_ratio": 5.0, "read_ratio": 20.0},
        }
        result["seconds"] = time.perf_counter() - started
    finally:
        if postgres is not None:
            postgres.close()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, default=float))
    else:
        print(table(result))
    return result


def table(result: dict) -> str:
    """A readable summary of ``result``."""
    lines = [f"PostgreSQL: {result['postgres']}"]
    for name, p in result["append_pipeline"].items():
        sizes = p["rows_per_symbol_append"]
        lines.append(f"Appends, {name} ({result['pipeline_trades_per_s'][name]:,} trades/s): {p['flushes']} flushes of "
                     f"{p['flush_interval']:g} s, {p['rows_per_flush']:,.0f} rows in {p['submits_per_flush']} submits, "
                     f"{sizes['min']:,}-{sizes['max']:,} (median {sizes['median']:,.0f}) rows per symbol-append")
        lines += [f"  {k:28s} {v:12,.0f} rows/s  busy {p['busy'][k]:7.1%} of a core" for k, v in p["rows_per_s"].items()]
        lines += [f"  ArcticDB (StoreWriter) / {k}: {v:.2f}x" for k, v in p["ratio"].items()]
        lines += [f"  ArcticDB (TickStore.write) / {k}: {v:.2f}x" for k, v in p["ratio_tickstore"].items()]
    lines.append("Rows per append sweep (rows/s):")
    for size, rates in result["append_sweep_rows_per_s"].items():
        lines.append(f"  {size:5d}: " + "  ".join(f"{k} {v:,.0f}" for k, v in rates.items()))
    reads = result["read_one_day"]
    lines.append(f"One-day read of one symbol ({reads['read_rows']:,} of {reads['rows_loaded']:,} rows):")
    for name, seconds in reads["read_seconds"].items():
        lines.append(f"  {name:10s} {seconds * 1e3:9.1f} ms  {reads['read_rows_per_s'][name]:12,.0f} rows/s"
                     f"  (bulk load {reads['load_rows_per_s'][name]:,.0f} rows/s)")
    lines += [f"  ArcticDB / {k}: {v:.1f}x" for k, v in result["read_ratio"].items()]
    f = result["fragmentation"]
    lines.append(f"Fragmented symbol ({f['appends']} appends, {f['rows']:,} rows, {f['segments_before']} -> "
                 f"{f['segments_after']} segments, compact {f['compact_ms']:.0f} ms):")
    for name in ("full", "numeric"):
        r = f[f"read_{name}_ms"]
        lines.append(f"  read {name:8s} {r['fragmented']:6.1f} ms -> {r['compacted']:6.1f} ms ({r['speedup']:.1f}x)")
    lines.append(f"Targets: appends >= {result['targets']['append_ratio']}x, one-day read >= "
                 f"{result['targets']['read_ratio']}x; took {result['seconds']:.0f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
