"""The Sentiment page's Viewer: its numbers against pandas on the same rows, headlines shown as text, sharing.

Hand-fed tests use real text (the VADER paper's human-rated tweets, scored by
analytics.sentiment) and real five-minute prices (Bittrex), with the tweets placed so that a
bar's sentiment follows the next bar's return: a lead the page must find. The last test runs
against a started simulator ingest with its simulated news.
"""

import html
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bokeh.models import ColumnDataSource

from analytics import risk, schema
from analytics.exchange import LocalExchange
from analytics.exchange.market import COIN_SPECS
from analytics.exchange.news import NewsDesk
from analytics.ingest import Ingest
from analytics.metrics import LatencyHistogram
from analytics.pipeline import Hub
from analytics.sentiment import label, scores
from analytics.sentiment.aggregate import sentiment_bars
from analytics.sentiment.store import NewsStore
from analytics.storage import TickStore
from analytics.views.base import active_views
from analytics.views.sentiment import SentimentView, send_changes, url_params
from analytics.views import sentimentfeed
from analytics.views.sentimentfeed import Headlines, SentimentData, headline_html
from polling import poll

pytestmark = pytest.mark.filterwarnings("ignore:Passing a BlockManager:DeprecationWarning")
DATA = Path(__file__).parents[2] / "shared" / "data"
FIVE = pd.Timedelta("5min")
COINS = ["ETH", "LTC"]
BARS = 200  # five-minute bars of each coin: ~17 hours
END = pd.Timestamp("2024-06-01 12:00")  # start of the forming price bar
CUT = END - pd.Timedelta("2h")  # items and bars published before are stored, the others are in the hub
LIVE_BARS = 12  # closed price bars only in the hub
SIMULATED = "SIMULATED news (local exchange)"
EVIL_TITLE = '<script>alert("title")</script><img src=x onerror="alert(1)"> ETH & LTC <b>bold</b>'


# -- real data, placed ---------------------------------------------------------------------------
def price_bars(coin: str) -> pd.DataFrame:
    """The last :data:`BARS` real 5m bars of ``coin`` (Bittrex, in BTC) moved to end at :data:`END`, scaled."""
    raw = pd.read_csv(DATA / "bars" / "bittrex_5m" / f"{coin}_BTC-5m.csv.gz").iloc[-BARS - 1:]
    scale = COIN_SPECS[coin].price / raw["close"].iloc[-1]
    start = END - FIVE * np.arange(len(raw))[::-1]
    return schema.conform("bars", pd.DataFrame({
        "exchange": "BINANCE", "symbol": f"{coin}-USDT", "timeframe": "5m", "start": start,
        **{c: raw[c].to_numpy() * scale for c in ("open", "high", "low", "close")}, "volume": raw["volume"].to_numpy(),
        "vwap": raw["close"].to_numpy() * scale, "trades": 5, "closed": start < END}))


@pytest.fixture(scope="module")
def tweets() -> pd.DataFrame:
    """The human-rated tweets with their scores, sorted by compound score."""
    raw = pd.read_csv(DATA / "sentiment" / "tweets_GroundTruth.txt.gz", sep="\t", header=None,
                      names=["id", "rating", "text"], quoting=3)
    scored = scores(raw["text"])
    return pd.concat([raw, scored], axis=1).sort_values("compound", kind="stable").reset_index(drop=True)


