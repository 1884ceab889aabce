"""A report's provenance: what it was made from and the command that makes it again."""

import shlex
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import arcticdb

import analytics
from analytics.report.selection import Selection


@dataclass(frozen=True)
class Stamp:
    """Everything needed to reproduce a report exactly."""

    store: str  # the store's URI
    snapshot: str | None  # the ArcticDB snapshot read (None: the latest versions)
    versions: dict  # bars symbol ("EXCHANGE/SYMBOL/TIMEFRAME") -> version, where known
    parameters: dict  # symbols, exchanges, timeframe, start, end
    output: str = "report.html"  # the file written, as the user named it
    arcticdb: str = arcticdb.__version__
    tickscope: str = analytics.__version__
    generated: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"))

    def to_dict(self) -> dict:
        return asdict(self)

    def command(self) -> str:
        """The one-line command that makes this report again."""
        p = self.parameters
        args = ["python", "-m", "analytics", "report", "--symbols", *p["symbols"], "--exchange", *p["exchanges"],
                "--timeframe", p["timeframe"], "--start", p["start"], "--end", p["end"], "--store", self.store]
        if self.snapshot:
            args += ["--as-of", self.snapshot]
        return shlex.join([*args, "-o", self.output])

    def markdown(self) -> str:
        """The stamp as a Markdown table, then the command."""
        p = self.parameters
        versions = ", ".join(f"{k} v{v}" for k, v in self.versions.items()) or f"as held by snapshot {self.snapshot}"
        rows = [("Store", f"`{self.store}`"),
                ("Snapshot", f"`{self.snapshot}`" if self.snapshot else "none: the latest versions at generation"),
                ("Symbol versions", versions),
                ("Parameters", f"symbols {' '.join(p['symbols'])} · exchanges {' '.join(p['exchanges'])} · "
                               f"timeframe {p['timeframe']} · {p['start']} to {p['end']} (bar starts, UTC)"),
                ("ArcticDB", self.arcticdb), ("Tickscope", self.tickscope), ("Generated", self.generated)]
        table = "\n".join(f"| {name} | {value} |" for name, value in rows)
        return f"| Made from | |\n|---|---|\n{table}\n\nReproduce:\n\n```\n{self.command()}\n```"


def stamp_of(selection: Selection, store: str, snapshot: str | None, versions: dict,
             output: str = "report.html") -> Stamp:
    """The stamp of a report of ``selection`` read from ``store`` at ``snapshot``."""
    keys = [f"{e}/{s}/{selection.timeframe}" for e, s in selection.markets]
    parameters = {"symbols": selection.symbols, "exchanges": selection.exchanges, "timeframe": selection.timeframe,
                  "start": selection.start.isoformat(), "end": selection.end.isoformat()}
    return Stamp(store, snapshot, {k: int(versions[k]) for k in keys if k in versions}, parameters,
                 output=output)
