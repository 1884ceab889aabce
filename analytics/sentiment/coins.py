"""Which coins a text is about: tickers, cashtags, trading pairs, names and aliases.

Rules, in the order a reader would apply them:

1. A cashtag (``$BTC``, ``$link``) always counts, in any case.
2. A ticker counts in any case (``BTC``, ``eth``), except tickers that are also English words
   (:data:`WORDLIKE`: ``SOL``, ``ADA``, ``DOT``, ``LINK``, ``TON``, ``NEAR``...), which count only
   in capitals, not after "a"/"an" or before "of" ("a TON of"), and not in a text written mostly
   in capitals ("HOW TO LINK A WALLET"), where capitals say nothing.
3. In a trading pair (``BTC/USDT``, ``ETH-USD``, ``BTCUSDT``) the quote currency is notation, not
   a subject, when it is fiat or a stablecoin (:data:`QUOTES`); a coin quote counts (``ETH/BTC``).
   A word-like ticker in a pair counts in any case (``sol/usdt``).
4. Names count in any case, possessive or plural ("Bitcoin's", "bitcoins"); names that are also
   English words (:data:`CAPITALISED`: Avalanche, Polygon, Ripple, Tether, Tron, Sui) count only
   capitalised, and "Avalanche of" or "Ripple effect" not at all. A longer name wins over the
   name it contains: "Bitcoin Cash" is BCH only, "Ethereum Classic" ETC only.
"""

import re

from .text import as_texts

COINS: dict[str, tuple[str, ...]] = {
    "BTC": ("Bitcoin", "BTC", "XBT"),
    "ETH": ("Ethereum", "Ether", "ETH"),
    "SOL": ("Solana", "SOL"),
    "XRP": ("XRP", "Ripple"),
    "ADA": ("Cardano", "ADA"),
    "DOGE": ("Dogecoin", "DOGE"),
    "LTC": ("Litecoin", "LTC"),
    "DOT": ("Polkadot", "DOT"),
    "BNB": ("BNB", "Binance Coin"),
    "AVAX": ("Avalanche", "AVAX"),
    "LINK": ("Chainlink", "LINK"),
    "POL": ("Polygon", "POL", "MATIC"),
    "TRX": ("Tron", "TRON", "TRX"),
    "TON": ("Toncoin", "TON"),
    "SHIB": ("Shiba Inu", "SHIB"),
    "USDT": ("Tether", "USDT"),
    "USDC": ("USD Coin", "USDC"),
    "BCH": ("Bitcoin Cash", "BCH"),
    "ETC": ("Ethereum Classic", "ETC"),
    "XLM": ("Stellar Lumens", "XLM"),
    "XMR": ("Monero", "XMR"),
    "ATOM": ("Cosmos Hub", "ATOM"),
    "NEAR": ("NEAR Protocol", "NEAR"),
    "UNI": ("Uniswap", "UNI"),
    "APT": ("Aptos", "APT"),
    "ARB": ("Arbitrum", "ARB"),
    "SUI": ("Sui", "SUI"),
    "FIL": ("Filecoin", "FIL"),
    "HBAR": ("Hedera", "HBAR"),
    "PEPE": ("PEPE",),
}

WORDLIKE = frozenset({"SOL", "ADA", "DOT", "LINK", "TON", "NEAR", "ATOM", "UNI", "APT", "ARB", "POL", "SUI",
                      "PEPE", "ETC", "TRON"})
CAPITALISED: dict[str, str] = {
    "Avalanche": r"(?! (?i:of)\b)", "Polygon": "", "Ripple": r"(?! (?i:effects?)\b)", "Tether": "",
    "Tron": "", "Sui": "",
}
QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "DAI", "USD", "EUR", "GBP", "JPY", "KRW", "PERP")

_START = r"(?<![\w$])"
_END = r"(?![\w])"
_PAIR = r"(?:[/\-]?(?i:" + "|".join(QUOTES) + r"))?"
_NAME_END = r"(?:'s|\u2019s|s)?"
_SHOUT_WORD = re.compile(r"\b[A-Za-z]{2,}\b")


