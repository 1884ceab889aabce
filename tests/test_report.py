"""Exported reports and simulated history: ``python -m analytics report`` and ``backfill`` as a user runs them.

A temporary LMDB store is filled with a day of simulated history (three coins on two exchanges);
the report CLI runs in a subprocess (bad requests, which never reach a kernel, through ``main``).
The numbers on the page are checked against ``analytics.risk`` and a textbook formula recomputed
from the store at the report's snapshot, and again after the store has changed, by running the
printed reproduce command.
"""

import html
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import arcticdb
import nbformat
import numpy as np
import pandas as pd
import pytest

import analytics
from analytics import risk, schema
from analytics.cli import main
from analytics.exchange.history import backfill, simulated_history
from analytics.exchange.market import COIN_SPECS
from analytics.report.execute import execute
from analytics.report.selection import Selection, chart_timeframe
from analytics.report.standalone import external_references
from analytics.storage import TickStore

ROOT = Path(__file__).parents[1]
NOTEBOOK = ROOT / "analytics" / "report" / "report.ipynb"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"]
SYMBOLS, REPORTED, EXCHANGES = ["BTC-USDT", "ETH-USDT", "SOL-USDT"], ["BTC-USDT", "ETH-USDT"], ["BINANCE", "KRAKEN"]
END = "2024-03-02"
ESTIMATORS = {"close": "close-to-close", "parkinson": "Parkinson", "garman_klass": "Garman-Klass",
              "rogers_satchell": "Rogers-Satchell", "yang_zhang": "Yang-Zhang"}


# The x range of the first chart of the page (candles of BTC-USDT on BINANCE).
X_RANGE = """() => {
    const plot = Bokeh.documents.flatMap(doc => [...doc.all_models])
        .find(m => m.x_range !== undefined && m.title && m.title.text === "BTC-USDT · BINANCE");
    return [plot.x_range.start, plot.x_range.end];
}"""


