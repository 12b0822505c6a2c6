"""Momentum scalping: ride the start of a burst of aggressive flow, only on a fast venue.

Model: every trade print of a traded symbol, on any venue, is aggressive volume with a
side (``aggressor_side`` BUY = a buyer lifted the offer). Two back-to-back windows of
``window_s`` are compared: ``v_now`` (the last window) and ``v_prev`` (the one before).
A burst starts when
- ``v_now >= min_window_volume``,
- ``v_now >= accel_ratio * max(v_prev, min_base_volume)`` (acceleration, not just volume),
- one side makes at least ``min_side_share`` of ``v_now`` (the burst's direction),
and the previous evaluation was not already in a burst (enter at the start, once).

The entry goes in the burst's direction, one IOC limit at the consolidated touch, pinned
to the venue showing that price with the lowest live round trip (``MarketView.rtt_us``);
if that venue's RTT is not under ``max_rtt_us`` there is no entry (counted as
``skipped_rtt``): a slow venue arrives after the burst has taken the quote. Exits: the
``RoundTripBook`` ladder (target / stop / time). Deterministic, no clock reads.
"""
from __future__ import annotations

from collections import deque
from math import isfinite

from gateway.core.strategies.base import BUY, SELL, BookUpdated, Command, MarketView, TradePrinted
from gateway.core.strategies.config import MomentumConfig
from gateway.core.strategies.tactic import RoundTripTactic
from gateway.core.strategies.touch import live_books, touch_for


class Momentum(RoundTripTactic):
    def __init__(self, cfg: MomentumConfig) -> None:
        super().__init__(cfg, {"bursts": 0, "entries": 0, "skipped_rtt": 0, "skipped_no_venue": 0,
                               "skipped_busy": 0, "skipped_cooldown": 0})
        self._tape: dict[str, deque] = {s: deque() for s in cfg.symbols}   # (at, qty, +1 buy / -1 sell)
        self._in_burst: dict[str, bool] = {}
        self._last_entry: dict[str, float] = {}

    # ------------------------------------------------------------------ Strategy
    def on_book(self, ev: BookUpdated, market: MarketView) -> list[Command]:
        return self.trips.on_market(ev.at, market, ev.symbol) if ev.symbol in self._symbols else []

    def on_trade(self, ev: TradePrinted, market: MarketView) -> list[Command]:
        if ev.symbol not in self._symbols or ev.aggressor_side not in (BUY, SELL):
            return []
        self._tape[ev.symbol].append((ev.at, ev.qty, 1 if ev.aggressor_side == BUY else -1))
        burst = self.burst(ev.symbol, ev.at)
        was_in_burst = self._in_burst.get(ev.symbol, False)
        self._in_burst[ev.symbol] = burst is not None
        if burst is None or was_in_burst:        # only a burst's start enters
            return []
        self.counts["bursts"] += 1
        return self._enter(ev.symbol, burst, ev.at, market)

    def on_timer(self, now: float, market: MarketView) -> list[Command]:
        for s in self._symbols:
            if self._in_burst.get(s) and self.burst(s, now) is None:
                self._in_burst[s] = False     # a quiet spell ends the burst even without trades
        return self.trips.on_market(now, market)

    # ------------------------------------------------------------------ burst detection
    def burst(self, symbol: str, now: float) -> dict | None:
        """The burst in progress at ``now`` (side, volumes, acceleration), or None."""
        w = self.cfg.window_s
        tape = self._tape[symbol]
        while tape and tape[0][0] <= now - 2 * w:
            tape.popleft()      # only two windows are ever looked at: memory stays bounded
        v_now = v_prev = net = 0.0
        for at, qty, sign in tape:
            if at > now - w:
                v_now += qty
                net += sign * qty
            else:
                v_prev += qty
        c = self.cfg
        if v_now < c.min_window_volume or v_now < c.accel_ratio * max(v_prev, c.min_base_volume):
            return None
        share = (v_now + abs(net)) / (2 * v_now)      # the dominant side's share of v_now
        if share < c.min_side_share:
            return None
        return {"side": BUY if net > 0 else SELL, "v_now": v_now, "v_prev": v_prev,
                "accel_per_s2": round((v_now - v_prev) / (w * w), 3), "side_share": round(share, 4)}

    # ------------------------------------------------------------------ entry
    def _enter(self, symbol: str, burst: dict, now: float, market: MarketView) -> list[Command]:
        if self.trips.busy(symbol) >= self.cfg.max_open_trips_per_symbol:
            self.counts["skipped_busy"] += 1
            return []
        if now - self._last_entry.get(symbol, float("-inf")) < self.cfg.cooldown_s:
            self.counts["skipped_cooldown"] += 1
            return []
        side = burst["side"]
        pick = self.fastest_venue(symbol, side, market)
        if pick is None:
            self.counts["skipped_no_venue"] += 1
            return []
        venue, px, rtt = pick
        if not rtt < self.cfg.max_rtt_us:
            self.counts["skipped_rtt"] += 1
            return []
        self._last_entry[symbol] = now
        self.counts["entries"] += 1
        detail = {"signal": "burst", **burst, "venue_rtt_us": round(rtt, 1)}
        return self.trips.open_single(symbol=symbol, side=side, qty=self.cfg.qty, price=px,
                                      tick=market.tick_size(symbol), signal_at=now, signal_px=px, venue=venue,
                                      detail=detail)

    @staticmethod
    def fastest_venue(symbol: str, side: str, market: MarketView) -> tuple[str, float, float] | None:
        """(venue, touch price, rtt_us) of the fastest venue showing the consolidated touch."""
        q = touch_for(market, symbol, side)
        if q is None:
            return None
        best: tuple[str, float, float] | None = None
        for venue, _ in live_books(market, symbol):
            if venue not in q.venues:
                continue
            rtt = market.rtt_us(venue)
            rtt = rtt if isfinite(rtt) else float("inf")
            if best is None or rtt < best[2]:
                best = (venue, q.price, rtt)
        return best
