"""The news path: feeds served on 127.0.0.1 -> SentimentFeed -> hub and ArcticDB, alone and in the ingest.

Scores are checked against :func:`analytics.sentiment.scores` recomputed, coins against
:func:`analytics.sentiment.tag_many`, and sentiment bars (stored and in the hub) against an
independent pandas computation (explode by coin, resample per coin) on the stored items.
"""

import asyncio
import json
import subprocess
import sys
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from analytics.exchange import LocalExchange
from analytics.exchange.news import NewsDesk
from analytics.ingest import Ingest
from analytics.metrics import LatencyHistogram
from analytics.pipeline import Hub
from analytics.sentiment import COINS, label, scores, tag_many
from analytics.sentiment.aggregate import SentimentAggregator, sentiment_bars
from analytics.sentiment.feed import NEWS_KEY, SentimentFeed
from analytics.sentiment.sources import Item, JSONLSource, RSSSource, now_utc
from analytics.sentiment.store import NewsStore
from analytics.storage import TickStore
from polling import poll

ROOT = Path(__file__).parents[1]
HEADLINES = Path(__file__).parent / "data" / "crypto_headlines.tsv"
SCRIPT_TITLE = '<script>alert("x")</script> Bitcoin rallies & <b>Ether</b> follows'
VALUES = ["mean", "count", "pos_share", "neg_share"]


def headlines() -> list:
    """The crypto headlines written for the tests (labelled for the scorer's accuracy tests)."""
    return pd.read_csv(HEADLINES, sep="\t")["text"].tolist()


def rss(rows, untitled: int = 0) -> bytes:
    """RSS 2.0 of ``(guid, title, published)`` rows, plus ``untitled`` entries without a title."""
    items = "".join(f"<item><title>{escape(title)}</title><link>http://news.test/{guid}</link><guid>{guid}</guid>"
                    f"<pubDate>{format_datetime(published.tz_localize('UTC').to_pydatetime(), usegmt=True)}"
                    f"</pubDate></item>" for guid, title, published in rows)
    items += "".join(f"<item><link>http://news.test/untitled{i}</link></item>" for i in range(untitled))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


def expected_bars(items: pd.DataFrame, freq: str) -> dict:
    """``{coin: bars}`` the obvious way: one row per (item, coin), resampled per coin, empty bars dropped."""
    rows = [{"coin": coin, "published": published, "compound": compound, "pos": tag == "positive",
             "neg": tag == "negative"}
            for published, coins, compound, tag in zip(items.index, items["coins"], items["compound"], items["label"])
            for coin in coins.split(",") if coin]
    frame = pd.DataFrame(rows).set_index("published").sort_index()
    out = {}
    for coin, part in frame.groupby("coin"):
        resampled = part.resample(freq)
        bars = pd.DataFrame({"mean": resampled["compound"].mean(), "count": resampled["compound"].count(),
                             "pos_share": resampled["pos"].mean(), "neg_share": resampled["neg"].mean()})
        out[coin] = bars[bars["count"] > 0]
    return out