def placed_items(tweets: pd.DataFrame, bars: dict, seed: int = 7) -> pd.DataFrame:
    """Scored items about each coin: in each bar, 0-3 tweets whose scores rank like the next bar's return."""
    rng = np.random.default_rng(seed)
    rows = []
    for coin, frame in bars.items():
        closes = frame.set_index("start")["close"]
        nxt = np.log(closes).diff().shift(-1).iloc[1:-2]  # the return of the bar after each bar
        ranks = nxt.rank(pct=True)
        for start, q in ranks.items():
            for _ in range(rng.integers(0, 4)):
                at = int(np.clip(q + rng.normal(0, 0.05), 0, 1) * (len(tweets) - 1))
                tweet = tweets.iloc[at]
                rows.append({"source": rng.choice(["coindesk", "reddit/r/CryptoCurrency"]),
                             "id": f"{coin}-{start:%H%M}-{len(rows)}", "link": f"https://example.com/{len(rows)}",
                             "title": tweet["text"], "summary": f"rated {tweet['rating']:.2f}",
                             "published": start + pd.Timedelta(seconds=float(rng.uniform(0, 299))),
                             "coins": coin, **{c: tweet[c] for c in ("neg", "neu", "pos", "compound")}})
    items = pd.DataFrame(rows).sort_values("published", kind="stable").reset_index(drop=True)
    items["fetched"] = items["published"] + pd.Timedelta(seconds=30)
    items["label"] = label(items["compound"]).to_numpy()
    return items[["source", "id", "link", "title", "summary", "published", "fetched", "coins", "neg", "neu", "pos",
                  "compound", "label"]]


def news_rows(title: str, coins: str, published, ident: str, source: str = "coindesk", link=None) -> pd.DataFrame:
    """One scored item as the feed publishes it."""
    values = scores([title])
    return pd.DataFrame({"source": [source], "id": [ident], "link": [link or f"https://example.com/{ident}"],
                         "title": [title], "summary": [""], "published": [pd.Timestamp(published)],
                         "fetched": [pd.Timestamp(published)], "coins": [coins],
                         **{c: values[c].to_numpy() for c in ("neg", "neu", "pos", "compound")},
                         "label": label(values["compound"]).to_numpy()})


def publish_bars(hub: Hub, items: pd.DataFrame, now) -> None:
    """The hub's sentiment bars of ``items`` as the feed publishes them, per coin and timeframe."""
    for timeframe in ("5m", "1h"):
        bars = sentiment_bars(items, timeframe, now=now)
        for coin, part in bars.groupby("coin"):
            hub.publish(("sentiment", coin, timeframe), part.reset_index(drop=True))


@pytest.fixture(scope="module")
def world(tweets, tmp_path_factory):
    """Stored history and hub rows of real prices and placed tweets: what a running ingest would hold."""
    bars = {coin: price_bars(coin) for coin in COINS}
    items = placed_items(tweets, bars)
    evil = news_rows(EVIL_TITLE, "ETH,LTC", END - pd.Timedelta("20min"), "evil", source="evil<b>source</b>",
                     link="javascript:alert(2)")
    items = pd.concat([items, evil]).sort_values("published", kind="stable").reset_index(drop=True)
    store = TickStore(f"lmdb://{tmp_path_factory.mktemp('sentiment')}/arctic")
    news = NewsStore(store)
    old = items[items["published"] < CUT]
    news.write_items(old)
    news.write_sentiment(pd.concat([sentiment_bars(old, tf) for tf in ("5m", "1h")]))
    prices = pd.concat(bars.values(), ignore_index=True)
    store.write("bars", prices[prices["start"] < END - LIVE_BARS * FIVE])
    return types.SimpleNamespace(items=items, prices=prices, store=store, live=items[items["published"] >= CUT])


def fake_ingest(world, news=True, markets=None) -> types.SimpleNamespace:
    """What the page reads of an Ingest, its hub holding what the feed would have published."""
    hub = Hub()
    hub.publish(("news",), world.live.reset_index(drop=True))
    publish_bars(hub, world.live, END + FIVE / 2)
    for coin in COINS:
        prices = world.prices[world.prices["symbol"] == f"{coin}-USDT"]
        live = prices[prices["start"] >= END - LIVE_BARS * FIVE]
        hub.publish(("bars", "BINANCE", f"{coin}-USDT", "5m"), live.reset_index(drop=True))
    return types.SimpleNamespace(
        hub=hub, store=world.store, markets=markets or {"BINANCE": [f"{c}-USDT" for c in COINS]},
        news=types.SimpleNamespace(label=SIMULATED) if news else None, screen_latency=LatencyHistogram())


