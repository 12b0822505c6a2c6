"""Tiny builders for strategy tests: a MarketView fake over real L2Books, and reports."""
from __future__ import annotations

from gateway.common.clock import FakeClock
from gateway.core.book import L2Book
from gateway.core.strategies.base import BookUpdated, OrderReport, PlaceOrder, TradePrinted

SYM = "EURUSD"
TICK = 0.0001


class FakeMarket:
    """MarketView: venues, their books on one FakeClock, and RTTs set by the test."""

    def __init__(self, venues=("A", "B", "C"), clock: FakeClock | None = None, tick: float = TICK) -> None:
        self.clock = clock or FakeClock(100.0)
        self._venues = list(venues)
        self._books: dict[tuple[str, str], L2Book] = {}
        self.rtt: dict[str, float] = {}
        self.tick = tick

    def venues(self):
        return self._venues

    def book(self, venue, symbol):
        return self._books.get((venue, symbol))

    def rtt_us(self, venue):
        return self.rtt.get(venue, float("inf"))

    def tick_size(self, symbol):
        return self.tick

    # -- building
    def quote(self, venue, bids, asks, symbol=SYM) -> BookUpdated:
        """Replace a venue's book with (px, qty) levels; returns the event to feed."""
        book = self._books.setdefault((venue, symbol), L2Book(symbol, self.clock))
        book.apply_snapshot(bids, asks)
        return BookUpdated(venue=venue, symbol=symbol, at=self.clock.now())

    def trade(self, venue, px, qty, aggressor, symbol=SYM) -> TradePrinted:
        return TradePrinted(venue=venue, symbol=symbol, price=px, qty=qty, aggressor_side=aggressor,
                            at=self.clock.now())

    def advance(self, s: float) -> float:
        return self.clock.advance(s)


def fill(order: PlaceOrder, px: float | None = None, qty: float | None = None, at: float = 0.0,
         venue: str | None = "A") -> OrderReport:
    """The terminal report of an IOC: filled ``qty`` (default all) at ``px`` (default its limit)."""
    q = order.qty if qty is None else qty
    p = order.price if px is None else px
    status = "2" if q >= order.qty else ("4" if q == 0 else "4")
    return OrderReport(cl_ord_id=order.cl_ord_id, exec_type="F" if q > 0 else "4", ord_status=status,
                       last_qty=q, last_px=p if q > 0 else 0.0, cum_qty=q, leaves_qty=0.0,
                       venue=venue, text=None, at=at)


def miss(order: PlaceOrder, at: float = 0.0, venue: str | None = "A") -> OrderReport:
    return fill(order, qty=0, at=at, venue=venue)


def places(cmds) -> list[PlaceOrder]:
    return [c for c in cmds if isinstance(c, PlaceOrder)]
