"""Feed health: what arrives and how late, what is stored, what goes wrong, per exchange and channel.

The counters, latencies and silences are sampled once a second for all the sessions of a
process (:class:`FeedMonitor`); each session turns the newest sample into its table with
:func:`health_frame`, a pure function.
"""

import html
import threading
import time
from collections import deque

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from analytics.views.base import LiveView, active_views
from analytics.views.exchanges import COLORS, EXCHANGES
from analytics.views.sharing import Shared

CHANNELS = ("trades", "ticker", "l2_book")
ERRORS = ("malformed", "gaps", "reconnects")
RATES = tuple(f"{channel}/s" for channel in CHANNELS)
LATENCY = ("exch→receipt p50 ms", "exch→receipt p99 ms")
COLUMNS = ("status", *RATES, "messages", *LATENCY, *ERRORS, "silent s", "reason")
NEWS_COLUMNS = ("items", "new", "stored", "malformed", "errors", "backlog", "fetched s ago", "retry in s",
                "last error")


def news_frame(stats: dict, polled: dict, now: pd.Timestamp) -> pd.DataFrame:
    """One row per news source from a sentiment feed's ``stats()`` and its poller's ``stats()``.

    ``fetched s ago`` is NaN before the first fetch; ``retry in s`` grows while a source fails.
    """
    rows = {}
    for name, counts in stats.get("sources", {}).items():
        tally = polled.get(name, {})
        last = tally.get("last_fetch")
        rows[name] = {**{c: counts.get(c, 0) for c in NEWS_COLUMNS[:6]},
                      "fetched s ago": (now - last).total_seconds() if last is not None else np.nan,
                      "retry in s": tally.get("delay", np.nan), "last error": counts.get("last_error") or ""}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(NEWS_COLUMNS)).rename_axis("source")


def health_frame(counts: dict, previous: dict | None = None, elapsed: float = 1.0, latency: dict | None = None,
                 silent: dict | None = None, down_after: float = 10.0, exchanges=()) -> pd.DataFrame:
    """One row per exchange: status, messages/s per channel, latency, errors and why it is down.

    Parameters
    ----------
    counts, previous : dict
        Two snapshots of :class:`analytics.metrics.Counters` (``{(exchange, group, name): n}``)
        taken ``elapsed`` seconds apart; without ``previous`` the rates are NaN.
    latency : dict, optional
        ``{exchange: (p50, p99)}`` exchange→receipt latency of trades, in seconds.
    silent : dict, optional
        ``{exchange: seconds since its last message}``.
    down_after : float
        Seconds of silence after which an exchange is down.
    exchanges : sequence of str
        Exchanges to list even if they have sent nothing.

    Returns
    -------
    DataFrame
        Indexed by exchange, with the columns of :data:`COLUMNS`; ``status`` is ``up``,
        ``waiting`` (nothing yet) or ``down``.
    """
    latency, silent = latency or {}, silent or {}
    names = sorted({key[0] for key in counts if len(key) == 3 and key[1] in (*CHANNELS, "errors")}
                   | set(exchanges) | set(silent))
    rows = []
    for exchange in names:
        messages = {c: counts.get((exchange, c, "messages"), 0) for c in CHANNELS}
        rates = {f"{c}/s": (n - previous.get((exchange, c, "messages"), 0)) / elapsed if previous is not None
                 else np.nan for c, n in messages.items()}
        quiet = float(silent.get(exchange, 0.0))
        total = sum(messages.values())
        if quiet >= down_after:
            status, reason = "down", f"no message for {quiet:.0f} s" if total else \
                f"no message since the feed started {quiet:.0f} s ago"
            workers = counts.get((exchange, "errors", "workers"), 0)
            if workers:
                reason += f"; its feed worker stopped ({workers}×)"
        else:
            status, reason = ("up", "") if total else ("waiting", "no message yet")
        p50, p99 = latency.get(exchange, (np.nan, np.nan))
        rows.append({"exchange": exchange, "status": status, **rates, "messages": total,
                     LATENCY[0]: p50 * 1e3, LATENCY[1]: p99 * 1e3,
                     **{e: counts.get((exchange, "errors", e), 0) for e in ERRORS}, "silent s": quiet,
                     "reason": reason})
    return pd.DataFrame(rows, columns=["exchange", *COLUMNS]).set_index("exchange")


