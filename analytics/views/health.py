"""Feed health: what arrives, what is stored, what goes wrong, per exchange and channel."""

import time

import pandas as pd
import panel as pn

from analytics.views.base import LiveView


def health_frame(ingest, previous: dict | None = None, elapsed: float = 1.0) -> pd.DataFrame:
    """Messages (and messages/s against ``previous``) per exchange and channel, plus errors."""
    counts = ingest.counters.snapshot()
    rows = []
    for (exchange, group, name), value in sorted(counts.items()):
        if group in ("trades", "ticker", "l2_book") and name == "messages":
            rate = (value - previous.get((exchange, group, name), value)) / elapsed if previous else float("nan")
            errors = {e: counts.get((exchange, "errors", e), 0) for e in ("malformed", "gaps", "reconnects")}
            rows.append({"exchange": exchange, "channel": group, "messages": value, "msgs/s": rate, **errors})
    return pd.DataFrame(rows)


class FeedHealth(LiveView):
    """Message rates, malformed messages, gaps, reconnects, rows stored and latencies."""

    def _layout(self):
        self._previous, self._when = None, time.monotonic()
        self._table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False,
                                           sizing_mode="stretch_width",
                                           formatters={"msgs/s": {"type": "money", "precision": 1}})
        self._summary = pn.pane.Markdown()
        return pn.Column("### Feed health", self._summary, self._table, sizing_mode="stretch_width")

    def refresh(self) -> None:
        now = time.monotonic()
        frame = health_frame(self.ingest, self._previous, now - self._when)
        self._previous, self._when = self.ingest.counters.snapshot(), now
        if not frame.empty:
            self._table.value = frame
        ingest = self.ingest
        store_p99 = ingest.writer.latency.quantile(0.99) * 1e3 if ingest.writer else float("nan")
        self._summary.object = (
            f"**Source:** {ingest.label} · **rows stored:** {ingest.rows_stored():,} · "
            f"**receipt→hub p99:** {ingest.pipeline.hub_latency.quantile(0.99) * 1e3:.0f} ms · "
            f"**receipt→store p99:** {store_p99:.0f} ms · **errors:** {ingest.errors()}")