async def shown(view, after: int = -1):
    """Refresh ``view`` until it shows a result of a version above ``after``; return that result."""
    def ready():
        view.refresh()
        data = view._data
        return data is not None and data.version > after and data.result is not None and view._version == data.version
    await poll(ready, what="the sentiment computation")
    return view.result


async def listed(view, rows: int = 1):
    await poll(lambda: view.refresh() or len(view._table.value) >= rows, what=f"{rows} headlines")


# -- the reference: the same items in plain pandas -------------------------------------------------
def mentions(items: pd.DataFrame, timeframe: str = "5m") -> pd.DataFrame:
    rows = items.assign(coin=items["coins"].str.split(",")).explode("coin")
    return rows[rows["coin"] != ""].assign(start=rows["published"].dt.floor(pd.Timedelta(timeframe)))


def reference_bars(items: pd.DataFrame, coin: str, timeframe: str = "5m") -> pd.DataFrame:
    rows = mentions(items, timeframe)
    rows = rows[rows["coin"] == coin]
    return rows.groupby("start").agg(mean=("compound", "mean"), count=("compound", "size"),
                                     pos_share=("label", lambda s: (s == "positive").mean()),
                                     neg_share=("label", lambda s: (s == "negative").mean()))


def reference_gauges(items: pd.DataFrame, coins, window: int, timeframe: str = "5m") -> pd.DataFrame:
    rows = mentions(items, timeframe)
    through = rows["start"].max()
    rows = rows[rows["start"] > through - window * pd.Timedelta(timeframe)]
    table = pd.DataFrame({coin: {"mean": part["compound"].mean(), "count": len(part),
                                 "pos_share": (part["label"] == "positive").mean(),
                                 "neg_share": (part["label"] == "negative").mean()}
                          for coin, part in ((c, rows[rows["coin"] == c]) for c in coins)}).T
    return table.assign(count=table["count"].astype(int))


def reference_sample(world, coin: str, lookback: int = 288) -> tuple:
    """The coin's sentiment (0 in bars without news) and log returns on the closed price bars of the sample."""
    bars = world.prices[world.prices["symbol"] == f"{coin}-USDT"].set_index("start").sort_index()
    bars = bars.loc[END - (lookback - 1) * FIVE:]
    closes = bars.loc[bars["closed"], "close"]
    returns = np.log(closes).diff().iloc[1:]
    sentiment = reference_bars(world.items, coin)["mean"].reindex(returns.index).fillna(0.0)
    return sentiment.rename(f"{coin} sentiment"), returns.rename(f"{coin}-USDT returns")


