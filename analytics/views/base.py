"""What every live Viewer shares: a bounded update rate, hub subscriptions, clear errors, clean-up.

A session never touches the feed: it reads the shared :class:`~analytics.pipeline.Hub`
through :class:`~analytics.pipeline.hub.Subscription` cursors on its own timer (default
4 Hz, whatever the tick rate), sends only what changed, and releases its timer and
cursors when its session closes.
"""

import logging
import time

import numpy as np
import panel as pn
import param
from panel.io.callbacks import PeriodicCallback
from panel.io.document import hold

LOG = logging.getLogger(__name__)

# Viewers whose timer is running in this process (for tests, benchmarks and the health page).
_ACTIVE = set()


def active_views() -> int:
    """Live Viewers in this process whose timer is running."""
    return len(_ACTIVE)


def in_server() -> bool:
    """True inside a ``panel serve`` session (False in a notebook or a plain script)."""
    doc = pn.state.curdoc
    return doc is not None and doc.session_context is not None


def url_bar_counts(view: type, args: dict, names) -> tuple[dict, list]:
    """Numbers of bars from URL query values (``{name: text or None}``), within the bounds of
    ``view``'s parameters ``names``; a bad value is left out and named in one sentence."""
    params, notes = {}, []
    for name in names:
        text = args.get(name)
        if text is None:
            continue
        low, high = view.param[name].bounds
        value = int(text) if text.isdigit() else None
        if value is None or not low <= value <= high:
            notes.append(f"Bad {name} {text!r} in the URL: showing {view.param[name].default} "
                         f"(a whole number of bars from {low} to {high}).")
        else:
            params[name] = value
    return params, notes


class LiveView(pn.viewable.Viewer):
    """A Viewer updated on a timer from the shared ingest.

    Subclasses implement ``_layout()`` (build the widgets and plots once, return the
    layout) and ``refresh()`` (read new hub rows and update them in place). Use
    :meth:`subscribe` for hub cursors so they are closed with the view, and
    :meth:`message` for anything the user must know (bad input, no data yet): an
    exception in ``refresh`` is logged and shown as one line, and the next tick runs as
    usual.
    """

    ingest = param.Parameter(doc="The analytics.ingest.Ingest whose hub, store and counters this view reads.")

    rate = param.Number(default=4.0, bounds=(0.1, 20.0), doc="Updates per second (the session's bound).")

    def __init__(self, **params):
        super().__init__(**params)
        self._callback = None
        self._panel = None
        self._subscriptions = []
        self._message = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width",
                                      margin=(0, 5))
        self._error = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width",
                                    margin=(0, 5))
        self._failure = None

    # -- for subclasses ---------------------------------------------------------------
    def _layout(self):
        raise NotImplementedError

    def refresh(self) -> None:
        raise NotImplementedError

    def subscribe(self, key, since=None):
        """A hub cursor on ``key``, closed with this view."""
        subscription = self.ingest.hub.subscribe(key, since)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self) -> None:
        """Close every hub cursor of this view (e.g. before following another symbol)."""
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions = []

    def message(self, text: str = "", kind: str = "warning") -> None:
        """Show one line to the user above the view (``""`` hides it)."""
        if text != self._message.object or self._message.alert_type != kind:
            self._message.param.update(object=text, alert_type=kind, visible=bool(text))

    def shown(self, receipt_timestamps) -> None:
        """Record receipt→session latency of rows this view has just sent (datetime64[ns] UTC)."""
        histogram = getattr(self.ingest, "screen_latency", None)
        if histogram is not None and len(receipt_timestamps):
            now = np.datetime64(time.time_ns(), "ns")
            histogram.add((now - np.asarray(receipt_timestamps, dtype="datetime64[ns]")).astype(np.int64) / 1e9)

    # -- life cycle --------------------------------------------------------------------
    def __panel__(self):
        if self._panel is None:
            self._panel = pn.Column(self._error, self._message, self._layout(), sizing_mode="stretch_width")
            self._tick()
            self.start()
        return self._panel

    def start(self) -> None:
        """Start the timer (done when the view is first shown)."""
        if self._callback is None:
            # background: no busy flag toggled on every session's template, no log line, per tick
            self._callback = PeriodicCallback(callback=self._tick, period=int(1000 / self.rate), background=True,
                                              log=False)
            self._callback.start()
            _ACTIVE.add(self)
            if in_server():
                pn.state.on_session_destroyed(lambda context: self.close())

    def _tick(self) -> None:
        try:
            if in_server():
                with hold(pn.state.curdoc):
                    self.refresh()
            else:
                self.refresh()
                if self._panel is not None:
                    pn.io.push_notebook(self._panel)
        except Exception as error:  # a view must never take the page down: say it, log it, go on
            if str(error) != self._failure:
                LOG.exception("%s failed to update", type(self).__name__)
            self._failure = str(error)
            self._error.param.update(object=f"{type(self).__name__} could not update: {error}", visible=True)
        else:
            if self._failure is not None:
                self._failure = None
                self._error.visible = False

    def close(self) -> None:
        """Stop the timer and release the hub cursors (idempotent)."""
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        _ACTIVE.discard(self)
        self.unsubscribe()
