"""Tiny strategies for the backtest tests (the real ones live in gateway/core/strategies).

``Scripted`` sends given commands at given replay times (on the first event at or after
each time) and records every report: the tests drive the models with it.
``TouchScalper`` is scalp-shaped: when the touch of any venue shows at least
``min_qty``, buy ``qty`` IOC at the best ask (router chooses), then sell IOC at the best
bid once filled; at most one order in flight.
"""
from __future__ import annotations

from gateway.core.strategies.base import BUY, IOC, SELL, PlaceOrder


class Scripted:
    name = "scripted"
    timer_interval_s = 0.0

    def __init__(self, script=()):
        self.script = sorted(script, key=lambda x: x[0])   # [(at, command), ...]
        self.reports = []
        self.books = 0
        self.trades = 0

    def _due(self, now):
        out = []
        while self.script and self.script[0][0] <= now:
            out.append(self.script.pop(0)[1])
        return out

    def on_book(self, ev, market):
        self.books += 1
        return self._due(ev.at)

    def on_trade(self, ev, market):
        self.trades += 1
        return self._due(ev.at)

    def on_report(self, ev, market):
        self.reports.append(ev)
        return []

    def on_timer(self, now, market):
        return self._due(now)

    def stats(self):
        return {"reports": len(self.reports)}


class TouchScalper:
    name = "touch_scalper"
    timer_interval_s = 0.5

    def __init__(self, symbol="SYM", qty=1.0, min_qty=5.0, every=50):
        self.symbol, self.qty, self.min_qty, self.every = symbol, float(qty), float(min_qty), int(every)
        self.n = 0
        self.pos = 0.0
        self.busy = False
        self.seq = 0
        self.sent = 0
        self.filled = 0

    def _order(self, side, px, reason):
        self.seq += 1
        self.busy = True
        self.sent += 1
        return [PlaceOrder(cl_ord_id=f"T{self.seq}", symbol=self.symbol, side=side, qty=self.qty, price=px,
                           tif=IOC, reason=reason)]

    def on_book(self, ev, market):
        self.n += 1
        if self.busy or self.n % self.every:
            return []
        book = market.book(ev.venue, ev.symbol)
        if book is None:
            return []
        if self.pos > 0:
            bb = book.best_bid()
            return self._order(SELL, bb[0], "exit") if bb else []
        ba = book.best_ask()
        if ba and ba[1] >= self.min_qty:
            return self._order(BUY, ba[0], "entry")
        return []

    def on_trade(self, ev, market):
        return []

    def on_report(self, ev, market):
        if ev.exec_type == "F":
            self.filled += 1
            self.pos += ev.last_qty if ev.cl_ord_id and self._last_side_buy(ev) else -ev.last_qty
        if ev.ord_status in ("2", "4", "8"):
            self.busy = False
        return []

    def _last_side_buy(self, ev):
        return self.pos <= 0

    def on_timer(self, now, market):
        return []

    def stats(self):
        return {"sent": self.sent, "fills": self.filled, "position": self.pos}
