"""What every live Viewer shares: a bounded refresh rate and clean-up when its session ends."""

import panel as pn
import param


class LiveView(pn.viewable.Viewer):
    """A Viewer refreshed on a timer from the shared ingest.

    Subclasses implement ``_layout()`` (build widgets once) and ``refresh()`` (update
    them from the ingest). The timer runs on the session's own loop and stops when the
    session is destroyed, so the view costs nothing after its page closes.
    """

    ingest = param.Parameter(doc="The analytics.ingest.Ingest whose hub and counters this view reads.")

    rate = param.Number(default=1.0, bounds=(0.1, 10.0), doc="Refreshes per second.")

    def __init__(self, **params):
        super().__init__(**params)
        self._callback = None
        self._panel = None

    def _layout(self):
        raise NotImplementedError

    def refresh(self) -> None:
        raise NotImplementedError

    def __panel__(self):
        if self._panel is None:
            self._panel = self._layout()
            self.refresh()
            self._callback = pn.state.add_periodic_callback(self.refresh, period=int(1000 / self.rate))
            if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
                pn.state.on_session_destroyed(lambda context: self.close())
        return self._panel

    def close(self) -> None:
        """Stop refreshing."""
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
