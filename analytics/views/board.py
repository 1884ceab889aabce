"""The price board: one row per coin, last price per exchange, live."""

import numpy as np
import pandas as pd
import panel as pn

from analytics.views.base import LiveView


def board_frame(ingest) -> pd.DataFrame:
    """Last trade price per symbol (rows) and exchange (columns), with the best spread in bp."""
    hub = ingest.hub
    last, spread = {}, {}
    for key in hub.keys("trades"):
        _, exchange, symbol = key
        tail = hub.tail(key, 1)
        if len(tail):
            last.setdefault(symbol, {})[exchange] = float(tail["price"].iloc[-1])
    for key in hub.keys("quotes"):
        _, exchange, symbol = key
        quote = hub.latest(key)
        if len(quote):
            bid, ask = float(quote["bid"].iloc[-1]), float(quote["ask"].iloc[-1])
            spread.setdefault(symbol, []).append(1e4 * (ask - bid) / ((ask + bid) / 2))
    frame = pd.DataFrame.from_dict(last, orient="index").sort_index()
    frame = frame[sorted(frame.columns)]
    frame.index.name = "symbol"
    frame["spread_bp"] = pd.Series({s: float(np.nanmin(v)) for s, v in spread.items()})
    return frame


class PriceBoard(LiveView):
    """Last price of every coin on every exchange, and the tightest bid/ask spread."""

    def _layout(self):
        self._table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=True, sizing_mode="stretch_width",
                                           formatters={"spread_bp": {"type": "money", "precision": 2}})
        return pn.Column("### Prices", self._table, sizing_mode="stretch_width")

    def refresh(self) -> None:
        frame = board_frame(self.ingest)
        if not frame.empty:
            self._table.value = frame
