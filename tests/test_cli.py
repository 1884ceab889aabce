"""``python -m analytics``: help, and one clear line with exit code 2 for every bad input."""

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DATA = ROOT.parent / "shared" / "data"


def run(*args, cwd=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "analytics", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or ROOT)


@pytest.mark.parametrize("command", [[], ["exchange"], ["ingest"], ["serve"]])
def test_help(command):
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "usage:" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["ingest", "--source", "bogus"], "unknown source 'bogus'"),
    (["ingest", "--source", "replay:/no/such/folder"], "does not exist"),
    (["ingest", "--exchanges", "NYSE"], "unknown exchange NYSE"),
    (["ingest", "--symbols", "btcusdt"], "symbols must look like BTC-USDT"),
    (["ingest", "--duration", "-3"], "must be positive"),
    (["ingest", "--rate", "abc"], "invalid _positive value"),
    (["ingest", "--store", "nosuchscheme://x"], "store"),
    (["serve", "--update-rate", "50", "--store", "mem://"], "update rate must be 0.1 to 20 per second"),
    (["serve", "--source", "bogus"], "unknown source 'bogus'"),
    (["serve", "--source", "live", "--history", "7", "--store", "mem://"], "simulated history goes with the simulator"),
    (["serve", "--source", "simulator", "--history", "-1", "--store", "mem://"], "--history must be 0 or more days"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_get_one_line_and_exit_2(args, message, tmp_path):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_served_simulator_history_fills_only_markets_without_bars(tmp_path):
    from analytics.storage import TickStore
    from app.serve import _simulated_history

    store = TickStore(f"lmdb://{tmp_path}/store")
    _simulated_history(store, ["BTC-USDT"], ["BINANCE"], days=1, seed=1)
    btc = store.read_bars("BINANCE", "BTC-USDT", "1m")
    assert 1439 <= len(btc) <= 1440
    _simulated_history(store, ["BTC-USDT", "ETH-USDT"], ["BINANCE", "KRAKEN"], days=2, seed=2)  # a restart
    held = store.symbols("bars").set_index(["exchange", "symbol", "timeframe"])["rows"]
    assert held["BINANCE", "BTC-USDT", "1m"] == len(btc)  # kept as it was, not extended nor duplicated
    assert store.read_bars("BINANCE", "BTC-USDT", "1m").equals(btc)
    for market in [("BINANCE", "ETH-USDT"), ("KRAKEN", "BTC-USDT"), ("KRAKEN", "ETH-USDT")]:
        assert 2 * 1440 - 1 <= held[(*market, "1m")] <= 2 * 1440, market
        assert held[(*market, "1h")] in (48, 49), market
    binance, kraken = (store.read_bars(exchange, "ETH-USDT", "1m")["close"] for exchange in ("BINANCE", "KRAKEN"))
    assert (binance / kraken - 1).abs().max() < 0.002  # one market, seen on two exchanges (a few bp of basis)


def test_unknown_symbol_on_the_local_exchange(tmp_path):
    result = run("ingest", "--source", "simulator", "--symbols", "NOPE-USDT", "--duration", "5",
                 "--store", f"lmdb://{tmp_path}/store", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "NOPE-USDT" in last and "Traceback" not in result.stderr


def test_busy_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("exchange", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert str(port) in last and "Traceback" not in result.stderr


def test_ingest_fills_the_store_and_leaves_no_log_file(tmp_path):
    result = run("ingest", "--source", "simulator", "--duration", "4", "--rate", "100", "--symbols", "BTC-USDT",
                 "ETH-USDT", "--store", f"lmdb://{tmp_path}/store", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "msgs/s" in result.stderr and "rows stored" in result.stderr
    assert "SIMULATED" in result.stderr
    from analytics.storage import TickStore

    listed = TickStore(f"lmdb://{tmp_path}/store").symbols("trades")
    assert set(listed.exchange) == {"BINANCE", "KRAKEN", "BITFINEX"}
    assert set(listed.symbol) == {"BTC-USDT", "ETH-USDT"}
    assert (listed.rows > 0).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no feedhandler.log, no ./data


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_ends_ingest_and_stores_every_trade_received(tmp_path, stop):
    args = [sys.executable, "-m", "analytics", "ingest", "--source", "simulator", "--rate", "100",
            "--symbols", "BTC-USDT", "--store", f"lmdb://{tmp_path}/store"]
    proc = subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler))
    try:
        for line in proc.stderr:  # progress lines arrive once a second: wait for stored rows
            if "rows stored" in line and int(line.split("msgs/s")[1].split("rows")[0].replace(",", "")) > 0:
                break
        proc.send_signal(stop)
        rest = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    assert proc.returncode == 0, rest
    summary = rest.strip().splitlines()[-1]
    received = int(summary.split("messages (")[1].split(" trades")[0])
    stored = int(summary.split("'trades': ")[1].split(",")[0])
    assert received > 0 and stored == received
    from analytics.storage import TickStore

    assert TickStore(f"lmdb://{tmp_path}/store").symbols("trades").rows.sum() == received