# -- hand-fed ---------------------------------------------------------------------------------------
async def test_numbers_equal_pandas_on_the_same_items_and_the_planted_lead_is_found(world):
    ingest = fake_ingest(world)
    view = SentimentView(ingest=ingest, coin="ETH", window=12)
    view.__panel__()
    try:
        result = await shown(view)
        assert result.spec.coins == ("ETH", "LTC") and result.spec.symbol == "ETH-USDT"  # the feed's coins
        expected = reference_gauges(world.items, COINS, 12)
        assert result.through == mentions(world.items)["start"].max()
        pd.testing.assert_frame_equal(result.gauges, expected, check_names=False, check_dtype=False, rtol=1e-12)
        sent = view._gauges.data
        assert list(sent["coin"]) == COINS and list(sent["count"]) == list(expected["count"])
        np.testing.assert_allclose(sent["score"], expected["mean"], rtol=1e-12)
        assert f"{expected.at['LTC', 'count']:,} mentions · {expected.at['LTC', 'pos_share']:.0%} positive" in \
            sent["label"][1]

        series = reference_bars(world.items, "ETH")  # every bar is in the lookback (200 < 288)
        data = view._series.data
        np.testing.assert_array_equal(data["start"], series.index.to_numpy("datetime64[ns]").astype(np.int64) / 1e6)
        np.testing.assert_allclose(data["mean"], series["mean"], rtol=1e-12)
        np.testing.assert_array_equal(data["count"], series["count"])
        np.testing.assert_allclose(data["neg"], series["neg_share"], rtol=1e-12)
        bars = world.prices[world.prices["symbol"] == "ETH-USDT"]
        np.testing.assert_array_equal(view._price.data["close"], bars["close"])  # stored and hub bars, forming too
        np.testing.assert_array_equal(view._price.data["x"], (bars["start"] + FIVE).astype(np.int64) / 1e6)

        sentiment, returns = reference_sample(world, "ETH")
        leadlag = risk.lead_lag(sentiment, returns, 6)
        assert leadlag.leader() == "ETH sentiment"  # the placed lead is found...
        assert "Sentiment leads the price: ETH sentiment helps predict the ETH-USDT returns." in view._words.text
        words = leadlag.words()
        assert html.escape(words[1:]) in view._words.text and leadlag.nobs == len(returns) == BARS - 1
        for k in range(1, 7):  # ... and each forward correlation is Pearson's on the lagged bars
            r = np.corrcoef(sentiment.iloc[:-k], returns.iloc[k:])[0, 1]
            np.testing.assert_allclose(result.forward.at[k, "corr"], r, rtol=1e-9)
        np.testing.assert_allclose(view._xcorr.data["r"], leadlag.xcorr, rtol=1e-9)
        assert result.forward.at[1, "corr"] > result.forward.at[1, "band"]  # next bar's return: outside chance
        assert not view._error.visible and not view._message.visible, view._message.object
        assert view._banner.alert_type == "warning" and SIMULATED in view._banner.object
        assert "ETH · 5m · gauges over the last 12 bars (60 min)" in view._status.text
    finally:
        view.close()


async def test_the_next_item_updates_gauges_series_and_headlines_sending_only_changes(world, monkeypatch):
    calls = []
    for method in ("stream", "patch"):
        original = getattr(ColumnDataSource, method)

        def spy(self, new, *args, _original=original, _method=method, **kwargs):
            calls.append((self, _method, new))
            return _original(self, new, *args, **kwargs)

        monkeypatch.setattr(ColumnDataSource, method, spy)
    ingest = fake_ingest(world)
    view = SentimentView(ingest=ingest, coin="LTC")
    view.__panel__()
    try:
        first = await shown(view)
        await listed(view, 50)
        series, table = view._series.data, view._table.value.copy()
        streamed = []
        original = type(view._table).stream
        monkeypatch.setattr(type(view._table), "stream", lambda self, value, **kw: streamed.append(value) or
                            original(self, value, **kw))
        calls.clear()
        late = END + pd.Timedelta("90s")  # an item in the newest bar: it changes one bar of LTC
        item = news_rows("Litecoin surges to a record as bulls take charge", "LTC", late, "new-1")
        ingest.hub.publish(("news",), item)
        publish_bars(ingest.hub, pd.concat([world.live, item]), END + FIVE / 2)
        second = await shown(view, after=view._data.version)
        await poll(lambda: view.refresh() or streamed, what="the new headline")
        items = pd.concat([world.items, item], ignore_index=True)
        pd.testing.assert_frame_equal(second.gauges, reference_gauges(items, COINS, 12), check_names=False,
                                      check_dtype=False, rtol=1e-12)
        assert second.gauges.at["LTC", "count"] == first.gauges.at["LTC", "count"] + 1
        assert view._series.data is series  # never replaced: one bar streamed (a new start)
        sent = [(kind, new) for source, kind, new in calls if source is view._series]
        assert [kind for kind, _ in sent] == ["stream"] and list(sent[0][1]["count"]) == [1]
        assert len(streamed) == 1 and len(streamed[0]) == 1  # only the new headline went to the table
        assert "Litecoin surges to a record" in streamed[0]["headline"].iloc[0]
        assert len(view._table.value) == 50 and view._table.value.iloc[:49].equals(table.iloc[1:])  # rolled over
    finally:
        view.close()


