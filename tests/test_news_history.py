"""Simulated news history: the NewsDesk rule run over simulated 1m bars, and stored with the simulated price history.

Headlines are checked against a slow restatement of the rule on the bars (each coin's price at its
previous headline or ``window`` seconds before), sentiment bars against an independent pandas
groupby of the stored items, and the live news feed is run on a store filled with the history.
"""

import re
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from analytics.exchange.history import simulated_history
from analytics.exchange.news import HISTORY_EVERY, news_history
from analytics.feeds.sources import DEFAULT_SYMBOLS
from analytics.pipeline import Hub
from analytics.sentiment import scores
from analytics.sentiment.feed import NEWS_KEY, SentimentFeed
from analytics.sentiment.items import scored_items
from analytics.sentiment.sources import Item, now_utc
from analytics.sentiment.store import NewsStore
from analytics.storage import TickStore
from app.serve import _simulated_history
from polling import poll
from test_sentiment_feed import ListSource
from test_sentiment_sources import STRONG, coins_named, direction

WINDOW, MOVE, FLAT = 300.0, 0.01, 0.001  # the defaults of news_history
SUMMARY_COIN = re.compile(r"\((\w+)\) at ")
HISTORY_ID = re.compile(r"tickscope-sim-history-[0-9a-f]+-[1-9]\d*")


def one_minute(bars: pd.DataFrame, exchange: str = "BINANCE") -> dict:
    """``{coin: 1m bars indexed by start}`` of one exchange in a simulated history."""
    mask = (bars["exchange"] == exchange).to_numpy() & (bars["timeframe"] == "1m").to_numpy()
    return {symbol.partition("-")[0]: part.set_index("start") for symbol, part in bars[mask].groupby("symbol")}


def coin_of(item) -> str:
    return SUMMARY_COIN.search(item.summary).group(1)


@pytest.fixture(scope="module")
def week():
    """A week of simulated bars of the default coins on one exchange, as ``{coin: 1m bars}``."""
    return one_minute(simulated_history(DEFAULT_SYMBOLS, ["BINANCE"], days=7, seed=21))


def check_rule(closes: dict, items: list) -> dict:
    """Every headline's words follow its coin's change since its previous headline (or the window's start), and
    every move of 1 % gets one at once; returns counts of (direction, strong)."""
    heads = defaultdict(list)
    for item in items:
        heads[coin_of(item)].append(item)
    kinds = defaultdict(int)
    for coin, bars in closes.items():
        path = bars["close"].dropna()
        times = (path.index + pd.Timedelta(minutes=1)).as_unit("ns").asi8 / 1e9  # the desk sees a bar at its close
        prices = path.to_numpy()
        written = {item.published.value / 1e9: item for item in heads.pop(coin, [])}
        assert set(written) <= set(times), f"{coin} headlines at times without a close"
        last = -np.inf
        for t, price in zip(times, prices):
            start = max(t - WINDOW, last)
            ref = prices[np.searchsorted(times, start)]  # its first price at or after the start
            change = price / ref - 1
            item = written.get(t)
            assert item is not None or abs(change) < MOVE, (coin, t, change)
            if item is None:
                continue
            last = t
            assert list(coins_named(item.title)) == [coin], item.title
            expected = "flat" if abs(change) < FLAT else "up" if change > 0 else "down"
            assert direction(item.title) == [expected], (item.title, change)
            assert bool(STRONG.search(item.title)) == (abs(change) >= MOVE), (item.title, change)
            assert f"{change:+.2%} from" in item.summary and "not real news" in item.summary, item.summary
            kinds[expected, abs(change) >= MOVE] += 1
    assert not heads, f"headlines on coins without bars: {sorted(heads)}"
    return kinds


def test_history_headlines_follow_the_rule_on_the_bars(week):
    closes = {coin: bars.iloc[: 3 * 1440] for coin, bars in week.items()}
    closes["SOL"] = closes["SOL"].drop(closes["SOL"].index[600:700])  # a coin missing for a while
    items = news_history(closes, seed=5)
    kinds = check_rule(closes, items)
    assert set(kinds) == {("flat", False), ("up", False), ("down", False), ("up", True), ("down", True)}, kinds
    forms = {form for item in items for form in coins_named(item.title)[coin_of(item)]}
    assert forms == {"ticker", "cashtag", "name"}
    routine = sorted({i.published for i in items if not STRONG.search(i.title)})
    assert max(np.diff(routine)) <= pd.Timedelta(seconds=2 * HISTORY_EVERY)  # one every five minutes, in turn