class FeedMonitor(Shared):
    """Samples an ingest's counters and its trades' exchange→receipt latency, once a second for all sessions.

    Get one with :meth:`acquire` and give it back with :meth:`release`: the first
    acquirer opens a hub cursor per trades key (new keys are followed as they appear),
    the last release closes them.

    Parameters
    ----------
    ingest : analytics.ingest.Ingest
        What to watch.
    interval : float
        Least seconds between samples.
    window : float
        Seconds of trades the latency quantiles cover.
    history : int
        Samples of messages/s kept for the sparkline.

    Attributes
    ----------
    sample : dict or None
        The newest :func:`health_frame` arguments: counts, previous, elapsed, latency, silent, exchanges.
    history : deque
        ``(time in ms, {exchange: messages/s})`` of the last ``history`` samples.
    version : int
        Samples taken so far.
    """


    def __init__(self, ingest, interval: float = 0.9, window: float = 60.0, history: int = 300):
        self.ingest, self.interval, self.window = ingest, interval, window
        self.lock = threading.Lock()
        self.version = 0
        self.sample = None
        self.history = deque(maxlen=history)
        self._cursors = {}
        self._latencies = deque()  # (monotonic time, exchange, latencies in s)
        self._counts, self._when = {}, None
        self._last_change = {}

    @classmethod
    def acquire(cls, ingest) -> "FeedMonitor":
        """The process's monitor of ``ingest``, one more user counted."""
        return cls.share(id(ingest), lambda: cls(ingest))

    def close(self) -> None:
        """Close the hub cursors."""
        for cursor in self._cursors.values():
            cursor.close()
        self._cursors = {}

    def update(self) -> bool:
        """Take a sample if ``interval`` has passed since the last one; True if taken."""
        with self.lock:
            now = time.monotonic()
            if self._when is not None and now - self._when < self.interval:
                return False
            counts = self.ingest.counters.snapshot()
            exchanges = sorted(set(getattr(self.ingest, "markets", None) or ()) | {k[0] for k in counts
                                                                                   if k[1] in CHANNELS})
            for exchange in exchanges:
                total = sum(counts.get((exchange, c, "messages"), 0) for c in CHANNELS)
                if total != sum(self._counts.get((exchange, c, "messages"), 0) for c in CHANNELS) \
                        or exchange not in self._last_change:
                    self._last_change[exchange] = now
            latency = self._read_latency(now)
            previous, elapsed = (self._counts, now - self._when) if self._when is not None else (None, 1.0)
            self.sample = {"counts": counts, "previous": previous, "elapsed": elapsed, "latency": latency,
                           "silent": {e: now - self._last_change[e] for e in exchanges}, "exchanges": exchanges}
            self._counts, self._when = counts, now
            if previous is not None:
                self.history.append((time.time() * 1e3, {e: sum(counts.get((e, c, "messages"), 0)
                                                                - previous.get((e, c, "messages"), 0)
                                                                for c in CHANNELS) / elapsed for e in exchanges}))
            self.version += 1
            return True

    def _read_latency(self, now: float) -> dict:
        """Read new trades of every key; p50 and p99 of receipt − exchange time over the window, per exchange."""
        hub = self.ingest.hub
        for key in hub.keys("trades"):
            if key not in self._cursors:
                self._cursors[key] = hub.subscribe(key, hub.last_seq(key))
        for (_, exchange, _), cursor in self._cursors.items():
            frame = cursor.read()
            if len(frame):
                delay = (frame["receipt_timestamp"].to_numpy("datetime64[ns]")
                         - frame["timestamp"].to_numpy("datetime64[ns]")).astype(np.int64) / 1e9
                self._latencies.append((now, exchange, delay))
        while self._latencies and self._latencies[0][0] < now - self.window:
            self._latencies.popleft()
        by_exchange = {}
        for _, exchange, delay in self._latencies:
            by_exchange.setdefault(exchange, []).append(delay)
        return {e: tuple(np.percentile(np.concatenate(d), [50, 99])) for e, d in by_exchange.items()}


