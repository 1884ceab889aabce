"""Sentiment sources against feeds served on 127.0.0.1, the poller, and the local exchange's simulated news."""

import asyncio
import logging
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from email.utils import parsedate_to_datetime
from pathlib import Path

import aiohttp
import numpy as np
import pandas as pd
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from analytics.exchange import LocalExchange
from analytics.exchange.news import NewsDesk, crossed_level
from analytics.sentiment import sources
from analytics.sentiment.poller import Poller, SeenIds
from analytics.sentiment.sources import JSONLSource, RedditSource, RSSSource, simulated_source
from polling import poll

CAPTURES = Path(__file__).parents[2] / "shared" / "data" / "captures"

SCRIPT_TITLE = 'Bitcoin <script>alert("x")</script> & <b>bold</b> rises'
RSS = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Test feed</title><link>http://example.test/</link>
<item><title>{SCRIPT_TITLE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}</title>
  <link>http://example.test/1</link><guid isPermaLink="false">guid-1</guid>
  <description>&lt;p&gt;Hello &lt;script&gt;steal()&lt;/script&gt;&lt;b&gt;world&lt;/b&gt;
    &amp;amp; co&lt;/p&gt;</description>
  <pubDate>Tue, 02 Jan 2024 10:00:00 +0200</pubDate></item>
<item><title><![CDATA[<img src=x onerror=alert(1)> Ether   falls]]></title><link>http://example.test/2</link>
  <pubDate>Tue, 02 Jan 2024 11:30:00 GMT</pubDate></item>
