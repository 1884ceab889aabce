"""Where sentiment text comes from: RSS/Atom feeds, Reddit listings and JSON-lines files.

Every source has one coroutine, ``fetch(session)``, returning the :class:`Item` s it could
read. Network and parse problems never raise: they are counted in ``errors``, described in
``last_error`` and logged once per source and kind of problem; whatever could be parsed is
returned (a partly broken feed keeps the items feedparser recovers). HTTP sources send a
descriptive User-Agent, make conditional GETs (``If-None-Match`` / ``If-Modified-Since``: a
304 gives no items and parses nothing), give up after ``timeout`` seconds and read at most
``max_bytes``: a longer body is cut after its last complete item, and the cut is reported.
Parsing runs in the loop's default executor, so a big feed does not stall the event loop.

Text is kept as published. A title holding ``<script>`` or other markup is that text
(feedparser's sanitizer is off): whoever displays it must escape it. Summaries sent as HTML
are reduced to their text (tags and ``<script>``/``<style>`` contents dropped, entities decoded).
Links are kept only when they are http(s) addresses (no ``javascript:`` or ``data:`` links).

The local exchange's simulated news is an RSS feed like any other: read it with
:func:`simulated_source`, whose items carry the source name ``"simulated"``.
"""

import asyncio
import calendar
import hashlib
import io
import ipaddress
import json
import logging
import re
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import feedparser
import pandas as pd

from analytics import __version__

LOG = logging.getLogger(__name__)

DEFAULT_FEEDS = [
    "https://www.coindesk.com/arc/outboundfeeds/rss/",
    "https://cointelegraph.com/rss",
    "https://decrypt.co/feed",
    "https://www.theblock.co/rss.xml",
    "https://bitcoinmagazine.com/feed",
    "https://cryptoslate.com/feed/",
    "https://bitcoinist.com/feed/",
    "https://www.newsbtc.com/feed/",
]
DEFAULT_SUBREDDITS = ["CryptoCurrency", "Bitcoin", "ethereum"]
SIMULATED = "simulated"
USER_AGENT = f"Tickscope/{__version__} (crypto market observatory; news feed reader)"
# Reddit asks for "<platform>:<app ID>:<version> (<contact>)" and throttles generic agents.
REDDIT_AGENT = f"python:tickscope:{__version__} (sentiment reader of public listings)"
MAX_BYTES = 5_000_000
SUMMARY_CHARS = 2_000
_SUBREDDIT = re.compile(r"[A-Za-z0-9_]{2,21}")


@dataclass(frozen=True)
class Item:
    """One headline or post.

    ``id`` is the feed's guid/id, else the link, else a hash of the title and the published
    text as given. ``published`` (the fetch time when the source gives none or an unreadable
    one) and ``fetched`` are UTC without a time zone. ``title`` is raw text, never markup.
    """

    source: str
    id: str
    link: str
    title: str
    summary: str
    published: pd.Timestamp
    fetched: pd.Timestamp


def now_utc() -> pd.Timestamp:
    """The current time, UTC without a time zone."""
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def timestamp(value) -> pd.Timestamp | None:
    """UTC-naive time from a UTC ``time.struct_time``, epoch seconds or a date string; None if unreadable."""
    if isinstance(value, time.struct_time):
        return pd.Timestamp(calendar.timegm(value), unit="s")
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        stamp = pd.Timestamp(value, unit="s") if isinstance(value, (int, float)) else pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if stamp is pd.NaT:
        return None
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def item_id(given, link: str, title: str, published: str) -> str:
    """The id an item is de-duplicated by: ``given``, else ``link``, else a hash of title and published text."""
    if isinstance(given, int) and not isinstance(given, bool):
        given = str(given)
    if isinstance(given, str) and given.strip():
        return given.strip()
    if link:
        return link
    return "sha1:" + hashlib.sha1(f"{title}\x00{published}".encode()).hexdigest()


def web_link(link) -> str:
    """``link`` if it is an http(s) address, else ""."""
    return link if isinstance(link, str) and urlsplit(link.strip()).scheme in ("http", "https") else ""


def one_line(text) -> str:
    """``text`` with every run of whitespace made one space."""
    return " ".join(str(text or "").split())


class _Text(HTMLParser):
    """Collects the text of an HTML fragment, skipping script and style contents."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_text(markup: str) -> str:
    """The visible text of an HTML fragment, on one line."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    return one_line(" ".join(parser.parts))


