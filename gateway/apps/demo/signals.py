"""The scalping signal rule: seeded, deterministic for a given market (no I/O).

On every change of a symbol's consolidated touch the rule draws, always in the same
order, a fire/no-fire number, a side number and a size, so the random stream does not
depend on which orders were actually sent. It fires with probability p; the side
follows the mid (up -> buy at the best ask, down -> sell at the best bid, unchanged ->
the side draw); the limit is the touch price (an IOC at the touch). Orders are
bounded by a minimum interval (max orders/s), one open order per symbol and a cap on
open orders overall.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from gateway.common.clock import Clock, MONOTONIC
from gateway.apps.demo.config import ClientConfig
from gateway.apps.demo.mdbook import Touch
from gateway.core.model import BUY, SELL


@dataclass(frozen=True, slots=True)
class Signal:
    symbol: str
    side: str        # BUY / SELL
    qty: float
    price: float     # the touch price at the signal: the intended price
    at: float        # monotonic seconds when the market data arrived


class SignalRule:
    def __init__(self, cfg: ClientConfig, clock: Clock = MONOTONIC) -> None:
        self.cfg = cfg
        self.clock = clock
        self.rng = random.Random(cfg.seed)
        self.weights = cfg.size_weights or [1.0] * len(cfg.sizes)
        self.symbols = set(cfg.symbols)
        self.min_interval = 1.0 / cfg.max_orders_per_s
        self.last_touch: dict[str, Touch] = {}
        self.last_fired = float("-inf")
        self.counts = {"touch_changes": 0, "fired": 0, "skipped_busy": 0, "skipped_rate": 0,
                       "skipped_crossed": 0}

    def on_touch(self, symbol: str, touch: Touch | None, busy_symbols: set[str] | frozenset = frozenset(),
                 in_flight: int = 0, at: float | None = None) -> Signal | None:
        """Feed the current consolidated touch; a Signal when the rule fires."""
        if symbol not in self.symbols or touch is None:
            return None
        prev = self.last_touch.get(symbol)
        if prev is not None and prev.key() == touch.key():
            return None
        self.last_touch[symbol] = touch
        self.counts["touch_changes"] += 1
        fire_u, side_u = self.rng.random(), self.rng.random()
        qty = self.rng.choices(self.cfg.sizes, weights=self.weights)[0]
        if prev is None or fire_u >= self.cfg.signal_probability:
            return None
        if touch.bid >= touch.ask:
            self.counts["skipped_crossed"] += 1  # venues disagree: a locked/crossed consolidated book
            return None
        now = self.clock.now() if at is None else at
        if symbol in busy_symbols or in_flight >= self.cfg.max_in_flight:
            self.counts["skipped_busy"] += 1
            return None
        if now - self.last_fired < self.min_interval:
            self.counts["skipped_rate"] += 1
            return None
        if touch.mid > prev.mid:
            side = BUY
        elif touch.mid < prev.mid:
            side = SELL
        else:
            side = BUY if side_u < 0.5 else SELL
        self.last_fired = now
        self.counts["fired"] += 1
        return Signal(symbol, side, float(qty), touch.ask if side == BUY else touch.bid, now)
