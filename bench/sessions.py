"""Sessions per process: live sessions one server keeps at 4 Hz, against a naive HoloViews page.

The server under test is a separate process: the app (``python -m analytics serve``,
simulated market at ``--rate`` trades/s per exchange, store in a temp dir), sessions spread
evenly over ``--pages``; then, the same way, the naive baseline (``bench/naive.py``: a
HoloViews ``Buffer`` + ``DynamicMap`` page). This process is the client
(``bokeh_client.BokehSession``: no browser). The number N of open sessions ramps up; at
each N, after a settling pause, one window of ``--seconds`` measures:

* server CPU: the serving process (Tornado, pipeline, local exchange thread), its child
  processes (feed workers) apart; ``idle`` is the same with no session open;
* session-updates: ``PATCH-DOC`` messages received, over the messages one update sends
  (measured per page at the first step: bursts of messages < 100 ms apart);
* lag: round trip of websocket pings sent every 0.5 s to a different session, through the
  server's event loop and behind everything already queued for that session.

N is kept up with when every page's sessions get at least 90 % of 4 updates/s, no session
is lost, and no backlog builds: the lag's 90th percentile is at most 500 ms (two update
periods) and its median over the window's last third exceeds that over its first third by
at most 100 ms. The ramp stops at the first N that is not kept up with.
``cpu_ms_per_session_update`` = (server CPU in the window - idle CPU) / session-updates, at
the largest N kept up with (``sessions_at_4hz``), or at the first N if none was. On a
machine shared with other work the server may get less than a core and fall behind early:
``one_core_sessions_at_4hz`` is what one core would keep at that cost,
(1 core - idle) / (cost x 4 Hz).

``--memory``: open and close ``--memory-sessions`` sessions in waves of ``--wave``. Once
every session is destroyed, ``/tickscope/sessions`` must count no session, view, hub
subscriber or periodic callback (``clean``). RSS: ``rss_returned`` says whether it is back
at its baseline (taken after a warm-up wave) within max(5 MB, 10 % of the peak's rise);
the allocator keeps some freed memory, so the leak test is ``rss_flat_across_waves``: RSS
with a wave open grows by at most 1 MB per wave from the second wave on. The hub fills with
time whatever the sessions do: that drift is kept small (one market, ``--memory-rate``),
measured for 10 s with no session and discounted. If the server's counts include
``python_blocks`` (``sys.getallocatedblocks()`` after ``?gc=1``), they are reported too.
Last, ``rss_per_session_mb``: the rise from one wave of sessions open to two.

    python bench/sessions.py [--pages / /chart] [--ramp 5 10 20 ...] [--baseline-ramp 1 2 ...] [--json]
    python bench/sessions.py --pages /chart --baseline-ramp      # one page, no baseline
    python bench/sessions.py --memory [--json]
"""

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import aiohttp  # noqa: E402
import psutil  # noqa: E402
from bokeh_client import BokehSession  # noqa: E402
from common import emit, free_port, rss_mb  # noqa: E402

ROOT = Path(__file__).parents[1]
RATE_HZ = 4.0  # the views' update rate
KEPT_UP = 0.9  # share of RATE_HZ every page's sessions must get
MAX_LAG = 0.5  # seconds: the lag's 90th percentile may not exceed two update periods
MAX_GROWTH = 0.1  # seconds: nor may its median grow more than this from the window's first third to its last
COUNTS = "/tickscope/sessions"
MEMORY_SYMBOLS = ["BTC-USDT"]  # one market: the hub's own growth (the drift to discount) is 8 times slower
HELD = ("sessions", "active_views", "hub_subscribers", "periodic_callbacks")  # all 0 once sessions are gone


def app_command(port: int, store: str, rate: float, symbols=()) -> list:
    return [sys.executable, "-m", "analytics", "serve", "--source", "simulator", "--rate", str(rate),
            "--port", str(port), "--store", store, *(["--symbols", *symbols] if symbols else [])]


def naive_command(port: int, store: str, rate: float, symbols=()) -> list:
    return [sys.executable, str(ROOT / "bench" / "naive.py"), "--rate", str(rate), "--port", str(port),
            "--store", store, *(["--symbols", *symbols] if symbols else [])]


