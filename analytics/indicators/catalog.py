"""What the views need to know about each indicator: where it is drawn, its levels, how it is written.

An indicator is chosen by a short spec, the name and TA-Lib's positional parameters:
``"ema 20"``, ``"bollinger 20 2"``, ``"macd 12 26 9"``; several separated by commas
(``"ema 20, ema 50, rsi"``). Parameters left out take their defaults. :func:`parse` turns
such a text into ``[(key, name, params)]`` or raises a one-line :class:`ValueError`.
"""

import inspect
import re
from dataclasses import dataclass

from analytics.indicators import live


@dataclass(frozen=True)
class Entry:
    """How one indicator is shown.

    ``overlay`` ones share the price axis; the others get a panel of their own, with
    horizontal ``levels`` and, when ``bounds`` is given, a fixed y range.
    """

    cls: type
    title: str
    overlay: bool
    levels: tuple = ()
    bounds: tuple | None = None

    @property
    def params(self) -> dict:
        """Parameter names and defaults, in TA-Lib's order."""
        signature = inspect.signature(self.cls.__init__)
        return {name: p.default for name, p in signature.parameters.items() if name != "self"}


CATALOG = {
    "sma": Entry(live.SMA, "Simple moving average", True),
    "ema": Entry(live.EMA, "Exponential moving average", True),
    "wma": Entry(live.WMA, "Weighted moving average", True),
    "dema": Entry(live.DEMA, "Double EMA", True),
    "tema": Entry(live.TEMA, "Triple EMA", True),
    "kama": Entry(live.KAMA, "Kaufman adaptive moving average", True),
    "bollinger": Entry(live.Bollinger, "Bollinger bands", True),
    "donchian": Entry(live.Donchian, "Donchian channel", True),
    "vwap": Entry(live.VWAP, "Session VWAP", True),
    "sar": Entry(live.SAR, "Parabolic SAR", True),
    "rsi": Entry(live.RSI, "Relative strength index", False, (30, 70), (0, 100)),
    "macd": Entry(live.MACD, "MACD", False, (0,)),
    "stoch": Entry(live.Stoch, "Stochastic", False, (20, 80), (0, 100)),
    "stochrsi": Entry(live.StochRSI, "Stochastic RSI", False, (20, 80), (0, 100)),
    "cci": Entry(live.CCI, "Commodity channel index", False, (-100, 100)),
    "adx": Entry(live.ADX, "Average directional index", False, (25,), (0, 100)),
    "mfi": Entry(live.MFI, "Money flow index", False, (20, 80), (0, 100)),
    "willr": Entry(live.WillR, "Williams %R", False, (-80, -20), (-100, 0)),
    "atr": Entry(live.ATR, "Average true range", False),
    "natr": Entry(live.NATR, "Normalized ATR (%)", False),
    "obv": Entry(live.OBV, "On-balance volume", False),
    "roc": Entry(live.ROC, "Rate of change (%)", False, (0,)),
    "mom": Entry(live.MOM, "Momentum", False, (0,)),
}

_SPEC = re.compile(r"^([a-z]+)((?:\s+[-+0-9.eE]+)*)$")


def _number(text: str, default):
    value = float(text)
    if isinstance(default, int) and not isinstance(default, bool):
        if value != int(value):
            raise ValueError(f"expected an integer, got {text}")
        return int(value)
    return value


def parse(text: str) -> list[tuple[str, str, dict]]:
    """``"ema 20, rsi"`` → ``[("ema_20", "ema", {"period": 20}), ("rsi_14", "rsi", {"period": 14})]``.

    Keys are unique (a repeated spec appears once) and name the parameters, so they can
    be column names. Raises ValueError naming the bad part and what is allowed.
    """
    specs, seen = [], set()
    text = re.sub(r"\(([^)]*)\)", lambda m: " " + m.group(1).replace(",", " "), text or "")  # rsi(14) = rsi 14
    for part in filter(None, (p.strip().lower() for p in text.split(","))):
        match = _SPEC.match(part)
        name = match and match.group(1)
        if name not in CATALOG:
            raise ValueError(f"unknown indicator {part.split()[0]!r}: choose from {', '.join(CATALOG)}")
        defaults = CATALOG[name].params
        numbers = match.group(2).split()
        if len(numbers) > len(defaults):
            raise ValueError(f"{name} takes at most {len(defaults)} parameters ({', '.join(defaults)}), "
                             f"got {len(numbers)}")
        params = dict(defaults)
        for (param, default), number in zip(defaults.items(), numbers):
            try:
                params[param] = _number(number, default)
            except ValueError as error:
                raise ValueError(f"{name} {param}: {error}") from None
        try:
            CATALOG[name].cls(**params)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name}: {error}") from None
        key = "_".join([name, *(f"{v:g}" for v in params.values() if isinstance(v, (int, float)))])
        key = key.replace(".", "p").replace("-", "m")
        if key not in seen:
            seen.add(key)
            specs.append((key, name, params))
    return specs


def spec_text(specs) -> str:
    """The text :func:`parse` reads back into ``specs``."""
    return ", ".join(" ".join([name, *(f"{v:g}" for v in params.values() if isinstance(v, (int, float)))])
                     for _, name, params in specs)
