"""Pre-trade risk checks, positions/PnL and the kill switch (issue 5).

``RiskEngine(cfg, clock, mark_price=None)`` implements ``gateway.core.model.RiskGate``;
``RiskConfig`` is the ``[risk]`` config section; ``format_snapshot`` renders
``RiskEngine.snapshot()`` for people (``fixgw status``).

How the gateway wires it (the engine is sans-IO and NOT thread-safe: call it from one
thread, or under the lock that already guards the gateway's order map):

- New order (D): ``rej = risk.check(intent)`` before routing. On a reject send an
  ExecutionReport 150=8/39=8 with 103=rej.ord_rej_reason and 58=rej.text. Risk refuses
  duplicate ClOrdIDs (per OMS session, every ClOrdID checked today), unless the caller's
  order index does it before risk is asked: the gateway's (``own_cl_ord_ids=False``; the
  index must not let a rejected duplicate overwrite or end the live order that owns that
  ClOrdID).
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
- Nothing is called back: ``trip``, ``on_fill``, ``on_mark``, ``refresh_marks`` and
  ``on_venue_reject`` RETURN a ``TradingStateChanged`` (gateway/core/model.py) once when the
  state changes (firm-wide, or one session suspended after its own venue rejects); the
  caller (gateway/core/hub.py) journals it, cancels every open order in scope and tells the
  OMS (News 35=B). Admin: ``risk.trip(reason, by=user)``, ``risk.reset(by=user, session=None)``,
  ``risk.reduce_only(by=user)``, ``risk.snapshot()``.
- Transactional intake: ``evaluate(intent)`` / ``evaluate_replace(orig, new)`` decide without
  booking; ``book(intent)`` / ``book_replace(orig, new)`` book after the journal write.
  ``check`` / ``check_replace`` do both at once (tests, simple callers).
"""
from gateway.core.risk.config import RiskConfig, SessionRisk, SymbolRisk
from gateway.core.risk.engine import ACTIVE, HALTED, REDUCING, RiskEngine
from gateway.core.risk.report import format_snapshot

__all__ = ["RiskConfig", "SessionRisk", "SymbolRisk", "RiskEngine", "ACTIVE", "REDUCING", "HALTED",
           "format_snapshot"]
