"""Report export: ``python -m analytics report`` against ``jupyter nbconvert --execute --to html``, one run.

Seven days of one-minute bars of the eight default coins on one exchange are backfilled
(simulated history) into a temporary store. Timed from the shell, as a user runs them:

- **ours**: the report CLI (snapshot, the packaged notebook in a fresh kernel, one standalone
  HTML file with Bokeh and Panel inlined);
- **baseline**: nbconvert executing the same notebook with the same parameters (the snapshot the
  CLI took, showing the report in the notebook instead of saving it). Its HTML is not standalone:
  it loads Bokeh and Panel from a CDN, so offline it shows no charts.

Reported: wall time and file size of each, their ratios, PASS/FAIL against the issue's targets
(<= 30 s, <= 15 MB) and where the CLI's time goes (kernel start, imports, each section).

    python bench/report.py [--days 7] [--rounds 1] [--json]
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))

import nbformat  # noqa: E402
from common import emit  # noqa: E402

from analytics.exchange.history import backfill  # noqa: E402
from analytics.feeds.sources import DEFAULT_SYMBOLS  # noqa: E402
from analytics.report.execute import parameterise  # noqa: E402
from analytics.report.run import NOTEBOOK  # noqa: E402
from analytics.report.standalone import external_references  # noqa: E402

TARGET_S, TARGET_MB = 30.0, 15.0
WHAT = {"Save": "rendering every HoloViews plot into Bokeh models and writing the inlined page",
        "Imports": "Panel, HoloViews, statsmodels, numba and ArcticDB imported by the kernel",
        "kernel start": "launching ipykernel"}
END = "2024-03-08"


def timed(args: list, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    began = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=900)
    seconds = time.perf_counter() - began
    if result.returncode:
        raise SystemExit(f"{' '.join(args[:6])} ... failed:\n{result.stderr[-3000:]}")
    return seconds, result


def ours(uri: str, folder: Path, round_: int) -> dict:
    """The report CLI: wall time, size, the snapshot it took, and its per-step timings (from ``-v``)."""
    output = folder / f"report{round_}.html"
    seconds, result = timed([sys.executable, "-m", "analytics", "-v", "report", "--symbols", *DEFAULT_SYMBOLS,
                             "--store", uri, "-o", str(output)], folder)
    page = output.read_text()
    return {"seconds": seconds, "bytes": output.stat().st_size, "external": len(external_references(page)),
            "snapshot": re.search(r"from snapshot (\S+)", result.stderr).group(1),
            "timings": json.loads(re.search(r"report timings \(s\): (\{.*\})", result.stderr).group(1))}


def baseline(uri: str, snapshot: str, folder: Path, round_: int) -> dict:
    """nbconvert on the notebook with the CLI's parameters, the report shown in the notebook."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    source = folder / f"baseline{round_}.ipynb"
    nbformat.write(parameterise(nb, {"STORE": uri, "AS_OF": snapshot, "SYMBOLS": list(DEFAULT_SYMBOLS),
                                     "OUTPUT": None}), source)
    seconds, _ = timed([sys.executable, "-m", "jupyter", "nbconvert", "--execute", "--to", "html",
                        "--ExecutePreprocessor.timeout=900", str(source)], folder)
    output = source.with_suffix(".html")
    return {"seconds": seconds, "bytes": output.stat().st_size,
            "external": len(external_references(output.read_text()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7, help="days of one-minute bars (default 7)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each, alternating (median reported)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        uri = f"lmdb://{folder / 'arctic'}"
        written = backfill(uri, DEFAULT_SYMBOLS, ["BINANCE"], days=args.days, end=END, seed=1)
        runs = {"ours": [], "baseline": []}
        for round_ in range(args.rounds):
            runs["ours"].append(ours(uri, folder, round_))
            runs["baseline"].append(baseline(uri, runs["ours"][-1]["snapshot"], folder, round_))
    median = {name: {key: statistics.median(r[key] for r in done) for key in ("seconds", "bytes", "external")}
              for name, done in runs.items()}
    seconds, megabytes = median["ours"]["seconds"], median["ours"]["bytes"] / 1e6
    steps = runs["ours"][-1]["timings"]
    slowest = max(steps, key=steps.get)
    result = {
        "bars": int(args.days * 1440) * len(DEFAULT_SYMBOLS), "stored_rows_all_timeframes": written.rows,
        "report_s": seconds, "report_mb": megabytes, "report_external_refs": median["ours"]["external"],
        "baseline_s": median["baseline"]["seconds"], "baseline_mb": median["baseline"]["bytes"] / 1e6,
        "baseline_external_refs": median["baseline"]["external"],
        "time_ratio": seconds / median["baseline"]["seconds"],
        "size_ratio": median["ours"]["bytes"] / median["baseline"]["bytes"],
        "time_target_s": TARGET_S, "size_target_mb": TARGET_MB,
        "time": "PASS" if seconds <= TARGET_S else "FAIL", "size": "PASS" if megabytes <= TARGET_MB else "FAIL",
        "steps_s": steps, "slowest_step": slowest, "slowest_share": steps[slowest] / seconds,
    }
    if args.json:
        emit(result, True, "")
        return
    print(f"Report of {args.days:g} days x {len(DEFAULT_SYMBOLS)} coins of 1m bars on BINANCE "
          f"({result['bars']:,} bars; median of {args.rounds} run(s))")
    print(f"  {'':<22}{'wall s':>9}{'size MB':>10}{'external refs':>15}  standalone")
    print(f"  {'report CLI':<22}{seconds:>9.1f}{megabytes:>10.2f}{result['report_external_refs']:>15.0f}  yes")
    print(f"  {'nbconvert baseline':<22}{result['baseline_s']:>9.1f}{result['baseline_mb']:>10.2f}"
          f"{result['baseline_external_refs']:>15.0f}  no (Bokeh/Panel JS from a CDN)")
    print(f"  {'ratio ours/baseline':<22}{result['time_ratio']:>9.2f}{result['size_ratio']:>10.2f}")
    print(f"  time {result['time']} ({seconds:.1f} s <= {TARGET_S:g} s), "
          f"size {result['size']} ({megabytes:.1f} MB <= {TARGET_MB:g} MB)")
    outside = runs["ours"][-1]["seconds"] - sum(steps.values())
    parts = sorted(steps.items(), key=lambda item: -item[1])
    print("  where the CLI's time goes: " + ", ".join(f"{name} {s:.1f} s" for name, s in parts if s >= 0.1)
          + f"; outside the cells (CLI imports, checks, snapshot, kernel shutdown) {outside:.1f} s")
    print(f"  note: {slowest!r} takes {result['slowest_share']:.0%} of the time"
          + (f" ({WHAT[slowest]})" if slowest in WHAT else ""))


if __name__ == "__main__":
    main()
