"""Every OMS order and its venue orders: the gateway's order state machine (sans-IO).

``OrderManager`` takes events (an accepted and routed order, a ``VenueExecutionReport``,
an OMS cancel or replace, a venue OrderCancelReject) and returns commands, keyword-only
slotted dataclasses (values, never changed once made; see gateway/core/hub.py) named as
orders to an edge: ``ReportToOms``, ``RejectOmsCancel``, ``SendNewOrder``, ``SendCancel``,
``SendReplace``, ``QueryOrderStatus``, plus
``RouteRemainder`` for its caller (gateway/core/hub.py) and whatever risk answers
(``TradingStateChanged``). No sockets, no clock of its own: the caller passes ids and
timestamps, so the journal can replay the same events after a crash
(gateway/core/journal.py) and tests drive it directly.

Invariants:
- every status change goes through ``move`` and the one ``TRANSITIONS`` table (OMS and
  venue orders alike); an illegal change raises ``OrderStateError`` and changes nothing;
  a venue report that would need one is counted (``unexpected_reports``) and not applied;
- every OMS order ends in exactly one terminal state the OMS is told about: filled,
  canceled, expired or rejected (``OmsOrder.done``);
- CumQty/AvgPx of an OMS order are the sums over its venue orders, taken from the venue's
  own CumQty/AvgPx, so a report replayed or resent after a crash cannot double count;
- a venue ExecID already applied to the same venue order is ignored (PossDup resends
  after a restart); the key includes the order because a restarted venue may reuse ExecIDs;
- the OMS ExecID of every state-changing report is decided here, ``<OrderID>-<k>`` where k
  counts the order's reports (``OmsOrder.reports``): replay drives the same methods in the
  same order, so a report re-sent after a restart (PossResend) carries the ExecID the OMS
  may already have booked. Status answers (ExecType I) change nothing and take theirs from
  the caller (``status_report(exec_id=...)``).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable, Final

from gateway.core.model import DAY, FOK, IOC, LIMIT, ChildOrder, OrderIntent
from gateway.core.risk.engine import RiskEngine

# OrdStatus (39) / ExecType (150) characters. ``Final``: compiled with mypyc, a literal is inlined and
# a table is a C global; without it every use is a lookup in the module's dict.
NEW: Final = "0"
PARTIAL: Final = "1"
FILLED: Final = "2"
CANCELED: Final = "4"
REPLACED: Final = "5"
PENDING_CANCEL: Final = "6"
REJECTED: Final = "8"
PENDING_NEW: Final = "A"
EXPIRED: Final = "C"
PENDING_REPLACE: Final = "E"
TRADE: Final = "F"
ORDER_STATUS: Final = "I"
TERMINAL: Final = frozenset((FILLED, CANCELED, REJECTED, EXPIRED))
STATUS_NAMES: Final = {NEW: "new", PARTIAL: "partially_filled", FILLED: "filled", CANCELED: "canceled",
                       REJECTED: "rejected", PENDING_NEW: "pending_new", EXPIRED: "expired",
                       PENDING_CANCEL: "pending_cancel", PENDING_REPLACE: "pending_replace"}
# CxlRejReason (102)
CXL_TOO_LATE: Final = "0"
CXL_UNKNOWN: Final = "1"
CXL_PENDING: Final = "3"
CXL_OTHER: Final = "99"
EPS: Final = 1e-9


@dataclass(slots=True, init=False)     # init=False: a native __init__ compiled (see model.py)
class VenueOrder:
    """One order on one venue (a child of an OMS order)."""
    parent: "OmsOrder"
    venue: str
    cl_ord_id: str               # our ClOrdID on the venue (changes on replace)
    qty: float
    price: float | None
    ord_type: str
    tif: str
    status: str = PENDING_NEW
    cum_qty: float = 0.0
    avg_px: float = 0.0
    venue_order_id: str | None = None
    sent_at: float = 0.0
    acked: bool = False
    reject_text: str | None = None
    cancel_pending: str | None = None   # our cancel request ClOrdID while one is open
    # The venue's ExecIDs applied to this order (a PossDup resend is ignored), and every venue
    # ClOrdID indexed for it besides ``cl_ord_id`` (cancels, replaces, the ids a replace retired):
    # what ``OrderManager.retire`` drops with it. None until there is one.
    exec_ids: list[str] | None = field(default=None, init=False, repr=False, compare=False)
    other_ids: list[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __init__(self, parent: OmsOrder, venue: str, cl_ord_id: str, qty: float, price: float | None,
                 ord_type: str, tif: str, status: str = PENDING_NEW, cum_qty: float = 0.0, avg_px: float = 0.0,
                 venue_order_id: str | None = None, sent_at: float = 0.0, acked: bool = False,
                 reject_text: str | None = None, cancel_pending: str | None = None) -> None:
        self.parent = parent
        self.venue = venue
        self.cl_ord_id = cl_ord_id
        self.qty = qty
        self.price = price
        self.ord_type = ord_type
        self.tif = tif
        self.status = status
        self.cum_qty = cum_qty
        self.avg_px = avg_px
        self.venue_order_id = venue_order_id
        self.sent_at = sent_at
        self.acked = acked
        self.reject_text = reject_text
        self.cancel_pending = cancel_pending
        self.exec_ids = None
        self.other_ids = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


@dataclass(slots=True)
class Request:
    """An OMS cancel or replace in flight at a venue (or a gateway-initiated cancel)."""
    kind: str                     # "cancel" | "replace" | "kill" | "day_end"
    order: "OmsOrder"
    oms_cl_ord_id: str | None     # the OMS's ClOrdID of the request (None for gateway cancels)
    oms_orig_cl_ord_id: str
    qty: float = 0.0
    price: float | None = None
    text: str | None = None
    new_intent: OrderIntent | None = None
    answered: bool = False        # the OMS got its one answer (a report with this ClOrdID or a reject)
    venue_cl_ord_id: str | None = None   # a replace: our ClOrdID of it at the venue (the latest one sent)


@dataclass(slots=True, init=False)     # init=False: a native __init__ compiled (see model.py)
class OmsOrder:
    intent: OrderIntent
    order_id: str                # the gateway's OrderID, what the OMS sees in 37
    status: str = PENDING_NEW
    cum_qty: float = 0.0
    avg_px: float = 0.0
    children: list[VenueOrder] = field(default_factory=list)
    policy: str = ""
    route_reason: str = ""
    text: str | None = None
    cancel_request: Request | None = None
    replace_request: Request | None = None
    retried: bool = False
    created_at: float = 0.0
    done_at: float = 0.0
    reports: int = 0             # state-changing reports made so far: the k of ExecID <order_id>-<k>
    # The FIX text of ``wire_intent``'s 55/54/38/40/[44]/59 (``wire.order_fields``), kept by the edge
    # that formats it first, so the order's later messages reuse it; not order state (not journaled,
    # not compared): a replace puts a new intent, whose text is made again.
    wire_fields: str = field(default="", init=False, repr=False, compare=False)
    wire_intent: OrderIntent | None = field(default=None, init=False, repr=False, compare=False)

    def __init__(self, intent: OrderIntent, order_id: str, status: str = PENDING_NEW, cum_qty: float = 0.0,
                 avg_px: float = 0.0, children: list[VenueOrder] | None = None, policy: str = "",
                 route_reason: str = "", text: str | None = None, cancel_request: Request | None = None,
                 replace_request: Request | None = None, retried: bool = False, created_at: float = 0.0,
                 done_at: float = 0.0, reports: int = 0) -> None:
        self.intent = intent
        self.order_id = order_id
        self.status = status
        self.cum_qty = cum_qty
        self.avg_px = avg_px
        self.children = [] if children is None else children
        self.policy = policy
        self.route_reason = route_reason
        self.text = text
        self.cancel_request = cancel_request
        self.replace_request = replace_request
        self.retried = retried
        self.created_at = created_at
        self.done_at = done_at
        self.reports = reports
        self.wire_fields = ""
        self.wire_intent = None

    def next_exec_id(self) -> str:
        self.reports += 1
        return f"{self.order_id}-{self.reports}"

    @property
    def session(self) -> str:
        return self.intent.oms_session

    @property
    def cl_ord_id(self) -> str:
        return self.intent.cl_ord_id

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def leaves_qty(self) -> float:
        return 0.0 if self.done else max(self.intent.qty - self.cum_qty, 0.0)

    @property
    def venue(self) -> str:
        return self.children[-1].venue if self.children else ""

    def live_children(self) -> list[VenueOrder]:
        return [c for c in self.children if not c.done]


class OrderStateError(Exception):
    """An order status change the transition table forbids; the order is left as it was."""


# One table for OMS orders and venue orders (FIX OrdStatus). NEW -> NEW is a replace;
# terminal states have no row: nothing leaves them.
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    PENDING_NEW: frozenset((NEW, PARTIAL, FILLED, REJECTED, CANCELED, EXPIRED)),
    NEW: frozenset((NEW, PARTIAL, FILLED, REJECTED, CANCELED, EXPIRED)),
    PARTIAL: frozenset((PARTIAL, FILLED, CANCELED, EXPIRED)),
}


def can_move(status: str, to: str) -> bool:
    allowed = TRANSITIONS.get(status)
    return allowed is not None and to in allowed


def move(order: "OmsOrder | VenueOrder", to: str) -> None:
    """The only place an order status changes. Raises ``OrderStateError`` (state unchanged)."""
    allowed = TRANSITIONS.get(order.status)
    if allowed is None or to not in allowed:
        name = getattr(order, "order_id", None) or getattr(order, "cl_ord_id", "?")
        raise OrderStateError(f"{name}: {STATUS_NAMES.get(order.status, order.status)} -> "
                              f"{STATUS_NAMES.get(to, to)} is not a legal order transition")
    if isinstance(order, VenueOrder):   # narrowed: a native attribute write (the union's is a generic setattr)
        order.status = to
    else:
        order.status = to


# ---------------------------------------------------------------- commands (core -> edges)

@dataclass(slots=True, kw_only=True, init=False)    # init=False: a native __init__ (see model.py)
class ReportToOms:
    """Send an ExecutionReport to the OMS; the order figures are copied when it is made."""
    order: OmsOrder
    exec_type: str
    ord_status: str
    cl_ord_id: str
    orig_cl_ord_id: str | None
    cum_qty: float
    leaves_qty: float
    avg_px: float
    last_qty: float = 0.0
    last_px: float = 0.0
    last_mkt: str | None = None
    venue_order_id: str | None = None
    text: str | None = None
    ord_rej_reason: int | None = None
    poss_resend: bool = False     # re-sent after a restart: the OMS may have seen it (PossResend 97=Y)
    exec_id: str = ""             # ExecID(17): stable per report across replay (see the module docstring)

    def __init__(self, *, order: OmsOrder, exec_type: str, ord_status: str, cl_ord_id: str,
                 orig_cl_ord_id: str | None, cum_qty: float, leaves_qty: float, avg_px: float,
                 last_qty: float = 0.0, last_px: float = 0.0, last_mkt: str | None = None,
                 venue_order_id: str | None = None, text: str | None = None, ord_rej_reason: int | None = None,
                 poss_resend: bool = False, exec_id: str = "") -> None:
        self.order = order
        self.exec_type = exec_type
        self.ord_status = ord_status
        self.cl_ord_id = cl_ord_id
        self.orig_cl_ord_id = orig_cl_ord_id
        self.cum_qty = cum_qty
        self.leaves_qty = leaves_qty
        self.avg_px = avg_px
        self.last_qty = last_qty
        self.last_px = last_px
        self.last_mkt = last_mkt
        self.venue_order_id = venue_order_id
        self.text = text
        self.ord_rej_reason = ord_rej_reason
        self.poss_resend = poss_resend
        self.exec_id = exec_id


@dataclass(slots=True, kw_only=True)
class RejectOmsCancel:
    """Send an OrderCancelReject (35=9) to the OMS."""
    session: str
    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: str
    ord_status: str
    response_to: str              # 434: '1' cancel, '2' cancel/replace
    reason: str                   # 102
    text: str


@dataclass(slots=True, kw_only=True, init=False)    # init=False: a native __init__ (see model.py)
class SendNewOrder:
    """Send a NewOrderSingle for ``child`` to its venue."""
    child: VenueOrder

    def __init__(self, *, child: VenueOrder) -> None:
        self.child = child


@dataclass(slots=True, kw_only=True)
class SendCancel:
    child: VenueOrder
    cl_ord_id: str
    orig_cl_ord_id: str


@dataclass(slots=True, kw_only=True)
class SendReplace:
    child: VenueOrder
    cl_ord_id: str
    orig_cl_ord_id: str
    qty: float
    price: float | None


@dataclass(slots=True, kw_only=True)
class QueryOrderStatus:
    """Send an OrderStatusRequest (35=H) for ``child`` (restart reconciliation), by ``cl_ord_id``
    when given (a pending replace's venue ClOrdID: did the venue take it?), else the child's own."""
    child: VenueOrder
    cl_ord_id: str | None = None


@dataclass(slots=True, kw_only=True)
class RouteRemainder:
    """Micro-burst: an IOC venue order ended short; route ``qty`` once more, or end the order.

    The caller answers with ``OrderManager.add_retry`` (a route was found) or
    ``OrderManager.end_remainder`` (none): routing is not the order manager's business.
    """
    order: OmsOrder
    qty: float


VENUE_COMMANDS = (SendNewOrder, SendCancel, SendReplace, QueryOrderStatus)


# ---------------------------------------------------------------- events (edges -> core)

@dataclass(slots=True, kw_only=True, init=False)    # init=False: a native __init__ (see model.py)
class VenueExecutionReport:
    """What a venue said in an ExecutionReport (35=8): the fields the order path needs.

    The journal stores it as a JSON array in this field order (gateway/core/journal.py).
    """
    venue: str
    cl_ord_id: str
    orig_cl_ord_id: str | None = None
    exec_id: str
    exec_type: str
    ord_status: str
    cum_qty: float = 0.0
    leaves_qty: float = 0.0
    avg_px: float = 0.0
    last_qty: float = 0.0
    last_px: float = 0.0
    venue_order_id: str | None = None
    text: str | None = None

    def __init__(self, *, venue: str, cl_ord_id: str, exec_id: str, exec_type: str, ord_status: str,
                 orig_cl_ord_id: str | None = None, cum_qty: float = 0.0, leaves_qty: float = 0.0,
                 avg_px: float = 0.0, last_qty: float = 0.0, last_px: float = 0.0,
                 venue_order_id: str | None = None, text: str | None = None) -> None:
        self.venue = venue
        self.cl_ord_id = cl_ord_id
        self.orig_cl_ord_id = orig_cl_ord_id
        self.exec_id = exec_id
        self.exec_type = exec_type
        self.ord_status = ord_status
        self.cum_qty = cum_qty
        self.leaves_qty = leaves_qty
        self.avg_px = avg_px
        self.last_qty = last_qty
        self.last_px = last_px
        self.venue_order_id = venue_order_id
        self.text = text


class OrderManager:
    """All orders of the gateway, indexed by OMS ClOrdID and by venue ClOrdID.

    ``risk`` (the ``RiskEngine``, a ``RiskGate``: typed as the class so compiled calls are direct)
    is told about fills and ended orders; what it answers (a
    ``TradingStateChanged`` when the kill switch trips) is appended to the outputs, never
    called back. Replay runs with ``risk=None`` and the caller restores risk afterwards.
    ``micro_burst``: an IOC order that ends short asks once for its remainder to be routed
    (``RouteRemainder``).
    """

    def __init__(self, risk: RiskEngine | None = None, micro_burst: bool = False) -> None:
        self.risk = risk
        self.micro_burst = micro_burst
        self.by_oms: dict[tuple[str, str], OmsOrder] = {}      # every ClOrdID an OMS used
        self.by_order_id: dict[str, OmsOrder] = {}
        # our venue ClOrdIDs: every one sent (orders, cancels, replaces) -> its venue order, and
        # those of a cancel or replace -> that request. Two dicts, not (order, request) tuples:
        # such a tuple per order would be one more object the collector visits for the day.
        self.by_venue_id: dict[str, VenueOrder] = {}
        self.requests: dict[str, Request] = {}
        self.open: dict[str, OmsOrder] = {}                    # order_id -> live order
        self.in_flight: dict[str, int] = {}                    # venue -> orders sent, not yet answered
        # Ended orders in the order they ended, their venue side still held (``retire``).
        self.finished: deque[OmsOrder] = deque()
        self.counts = dict.fromkeys(("total", "filled", "partially_filled", "canceled", "rejected",
                                     "expired", "replaced", "fills", "ignored_reports",
                                     "unexpected_reports", "resent_requests", "retired"), 0)

    # ---------------------------------------------------------------- intake

    def is_known(self, session: str, cl_ord_id: str) -> bool:
        return (session, cl_ord_id) in self.by_oms

    def reject_new(self, intent: OrderIntent, order_id: str, text: str, reason: int,
                   now: float = 0.0) -> list:
        """An order refused before any venue saw it (risk, routing, duplicate)."""
        order = OmsOrder(intent, order_id, status=REJECTED, text=text, created_at=now, done_at=now)
        duplicate = (intent.oms_session, intent.cl_ord_id) in self.by_oms
        if not duplicate:              # a rejected duplicate must not shadow the live order
            self._index(order)
            self.finished.append(order)
        self.counts["total"] += 1
        self.counts["rejected"] += 1
        return [ReportToOms(order=order, exec_type=REJECTED, ord_status=REJECTED, cl_ord_id=intent.cl_ord_id,
                            orig_cl_ord_id=None, cum_qty=0.0, leaves_qty=0.0, avg_px=0.0, text=text,
                            ord_rej_reason=reason, exec_id=order.next_exec_id())]

    def accept(self, intent: OrderIntent, order_id: str, children: list[ChildOrder],
               child_ids: list[str], policy: str = "", reason: str = "", now: float = 0.0) -> list:
        """A checked and routed order: one SendNewOrder per child."""
        order = OmsOrder(intent, order_id, policy=policy, route_reason=reason, created_at=now)
        self.by_oms[(intent.oms_session, intent.cl_ord_id)] = order
        self.by_order_id[order_id] = order
        self.open[order_id] = order
        self.counts["total"] += 1
        if len(children) == 1:           # scalp and DMA: one venue order
            return [SendNewOrder(child=self._add_child(order, children[0], child_ids[0], now))]
        out = []
        for spec, vid in zip(children, child_ids):
            out.append(SendNewOrder(child=self._add_child(order, spec, vid, now)))
        return out

    def _index(self, order: OmsOrder) -> None:
        intent = order.intent
        self.by_oms[(intent.oms_session, intent.cl_ord_id)] = order
        self.by_order_id[order.order_id] = order

    def _add_child(self, order: OmsOrder, spec: ChildOrder, venue_cl_ord_id: str, now: float) -> VenueOrder:
        child = VenueOrder(order, spec.venue, venue_cl_ord_id, spec.qty, spec.price, spec.ord_type,
                           spec.tif, sent_at=now)
        order.children.append(child)
        self.by_venue_id[venue_cl_ord_id] = child
        self.in_flight[spec.venue] = self.in_flight.get(spec.venue, 0) + 1
        return child

    def _link(self, venue_cl_ord_id: str, child: VenueOrder, req: Request | None = None) -> None:
        """Index one more venue ClOrdID of ``child`` (a cancel's or a replace's, with its request)."""
        self.by_venue_id[venue_cl_ord_id] = child
        if req is not None:
            self.requests[venue_cl_ord_id] = req
        _note_id(child, venue_cl_ord_id)

    def _answered(self, child: VenueOrder) -> None:
        """The venue answered (ack, fill or end) or never will: the order is no longer in flight."""
        if not child.acked:
            child.acked = True
            self.in_flight[child.venue] = max(self.in_flight.get(child.venue, 1) - 1, 0)

    def _now_the_order(self, child: VenueOrder, venue_cl_ord_id: str) -> None:
        """A replace took effect: ``venue_cl_ord_id`` names the venue order from now on (its
        reports are the order's own, no longer the replace request's)."""
        _note_id(child, child.cl_ord_id)          # the name it had stays indexed: note it for retire
        child.cl_ord_id = venue_cl_ord_id
        self.by_venue_id[venue_cl_ord_id] = child
        self.requests.pop(venue_cl_ord_id, None)

    def send_failed(self, child: VenueOrder, text: str, now: float = 0.0) -> list:
        """A venue order that could not be handed to its session (venue went down)."""
        return self._child_finished(child, REJECTED, text, now)

    # ---------------------------------------------------------------- venue reports

    def find_child(self, venue_cl_ord_id: str) -> VenueOrder | None:
        return self.by_venue_id.get(venue_cl_ord_id)

    def on_venue_exec(self, ev: VenueExecutionReport, now: float = 0.0, child: VenueOrder | None = None) -> list:
        """A venue's ExecutionReport. ``child``: the caller's ``by_venue_id.get(ev.cl_ord_id)``, when it made it."""
        found_by = ev.cl_ord_id           # the id the venue order was found by (its request's too)
        if child is None:
            child = self.by_venue_id.get(found_by)
        if child is None and ev.orig_cl_ord_id:
            found_by = ev.orig_cl_ord_id
            child = self.by_venue_id.get(found_by)
        if child is None:
            self.counts["ignored_reports"] += 1
            return []
        if ev.exec_type == ORDER_STATUS:      # an answer to our OrderStatusRequest: no ExecID to dedupe
            request = self.requests.get(found_by)
            if request is not None and request.kind == "replace":
                return self._on_replace_status(child, request, ev, now)
            return self._on_status(child, ev, now)
        et = ev.exec_type
        exec_ids = child.exec_ids         # per venue order: a restarted venue may reuse ExecIDs
        if exec_ids is not None and ev.exec_id in exec_ids:
            self.counts["ignored_reports"] += 1
            return []
        if child.done and et not in (PENDING_CANCEL, PENDING_REPLACE, PENDING_NEW):
            # a venue order we consider ended: applying it would move a terminal state
            self.counts["unexpected_reports"] += 1
            return []
        if exec_ids is None:
            child.exec_ids = [ev.exec_id]
        else:
            exec_ids.append(ev.exec_id)
        if ev.venue_order_id:
            child.venue_order_id = ev.venue_order_id
        if et == TRADE:
            return self._on_fill(child, ev, now)
        if et == NEW:
            return self._on_new(child)
        if et == REPLACED:
            return self._on_replaced(child, self.requests.get(found_by), ev)
        if et == REJECTED:
            out = self._risk_venue_reject(child)
            return out + self._child_finished(child, REJECTED, ev.text or "rejected by venue", now)
        if et in (CANCELED, EXPIRED):
            self._sync_fills(child, ev)
            return self._child_finished(child, et, ev.text, now)
        if et in (PENDING_CANCEL, PENDING_REPLACE, PENDING_NEW):
            return []
        self.counts["unexpected_reports"] += 1      # restated, done for day, ...: counted, not applied
        return []

    def _risk_venue_reject(self, child: VenueOrder) -> list:
        if self.risk is None:
            return []
        ev = self.risk.on_venue_reject(child.venue, child.parent.session)
        return [ev] if ev is not None else []

    def _on_new(self, child: VenueOrder) -> list:
        order = child.parent
        first = not child.acked
        self._answered(child)
        if child.status == PENDING_NEW:
            move(child, NEW)
        if order.status != PENDING_NEW or not first:
            return []
        move(order, NEW)
        return [self._exec(order, NEW, last_mkt=child.venue, venue_order_id=child.venue_order_id)]

    def _sync_fills(self, child: VenueOrder, ev: VenueExecutionReport) -> None:
        # the venue's CumQty is authoritative (a fill report may have been lost in a crash)
        if ev.cum_qty > child.cum_qty + EPS:
            child.cum_qty, child.avg_px = ev.cum_qty, ev.avg_px
            self._recompute(child.parent)

    def _on_fill(self, child: VenueOrder, ev: VenueExecutionReport, now: float) -> list:
        order = child.parent
        child_done = ev.ord_status in TERMINAL or ev.leaves_qty <= EPS
        prev_cum = child.cum_qty
        cum = ev.cum_qty if ev.cum_qty > 0 else prev_cum + ev.last_qty
        if not child_done:
            child_to = PARTIAL
        elif cum >= child.qty - EPS:
            child_to = FILLED
        else:
            child_to = ev.ord_status if ev.ord_status in TERMINAL else CANCELED
        if not can_move(child.status, child_to):
            self.counts["unexpected_reports"] += 1
            return []
        self._answered(child)
        child.cum_qty = cum
        child.avg_px = ev.avg_px if ev.avg_px > 0 else ev.last_px
        last_qty = child.cum_qty - prev_cum if ev.last_qty <= 0 else ev.last_qty
        move(child, child_to)
        self._recompute(order)
        self.counts["fills"] += 1
        out: list = []
        if self.risk is not None and last_qty > 0:
            changed = self.risk.on_fill(order.intent, last_qty, ev.last_px)
            if changed is not None:
                out.append(changed)
        if order.done:
            return out
        filled = order.cum_qty >= order.intent.qty - EPS
        move(order, FILLED if filled else PARTIAL)
        out.append(self._exec(order, TRADE, last_qty=last_qty, last_px=ev.last_px, last_mkt=child.venue,
                              venue_order_id=child.venue_order_id))
        if filled:
            self._finish(order, FILLED, now)
        elif child_done:
            out += self._after_child_done(child, now, ev.text)
        return out

    def _on_status(self, child: VenueOrder, ev: VenueExecutionReport, now: float) -> list:
        """The venue's answer to an OrderStatusRequest: catch up on what we missed."""
        if child.done:
            return []
        if ev.ord_status == REJECTED:
            # "unknown order": the venue never got it (unacked) or lost it; either way it is over
            to = REJECTED if not child.acked and child.cum_qty <= EPS else CANCELED
            return self._child_finished(child, to, ev.text or "unknown order at the venue", now)
        out: list = []
        if ev.cum_qty > child.cum_qty + EPS:       # fills we never heard of: book the difference once
            delta = ev.cum_qty - child.cum_qty
            px = (ev.cum_qty * ev.avg_px - child.cum_qty * child.avg_px) / delta if ev.avg_px > 0 else ev.last_px
            leaves = 0.0 if ev.ord_status in TERMINAL else max(child.qty - ev.cum_qty, 0.0)
            fill = VenueExecutionReport(venue=ev.venue, cl_ord_id=child.cl_ord_id, exec_id=f"status:{ev.cum_qty:g}",
                                        exec_type=TRADE, ord_status=ev.ord_status, cum_qty=ev.cum_qty,
                                        leaves_qty=leaves, avg_px=ev.avg_px, last_qty=delta, last_px=px,
                                        venue_order_id=ev.venue_order_id, text=ev.text)
            out += self._on_fill(child, fill, now)
        elif not child.acked and ev.ord_status in (NEW, PARTIAL, PENDING_NEW):
            out += self._on_new(child)
        if not child.done and ev.ord_status in (CANCELED, EXPIRED):
            self._answered(child)
            out += self._child_finished(child, ev.ord_status, ev.text, now)
        if child.cancel_pending and not child.done and ev.ord_status not in TERMINAL | {PENDING_CANCEL}:
            out += self._resend_cancel(child)
        return out

    def _resend_cancel(self, child: VenueOrder) -> list:
        """Our cancel is open but the venue says the order works: it never got the cancel (a crash
        between journal and wire, or lost with the connection). Send it again under a new ClOrdID
        derived from the old one, so replay regenerates the same id without a record of its own.
        Should the first one reach the venue after all, the second is refused and that refusal is
        absorbed (``on_venue_cancel_reject``: the OMS request is answered once)."""
        old = child.cancel_pending
        assert old is not None          # the caller checked
        req = self.requests.get(old)
        vid = _again(old)
        child.cancel_pending = vid
        self._link(vid, child, req)
        self.counts["resent_requests"] += 1
        return [SendCancel(child=child, cl_ord_id=vid, orig_cl_ord_id=child.cl_ord_id)]

    def _on_replace_status(self, child: VenueOrder, req: Request, ev: VenueExecutionReport, now: float) -> list:
        """The venue's answer to a status query by our pending replace's ClOrdID."""
        order = child.parent
        if req.answered or order.replace_request is not req or child.done or order.done:
            return []
        if ev.ord_status == REJECTED:
            # the venue does not know that ClOrdID: it never got the replace; send it again (as a cancel)
            vid = _again(req.venue_cl_ord_id or ev.cl_ord_id)
            req.venue_cl_ord_id = vid
            self._link(vid, child, req)
            self.counts["resent_requests"] += 1
            return [SendReplace(child=child, cl_ord_id=vid, orig_cl_ord_id=child.cl_ord_id, qty=req.qty,
                                price=req.price)]
        # the venue took it: fills first (booked once, as reports), then the replace, then its end
        out = self._on_status(child, replace(ev, cl_ord_id=child.cl_ord_id), now)
        if child.done or order.done:
            return out + self._replace_too_late(order, req, child.venue)
        out += self._on_replaced(child, req, replace(ev, exec_type=REPLACED))
        return out

    def _replace_too_late(self, order: OmsOrder, req: Request, venue: str) -> list:
        order.replace_request = None
        if req.answered or req.oms_cl_ord_id is None:
            return []
        req.answered = True
        return [RejectOmsCancel(session=order.session, cl_ord_id=req.oms_cl_ord_id,
                                orig_cl_ord_id=req.oms_orig_cl_ord_id, order_id=order.order_id,
                                ord_status=order.status, response_to="2", reason=CXL_TOO_LATE,
                                text=f"{venue}: too late: order is {STATUS_NAMES[order.status]}")]

    def _recompute(self, order: OmsOrder) -> None:
        cum = notional = 0.0
        for c in order.children:
            cum += c.cum_qty
            notional += c.cum_qty * c.avg_px
        order.cum_qty = cum
        order.avg_px = notional / cum if cum > EPS else 0.0

    def _child_finished(self, child: VenueOrder, status: str, text: str | None, now: float) -> list:
        if child.done:
            return []
        if status == REJECTED and not can_move(child.status, REJECTED):
            status = CANCELED              # a working order the venue refuses to keep is over, not rejected
        self._answered(child)
        move(child, status)
        if status == REJECTED:
            child.reject_text = text
        if child.parent.done:
            return []
        return self._after_child_done(child, now, text)

    def _after_child_done(self, child: VenueOrder, now: float, text: str | None) -> list:
        """A venue order ended: ask for the remainder to be routed once, or end the OMS order."""
        order = child.parent
        if order.live_children():
            return []
        remaining = order.intent.qty - order.cum_qty
        if (remaining > EPS and child.status != REJECTED and order.cancel_request is None
                and not order.retried and order.intent.tif == IOC and self.micro_burst):
            order.retried = True
            return [RouteRemainder(order=order, qty=remaining)]
        return self._end(order, child, now, text)

    def end_remainder(self, order: OmsOrder, now: float = 0.0, text: str | None = None) -> list:
        """No route for a ``RouteRemainder`` (or it was never answered before a crash): end the order."""
        if order.done or order.live_children() or not order.children:
            return []
        return self._end(order, order.children[-1], now, text)

    def _end(self, order: OmsOrder, child: VenueOrder, now: float, text: str | None) -> list:
        req = order.cancel_request
        if req is not None and req.kind == "day_end":
            status = EXPIRED
            out = [self._exec(order, EXPIRED, text=req.text, status=EXPIRED, leaves=0.0)]
        elif req is not None:
            status = CANCELED
            own = req.oms_cl_ord_id is not None and not req.answered
            out = [self._exec(order, CANCELED, cl_ord_id=req.oms_cl_ord_id if own else order.cl_ord_id,
                              orig=req.oms_orig_cl_ord_id if own else None,
                              text=req.text, status=CANCELED, leaves=0.0)]
            req.answered = True
        elif all(c.status == REJECTED for c in order.children) and order.cum_qty <= EPS:
            status = REJECTED
            reasons = "; ".join(f"{c.venue}: {c.reject_text}" for c in order.children)
            out = [self._exec(order, REJECTED, text=f"rejected by venue ({reasons})"[:400], status=REJECTED,
                              leaves=0.0, rej_reason=99)]
        else:
            status = EXPIRED if child.status == EXPIRED else CANCELED
            why = text or ("IOC remainder not filled" if order.intent.tif in (IOC, FOK) else "canceled by venue")
            out = [self._exec(order, status, text=why, status=status, leaves=0.0)]
        self._finish(order, status, now)
        return out

    def add_retry(self, order: OmsOrder, spec: ChildOrder, venue_cl_ord_id: str, now: float = 0.0) -> list:
        order.retried = True
        return [SendNewOrder(child=self._add_child(order, spec, venue_cl_ord_id, now))]

    def _finish(self, order: OmsOrder, status: str, now: float) -> None:
        if order.status != status:         # a fill already moved it to FILLED for its report
            move(order, status)
        order.done_at = now
        self.open.pop(order.order_id, None)
        self.finished.append(order)
        self.counts[STATUS_NAMES[status]] += 1
        if status != FILLED and order.cum_qty > EPS:
            self.counts["partially_filled"] += 1     # ended with a partial fill
        if self.risk is not None:
            self.risk.on_order_done(order.intent, max(order.intent.qty - order.cum_qty, 0.0))

    # ---------------------------------------------------------------- end of the trading day

    def day_orders(self, venue: str | None = None) -> list[OmsOrder]:
        """Open Day orders (TimeInForce 0) with a live venue order (on ``venue`` when given)."""
        return [o for o in self.open.values() if o.intent.tif == DAY
                and any(venue is None or c.venue == venue for c in o.live_children())]

    def expire_day(self, venue: str, text: str, now: float = 0.0) -> list:
        """``venue``'s session ended, so it expired its own Day orders: expire our venue orders
        there, and each OMS order with nothing live left ends EXPIRED (ExecType C, OrdStatus C)."""
        out: list = []
        for order in self.day_orders(venue):
            for child in order.live_children():
                if child.venue == venue:
                    out += self._child_finished(child, EXPIRED, text, now)
        return out

    def cancel_day(self, venue_ids: Callable[[], str], text: str) -> list:
        """The configured day end: cancel every open Day order at its venue, as the kill switch
        does; when the venue confirms, the order ends EXPIRED to the OMS (ExecType C). An order
        the OMS is already canceling is left to that cancel. A venue that refuses the cancel
        (too late: filled) leaves the order to its fills."""
        out: list = []
        for order in self.day_orders():
            if order.cancel_request is None:
                out += self._cancel_children(order, Request("day_end", order, None, order.cl_ord_id, text=text),
                                             venue_ids)
        return out

    # ---------------------------------------------------------------- cancel / replace

    def cancel(self, session: str, cl_ord_id: str, orig_cl_ord_id: str, venue_ids: Callable[[], str],
               text: str | None = None) -> list:
        """An OMS OrderCancelRequest: forward to every live venue order, or refuse."""
        order = self.by_oms.get((session, orig_cl_ord_id))
        refuse = self.refusal(order, session, cl_ord_id, orig_cl_ord_id, "1")
        if refuse is not None:
            return [refuse]
        assert order is not None           # refusal() answers an unknown order
        req = Request("cancel", order, cl_ord_id, orig_cl_ord_id, text=text or "canceled at the OMS's request")
        self.by_oms.setdefault((session, cl_ord_id), order)
        return self._cancel_children(order, req, venue_ids)

    def cancel_all(self, venue_ids: Callable[[], str], text: str, session: str | None = None) -> list:
        """Gateway-initiated cancel of every open order (the kill switch), or of one session's."""
        out: list = []
        for order in list(self.open.values()):
            if order.cancel_request is None and (session is None or order.session == session):
                out += self._cancel_children(order, Request("kill", order, None, order.cl_ord_id, text=text),
                                             venue_ids)
        return out

    def _cancel_children(self, order: OmsOrder, req: Request, venue_ids: Callable[[], str]) -> list:
        order.cancel_request = req
        out: list = []
        for child in order.live_children():
            if child.cancel_pending:
                continue
            vid = venue_ids()
            child.cancel_pending = vid
            self._link(vid, child, req)
            out.append(SendCancel(child=child, cl_ord_id=vid, orig_cl_ord_id=child.cl_ord_id))
        if req.kind == "cancel" and order.status not in TERMINAL:
            out.insert(0, self._exec(order, PENDING_CANCEL, cl_ord_id=req.oms_cl_ord_id,
                                     orig=req.oms_orig_cl_ord_id, status=PENDING_CANCEL))
        return out

    def replace_problem(self, session: str, new: OrderIntent, orig_cl_ord_id: str) -> RejectOmsCancel | None:
        """Why a replace cannot go ahead, as the OMS's answer; None if it can (no state is touched)."""
        order = self.by_oms.get((session, orig_cl_ord_id))
        refuse = self.refusal(order, session, new.cl_ord_id, orig_cl_ord_id, "2")
        if refuse is not None:
            return refuse
        assert order is not None           # refusal() answers an unknown order
        live = order.live_children()
        problem = None
        if len(order.children) != 1 or len(live) != 1:
            problem = "cannot replace an order split across venues"
        elif (new.symbol, new.side) != (order.intent.symbol, order.intent.side):
            problem = "replace cannot change Symbol or Side"
        elif new.qty < order.cum_qty - EPS:
            problem = f"new OrderQty {new.qty:g} is below the filled quantity {order.cum_qty:g}"
        if problem is None:
            return None
        return RejectOmsCancel(session=session, cl_ord_id=new.cl_ord_id, orig_cl_ord_id=orig_cl_ord_id,
                               order_id=order.order_id, ord_status=order.status, response_to="2",
                               reason=CXL_OTHER, text=problem)

    def replace(self, session: str, new: OrderIntent, orig_cl_ord_id: str, venue_id: str) -> list:
        """An OMS OrderCancelReplaceRequest (single-venue orders only)."""
        problem = self.replace_problem(session, new, orig_cl_ord_id)
        if problem is not None:
            return [problem]
        order = self.by_oms[(session, orig_cl_ord_id)]
        if self.risk is not None:
            rej = self.risk.check_replace(order.intent, new)
            if rej is not None:
                return [RejectOmsCancel(session=session, cl_ord_id=new.cl_ord_id, orig_cl_ord_id=orig_cl_ord_id,
                                        order_id=order.order_id, ord_status=order.status, response_to="2",
                                        reason=CXL_OTHER, text=rej.text)]
        return self.start_replace(session, new, orig_cl_ord_id, venue_id)

    def start_replace(self, session: str, new: OrderIntent, orig_cl_ord_id: str, venue_id: str) -> list:
        """Apply a replace already checked (``replace_problem`` and risk): one SendReplace."""
        order = self.by_oms[(session, orig_cl_ord_id)]
        child = order.live_children()[0]
        req = Request("replace", order, new.cl_ord_id, orig_cl_ord_id, qty=new.qty, price=new.price,
                      new_intent=new, venue_cl_ord_id=venue_id)
        order.replace_request = req
        self.by_oms[(session, new.cl_ord_id)] = order
        self._link(venue_id, child, req)
        return [SendReplace(child=child, cl_ord_id=venue_id, orig_cl_ord_id=child.cl_ord_id, qty=new.qty,
                            price=new.price)]

    def refusal(self, order: OmsOrder | None, session: str, cl_ord_id: str, orig: str,
                 response_to: str) -> RejectOmsCancel | None:
        def refuse(reason: str, text: str) -> RejectOmsCancel:
            return RejectOmsCancel(session=session, cl_ord_id=cl_ord_id, orig_cl_ord_id=orig,
                                   order_id=order.order_id if order is not None else "NONE",
                                   ord_status=order.status if order is not None else REJECTED,
                                   response_to=response_to, reason=reason, text=text)
        if order is None:
            return refuse(CXL_UNKNOWN, f"unknown order: OrigClOrdID {orig!r}")
        if (session, cl_ord_id) in self.by_oms:
            return refuse(CXL_OTHER, f"duplicate ClOrdID {cl_ord_id!r}")
        if order.done:
            return refuse(CXL_TOO_LATE, f"too late: order is {STATUS_NAMES[order.status]}")
        if order.cancel_request is not None or order.replace_request is not None:
            return refuse(CXL_PENDING, "a cancel or replace is already pending for this order")
        if orig != order.cl_ord_id:
            return refuse(CXL_OTHER, f"OrigClOrdID {orig!r} was replaced; use {order.cl_ord_id!r}")
        return None

    def _on_replaced(self, child: VenueOrder, req: Request | None, ev: VenueExecutionReport) -> list:
        order = child.parent
        if req is None or req.kind != "replace":
            self.counts["unexpected_reports"] += 1
            return []
        if req.answered:       # the same replace taken twice (re-sent after a restart): one answer only
            self._now_the_order(child, ev.cl_ord_id)
            self.counts["ignored_reports"] += 1
            return []
        to = PARTIAL if max(order.cum_qty, ev.cum_qty) > EPS else NEW
        if not can_move(order.status, to):
            self.counts["unexpected_reports"] += 1
            return []
        self._answered(child)
        order.replace_request = None
        req.answered = True
        child.qty, child.price = req.qty, req.price
        self._now_the_order(child, ev.cl_ord_id)
        if req.new_intent is not None:          # always set on a replace
            order.intent = req.new_intent
        self.counts["replaced"] += 1
        self._sync_fills(child, ev)
        if child.status == PENDING_NEW:
            move(child, NEW)
        move(order, to)
        return [self._exec(order, REPLACED, orig=req.oms_orig_cl_ord_id, last_mkt=child.venue,
                           venue_order_id=child.venue_order_id)]

    def on_venue_cancel_reject(self, venue_cl_ord_id: str, text: str, now: float = 0.0) -> list:
        child = self.by_venue_id.get(venue_cl_ord_id)
        req = self.requests.get(venue_cl_ord_id)
        if child is None or req is None:
            self.counts["ignored_reports"] += 1
            return []
        order = child.parent
        if req.kind == "replace":
            order.replace_request = None
        elif child.cancel_pending == venue_cl_ord_id:
            child.cancel_pending = None
            if not any(c.cancel_pending for c in order.children):
                order.cancel_request = None
        if req.oms_cl_ord_id is None or req.answered:
            return []
        req.answered = True     # a request filled or ended meanwhile still gets its answer: too late
        return [RejectOmsCancel(session=order.session, cl_ord_id=req.oms_cl_ord_id,
                                orig_cl_ord_id=req.oms_orig_cl_ord_id, order_id=order.order_id,
                                ord_status=order.status, response_to="2" if req.kind == "replace" else "1",
                                reason=CXL_TOO_LATE if order.done else CXL_OTHER, text=f"{child.venue}: {text}")]

    def status_report(self, session: str, cl_ord_id: str, symbol: str, side: str, exec_id: str = "") -> ReportToOms:
        """An OrderStatusRequest's answer (ExecType I); an unknown order is OrdStatus Rejected.

        ``cl_ord_id`` may be the order's own, or that of a cancel or replace of it: while that
        request is open the status is its own (PendingCancel / PendingReplace), with OrigClOrdID.
        """
        order = self.by_oms.get((session, cl_ord_id))
        if order is None:
            unknown = OmsOrder(OrderIntent(session, cl_ord_id, symbol, side, 0.0, LIMIT, None, DAY), "NONE",
                               status=REJECTED)
            return ReportToOms(order=unknown, exec_type=ORDER_STATUS, ord_status=REJECTED, cl_ord_id=cl_ord_id,
                               orig_cl_ord_id=None, cum_qty=0.0, leaves_qty=0.0, avg_px=0.0, text="unknown order",
                               exec_id=exec_id)
        status, orig = None, None
        for req, pending in ((order.cancel_request, PENDING_CANCEL), (order.replace_request, PENDING_REPLACE)):
            if req is not None and req.oms_cl_ord_id == cl_ord_id:
                orig = req.oms_orig_cl_ord_id
                if not order.done and not req.answered:
                    status = pending
        return self._exec(order, ORDER_STATUS, cl_ord_id=cl_ord_id, orig=orig, last_mkt=order.venue or None,
                          status=status, exec_id=exec_id)

    # ---------------------------------------------------------------- restart reconciliation

    def unanswered_children(self) -> list[VenueOrder]:
        """Venue orders sent (or with a cancel sent) that the venue has not answered: ask it."""
        return [c for o in self.open.values() for c in o.live_children() if not c.acked or c.cancel_pending]

    def pending_replaces(self) -> list[tuple[VenueOrder, str]]:
        """(venue order, our replace ClOrdID) of every replace the venue has not answered: ask it."""
        out = []
        for o in self.open.values():
            req = o.replace_request
            if req is not None and not req.answered and req.venue_cl_ord_id and o.live_children():
                out.append((o.live_children()[0], req.venue_cl_ord_id))
        return out

    def owed_answers(self) -> list[list]:
        """The OMS cancels and replaces of ended orders that the venue has not answered yet, one
        row per venue ClOrdID: [order_id, kind, OMS ClOrdID, OrigClOrdID, text, venue ClOrdID,
        the venue order's ClOrdID]. A snapshot carries them (an open order has none at a safe
        point); without them a restart would leave the OMS's request unanswered."""
        out: list[list] = []
        for vid, req in self.requests.items():
            order, child = req.order, self.by_venue_id.get(vid)
            if order.done and req.oms_cl_ord_id is not None and not req.answered and child is not None:
                out.append([order.order_id, req.kind, req.oms_cl_ord_id, req.oms_orig_cl_ord_id, req.text,
                            vid, child.cl_ord_id])
        return out

    def restore_owed_answer(self, row: list) -> None:
        """One row of ``owed_answers`` back, after the snapshot's orders."""
        order_id, kind, oms_cl_ord_id, orig, text, vid, child_id = row
        order, child = self.by_order_id.get(order_id), self.by_venue_id.get(child_id)
        if order is None or child is None or child.parent is not order:
            return
        req = order.replace_request if kind == "replace" else order.cancel_request
        if req is None:
            req = Request(kind, order, oms_cl_ord_id, orig, text=text,
                          venue_cl_ord_id=vid if kind == "replace" else None)
            if kind == "replace":
                order.replace_request = req
            else:
                order.cancel_request = req
        if kind != "replace":
            child.cancel_pending = vid
        self._link(vid, child, req)

    def stranded_orders(self) -> list[OmsOrder]:
        """Open orders with no live venue order (a crash between a venue's end and our retry)."""
        return [o for o in self.open.values() if o.children and not o.live_children()]

    # ---------------------------------------------------------------- helpers

    def _exec(self, order: OmsOrder, exec_type: str, *, cl_ord_id: str | None = None, orig: str | None = None,
              last_qty: float = 0.0, last_px: float = 0.0, last_mkt: str | None = None,
              venue_order_id: str | None = None, text: str | None = None, status: str | None = None,
              leaves: float | None = None, rej_reason: int | None = None, exec_id: str = "") -> ReportToOms:
        if exec_type != ORDER_STATUS:      # a state change: its ExecID is replayable (module docstring)
            exec_id = order.next_exec_id()
        return ReportToOms(order=order, exec_type=exec_type, ord_status=status or order.status,
                           cl_ord_id=cl_ord_id or order.cl_ord_id, orig_cl_ord_id=orig, cum_qty=order.cum_qty,
                           leaves_qty=order.leaves_qty if leaves is None else leaves, avg_px=order.avg_px,
                           last_qty=last_qty, last_px=last_px, last_mkt=last_mkt, venue_order_id=venue_order_id,
                           text=text, ord_rej_reason=rej_reason, exec_id=exec_id)

    def forget_finished(self) -> int:
        """Drop every order from memory, when none is open; returns how many went. For a twin
        core whose synthetic orders nobody asks about again (the order-path warmer,
        gateway/apps/server/warm.py): a real gateway keeps the day's orders (status queries,
        duplicate ClOrdIDs) and retires only their venue side (``retire``). Each order's
        children list is emptied: a child refers to its parent, and a cycle frozen by the loop's
        collector (common/collector.py) would outlive the dicts; without it they go by
        reference counting."""
        if self.open:
            return 0
        gone = len(self.by_order_id)
        for order in self.by_order_id.values():
            order.children.clear()
        self.by_oms.clear()
        self.by_order_id.clear()
        self.by_venue_id.clear()
        self.requests.clear()
        self.finished.clear()
        return gone

    def retire(self, ended_before: float, now: float, limit: int = 1000) -> int:
        """Drop the venue side of orders that ended before ``ended_before``, oldest first, at most
        ``limit`` of them; returns how many. What the OMS may still ask about stays: the order
        under each of its ClOrdIDs (status, a cancel answered "too late", a duplicate refused),
        its figures and, in the journal's snapshots, its fills (risk's positions after a restart).
        What goes: its venue orders, their ClOrdIDs and ExecIDs, any request, the cached FIX
        text. A venue's report for a retired order is then unknown: counted in
        ``ignored_reports``, applied to nothing (the order ended; the venue said so).
        ``now``: an order that ended later than it (a journal from before a reboot, whose
        monotonic clock started elsewhere) is not held back by it. An order still waiting for
        its venue (a venue order live, an OMS cancel or replace unanswered) goes to the back."""
        finished = self.finished
        n = looked = 0
        first_back: OmsOrder | None = None
        while finished and looked < limit:
            order = finished[0]
            if order is first_back or ended_before < order.done_at <= now:
                break                   # round to the first one sent back, or not old enough
            finished.popleft()
            looked += 1
            if _waiting(order):
                finished.append(order)
                if first_back is None:
                    first_back = order
                continue
            self._drop_venue_side(order)
            n += 1
        self.counts["retired"] += n
        return n

    def _drop_venue_side(self, order: OmsOrder) -> None:
        by_venue_id, requests = self.by_venue_id, self.requests
        for child in order.children:
            for vid in (child.cl_ord_id, *(child.other_ids or ())):
                if by_venue_id.get(vid) is child:
                    del by_venue_id[vid]
                requests.pop(vid, None)
        order.children.clear()          # the child -> parent cycles go by reference counting
        order.cancel_request = order.replace_request = None
        order.wire_fields, order.wire_intent = "", None

    def summary(self) -> dict:
        return {"total": self.counts["total"], "open": len(self.open),
                **{k: self.counts[k] for k in ("filled", "partially_filled", "canceled", "rejected",
                                               "expired", "replaced", "fills", "ignored_reports",
                                               "unexpected_reports", "retired")},
                "ended_held": len(self.finished)}   # ended, venue side still held (retire_after_s)

    def open_by_venue(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for order in self.open.values():
            for c in order.live_children():
                out[c.venue] = out.get(c.venue, 0) + 1
        return out


def _waiting(order: OmsOrder) -> bool:
    """An ended order the venue still owes something: a live venue order, or an answer the OMS awaits."""
    for req in (order.cancel_request, order.replace_request):
        if req is not None and req.oms_cl_ord_id is not None and not req.answered:
            return True
    return any(not c.done for c in order.children)


def _note_id(child: VenueOrder, venue_cl_ord_id: str) -> None:
    ids = child.other_ids
    if ids is None:
        child.other_ids = [venue_cl_ord_id]
    elif venue_cl_ord_id not in ids:
        ids.append(venue_cl_ord_id)


def _again(venue_cl_ord_id: str) -> str:
    """The ClOrdID for sending a request again: ``X`` -> ``X~1`` -> ``X~2`` (deterministic for replay)."""
    base, sep, k = venue_cl_ord_id.rpartition("~")
    if sep and k.isdigit():
        return f"{base}~{int(k) + 1}"
    return f"{venue_cl_ord_id}~1"
