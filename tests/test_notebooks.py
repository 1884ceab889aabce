"""The notebooks: committed without outputs, run top to bottom in a kernel, and served by ``panel serve``.

Each notebook runs in a fresh kernel of this interpreter against the local exchange, with a
temporary store injected the way papermill does (a cell tagged ``injected-parameters`` after
the one tagged ``parameters``). Cells appended to it check what its pandas cells compute once
the data is there; the kernel, the feed workers and every other child process must be gone
once the kernel has been shut down, as they must once ``panel serve`` has been stopped.
"""

import contextlib
import importlib
import json
import pkgutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import panel.models
import psutil
import pytest
from bokeh.client import pull_session
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ["live_market.ipynb", "exchanges.ipynb", "indicators.ipynb", "risk.ipynb",
         "sentiment.ipynb"]  # each run with its CHECKS
PARAMETERS = {"indicators.ipynb": {"TIMEFRAME": "1s"},  # enough bars within the test's wait
              "risk.ipynb": {"TIMEFRAME": "1s", "WINDOW": 10}}

# Cells added to each notebook: after its parameters, one that keeps the errors analytics logs
# (e.g. a view that failed to update)...
COLLECT_ERRORS = """
import logging

_test_errors = []
_test_handler = logging.Handler(logging.ERROR)
_test_handler.emit = _test_errors.append
logging.getLogger("analytics").addHandler(_test_handler)
"""

# ... at the end, what its pandas cells compute once the data is there...
CHECKS = {
    "live_market.ipynb": """
assert await until(lambda: ingest.markets and len(summary()) == len(ingest.markets), 20), summary()
assert summary()["last"].gt(0).all()
""",
    "exchanges.ipynb": """
assert await until(lambda: enough(closes(), seconds=3), 20), closes()
table = basis_summary(closes())
assert list(table.index) == sorted(ingest.markets) and table["seconds"].ge(3).all(), table
""",
    "indicators.ipynb": """
import talib
assert await until(lambda: len(bars()) >= 30, 45), bars()
frame = bars()
table = signals(frame)
np.testing.assert_allclose(table["rsi"], talib.RSI(frame["close"].to_numpy(), 14), rtol=1e-9)
assert table["rsi"].iloc[14:].between(0, 100).all() and table["rsi"].iloc[:14].isna().all()
check = live_vs_batch(frame)
assert check["same warm-up"].all() and check["max relative difference"].max() < 1e-9, check
assert await until(lambda: "rsi_14" in chart._candles.data and len(chart._candles.data["x"]) >= 30, 20)
""",
    "risk.ipynb": """
assert await until(lambda: enough(30), 45), {symbol: len(bars(symbol)) for symbol in coins()}
frame = bars("BTC-USDT")
row = vol_row(frame)
textbook = 100 * np.log(frame["close"]).diff().iloc[-WINDOW:].std() * np.sqrt(365 * 86_400)  # close to close, 1 s
np.testing.assert_allclose(row["close"], textbook, rtol=1e-9)
assert row.gt(0).all() and list(vol_table().index) == coins(), vol_table()
assert await until(lambda: correlations().nobs >= 30, 45), correlations().nobs  # seconds both coins traded
matrix = correlations()
assert matrix.corr.shape == (2, 2) and 0 < matrix.corr.iloc[0, 1] < 1, matrix.corr
assert await until(lambda: dashboard.result is not None and dashboard.result.corr is not None, 20), dashboard.result
assert dashboard.result.vol.notna().all().all() and dashboard.result.spec.timeframe == "1s", dashboard.result.vol
""",
    "sentiment.ipynb": """
assert await until(lambda: len(mentions()) >= 1, 50), news.read_items()  # the simulator's first headlines
await ingest.news.stop()  # no more items: the table and the loop below read the same ones
table = sentiment_table()
items = news.read_items().reset_index()
bars = {(row.coins, row.published.floor(BAR)) for row in items.itertuples()}
newest = max(bar for coins_, bar in bars if set(coins_.split(",")) & set(coins()))
for coin in coins():  # the table against a plain loop over the stored items
    got = [(row.compound, row.label) for row in items.itertuples()
           if coin in row.coins.split(",") and row.published.floor(BAR) > newest - WINDOW * BAR]
    assert table.at[coin, "mentions"] == len(got), (coin, table, got)
    if got:
        np.testing.assert_allclose(table.at[coin, "mean"], np.mean([c for c, _ in got]), rtol=1e-12)
        assert table.at[coin, "positive"] == np.mean([label == "positive" for _, label in got])
rng = np.random.default_rng(1)  # forward_correlation against numpy on a known lead of one bar
index = pd.date_range("2024-01-01", periods=300, freq=BAR)
sentiment = pd.Series(rng.uniform(-1, 1, 300), index)
returns = (0.004 * sentiment.shift(1) + rng.normal(0, 0.002, 300)).iloc[1:]
frame = forward_correlation(sentiment, returns)
for k in range(1, LAGS + 1):
    np.testing.assert_allclose(frame.at[k, "corr"], np.corrcoef(sentiment.iloc[1:-k], returns.iloc[k:])[0, 1],
                               rtol=1e-12)
assert frame.at[1, "corr"] > 0.5 > frame["corr"].iloc[1:].abs().max() and frame.at[1, "pairs"] == 298
assert await until(lambda: view.result is not None and view.result.gauges["count"].sum() >= 1, 20), view.result
assert list(view.result.gauges.index) == coins() and not view._error.visible
""",
}

# ... and a report: no errors, rows stored and shown, and the processes that must end with the kernel.
REPORT = """
import json, os, sys
import psutil

assert await until(lambda: ingest.rows_stored() > 0 and ingest.screen_latency.count > 0, 20), "nothing stored or shown"
assert not [r.getMessage() for r in _test_errors], [r.getMessage() for r in _test_errors]
print(json.dumps({"executable": sys.executable, "store": ingest.store.uri, "pids": [
    os.getpid(), *(p.pid for p in psutil.Process().children(recursive=True))]}))
"""


