"""OrderStatusRequest (35=H) answers and the venue's per-order counters, shared by both engines.

``status_report`` turns an engine order (found by any ClOrdID of its chain, else by
OrderID) into an ExecutionReport with ExecType I (Order Status) and the order's current
state; an order the venue does not know gets OrdStatus 8 (Rejected) with Text
"unknown order". The report echoes the request's ClOrdID (11), which is how the
requester finds its order, and OrdStatusReqID (790) when present (``fixtext`` and
``fixmsgs`` append it).

``OrderLog`` counts what a counterparty sent: NewOrderSingles per ClOrdID (fresh ones
and PossDup resends apart) and fills per counterparty and symbol, so a chaos run can
check "no venue order was sent twice" and "positions equal the venue's fills".
"""
from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from gateway.core.matching.engine import MatchingEngine
from gateway.core.matching.events import REJECTED, TRADE, ExecReport

ORDER_STATUS = "I"
UNKNOWN_TEXT = "unknown order"

_status_ids = itertools.count(1)


def find_order(engine: MatchingEngine, owner: str, cl_ord_id: str | None, order_id: str | None) -> Any:
    order = engine.order(owner, cl_ord_id) if cl_ord_id is not None else None
    if order is None and order_id:
        order = next((o for (o_owner, _), o in engine._orders.items()          # noqa: SLF001 - read only
                      if o_owner == owner and o.order_id == order_id), None)
    return order


def status_report(engine: MatchingEngine, owner: str, cl_ord_id: str, order_id: str | None,
                  symbol: str | None, side: str | None) -> ExecReport:
    """ExecType I for ``cl_ord_id`` (or ``order_id``) of ``owner``: current state or unknown."""
    exec_id = f"{engine.id_prefix}-S{next(_status_ids)}"
    order = find_order(engine, owner, cl_ord_id, order_id)
    now = engine.clock.now()
    if order is None:
        return ExecReport(owner=owner, order_id=order_id or "NONE", cl_ord_id=cl_ord_id, orig_cl_ord_id=None,
                          exec_id=exec_id, exec_type=ORDER_STATUS, ord_status=REJECTED, symbol=symbol or "",
                          side=side or "1", ord_type="2", tif="0", order_qty=0, price=None, cum_qty=0,
                          leaves_qty=0, avg_px=0.0, text=UNKNOWN_TEXT, time=now)
    inst = engine.instrument(order.symbol)
    to_px = inst.to_price if inst else float
    avg = to_px(order.notional / order.cum_qty) if order.cum_qty else 0.0
    return ExecReport(owner=owner, order_id=order.order_id, cl_ord_id=cl_ord_id, orig_cl_ord_id=None,
                      exec_id=exec_id, exec_type=ORDER_STATUS, ord_status=order.status, symbol=order.symbol,
                      side=order.side, ord_type=order.ord_type, tif=order.tif, order_qty=order.qty,
                      price=to_px(order.price) if order.price is not None else None, cum_qty=order.cum_qty,
                      leaves_qty=order.leaves, avg_px=avg, time=now)


class OrderLog:
    """Per-counterparty counters of what reached the venue (for invariants, not for speed)."""

    def __init__(self) -> None:
        self.fresh: Counter = Counter()        # (owner, ClOrdID) -> NewOrderSingles without PossDup
        self.possdup: Counter = Counter()      # (owner, ClOrdID) -> NewOrderSingles with PossDup
        self.fills: dict[str, dict[str, float]] = {}   # owner -> symbol -> signed filled qty
        self.status_requests = 0

    def new_order(self, owner: str, cl_ord_id: str, poss_dup: bool) -> None:
        counts = self.possdup if poss_dup else self.fresh
        key = (owner, cl_ord_id)
        counts[key] = counts.get(key, 0) + 1      # not Counter's += (a __missing__ call per new id)

    def report(self, er: ExecReport) -> None:
        if er.exec_type == TRADE:
            signed = er.last_qty if er.side == "1" else -er.last_qty
            per = self.fills.setdefault(er.owner, {})
            per[er.symbol] = per.get(er.symbol, 0.0) + signed

    def snapshot(self) -> dict:
        return {"new_order_ids": len(self.fresh),
                "new_orders_fresh": sum(self.fresh.values()),
                "new_orders_possdup": sum(self.possdup.values()),
                "new_order_dupes": {f"{o}:{c}": n for (o, c), n in self.fresh.items() if n > 1},
                "client_fills": {o: dict(s) for o, s in self.fills.items()},
                "status_requests": self.status_requests}
