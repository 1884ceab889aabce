"""The Risk page's Viewer on real bars: its numbers against analytics.risk, live updates, sharing, bad input."""

import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bokeh.document import Document

from analytics import risk, schema
from analytics.exchange.market import COIN_SPECS
from analytics.ingest import Ingest
from analytics.metrics import LatencyHistogram
from analytics.pipeline import Hub
from analytics.storage import TickStore
from analytics.views import riskfeed
from analytics.views.base import active_views
from analytics.views.risk import RiskDashboard, heatmap_columns, url_params
from analytics.views.riskfeed import RiskFeed
from polling import poll

pytestmark = pytest.mark.filterwarnings("ignore:Passing a BlockManager:DeprecationWarning")
DATA = Path(__file__).parents[2] / "shared" / "data"
END = pd.Timestamp("2024-06-01 12:00")  # the newest stored bar's start (tests without a running ingest)
COINS = ["BTC-USDT", "ETH-USDT", "ADA-USDT", "LTC-USDT"]  # in the order of the feed's default coins
ALTS_END = pd.Timestamp("2018-01-30 04:51")  # the newest Bittrex bar: all alts move by one offset
FIELDS = ["open", "high", "low", "close"]
MINUTE = pd.Timedelta("1min")


def real_bars(symbol: str, end: pd.Timestamp, exchange: str = "BINANCE") -> pd.DataFrame:
    """Real one-minute bars moved in time to end at ``end``, prices scaled to the simulator's level.

    BTC-USDT: the 45,031 BTC perpetual bars. ETH, LTC, ADA: the Bittrex bars (in BTC), all
    moved by the same offset so that they stay aligned with each other. Scaling keeps every
    log return and puts the last close at the local exchange's starting price, so the live
    bars continue the history without a jump.
    """
    coin = symbol.split("-")[0]
    if coin == "BTC":
        raw = pd.read_csv(DATA / "bars" / "btc-perp-20211231-20220201_1m.csv.gz")
        start = pd.to_datetime(raw["timestamp"])
        start = start + (end - start.iloc[-1])
    else:
        raw = pd.read_csv(DATA / "bars" / "bittrex_1m" / f"{coin}_BTC-1m.csv.gz")
        start = pd.to_datetime(raw["timestamp"]).dt.tz_localize(None) + (end - ALTS_END)
    scale = COIN_SPECS[coin].price / raw["close"].iloc[-1]
    return schema.conform("bars", pd.DataFrame({
        "exchange": exchange, "symbol": symbol, "timeframe": "1m", "start": start,
        **{c: raw[c] * scale for c in FIELDS}, "volume": raw["volume"], "vwap": raw["close"] * scale,
        "trades": 1, "closed": True}))


def hub_rows(symbol: str, starts, bars: pd.DataFrame, closed, exchange: str = "BINANCE") -> pd.DataFrame:
    """Bar rows as the pipeline publishes them, with the prices of ``bars``' rows."""
    return schema.conform("bars", pd.DataFrame({
        "exchange": exchange, "symbol": symbol, "timeframe": "1m", "start": pd.to_datetime(starts),
        **{c: bars[c].to_numpy() for c in FIELDS}, "volume": 1.0, "vwap": bars["close"].to_numpy(), "trades": 3,
        "closed": closed}))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = TickStore(f"lmdb://{tmp_path_factory.mktemp('risk')}/arctic")
    store.write("bars", pd.concat([real_bars(s, END) for s in COINS], ignore_index=True))
    return store


def fake_ingest(store, hub=None, markets=None):
    """What the Risk page reads of an Ingest, with a hub the test publishes to."""
    return types.SimpleNamespace(hub=hub or Hub(), store=store, markets=markets or {"BINANCE": list(COINS)},
                                 screen_latency=LatencyHistogram())


@pytest.fixture(autouse=True)
def no_shared_fits():
    riskfeed._FITS.clear()


async def computed(view, after: int = 0):
    """Refresh ``view`` until its feed has a result newer than version ``after``; return that result."""
    def ready():
        view.refresh()
        feed = view._feed
        return feed is not None and feed.version > after and feed.result is not None and view._shown is not None \
            and view._shown[0] == feed.version
    await poll(ready, what="the risk computation")
    return view._feed.result


