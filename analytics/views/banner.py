"""The data banner: every page and notebook says plainly where its prices come from."""

import panel as pn


def _describe(ingest) -> tuple[str, str]:
    if ingest.source.kind == "auto":
        return "**Data:** choosing the source (the live exchanges if they answer, else the simulator)…", "info"
    if ingest.source.local:
        return f"**Data: {ingest.label}.** Prices are not real market prices.", "warning"
    return f"**Data: {ingest.label}**", "success"


def banner(ingest) -> pn.pane.Alert:
    """An alert naming the ingest's source: simulated and replayed data are never taken for live.

    An ``auto`` source is named once the ingest has chosen it.
    """
    text, kind = _describe(ingest)
    alert = pn.pane.Alert(text, alert_type=kind, sizing_mode="stretch_width", margin=(0, 5))
    if ingest.source.kind == "auto":
        def follow():
            text, kind = _describe(ingest)
            alert.param.update(object=text, alert_type=kind)
            if ingest.source.kind != "auto":
                callback.stop()

        callback = pn.state.add_periodic_callback(follow, period=500, timeout=120_000)
    return alert