def _is_ticker(alias: str) -> bool:
    return alias.isupper() and " " not in alias


def _variants(alias: str) -> list[tuple[str, str, bool]]:
    """(first character, regex, word-like?) for each way of writing ``alias``, by the module docstring's rules."""
    escaped = re.escape(alias).replace(r"\ ", r"\s+")
    first = alias[0].lower()
    if not _is_ticker(alias):
        guard = CAPITALISED.get(alias)
        return [(first, rf"(?i:{escaped}){_NAME_END}{_END}" if guard is None else rf"{escaped}{_NAME_END}{_END}{guard}",
                 False)]
    cashtag = ("$", rf"\$(?i:{escaped}){_PAIR}{_END}", False)
    if alias not in WORDLIKE:
        return [cashtag, (first, rf"(?i:{escaped}){_PAIR}{_END}", False)]
    paired = rf"(?i:{escaped})(?=[/\-](?i:{'|'.join(QUOTES)})\b)"
    bare = rf"(?<!\b[Aa] )(?<!\b[Aa]n ){escaped}(?! (?i:of)\b)"
    return [cashtag, (first, rf"(?:{paired}|{bare}){_PAIR}{_END}", True)]


def _build() -> tuple[re.Pattern, dict[str, str], frozenset]:
    """One regex: after a word start, branch on the first character, then one named group per variant.

    Branching first keeps the regex engine from trying every alias at every word (6x faster).
    Longer aliases come first, so "Bitcoin Cash" wins over "Bitcoin".
    """
    aliases = sorted(((alias, code) for code, names in COINS.items() for alias in names), key=lambda p: -len(p[0]))
    branches, codes, wordlike = {}, {}, set()
    for alias, code in aliases:
        for first, pattern, is_wordlike in _variants(alias):
            name = f"g{len(codes)}"
            codes[name] = code
            if is_wordlike:
                wordlike.add(name)
            branches.setdefault(first, []).append(f"(?P<{name}>{pattern})")
    dispatch = "|".join(f"(?={re.escape(first) if first == '$' else f'[{first}{first.upper()}]'})(?:{'|'.join(b)})"
                        for first, b in branches.items())
    return re.compile(rf"{_START}(?:{dispatch})"), codes, frozenset(wordlike)


_PATTERN, _GROUP_CODE, _WORDLIKE_GROUPS = _build()
_TICKERS = frozenset(alias for names in COINS.values() for alias in names if _is_ticker(alias))


def _shouting(text: str) -> bool:
    """Mostly capitals, not counting tickers: there capitals do not mark a ticker."""
    words = [w for w in _SHOUT_WORD.findall(text) if w not in _TICKERS]
    return len(words) >= 3 and sum(w.isupper() for w in words) > len(words) / 2


def tag_coins(text: str | None) -> list[str]:
    """Codes of the coins ``text`` is about (keys of :data:`COINS`), in order of first mention.

    ``None`` gives ``[]``. Raises ValueError for anything else that is not a string.

    Examples
    --------
    >>> tag_coins("$ETH and Bitcoin's ETF; BTC/USDT flat, a TON of Solar news")
    ['ETH', 'BTC']
    """
    if text is None:
        return []
    if not isinstance(text, str):
        raise ValueError(f"text must be a string or None, got {type(text).__name__}: {text!r:.60}")
    groups = [m.lastgroup for m in _PATTERN.finditer(text)]
    if not _WORDLIKE_GROUPS.isdisjoint(groups) and _shouting(text):
        groups = [group for group in groups if group not in _WORDLIKE_GROUPS]
    return list(dict.fromkeys(_GROUP_CODE[group] for group in groups))


def tag_many(texts) -> list[list[str]]:
    """:func:`tag_coins` for each text of an iterable (a Series, list...); missing items give ``[]``.

    Raises ValueError as :func:`~.text.as_texts`.
    """
    values, _ = as_texts(texts)
    return [tag_coins(text) for text in values]