<item><title>Solana flat</title><description>plain text</description></item>
</channel></rss>""".encode()
ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom test</title><id>urn:feed</id>
<updated>2024-03-01T00:00:00Z</updated>
<entry><title type="html">Cardano &lt;em&gt;jumps&lt;/em&gt;</title><id>urn:entry:1</id>
  <link href="http://example.test/a1"/><published>2024-03-01T12:00:00+01:00</published>
  <updated>2024-03-01T13:00:00Z</updated>
  <summary type="html">&lt;p&gt;up &lt;i&gt;a lot&lt;/i&gt;&lt;/p&gt;</summary></entry>
<entry><title>XRP news</title><id>urn:entry:2</id><link href="http://example.test/a2"/>
  <updated>2024-03-02T08:00:00Z</updated><summary>text summary</summary></entry>
<entry><title type="html">Dogecoin &lt;script&gt;alert(1)&lt;/script&gt; pumps</title><id>urn:entry:3</id>
  <link href="javascript:alert(1)"/>
  <updated>2024-03-03T08:00:00Z</updated></entry>
</feed>"""
MALFORMED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Broken</title>
<item><title>Bitcoin holds</title><link>http://example.test/m1</link></item>
<item><title>Broken & <b>unclosed</title><link>http://example.test/m2</link></item>
<item><title>Ether dips</title><link>http://example.test/m3</link></item>
</channel></rss>"""
REDDIT = {"kind": "Listing", "data": {"after": "t3_c", "children": [
    {"kind": "t3", "data": {"name": "t3_a", "id": "a", "title": "Bitcoin &amp; <b>$ETH</b> to the moon",
                            "selftext": "HODL   forever", "permalink": "/r/CryptoCurrency/comments/a/x/",
                            "created_utc": 1_700_000_000.0}},
    {"kind": "t3", "data": {"name": "t3_b", "id": "b", "title": "rekt again", "selftext": "",
                            "permalink": "/r/CryptoCurrency/comments/b/y/", "created_utc": 1_700_000_060}},
    {"kind": "t3", "data": {"name": "t3_c", "id": "c", "title": "", "permalink": "/r/CryptoCurrency/c/"}},
]}}


def rss(items):
    """An RSS 2.0 document of ``(guid, title)`` pairs."""
    body = "".join(f"<item><title>{t}</title><link>http://example.test/{g}</link><guid>{g}</guid></item>"
                   for g, t in items)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>'.encode()


def stream_item(i):
    return f"<item><title>Headline number {i} about Bitcoin</title><guid>h{i}</guid></item>\n".encode()


STREAM_HEAD = b'<?xml version="1.0"?><rss version="2.0"><channel><title>endless</title>\n'


class Site:
    """A web server on 127.0.0.1: documents or handlers by path; requests and their headers kept."""

    def __init__(self):
        self.docs = {}
        self.requests = Counter()
        self.headers = defaultdict(list)
        self.release = asyncio.Event()
        self.server = None

    def url(self, path):
        return str(self.server.make_url(path))

    async def handle(self, request):
        self.requests[request.path] += 1
        self.headers[request.path].append(request.headers)
        doc = self.docs.get(request.path)
        if doc is None:
            return web.Response(status=404)
        if callable(doc):
            return await doc(request)
        return web.Response(body=doc, content_type="application/xml")


@pytest.fixture
async def site():
    s = Site()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", s.handle)
    s.server = TestServer(app, host="127.0.0.1", port=0)
    await s.server.start_server()
    yield s
    s.release.set()
    await s.server.close()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


# ---------------------------------------------------------------- feeds

async def test_rss_items_keep_their_fields_and_raw_text(site, session):
    site.docs["/rss"] = RSS
    source = RSSSource(site.url("/rss"), "rss:test")
    before = sources.now_utc()
    items = await source.fetch(session)
    assert [i.title for i in items] == [SCRIPT_TITLE, "<img src=x onerror=alert(1)> Ether falls", "Solana flat"]
    first, second, third = items
    assert (first.source, first.id, first.link) == ("rss:test", "guid-1", "http://example.test/1")
    assert first.summary == "Hello world & co"  # HTML summary to text: script code dropped, entities decoded
    assert first.published == pd.Timestamp("2024-01-02 08:00:00")  # +0200 to UTC, no time zone
    assert second.id == "http://example.test/2" and second.published == pd.Timestamp("2024-01-02 11:30:00")
    assert third.id.startswith("sha1:") and third.link == "" and third.summary == "plain text"
    assert before <= third.published == third.fetched <= sources.now_utc()  # no date: fetch time
    assert third.published.tzinfo is None
    assert source.errors == 0 and source.last_error == ""
    assert "Tickscope" in site.headers["/rss"][0]["User-Agent"]
    again = await RSSSource(site.url("/rss"), "rss:test").fetch(session)
    assert [i.id for i in again] == [i.id for i in items]  # the hashed id is stable across fetches


async def test_atom_entries(site, session):
    site.docs["/atom"] = ATOM
    items = await RSSSource(site.url("/atom"), "atom:test").fetch(session)
    assert [(i.id, i.link, i.title, i.summary) for i in items] == [
        ("urn:entry:1", "http://example.test/a1", "Cardano <em>jumps</em>", "up a lot"),
        ("urn:entry:2", "http://example.test/a2", "XRP news", "text summary"),
        ("urn:entry:3", "", "Dogecoin <script>alert(1)</script> pumps", "")]  # markup kept as text, no script link
    assert items[0].published == pd.Timestamp("2024-03-01 11:00:00")  # published wins over updated
    assert items[1].published == pd.Timestamp("2024-03-02 08:00:00")  # else updated


async def test_conditional_get_gives_304_and_parses_nothing(site, session, monkeypatch):
    async def by_etag(request):
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304)
        return web.Response(body=RSS, headers={"ETag": '"v1"'}, content_type="application/rss+xml")

    async def by_date(request):
        stamp = "Tue, 02 Jan 2024 12:00:00 GMT"
        if request.headers.get("If-Modified-Since") == stamp:
            return web.Response(status=304)
        return web.Response(body=ATOM, headers={"Last-Modified": stamp}, content_type="application/atom+xml")

    site.docs.update({"/etag": by_etag, "/date": by_date})
    parses = []
    parse = sources.feedparser.parse
    monkeypatch.setattr(sources.feedparser, "parse", lambda *a, **k: parses.append(1) or parse(*a, **k))
    for path, validator in (("/etag", "If-None-Match"), ("/date", "If-Modified-Since")):
        source = RSSSource(site.url(path))
        assert len(await source.fetch(session)) > 0 and len(parses) == 1
        assert await source.fetch(session) == []
        assert len(parses) == 1 and source.not_modified == 1 and source.errors == 0
        assert validator not in site.headers[path][0] and validator in site.headers[path][1]
        parses.clear()


async def test_malformed_feed_is_reported_once_and_its_good_items_kept(site, session, caplog):
    site.docs.update({"/broken": MALFORMED, "/html": b"<html><body>Service unavailable"})
    source = RSSSource(site.url("/broken"), "rss:broken")
    with caplog.at_level(logging.WARNING, logger="analytics.sentiment.sources"):
        titles = [i.title for i in await source.fetch(session)]
        await source.fetch(session)
    assert "Bitcoin holds" in titles  # feedparser's loose parser recovers what it can
    assert source.errors == 2 and "malformed feed" in source.last_error
    assert [r.getMessage() for r in caplog.records] == [f"rss:broken: {source.last_error}"]  # logged once
    page = RSSSource(site.url("/html"))
    assert await page.fetch(session) == [] and page.errors == 1 and "malformed" in page.last_error


@pytest.mark.parametrize("path, message", [("/missing", "HTTP 404"), ("closed", "cannot fetch")])
async def test_http_and_connection_errors_are_counted_not_raised(site, session, unused_tcp_port, path, message):
    url = f"http://127.0.0.1:{unused_tcp_port}/feed" if path == "closed" else site.url(path)
    source = RSSSource(url)
    assert await source.fetch(session) == []
    assert source.errors == 1 and message in source.last_error


async def test_an_endless_feed_is_cut_at_the_cap(site, session):
    async def endless(request):
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        await response.write(STREAM_HEAD)
        for i in range(10**9):  # until the client hangs up
            await response.write(stream_item(i))
        return response

    site.docs["/endless"] = endless
    cap = 100_000
    source = RSSSource(site.url("/endless"), max_bytes=cap)
    items = await source.fetch(session)
    prefix = STREAM_HEAD + b"".join(stream_item(i) for i in range(cap // len(stream_item(0)) + 1))
    complete = prefix[:cap].count(b"</item>")
    assert [i.id for i in items] == [f"h{i}" for i in range(complete)]  # every complete item, no half one
    assert source.errors == 1 and f"more than {cap} bytes" in source.last_error


async def test_a_slow_server_times_out_and_nothing_blocks(site, session):
    async def slow(request):
        await site.release.wait()
        return web.Response(body=RSS)

    site.docs["/slow"] = slow
    ticks = 0

    async def ticker():  # stands for the price feed sharing the loop
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    source = RSSSource(site.url("/slow"), timeout=0.5)
    try:
        assert await source.fetch(session) == []
    finally:
        task.cancel()
    assert source.errors == 1 and "within 0.5 s" in source.last_error
    assert ticks >= 10  # ~50 expected: the loop kept running other tasks during the wait


async def test_reddit_listing(site, session):
    async def listing(request):
        return web.json_response(REDDIT)

    site.docs["/r/CryptoCurrency/new.json"] = listing
    source = RedditSource("r/CryptoCurrency", limit=25, base_url=site.url("/"))
    items = await source.fetch(session)
    request = site.headers["/r/CryptoCurrency/new.json"][0]
    assert request["User-Agent"].startswith("python:tickscope:")
    assert "limit=25" in source.url and "raw_json=1" in source.url
    assert [(i.source, i.id, i.title, i.summary) for i in items] == [
        ("reddit:r/CryptoCurrency", "t3_a", "Bitcoin &amp; <b>$ETH</b> to the moon", "HODL forever"),
        ("reddit:r/CryptoCurrency", "t3_b", "rekt again", "")]
    assert items[0].link == site.url("/r/CryptoCurrency/comments/a/x/")
    assert items[1].published == pd.Timestamp("2023-11-14 22:14:20")
    assert source.errors == 1 and "1 posts without a title" in source.last_error


async def test_jsonl_folder_is_read_incrementally(tmp_path):
    folder = tmp_path / "news"
    folder.mkdir()
    a = folder / "a.jsonl"
    a.write_text('{"id": "1", "title": "Bitcoin rallies", "published": "2024-05-01T10:00:00+02:00"}\n'
                 '{"id": 2, "title": "Ether dips", "source": "rss:coindesk", "published": 1714550400}\n')
    source = JSONLSource(folder)
    assert source.name == "jsonl:news"
    items = await source.fetch()
    assert [(i.id, i.source, i.published) for i in items] == [
        ("1", "jsonl:news", pd.Timestamp("2024-05-01 08:00")), ("2", "rss:coindesk", pd.Timestamp("2024-05-01 08:00"))]
    assert await source.fetch() == []
    with a.open("a") as f:
        f.write('not json\n\n{"title": "DOGE pumps", "link": "http://x.test/d"}\n{"title": "half')
    (folder / "b.jsonl").write_text('{"title": "Solana flat"}\n')
    (folder / "ignored.txt").write_text('{"title": "not a jsonl file"}\n')
    items = await source.fetch()
    assert [(i.title, i.id) for i in items] == [("DOGE pumps", "http://x.test/d"), ("Solana flat", items[1].id)]
    assert source.errors == 1 and "a.jsonl" in source.last_error and "not JSON" in source.last_error
    with a.open("a") as f:
        f.write(' written"}\n')
    assert [i.title for i in await source.fetch()] == ["half written"]
    a.write_text('{"title": "rewritten"}\n')  # shorter than what was read: read again from the start
    assert [i.title for i in await source.fetch()] == ["rewritten"]


@pytest.mark.parametrize("make, message", [
    (lambda: RSSSource("ftp://example.test/feed"), "url must be"),
    (lambda: RSSSource("not a url"), "url must be"),
    (lambda: RSSSource("https://example.test/feed", timeout=0), "timeout must be"),
    (lambda: RSSSource("https://example.test/feed", max_bytes=0), "max_bytes must be"),
    (lambda: RSSSource("https://example.test/feed", name=""), "name must be"),
    (lambda: RedditSource("no spaces allowed"), "subreddit must be"),
    (lambda: RedditSource("Bitcoin", limit=101), "limit must be"),
    (lambda: JSONLSource("/nonexistent/news.jsonl"), "path must be"),
    (lambda: SeenIds(limit=0), "limit must be"),
    (lambda: Poller([], print), "sources must be"),
    (lambda: Poller([RSSSource("https://a.test/f"), RSSSource("https://a.test/f")], print), "distinct names"),
    (lambda: Poller([RSSSource("https://a.test/f")], "print"), "on_items must be"),
    (lambda: Poller([RSSSource("https://a.test/f")], print, interval=0), "interval must be"),
    (lambda: NewsDesk(every=0), "every must be"),
    (lambda: NewsDesk(flat_pct=2.0), "flat_pct must be below"),
])
def test_bad_arguments_are_one_line_value_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_default_feeds_are_named_after_their_sites():
    names = [s.name for s in sources.default_sources()]
    assert {"rss:coindesk", "rss:cointelegraph", "rss:decrypt", "rss:theblock", "rss:bitcoinmagazine",
            "rss:cryptoslate", "reddit:r/CryptoCurrency", "reddit:r/Bitcoin", "reddit:r/ethereum"} <= set(names)
    assert len(set(names)) == len(names)


# ---------------------------------------------------------------- poller

def test_seen_ids_are_bounded_and_keep_insertion_order():
    seen = SeenIds(["a", "b"], limit=3)
    for i in ["c", "a", "d"]:
        seen.add(i)
    assert list(seen) == ["b", "c", "d"] and "a" not in seen and len(seen) == 3


async def test_poller_passes_new_items_once_also_across_a_restart(site):
    served = [("g1", "Bitcoin up"), ("g2", "Ether down")]

    async def feed(request):
        return web.Response(body=rss(served))  # no validators: every poll gets the whole feed

    site.docs["/feed"] = feed
    batches = []
    poller = Poller([RSSSource(site.url("/feed"), "rss:feed")], batches.append, interval=0.02)
    await poller.start()
    try:
        await poll(lambda: site.requests["/feed"] >= 3, what="three polls")
        served.append(("g3", "Solana flat"))
        await poll(lambda: len(batches) == 2, what="the new item")
        await poll(lambda: site.requests["/feed"] >= 6, what="more polls")
    finally:
        await poller.stop()
    assert [[i.id for i in b] for b in batches] == [["g1", "g2"], ["g3"]]
    stats = poller.stats()["rss:feed"]
    assert stats["new"] == 3 and stats["items"] >= 2 * 3 + 3 and stats["errors"] == 0
    assert isinstance(stats["last_fetch"], pd.Timestamp)

    persisted = list(poller.seen)  # what the store would save and load
    later = []

    async def on_items(items):  # async callbacks are awaited
        later.extend(items)

    restarted = Poller([RSSSource(site.url("/feed"), "rss:feed")], on_items, interval=0.02, seen=SeenIds(persisted))
    requests = site.requests["/feed"]
    await restarted.start()
    try:
        await poll(lambda: site.requests["/feed"] >= requests + 3, what="polls after the restart")
        assert later == []
        served.insert(0, ("g4", "XRP jumps"))
        await poll(lambda: later, what="the item published after the restart")
    finally:
        await restarted.stop()
    assert [i.id for i in later] == ["g4"]


async def test_a_failing_source_backs_off_and_the_others_go_on(site):
    state = {"fail": True}

    async def flaky(request):
        return web.Response(status=503) if state["fail"] else web.Response(body=rss([("f1", "back")]))

    site.docs.update({"/good": rss([("ok1", "Bitcoin steady")]), "/flaky": flaky})
    got = []
    poller = Poller([RSSSource(site.url("/good"), "good"), RSSSource(site.url("/flaky"), "flaky")],
                    got.extend, interval=0.02, jitter=0.0)
    await poller.start()
    try:
        await poll(lambda: poller.stats()["flaky"]["delay"] == pytest.approx(0.2), what="backoff to 10 intervals")
        good_before, flaky_before = site.requests["/good"], site.requests["/flaky"]
        await poll(lambda: site.requests["/good"] >= good_before + 20, what="the good source to go on")
        assert site.requests["/flaky"] - flaky_before <= 5  # one try per 0.2 s against ten per 0.2 s
        stats = poller.stats()
        assert stats["flaky"]["errors"] >= 4 and "HTTP 503" in stats["flaky"]["last_error"]
        assert stats["good"]["errors"] == 0 and stats["good"]["delay"] == pytest.approx(0.02)
        state["fail"] = False
        await poll(lambda: poller.stats()["flaky"]["delay"] == pytest.approx(0.02), what="recovery")
    finally:
        await poller.stop()
    assert sorted(i.id for i in got) == ["f1", "ok1"]


async def test_items_stay_unseen_when_on_items_fails(site):
    site.docs["/feed"] = rss([("g1", "Bitcoin up")])
    calls = []

    def on_items(items):
        calls.append([i.id for i in items])
        if len(calls) == 1:
            raise RuntimeError("store unavailable")

    poller = Poller([RSSSource(site.url("/feed"), "feed")], on_items, interval=0.02, jitter=0.0)
    await poller.start()
    try:
        await poll(lambda: len(calls) == 2, what="a second delivery")
        await poll(lambda: site.requests["/feed"] >= 6, what="later polls")
    finally:
        await poller.stop()
    assert calls == [["g1"], ["g1"]]
    stats = poller.stats()["feed"]
    assert stats["errors"] == 1 and stats["last_error"] == "RuntimeError: store unavailable"


# ---------------------------------------------------------------- simulated news

ALIASES = {"BTC": ["Bitcoin"], "ETH": ["Ethereum", "Ether"], "SOL": ["Solana"], "DOGE": ["Dogecoin"],
           "XRP": [], "ADA": ["Cardano"], "LTC": ["Litecoin"], "DOT": ["Polkadot"]}
UP = re.compile(r"\b(surges|soars|rallies|jumps|climbs|gains|rises|edges higher|above)\b")
DOWN = re.compile(r"\b(plunges|tumbles|slides|sinks|falls|drops|slips|edges lower|below)\b")
FLAT = re.compile(r"\b(flat|steady|little changed)\b")
STRONG = re.compile(r"\b(surges|soars|rallies|jumps|plunges|tumbles|slides|sinks)\b")


def coins_named(title):
    """Coins a title names, and how: ``{coin: {"ticker" | "cashtag" | "name"}}``."""
    found = defaultdict(set)
    for coin, names in ALIASES.items():
        if re.search(rf"\${coin}\b", title):
            found[coin].add("cashtag")
        if re.search(rf"(?<!\$)\b{coin}\b", title):
            found[coin].add("ticker")
        if any(re.search(rf"\b{n}\b", title) for n in names):
            found[coin].add("name")
    return found


def direction(title):
    return [name for name, rx in (("up", UP), ("down", DOWN), ("flat", FLAT)) if rx.search(title)]


def test_crossed_levels_are_round_prices():
    assert crossed_level(3_360.0, 3_340.0) == (3_350.0, 0)
    assert crossed_level(64_900.0, 65_100.0) == (65_000.0, 0)
    assert crossed_level(0.512, 0.518) == (0.515, 3)
    assert crossed_level(65_100.0, 65_400.0) is None


def test_headlines_follow_the_price_path():
    """A random walk sampled each second: every headline's words match the walk's own change, and every
    move of 1 % since a coin's last headline (within the window) gets a headline at once."""
    rng = np.random.default_rng(7)
    window, move = 120.0, 0.01
    desk = NewsDesk(every=10.0, window=window, move_pct=move * 100, flat_pct=0.1, seed=7)
    prices = {"BTC": 65_000.0, "ETH": 3_400.0, "SOL": 150.0, "DOGE": 0.15}
    path, headlines, last, t0 = {}, [], {}, 1_700_000_000
    for t in range(t0, t0 + 4_000):
        prices = {c: p * math.exp(rng.normal(0, 0.0015)) for c, p in prices.items()}
        path[t] = prices
        new = desk.observe(float(t), prices)
        for coin, p in prices.items():  # the reference: a slow restatement of the rule
            ref = path[max(t - window, last.get(coin, t0))][coin]  # sampled every second from t0
            assert (abs(p / ref - 1) >= move) <= any(h.coin == coin for h in new), (t, coin)
        last.update({h.coin: t for h in new})
        headlines += new
    forms, kinds = Counter(), Counter()
    for h in headlines:
        change = path[h.published][h.coin] / path[h.since][h.coin] - 1
        named = coins_named(h.title)
        assert list(named) == [h.coin], h.title
        forms.update(named[h.coin])
        expected = "flat" if abs(change) < 0.001 else "up" if change > 0 else "down"
        assert direction(h.title) == [expected], (h.title, change)
        assert bool(STRONG.search(h.title)) == (abs(change) >= move), (h.title, change)
        assert f"{change:+.2%}" in h.summary and "not real news" in h.summary
        kinds[expected, abs(change) >= move] += 1
    assert set(forms) == {"ticker", "cashtag", "name"}
    assert {k for k in kinds} == {("flat", False), ("up", False), ("down", False), ("up", True), ("down", True)}
    times = sorted(h.published for h in headlines)
    assert max(np.diff(times)) <= 10  # a routine headline at least every `every` seconds


