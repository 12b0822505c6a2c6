"""The demo's round-trip scalper (issue 14): enter on a book condition, exit on target/stop/time.

Signals, evaluated on every book update of a traded symbol (``signal`` in the config):
- ``imbalance``: the consolidated touch (every live venue) shows ``imbalance_ratio`` times
  more quantity on the bid than on the ask -> buy at the ask (buyers outnumber sellers,
  the ask is expected to go); the mirror image -> sell at the bid.
- ``lead_move``: the ``lead_venue``'s mid moved by ``lead_move_ticks`` or more since its
  previous update -> trade in that direction at the other venues' touch, which has not
  moved yet (the stale quotes the latency race is about).

The entry is one IOC limit at the touch (``venue`` pins it, else the gateway's router
chooses); the exit is the ``RoundTripBook`` ladder (target / stop / max holding time).
Gates: spread at most ``max_spread_ticks``, ``cooldown_s`` between entries of a symbol,
at most ``max_open_trips_per_symbol`` trips alive per symbol, nothing after ``stop()``.
Deterministic: no randomness, no clock reads; the same events give the same commands.
"""
from __future__ import annotations

from gateway.core.strategies.base import BUY, SELL, BookUpdated, Command, MarketView
from gateway.core.strategies.config import ScalperConfig
from gateway.core.strategies.tactic import RoundTripTactic
from gateway.core.book import L2Book
from gateway.core.strategies.touch import Quote, best_ask, best_bid, best_of, live_books, to_ticks


class Scalper(RoundTripTactic):
    def __init__(self, cfg: ScalperConfig) -> None:
        super().__init__(cfg, {"signals": 0, "skipped_cooldown": 0, "skipped_busy": 0, "skipped_spread": 0})
        self._last_entry: dict[str, float] = {}
        self._lead_mid: dict[str, float] = {}

    # ------------------------------------------------------------------ Strategy
    def on_book(self, ev: BookUpdated, market: MarketView) -> list[Command]:
        if ev.symbol not in self._symbols:
            return []
        out = self.trips.on_market(ev.at, market, ev.symbol)
        side, detail = self._signal(ev, market)
        if side is not None:
            out += self._enter(ev.symbol, side, detail, ev.at, market)
        return out

    # ------------------------------------------------------------------ signals
    def _signal(self, ev: BookUpdated, market: MarketView) -> tuple[str | None, dict]:
        if self.cfg.signal == "imbalance":
            return self._imbalance(ev.symbol, market)
        if ev.venue != self.cfg.lead_venue:
            return None, {}
        return self._lead_move(ev, market)

    def _imbalance(self, symbol: str, market: MarketView) -> tuple[str | None, dict]:
        bid, ask = best_bid(market, symbol), best_ask(market, symbol)
        if bid is None or ask is None or min(bid.qty, ask.qty) < max(self.cfg.min_touch_qty, 1e-9):
            return None, {}
        r = self.cfg.imbalance_ratio
        side = BUY if bid.qty >= r * ask.qty else SELL if ask.qty >= r * bid.qty else None
        return side, {"signal": "imbalance", "bid_qty": bid.qty, "ask_qty": ask.qty}

    def _lead_move(self, ev: BookUpdated, market: MarketView) -> tuple[str | None, dict]:
        book = market.book(ev.venue, ev.symbol)
        mid = book.mid() if book is not None and not book.stale else None
        if mid is None:
            return None, {}
        prev = self._lead_mid.get(ev.symbol)
        self._lead_mid[ev.symbol] = mid
        if prev is None:
            return None, {}
        moved = to_ticks(mid - prev, market.tick_size(ev.symbol))
        if abs(moved) < self.cfg.lead_move_ticks - 1e-9:
            return None, {}
        return (BUY if moved > 0 else SELL), {"signal": "lead_move", "lead_move_ticks": moved}

    # ------------------------------------------------------------------ entry
    def _enter(self, symbol: str, side: str, detail: dict, now: float, market: MarketView) -> list[Command]:
        self.counts["signals"] += 1
        if self.trips.busy(symbol) >= self.cfg.max_open_trips_per_symbol:
            self.counts["skipped_busy"] += 1
            return []
        if now - self._last_entry.get(symbol, float("-inf")) < self.cfg.cooldown_s:
            self.counts["skipped_cooldown"] += 1
            return []
        books = live_books(market, symbol)      # read once: the touch and the spread come from it
        touch = self._entry_touch(books, side)
        tick = market.tick_size(symbol)
        bid, ask = best_of(books, True), best_of(books, False)
        if touch is None or bid is None or ask is None or to_ticks(ask.price - bid.price, tick) > self.cfg.max_spread_ticks:
            self.counts["skipped_spread"] += 1
            return []
        self._last_entry[symbol] = now
        detail = {**detail, "venues_at_touch": list(touch.venues)}
        return self.trips.open_single(symbol=symbol, side=side, qty=self.cfg.qty, price=touch.price, tick=tick,
                                      signal_at=now, signal_px=touch.price, venue=self.cfg.venue, detail=detail)

    def _entry_touch(self, books: list[tuple[str, L2Book]], side: str) -> Quote | None:
        """The touch to take: for a lead move, the other venues' (stale) quote; else the consolidated one."""
        if self.cfg.signal == "lead_move":
            return _touch_excluding(books, side, self.cfg.lead_venue)
        return best_of(books, side != BUY)


def _touch_excluding(books: list[tuple[str, L2Book]], side: str, venue: str | None) -> Quote | None:
    """The best quote of ``side``'s touch over the live ``books`` but ``venue``'s."""
    best: Quote | None = None
    for v, book in books:
        if v == venue:
            continue
        top = book.best_ask() if side == BUY else book.best_bid()
        if top is None:
            continue
        px, q = top
        if best is None or (px < best.price if side == BUY else px > best.price):
            best = Quote(px, q, (v,))
        elif px == best.price:
            best = Quote(px, best.qty + q, best.venues + (v,))
    return best