async def test_a_title_with_html_is_sent_escaped_and_a_script_link_is_no_link(world):
    view = SentimentView(ingest=fake_ingest(world), about="ETH")
    view.__panel__()
    try:
        await listed(view)
        table = view._table.value
        row = table[table["headline"].str.contains("alert", regex=False)]
        assert len(row) == 1
        cell = row["headline"].iloc[0]
        text = ('&lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(1)&quot;&gt; '
                'ETH &amp; LTC &lt;b&gt;bold&lt;/b&gt;')
        assert cell == f'<span title="{text}">{text}</span>'  # text, and no link
        assert row["source"].iloc[0] == "evil&lt;b&gt;source&lt;/b&gt;"
        assert not any("<script" in str(v) or "<img" in str(v) for v in table.to_numpy().ravel())
    finally:
        view.close()
    assert headline_html("Bitcoin <3", "https://x.org/?a=1&b=\"2\"", "a <i>") == (
        '<a href="https://x.org/?a=1&amp;b=&quot;2&quot;" target="_blank" rel="noopener noreferrer" '
        'title="Bitcoin &lt;3\n\na &lt;i&gt;" style="color:inherit">Bitcoin &lt;3</a>')


async def test_headlines_filter_by_coin_and_source(world):
    view = SentimentView(ingest=fake_ingest(world), headlines=40)
    view.__panel__()
    try:
        await listed(view, 40)
        held = world.items.iloc[-500:]  # what the page holds: the store's newest, then the hub's

        def expect(coin="", source=""):
            rows = held
            if coin:
                rows = rows[rows["coins"].str.split(",").apply(lambda coins: coin in coins)]
            if source:
                rows = rows[rows["source"] == source]
            return sorted(rows["published"].dt.strftime("%Y-%m-%d %H:%M:%S").iloc[-40:])

        assert sorted(view._table.value["time"]) == expect()
        view._about_select.value = "LTC"
        assert view.about == "LTC"
        view.refresh()
        assert sorted(view._table.value["time"]) == expect("LTC")
        assert all("LTC" in coins for coins in view._table.value["coins"])
        assert set(view._source_select.options.values()) == {"", "coindesk", "reddit/r/CryptoCurrency",
                                                             "evil<b>source</b>"}
        view._source_select.value = "reddit/r/CryptoCurrency"
        view.refresh()
        assert sorted(view._table.value["time"]) == expect("LTC", "reddit/r/CryptoCurrency")
        assert set(view._table.value["source"]) == {"reddit/r/CryptoCurrency"}
        view.source = "nobody"
        view.refresh()
        assert len(view._table.value) == 0
        assert "No headline from 'nobody' yet (sources so far: coindesk, " in view._message.object
    finally:
        view.close()


async def test_sessions_share_one_computation_and_close_releases_every_cursor(world):
    ingest = fake_ingest(world)
    before, views_before = ingest.hub.subscribers, active_views()
    views = [SentimentView(ingest=ingest, coin="ETH") for _ in range(3)]
    other = SentimentView(ingest=ingest, coin="LTC", timeframe="1h")
    for view in [*views, other]:
        view.__panel__()
    try:
        results = [await shown(view) for view in [*views, other]]
        assert views[0]._data is views[1]._data is views[2]._data is not other._data
        assert results[0] is results[1] is results[2] and views[0]._data.computes == 1
        assert views[0]._news is other._news and views[0]._news.users == 4 and len(Headlines._shared) == 1
        assert len(SentimentData._shared) == 2 and active_views() == views_before + 4
        assert ingest.hub.subscribers == before + 1 + 2 * 3  # one news cursor, 2 coins + the price per spec
        pd.testing.assert_frame_equal(results[3].gauges, reference_gauges(world.items, COINS, 12, "1h"),
                                      check_names=False, check_dtype=False, rtol=1e-12)
        np.testing.assert_array_equal(other._series.data["count"], reference_bars(world.items, "LTC", "1h")["count"])
    finally:
        for view in [*views, other]:
            view.close()
        other.close()
    assert ingest.hub.subscribers == before and active_views() == views_before
    assert not SentimentData._shared and not Headlines._shared