def assert_bars_equal(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    got = got.set_index("start") if "start" in got.columns else got
    pd.testing.assert_frame_equal(got[VALUES].astype(float), expected[VALUES].astype(float), check_names=False,
                                  check_freq=False, rtol=1e-12, atol=1e-12)


def check_aggregates(news: NewsStore, hub: Hub, stored: pd.DataFrame) -> None:
    """Stored 5m and 1h bars, and the hub's 5m bars, equal the independent computation on ``stored``."""
    for timeframe, freq in (("5m", "5min"), ("1h", "1h")):
        expected = expected_bars(stored, freq)
        assert expected and sorted(expected) == sorted(key[1] for key in hub.keys("sentiment") if key[2] == timeframe)
        assert sorted(expected) == [coin for coin in sorted(COINS) if len(news.read_sentiment(coin, timeframe))]
        for coin, bars in expected.items():
            held = news.read_sentiment(coin, timeframe)
            assert held["closed"].all()
            assert_bars_equal(held, bars)
            assert_bars_equal(hub.latest(("sentiment", coin, timeframe)), bars)


@pytest.fixture
async def site():
    """An RSS server on 127.0.0.1: ``site.doc`` is served at ``/rss``; ``site.hits`` counts requests."""
    class Site:
        doc, hits = b"", 0

    state = Site()

    async def handle(request):
        state.hits += 1
        return web.Response(body=state.doc, content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/rss", handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    state.url = str(server.make_url("/rss"))
    yield state
    await server.close()


async def test_rss_items_are_scored_tagged_stored_once_and_aggregated(site, tmp_path):
    texts = headlines()[:60] + [SCRIPT_TITLE]
    first = now_utc().floor("1h") - pd.Timedelta(hours=3)  # every bar closed already
    rows = [(f"g{i}", text, first + pd.Timedelta(minutes=2 * i)) for i, text in enumerate(texts)]
    site.doc = rss(rows, untitled=2)
    uri = f"lmdb://{tmp_path}/store"
    hub = Hub()
    feed = SentimentFeed([RSSSource(site.url, "rss:test")], hub, store=uri, interval=0.05, flush_interval=0.05)
    await feed.start()
    try:
        await poll(lambda: site.hits >= 3 and feed.stats()["total"]["stored"] == len(rows), 60, "items stored")
    finally:
        await feed.stop()
    stats = feed.stats()["sources"]["rss:test"]
    assert (stats["new"], stats["scored"], stats["stored"], stats["backlog"]) == (61, 61, 61, 0)
    assert stats["items"] >= 2 * 61 and stats["errors"] >= 1  # served repeatedly; untitled entries reported
    news = NewsStore(uri)
    stored = news.read_items()
    assert stored["id"].tolist() == [guid for guid, _, _ in rows]  # each once, in publication order
    assert stored.index.tolist() == [published for _, _, published in rows]
    assert SCRIPT_TITLE in stored["title"].tolist()  # markup kept as text
    expected = scores(stored["title"].tolist())
    np.testing.assert_array_equal(stored[["neg", "neu", "pos", "compound"]].to_numpy(), expected.to_numpy())
    assert stored["label"].tolist() == label(expected["compound"]).tolist()
    assert stored["coins"].tolist() == [",".join(c) for c in tag_many(stored["title"].tolist())]
    assert (stored["coins"] != "").mean() > 0.5  # the headlines are about coins
    published = hub.read(NEWS_KEY)[1]
    assert sorted(published["id"]) == sorted(stored["id"]) and len(published) == 61
    check_aggregates(news, hub, stored)

    # a restart: the same feed plus 20 new items; the stored ids keep the old ones out
    more = [(f"g{i}", text, first + pd.Timedelta(minutes=2 * i)) for i, text in enumerate(headlines()[61:81], 61)]
    site.doc = rss(rows + more)
    hits, hub = site.hits, Hub()
    again = SentimentFeed([RSSSource(site.url, "rss:test")], hub, store=TickStore(uri), interval=0.05,
                          flush_interval=0.05)
    await again.start()
    try:
        await poll(lambda: site.hits >= hits + 3 and again.stats()["total"]["stored"] == 20, 60, "new items stored")
    finally:
        await again.stop()
    assert again.stats()["total"]["new"] == 20
    stored = news.read_items()
    assert stored["id"].tolist() == [guid for guid, _, _ in rows + more]
    assert sorted(hub.read(NEWS_KEY)[1]["id"]) == sorted(stored["id"])  # the stored past first, then the new
    check_aggregates(news, hub, stored)


def synthetic(n: int, start: str, seconds: float, prefix: str, seed: int) -> pd.DataFrame:
    """``n`` scored items published at random over ``seconds`` from ``start`` (random coins and scores)."""
    rng = np.random.default_rng(seed)
    published = pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.uniform(0, seconds, n)), unit="s")
    compound = rng.uniform(-1, 1, n).round(4)
    return pd.DataFrame({
        "source": rng.choice(["rss:a", "rss:b"], n), "id": [f"{prefix}{i}" for i in range(n)], "link": "",
        "title": [f"headline {prefix}{i}" for i in range(n)], "summary": "", "published": published,
        "fetched": published, "coins": rng.choice(["BTC", "ETH", "BTC,ETH", "", "SOL,BTC"], n),
        "neg": 0.0, "neu": 1.0, "pos": 0.0, "compound": compound, "label": label(compound).to_numpy()})