def run(*args, cwd=ROOT, timeout=240):
    return subprocess.run([sys.executable, "-m", "analytics", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    uri = f"lmdb://{tmp_path_factory.mktemp('store') / 'arctic'}"
    backfill(uri, SYMBOLS, EXCHANGES, days=1, end=END, seed=7)
    return uri


@pytest.fixture(scope="module")
def report(store, tmp_path_factory) -> dict:
    """One report of two coins on both exchanges over the whole stored day."""
    folder = tmp_path_factory.mktemp("report")
    result = run("report", "--symbols", *REPORTED, "--store", store, "-o", str(folder / "report.html"))
    assert result.returncode == 0, result.stderr[-3000:]
    snapshot = re.search(r"from snapshot (\S+)", result.stderr).group(1)
    command = re.search(r"reproduce: (.+)", result.stderr).group(1)
    return {"folder": folder, "html": (folder / "report.html").read_text(), "snapshot": snapshot,
            "command": command, "stderr": result.stderr}


def page_texts(page: str) -> list[str]:
    """Every text held by a model of the Bokeh documents embedded in a saved page, unescaped."""
    texts = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):  # escaped by Panel, and again as Bokeh embeds the JSON
                texts.append(html.unescape(html.unescape(node["text"])))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for doc in re.findall(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', page, re.S):
        walk(json.loads(doc))
    return texts


def visible(markup: str) -> str:
    """The text a reader sees in HTML markup."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def summary_table(page: str) -> pd.DataFrame:
    """The report's summary table as printed: metrics by market."""
    table = next(text for text in page_texts(page) if "vol Yang-Zhang" in text)
    rows = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]
    header, *body = [[visible(cell).strip() for cell in row] for row in rows]
    return pd.DataFrame([row[1:] for row in body], index=[row[0] for row in body], columns=header[-len(body[0]) + 1:])


def percent(text: str) -> float:
    return float(text.removesuffix(" %")) / 100


# -- simulated history -------------------------------------------------------------------------------------------
def test_simulated_history_is_bars_in_the_store_schema_ending_at_the_spec_prices():
    bars = simulated_history(["BTC-USDT", "ETH-USDT", "DOGE-USDT"], EXCHANGES, days=2, end="2024-03-03 12:34:56",
                             seed=1)
    assert bars.dtypes.to_dict() == schema.conform("bars", schema.empty("bars")).dtypes.to_dict()
    assert list(bars.columns) == list(schema.BAR_COLUMNS)
    counts = bars.groupby(["exchange", "symbol", "timeframe"]).size().unstack()
    assert (counts["1m"] == 2 * 1440).all() and (counts["5m"] == 2 * 288 + 1).all()  # ends at 12:34, mid 5m bar
    assert (counts["1h"] == 49).all()
    minute = bars[bars["timeframe"] == "1m"]
    assert minute["start"].max() == pd.Timestamp("2024-03-03 12:33") and minute["closed"].all()
    for (exchange, symbol), one in minute.groupby(["exchange", "symbol"]):
        assert one["close"].iloc[-1] == COIN_SPECS[symbol.split("-")[0]].price, (exchange, symbol)
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert ((bars["vwap"] >= bars["low"]) & (bars["vwap"] <= bars["high"])).all()
    assert (bars["volume"] > 0).all() and (bars["trades"] > 0).all()
    assert not bars[bars["timeframe"] == "1h"]["closed"].iloc[-1]  # 12:00-13:00 is still open at 12:34


def test_coarser_bars_are_the_minute_bars_resampled():
    bars = simulated_history(["ETH-USDT"], ["KRAKEN"], days=1, end=END, seed=2)
    minute = bars[bars["timeframe"] == "1m"].set_index("start")
    for timeframe, rule in (("5m", "5min"), ("1h", "1h")):
        mine = bars[bars["timeframe"] == timeframe].set_index("start")
        agg = minute.resample(rule).agg({"open": "first", "high": "max", "low": "min", "close": "last",
                                         "volume": "sum", "trades": "sum"})
        pd.testing.assert_frame_equal(mine[agg.columns], agg, check_freq=False, check_names=False)
        notional = (minute["vwap"] * minute["volume"]).resample(rule).sum()
        np.testing.assert_allclose(mine["vwap"], notional / agg["volume"], rtol=1e-12)


def test_history_is_seeded_and_exchanges_are_close_copies_with_realistic_correlation():
    a = simulated_history(["BTC-USDT", "ETH-USDT"], EXCHANGES, days=2, end=END, seed=3)
    pd.testing.assert_frame_equal(a, simulated_history(["BTC-USDT", "ETH-USDT"], EXCHANGES, days=2, end=END, seed=3))
    closes = a[a["timeframe"] == "1m"].pivot_table(index="start", columns=["exchange", "symbol"], values="close")
    basis = np.log(closes["KRAKEN"] / closes["BINANCE"]) * 1e4
    assert (basis.abs() < 30).all().all() and (basis.std() > 0.5).all()  # a few bp apart, not identical
    returns = np.log(closes["BINANCE"]).diff().dropna()
    assert 0.6 < returns["BTC-USDT"].corr(returns["ETH-USDT"]) < 0.95


@pytest.mark.parametrize("kwargs, message", [
    ({"symbols": ["BTC-EUR"]}, "no simulated history for ['BTC-EUR']"),
    ({"symbols": ["BTC-USDT"], "days": 0}, "days must cover at least one minute"),
    ({"symbols": ["BTC-USDT"], "exchanges": ["BINANCE", "BINANCE"]}, "exchanges must be distinct"),
    ({"symbols": ["BTC-USDT"], "end": "soon"}, "end='soon' is not a date"),
])
def test_simulated_history_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        simulated_history(**kwargs)


def test_backfill_cli_writes_what_it_says_and_refuses_to_overwrite(tmp_path, capsys):
    uri = f"lmdb://{tmp_path / 'arctic'}"
    args = ["backfill", "--days", "0.5", "--symbols", "BTC-USDT", "ETH-USDT", "--exchanges", "BINANCE",
            "--store", uri, "--seed", "1", "--end", END]
    first = run(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    said = int(re.search(r"wrote ([\d,]+) simulated bars", first.stderr).group(1).replace(",", ""))
    stored = TickStore(uri).symbols("bars")
    assert sorted(stored["symbol"] + "/" + stored["timeframe"]) == [
        f"{s}/{t}" for s in ("BTC-USDT", "ETH-USDT") for t in ("1h", "1m", "5m")]
    assert said == stored["rows"].sum() == 2 * (720 + 144 + 12)
    assert main(args) == 2  # again: refused, nothing written
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "already holds bars" in lines[0] and "--force" in lines[0], lines
    assert main([*args[:-2], "--end", "2024-03-01 18:00", "--force"]) == 0  # replaces the overlapping bars
    stored = TickStore(uri).symbols("bars").set_index(["symbol", "timeframe"])
    minute = stored.loc[("BTC-USDT", "1m")]  # 06:00-17:59 written over 12:00-23:59: 06:00-23:59 held
    assert (minute["start"], minute["end"], minute["rows"]) == (pd.Timestamp("2024-03-01 06:00"),
                                                                pd.Timestamp("2024-03-01 23:59"), 720 + 360)
    forced = simulated_history(["BTC-USDT", "ETH-USDT"], ["BINANCE"], days=0.5, end="2024-03-01 18:00", seed=1)
    forced = forced[(forced["symbol"] == "BTC-USDT") & (forced["timeframe"] == "1m")].set_index("start")["close"]
    held = TickStore(uri).read_bars("BINANCE", "BTC-USDT", "1m", "2024-03-01 06:00", "2024-03-01 17:59")["close"]
    pd.testing.assert_series_equal(held, forced, check_names=False, check_freq=False)


# -- the report --------------------------------------------------------------------------------------------------
def test_report_is_one_standalone_html_file(report):
    assert sorted(p.name for p in report["folder"].iterdir()) == ["report.html"]
    page = report["html"]
    assert external_references(page) == []
    fetched = re.findall(r"<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(https?:[^\"'\s>]+)", page, re.I)
    assert fetched == []
    assert re.search(r'"url"\s*:\s*"https?:', page) is None  # no stylesheet model pointing at a CDN
    assert re.search(r"@font-face[^}]*url\([\"']?https?:", page) is None
    assert len(page) > 1_000_000  # Bokeh and Panel inlined
    assert "report: [" in report["stderr"]  # progress, one line a cell when stderr is not a terminal


def test_report_is_stamped_with_what_it_was_made_from(report, store):
    texts = "\n".join(map(visible, page_texts(report["html"])))
    for part in (report["snapshot"], arcticdb.__version__, store, analytics.__version__, "BINANCE/BTC-USDT/1m v0",
                 report["command"]):
        assert part in texts, part
    assert report["snapshot"] in TickStore(store).version()["snapshots"]


def test_report_numbers_are_the_stores_recomputed(report, store):
    table = summary_table(report["html"])
    tickstore = TickStore(store)
    assert sorted(table.columns) == sorted(f"{s} · {e}" for s in REPORTED for e in EXCHANGES)
    for column in table.columns:
        symbol, exchange = column.split(" · ")
        bars = tickstore.read_bars(exchange, symbol, "1m", as_of=report["snapshot"])
        shown = table[column]
        assert int(shown["bars"].replace(",", "")) == len(bars)
        for estimator, name in ESTIMATORS.items():
            expected = risk.realized_vol(bars, estimator, window=len(bars) - 1).iloc[-1]
            assert abs(percent(shown[f"vol {name}"]) - expected) <= 5e-5, (column, name)
        textbook = np.log(bars["close"]).diff().std(ddof=1) * np.sqrt(365 * 1440)
        assert abs(percent(shown["vol close-to-close"]) - textbook) <= 5e-5, column
        close = bars["close"].to_numpy()
        assert abs(percent(shown["max drawdown"]) - (close / np.maximum.accumulate(close) - 1).min()) <= 5e-5
        assert abs(percent(shown["return"]) - (close[-1] / bars["open"].iloc[0] - 1)) <= 5e-5
        assert float(shown["last close"].replace(",", "")) == close[-1]


def test_reproducing_from_the_snapshot_gives_the_same_numbers_after_the_store_changed(report, store, tmp_path):
    backfill(store, SYMBOLS, EXCHANGES, days=1, end=END, seed=8, force=True)  # other prices, same range
    tickstore = TickStore(store)
    latest = tickstore.read_bars("BINANCE", "BTC-USDT", "1m")
    pinned = tickstore.read_bars("BINANCE", "BTC-USDT", "1m", as_of=report["snapshot"])
    assert not latest["close"].equals(pinned["close"])
    args = shlex.split(report["command"])
    assert args[:4] == ["python", "-m", "analytics", "report"] and "--as-of" in args
    args[args.index("-o") + 1] = str(tmp_path / "again.html")
    again = run(*args[3:], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    pd.testing.assert_frame_equal(summary_table((tmp_path / "again.html").read_text()),
                                  summary_table(report["html"]))


@pytest.mark.ui
@pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_renders_offline_in_chromium_with_zoom_and_hover(report):
    from playwright.sync_api import sync_playwright

    attempted, errors = [], []

    def only_files(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            attempted.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route("**/*", only_files)
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((report["folder"] / "report.html").as_uri())
        page.wait_for_function("() => window.Bokeh !== undefined && Bokeh.documents.length > 0", timeout=60_000)
        page.locator("canvas").first.wait_for(timeout=60_000)
        assert page.locator("canvas").count() >= 10  # candles, volume, RSI, MACD per market, cones, heatmaps...
        names = page.evaluate("() => [...new Set(Bokeh.documents.flatMap(doc => [...doc.all_models])"
                              ".map(m => m.constructor.__name__))]")
        assert {"WheelZoomTool", "HoverTool", "BoxZoomTool", "ResetTool"} <= set(names)
        before = page.evaluate(X_RANGE)
        box = page.locator("canvas").first.bounding_box()  # drag the first chart: pan is active, the x range moves
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 4, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
        after = page.evaluate(X_RANGE)
        assert after[0] > before[0] and after[1] > before[1], (before, after)
        browser.close()
    assert attempted == [] and errors == []


@pytest.mark.parametrize("args, message", [
    (["--symbols", "NOPE-USDT"], "no bars stored for NOPE-USDT; stored: BTC-USDT, ETH-USDT, SOL-USDT"),
    (["--symbols", "BTC-USDT", "--start", "2030-01-01", "--end", "2030-01-02"], "no 1m bars of BTC-USDT between"),
    (["--symbols", "BTC-USDT", "--start", "2024-03-01 12:00", "--end", "2024-03-01 06:00"], "is after end"),
    (["--symbols", "BTC-USDT", "--start", "the ides of March"], "start='the ides of March' is not a date"),
    (["--symbols", "BTC-USDT", "--exchange", "COINBASE"], "on COINBASE; stored on: BINANCE, KRAKEN"),
    (["--symbols", "BTC-USDT", "--timeframe", "1s"], "no 1s bars stored for BTC-USDT; stored timeframes: 1h, 1m, 5m"),
    (["--symbols", "BTC-USDT", "--as-of", "report-never"], "no snapshot 'report-never'"),
    (["--symbols", "BTC-USDT", "--start", "2024-03-01 23:00"], "BTC-USDT on BINANCE has 60 closed 1m bars"),
])
def test_bad_requests_get_one_line_and_exit_2(args, message, store, tmp_path, capsys):
    snapshots = TickStore(store).version()["snapshots"]
    assert main(["report", *args, "--store", store, "-o", str(tmp_path / "r.html")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert list(tmp_path.iterdir()) == [] and TickStore(store).version()["snapshots"] == snapshots


@pytest.mark.parametrize("where, message", [
    ("missing store", "no store at lmdb://"),
    ("unwritable output", "does not exist"),
    ("not html", "the output must be an .html file"),
])
def test_missing_store_and_bad_output_get_one_line_and_exit_2(where, message, store, tmp_path, capsys):
    uri = f"lmdb://{tmp_path / 'nowhere'}" if where == "missing store" else store
    output = {"unwritable output": tmp_path / "no" / "such" / "r.html", "not html": tmp_path / "r.pdf"}.get(
        where, tmp_path / "r.html")
    assert main(["report", "--symbols", "BTC-USDT", "--store", uri, "-o", str(output)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "nowhere").exists()  # a typo in --store does not create a store


def test_a_failing_cell_exits_1_naming_it_and_keeps_the_executed_notebook(store, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A report that fails")])
    nb.cells.append(nbformat.v4.new_code_cell("# Parameters\nOUTPUT = None", metadata={"tags": ["parameters"]}))
    nb.cells.append(nbformat.v4.new_code_cell("# Divide by zero\n1 / 0"))
    nbformat.write(nb, tmp_path / "fails.ipynb")
    result = run("report", "--symbols", "BTC-USDT", "--store", store, "--notebook", str(tmp_path / "fails.ipynb"),
                 "-o", str(tmp_path / "r.html"), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "'Divide by zero'" in last and "ZeroDivisionError" in last and "r.failed.ipynb" in last, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fails.ipynb", "r.failed.ipynb"]
    kept = nbformat.read(tmp_path / "r.failed.ipynb", as_version=4)
    assert kept.cells[-1].outputs[0]["ename"] == "ZeroDivisionError"


@pytest.mark.parametrize("command", ["report", "backfill"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit:
        main([command, "--help"])
    assert exit.value.code == 0 and "usage: python -m analytics " + command in capsys.readouterr().out


def test_the_report_notebook_is_committed_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "OUTPUT = None" in tagged[0].source and "STORE = None" in tagged[0].source
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")


def test_the_report_notebook_runs_by_itself_on_simulated_history(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    timings = execute(nb, cwd=tmp_path, progress=False)  # its own defaults: no store, no output file
    assert list(tmp_path.iterdir()) == []
    shown = nb.cells[-1].outputs[-1]
    assert shown["output_type"] == "display_data" and "application/vnd.holoviews_exec.v0+json" in shown["data"]
    assert {"kernel start", "Imports", "Candles and indicators", "GARCH(1,1)", "Save"} <= set(timings)


@pytest.mark.parametrize("days, timeframe, expected", [(1, "1m", "1m"), (7, "1m", "10min"), (7, "5m", "10min"),
                                                       (30, "1h", "1h"), (365, "1m", "12h")])
def test_charts_fall_back_to_coarser_candles_past_two_thousand(days, timeframe, expected):
    start = pd.Timestamp("2024-01-01")
    selection = Selection((("BINANCE", "BTC-USDT"),), timeframe, start, start + pd.Timedelta(days=days))
    assert chart_timeframe(selection) == expected
