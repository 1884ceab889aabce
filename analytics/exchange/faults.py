"""Runtime fault switches of the local exchange: drops, malformed frames, stalls, sequence gaps.

One-shot faults (:meth:`Faults.drop_now`, :meth:`Faults.stall`, :meth:`Faults.inject_garbage`,
:meth:`Faults.skip_sequence`) and periodic ones (the ``*_every`` attributes) can be switched on
a running exchange from any thread, or over HTTP with ``POST /tickscope/faults`` and a JSON
object of the same names (see :meth:`Faults.update`). Every fault injected is counted in the
exchange's ``sent`` counters under ``(exchange, "*", "faults")``.
"""

import math
import threading
import time
from collections import defaultdict

_PERIODIC = ("drop_every", "garbage_every", "skip_every")


class Faults:
    """Fault switches shared by all connections of one local exchange.

    Attributes
    ----------
    drop_every : float or None
        Drop every connection every this many seconds (None: never).
    garbage_every : int or None
        Send one malformed frame (bad JSON or a wrong-shaped message) every this many
        messages on each connection (None: never).
    skip_every : int or None
        Skip a sequence number every this many sequenced messages: a Bitfinex ``seq`` or a
        Binance depth update id (None: never).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._pending = defaultdict(int)  # (kind, exchange) -> one-shot faults to inject
        self.stalled_until = 0.0
        self.drop_every = None
        self.garbage_every = None
        self.skip_every = None
        self.on_drop = None  # set by the server: callable(exchange or None)
        self.on_stall = None  # set by the server: callable(seconds)
        self.targets = {}  # set by the server: kind -> exchanges a fault for "all" goes to

    def __setattr__(self, name, value):
        if name in _PERIODIC and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number or None, not {value!r}")
            if name != "drop_every" and value != int(value):
                raise ValueError(f"{name} counts messages: give a whole number, not {value!r}")
            value = float(value) if name == "drop_every" else int(value)
        super().__setattr__(name, value)

    def drop_now(self, exchange: str | None = None) -> None:
        """Close every connection (of ``exchange``, or all) at once, without a close frame."""
        if self.on_drop is not None:
            self.on_drop(exchange)

    def stall(self, seconds: float) -> None:
        """Stop sending for ``seconds`` without closing; what is due meanwhile follows after."""
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"stall needs a finite number of seconds >= 0, not {seconds!r}")
        self.stalled_until = max(self.stalled_until, time.time() + seconds)
        if self.on_stall is not None:
            self.on_stall(seconds)

    def inject_garbage(self, count: int = 1, exchange: str | None = None) -> None:
        """Send ``count`` malformed frames on the next messages of each exchange (or one)."""
        self._add("garbage", count, exchange)

    def skip_sequence(self, count: int = 1, exchange: str | None = None) -> None:
        """Skip ``count`` sequence numbers on the next sequenced messages (Binance, Bitfinex)."""
        self._add("skip", count, exchange)

    def _add(self, kind, count, exchange):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a whole number >= 1, not {count!r}")
        with self._lock:
            for target in [exchange] if exchange else self.targets.get(kind) or [None]:
                self._pending[(kind, target)] += count

    def take(self, kind: str, exchange: str, sent: int = 0, count: int = 1) -> bool:
        """Whether to inject a ``kind`` fault (``garbage`` or ``skip``) now; consumes it.

        For the periodic switches: ``sent`` messages went before on this connection and
        ``count`` go now; one fault is due each time the total passes a multiple of the period.
        """
        every = self.garbage_every if kind == "garbage" else self.skip_every
        if every is not None and (sent + count) // every > sent // every:
            return True
        if not self._pending:
            return False
        with self._lock:
            for key in ((kind, exchange), (kind, None)):
                if self._pending.get(key, 0) > 0:
                    self._pending[key] -= 1
                    if not self._pending[key]:
                        del self._pending[key]
                    return True
        return False

    @property
    def stalled(self) -> bool:
        """True while a stall is in force."""
        return time.time() < self.stalled_until

    def update(self, spec: dict) -> None:
        """Apply switches from a JSON object, e.g. ``{"drop": true, "garbage": 2, "stall": 3}``.

        Keys: ``drop`` (true, or an exchange name), ``stall`` (seconds), ``garbage`` and
        ``skip`` (counts), ``exchange`` (restricts ``garbage``/``skip``), and the periodic
        ``drop_every``, ``garbage_every``, ``skip_every`` (null switches one off).

        Raises
        ------
        ValueError
            On an unknown key or a bad value, before anything is applied.
        """
        if not isinstance(spec, dict):
            raise ValueError("fault switches must be a JSON object")
        known = {"drop", "stall", "garbage", "skip", "exchange", *_PERIODIC}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown fault switches {sorted(unknown)}; known: {sorted(known)}")
        exchange = spec.get("drop") if isinstance(spec.get("drop"), str) else spec.get("exchange")
        exchanges = set(self.targets.get("garbage", ()))
        if exchange is not None and exchanges and exchange not in exchanges:
            raise ValueError(f"unknown exchange {exchange!r}: serving {sorted(exchanges)}")
        Faults()._apply(spec, exchange)  # validate everything on a throwaway before applying anything
        self._apply(spec, exchange)
        if spec.get("drop"):
            self.drop_now(exchange)

    def _apply(self, spec: dict, exchange) -> None:
        for name in _PERIODIC:
            if name in spec:
                setattr(self, name, spec[name])
        for kind in ("garbage", "skip"):
            if kind in spec:
                self._add(kind, spec[kind], exchange)
        if "stall" in spec:
            self.stall(spec["stall"])

    def snapshot(self) -> dict:
        """The current switches, JSON-ready."""
        with self._lock:
            pending = {f"{kind}:{exchange or '*'}": n for (kind, exchange), n in self._pending.items()}
        return {
            "drop_every": self.drop_every,
            "garbage_every": self.garbage_every,
            "skip_every": self.skip_every,
            "stalled_for": max(0.0, self.stalled_until - time.time()),
            "pending": pending,
        }