def test_news_store_keeps_each_id_once_in_publication_order(tmp_path):
    uri = f"lmdb://{tmp_path}/store"
    news = NewsStore(uri)
    items = synthetic(300, "2024-05-01 20:00", 8 * 3600, "a", seed=1)  # across midnight: two days
    assert len(news.write_items(items.iloc[:200])) == 200
    new = news.write_items(items.sample(frac=1, random_state=2))  # again, shuffled: only the 100 not stored
    assert sorted(new["id"]) == sorted(items["id"].iloc[200:])
    assert len(NewsStore(TickStore(uri)).write_items(items)) == 0  # a restart knows what is stored
    late = synthetic(20, "2024-05-01 21:00", 3600, "late", seed=3)  # older than the newest stored
    assert len(news.write_items(late)) == 20
    stored = news.read_items()
    everything = pd.concat([items, late]).sort_values("published", kind="stable")
    assert stored.index.is_monotonic_increasing and len(stored) == 320
    assert sorted(stored["id"]) == sorted(everything["id"])
    btc = news.read_items(coin="BTC")
    assert sorted(btc["id"]) == sorted(everything["id"][everything["coins"].str.split(",").map(lambda c: "BTC" in c)])
    assert set(news.read_items(source="rss:a")["source"]) == {"rss:a"}
    assert news.read_items(limit=5)["id"].tolist() == stored["id"].tolist()[-5:]
    start, end = stored.index[10], stored.index[250]
    assert len(news.read_items(start, end)) == 241  # inclusive
    assert news.seen_ids(limit=7) == stored["id"].tolist()[-7:]
    with pytest.raises(ValueError, match="lack columns"):
        news.write_items(items.drop(columns="label"))


def test_news_store_sentiment_bars_replace_by_start_and_keep_the_rest(tmp_path):
    news = NewsStore(f"lmdb://{tmp_path}/store")
    bars = sentiment_bars(synthetic(400, "2024-05-01 00:00", 6 * 3600, "a", seed=4), "5m")
    assert news.write_sentiment(bars) == len(bars)
    btc = bars[bars["coin"] == "BTC"]
    changed = btc.iloc[[2, 9]].assign(mean=0.5, count=99)
    news.write_sentiment(changed)  # two bars apart: the bars between them stay
    held = news.read_sentiment("BTC", "5m")
    assert len(held) == len(btc)
    assert held["count"].iloc[[2, 9]].tolist() == [99, 99]
    assert_bars_equal(held.drop(held.index[[2, 9]]), btc.drop(btc.index[[2, 9]]).set_index("start"))
    assert news.read_sentiment("BTC", "5m", start=btc["start"].iloc[3], end=btc["start"].iloc[5]).shape[0] == 3
    assert news.read_sentiment("NOPE", "5m").empty
    with pytest.raises(ValueError, match="unknown sentiment timeframe"):
        news.read_sentiment("BTC", "15m")