def rss_items(body):
    """``(channel, [item elements])`` of an RSS 2.0 document, checking its shape."""
    root = ET.fromstring(body)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    return channel, channel.findall("item")


async def test_the_local_exchange_serves_news_that_react_to_its_market(session):
    desk = NewsDesk(every=3600.0, window=60.0, move_pct=1.0, sample=0.05, seed=3)  # breaking news only
    exchange = LocalExchange(rate=5.0, seed=3, news=desk)
    await exchange.start()
    try:
        url = exchange.status()["news"]
        base = f"http://127.0.0.1:{exchange.rest_port}"
        assert url == f"{base}/news/rss"
        async with session.get(url) as r:
            assert r.status == 200 and r.content_type == "application/rss+xml"
            channel, items = rss_items(await r.read())
            etag, modified = r.headers["ETag"], r.headers["Last-Modified"]
        assert "simulated" in channel.findtext("title") and "not real" in channel.findtext("title")
        assert items == []
        for validators in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
            async with session.get(url, headers=validators) as r:
                assert r.status == 304

        # MarketModel has no public shock: move the efficient log-prices the simulator walks from.
        model = exchange._source.model
        model._x[model.coins.index("BTC")] += math.log(1.05)
        model._x[model.coins.index("ETH")] -= math.log(1.05)
        got = []
        poller = Poller([simulated_source(url)], got.extend, interval=0.05)
        await poller.start()
        try:
            await poll(lambda: {c for i in got for c in coins_named(i.title)} >= {"BTC", "ETH"},
                       what="headlines on the moved coins")
        finally:
            await poller.stop()
        assert {i.source for i in got} == {"simulated"}
        for item in got:
            (coin,) = coins_named(item.title)
            change = float(re.search(r"([+-]\d+\.\d+)% from", item.summary).group(1))
            assert (coin, *direction(item.title)) in {("BTC", "up"), ("ETH", "down")}, item.title
            assert STRONG.search(item.title) and 4.5 <= abs(change) <= 5.5, item
        async with session.get(url, headers={"If-None-Match": etag}) as r:
            assert r.status == 200 and r.headers["ETag"] != etag
            _, items = rss_items(await r.read())
        assert sorted(i.findtext("guid") for i in items) == sorted(i.id for i in got)  # stable guids
        for item in items:
            assert [c.text for c in item.findall("category")][0] == "simulated"
            assert item.find("guid").get("isPermaLink") == "false"
            assert parsedate_to_datetime(item.findtext("pubDate")).tzinfo is not None
            assert item.findtext("link") == f"{base}/news/items/{item.findtext('guid')}"
        async with session.get(items[0].findtext("link")) as r:
            assert r.status == 200 and (await r.text()).startswith(items[0].findtext("title"))
    finally:
        await exchange.stop()


async def test_replay_serves_no_news(session):
    exchange = LocalExchange(source=f"replay:{CAPTURES}", speed=float("inf"))
    await exchange.start()
    try:
        assert exchange.status()["news"] is None
        async with session.get(f"http://127.0.0.1:{exchange.rest_port}/news/rss") as r:
            assert r.status == 404 and "replay" in (await r.json())["error"]
    finally:
        await exchange.stop()
