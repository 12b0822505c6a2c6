"""Positions, average cost and PnL per symbol (average-cost method, no FIFO lots).

Adding to a position moves the average cost to the size-weighted mean; reducing it
realizes (fill price - average cost) on the closed quantity; a fill that flips the
position closes the old side at the average cost and opens the rest at the fill price.
Unrealized PnL is qty * (mark - avg_cost); the book keeps the total up to date by
deltas so the kill switch reads it in O(1).
"""
from __future__ import annotations


class Position:
    __slots__ = ("symbol", "qty", "avg_cost", "realized_pnl", "unrealized_pnl", "mark",
                 "open_buy", "open_sell", "open_notional")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.qty = 0.0            # signed: long > 0
        self.avg_cost = 0.0
        self.realized_pnl = 0.0
        self.unrealized_pnl = 0.0
        self.mark: float | None = None
        self.open_buy = 0.0       # quantity of open (passed, not yet filled or done) orders
        self.open_sell = 0.0
        self.open_notional = 0.0  # sum of open qty * order price, for gross exposure

    def apply_fill(self, signed_qty: float, px: float) -> float:
        """Book a fill; returns the PnL it realized."""
        q = self.qty
        new_q = q + signed_qty
        if q == 0.0 or (q > 0.0) == (signed_qty > 0.0):
            self.avg_cost = (self.avg_cost * abs(q) + px * abs(signed_qty)) / abs(new_q)
            realized = 0.0
        else:
            closed = min(abs(q), abs(signed_qty))
            realized = (px - self.avg_cost) * closed * (1.0 if q > 0.0 else -1.0)
            if new_q == 0.0:
                self.avg_cost = 0.0
            elif (new_q > 0.0) != (q > 0.0):
                self.avg_cost = px   # flipped: the remainder opened at this price
        self.qty = new_q
        self.realized_pnl += realized
        return realized

    def revalue(self) -> float:
        """Recompute unrealized PnL at the current mark; returns the change."""
        mark = self.mark
        value = self.qty * (mark - self.avg_cost) if mark is not None and self.qty else 0.0
        delta = value - self.unrealized_pnl
        self.unrealized_pnl = value
        return delta

    def exposure(self) -> float:
        """Gross exposure of the filled position at mark (average cost when unmarked)."""
        px = self.mark if self.mark is not None else self.avg_cost
        return abs(self.qty) * px

    def as_dict(self) -> dict:
        return {"qty": self.qty, "avg_cost": self.avg_cost, "realized_pnl": self.realized_pnl,
                "unrealized_pnl": self.unrealized_pnl, "mark": self.mark,
                "open_buy": self.open_buy, "open_sell": self.open_sell}