def test_history_items_have_stable_unique_ids_and_times_inside_the_history(week):
    items = news_history(week, seed=8)
    assert news_history(week, seed=8) == items  # pure: same bars, same seed, same items
    ids = [item.id for item in items]
    assert len(set(ids)) == len(ids) and all(HISTORY_ID.fullmatch(i) for i in ids)
    first, last = (min(b.index[0] for b in week.values()), max(b.index[-1] for b in week.values()))
    published = pd.DatetimeIndex([item.published for item in items])
    assert published.is_monotonic_increasing
    assert first + pd.Timedelta(minutes=1) <= published[0] and published[-1] <= last + pd.Timedelta(minutes=1)
    assert (published == published.floor("1min")).all()  # at bar closes
    assert all(i.source == "simulated" and i.fetched == i.published for i in items)
    assert all(i.link == f"http://127.0.0.1/news/items/{i.id}" for i in items)
    later = news_history({"BTC": week["BTC"].iloc[1:]}, seed=8)  # a history starting a minute later
    assert later and not {i.id for i in later} & set(ids)
    # a week stays a few thousand items: a routine headline every five minutes and the moves of 1 %
    routine = sum(not STRONG.search(i.title) for i in items)
    assert 0.99 <= routine / (7 * 86400 / HISTORY_EVERY) <= 1 and len(items) - routine >= 50
    assert 2_000 <= len(items) <= 4_000, len(items)


def test_history_headlines_are_tagged_and_scored_as_their_coins(week):
    items = news_history({coin: bars.iloc[:1440] for coin, bars in week.items()}, seed=2)
    scored = scored_items(items)
    assert scored["coins"].tolist() == [coin_of(item) for item in items]


@pytest.mark.parametrize("args, message", [
    (({},), "bars_by_coin must be a non-empty dict"),
    (({"BTC": pd.DataFrame({"open": [1.0]}, index=pd.DatetimeIndex(["2024-01-01"]))},), "close column"),
    (({"BTC": pd.DataFrame({"close": [1.0, 2.0]}, index=pd.DatetimeIndex(["2024-01-01"] * 2))},), "distinct starts"),
    (({"BTC": pd.DataFrame({"close": [1.0]}, index=pd.DatetimeIndex(["2024-01-01"], tz="UTC"))},), "time zone"),
    (({"BTC": pd.DataFrame({"close": [1.0]}, index=pd.DatetimeIndex(["2024-01-01"]))}, 0), "every must be"),
])
def test_bad_arguments_are_value_errors(args, message):
    with pytest.raises(ValueError, match=message):
        news_history(*args)


def test_bad_base_is_a_value_error(week):
    with pytest.raises(ValueError, match="base must be an http"):
        news_history(week, base="javascript:alert(1)")


# -- stored with the simulated price history (app.serve) ----------------------------------------------------------
SYMBOLS, EXCHANGES = ["BTC-USDT", "ETH-USDT", "DOGE-USDT"], ["BINANCE", "KRAKEN"]


