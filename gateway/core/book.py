"""A venue's L2 book for one symbol, built from MarketData snapshots and incrementals (sans-IO).

Each side keeps its prices in a list sorted best-first (``keys``: ask prices, negated
bid prices, so one ascending order serves both) with the quantity per price, plus the
cumulative quantity best-first (``cum``). The cumulative list is rebuilt lazily: a
change only marks the side dirty, and the first read of ``cum`` (the router's depth
queries, ``qty_available``, ``sweep_price``) rebuilds it, so a burst of updates between
two routing decisions costs one rebuild, and each depth query is still one ``bisect``.
(A replay applies millions of updates and reads depth a few thousand times: eager
rebuilding was ~70% of its loop.)

The touch depletion rate is the quantity removed at the best price (trades and
cancels both show up as a decrease or a delete of the touch level in the incremental
stream) per second, as an exponentially decayed event rate with memory ``tau_s``:
``rate <- rate * exp(-dt / tau) + removed / tau``. Trades (269=2) are recorded for the
last price only, so a trade that also shrinks the touch is not counted twice.

Not thread-safe by itself: ``MarketState`` applies updates and the router reads under
the same lock.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from itertools import accumulate
from math import exp
from typing import Final, Iterable

from gateway.common.clock import MONOTONIC, Clock

BID: Final = "0"
OFFER: Final = "1"
TRADE: Final = "2"
NEW: Final = "0"
CHANGE: Final = "1"
DELETE: Final = "2"
BUY: Final = "1"
SELL: Final = "2"
_EPS: Final = 1e-9
Levels = Iterable[tuple[float, float]]


class _Side:
    __slots__ = ("sign", "keys", "qty", "_cum", "dirty", "rate", "rate_at", "removed")

    def __init__(self, sign: float) -> None:
        self.sign = sign            # +1 asks, -1 bids: key = sign * price, ascending = best first
        self.keys: list[float] = []
        self.qty: dict[float, float] = {}
        self._cum: list[float] = []
        self.dirty = False          # keys/qty changed since _cum was built
        self.rate = 0.0             # decayed touch depletion (qty/s) as of rate_at
        self.rate_at = 0.0
        self.removed = 0.0          # total qty removed at the touch (for reports)

    @property
    def cum(self) -> list[float]:
        """Cumulative quantity best-first, built on the first read after a change."""
        if self.dirty:
            qty = self.qty
            self._cum = list(accumulate([qty[k] for k in self.keys]))
            self.dirty = False
        return self._cum

    def clear(self) -> None:
        self.keys.clear()
        self.qty.clear()
        self._cum = []
        self.dirty = False

    def set_level(self, key: float, qty: float) -> None:
        if qty <= 0:
            self.remove(key)
            return
        if key not in self.qty:
            insort(self.keys, key)
        self.qty[key] = qty

    def remove(self, key: float) -> float:
        q = self.qty.pop(key, 0.0)
        if q:
            i = bisect_left(self.keys, key)
            if i < len(self.keys) and self.keys[i] == key:
                del self.keys[i]
        return q

    def rebuild(self) -> None:
        """Mark the cumulative depth out of date (rebuilt on its next read)."""
        self.dirty = True

    def deplete(self, removed: float, now: float, tau: float) -> None:
        self.rate = self.rate * exp(-(now - self.rate_at) / tau) + removed / tau if self.rate else removed / tau
        self.rate_at = now
        self.removed += removed

    def rate_at_time(self, now: float, tau: float) -> float:
        if not self.rate:
            return 0.0
        return self.rate * exp(-(now - self.rate_at) / tau)


class L2Book:
    """Aggregated price levels of one symbol on one venue."""

    __slots__ = ("symbol", "clock", "tau_s", "bids", "asks", "last_update", "stale", "updates",
                 "last_trade_px", "last_trade_qty", "snapshots")

    def __init__(self, symbol: str, clock: Clock = MONOTONIC, tau_s: float = 1.0) -> None:
        self.symbol = symbol
        self.clock = clock
        self.tau_s = tau_s
        self.bids = _Side(-1.0)
        self.asks = _Side(1.0)
        self.last_update: float | None = None   # clock time of the last snapshot/update/trade
        self.stale = True                       # until the first snapshot
        self.updates = 0
        self.snapshots = 0
        self.last_trade_px: float | None = None
        self.last_trade_qty: float | None = None

    def _side(self, side: str) -> _Side:
        if side == BID:
            return self.bids
        if side == OFFER:
            return self.asks
        raise ValueError(f"book side must be '0' (bid) or '1' (offer), not {side!r}")

    # -- building
    def apply_snapshot(self, bids: Levels, asks: Levels) -> None:
        """Replace the book: ``bids``/``asks`` are iterables of (px, qty)."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            side.clear()
            for px, qty in levels:
                side.set_level(side.sign * float(px), float(qty))
            side.rebuild()
        self.last_update = self.clock.now()
        self.stale = False
        self.snapshots += 1

    def apply_update(self, action: str, side: str, px: float, qty: float | None) -> None:
        """One incremental entry: action '0' new / '1' change / '2' delete."""
        if action == DELETE:
            after = 0.0
        elif action == CHANGE or action == NEW:
            after = float(qty or 0.0)
        else:
            raise ValueError(f"MDUpdateAction must be '0', '1' or '2', not {action!r}")
        if side == BID:
            self.apply_level(0, float(px), after)
        elif side == OFFER:
            self.apply_level(1, float(px), after)
        else:
            raise ValueError(f"book side must be '0' (bid) or '1' (offer), not {side!r}")

    def apply_level(self, ask: int, px: float, qty: float, now: float | None = None) -> None:
        """The numeric form of ``apply_update`` (a replay's hot path, millions per second of
        market time): ``ask`` 0 bid / 1 offer, ``qty`` the level's new total (<= 0 deletes);
        ``now`` the clock's time when the caller has it (saves the clock call).
        No cumulative rebuild here (see ``_Side.cum``)."""
        if ask:
            s = self.asks
            key = px
        else:
            s = self.bids
            key = -px
        levels = s.qty
        before = levels.get(key, 0.0)
        if now is None:
            now = self.clock.now()
        if qty > 0.0:
            if before:                             # a change; a decrease at the touch depletes it
                if qty < before and s.keys[0] == key:
                    s.deplete(before - qty, now, self.tau_s)
            else:
                insort(s.keys, key)
            levels[key] = qty
        elif before:                               # a delete; before > 0: the key is in keys
            del levels[key]
            keys = s.keys
            if keys[0] == key:
                s.deplete(before, now, self.tau_s)
                del keys[0]
            else:
                i = bisect_left(keys, key)
                if i < len(keys) and keys[i] == key:
                    del keys[i]
        s.dirty = True
        self.last_update = now
        self.updates += 1

    def on_trade(self, px: float, qty: float) -> None:
        self.last_trade_px = float(px)
        self.last_trade_qty = float(qty)
        self.last_update = self.clock.now()

    def mark_stale(self) -> None:
        self.stale = True

    # -- queries
    def best_bid(self) -> tuple[float, float] | None:
        b = self.bids
        return (-b.keys[0], b.qty[b.keys[0]]) if b.keys else None

    def best_ask(self) -> tuple[float, float] | None:
        a = self.asks
        return (a.keys[0], a.qty[a.keys[0]]) if a.keys else None

    def mid(self) -> float | None:
        if self.bids.keys and self.asks.keys:
            return 0.5 * (self.asks.keys[0] - self.bids.keys[0])
        return None

    def levels(self, side: str, n: int | None = None) -> list[tuple[float, float]]:
        s = self._side(side)
        keys = s.keys if n is None else s.keys[:n]
        return [(s.sign * k, s.qty[k]) for k in keys]

    def qty_available(self, order_side: str, limit_px: float | None) -> float:
        """Displayed quantity an order can take: buy -> asks at <= limit; sell -> bids at >= limit."""
        s = self.asks if order_side == BUY else self.bids
        cum = s.cum
        if not cum:
            return 0.0
        if limit_px is None:
            return cum[-1]
        i = bisect_right(s.keys, s.sign * limit_px + _EPS)
        return cum[i - 1] if i else 0.0

    def sweep_price(self, order_side: str, qty: float) -> float | None:
        """The worst price needed to fill ``qty`` against displayed depth, or None if too little."""
        s = self.asks if order_side == BUY else self.bids
        i = bisect_left(s.cum, qty - _EPS)
        if i >= len(s.cum):
            return None
        return s.sign * s.keys[i]

    def touch_depletion_rate(self, side: str) -> float:
        """Quantity per second removed at this side's best price (trades + cancels), decayed."""
        return self._side(side).rate_at_time(self.clock.now(), self.tau_s)

    def snapshot(self) -> dict:
        bb, ba = self.best_bid(), self.best_ask()
        return {
            "bid": bb[0] if bb else None, "bid_qty": bb[1] if bb else None,
            "ask": ba[0] if ba else None, "ask_qty": ba[1] if ba else None,
            "levels": [len(self.bids.keys), len(self.asks.keys)],
            "stale": self.stale, "updates": self.updates,
            "touch_depletion_per_s": {"bid": round(self.touch_depletion_rate(BID), 3),
                                      "ask": round(self.touch_depletion_rate(OFFER), 3)},
            "last_trade": self.last_trade_px,
        }
