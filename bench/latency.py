"""Tick-to-screen latency of the price board in headless Chromium.

Serves a page holding :class:`~analytics.views.board.PriceBoard` (``pn.serve`` on a thread
of this process, with one shared :class:`~analytics.ingest.Ingest` of the simulated market
as ``python -m analytics serve`` runs it: feed workers and a store) and opens it in Debian's
Chromium. A ``MutationObserver`` on the board's "last trade" line records, on the next
animation frame after each change, ``Date.now()`` minus the exchange timestamp of the
newest trade the board reflects (same machine, same clock). Every animation frame also
samples the age of what is on screen, the staleness a viewer sees at any moment.

The simulated exchange stamps a trade with its event time in the market model (in ms),
which advances in 10 ms cells up to the wall clock every 20 ms, and sends each step's
trades at once (``analytics.exchange.simulator``): a stamp is 0-30 ms before its trade is
sent (under 10 ms for the newest of a step, the one the board shows), as a real venue's
match time precedes its publish time. ``exchange→receipt`` below measures that plus the
socket and the feed worker.

The model's trades are a bursty Cox process whose ``rate`` is a long-run mean: over the
first minutes it delivers about a third of it, with bursts of several times. To hold the
load steady, the bench rescales the model's rate four times a second by the intensity it
integrated (its ``compensator``), so trades arrive at ``--trades`` per second as a
Poisson stream; the per-second rate measured is reported.

The same run reports, for context: the same page at 1 Hz (the baseline a slower board
gives), the pipeline's receipt→hub and receipt→session latencies, the server CPU of one
session update and the bytes a session receives per second.

``--url URL`` measures an already served page instead (e.g. the app's ``/``), browser
figures only. ``--json`` prints one JSON object.
"""

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))
from common import emit, free_port  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"]

# Installed in the page: watches the board's last-trade line (inside Panel's shadow roots).
OBSERVER = """
() => {
  const find = (root) => {
    const hit = root.querySelector(".tickscope-last-tick");
    if (hit) return hit;
    for (const el of root.querySelectorAll("*")) {
      if (el.shadowRoot) {
        const inner = find(el.shadowRoot);
        if (inner) return inner;
      }
    }
    return null;
  };
  const first = find(document);
  const out = window.__latency = {tick: [], age: [], changes: 0};
  const holder = first.getRootNode();  // the pane's shadow root: the line itself is replaced on update
  let last = Number(first.dataset.exchangeMs);
  const current = () => Number((holder.querySelector(".tickscope-last-tick") || first).dataset.exchangeMs);
  new MutationObserver(() => {
    const ms = current();
    if (ms === last || !ms) return;
    last = ms;
    out.changes += 1;
    requestAnimationFrame(() => out.tick.push(Date.now() - ms));
  }).observe(holder, {childList: true, subtree: true, attributes: true, characterData: true});
  const sample = () => {
    if (last) out.age.push(Date.now() - last);
    requestAnimationFrame(sample);
  };
  requestAnimationFrame(sample);
  return last;
}
"""


def quantiles(values, prefix: str) -> dict:
    values = np.asarray(values, dtype=float)
    if not len(values):
        return {f"{prefix}_p50_ms": float("nan"), f"{prefix}_p95_ms": float("nan"), f"{prefix}_samples": 0}
    return {f"{prefix}_p50_ms": float(np.percentile(values, 50)), f"{prefix}_p95_ms": float(np.percentile(values, 95)),
            f"{prefix}_samples": len(values)}