def _checked_url(url) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url must be an http(s) address, not {url!r}")
    return url


def _feed_name(url: str) -> str:
    """``rss:coindesk`` for ``https://www.coindesk.com/...``; host, port and path for addresses."""
    parts = urlsplit(url)
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = [x for x in host.split(".")[:-1] if x not in ("www", "feeds", "feed", "rss")]
        while len(labels) > 1 and labels[-1] in ("co", "com", "org", "net", "ac"):
            labels.pop()
        if labels:
            return f"rss:{labels[-1]}"
    return f"rss:{parts.netloc}{parts.path}"


def _complete_items(body: bytes) -> bytes:
    """``body`` up to the end of its last complete ``<item>`` or ``<entry>``."""
    ends = [body.rfind(tag) + len(tag) for tag in (b"</item>", b"</entry>") if body.rfind(tag) >= 0]
    return body[:max(ends)] if ends else body


async def _read(stream, limit: int):
    """At most ``limit`` bytes of ``stream``; ``(body, cut)``, ``cut`` when there was more."""
    chunks, size = [], 0
    async for chunk in stream.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


class Source:
    """What every source keeps: its name, conditional-GET validators and error counts.

    Attributes
    ----------
    name : str
    etag, modified : str or None
        Validators of the last answer, sent back as ``If-None-Match`` / ``If-Modified-Since``.
    errors : int
        Problems so far (network, HTTP status, malformed input, cut bodies).
    last_error : str
        The latest problem, one line ("" before any).
    not_modified : int
        Conditional GETs answered 304.
    """

    def __init__(self, name: str, timeout: float, max_bytes: int):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty string, not {name!r}")
        if not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, not {timeout!r}")
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive integer, not {max_bytes!r}")
        self.name, self.timeout, self.max_bytes = name, float(timeout), max_bytes
        self.etag = self.modified = None
        self.errors, self.last_error, self.not_modified = 0, "", 0
        self._logged = set()

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"

    def report(self, kind: str, message: str) -> None:
        """Count a problem; log it the first time this source has a problem of this ``kind``."""
        self.errors += 1
        self.last_error = message
        if kind not in self._logged:
            self._logged.add(kind)
            LOG.warning("%s: %s", self.name, message)


class HTTPSource(Source):
    """A document fetched over HTTP(S) and parsed into items by :meth:`parse`."""

    agent = USER_AGENT

    def __init__(self, url: str, name: str, timeout: float, max_bytes: int):
        super().__init__(name, timeout, max_bytes)
        self.url = _checked_url(url)

    async def fetch(self, session: aiohttp.ClientSession) -> list:
        """The items of the current document; [] when unchanged (304) or unreadable."""
        got = await self._get(session)
        if got is None:
            return []
        body, cut = got
        items, problems = await asyncio.to_thread(self.parse, body, cut, now_utc())
        for kind, message in problems:
            self.report(kind, message)
        return items

    async def _get(self, session):
        headers = {"User-Agent": self.agent}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.modified:
            headers["If-Modified-Since"] = self.modified
        try:
            async with session.get(self.url, headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout)) as r:
                if r.status == 304:
                    self.not_modified += 1
                    return None
                if r.status != 200:
                    self.report(f"http {r.status}", f"HTTP {r.status} {r.reason} from {self.url}")
                    return None
                body, cut = await _read(r.content, self.max_bytes)
                self.etag, self.modified = r.headers.get("ETag"), r.headers.get("Last-Modified")
        except TimeoutError:
            self.report("timeout", f"no complete answer from {self.url} within {self.timeout:g} s")
            return None
        except (aiohttp.ClientError, OSError) as e:
            self.report("connection", f"cannot fetch {self.url}: {type(e).__name__}: {e}")
            return None
        if cut:
            self.report("too large", f"{self.url} sent more than {self.max_bytes} bytes: read the first "
                                     f"{self.max_bytes} only")
        return body, cut

    def parse(self, body: bytes, cut: bool, fetched: pd.Timestamp):
        """``(items, problems)`` from a document; problems are ``(kind, message)`` pairs."""
        raise NotImplementedError