def test_incremental_bars_equal_the_batch_computation():
    items = synthetic(2000, "2024-05-01 00:00", 3 * 3600, "a", seed=5)
    assert_bars_equal(sentiment_bars(items, "5m").query("coin == 'ETH'"),
                      expected_bars(items.set_index("published"), "5min")["ETH"])
    aggregator = SentimentAggregator(close_delay=60)
    now = pd.Timestamp("2024-05-01 02:58")
    latest = {}
    shuffled = items.sample(frac=1, random_state=6)
    for a in range(0, len(items), 137):  # late and early items mixed in every batch
        for row in aggregator.add(shuffled.iloc[a:a + 137], now).itertuples(index=False):
            latest[(row.coin, row.timeframe, row.start)] = row
    forming = {key for key, row in latest.items() if not row.closed}
    assert forming == {key for key in latest if key[2] + pd.Timedelta(key[1].replace("m", "min")) >
                       now - pd.Timedelta(seconds=60)}
    closing = aggregator.close_until(now + pd.Timedelta(hours=1))
    assert set(zip(closing["coin"], closing["timeframe"], closing["start"])) == forming and closing["closed"].all()
    for row in closing.itertuples(index=False):
        latest[(row.coin, row.timeframe, row.start)] = row
    expected = pd.concat([sentiment_bars(items, "5m"), sentiment_bars(items, "1h")])
    got = pd.DataFrame([row._asdict() for row in latest.values()])
    merged = expected.merge(got, on=["coin", "timeframe", "start"], suffixes=("", "_live"))
    assert len(merged) == len(expected) == len(got)
    for name in VALUES:
        np.testing.assert_allclose(merged[f"{name}_live"], merged[name], rtol=1e-12, atol=1e-12)


class ListSource:
    """A source returning fixed items (what the poller needs of a source)."""

    def __init__(self, name, items):
        self.name, self.items = name, items
        self.errors, self.last_error, self.not_modified = 0, "", 0

    async def fetch(self, session):
        return list(self.items)


async def test_items_without_a_title_are_counted_and_skipped():
    t = now_utc()
    items = [Item("list", "a", "", "", "", t, t), Item("list", "b", "", "   ", "", t, t),
             Item("list", "c", "", "Bitcoin surges to a record high", "", t, t)]
    hub = Hub()
    feed = SentimentFeed([ListSource("list", items)], hub, interval=60.0)
    await feed.start()
    try:
        await poll(lambda: feed.stats()["total"]["received"] == 3 and feed.backlog == 0, 30, "the items")
        await poll(lambda: feed.stats()["total"]["scored"] == 1, 30, "the titled item scored")
    finally:
        await feed.stop()
    stats = feed.stats()["sources"]["list"]
    assert (stats["malformed"], stats["scored"], stats["errors"], stats["stored"]) == (2, 1, 2, 0)
    assert hub.read(NEWS_KEY)[1]["id"].tolist() == ["c"]
    assert hub.latest(("sentiment", "BTC", "5m"))["count"].tolist() == [1]
    assert feed.label == "Live news: 1 feed"


def write_backlog(path: Path, n: int) -> Path:
    """``n`` headlines as JSON lines, published evenly over the last 24 hours."""
    texts, end = headlines(), now_utc()
    times = end - pd.to_timedelta(np.linspace(86400, 0, n, endpoint=False), unit="s")
    path.write_text("".join(json.dumps({"id": f"b{i}", "title": texts[i % len(texts)], "published": t.isoformat()})
                            + "\n" for i, t in enumerate(times)))
    return path


async def loop_lag(histogram: LatencyHistogram, period: float = 0.01) -> None:
    """Record how late a ``period`` timer fires, forever."""
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(period)
        histogram.add(loop.time() - start - period)