class Server:
    """The ingest and a Panel server on their own thread and event loop, as the app runs them."""

    def __init__(self, trades: float, symbols: int, store):
        from analytics.feeds import DEFAULT_SYMBOLS

        self.trades, self.symbols, self.store = trades, list(DEFAULT_SYMBOLS[:symbols]), store
        self.port = free_port()
        self.session_cpu, self.shared_cpu, self.received = [], [], []
        self._ready = threading.Event()
        self._failure = None
        self._thread = threading.Thread(target=self._run, name="server", daemon=True)

    def __enter__(self):
        self._thread.start()
        if not self._ready.wait(120) or self._failure:
            raise RuntimeError(f"the server did not start: {self._failure}")
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(120)

    def _page(self, rate: float):
        import panel as pn

        from analytics.views.board import PriceBoard

        bench = self

        class TimedBoard(PriceBoard):
            """Records the server CPU of each update (with sending it): the shared board's part and this session's."""

            def _tick(self):
                start, shared = time.thread_time(), len(bench.shared_cpu)
                super()._tick()
                used = time.thread_time() - start - sum(bench.shared_cpu[shared:])
                if rate == 4.0:
                    bench.session_cpu.append(used)

        return pn.Column(TimedBoard(ingest=self.ingest, rate=rate), sizing_mode="stretch_width")

    def _time_shared_updates(self):
        from analytics.views.board import BoardState

        update, shared = BoardState.update, self.shared_cpu

        def timed(state, *args, **kwargs):
            start = time.thread_time()
            changed = update(state, *args, **kwargs)
            if changed:
                shared.append(time.thread_time() - start)
            return changed

        BoardState.update = timed

    def _run(self):
        import panel as pn

        from analytics.ingest import Ingest

        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.set_exception_handler(_quiet)
        for name in ("tornado", "bokeh.server"):  # a page closed mid-message is no news here
            logging.getLogger(name).setLevel(logging.CRITICAL)
        self.ingest = Ingest(source="simulator", symbols=self.symbols, rate=self.trades / 3, store=self.store)
        try:
            self.loop.run_until_complete(self.ingest.start())
            self.loop.create_task(self.steady())
            pn.extension("tabulator")
            self._time_shared_updates()
            with contextlib.redirect_stdout(sys.stderr):  # Panel prints where it serves
                server = pn.serve({"/": lambda: self._page(4.0), "/baseline": lambda: self._page(1.0)},
                                  port=self.port, address="127.0.0.1", show=False, start=False, title="latency",
                                  check_unused_sessions_milliseconds=500,
                                  unused_session_lifetime_milliseconds=500)  # closed pages go at once
            server.start()
        except Exception as error:  # reported by __enter__
            self._failure = error
            self._ready.set()
            self.loop.run_until_complete(self.ingest.stop())
            return
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.stop()
            self.loop.run_until_complete(self.ingest.stop())

    async def steady(self, interval: float = 0.25):
        """Hold the simulated market at ``self.trades`` trades/s (see the module's docstring)."""
        model = self.ingest.exchange._source.model  # no public setter for the live rate
        compensator, clock = model.compensator, time.monotonic()
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            intensity = (model.compensator - compensator) / (now - clock) / model.trade_rate  # trades/s per unit
            if intensity > 0:
                model.trade_rate = min(max(self.trades / intensity, self.trades / 100), self.trades * 10)
            compensator, clock = model.compensator, now
            self.received.append((now, trades_received(self.ingest)))

    def call(self, function):
        """Run ``function()`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(_call(function), self.loop).result(30)


def _quiet(loop, context) -> None:
    """The loop's exception handler: a page closed while a message was on its way is expected."""
    from tornado.iostream import StreamClosedError
    from tornado.websocket import WebSocketClosedError

    if not isinstance(context.get("exception"), (StreamClosedError, WebSocketClosedError)):
        loop.default_exception_handler(context)


async def _call(function):
    return function()


def watch(browser, url: str, seconds: float, started=None, warm_up: float = 3.0) -> dict:
    """Open ``url``, observe the board for ``seconds``; tick-to-screen and displayed-age samples and bytes/s.

    ``started()`` is called when the observation starts (after ``warm_up`` seconds of live board).
    """
    page = browser.new_page(viewport={"width": 1400, "height": 700})
    received = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: received.append(len(payload))))
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.locator(".tickscope-last-tick:not([data-exchange-ms='0'])").wait_for(timeout=60_000)
    page.wait_for_timeout(warm_up * 1000)
    page.evaluate(OBSERVER)
    if started is not None:
        started()
    start_bytes = sum(received)
    page.wait_for_timeout(seconds * 1000)
    samples = page.evaluate("window.__latency")
    sent = sum(received) - start_bytes
    page.close()
    if errors:
        raise RuntimeError(f"the page failed: {errors[0]}")
    return {"tick": samples["tick"], "age": samples["age"], "bytes_per_s": sent / seconds}


def trades_received(ingest) -> int:
    return sum(v for (_, group, name), v in ingest.counters.snapshot().items() if group == "trades")


