"""Background order flow of other participants: a seeded random model, sans-IO.

``FlowModel`` decides (which symbol, what order, when); ``FlowDriver`` is the thread
that sleeps until the next arrival (Event.wait, never a spin) and applies it to the
venue under the venue's lock. Per symbol, arrivals are Poisson at ``rate_per_s``:
- ``cancel_fraction``: cancel one of our resting orders (uniformly chosen),
- ``marketable_fraction``: an IOC that takes liquidity at the opposite touch (a few ticks
  through it), size around ``mean_qty``,
- otherwise a passive limit order 0..``max_offset_ticks`` behind its side's quote around
  an anchor (at ``max_resting_per_symbol`` one of ours is canceled first) that drifts with the mid but is pulled back to the reference price
  (``mean_reversion``), so the book stays two-sided and roughly centred.
"""
from __future__ import annotations

import itertools
import random
import threading
from typing import Callable

from sim_exchange.config import FlowConfig
from gateway.core.matching.engine import BUY, IOC, LIMIT, SELL, MatchingEngine

FLOW_OWNER_PREFIX = "flow:"


class FlowModel:
    def __init__(self, engine: MatchingEngine, config: FlowConfig, seed: int, owner: str = "flow:sim") -> None:
        self.engine = engine
        self.cfg = config
        self.rng = random.Random(seed)
        self.owner = owner
        self.symbols = sorted(engine.instruments)
        self._ids = itertools.count(1)
        self._resting: dict[str, list[str]] = {s: [] for s in self.symbols}  # ClOrdIDs, maybe done
        self.actions = {"limit": 0, "marketable": 0, "cancel": 0}
        # The price the anchor is pulled back to, in ticks: the instrument's ref_price, or,
        # with the cross-venue market on, the fair value this venue's quoter shows.
        self.reference: Callable[[str], float] | None = None

    # ---------------------------------------------------------------- initial book
    def seed_book(self) -> list:
        """``initial_levels`` per side of ``level_qty`` each, spread ``spread_ticks`` around ref."""
        events: list = []
        for symbol in self.symbols:
            inst = self.engine.instruments[symbol]
            bid_top = inst.ref_ticks - (self.cfg.spread_ticks + 1) // 2
            ask_top = bid_top + self.cfg.spread_ticks
            for i in range(self.cfg.initial_levels):
                if bid_top - i > 0:
                    events += self._limit(symbol, BUY, bid_top - i, self.cfg.level_qty)
                events += self._limit(symbol, SELL, ask_top + i, self.cfg.level_qty)
        return events

    # ---------------------------------------------------------------- arrivals
    def next_delay(self) -> float:
        """Seconds until the next arrival on any symbol (superposed Poisson processes)."""
        rate = self.cfg.rate_per_s * len(self.symbols)
        return self.rng.expovariate(rate) if rate > 0 else float("inf")

    def step(self) -> list:
        """One arrival: pick the symbol and the action, apply it to the engine."""
        symbol = self.symbols[self.rng.randrange(len(self.symbols))]
        u = self.rng.random()
        if u < self.cfg.cancel_fraction and self._prune(symbol):
            self.actions["cancel"] += 1
            return self._cancel(symbol)
        if u < self.cfg.cancel_fraction + self.cfg.marketable_fraction:
            out = self._marketable(symbol)
            if out:
                self.actions["marketable"] += 1
                return out
        self.actions["limit"] += 1
        return self._passive(symbol)

    # ---------------------------------------------------------------- actions
    def _size(self) -> int:
        return max(1, round(self.rng.expovariate(1.0 / self.cfg.mean_qty)))

    def _anchor(self, symbol: str) -> float:
        ref = self.reference(symbol) if self.reference else self.engine.instruments[symbol].ref_ticks
        bid, ask = self.engine.best_bid(symbol), self.engine.best_ask(symbol)
        if bid is None and ask is None:
            mid = ref
        elif bid is None:
            mid = ask - self.cfg.spread_ticks / 2
        elif ask is None:
            mid = bid + self.cfg.spread_ticks / 2
        else:
            mid = (bid + ask) / 2
        return mid + self.cfg.mean_reversion * (ref - mid)

    def _passive(self, symbol: str) -> list:
        bid, ask = self.engine.best_bid(symbol), self.engine.best_ask(symbol)
        # An empty side is refilled first: the book must stay two-sided.
        if bid is None and ask is not None:
            side = BUY
        elif ask is None and bid is not None:
            side = SELL
        else:
            side = BUY if self.rng.random() < 0.5 else SELL
        anchor = self._anchor(symbol)
        half = self.cfg.spread_ticks / 2
        offset = self.rng.randint(0, self.cfg.max_offset_ticks)
        if side == BUY:
            price = int(anchor - half) - offset
            if ask is not None:
                price = min(price, ask - 1)
        else:
            price = int(-(-(anchor + half) // 1)) + offset
            if bid is not None:
                price = max(price, bid + 1)
        if price <= 0:
            return []
        events: list = []
        if len(self._resting[symbol]) >= self.cfg.max_resting_per_symbol and self._prune(symbol) \
                and len(self._resting[symbol]) >= self.cfg.max_resting_per_symbol:
            events += self._cancel(symbol)
        return events + self._limit(symbol, side, price, self._size())

    def _marketable(self, symbol: str) -> list:
        side = BUY if self.rng.random() < 0.5 else SELL
        touch = self.engine.best_ask(symbol) if side == BUY else self.engine.best_bid(symbol)
        if touch is None:
            return []
        through = self.rng.randint(0, 2)
        price = touch + through if side == BUY else touch - through
        if price <= 0:
            return []
        return self._order(symbol, side, price, self._size(), IOC)

    def _cancel(self, symbol: str) -> list:
        ids = self._resting[symbol]
        idx = self.rng.randrange(len(ids))
        orig = ids.pop(idx)
        events = self.engine.cancel(self.owner, self._next_id(), orig)
        self.engine.forget(self.owner, orig)
        return events

    def _prune(self, symbol: str) -> bool:
        """Drop (and let the engine forget) our finished orders; True if any remain resting."""
        alive = []
        for c in self._resting[symbol]:
            if self.engine.forget(self.owner, c):
                continue
            if self.engine.order(self.owner, c) is not None:
                alive.append(c)
        self._resting[symbol] = alive
        return bool(alive)

    def _limit(self, symbol: str, side: str, price_ticks: int, qty: int) -> list:
        return self._order(symbol, side, price_ticks, qty, "0")

    def _order(self, symbol: str, side: str, price_ticks: int, qty: int, tif: str) -> list:
        cl = self._next_id()
        inst = self.engine.instruments[symbol]
        events = self.engine.new_order(self.owner, cl, symbol, side, qty, LIMIT, inst.to_price(price_ticks), tif)
        if tif == "0":
            self._resting[symbol].append(cl)
        else:
            self.engine.forget(self.owner, cl)      # IOC: already finished
        return events

    def _next_id(self) -> str:
        return f"F{next(self._ids)}"


class FlowDriver:
    """The venue's flow thread: wait for the next arrival, then apply it via ``apply``.

    ``apply(fn)`` runs ``fn()`` (which returns engine events) under the venue's lock and
    dispatches the events. The wait is an Event.wait, so stop() ends it at once.
    """

    def __init__(self, model: FlowModel, apply: Callable[[Callable[[], list]], None], name: str = "flow") -> None:
        self.model = model
        self.apply = apply
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            delay = self.model.next_delay()
            if delay == float("inf"):
                return
            if self._stop.wait(min(delay, 3600.0)):
                return
            self.apply(self.model.step)