async def test_no_news_no_item_yet_and_too_little_data_are_said(world, tmp_path):
    off = SentimentView(ingest=fake_ingest(world, news=False))
    off.__panel__()
    try:
        assert off._message.object.startswith("News is off") and off._banner.object == "**News: off.**"
        assert off._data is None and not off._error.visible
    finally:
        off.close()
    empty = types.SimpleNamespace(hub=Hub(), store=TickStore(f"lmdb://{tmp_path}/empty"),
                                  markets={"BINANCE": ["ETH-USDT"]}, screen_latency=LatencyHistogram(),
                                  news=types.SimpleNamespace(label="Live news: 3 feeds"))
    view = SentimentView(ingest=empty)
    view.__panel__()
    try:
        result = await shown(view)
        assert view._message.object == "Waiting for the first news item from Live news: 3 feeds…"
        assert view._banner.alert_type == "success"
        assert result.notes["gauges"] == "No 5m sentiment yet: waiting for news that mentions ETH."
        assert result.notes["price"] == "No 5m bars of ETH-USDT on BINANCE yet."
        assert result.notes["forward"].startswith("Sentiment vs forward returns of ETH: 0 closed 5m price returns, "
                                                  "20 needed. Wait about 100 min")
        bars = price_bars("ETH").iloc[-8:]
        empty.hub.publish(("bars", "BINANCE", "ETH-USDT", "5m"), bars.reset_index(drop=True))
        item = news_rows("Ether rallies as ETF approval nears", "ETH", END - pd.Timedelta("3min"), "one")
        empty.hub.publish(("news",), item)
        publish_bars(empty.hub, item, END)
        result = await shown(view, after=view._data.version)
        assert result.notes["forward"].startswith("Sentiment vs forward returns of ETH: 6 closed 5m price returns")
        assert result.gauges.at["ETH", "count"] == 1 and result.words == "" and view._words.text == ""
        assert "Waiting" not in view._message.object and not view._error.visible
        for section in ("gauges", "series", "price"):
            assert not view._notes[section].visible
    finally:
        view.close()