def server_counts(base: str, gc: bool = False):
    """The server's ``/tickscope/sessions`` JSON (after a full collection with ``gc``), or None without the route."""
    try:
        with urllib.request.urlopen(base + COUNTS + ("?gc=1" if gc else ""), timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


@contextlib.contextmanager
def server_process(command, rate: float, symbols=(), timeout: float = 120.0):
    """A server process on a free port with a temp store; yields (base URL, psutil.Process)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "server.log", "wb") as log:
        proc = subprocess.Popen(command(port, f"lmdb://{tmp}/store", rate, symbols), cwd=ROOT, stdout=log,
                                stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    server_counts(base)  # any answer means the loop runs (the ingest starts before it)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"server did not start: {(Path(tmp) / 'server.log').read_text()[-3000:]}")
                    time.sleep(0.3)
            yield base, psutil.Process(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def cpu_seconds(process: psutil.Process) -> tuple[float, float]:
    """(CPU seconds of the process, of its children)."""
    children = 0.0
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            children += sum(child.cpu_times()[:2])
    return sum(process.cpu_times()[:2]), children


class Clients:
    """The open sessions of one server, spread round-robin over its pages."""

    def __init__(self, http, base: str, pages: list, concurrency: int = 4):
        self.http, self.base, self.pages = http, base, list(pages)
        self.sessions: list[tuple[str, BokehSession]] = []
        self.failed = 0
        self._opening = asyncio.Semaphore(concurrency)

    async def _open(self, page: str):
        async with self._opening:
            try:
                return page, await BokehSession(self.http, self.base + page).open()
            except (OSError, aiohttp.ClientError, TimeoutError, RuntimeError):
                self.failed += 1
                return None

    async def resize(self, n: int) -> None:
        """Open or close sessions until ``n`` are open (the newest close first)."""
        closing, self.sessions = self.sessions[n:], self.sessions[:n]
        await asyncio.gather(*(session.close() for _, session in closing))
        missing = [self.pages[i % len(self.pages)] for i in range(len(self.sessions), n)]
        opened = await asyncio.gather(*(self._open(page) for page in missing))
        self.sessions += [item for item in opened if item is not None]

    def counts(self) -> list:
        return [(page, s.patches, s.updates, s.patch_bytes, s.closed) for page, s in self.sessions]


async def _lags(clients: Clients, seconds: float) -> list:
    lags, tasks = [], []

    async def probe(session):
        sent = time.monotonic()
        with contextlib.suppress(Exception):
            lags.append((sent, await session.ping(timeout=seconds + 5)))

    for i in range(int(seconds / 0.5)):
        if clients.sessions:
            tasks.append(asyncio.create_task(probe(clients.sessions[i % len(clients.sessions)][1])))
        await asyncio.sleep(0.5)
    await asyncio.gather(*tasks)
    return [lag for _, lag in sorted(lags)]


async def window(server: psutil.Process, clients: Clients, seconds: float, per_update=None) -> tuple[dict, dict]:
    """One measurement at the current number of sessions, and the messages per update of each page."""
    me = psutil.Process()
    before, cpu0, mine0, start = clients.counts(), cpu_seconds(server), sum(me.cpu_times()[:2]), time.perf_counter()
    lags = await _lags(clients, seconds)
    after, cpu1, elapsed = clients.counts(), cpu_seconds(server), time.perf_counter() - start
    pages = {}
    for (page, p0, u0, b0, _), (_, p1, u1, b1, closed) in zip(before, after):
        stats = pages.setdefault(page, {"sessions": 0, "patches": 0, "bursts": 0, "bytes": 0, "lost": 0})
        stats["sessions"] += 1
        stats["patches"] += p1 - p0
        stats["bursts"] += u1 - u0
        stats["bytes"] += b1 - b0
        stats["lost"] += closed
    per_update = dict(per_update or {})  # calibrated on a page's first window: its bursts are its updates
    for page, stats in pages.items():
        per_update.setdefault(page, max(stats["patches"], 1) / max(stats["bursts"], 1))
    updates = 0.0
    for page, stats in pages.items():
        stats["updates"] = stats["patches"] / per_update[page]
        stats["updates_per_session_s"] = stats["updates"] / stats["sessions"] / elapsed
        updates += stats["updates"]
    third = max(len(lags) // 3, 1)
    growth = statistics.median(lags[-third:]) - statistics.median(lags[:third]) if lags else None
    lags.sort()
    result = {
        "sessions": len(clients.sessions),
        "cpu_cores": (cpu1[0] - cpu0[0]) / elapsed,
        "worker_cpu_cores": (cpu1[1] - cpu0[1]) / elapsed,
        "client_cpu_cores": (sum(me.cpu_times()[:2]) - mine0) / elapsed,
        "session_updates_per_s": updates / elapsed,
        "patch_docs_per_s": sum(s["patches"] for s in pages.values()) / elapsed,
        "kb_per_s": sum(s["bytes"] for s in pages.values()) / elapsed / 1e3,
        "updates_per_session_s": {page: round(s["updates_per_session_s"], 2) for page, s in pages.items()},
        "lag_p50_ms": 1e3 * lags[len(lags) // 2] if lags else None,
        "lag_p90_ms": 1e3 * lags[int(len(lags) * 0.9)] if lags else None,
        "lag_growth_ms": 1e3 * growth if lags else None,
        "lost_sessions": sum(s["lost"] for s in pages.values()),
        "rss_mb": rss_mb(server.pid),
        "seconds": elapsed,
    }
    result["kept_up"] = bool(pages) and (
        all(s["updates_per_session_s"] >= KEPT_UP * RATE_HZ for s in pages.values())
        and result["lag_p90_ms"] is not None and result["lag_p90_ms"] <= MAX_LAG * 1e3
        and result["lag_growth_ms"] <= MAX_GROWTH * 1e3
        and result["lost_sessions"] == 0)
    return result, per_update


async def ramp(base: str, server: psutil.Process, pages: list, steps: list, seconds: float, settle: float) -> dict:
    """Idle window, then one window per number of sessions until one is not kept up with."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        clients = Clients(http, base, pages)
        await asyncio.sleep(settle)
        idle, _ = await window(server, clients, seconds)
        windows, per_update = [], None
        try:
            for n in steps:
                await clients.resize(n)
                await asyncio.sleep(settle)
                result, per_update = await window(server, clients, seconds, per_update)
                result["failed_to_open"] = clients.failed
                windows.append(result)
                if not result["kept_up"]:
                    break
        finally:
            await clients.resize(0)
    kept = [w for w in windows if w["kept_up"]]  # all but a last one that was not
    best = kept[-1] if kept else None
    costed = best or windows[0]  # the cost at capacity, or at the first step if none was kept up with
    cpu_ms = 1e3 * (costed["cpu_cores"] - idle["cpu_cores"]) / max(costed["session_updates_per_s"], 1e-9)
    return {"idle": idle, "windows": windows, "best": best, "messages_per_update": per_update,
            "cpu_ms_per_session_update": cpu_ms,
            "one_core_sessions_at_4hz": int((1 - idle["cpu_cores"]) * 1e3 / (cpu_ms * RATE_HZ)) if cpu_ms > 0 else None}


def run_ramp(command, pages, steps, args) -> dict:
    with server_process(command, args.rate) as (base, server):
        return asyncio.run(ramp(base, server, pages, steps, args.seconds, args.settle))


async def _memory(base: str, server: psutil.Process, pages: list, total: int, wave: int, timeout: float) -> dict:
    """Open and close ``total`` sessions ``wave`` at a time; RSS against the server's own drift."""

    async def settled() -> dict:
        """Wait until the server holds nothing for sessions; then its counts (None without the route)."""
        deadline = time.monotonic() + timeout
        while True:
            counts = await asyncio.to_thread(server_counts, base)
            if counts is None or not any(counts.get(key) for key in HELD) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        if counts is None:  # no counts to poll: wait out Bokeh's default unused-session lifetime + check
            await asyncio.sleep(35)
        collected = await asyncio.to_thread(server_counts, base, gc=True)
        return collected and {key: collected.get(key) for key in HELD}, (collected or {}).get("python_blocks")

    def rss() -> tuple[float, float]:
        return time.monotonic(), rss_mb(server.pid)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        clients = Clients(http, base, pages)
        await clients.resize(min(wave, 10))  # warm-up: first-use imports, caches, templates
        await asyncio.sleep(3)
        await clients.resize(0)
        _, blocks = await settled()
        idle = []  # the hub fills with time whatever the sessions: that drift is measured, then discounted
        for _ in range(11):
            idle.append(rss())
            await asyncio.sleep(1)
        drift = statistics.linear_regression(*zip(*idle)).slope
        (start, baseline), peaks, opened = idle[-1], [], 0
        while opened < total:
            n = min(wave, total - opened)
            await clients.resize(n)
            await asyncio.sleep(3)
            now = rss()
            peaks.append(now[1] - drift * (now[0] - start))
            opened += n
            await clients.resize(0)
        counts, blocks_after = await settled()
        end, after = rss()
        # footprint: from one wave open to two (beyond any memory freed earlier and kept by the allocator)
        footprint = []
        for n in (wave, 2 * wave):
            await clients.resize(n)
            await asyncio.sleep(3)
            footprint.append(rss())
        await clients.resize(0)
    (t1, rss1), (t2, rss2) = footprint
    per_session = (rss2 - rss1 - drift * (t2 - t1)) / wave
    expected = baseline + drift * (end - start)
    growth = statistics.linear_regression(range(len(peaks) - 1), peaks[1:]).slope if len(peaks) > 2 else None
    return {"rss_baseline_mb": baseline, "rss_after_mb": after, "rss_expected_after_mb": expected,
            "rss_left_mb": after - expected, "rss_drift_mb_per_min": 60 * drift,
            "rss_per_session_mb": per_session, "sessions_opened": opened,
            "failed_to_open": clients.failed, "counts_after": counts,
            "python_blocks_baseline": blocks, "python_blocks_after": blocks_after,
            "rss_open_by_wave_mb": [round(peak, 1) for peak in peaks], "rss_growth_per_wave_mb": growth,
            "rss_returned": after - expected <= max(5.0, 0.1 * (max(peaks) - baseline)),
            "rss_flat_across_waves": growth is not None and growth <= 1.0,
            "clean": counts is not None and not any(counts.values())}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", nargs="+", default=["/", "/chart"], help="app pages, sessions spread evenly")
    parser.add_argument("--ramp", nargs="+", type=int, default=[5, 10, 20, 40, 60, 80, 120, 160],
                        help="numbers of sessions of the app")
    parser.add_argument("--baseline-ramp", nargs="*", type=int, default=[1, 2, 3, 4, 6, 8, 12, 16],
                        help="numbers of sessions of the naive page (none: skip the baseline)")
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per step")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds between opening sessions and measuring")
    parser.add_argument("--rate", type=float, default=100.0, help="simulated trades/s per exchange")
    parser.add_argument("--memory", action="store_true", help="the session memory check instead of the ramp")
    parser.add_argument("--memory-sessions", type=int, default=100, help="sessions opened and closed in all")
    parser.add_argument("--wave", type=int, default=10, help="sessions open at once in the memory check")
    parser.add_argument("--memory-rate", type=float, default=10.0,
                        help="trades/s per exchange in the memory check (the hub's growth is discounted)")
    parser.add_argument("--naive", action="store_true", help="run the memory check on the naive page")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    if args.memory:
        command, pages = (naive_command, ["/"]) if args.naive else (app_command, args.pages)
        with server_process(command, args.memory_rate, MEMORY_SYMBOLS) as (base, server):
            result = asyncio.run(_memory(base, server, pages, args.memory_sessions, args.wave, timeout=60.0))
        result.update(pages=pages, server="naive" if args.naive else "app", load_1m_at_start=load)
        emit(result, args.json, "Session memory: sessions opened and closed in waves")
        return result
    ours = run_ramp(app_command, args.pages, args.ramp, args)
    naive = run_ramp(naive_command, ["/"], args.baseline_ramp, args) if args.baseline_ramp else None

    def at_capacity(run, key):
        return (run["best"][key] if run["best"] else 0) if run else None

    updates, baseline_updates = at_capacity(ours, "session_updates_per_s"), at_capacity(naive, "session_updates_per_s")
    result = {
        "sessions_at_4hz": at_capacity(ours, "sessions"),
        "baseline_sessions_at_4hz": at_capacity(naive, "sessions"),
        "cpu_ms_per_session_update": ours["cpu_ms_per_session_update"],
        "baseline_cpu_ms_per_session_update": naive and naive["cpu_ms_per_session_update"],
        "session_updates_per_s": updates,
        "baseline_session_updates_per_s": baseline_updates,
        "updates_ratio": updates / baseline_updates if baseline_updates else None,
        "one_core_sessions_at_4hz": ours["one_core_sessions_at_4hz"],
        "baseline_one_core_sessions_at_4hz": naive and naive["one_core_sessions_at_4hz"],
        "idle_cpu_cores": ours["idle"]["cpu_cores"],
        "baseline_idle_cpu_cores": naive and naive["idle"]["cpu_cores"],
        "messages_per_update": ours["messages_per_update"],
        "pages": args.pages, "rate": args.rate, "seconds_per_step": args.seconds, "load_1m_at_start": load,
        "ramp": [_brief(w) for w in ours["windows"]],
        "baseline_ramp": [_brief(w) for w in naive["windows"]] if naive else None,
    }
    emit(result, args.json, "Sessions per process: the app against a naive HoloViews page")
    return result


def _brief(w: dict) -> dict:
    """One step of a ramp, rounded for printing."""
    return {key: round(value, 3) if isinstance(value, float) else value for key, value in w.items()}


if __name__ == "__main__":
    main()
