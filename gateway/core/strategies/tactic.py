"""What every round-trip tactic shares: the Strategy plumbing around its ``RoundTripBook``.

A tactic subclasses ``RoundTripTactic`` and writes its signal (``on_book``, and
``on_trade`` when it reads the tape). Reports, timers, ``stop``/``is_flat`` (how a driver
ends a run: ``stop()``, then reports and timers until ``is_flat()``) and ``stats`` go
through the tactic's ``RoundTripBook`` here, the same way for every tactic.
"""
from __future__ import annotations

from typing import Any

from gateway.core.strategies.base import Command, MarketView, OrderReport, TradePrinted
from gateway.core.strategies.roundtrip import RoundTripBook


class RoundTripTactic:
    """Implements ``gateway.core.strategies.base.Strategy``; call ``stop()`` before ending a run.

    ``cfg`` needs ``name``, ``id_prefix``, ``symbols``, ``timer_interval_s`` and ``exits``.
    """

    def __init__(self, cfg: Any, counts: dict[str, int]) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.timer_interval_s = cfg.timer_interval_s
        self.trips = RoundTripBook(cfg.name, cfg.exits, cfg.id_prefix)
        self._symbols = set(cfg.symbols)
        self.counts = counts

    def on_trade(self, ev: TradePrinted, market: MarketView) -> list[Command]:
        return []

    def on_report(self, ev: OrderReport, market: MarketView) -> list[Command]:
        return self.trips.on_report(ev, market)

    def on_timer(self, now: float, market: MarketView) -> list[Command]:
        return self.trips.on_market(now, market)

    def stop(self, now: float, market: MarketView) -> list[Command]:
        return self.trips.stop(now, market)

    def is_flat(self) -> bool:
        return self.trips.is_flat()

    def stats(self) -> dict:
        return {"tactic": self.name, "signals": dict(self.counts), **self.trips.stats(),
                **self.extra_stats(), "recent": self.trips.trip_dicts(last=10)}

    def extra_stats(self) -> dict:
        """A tactic's own figures for ``stats()`` (JSON-safe)."""
        return {}