async def test_a_backlog_of_10000_items_does_not_stall_the_price_feed(tmp_path):
    path = write_backlog(tmp_path / "backlog.jsonl", 10_000)
    ingest = Ingest(source="simulator", symbols=["BTC-USDT", "ETH-USDT"], store=f"lmdb://{tmp_path}/store", rate=500,
                    seed=11, news=False)
    latency, lag = ingest.pipeline.hub_latency, LatencyHistogram()
    # made before the prices flow, as the ingest makes its own (opening a new store's news pauses the process 1 s)
    feed = SentimentFeed([JSONLSource(path)], ingest.hub, store=ingest.store, interval=3600.0)
    await ingest.start()
    probe = asyncio.get_running_loop().create_task(loop_lag(lag))
    try:
        await poll(lambda: latency.count >= 500, 60, "the price feed to run")
        latency.reset()
        lag.reset()
        await poll(lambda: latency.count >= 3000, 60, "trades without the backlog")
        baseline = latency.quantile(0.99), lag.quantile(0.99)
        latency.reset()
        lag.reset()
        await feed.start()
        try:
            await poll(lambda: feed.stats()["total"]["stored"] == 10_000, 180, "the backlog stored")
        finally:
            await feed.stop()
        backlog = latency.quantile(0.99), lag.quantile(0.99)
        trades = latency.count
    finally:
        probe.cancel()
        await ingest.stop()
    assert trades > 1000
    assert backlog[0] <= 3 * baseline[0], (backlog, baseline)  # receipt -> hub p99 of the prices
    # the loop's lag p99 (below one 10 ms period is no stall); scoring 500 items on the loop blocks it ~100 ms
    assert backlog[1] <= 6 * max(baseline[1], 0.01), (backlog, baseline)
    stored = NewsStore(ingest.store).read_items()
    assert stored["id"].nunique() == len(stored) == 10_000
    assert ingest.hub.last_seq(NEWS_KEY) == 10_000
    assert feed.stats()["total"]["errors"] == 0 and ingest.errors()["pipeline"] == 0


async def test_the_ingest_stores_and_publishes_the_simulated_news(tmp_path):
    symbols = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
    exchange = LocalExchange(symbols=symbols, rate=50, seed=5, news=NewsDesk(every=0.2, sample=0.05, seed=5))
    exchange.start_in_thread()
    uri = f"lmdb://{tmp_path}/store"
    ingest = Ingest(source="simulator", symbols=symbols, exchange=exchange, store=uri, news_interval=0.1)
    try:
        await ingest.start()
        assert ingest.news.label == "SIMULATED news (local exchange on 127.0.0.1)"
        await poll(lambda: ingest.news.stats()["total"]["stored"] >= 6, 60, "simulated news stored")
        published = ingest.hub.read(NEWS_KEY)[1]
        keys = ingest.hub.keys("sentiment")
    finally:
        await ingest.stop()
        exchange.stop_in_thread()
    stored = NewsStore(uri).read_items()
    assert len(stored) >= 6 and set(stored["source"]) == {"simulated"}
    assert set(published["id"]) <= set(stored["id"])
    coins = {coin for text in stored["coins"] for coin in text.split(",") if coin}
    assert coins and coins <= {"BTC", "ETH", "SOL"}
    assert {("sentiment", coin, timeframe) for coin in coins for timeframe in ("5m", "1h")} <= set(keys)
    assert ingest.news.stats()["total"]["errors"] == 0


def test_ingest_news_option_is_checked():
    with pytest.raises(ValueError, match="news must be None"):
        Ingest(source="simulator", store=False, news="rss")
    with pytest.raises(ValueError, match="news_interval"):
        Ingest(source="simulator", store=False, news_interval=0)


@pytest.mark.parametrize("option", ["--news", "--no-news"])
def test_the_cli_news_switch(option, tmp_path):
    uri = f"lmdb://{tmp_path}/store"
    result = subprocess.run([sys.executable, "-m", "analytics", "ingest", "--source", "simulator", "--symbols",
                             "BTC-USDT", "--duration", "2", "--store", uri, option],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert ("SIMULATED news" in result.stderr) == (option == "--news")
    libraries = TickStore(uri)._backend.arctic.list_libraries()
    assert "trades" in libraries and ("news" in libraries) == (option == "--news")