class RSSSource(HTTPSource):
    """An RSS 0.9x/1.0/2.0 or Atom feed, read with feedparser.

    Parameters
    ----------
    url : str
        The feed's http(s) address.
    name : str, optional
        Default ``rss:`` and the site's name (``rss:coindesk``), or host and path for an address.
    timeout : float
        Seconds for the whole request.
    max_bytes : int
        Largest body read; a longer feed is cut after its last complete item.

    Raises
    ------
    ValueError
        For an address that is not http(s), a timeout <= 0 or a cap < 1 byte.
    """

    def __init__(self, url: str, name: str | None = None, *, timeout: float = 10.0, max_bytes: int = MAX_BYTES):
        super().__init__(url, _feed_name(_checked_url(url)) if name is None else name, timeout, max_bytes)

    def parse(self, body, cut, fetched):
        feed = feedparser.parse(io.BytesIO(_complete_items(body) if cut else body),
                                sanitize_html=False, resolve_relative_uris=False)
        items, untitled = [], 0
        for entry in feed.entries:
            title = one_line(entry.get("title"))
            if not title:
                untitled += 1
                continue
            summary = entry.get("summary") or ""
            if entry.get("summary_detail", {}).get("type") in ("text/html", "application/xhtml+xml"):
                summary = html_text(summary)
            link = web_link(entry.get("link"))
            published = entry.get("published") or entry.get("updated") or ""
            stamp = timestamp(entry.get("published_parsed") or entry.get("updated_parsed"))
            items.append(Item(self.name, item_id(entry.get("id"), link, title, published), link, title,
                              one_line(summary)[:SUMMARY_CHARS], fetched if stamp is None else stamp, fetched))
        problems = []
        error = feed.get("bozo_exception")
        if feed.bozo and not cut and not isinstance(error, feedparser.CharacterEncodingOverride):
            problems.append(("malformed", f"malformed feed from {self.url}: {one_line(error)}; "
                                          f"kept {len(items)} items"))
        elif not feed.get("version") and not items:
            problems.append(("malformed", f"{self.url} is not an RSS or Atom feed"))
        if untitled:
            problems.append(("untitled", f"{untitled} entries without a title skipped in {self.url}"))
        return items, problems