def _status_html(status: str, reason: str) -> str:
    color = {"up": "#2e7d32", "waiting": "#9e9e9e", "down": "#c62828"}[status]
    text = f"{status}: {reason}" if status == "down" else status
    return f'<span style="color:{color};font-weight:bold">● {html.escape(text)}</span>'


class FeedHealth(LiveView):
    """Message rates, latencies, malformed messages, gaps, reconnects, storage and sessions, per exchange."""

    rate = param.Number(default=1.0, bounds=(0.1, 20.0), doc="Updates per second (the session's bound).")

    down_after = param.Number(default=10.0, bounds=(0.5, None),
                              doc="Seconds without a message after which an exchange is shown down.")

    def __init__(self, **params):
        super().__init__(**params)
        self._monitor = None
        self._version = 0

    def _layout(self):
        self._table = pn.widgets.Tabulator(
            pd.DataFrame(columns=COLUMNS, index=pd.Index([], name="exchange")), disabled=True,
            sizing_mode="stretch_width", formatters={
                "status": {"type": "html"},
                **{c: {"type": "money", "precision": 1}
                   for c in (*RATES, *LATENCY, "silent s")}})
        number = {"font_size": "26pt", "title_size": "10pt", "format": "{value:,.0f}"}
        self._numbers = {
            "msgs/s": pn.indicators.Number(label="messages/s", **number),
            "down": pn.indicators.Number(label="exchanges down", colors=[(0.5, "#2e7d32"), (1e12, "#c62828")],
                                         **number),
            "hub": pn.indicators.Number(label="receipt→hub p99 ms", **number),
            "screen": pn.indicators.Number(label="receipt→session p99 ms", **number),
            "stored": pn.indicators.Number(label="rows stored", **number),
            "sessions": pn.indicators.Number(label="open views", **number),
        }
        self._details = pn.pane.HTML("", sizing_mode="stretch_width")
        self._rates = ColumnDataSource({"time": [], **{ex: [] for ex in EXCHANGES}})
        spark = figure(height=160, sizing_mode="stretch_width", x_axis_type="datetime", toolbar_location=None,
                       title="Messages/s per exchange", tools="")
        for ex in EXCHANGES:
            spark.line("time", ex, source=self._rates, color=COLORS[ex], legend_label=ex, line_width=1.4)
        spark.legend.location, spark.legend.orientation = "top_left", "horizontal"
        spark.legend.background_fill_alpha = 0.6
        self._news = pn.widgets.Tabulator(
            pd.DataFrame(columns=NEWS_COLUMNS, index=pd.Index([], name="source")), disabled=True,
            sizing_mode="stretch_width", formatters={c: {"type": "money", "precision": 0}
                                                     for c in ("fetched s ago", "retry in s")})
        self._news_line = pn.pane.HTML("", sizing_mode="stretch_width")
        return pn.Column("### Feed health", pn.Row(*self._numbers.values()), self._details, self._table,
                         pn.pane.Bokeh(spark, sizing_mode="stretch_width"), "### News sources", self._news_line,
                         self._news, sizing_mode="stretch_width")

    def unsubscribe(self) -> None:
        """Release this view's hub cursors and its share of the process's :class:`FeedMonitor`."""
        super().unsubscribe()
        if self._monitor is not None:
            self._monitor.release()
            self._monitor = None
            self._version = 0

    def refresh(self) -> None:
        if self._monitor is None:
            self._monitor = FeedMonitor.acquire(self.ingest)
        monitor = self._monitor
        monitor.update()
        with monitor.lock:
            if monitor.version == self._version:
                return
            sample = dict(monitor.sample)
            history = list(monitor.history)[-(monitor.version - self._version):]
            self._version = monitor.version
        frame = health_frame(**sample, down_after=self.down_after)
        if frame.empty:
            self.message("Waiting for the feed to start…", "info")
            return
        self.message("The replay has ended: no more messages will come." if getattr(self.ingest, "finished", False)
                     else "", "info")
        self._show_table(frame)
        self._show_numbers(frame)
        self._show_news()
        if history:
            self._rates.stream({"time": [t for t, _ in history],
                                **{ex: [r.get(ex, np.nan) for _, r in history] for ex in EXCHANGES}}, rollover=300)

    def _show_table(self, frame: pd.DataFrame) -> None:
        shown = frame.assign(status=[_status_html(s, r) for s, r in zip(frame["status"], frame["reason"])])
        if list(self._table.value.index) == list(shown.index):
            self._table.patch({c: [(slice(0, len(shown)), shown[c].tolist())] for c in shown.columns}, as_index=False)
        else:
            self._table.value = shown

    def _show_news(self) -> None:
        feed = getattr(self.ingest, "news", None)
        if feed is None:
            line, frame = "News is off.", news_frame({}, {}, pd.Timestamp.now())
        else:
            stats = feed.stats()
            frame = news_frame(stats, feed.poller.stats(), pd.Timestamp.now("UTC").tz_localize(None))
            total = stats["total"]
            stored = total["stored"]
            line = (f"<b>{html.escape(feed.label)}</b> · {stored:,} item{'' if stored == 1 else 's'} stored since "
                    f"the start, backlog {total['backlog']:,}, errors {total['errors']:,}"
                    + (f", last: {html.escape(total['last_error'])}" if total["last_error"] else ""))
        if line != self._news_line.object:
            self._news_line.object = line
        if list(self._news.value.index) == list(frame.index) and len(frame):
            self._news.patch({c: [(slice(0, len(frame)), frame[c].tolist())] for c in frame.columns}, as_index=False)
        elif list(self._news.value.index) != list(frame.index):
            self._news.value = frame

    def _show_numbers(self, frame: pd.DataFrame) -> None:
        ingest = self.ingest
        values = {"msgs/s": float(frame[list(RATES)].sum().sum()), "down": int((frame["status"] == "down").sum()),
                  "hub": ingest.pipeline.hub_latency.quantile(0.99) * 1e3,
                  "screen": ingest.screen_latency.quantile(0.99) * 1e3, "stored": ingest.rows_stored(),
                  "sessions": active_views()}
        for name, value in values.items():
            shown = self._numbers[name].value
            if value != shown and not (value != value and (shown is None or shown != shown)):  # NaN shows "-"
                self._numbers[name].value = value
        writer = ingest.writer
        if writer is None:
            storage = "storage off"
        else:
            storage = (f"storage: backlog {writer.backlog_rows:,} rows, receipt→store p99 "
                       f"{writer.latency.quantile(0.99) * 1e3:,.0f} ms, {writer.errors} failed writes"
                       + (f", last error: {writer.last_error}" if writer.last_error else ""))
        down = frame[frame["status"] == "down"]
        alerts = "".join(f'<div style="color:#c62828;font-weight:bold">{html.escape(ex)} is down: '
                         f'{html.escape(reason)}</div>' for ex, reason in down["reason"].items())
        errors = ingest.errors()
        text = (f"{alerts}<b>Source:</b> {html.escape(ingest.label)} · {html.escape(storage)} · "
                f"pipeline errors {errors.get('pipeline', 0)} · hub cursors open {ingest.hub.subscribers}, "
                f"largest lag {ingest.hub.max_lag():,} rows")
        if text != self._details.object:
            self._details.object = text
