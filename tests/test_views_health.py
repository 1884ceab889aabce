"""The Feed health page: rates from counter snapshots, malformed messages, a stalled feed, clean-up."""


import numpy as np
import pandas as pd
import pytest

from analytics.ingest import Ingest
from analytics.views.base import active_views
from analytics.views.health import COLUMNS, NEWS_COLUMNS, FeedHealth, health_frame, news_frame
from polling import poll

EXCHANGES = ["BINANCE", "BITFINEX", "KRAKEN"]


def test_health_frame_rates_from_two_counter_snapshots():
    before = {("BINANCE", "trades", "messages"): 100, ("BINANCE", "ticker", "messages"): 10,
              ("KRAKEN", "trades", "messages"): 50, ("KRAKEN", "connections", "KRAKEN.ws.1"): 1}
    after = {**before, ("BINANCE", "trades", "messages"): 160, ("BINANCE", "l2_book", "messages"): 8,
             ("KRAKEN", "errors", "malformed"): 2, ("KRAKEN", "errors", "reconnects"): 1,
             ("KRAKEN", "errors", "workers"): 1}
    frame = health_frame(after, before, elapsed=2.0, latency={"BINANCE": (0.010, 0.050)},
                         silent={"BINANCE": 0.5, "KRAKEN": 12.0}, down_after=10.0, exchanges=["BITFINEX"])
    assert list(frame.columns) == list(COLUMNS) and list(frame.index) == EXCHANGES
    binance, kraken, bitfinex = frame.loc["BINANCE"], frame.loc["KRAKEN"], frame.loc["BITFINEX"]
    assert (binance["trades/s"], binance["ticker/s"], binance["l2_book/s"]) == (30.0, 0.0, 4.0)
    assert binance["messages"] == 178 and binance["status"] == "up" and binance["reason"] == ""
    assert (binance["exch→receipt p50 ms"], binance["exch→receipt p99 ms"]) == pytest.approx((10.0, 50.0))
    assert (kraken["malformed"], kraken["reconnects"], kraken["gaps"]) == (2, 1, 0)
    assert kraken["status"] == "down" and kraken["reason"] == "no message for 12 s; its feed worker stopped (1×)"
    assert np.isnan(kraken["exch→receipt p99 ms"]) and kraken["trades/s"] == 0.0
    assert bitfinex["status"] == "waiting" and bitfinex["messages"] == 0
    first = health_frame(before)  # one snapshot: no rate yet
    assert first[["trades/s", "ticker/s", "l2_book/s"]].isna().all().all() and first.loc["KRAKEN", "messages"] == 50
    never = health_frame({}, silent={"BINANCE": 30.0})
    assert never.loc["BINANCE", "reason"] == "no message since the feed started 30 s ago"


@pytest.fixture
async def ingest(tmp_path):
    ingest = Ingest(source="simulator", store=f"lmdb://{tmp_path}/a", symbols=["BTC-USDT", "ETH-USDT"], rate=200,
                    seed=5, workers=False)
    await ingest.start()
    try:
        yield ingest
    finally:
        await ingest.stop()


def table(view):
    """Refresh the view and return its table."""
    view.refresh()
    return view._table.value


async def test_rates_latency_malformed_messages_and_a_stalled_feed(ingest):
    before, views = ingest.hub.subscribers, active_views()
    view = FeedHealth(ingest=ingest, down_after=1.0)
    view.__panel__()
    try:
        assert view.rate == 1.0
        await poll(lambda: len(table(view)) == 3 and (table(view)[["trades/s", "ticker/s", "l2_book/s"]] > 0).all()
                   .all() and view._numbers["stored"].value > 0, what="every exchange and channel flowing, stored")
        frame = view._table.value
        assert list(frame.index) == EXCHANGES and (frame["status"].str.contains("● up")).all()
        p50, p99 = frame["exch→receipt p50 ms"], frame["exch→receipt p99 ms"]
        assert (p50 > 0).all() and (p99 >= p50).all() and (p99 < 5000).all()
        assert (frame[["malformed", "gaps", "reconnects"]] == 0).all().all()
        assert view._numbers["msgs/s"].value > 0 and view._numbers["down"].value == 0
        assert view._numbers["hub"].value > 0 and view._numbers["sessions"].value == views + 1
        assert "SIMULATED" in view._details.object and "storage: backlog" in view._details.object
        assert ingest.hub.subscribers > before  # the monitor's cursors on every trades key
        assert len(view._rates.data["time"]) >= 1 and view._rates.data["KRAKEN"][-1] > 0

        ingest.exchange.faults.inject_garbage(count=3, exchange="KRAKEN")  # bad JSON and wrong shapes in turn
        await poll(lambda: table(view).loc["KRAKEN", "malformed"] >= 2, what="KRAKEN's malformed messages")
        assert (view._table.value.loc[["BINANCE", "BITFINEX"], "malformed"] == 0).all()

        ingest.exchange.faults.stall(4.0)  # the local exchange sends nothing for 4 s
        await poll(lambda: table(view)["status"].str.contains("down: no message for").all(), what="feeds down")
        assert view._numbers["down"].value == 3 and "KRAKEN is down: no message for" in view._details.object
        await poll(lambda: table(view)["status"].str.contains("● up").all(), what="feeds up again")
        assert "is down" not in view._details.object and not view._error.visible

        await poll(lambda: table(view) is not None and "simulated" in view._news.value.index
                   and view._news.value.loc["simulated", "fetched s ago"] >= 0, what="the simulated news polled")
        assert "SIMULATED news" in view._news_line.object
        assert view._news.value.loc["simulated", "errors"] == 0
    finally:
        view.close()
    assert ingest.hub.subscribers == before and active_views() == views


def test_news_frame_one_row_per_source():
    now = pd.Timestamp("2026-01-01 12:00:10")
    stats = {"sources": {"rss:a": {"items": 5, "new": 3, "stored": 3, "malformed": 1, "errors": 2, "backlog": 0,
                                   "last_error": "timeout"},
                         "rss:b": {"items": 0, "new": 0, "stored": 0, "malformed": 0, "errors": 0, "backlog": 0,
                                   "last_error": ""}}}
    polled = {"rss:a": {"last_fetch": pd.Timestamp("2026-01-01 12:00:00"), "delay": 240.0}, "rss:b": {}}
    frame = news_frame(stats, polled, now)
    assert list(frame.columns) == list(NEWS_COLUMNS) and list(frame.index) == ["rss:a", "rss:b"]
    assert frame.loc["rss:a", ["items", "new", "stored", "malformed", "errors"]].tolist() == [5, 3, 3, 1, 2]
    assert frame.loc["rss:a", "fetched s ago"] == 10 and frame.loc["rss:a", "retry in s"] == 240
    assert frame.loc["rss:a", "last error"] == "timeout" and np.isnan(frame.loc["rss:b", "fetched s ago"])
    assert news_frame({}, {}, now).empty


async def test_waiting_for_the_feed():
    ingest = Ingest(source="simulator", store=False, symbols=["BTC-USDT"], rate=50, workers=False)
    view = FeedHealth(ingest=ingest)
    view.__panel__()
    try:
        assert "Waiting for the feed to start" in view._message.object and not view._error.visible
    finally:
        view.close()