# -- the reference: the same bars, merged and cut with plain pandas ----------------------------------
def reference_bars(store, hub, exchange, symbol, through, lookback=1440) -> pd.DataFrame:
    """Stored bars with the hub's closed bars on top (the hub's win), the ``lookback`` minutes up to ``through``."""
    try:
        stored = store.read_bars(exchange, symbol, "1m")[FIELDS + ["closed"]]
    except ValueError:
        stored = pd.DataFrame(columns=FIELDS + ["closed"])
    live = hub.latest(("bars", exchange, symbol, "1m"))
    live = live.set_index("start")[FIELDS + ["closed"]] if len(live) else stored.iloc[:0]
    bars = live.combine_first(stored) if len(stored) else live
    bars = bars[bars["closed"].astype(bool)][FIELDS].astype(float)
    return bars.loc[through - (lookback - 1) * MINUTE:through]


def reference_returns(frames: dict) -> pd.DataFrame:
    closes = pd.DataFrame({s: f["close"] for s, f in frames.items()}).dropna()
    return np.log(closes).diff().iloc[1:]


def check_numbers(view, result, frames: dict, pair) -> None:
    """Every number of the page equals analytics.risk on ``frames``, as computed and as shown."""
    window, coin = result.spec.window, result.spec.coin
    for symbol, bars in frames.items():
        assert result.counts[symbol] == len(bars), symbol
        for estimator in risk.ESTIMATORS:
            expected = 100 * risk.realized_vol(bars, estimator, window, annualize="1m").iloc[-1]
            np.testing.assert_allclose(result.vol.at[symbol, estimator], expected, rtol=1e-12)
            assert f"<td>{expected:,.1f}</td>" in view._table.text
        ewma = 100 * risk.ewma_vol(np.log(bars["close"]).diff().iloc[1:], 0.94, annualize="1m").iloc[-1]
        np.testing.assert_allclose(result.vol.at[symbol, "ewma"], ewma, rtol=1e-12)
    bars = frames[coin]
    cone = 100 * risk.vol_cone(bars["close"], (15, 30, 60, 120, 240), annualize="1m")
    np.testing.assert_allclose(view._cone.data["q50"], cone["q50"], rtol=1e-12)
    np.testing.assert_allclose(view._cone.data["current"], cone["current"], rtol=1e-12)
    realized = 100 * risk.realized_vol(bars, view.estimator, window, annualize="1m")
    np.testing.assert_allclose(view._history.data["realized"][-50:], realized.iloc[-50:], rtol=1e-12)
    fit = risk.fit_garch(np.log(bars["close"]).diff().iloc[1:])
    np.testing.assert_allclose([result.garch.alpha, result.garch.beta, result.garch.llf],
                               [fit.alpha, fit.beta, fit.llf], rtol=1e-9)
    assert f"{fit.alpha:.4f}" in view._garch_text.text and f"{fit.persistence:.4f}" in view._garch_text.text
    np.testing.assert_allclose(view._forecast.data["vol"], 100 * fit.forecast_volatility(60, annualize="1m"),
                               rtol=1e-9)
    assert view._forecast.data["time"][0] == (result.through + MINUTE).value / 1e6
    matrix = risk.corr_matrix(reference_returns(frames))
    cells = view._corr_source.data
    expected = matrix.corr.stack()  # (row, column) -> r
    np.testing.assert_allclose(cells["r"], [expected[(y, x)] for x, y in zip(cells["x"], cells["y"])],
                               rtol=1e-9, atol=1e-12)
    faded = [matrix.pvalues.at[y, x] >= 0.05 for x, y in zip(cells["x"], cells["y"])]
    assert list(np.asarray(cells["alpha"]) < 0.5) == faded
    a, b = pair
    returns = reference_returns({a: frames[a], b: frames[b]})
    ra, rb = returns[a].rename(a), returns[b].rename(b)
    np.testing.assert_allclose(view._pair_source.data["corr"], risk.rolling_corr(ra, rb, window), rtol=1e-9,
                               atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(view._pair_source.data["beta"], risk.rolling_beta(ra, rb, window)["beta"],
                               rtol=1e-9, atol=1e-12, equal_nan=True)
    closes = pd.DataFrame({a: frames[a]["close"], b: frames[b]["close"]}).dropna()
    assert risk.cointegration(closes[a].rename(a), closes[b].rename(b)).words() in view._words.text
    assert risk.lead_lag(ra, rb, 10).words() in view._words.text


# -- against a running ingest --------------------------------------------------------------------
async def test_numbers_equal_analytics_risk_on_stored_and_live_bars(tmp_path):
    uri = f"lmdb://{tmp_path}/arctic"
    newest = pd.Timestamp.now("UTC").tz_localize(None).floor("1min") - 2 * MINUTE
    TickStore(uri).write("bars", pd.concat([real_bars(s, newest) for s in COINS], ignore_index=True))
    ingest = Ingest(source="simulator", store=uri, symbols=COINS, rate=200, workers=False, seed=3)
    await ingest.start()
    try:
        before = ingest.hub.subscribers
        view = RiskDashboard(ingest=ingest, coin="ETH-USDT", pair=["ETH-USDT", "BTC-USDT"], rate=20)
        view.__panel__()
        assert active_views() >= 1
        await poll(lambda: all(len(ingest.hub.latest(("bars", "BINANCE", s, "1m"))) for s in COINS),
                   what="live 1m bars of every coin")
        result = await computed(view)
        assert result.spec.symbols == tuple(COINS)  # every coin the feed has on the exchange
        assert result.spec.exchanges == ("BINANCE", "BITFINEX", "KRAKEN")
        frames = {s: reference_bars(ingest.store, ingest.hub, "BINANCE", s, result.through) for s in COINS}
        assert result.through >= newest and max(f.index[-1] for f in frames.values()) == result.through
        check_numbers(view, result, frames, ("ETH-USDT", "BTC-USDT"))
        assert (np.asarray(view._corr_source.data["alpha"]) < 0.5).any()  # these coins are barely correlated
        assert not view._error.visible and not view._message.visible, view._message.object
        assert "xcorr" in result.notes and "BITFINEX" in result.notes["xcorr"]  # a few live bars only there
        assert "BINANCE · 1m · 4 coins" in view._status.text
        assert ingest.hub.subscribers > before
        view.close()
        assert ingest.hub.subscribers == before and not RiskFeed._shared
    finally:
        await ingest.stop()


# -- on a hub fed by the test ----------------------------------------------------------------------
async def test_a_closed_bar_updates_the_table_and_the_heatmap_the_forming_bar_does_not(store):
    ingest = fake_ingest(store)
    view = RiskDashboard(ingest=ingest, window=30, pair=["BTC-USDT", "LTC-USDT"])
    view.__panel__()
    try:
        first = await computed(view)
        assert first.through == END and view._feed.computes == 1
        table, cells = view._table.text, list(view._corr_source.data["r"])
        new = END + MINUTE
        moves = {"BTC-USDT": 1.02, "ETH-USDT": 0.97, "LTC-USDT": 1.05, "ADA-USDT": 0.99}
        for symbol, move in moves.items():  # a closed bar with a big move, and the next one forming
            last = store.read_bars("BINANCE", symbol, "1m").iloc[[-1]] * move
            ingest.hub.publish(("bars", "BINANCE", symbol, "1m"),
                               hub_rows(symbol, [new, new + MINUTE], pd.concat([last, last * 1.5]), [True, False]))
        second = await computed(view, after=view._feed.version)
        assert second.through == new and view._feed.computes == 2  # one computation for the bar of every coin
        assert view._table.text != table and list(view._corr_source.data["r"]) != cells
        frames = {s: reference_bars(store, ingest.hub, "BINANCE", s, new) for s in COINS}
        assert all(f.index[-1] == new for f in frames.values())
        check_numbers(view, second, frames, ("BTC-USDT", "LTC-USDT"))
    finally:
        view.close()


async def test_across_exchanges_heatmap_of_one_coin(store):
    ingest = fake_ingest(store, markets={ex: list(COINS) for ex in ("BINANCE", "KRAKEN", "BITFINEX")})
    bars = real_bars("BTC-USDT", END).set_index("start").iloc[-300:]
    derived = {"KRAKEN": bars.assign(close=(bars["high"] + bars["low"]) / 2),  # other prices of the same minutes
               "BITFINEX": bars.assign(close=(bars["open"] + bars["close"]) / 2)}
    for exchange, frame in derived.items():
        ingest.hub.publish(("bars", exchange, "BTC-USDT", "1m"),
                           hub_rows("BTC-USDT", frame.index, frame, True, exchange=exchange))
    view = RiskDashboard(ingest=ingest, symbols=["BTC-USDT", "ETH-USDT"])
    view.__panel__()
    try:
        result = await computed(view)
        assert result.spec.exchanges == ("BINANCE", "BITFINEX", "KRAKEN") and "xcorr" not in result.notes
        closes = pd.DataFrame({"BINANCE": bars["close"], **{ex: f["close"] for ex, f in derived.items()}})
        matrix = risk.corr_matrix(np.log(closes.loc[END - 1439 * MINUTE:]).diff().iloc[1:])
        assert result.xcorr.nobs == matrix.nobs == 299
        pd.testing.assert_frame_equal(result.xcorr.corr.loc[matrix.corr.index, matrix.corr.columns], matrix.corr,
                                      rtol=1e-12)
        cells = view._xcorr_source.data
        assert len(cells["r"]) == 9 and min(cells["r"]) > 0.5
        assert "over 299 returns" in view._xcorr_caption.text
    finally:
        view.close()


async def test_sessions_share_one_computation_and_one_garch_fit(store, monkeypatch):
    fits = []
    original = risk.fit_garch
    monkeypatch.setattr(risk, "fit_garch", lambda returns: fits.append(len(returns)) or original(returns))
    ingest = fake_ingest(store)
    views = [RiskDashboard(ingest=ingest, coin="BTC-USDT") for _ in range(3)]
    other = RiskDashboard(ingest=ingest, coin="BTC-USDT", window=30, estimator="parkinson")
    for view in [*views, other]:
        view.__panel__()
    try:
        results = [await computed(view) for view in [*views, other]]
        assert views[0]._feed is views[1]._feed is views[2]._feed is not other._feed
        assert results[0] is results[1] is results[2] and views[0]._feed.computes == 1
        assert len(RiskFeed._shared) == 2 and views[0]._feed.users == 3
        assert fits == [1439]  # the other window shares the coin's GARCH fit
        assert results[3].garch is results[0].garch
        assert "<th class=\"chosen\">Parkinson</th>" in other._table.text
        np.testing.assert_array_equal(other._history.data["realized"][-1000:],
                                      results[3].series["parkinson"].to_numpy()[-1000:])
        views[0].estimator = "close"  # a display choice: no new computation
        views[0].refresh()
        assert views[0]._feed.computes == 1 and "<th class=\"chosen\">close</th>" in views[0]._table.text
    finally:
        for view in [*views, other]:
            view.close()
    assert not RiskFeed._shared


async def test_too_little_data_is_said_per_section_with_what_to_do(tmp_path):
    ingest = fake_ingest(TickStore(f"lmdb://{tmp_path}/empty"), markets={"BINANCE": ["BTC-USDT", "ETH-USDT"]})
    source = real_bars("BTC-USDT", END).set_index("start").iloc[-12:]
    for symbol in ("BTC-USDT", "ETH-USDT"):
        ingest.hub.publish(("bars", "BINANCE", symbol, "1m"),
                           hub_rows(symbol, source.index, source, [True] * 11 + [False]))
    view = RiskDashboard(ingest=ingest)
    view.__panel__()
    try:
        result = await computed(view)
        assert result.counts == {"BTC-USDT": 11, "ETH-USDT": 11}  # the forming bar is not counted
        notes = {section: div.text for section, div in view._notes.items() if div.visible}
        assert notes["vol"].startswith("Volatility of BTC-USDT, ETH-USDT (window 60): 11 closed 1m bars, 61 needed.")
        assert "Volatility cone of BTC-USDT: 11 closed 1m bars, 481 needed" in notes["cone"]
        assert "GARCH(1,1) of BTC-USDT: 11 closed 1m bars, 201 needed" in notes["garch"]
        assert "Correlation across coins: 11 closed 1m bars at common times, 31 needed" in notes["corr"]
        assert "is on 1 exchange here" in notes["xcorr"]
        assert "100 needed" in notes["words"] and "61 needed" in notes["pair"]
        for text in notes.values():
            assert "Traceback" not in text
        assert "Choose 1s, wait about 50 min, or run <code>python -m analytics backfill --days 7</code>" in notes["vol"]
        assert list(view._corr_source.data["r"]) == [] and view._garch_text.text == ""
        assert not view._error.visible and not view._message.visible
        view.timeframe = "1s"  # nothing at 1s: wait, there is nothing to backfill
        result = await computed(view)
        assert result.through is None
        assert view._notes["vol"].text.endswith("0 closed 1s bars, 61 needed. Wait about 61 s.")
    finally:
        view.close()


def test_url_arguments_are_parsed_and_bad_ones_named():
    params, notes = url_params({"symbols": "btc-usdt, eth-usdt", "window": "30", "lookback": "2000",
                                "estimator": "parkinson", "coin": "eth-usdt", "pair": "ETH-USDT,BTC-USDT"})
    assert params == {"symbols": ["BTC-USDT", "ETH-USDT"], "window": 30, "lookback": 2000, "estimator": "parkinson",
                      "coin": "ETH-USDT", "pair": ["ETH-USDT", "BTC-USDT"]} and notes == []
    params, notes = url_params({"window": "3", "lookback": "day", "estimator": "magic", "pair": "BTC-USDT"})
    assert params == {}
    assert notes == [
        "Bad window '3' in the URL: showing 60 (a whole number of bars from 5 to 480).",
        "Bad lookback 'day' in the URL: showing 1440 (a whole number of bars from 500 to 50000).",
        "Unknown estimator 'magic' in the URL: showing yang_zhang (choose from close, parkinson, garman_klass, "
        "rogers_satchell, yang_zhang).",
        "Bad pair 'BTC-USDT' in the URL: showing the first two coins (give two coins, e.g. pair=ETH-USDT,BTC-USDT)."]


@pytest.mark.parametrize("params, text", [
    ({"exchange": "NOPE"}, "Unknown exchange 'NOPE': choose BINANCE."),
    ({"symbols": ["BTC-USDT", "XYZ-USDT"]}, "Unknown symbol XYZ-USDT on BINANCE: choose ADA-USDT, BTC-USDT"),
    ({"coin": "DOGE-USDT"}, "DOGE-USDT is not among the coins shown: showing BTC-USDT."),
    ({"pair": ["BTC-USDT", "SOL-USDT"]}, "The pair BTC-USDT and SOL-USDT is not two of the coins shown"),
], ids=["exchange", "symbol", "coin", "pair"])
async def test_bad_choices_give_one_line_and_the_rest_goes_on(store, params, text):
    view = RiskDashboard(ingest=fake_ingest(store), **params)
    view.__panel__()
    try:
        if "exchange" not in params:
            await computed(view)
            assert view._table.text.count("<tr") == 1 + len(view._feed.spec.symbols)
        else:
            view.refresh()
            assert view._feed is None
        assert view._message.visible and view._message.object.startswith(text), view._message.object
        assert not view._error.visible
    finally:
        view.close()


def test_bad_parameters_raise_at_assignment(store):
    view = RiskDashboard(ingest=fake_ingest(store))
    for name, value in (("window", 2), ("lookback", 10), ("estimator", "magic"), ("timeframe", "7m"),
                        ("pair", ["BTC-USDT"])):
        with pytest.raises(ValueError, match=name):
            setattr(view, name, value)


async def test_widgets_change_the_parameters_and_a_store_failure_is_said(store, monkeypatch):
    ingest = fake_ingest(store)
    view = RiskDashboard(ingest=ingest)
    view.__panel__()
    try:
        await computed(view)
        assert view._coin_select.options == COINS and view._pair_selects[1].value == "ETH-USDT"
        view._coin_select.value = "LTC-USDT"
        view._pair_selects[1].value = "ADA-USDT"
        result = await computed(view)
        assert (result.spec.coin, result.spec.pair) == ("LTC-USDT", ("BTC-USDT", "ADA-USDT"))
        view._symbols_choice.value = ["ETH-USDT", "ADA-USDT"]  # the coin and the pair are not among them any more
        result = await computed(view)
        assert result.spec.symbols == ("ETH-USDT", "ADA-USDT") and result.spec.coin == "ETH-USDT"
        assert result.spec.pair == ("ETH-USDT", "ADA-USDT")

        def broken(*args, **kwargs):
            raise OSError("disk on fire")
        monkeypatch.setattr(riskfeed, "read_history", broken)
        view.window = 20
        result = await computed(view)
        assert view._message.object == "History unavailable: disk on fire" and "vol" in result.notes
    finally:
        view.close()


def test_heatmap_cells_fade_where_not_significant():
    corr = pd.DataFrame([[1.0, 0.8], [0.8, 1.0]], index=["A", "B"], columns=["A", "B"])
    pvalues = pd.DataFrame([[0.0, 0.2], [0.2, 0.0]], index=["A", "B"], columns=["A", "B"])
    cells = heatmap_columns(risk.CorrMatrix(corr=corr, pvalues=pvalues, nobs=5, method="pearson"))
    assert list(zip(cells["x"], cells["y"])) == [("A", "A"), ("B", "A"), ("A", "B"), ("B", "B")]
    assert list(cells["alpha"]) == [0.95, 0.25, 0.25, 0.95] and cells["label"] == ["1.00", "0.80", "0.80", "1.00"]


async def test_one_coin_renders_and_says_the_pair_and_the_matrix_need_two(store):
    view = RiskDashboard(ingest=fake_ingest(store), symbols=["ETH-USDT"])
    view.__panel__().get_root(Document())  # as a served page builds it: the pair's selectors have nothing to show
    try:
        result = await computed(view)
        assert result.spec.pair == () and view.pair is None and all(w.disabled for w in view._pair_selects)
        assert result.notes["corr"] == "Correlation across coins: choose at least two coins."
        assert result.notes["pair"] == "Pair statistics: choose two coins." and result.pair is None
        assert not np.isnan(result.vol.loc["ETH-USDT"]).any() and not view._error.visible
        assert "BINANCE · 1m · 1 coin · window 60" in view._status.text
    finally:
        view.close()
