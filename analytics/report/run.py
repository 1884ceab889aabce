"""``python -m analytics report``: check the request, pin the data, run the report notebook, write one HTML file."""

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from analytics.report.execute import execute, parameterise
from analytics.report.selection import Selection, load, select
from analytics.report.stamp import Stamp, stamp_of
from analytics.storage import TickStore
from analytics.storage.backend import DEFAULT_FOLDER

NOTEBOOK = Path(__file__).with_name("report.ipynb")
MIN_BARS = 100  # per market: GARCH needs 100 returns, lead-lag and rolling statistics a few dozen


@dataclass(frozen=True)
class Report:
    """A report written: where, from what, and how long it took."""

    path: Path
    stamp: Stamp
    selection: Selection
    seconds: float
    timings: dict  # seconds to start the kernel and to run each code cell, by title

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def check_output(output) -> Path:
    """The output path, if an ``.html`` file can be written there.

    Raises
    ------
    ValueError
        If it does not end in ``.html``, is a folder, or its folder is missing or read-only.
    """
    path = Path(output)
    if path.suffix.lower() != ".html":
        raise ValueError(f"the output must be an .html file, got {output}")
    if path.is_dir():
        raise ValueError(f"cannot write {output}: it is a folder")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise ValueError(f"cannot write {output}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"cannot write {output}: permission denied")
    return path


def open_store(uri: str | None) -> TickStore:
    """The store at ``uri`` (default ``./data/arctic``); an ``lmdb://`` folder must exist already.

    Raises
    ------
    ValueError
        If there is no store there, or it holds no bars.
    """
    if uri is None or uri.startswith("lmdb://"):
        folder = Path((uri or "lmdb://")[len("lmdb://"):].partition("?")[0] or DEFAULT_FOLDER)
        if not folder.is_dir():
            raise ValueError(f"no store at {uri or 'lmdb://' + str(DEFAULT_FOLDER)} (folder {folder.absolute()} "
                             "does not exist): fill one with `python -m analytics ingest` or `backfill`")
    store = TickStore(uri)
    if store.symbols("bars").empty:
        raise ValueError(f"the store {store.uri} holds no bars: fill it with `python -m analytics ingest` "
                         "or `backfill`")
    return store


def check_snapshot(store: TickStore, name: str) -> None:
    """Raise a one-line ValueError unless the store holds snapshot ``name``."""
    known = store.version()["snapshots"]
    if name not in known:
        raise ValueError(f"no snapshot {name!r} in {store.uri}; snapshots: {', '.join(known) or 'none'}")


def take_snapshot(store: TickStore) -> str:
    """Snapshot the store as ``report-<UTC time>``; return the name."""
    now = datetime.now(timezone.utc)
    return store.snapshot(f"report-{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z")


def check_bars(store: TickStore, selection: Selection, as_of: str | None) -> Selection:
    """``selection`` without markets that hold no closed bars in its range at ``as_of`` (None: the latest).

    Raises
    ------
    ValueError
        If a symbol is left without bars, or a market has fewer than ``MIN_BARS`` (too few for
        GARCH, lead-lag and rolling statistics).
    """
    frames = load(store, selection, as_of=as_of)
    markets = tuple(market for market in selection.markets if market in frames)
    span = f"between {selection.start} and {selection.end}"
    empty = [s for s in selection.symbols if s not in {symbol for _, symbol in markets}]
    if empty:
        raise ValueError(f"no closed {selection.timeframe} bars of {' '.join(empty)} {span}")
    for (exchange, symbol), bars in frames.items():
        if len(bars) < MIN_BARS:
            raise ValueError(f"{symbol} on {exchange} has {len(bars)} closed {selection.timeframe} bars {span}: a "
                             f"report needs {MIN_BARS} a market (widen the range, choose a finer --timeframe or "
                             "leave the exchange out with --exchange)")
    return Selection(markets, selection.timeframe, selection.start, selection.end)


def make_report(output, symbols, exchanges=None, start=None, end=None, timeframe: str = "1m", store: str | None = None,
                as_of: str | None = None, notebook=None, progress: bool = True) -> Report:
    """Run the report notebook over stored bars and write one standalone HTML file.

    Parameters
    ----------
    output : str or pathlib.Path
        The ``.html`` file to write. If a cell fails, the executed notebook is kept beside it as
        ``<name>.failed.ipynb``; a success removes an old one.
    symbols : list of str
        Normalized symbols.
    exchanges : list of str, optional
        Default: every exchange holding a symbol.
    start, end : optional
        Range of bar starts, inclusive; default: everything stored.
    timeframe : str
        A stored bar timeframe.
    store : str, optional
        ArcticDB URI (default ``lmdb://`` under ``./data/arctic``).
    as_of : str, optional
        A snapshot to read (reproduces a report); default: snapshot the store now.
    notebook : str or pathlib.Path, optional
        The report notebook (default: the packaged ``report.ipynb``).
    progress : bool
        Show progress on stderr.

    Raises
    ------
    ValueError
        One line, for anything wrong with the request (see :func:`analytics.report.selection.select`).
    analytics.report.execute.CellError
        If a cell of the notebook fails.
    """
    began = time.monotonic()
    path = check_output(output)
    source = Path(notebook) if notebook is not None else NOTEBOOK
    if not source.is_file():
        raise ValueError(f"no notebook {source}")
    tickstore = open_store(store)
    selection = select(tickstore.symbols("bars"), symbols, exchanges, timeframe, start, end)
    if as_of is not None:
        check_snapshot(tickstore, as_of)
    selection = check_bars(tickstore, selection, as_of)  # before snapshotting: a refused request leaves none
    snapshot = as_of if as_of is not None else take_snapshot(tickstore)
    versions = tickstore.version(as_of=snapshot)["libraries"]["bars"]
    stamp = stamp_of(selection, tickstore.uri, snapshot, versions, output=str(output))
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.html")
    failed = path.with_name(f"{path.stem}.failed.ipynb")
    nb = parameterise(nbformat.read(source, as_version=4), {
        "STORE": tickstore.uri, "AS_OF": snapshot, "SYMBOLS": selection.symbols, "EXCHANGES": selection.exchanges,
        "START": selection.start.isoformat(), "END": selection.end.isoformat(), "TIMEFRAME": selection.timeframe,
        "OUTPUT": str(partial.absolute()), "STAMP": stamp.to_dict()})
    try:
        timings = execute(nb, cwd=Path.cwd(), progress=progress, failed=failed)
        if not partial.is_file():
            raise ValueError(f"the notebook {source} wrote no report (it must save OUTPUT)")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    failed.unlink(missing_ok=True)
    return Report(path, stamp, selection, time.monotonic() - began, timings)