async def test_a_failing_store_or_computation_is_one_line_and_the_headlines_go_on(world, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(NewsStore, "read_sentiment", broken)
    view = SentimentView(ingest=fake_ingest(world))
    view.__panel__()
    try:
        result = await shown(view)
        await listed(view)
        assert view._message.object == "Stored sentiment unavailable: disk on fire"
        assert result.gauges["count"].sum() > 0  # from the hub's bars
        monkeypatch.setattr(sentimentfeed, "compute", broken)
        view.window = 6
        await poll(lambda: view._tick() or view._error.visible, what="the error line")  # as on the timer
        assert view._error.object == "SentimentView could not update: disk on fire"
        assert len(view._table.value) == 50
    finally:
        view.close()


@pytest.mark.parametrize("params, text", [
    ({"coins": ["ETH", "XYZ"]}, "Unknown coin XYZ: choose from BTC, ETH"),
    ({"coin": "DOGE"}, "DOGE is not among the coins shown: showing ETH."),
    ({"exchange": "NOPE"}, "Unknown exchange 'NOPE': no price shown (choose BINANCE)."),
    ({"coins": ["ETH", "BTC"], "coin": "BTC"}, "BTC is not traded on BINANCE: no price shown."),
    ({"about": "ZZZ"}, "Unknown coin 'ZZZ' for the headlines: showing every coin."),
], ids=["coins", "coin", "exchange", "market", "about"])
async def test_bad_choices_give_one_line_and_the_rest_goes_on(world, params, text):
    view = SentimentView(ingest=fake_ingest(world), **params)
    view.__panel__()
    try:
        result = await shown(view)
        await listed(view)
        assert view._message.visible and text in view._message.object, view._message.object
        assert not view._error.visible and result.gauges["count"].sum() > 0
    finally:
        view.close()


def test_bad_parameters_raise_at_assignment(world):
    view = SentimentView(ingest=fake_ingest(world))
    for name, value in (("window", 0), ("lookback", 5), ("timeframe", "1m"), ("headlines", 1)):
        with pytest.raises(ValueError, match=name):
            setattr(view, name, value)


def test_url_arguments_are_parsed_and_bad_ones_named():
    params, notes = url_params({"coins": "btc, eth", "coin": "eth", "timeframe": "1h", "window": "6",
                                "lookback": "500", "about": "btc", "source": "coindesk"})
    assert params == {"coins": ["BTC", "ETH"], "coin": "ETH", "timeframe": "1h", "window": 6, "lookback": 500,
                      "about": "BTC", "source": "coindesk"} and notes == []
    params, notes = url_params({"timeframe": "1m", "window": "0", "lookback": "all"})
    assert params == {}
    assert notes == ["Unknown timeframe '1m' in the URL: showing 5m (sentiment bars are 5m or 1h).",
                     "Bad window '0' in the URL: showing 12 (a whole number of bars from 1 to 288).",
                     "Bad lookback 'all' in the URL: showing 288 (a whole number of bars from 30 to 10000)."]


@pytest.mark.parametrize("old, new, sent", [
    ([1, 2, 3], [1, 2, 3, 4], [("stream", [4])]),
    ([1, 2, 3], [1, 2, 3.5], [("patch", (slice(2, 3), [3.5]))]),
    ([1, 2, 3], [1, 2, 3.5, 4], [("patch", (slice(2, 3), [3.5])), ("stream", [4])]),
    ([1, 2, 3], [2, 3, 4], [("stream", [4])]),  # the oldest row rolled over
    ([1, 2, 3, 4, 5], [1.5, 2, 3, 4, 5], [("replace", [1.5, 2, 3, 4, 5])]),  # an old row changed
    ([1, 2, 3], [2, 3], [("replace", [2, 3])]),
    ([1, 2, 3], [7, 8], [("replace", [7, 8])]),
], ids=["new", "changed", "both", "rolled", "old", "shrunk", "other"])
def test_send_changes_patches_the_end_and_streams_the_rest(old, new, sent):
    def columns(values):
        return {"x": np.array([int(v) * 10 for v in values], float), "y": np.array(values, float)}

    class Source:  # records what a ColumnDataSource would send
        def __setattr__(self, name, value):
            calls.append(("replace", list(value["y"])))

        def stream(self, data, rollover=None):
            calls.append(("stream", list(data["y"])))
            assert rollover == len(new)

        def patch(self, patches):
            (where, values), = patches["y"]
            calls.append(("patch", (where, list(values))))

    calls = []
    send_changes(Source(), columns(old), columns(new))
    assert calls == sent


# -- against a running ingest with simulated news ------------------------------------------------------
async def test_a_running_simulator_with_its_news_numbers_equal_pandas_on_the_same_items(tmp_path):
    desk = NewsDesk(every=0.5, move_pct=0.01, flat_pct=0.002, sample=0.1, seed=5)  # headlines on small moves
    exchange = LocalExchange(rate=200.0, seed=5, news=desk)
    await exchange.start()
    ingest = Ingest(source="simulator", exchange=exchange, store=f"lmdb://{tmp_path}/arctic",
                    symbols=["BTC-USDT", "ETH-USDT"], rate=200, workers=False, news_interval=0.2)
    view = SentimentView(ingest=ingest, window=3)
    view.__panel__()
    try:
        assert view._message.object == "Waiting for the feed to start…"
        before = ingest.hub.subscribers
        await ingest.start()
        def scored():
            view.refresh()
            items = ingest.hub.read(("news",))[1]
            rows = mentions(items) if len(items) else pd.DataFrame({"coin": [], "compound": []})
            rows = rows[rows["coin"].isin(["BTC", "ETH"])]
            return len(rows) >= 6 and (rows["compound"] != 0).sum() >= 2

        await poll(scored, timeout=60, what="headlines on BTC and ETH, two of them not neutral")
        assert ingest.hub.subscribers == before + 1 + 3  # the news and the spec's cursors (BTC, ETH, BTC-USDT)
        assert view._banner.alert_type == "warning" and "SIMULATED news" in view._banner.object
        await ingest.news.stop()  # no more items: the page and pandas see the same ones
        items = ingest.hub.read(("news",))[1]
        view.window = 4  # a new computation, from what the hub and the store hold now
        result = await shown(view)
        assert result.spec.coins == ("BTC", "ETH")  # the coins traded (the desk writes about others too)
        assert result.gauges["count"].sum() >= 6 and result.gauges["mean"].abs().max() > 0, result.gauges
        pd.testing.assert_frame_equal(result.gauges, reference_gauges(items, ["BTC", "ETH"], 4), check_names=False,
                                      check_dtype=False, rtol=1e-12)
        pd.testing.assert_frame_equal(result.series[["mean", "count", "pos_share", "neg_share"]],
                                      reference_bars(items, "BTC"), check_names=False, check_dtype=False, rtol=1e-12)
        bars = ingest.hub.latest(("bars", "BINANCE", "BTC-USDT", "5m"))  # the forming bar moves on: its close too
        np.testing.assert_array_equal(view._price.data["x"], (bars["start"] + FIVE).astype(np.int64) / 1e6)
        closed = bars["closed"].to_numpy(bool)
        np.testing.assert_array_equal(np.asarray(view._price.data["close"])[closed], bars["close"][closed])
        returns = max(int(bars["closed"].sum()) - 1, 0)
        assert result.notes["forward"].startswith(f"Sentiment vs forward returns of BTC: {returns} closed 5m price")
        await poll(lambda: view.refresh() or len(view._table.value) == min(len(items), 50), what="every headline")
        expected = items.iloc[-50:]
        assert sorted(view._table.value["time"]) == sorted(expected["published"].dt.strftime("%Y-%m-%d %H:%M:%S"))
        assert sorted(view._table.value["headline"]) == sorted(
            headline_html(title, link, summary) for title, link, summary in
            zip(expected["title"], expected["link"], expected["summary"]))
        assert f"{len(items):,} news items scored" in view._status.text
        assert ingest.screen_latency.count > 0 and not view._error.visible
    finally:
        view.close()
        await ingest.stop()
        await exchange.stop()
    assert ingest.hub.subscribers == 0 and not SentimentData._shared and not Headlines._shared


async def test_a_market_symbol_names_its_coin(world):
    """Links from the price pages carry symbols: ``coin=eth-usdt`` and ``coins=BTC/USDT`` mean ETH and BTC."""
    view = SentimentView(ingest=fake_ingest(world), coins=["BTC/USDT", "ETH"], coin="eth-usdt")
    view.__panel__()
    try:
        result = await shown(view)
        assert result.spec.coin == "ETH" and result.spec.coins == ("BTC", "ETH") and result.spec.symbol == "ETH-USDT"
        assert not view._message.visible, view._message.object
    finally:
        view.close()