def expected_bars(items: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Sentiment bars the obvious way: one row per (item, coin), grouped by coin and floored start."""
    rows = items.assign(coin=items["coins"].str.split(",")).explode("coin")
    rows = rows[rows["coin"].fillna("") != ""]
    rows = rows.assign(start=rows.index.floor(freq), pos=rows["label"] == "positive", neg=rows["label"] == "negative")
    return rows.groupby(["coin", "start"]).agg(mean=("compound", "mean"), count=("compound", "size"),
                                                pos_share=("pos", "mean"), neg_share=("neg", "mean"))


def test_serving_the_simulator_stores_news_history_with_its_price_history(tmp_path):
    store = TickStore(f"lmdb://{tmp_path}/store")
    before = now_utc()
    _simulated_history(store, SYMBOLS, EXCHANGES, days=2, seed=4)
    after = now_utc()
    held = store.symbols("bars")
    assert len(held) == len(SYMBOLS) * len(EXCHANGES) * 3 and (held["rows"] > 0).all()

    news = NewsStore(store)
    stored = news.read_items()
    closes = {s.partition("-")[0]: store.read_bars("BINANCE", s, "1m") for s in SYMBOLS}
    items = news_history(closes, seed=4)  # the same headlines, from the stored bars of the exchange the desk reads
    assert stored["id"].tolist() == [i.id for i in items] and stored["title"].tolist() == [i.title for i in items]
    assert (stored.index == pd.DatetimeIndex([i.published for i in items])).all()
    assert set(stored["source"]) == {"simulated"} and stored.index.is_monotonic_increasing
    np.testing.assert_allclose(stored["compound"], scores(stored["title"].tolist())["compound"], atol=1e-12)
    assert stored["coins"].tolist() == [coin_of(i) for i in items]
    assert stored.index[0] >= before - pd.Timedelta(days=2) and stored.index[-1] <= after

    for timeframe, freq in (("5m", "5min"), ("1h", "1h")):
        expected = expected_bars(stored, freq)
        for coin in ("BTC", "ETH", "DOGE"):
            want = expected.loc[coin]
            got = news.read_sentiment(coin, timeframe)
            assert got["closed"].all() and got.index.isin(want.index).all()
            assert (got.index + pd.Timedelta(freq) <= after).all()  # closed when stored: the feed stores the rest
            missing = want.index[~want.index.isin(got.index)]  # only bars still forming when stored
            assert (missing + pd.Timedelta(freq) > before).all() and len(missing) <= 1, (coin, timeframe, missing)
            assert len(got) >= len(want) - 1 >= 10
            pd.testing.assert_frame_equal(got[want.columns].astype(float), want.loc[got.index].astype(float),
                                          check_names=False, rtol=1e-12, atol=1e-12)


def test_a_restart_writes_nothing(tmp_path, monkeypatch):
    store = TickStore(f"lmdb://{tmp_path}/store")
    _simulated_history(store, SYMBOLS, EXCHANGES, days=1, seed=4)
    items = NewsStore(store).read_items()
    assert len(items) > 200

    def refuse(*args, **kwargs):
        raise AssertionError("a restart wrote to the store")

    for cls, name in ((TickStore, "write"), (NewsStore, "write_items"), (NewsStore, "write_sentiment")):
        monkeypatch.setattr(cls, name, refuse)
    _simulated_history(store, SYMBOLS, EXCHANGES, days=1, seed=5)
    assert NewsStore(store).read_items().equals(items)


def test_a_store_with_bars_gets_no_news_history(tmp_path):
    store = TickStore(f"lmdb://{tmp_path}/store")
    store.write("bars", simulated_history(SYMBOLS, EXCHANGES, days=1, seed=1))
    _simulated_history(store, SYMBOLS, EXCHANGES, days=1, seed=4)
    news = NewsStore(store)
    assert len(news.read_items()) == 0 and len(news.read_sentiment("BTC", "5m")) == 0


def test_news_history_covers_only_the_coins_whose_bars_were_backfilled(tmp_path):
    store = TickStore(f"lmdb://{tmp_path}/store")
    _simulated_history(store, ["BTC-USDT"], EXCHANGES, days=1, seed=1, news=False)  # served before with --no-news
    assert len(NewsStore(store).read_items()) == 0
    _simulated_history(store, ["BTC-USDT", "ETH-USDT"], EXCHANGES, days=1, seed=2)
    stored = NewsStore(store).read_items()
    assert len(stored) > 100 and set(stored["coins"]) == {"ETH"}  # BTC's stored prices have news of their own


def test_a_store_with_simulated_news_gets_no_more(tmp_path):
    store = TickStore(f"lmdb://{tmp_path}/store")
    t = now_utc().floor("1s")
    NewsStore(store).write_items(scored_items([Item("simulated", "tickscope-sim-1-1", "", "Bitcoin rises", "", t, t)]))
    _simulated_history(store, SYMBOLS, EXCHANGES, days=1, seed=4)
    assert len(store.symbols("bars")) == len(SYMBOLS) * len(EXCHANGES) * 3
    assert NewsStore(store).read_items()["id"].tolist() == ["tickscope-sim-1-1"]


async def test_the_live_feed_goes_on_after_the_history(tmp_path):
    store = TickStore(f"lmdb://{tmp_path}/store")
    _simulated_history(store, SYMBOLS, EXCHANGES, days=1, seed=4)
    history = NewsStore(store).read_items()
    t = now_utc().floor("1s")
    live = [Item("simulated", f"tickscope-sim-live-{i}", "", title, "", t + pd.Timedelta(seconds=i), t)
            for i, title in enumerate(["Bitcoin surges 2.1% to $66,402", "ETH slides below $3,350"], 1)]
    again = [Item("simulated", i, link, title, "", p, p) for i, link, title, p in
             zip(history["id"][-3:], history["link"][-3:], history["title"][-3:], history.index[-3:])]
    hub = Hub()
    feed = SentimentFeed([ListSource("simulated", again + live)], hub, store=store, interval=60.0,
                         flush_interval=0.05)
    await feed.start()
    try:
        assert set(history["id"]) <= feed.poller.seen
        await poll(lambda: feed.stats()["total"]["stored"] == 2, 60, "the live items stored")
    finally:
        await feed.stop()
    stats = feed.stats()["total"]
    assert (stats["items"], stats["new"], stats["stored"], stats["errors"]) == (5, 2, 2, 0)
    stored = NewsStore(store).read_items()
    assert stored.index.is_monotonic_increasing and len(stored) == len(history) + 2
    assert stored["id"].tolist()[-2:] == [item.id for item in live]
    assert NewsStore(store).seen_ids()[-2:] == [item.id for item in live]
    published = hub.read(NEWS_KEY)[1]
    assert published["id"].tolist()[-2:] == [item.id for item in live]  # after the stored day the feed published
    assert set(published["id"][:-2]) <= set(history["id"])