def exchange_to_receipt(hub) -> np.ndarray:
    """Receipt minus exchange timestamp (ms) of the trades the hub holds."""
    values = []
    for key in hub.keys("trades"):
        trades = hub.tail(key, 5000)
        values.append((trades["receipt_timestamp"] - trades["timestamp"]).dt.total_seconds().to_numpy() * 1e3)
    return np.concatenate(values) if values else np.array([])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trades", type=float, default=2000, help="simulated trades/s in all (3 exchanges)")
    parser.add_argument("--symbols", type=int, default=8, help="coins (of the eight default ones)")
    parser.add_argument("--duration", type=float, default=30, help="seconds observed at 4 Hz")
    parser.add_argument("--baseline", type=float, default=20, help="seconds observed at 1 Hz (0: skip)")
    parser.add_argument("--store", default=None, help="ArcticDB URI (default: a temporary lmdb store)")
    parser.add_argument("--url", help="measure this served page instead (e.g. the app's /): browser figures only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    if args.url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            seen = watch(browser, args.url, args.duration)
            browser.close()
        result = {"url": args.url, **quantiles(seen["tick"], "tick_to_screen"),
                  **quantiles(seen["age"], "displayed_age"), "session_kbytes_per_s": seen["bytes_per_s"] / 1e3,
                  "load_average_1m": os.getloadavg()[0]}
        emit(result, args.json, f"Tick-to-screen latency of {args.url}")
        return

    with tempfile.TemporaryDirectory() as tmp, Server(args.trades, args.symbols, args.store or f"lmdb://{tmp}") as srv:
        ingest = srv.ingest
        result = {"trades_per_s_target": args.trades, "coins": args.symbols, "exchanges": 3}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            marks = {}

            def started():
                srv.call(lambda: (ingest.pipeline.hub_latency.reset(), ingest.screen_latency.reset(),
                                  srv.session_cpu.clear(), srv.shared_cpu.clear()))
                marks.update(trades=srv.call(lambda: trades_received(ingest)), clock=time.monotonic(), cpu=os.times())

            fast = watch(browser, f"http://127.0.0.1:{srv.port}/", args.duration, started)
            cpu = os.times()
            elapsed = time.monotonic() - marks["clock"]
            result["trades_per_s_measured"] = (srv.call(lambda: trades_received(ingest)) - marks["trades"]) / elapsed
            counts = np.array([(t, n) for t, n in srv.received if t >= marks["clock"]][::4])  # one a second
            per_second = np.diff(counts[:, 1]) / np.diff(counts[:, 0])
            result.update({"trades_per_s_p5": float(np.percentile(per_second, 5)),
                           "trades_per_s_p95": float(np.percentile(per_second, 95))})
            result.update(quantiles(fast["tick"], "tick_to_screen"))
            result.update(quantiles(fast["age"], "displayed_age"))
            result["session_kbytes_per_s"] = fast["bytes_per_s"] / 1e3
            hub, screen = ingest.pipeline.hub_latency, ingest.screen_latency
            result.update({"receipt_to_hub_p50_ms": hub.quantile(0.5) * 1e3, "receipt_to_hub_p95_ms":
                           hub.quantile(0.95) * 1e3, "receipt_to_session_p50_ms": screen.quantile(0.5) * 1e3,
                           "receipt_to_session_p95_ms": screen.quantile(0.95) * 1e3})
            result.update(quantiles(srv.call(lambda: exchange_to_receipt(ingest.hub)), "exchange_to_receipt"))
            result.update(quantiles(np.array(srv.session_cpu) * 1e3, "session_update_cpu"))
            result.update(quantiles(np.array(srv.shared_cpu) * 1e3, "shared_board_update_cpu"))
            # this process: server, pipeline and the simulated exchange (the feed workers are others)
            used = (cpu.user + cpu.system) - (marks["cpu"].user + marks["cpu"].system)
            result["server_process_cpu_percent"] = 100 * used / elapsed
            if args.baseline > 0:
                slow = watch(browser, f"http://127.0.0.1:{srv.port}/baseline", args.baseline)
                result.update(quantiles(slow["tick"], "baseline_1hz_tick_to_screen"))
                result.update(quantiles(slow["age"], "baseline_1hz_displayed_age"))
            browser.close()
        result["load_average_1m"] = os.getloadavg()[0]
        result["target_p95_ms"] = 250
        result["meets_target"] = bool(result["tick_to_screen_p95_ms"] <= 250)
    emit(result, args.json, "Price board tick-to-screen latency (headless Chromium, simulated market)")


if __name__ == "__main__":
    main()
