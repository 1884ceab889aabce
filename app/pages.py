"""The app's pages: the library's Viewers in one template with navigation and a data banner.

Each page is built per session from the process's one shared ingest. Page arguments come
from the URL (``/chart?symbol=ETH-USDT&exchange=KRAKEN&timeframe=5m&indicators=ema 20, rsi``); a bad one is
named on the page and the page opens with the defaults.
"""

import html

import panel as pn

from analytics.schema import TIMEFRAMES
from analytics.views import CandleChart, CrossExchange, FeedHealth, PriceBoard, RiskDashboard, SentimentView, banner
from analytics.views import sentiment as sentiment_view
from analytics.views.risk import URL_ARGS, url_params

PAGES = {"/": "Market", "/chart": "Chart", "/exchanges": "Exchanges", "/risk": "Risk", "/sentiment": "Sentiment",
         "/health": "Feed health"}
NAV_LINKS = {"/": "./", "/chart": "chart", "/exchanges": "exchanges", "/risk": "risk", "/sentiment": "sentiment",
             "/health": "health"}
NAV_CSS = """
ul { list-style: none; margin: 0; padding: 0; }
a { display: block; padding: 8px 12px; margin: 2px 0; border-radius: 6px; color: inherit; text-decoration: none; }
a:hover { background: rgba(127, 127, 127, 0.2); }
a.active { background: #0072b5; color: white; }
"""


def url_arg(name: str) -> str | None:
    """A query argument of the session's URL, or None."""
    values = (pn.state.session_args or {}).get(name)
    return values[0].decode("utf-8", "replace").strip() if values else None


def _navigation(active: str) -> pn.pane.HTML:
    items = []
    for path, title in PAGES.items():
        current = ' class="active" aria-current="page"' if path == active else ""
        items.append(f'<li><a href="{NAV_LINKS[path]}"{current}>{title}</a></li>')
    return pn.pane.HTML(f'<ul class="tickscope-nav">{"".join(items)}</ul>', stylesheets=[NAV_CSS],
                        sizing_mode="stretch_width")


def template(ingest, path: str, body, notes=()):
    """One page: navigation in the sidebar, the data banner and any notes above the body."""
    notes = [pn.pane.Alert(html.escape(note), alert_type="danger", sizing_mode="stretch_width", margin=(0, 5))
             for note in notes]
    page = pn.template.BootstrapTemplate(
        title=f"Tickscope · {PAGES[path]}", theme="dark", sidebar_width=190,
        sidebar=[_navigation(path)], main=[pn.Column(banner(ingest), *notes, body, sizing_mode="stretch_width")])
    return page


def _timeframe(notes: list) -> str:
    value = url_arg("timeframe") or "1m"
    if value not in TIMEFRAMES:
        notes.append(f"Unknown timeframe {value!r} in the URL: showing 1m (choose from {', '.join(TIMEFRAMES)}).")
        return "1m"
    return value


def _market(ingest) -> tuple[str, str]:
    """The exchange and symbol a page opens on: the URL's, else the feed's first market (a bad one the view names)."""
    exchange = next(iter(sorted(ingest.markets)), "BINANCE")
    symbol = next(iter(ingest.markets.get(exchange, [])), "BTC-USDT")
    return (url_arg("exchange") or exchange).upper(), (url_arg("symbol") or symbol).upper()


def market(ingest, rate: float):
    return template(ingest, "/", PriceBoard(ingest=ingest, rate=rate))


def chart(ingest, rate: float):
    notes = []
    timeframe = _timeframe(notes)
    exchange, symbol = _market(ingest)
    indicators = url_arg("indicators")  # e.g. ?indicators=ema 20, rsi 14 (a bad one is said on the page)
    extra = {} if indicators is None else {"indicators": indicators}
    view = CandleChart(ingest=ingest, exchange=exchange, symbol=symbol, timeframe=timeframe, rate=rate, **extra)
    return template(ingest, "/chart", view, notes)


def exchanges(ingest, rate: float):
    _, symbol = _market(ingest)
    return template(ingest, "/exchanges", CrossExchange(ingest=ingest, symbol=symbol, rate=rate))


def health(ingest, rate: float):
    return template(ingest, "/health", FeedHealth(ingest=ingest, rate=min(rate, 1.0)))


def risk(ingest, rate: float):
    notes = []
    timeframe = _timeframe(notes)
    exchange, _ = _market(ingest)
    params, bad = url_params({name: url_arg(name) for name in URL_ARGS})
    view = RiskDashboard(ingest=ingest, exchange=exchange, timeframe=timeframe, rate=rate, **params)
    return template(ingest, "/risk", view, notes + bad)


def sentiment(ingest, rate: float):
    exchange, _ = _market(ingest)
    params, bad = sentiment_view.url_params({name: url_arg(name) for name in sentiment_view.URL_ARGS})
    return template(ingest, "/sentiment", SentimentView(ingest=ingest, exchange=exchange, rate=rate, **params), bad)


BUILDERS = {"/": market, "/chart": chart, "/exchanges": exchanges, "/health": health, "/risk": risk,
            "/sentiment": sentiment}
