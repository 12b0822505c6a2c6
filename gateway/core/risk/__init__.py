"""Pre-trade risk checks, positions/PnL and the kill switch (issue 5).

``RiskEngine(cfg, clock, mark_price=None)`` implements ``gateway.core.model.RiskGate``;
``RiskConfig`` is the ``[risk]`` config section; ``format_snapshot`` renders
``RiskEngine.snapshot()`` for people (``fixgw status``).

How the gateway wires it (the engine is sans-IO and NOT thread-safe: call it from one
thread, or under the lock that already guards the gateway's order map):

- New order (D): ``rej = risk.check(intent)`` before routing. On a reject send an
  ExecutionReport 150=8/39=8 with 103=rej.ord_rej_reason and 58=rej.text. Risk is the
  single authority for duplicate ClOrdIDs (per OMS session, every ClOrdID checked today):
  the order map need not check again, but must not let a rejected duplicate overwrite or
  end the live order that owns that ClOrdID.
- Cancel/replace (G): ``risk.check_replace(orig_intent, new_intent)``; on a reject answer
  OrderCancelReject (35=9, 434=2, 102=99, 58=rej.text). Cancels (F) never go through risk,
  so they work when HALTED.
- Venue fill: ``risk.on_fill(oms_intent, last_qty, last_px)`` (the OMS order's intent, also
  for SOR children). Terminal OMS order (filled, canceled, expired, rejected by a venue):
  ``risk.on_order_done(oms_intent, leaves_qty)``; this releases the open exposure.
- Venue reject of one of our orders (39=8 from a venue): ``risk.on_venue_reject(venue)``.
- Marks: ``mark_price(symbol)`` reads the live books (mid or last trade) and is called on
  checks and fills; also call ``risk.on_mark(symbol, px)`` on book updates or
  ``risk.refresh_marks()`` on a timer (e.g. every 50 ms) so the loss triggers see price moves
  without fills.
- ``risk.on_trip = callback``: called once per trip with the reason (numbers included);
  cancel every open venue order, tell each OMS session (News 35=B or BusinessMessageReject)
  and log the reason. Admin: ``risk.trip(reason, by=user)``, ``risk.reset(by=user)``,
  ``risk.reduce_only(by=user)``, ``risk.snapshot()``.
"""
from gateway.core.risk.config import RiskConfig, SessionRisk, SymbolRisk
from gateway.core.risk.engine import ACTIVE, HALTED, REDUCING, RiskEngine
from gateway.core.risk.report import format_snapshot

__all__ = ["RiskConfig", "SessionRisk", "SymbolRisk", "RiskEngine", "ACTIVE", "REDUCING", "HALTED",
           "format_snapshot"]