def _prepare(name: str, parameters: dict) -> nbformat.NotebookNode:
    """The notebook with ``parameters`` injected after its parameters cell and the test cells appended."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    index = next(i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in parameters.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells[index + 1:index + 1] = [injected, nbformat.v4.new_code_cell(COLLECT_ERRORS)]
    nb.cells += [nbformat.v4.new_code_cell(CHECKS[name]), nbformat.v4.new_code_cell(REPORT)]
    return nb


def _gone(pids, timeout: float) -> list:
    """The processes of ``pids`` still alive after ``timeout`` seconds (zombies count as gone)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def test_notebooks_are_committed_clean():
    """A ``# Title`` first, one parameters cell, no outputs and no execution counts; each one run by a test."""
    found = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert found == sorted(NAMES), "add a new notebook to NAMES and CHECKS"
    for name in found:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        first = nb.cells[0]
        assert first.cell_type == "markdown" and first.source.startswith("# "), name
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and tagged[0].cell_type == "code", name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name}: clear the outputs of {cell.id}"
        assert nb.metadata.kernelspec.name == "python3", name


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(name, tmp_path):
    store = f"lmdb://{tmp_path / 'store'}"
    nb = _prepare(name, {"SOURCE": "simulator", "STORE": store, "SYMBOLS": ["BTC-USDT", "ETH-USDT"], "WAIT": 20,
                         **PARAMETERS.get(name, {})})
    # this interpreter's own ipykernel, whatever kernels the user has installed
    km = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    client = NotebookClient(nb, km=km, timeout=60, resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()  # raises CellExecutionError, naming the cell, on any error
    finally:
        if km.has_kernel:
            km.shutdown_kernel()  # as JupyterLab does: a shutdown request, a kill only if it goes unanswered

    report = json.loads(nb.cells[-1].outputs[-1]["text"])
    assert Path(report["executable"]).resolve() == Path(sys.executable).resolve()
    assert report["store"] == f"lmdb://{tmp_path / 'store'}"
    assert len(report["pids"]) >= 4  # the kernel and a feed worker per exchange
    assert _gone(report["pids"], 15) == [], "processes left behind by the kernel"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pull(url: str):
    """The Bokeh document of a new session of ``url``, as a browser gets it over the websocket."""
    for module in pkgutil.iter_modules(panel.models.__path__):  # to read it, the client needs Panel's models
        importlib.import_module(f"panel.models.{module.name}")
    with pull_session(url=url) as session:
        return session.document


def _board_rows(doc) -> int:
    """Rows of the price board (the page's Tabulator) in a pulled document."""
    tables = [model for model in doc.models if type(model).__name__ == "DataTabulator"]
    return max((len(next(iter(t.source.data.values()), [])) for t in tables), default=0)


@contextlib.contextmanager
def _panel_serve(tmp_path, *notebooks):
    """``panel serve`` of ``notebooks`` on a free port, the default store under ``tmp_path``.

    Yields ``page(name, deadline, timeout)``, which returns a served page's URL and HTML once it
    answers. On leaving, the server must stop on SIGTERM with every process it started, and its
    log hold no traceback.
    """
    port, log = _free_port(), tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "panel", "serve", *(str(NOTEBOOKS / name) for name in notebooks),
             "--port", str(port), "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)

    def page(name: str, deadline: float, timeout: float) -> tuple[str, str]:
        url, html = f"http://127.0.0.1:{port}/{name}", None
        while html is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    assert response.status == 200
                    html = response.read().decode()
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        assert html is not None, log.read_text()
        return url, html

    try:
        yield page
        pids = [server.pid, *(p.pid for p in psutil.Process(server.pid).children(recursive=True))]
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            pytest.fail("panel serve did not stop on SIGTERM")
    assert _gone(pids, 15) == [], "processes left behind by panel serve"
    assert "Traceback" not in log.read_text(), log.read_text()


def test_panel_serves_live_market(tmp_path):
    """``panel serve notebooks/live_market.ipynb`` serves the page, then stops with everything it started."""
    with _panel_serve(tmp_path, "live_market.ipynb") as page:
        deadline = time.monotonic() + 45
        url, html = page("live_market", deadline, timeout=30)
        assert "Tickscope · Live market" in html and '"roots"' in html  # a Bokeh server page
        doc = _pull(url)
        while not _board_rows(doc) and time.monotonic() < deadline:  # a new session, until it shows prices
            doc = _pull(url)
        assert _board_rows(doc), "no prices on the served page"
        assert doc.title == "Tickscope · Live market"
        texts = " ".join(str(getattr(model, "text", "")) for model in doc.models)
        assert "SIMULATED market" in texts and "Prices are not real" in texts
        kinds = {type(model).__name__ for model in doc.models}
        assert {"DataTabulator", "VBar"} <= kinds, kinds  # the price board and the candles


def test_panel_serves_the_analytics_notebooks(tmp_path):
    """``panel serve`` of the indicators, risk and sentiment notebooks: each page is built with its Viewer."""
    names = {"indicators": "Tickscope · Indicators", "risk": "Tickscope · Risk",
             "sentiment": "Tickscope · Sentiment"}
    with _panel_serve(tmp_path, *(f"{name}.ipynb" for name in names)) as page:
        for name, title in names.items():
            url, html = page(name, time.monotonic() + 60, timeout=45)
            assert title in html and '"roots"' in html, name
            kinds = {type(model).__name__ for model in _pull(url).models}
            assert {"figure", "Line"} <= kinds, (name, kinds)  # its plots
