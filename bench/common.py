"""What the benchmarks share: a local exchange in its own process, RSS, and output."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import psutil

from analytics.exchange import attach


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def exchange_process(rate="inf", source="simulator", symbols=None, timeout=60.0):
    """``python -m analytics exchange`` in a child process; yields an attached RemoteExchange."""
    ws_port, rest_port = free_port(), free_port()
    args = [sys.executable, "-m", "analytics", "exchange", "--source", source, "--rate", str(rate),
            "--port", str(ws_port), "--rest-port", str(rest_port)]
    if symbols:
        args += ["--symbols", *symbols]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    remote = attach(f"http://127.0.0.1:{rest_port}/tickscope/status")
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(f"local exchange did not start: {log.read().decode()[-2000:]}")
                    time.sleep(0.1)
            remote.process = psutil.Process(proc.pid)
            yield remote
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def best_ms(call, repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``call`` after one to warm up, in milliseconds."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def rss_mb(pid=None) -> float:
    return psutil.Process(pid or os.getpid()).memory_info().rss / 2**20


def emit(result: dict, as_json: bool, title: str) -> None:
    """Print one JSON object, or a readable table."""
    if as_json:
        print(json.dumps(result, indent=None, sort_keys=True))
        return
    print(title)
    width = max(map(len, result))
    for key, value in result.items():
        shown = f"{value:,.3f}" if isinstance(value, float) else value
        print(f"  {key:<{width}}  {shown}")