class RedditSource(HTTPSource):
    """The newest posts of a subreddit, from Reddit's public JSON listing (``/r/SUB/new.json``).

    Parameters
    ----------
    subreddit : str
        ``CryptoCurrency`` or ``r/CryptoCurrency``.
    limit : int
        Posts per request, 1..100.
    base_url : str
        Where Reddit is; tests point it at 127.0.0.1.
    timeout, max_bytes
        As for :class:`RSSSource`; a cut listing is unreadable JSON and gives no items.

    Notes
    -----
    Reddit throttles anonymous clients (a few requests a minute) and answers 429 beyond:
    poll every few minutes. Titles come unescaped (``raw_json=1``).
    """

    agent = REDDIT_AGENT

    def __init__(self, subreddit: str, limit: int = 100, *, base_url: str = "https://www.reddit.com",
                 timeout: float = 10.0, max_bytes: int = MAX_BYTES):
        sub = subreddit.removeprefix("r/") if isinstance(subreddit, str) else None
        if sub is None or not _SUBREDDIT.fullmatch(sub):
            raise ValueError(f"subreddit must be a name like 'CryptoCurrency', not {subreddit!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise ValueError(f"limit must be an integer in 1..100, not {limit!r}")
        self.base_url = base_url.rstrip("/") if isinstance(base_url, str) else base_url
        super().__init__(f"{self.base_url}/r/{sub}/new.json?limit={limit}&raw_json=1", f"reddit:r/{sub}",
                         timeout, max_bytes)
        self.subreddit, self.limit = sub, limit

    def parse(self, body, cut, fetched):
        if cut:
            return [], []  # reported as too large; a cut JSON document cannot be read
        try:
            listing = json.loads(body)
        except ValueError as e:
            return [], [("malformed", f"{self.url} sent no JSON: {e}")]
        children = listing.get("data", {}).get("children") if isinstance(listing, dict) else None
        if not isinstance(children, list):
            return [], [("malformed", f"{self.url} sent no Reddit listing")]
        items, bad = [], 0
        for child in children:
            post = child.get("data") if isinstance(child, dict) else None
            title = one_line(post.get("title")) if isinstance(post, dict) else ""
            if not title:
                bad += 1
                continue
            permalink = post.get("permalink") or ""
            link = web_link(self.base_url + permalink if permalink.startswith("/") else post.get("url"))
            stamp = timestamp(post.get("created_utc"))
            items.append(Item(self.name, item_id(post.get("name") or post.get("id"), link, title,
                                                 str(post.get("created_utc", ""))),
                              link, title, one_line(post.get("selftext"))[:SUMMARY_CHARS],
                              fetched if stamp is None else stamp, fetched))
        return items, [("malformed", f"{bad} posts without a title skipped in {self.url}")] if bad else []


class JSONLSource(Source):
    """Items from a JSON-lines file, or every ``*.jsonl`` file of a folder, for offline use.

    Each line is an object with ``title`` and optionally ``id``, ``link``, ``published`` (ISO
    text or epoch seconds), ``summary`` and ``source`` (the item's source; default this
    source's name). Each fetch returns the lines completed since the last one: the byte offset
    read so far is kept per file, a half-written last line waits for its newline, a file that
    shrank is read again from the start, and at most ``max_bytes`` are read per fetch.

    Parameters
    ----------
    path : str or pathlib.Path
        An existing file or folder.
    name : str, optional
        Default ``jsonl:`` and the file's stem or the folder's name.
    max_bytes : int
        Most bytes read per fetch; a longer line is reported and skipped.
    """

    def __init__(self, path, *, name: str | None = None, max_bytes: int = MAX_BYTES):
        self.path = Path(path)
        if not (self.path.is_file() or self.path.is_dir()):
            raise ValueError(f"path must be an existing file or folder, not {str(path)!r}")
        super().__init__(f"jsonl:{self.path.stem}" if name is None else name, 10.0, max_bytes)
        self.offsets = {}

    async def fetch(self, session=None) -> list:
        """The items of lines completed since the last fetch (``session`` is not used)."""
        items, problems = await asyncio.to_thread(self._read_new, now_utc())
        for kind, message in problems:
            self.report(kind, message)
        return items

    def _read_new(self, fetched):
        files = [self.path] if self.path.is_file() else sorted(self.path.glob("*.jsonl"))
        items, problems, budget = [], [], self.max_bytes
        for path in files:
            if budget <= 0:
                break
            try:
                size = path.stat().st_size
                start = self.offsets.get(path, 0) if self.offsets.get(path, 0) <= size else 0
                with open(path, "rb") as f:
                    f.seek(start)
                    chunk = f.read(min(size - start, budget))
            except OSError as e:
                problems.append(("unreadable", f"cannot read {path}: {e.strerror or e}"))
                continue
            end = chunk.rfind(b"\n") + 1
            if not end and len(chunk) == self.max_bytes:
                problems.append(("too large", f"{path.name}: a line at byte {start} is longer than "
                                              f"{self.max_bytes} bytes: skipped"))
                end = len(chunk)
            elif end:
                for at, line in _lines(chunk[:end], start):
                    item, problem = self._item(line, fetched)
                    if item is not None:
                        items.append(item)
                    elif problem:
                        problems.append(("malformed", f"{path.name} at byte {at}: {problem}"))
            self.offsets[path] = start + end
            budget -= end
        return items, problems

    def _item(self, line: bytes, fetched):
        """``(Item, None)``, ``(None, problem)``, or ``(None, None)`` for a blank line."""
        if not line.strip():
            return None, None
        try:
            row = json.loads(line)
        except ValueError as e:
            return None, f"not JSON ({e})"
        title = one_line(row.get("title")) if isinstance(row, dict) else ""
        if not title:
            return None, "no title"
        link = web_link(row.get("link"))
        published = row.get("published")
        stamp = timestamp(published)
        source = row.get("source") if isinstance(row.get("source"), str) and row["source"] else self.name
        summary = one_line(row.get("summary"))[:SUMMARY_CHARS]
        return Item(source, item_id(row.get("id"), link, title, str(published or "")), link, title, summary,
                    fetched if stamp is None else stamp, fetched), None


def _lines(data: bytes, start: int):
    """``(byte offset, line)`` for each line of ``data``, which begins at byte ``start`` of its file."""
    at = start
    for line in data.splitlines(keepends=True):
        yield at, line
        at += len(line)


def default_sources() -> list:
    """Sources for live use: :data:`DEFAULT_FEEDS` and :data:`DEFAULT_SUBREDDITS`."""
    return [RSSSource(url) for url in DEFAULT_FEEDS] + [RedditSource(sub) for sub in DEFAULT_SUBREDDITS]


def simulated_source(url: str, **kwargs) -> RSSSource:
    """The local exchange's simulated news (``http://HOST:REST_PORT/news/rss``), items named ``"simulated"``."""
    return RSSSource(url, SIMULATED, **kwargs)
