"""The gateway's decisions as one sans-IO object: events in, commands out.

``GatewayCore`` owns the ``OrderManager``, the ``Journal``, the ``RiskEngine``, the
routers and the ids. An edge (gateway/apps/server: the OMS and venue Applications on the
process's one asyncio loop, either FIX backend) decodes what arrives into one of the
events below, calls ``GatewayCore.handle(event)`` (or the named method) and carries out
the commands it returns, in order, before it hands the core the next event. No sockets,
no threads, no locks; the clock is injected; nothing is called back.

Events (keyword-only, slotted): ``OmsNewOrder``, ``OmsCancelRequest``, ``OmsReplaceRequest``,
``OmsStatusRequest``, ``OmsSessionUp``, ``VenueExecutionReport``, ``VenueCancelRejected``,
``VenueUp``, ``VenueDown``, ``VenueSendFailed``, ``KillRequested``, ``ResetRequested``, ``Tick``,
``SessionEnded`` (a venue's scheduled session is over), ``DayEnded`` (the configured day end).
Commands: ``SendNewOrder``, ``SendCancel``, ``SendReplace``, ``QueryOrderStatus`` (to a
venue), ``ReportToOms``, ``RejectOmsCancel``, ``BroadcastNews`` (to the OMS).
Events and commands are values: nobody changes one after it is made. They are not declared
frozen only because a frozen dataclass sets every field through ``object.__setattr__``, which
made building a ``ReportToOms`` about 3x slower, on every order.

Invariants:
- compute, journal, apply, send: every order event is decided first (validation, risk as
  a pure ``evaluate``, routing), then journaled, then applied (exposure booked, pending
  flags set), then returned as commands. A failed journal write leaves no booked exposure,
  no pending flag, no half state, and the OMS gets a reject. (A venue's report is the one
  exception: it is a fact, so it is applied even when the journal fails, and counted.)
  While the native engine dispatches a received chunk the journal groups its records (one
  write per chunk, journal.py): a record is then held when the event is applied, and if the
  group's write fails nothing the held records explain is stored or sent. The order flow
  stops there, in sequence order (a later reject cannot overtake an acknowledgement still
  held), until the journal writes again; the log and ``Journal.write_failures`` say so;
- the edge runs the commands of one call before making the next, so a journal record
  followed by another was carried out; on start the last record's OMS reports (all of the
  last dispatch's, journal.py ``DispatchMark``) are sent again marked PossResend
  (``OmsSessionUp``), and every venue order without a venue answer
  is queried (``QueryOrderStatus`` on ``VenueUp``);
- risk answers with ``TradingStateChanged`` values; the core answers a HALTED with a cancel
  of every open order in scope and News, journaled first.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from gateway.common.clock import MONOTONIC, Clock, MonotonicClock
from gateway.core import journal as J
from gateway.core.model import (LIMIT, REJ_DUPLICATE, REJ_OTHER, ChildOrder, OrderIntent, RoutingDecision,
                                TradingStateChanged)
from gateway.core.orders import (OmsOrder, OrderManager, QueryOrderStatus, RejectOmsCancel, ReportToOms,
                                 RouteRemainder, SendCancel, SendNewOrder, SendReplace, VenueExecutionReport,
                                 CXL_OTHER)
from gateway.core.market import MarketState
from gateway.core.risk import HALTED, RiskConfig, RiskEngine
from gateway.core.router import build_router
from gateway.core.router.config import RoutingConfig
from gateway.core.router.decisions import DecisionLog
from gateway.core.router.policies import BaseRouter

log = logging.getLogger("gateway.core.hub")

# Ended orders retired per Tick (every 50 ms in the gateway): 20,000 a second at most, ~0.55 us
# each compiled, so a backlog after a burst is worked off holding the loop <= ~0.6 ms a tick.
RETIRE_PER_TICK = 1000

__all__ = ["GatewayCore", "IdGen", "OmsNewOrder", "OmsCancelRequest", "OmsReplaceRequest", "OmsStatusRequest",
           "OmsSessionUp", "VenueExecutionReport", "VenueCancelRejected", "VenueUp", "VenueDown",
           "VenueSendFailed", "KillRequested", "ResetRequested", "Tick", "SessionEnded", "DayEnded", "SendNewOrder", "SendCancel",
           "SendReplace", "QueryOrderStatus", "ReportToOms", "RejectOmsCancel", "BroadcastNews"]


# ------------------------------------------------------------ events (edges -> core)

@dataclass(slots=True, kw_only=True, init=False)    # init=False: a native __init__ (see model.py)
class OmsNewOrder:
    intent: OrderIntent
    possible_resend: bool = False     # PossDupFlag(43) or PossResend(97) was Y

    def __init__(self, *, intent: OrderIntent, possible_resend: bool = False) -> None:
        self.intent = intent
        self.possible_resend = possible_resend


@dataclass(slots=True, kw_only=True)
class OmsCancelRequest:
    session: str
    cl_ord_id: str
    orig_cl_ord_id: str
    possible_resend: bool = False     # PossDupFlag(43) or PossResend(97) was Y


@dataclass(slots=True, kw_only=True)
class OmsReplaceRequest:
    session: str
    new: OrderIntent
    orig_cl_ord_id: str
    possible_resend: bool = False     # PossDupFlag(43) or PossResend(97) was Y


@dataclass(slots=True, kw_only=True)
class OmsStatusRequest:
    session: str
    cl_ord_id: str
    symbol: str = "?"
    side: str = "1"


@dataclass(slots=True, kw_only=True)
class OmsSessionUp:
    session: str


@dataclass(slots=True, kw_only=True)
class VenueCancelRejected:
    venue: str
    cl_ord_id: str                    # our cancel/replace request's ClOrdID
    text: str = "cancel rejected"


@dataclass(slots=True, kw_only=True)
class VenueUp:
    venue: str


@dataclass(slots=True, kw_only=True)
class VenueDown:
    venue: str


@dataclass(slots=True, kw_only=True)
class VenueSendFailed:
    """The edge could not hand a venue command to its session (not logged on)."""
    command: Any                      # SendNewOrder | SendCancel | SendReplace | QueryOrderStatus
    text: str


@dataclass(slots=True, kw_only=True)
class KillRequested:
    by: str
    reason: str = "manual kill"


@dataclass(slots=True, kw_only=True)
class ResetRequested:
    by: str
    session: str | None = None        # None: the firm (and every suspended session)


@dataclass(slots=True, kw_only=True)
class SessionEnded:
    """A venue's scheduled session is over (its schedule's end, not a disconnect): the venue
    expired its Day orders, so the core expires them to the OMS (ExecType C)."""
    venue: str
    text: str = ""


@dataclass(slots=True, kw_only=True)
class DayEnded:
    """The configured trading-day end (``day_end``): every open Day order is canceled at its
    venue and expired to the OMS (ExecType C) when the venue confirms."""
    text: str = ""


@dataclass(slots=True, kw_only=True)
class Tick:
    """A timer: re-mark positions to the live books (loss triggers see price moves)."""


# ------------------------------------------------------------ commands (core -> edges)

@dataclass(slots=True, kw_only=True)
class BroadcastNews:
    """News (35=B) to every logged-on OMS session, or to ``session`` only."""
    headline: str
    text: str
    session: str | None = None


class IdGen:
    """Unique ids across restarts: a time-based run prefix and a counter."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or _base36(int(time.time() * 1000))
        self._n = 0                   # the last number given out
        # every id is "<letter><prefix>.<number>": printable ASCII without '"' or '\\' in the
        # prefix means no id needs JSON escaping (the journal writes them as they are)
        self.plain = all(" " <= ch <= "~" and ch != '"' and ch != "\\" for ch in self.prefix)
        # each kind's "<letter><prefix>." made once: an id is then one join of two parts
        self._venue, self._order, self._exec = f"G{self.prefix}.", f"O{self.prefix}.", f"E{self.prefix}."

    def venue(self) -> str:
        self._n += 1
        return f"{self._venue}{self._n}"

    def order(self) -> str:
        self._n += 1
        return f"{self._order}{self._n}"

    def exec(self) -> str:
        self._n += 1
        return f"{self._exec}{self._n}"


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


class GatewayCore:
    """See the module docstring. ``market`` is a ``MarketState`` (books, latency, marks)."""

    def __init__(self, *, routing: RoutingConfig, risk: RiskConfig, journal_path, market: MarketState,
                 clock: Clock = MONOTONIC, ids: IdGen | None = None, policy: str | None = None,
                 decisions: DecisionLog | None = None, journal: J.Journal | None = None,
                 retire_after_s: float = 60.0) -> None:
        self.routing = routing
        self.clock = clock
        # the clock read once per order event and passed down (routing, order state, journal, ack
        # latency); the real clock's now() is time.perf_counter, called directly: no method call
        self._now: Callable[[], float] = time.perf_counter if type(clock) is MonotonicClock else clock.now
        self.market = market
        self.ids = ids or IdGen()
        self.policy = policy or routing.policy
        self._policy_override = policy
        self.decisions = decisions or DecisionLog(routing.decision_log_size, routing.decision_log_path)
        self._routers: dict[str, BaseRouter] = {}
        self._session_router: dict[str, BaseRouter] = {}
        self.counts = {"resends_answered": 0, "send_failures": 0, "journal_failures": 0, "handler_errors": 0,
                       "in_flight_rejects": 0, "status_queries": 0, "reports_resent": 0}
        # the order index (``new_order``: ``is_known``) refuses repeated ClOrdIDs for the day
        self.risk = RiskEngine(risk, clock, mark_price=market.mark_price, own_cl_ord_ids=False)
        self._max_in_flight = risk.max_in_flight_per_venue
        self.orders = OrderManager(None, micro_burst=routing.micro_burst)
        self.recovery = J.replay(journal_path, self.orders)       # risk detached: nothing re-run
        self.orders.risk = self.risk
        self._restore_risk(self.recovery.risk_states)
        self._risk_states: list = list(self.recovery.risk_states)   # for compaction snapshots
        # Every timing_sample-th new order, the risk check and the routing decision are timed
        # (perf_counter) into ``timings`` (("risk" | "route", seconds)), which the process drains
        # into its metrics; 0 = never. Sampling keeps the clock reads off most orders.
        self.timing_sample = 0
        # An ended order keeps its venue side this long (late reports, the OMS's cancel
        # answered), then ``tick`` retires it (OrderManager.retire): memory per order of the day
        # drops to what the OMS can still ask about.
        self.retire_after_s = retire_after_s
        self.timings: deque = deque(maxlen=4096)
        self._orders_seen = 0
        self.journal = journal or J.Journal(journal_path)
        self._pending_oms: dict[str, list] = {}                   # session -> reports to re-send on logon
        self._reconcile()
        self._handlers: dict[type, Callable[[Any], list]] = {
            OmsNewOrder: self.new_order, OmsCancelRequest: self.cancel, OmsReplaceRequest: self.replace,
            OmsStatusRequest: self.status_request, OmsSessionUp: self.oms_session_up,
            VenueExecutionReport: self.venue_report, VenueCancelRejected: self.venue_cancel_rejected,
            VenueUp: self.venue_up, VenueDown: self.venue_down, VenueSendFailed: self.venue_send_failed,
            KillRequested: self.kill, ResetRequested: self.reset, Tick: self.tick,
            SessionEnded: self.session_ended, DayEnded: self.day_ended}

    # ------------------------------------------------------------ the one entry point

    def handle(self, event: Any) -> list:
        """Any event above -> the commands to carry out, in order. Never raises for an event's content."""
        try:
            cls = type(event)
            if cls is OmsNewOrder:             # the order path first, without the table
                return self.new_order(event)
            if cls is VenueExecutionReport:
                return self.venue_report(event)
            return self._handlers[cls](event)
        except Exception:      # noqa: BLE001 - a bug in one event must not take every session down
            self.counts["handler_errors"] += 1
            log.exception("error handling %r", event)
            if isinstance(event, OmsNewOrder):
                return [self._unjournaled_reject(event.intent, "gateway error: order not accepted")]
            if isinstance(event, OmsCancelRequest):
                return [_request_not_processed(event.session, event.cl_ord_id, event.orig_cl_ord_id, "1")]
            if isinstance(event, OmsReplaceRequest):
                return [_request_not_processed(event.session, event.new.cl_ord_id, event.orig_cl_ord_id, "2")]
            return []

    # ------------------------------------------------------------ OMS events

    def new_order(self, ev: OmsNewOrder) -> list:
        intent = ev.intent
        if self.orders.is_known(intent.oms_session, intent.cl_ord_id):
            if ev.possible_resend:     # a resend of an order we have: tell its status, never route twice
                self.counts["resends_answered"] += 1
                return [self.orders.status_report(intent.oms_session, intent.cl_ord_id, intent.symbol, intent.side,
                                                  self.ids.exec())]
            return self._reject(intent, f"duplicate ClOrdID {intent.cl_ord_id!r}", REJ_DUPLICATE)
        if not intent.qty > 0:
            return self._reject(intent, f"OrderQty must be positive (got {intent.qty:g})", REJ_OTHER)
        price = intent.price
        if intent.ord_type == LIMIT and (price is None or not price > 0):
            return self._reject(intent, f"limit Price must be positive (got {intent.price or 0:g})", REJ_OTHER)
        self._orders_seen += 1
        if self.timing_sample and not self._orders_seen % self.timing_sample:
            return self._timed_new_order(intent)
        rej = self.risk.evaluate(intent)                        # decide: nothing booked yet
        if rej is not None:
            return self._reject(intent, f"risk: {rej.text}", rej.ord_rej_reason)
        now = self._now()                                       # the order's one clock read
        decision = self.router_for(intent.oms_session).decide(intent, now)
        return self._route_and_accept(intent, decision, now)

    def _timed_new_order(self, intent: OrderIntent) -> list:
        """``new_order`` after the intake checks, with the risk check and the decision timed."""
        t0 = time.perf_counter()
        rej = self.risk.evaluate(intent)
        t1 = time.perf_counter()
        self.timings.append(("risk", t1 - t0))
        if rej is not None:
            return self._reject(intent, f"risk: {rej.text}", rej.ord_rej_reason)
        router = self.router_for(intent.oms_session)
        now = self._now()
        t1 = time.perf_counter()
        decision = router.decide(intent, now)
        self.timings.append(("route", time.perf_counter() - t1))
        return self._route_and_accept(intent, decision, now)

    def _route_and_accept(self, intent: OrderIntent, decision: RoutingDecision, now: float) -> list:
        children = decision.children
        if not children:
            return self._reject(intent, f"no route: {decision.reason}", REJ_OTHER)
        cap = self._max_in_flight
        if cap is not None:
            busy = self._over_in_flight_cap(children, cap)
            if busy is not None:
                self.counts["in_flight_rejects"] += 1
                return self._reject(intent, busy, REJ_OTHER)
        ids = self.ids
        order_id = ids.order()
        vids = [ids.venue()] if len(children) == 1 else [ids.venue() for _ in children]
        try:                                                    # journal
            self.journal.write_accepted(intent, order_id, children, vids, decision.policy, decision.reason, now,
                                        ids.plain)
        except OSError as exc:
            return self._journal_failed_reject(intent, exc)
        self.risk.book(intent)                                  # apply
        return self.orders.accept(intent, order_id, children, vids, decision.policy, decision.reason, now)

    def _over_in_flight_cap(self, children: list[ChildOrder], cap: int) -> str | None:
        for c in children:
            n = self.orders.in_flight.get(c.venue, 0)
            if n >= cap:
                return (f"venue busy: {c.venue} has {n} orders in flight >= max_in_flight_per_venue {cap}; "
                        "not sent (back-pressure)")
        return None

    def _reject(self, intent: OrderIntent, text: str, reason: int) -> list:
        order_id = self.ids.order()
        now = self.clock.now()
        try:
            self.journal.write(J.Rejected(intent=intent, order_id=order_id, text=text, reason=reason, at=now))
        except OSError as exc:
            self._journal_failure(exc)      # the OMS still gets its reject; nothing was booked
        return self.orders.reject_new(intent, order_id, text, reason, now)

    def _journal_failed_reject(self, intent: OrderIntent, exc: OSError) -> list:
        self._journal_failure(exc)
        return [self._unjournaled_reject(intent, f"gateway journal unavailable ({exc.strerror or exc}): "
                                                 "order not accepted")]

    def _unjournaled_reject(self, intent: OrderIntent, text: str) -> ReportToOms:
        # not indexed either: the ClOrdID stays free, as after a restart it would be
        order = OmsOrder(intent, self.ids.order(), status="8", text=text)
        return ReportToOms(order=order, exec_type="8", ord_status="8", cl_ord_id=intent.cl_ord_id,
                           orig_cl_ord_id=None, cum_qty=0.0, leaves_qty=0.0, avg_px=0.0, text=text,
                           ord_rej_reason=REJ_OTHER, exec_id=order.next_exec_id())

    def _journal_failure(self, exc: Exception) -> None:
        self.counts["journal_failures"] += 1
        log.error("journal write failed: %s", exc)

    def _resent_request(self, session: str, cl_ord_id: str) -> list | None:
        """A PossDup/PossResend cancel or replace whose ClOrdID we know: its current status, not a reject."""
        if not self.orders.is_known(session, cl_ord_id):
            return None
        self.counts["resends_answered"] += 1
        return [self.orders.status_report(session, cl_ord_id, "?", "1", self.ids.exec())]

    def cancel(self, ev: OmsCancelRequest) -> list:
        orders = self.orders
        if ev.possible_resend:
            answer = self._resent_request(ev.session, ev.cl_ord_id)
            if answer is not None:
                return answer
        order = orders.by_oms.get((ev.session, ev.orig_cl_ord_id))
        refuse = orders.refusal(order, ev.session, ev.cl_ord_id, ev.orig_cl_ord_id, "1")
        if refuse is not None:
            return [refuse]
        assert order is not None           # refusal() answers an unknown order
        ids = [self.ids.venue() for c in order.live_children() if not c.cancel_pending]
        try:
            self.journal.write(J.Cancel(session=ev.session, cl_ord_id=ev.cl_ord_id,
                                        orig_cl_ord_id=ev.orig_cl_ord_id, venue_ids=ids, at=self.clock.now()))
        except OSError as exc:
            self._journal_failure(exc)
            return [self._cancel_refused(order, ev.session, ev.cl_ord_id, ev.orig_cl_ord_id, "1", exc)]
        return orders.cancel(ev.session, ev.cl_ord_id, ev.orig_cl_ord_id, J._ids(ids, ev.cl_ord_id))

    def _cancel_refused(self, order: OmsOrder, session: str, cl_ord_id: str, orig: str, response_to: str,
                        exc: Exception) -> RejectOmsCancel:
        return RejectOmsCancel(session=session, cl_ord_id=cl_ord_id, orig_cl_ord_id=orig, order_id=order.order_id,
                               ord_status=order.status, response_to=response_to, reason=CXL_OTHER,
                               text=f"gateway journal unavailable ({exc}): request not forwarded")

    def replace(self, ev: OmsReplaceRequest) -> list:
        orders = self.orders
        if ev.possible_resend:
            answer = self._resent_request(ev.session, ev.new.cl_ord_id)
            if answer is not None:
                return answer
        problem = orders.replace_problem(ev.session, ev.new, ev.orig_cl_ord_id)
        if problem is not None:
            return [problem]
        order = orders.by_oms[(ev.session, ev.orig_cl_ord_id)]
        rej = self.risk.evaluate_replace(order.intent, ev.new)
        if rej is not None:
            return [RejectOmsCancel(session=ev.session, cl_ord_id=ev.new.cl_ord_id, orig_cl_ord_id=ev.orig_cl_ord_id,
                                    order_id=order.order_id, ord_status=order.status, response_to="2",
                                    reason=CXL_OTHER, text=rej.text)]
        vid = self.ids.venue()
        try:
            self.journal.write(J.Replace(session=ev.session, new=ev.new, orig_cl_ord_id=ev.orig_cl_ord_id,
                                         venue_id=vid, at=self.clock.now()))
        except OSError as exc:
            self._journal_failure(exc)
            return [self._cancel_refused(order, ev.session, ev.new.cl_ord_id, ev.orig_cl_ord_id, "2", exc)]
        self.risk.book_replace(order.intent, ev.new)
        return orders.start_replace(ev.session, ev.new, ev.orig_cl_ord_id, vid)

    def status_request(self, ev: OmsStatusRequest) -> list:
        return [self.orders.status_report(ev.session, ev.cl_ord_id, ev.symbol, ev.side, self.ids.exec())]

    def oms_session_up(self, ev: OmsSessionUp) -> list:
        """Reports a crash may have kept from this session, marked PossResend."""
        pending = self._pending_oms.pop(ev.session, [])
        self.counts["reports_resent"] += len(pending)
        return pending

    # ------------------------------------------------------------ venue events

    def venue_report(self, ev: VenueExecutionReport) -> list:
        now = self._now()
        try:
            self.journal.write_venue_report(ev, now)
        except OSError as exc:
            # a venue's report is a fact: losing it from memory too would be worse than from the journal
            self._journal_failure(exc)
        child = self.orders.by_venue_id.get(ev.cl_ord_id)
        if child is not None:
            if not child.acked:
                self.market.record_ack(child.venue, now - child.sent_at, now)
        return self._follow_up(self.orders.on_venue_exec(ev, now, child))   # (found: not looked up again)

    def venue_cancel_rejected(self, ev: VenueCancelRejected) -> list:
        now = self.clock.now()
        try:
            self.journal.write(J.CancelRejected(venue_cl_ord_id=ev.cl_ord_id, text=ev.text, at=now))
        except OSError as exc:
            self._journal_failure(exc)
        return self._follow_up(self.orders.on_venue_cancel_reject(ev.cl_ord_id, ev.text, now))

    def venue_send_failed(self, ev: VenueSendFailed) -> list:
        self.counts["send_failures"] += 1
        cmd, now = ev.command, self.clock.now()
        if isinstance(cmd, QueryOrderStatus):
            return []                  # asked again on the next VenueUp
        if isinstance(cmd, SendNewOrder):
            self._write(J.SendFailed(venue_cl_ord_id=cmd.child.cl_ord_id, text=ev.text, at=now))
            return self._follow_up(self.orders.send_failed(cmd.child, ev.text, now))
        self._write(J.CancelRejected(venue_cl_ord_id=cmd.cl_ord_id, text=ev.text, at=now))
        return self._follow_up(self.orders.on_venue_cancel_reject(cmd.cl_ord_id, ev.text, now))

    def venue_up(self, ev: VenueUp) -> list:
        """Ask the venue about every order of ours it has not answered (restart, reconnect): new
        orders and pending cancels by the order's ClOrdID, pending replaces by the replace's
        (the answers resolve them: ``OrderManager._on_status`` / ``_on_replace_status``)."""
        out = [QueryOrderStatus(child=c) for c in self.orders.unanswered_children() if c.venue == ev.venue]
        out += [QueryOrderStatus(child=c, cl_ord_id=vid) for c, vid in self.orders.pending_replaces()
                if c.venue == ev.venue]
        self.counts["status_queries"] += len(out)
        return out

    def venue_down(self, ev: VenueDown) -> list:
        return []

    # ------------------------------------------------------------ end of the trading day

    def session_ended(self, ev: SessionEnded) -> list:
        """The venue expired its Day orders at its session end: tell the OMS (ExecType C)."""
        if not self.orders.day_orders(ev.venue):
            return []                  # nothing to expire: nothing journaled
        text = ev.text or f"Day order expired: {ev.venue} session ended"
        # a failed write still expires: the venue has already dropped these orders
        self._write(J.DayEnded(text=text, venue=ev.venue, at=self.clock.now()))
        return self._follow_up(self.orders.expire_day(ev.venue, text, self.clock.now()))

    def day_ended(self, ev: DayEnded) -> list:
        """The configured day end: every open Day order is canceled at its venue and expired to
        the OMS (ExecType C) when the venue confirms; on a venue that is not logged on (it will
        not answer) it is expired at once."""
        orders = self.orders
        if not orders.day_orders():
            return []
        text = ev.text or "Day order expired: end of the trading day"
        up = set(self.market.up_venues())
        down = sorted({c.venue for o in orders.day_orders() for c in o.live_children()
                       if c.venue not in up})
        ids = [self.ids.venue() for o in orders.day_orders() if o.cancel_request is None
               for c in o.live_children() if c.venue not in down and not c.cancel_pending]
        now = self.clock.now()
        self._write(J.DayEnded(text=text, venue_ids=ids, down_venues=down, at=now))
        out: list = []
        for venue in down:
            out += orders.expire_day(venue, text, now)
        return self._follow_up(out + orders.cancel_day(J._ids(ids, "D"), text))

    # ------------------------------------------------------------ risk and people

    def kill(self, ev: KillRequested) -> list:
        changed = self.risk.trip(f"manual: {ev.reason}", by=ev.by)
        return self._on_state_change(changed) if changed is not None else []

    def reset(self, ev: ResetRequested) -> list:
        changed = self.risk.reset(ev.by, ev.session)     # raises ValueError when no person is named
        return self._on_state_change(changed) if changed is not None else []

    def tick(self, ev: Tick | None = None) -> list:
        now = self.clock.now()
        self.orders.retire(now - self.retire_after_s, now, RETIRE_PER_TICK)
        changed = self.risk.refresh_marks()
        return self._on_state_change(changed) if changed is not None else []

    def _on_state_change(self, ev: TradingStateChanged) -> list:
        rec = J.RiskState(state=ev.state, reason=ev.reason, by=ev.by, session=ev.session, at=self.clock.now())
        self._write(rec)
        self._risk_states.append(rec)
        if ev.state != HALTED:
            log.warning("trading resumed%s by %s", f" for {ev.session}" if ev.session else "", ev.by)
            who = f"session {ev.session}" if ev.session else "Kill switch"
            return [BroadcastNews(headline="Trading resumed", session=ev.session,
                                  text=f"{who} reset by {ev.by}; new orders are accepted.")]
        log.error("%s: %s", f"SESSION {ev.session} SUSPENDED" if ev.session else "KILL SWITCH TRIPPED", ev.reason)
        text = f"kill switch: {ev.reason}" if ev.session is None else f"session suspended: {ev.reason}"
        out = self._cancel_all(text, ev.session)
        if ev.session is None:
            news = BroadcastNews(headline="KILL SWITCH: trading halted", text=(
                f"Kill switch tripped: {ev.reason}. New orders are rejected and open orders are being canceled."))
        else:
            news = BroadcastNews(headline="SESSION SUSPENDED", session=ev.session, text=(
                f"This session is suspended: {ev.reason}. New orders are rejected and its open orders "
                "are being canceled."))
        return out + [news]

    def _cancel_all(self, text: str, session: str | None) -> list:
        ids = [self.ids.venue() for o in self.orders.open.values()
               if o.cancel_request is None and (session is None or o.session == session)
               for c in o.live_children() if not c.cancel_pending]
        # a failed write still cancels: stopping the risk matters more than replaying it exactly
        self._write(J.CancelAll(text=text, venue_ids=ids, session=session, at=self.clock.now()))
        return self._follow_up(self.orders.cancel_all(J._ids(ids, "K"), text, session))

    # ------------------------------------------------------------ outputs that need the core again

    def _follow_up(self, outs: list) -> list:
        """Resolve what the order manager handed back for the core: risk changes, remainders."""
        for o in outs:
            if type(o) is TradingStateChanged or type(o) is RouteRemainder:
                break
        else:
            return outs                # the usual case: only commands for the edges
        done: list = []
        for o in outs:
            if isinstance(o, TradingStateChanged):
                done += self._on_state_change(o)
            elif isinstance(o, RouteRemainder):
                done += self._route_remainder(o)
            else:
                done.append(o)
        return done

    def _route_remainder(self, rr: RouteRemainder) -> list:
        order, now = rr.order, self.clock.now()
        spec = self._retry_route(order, rr.qty)
        if spec is not None:
            vid = self.ids.venue()
            if self._write(J.Retry(order_id=order.order_id, spec=spec, venue_id=vid, at=now)):
                return self.orders.add_retry(order, spec, vid, now)
        self._write(J.RemainderDone(order_id=order.order_id, at=now))
        return self._follow_up(self.orders.end_remainder(order, now))

    def _retry_route(self, order: OmsOrder, remaining: float) -> ChildOrder | None:
        """Micro-burst: the unfilled IOC remainder once more, to the best venue not tried yet."""
        router = self.router_for(order.session)
        if router.name != "scalp":          # only the scalp policy re-sends remainders
            return None
        tried = tuple(c.venue for c in order.children)
        decision = router.retry(order.intent, None, remaining, exclude=tried)
        if decision is None or decision.rejected:
            return None
        return next((c for c in decision.children if c.venue not in tried), None)

    def _write(self, record) -> bool:
        try:
            self.journal.write(record)
            return True
        except OSError as exc:
            self._journal_failure(exc)
            return False

    # ------------------------------------------------------------ routing

    def router_for(self, oms_session: str) -> BaseRouter:
        router = self._session_router.get(oms_session)
        if router is None:
            name = self._policy_override or self.routing.policy_for(oms_session)
            router = self._routers.get(name)
            if router is None:
                router = self._routers[name] = build_router(self.routing, self.market, self.clock, name,
                                                            log=self.decisions)
            self._session_router[oms_session] = router
        return router

    # ------------------------------------------------------------ restart

    def _restore_risk(self, risk_states: list) -> None:
        """Positions, open exposure, used ClOrdIDs and a tripped switch survive a restart."""
        orders = self.orders
        fills = []
        for o in orders.by_order_id.values():           # in the order they were accepted
            if o.children:
                fills += [(o.intent, c.cum_qty, c.avg_px) for c in o.children if c.cum_qty > 0]
            elif o.cum_qty > 0:                           # retired: the order's own sums
                fills.append((o.intent, o.cum_qty, o.avg_px))
        open_orders = [(o.intent, o.leaves_qty) for o in orders.open.values()]
        self.risk.restore(fills, open_orders, ())        # ClOrdIDs: the order index has them
        firm = [r for r in risk_states if r.session is None]
        if firm and firm[-1].state == HALTED:     # its orders were canceled before the restart
            self.risk.trip(f"{firm[-1].reason} (still halted after a restart)", by=firm[-1].by)
        last_by_session: dict[str, Any] = {}
        for r in risk_states:
            if r.session is not None:
                last_by_session[r.session] = r
        for session, r in last_by_session.items():
            if r.state == HALTED:
                self.risk.suspend(session, f"{r.reason} (still suspended after a restart)", by=r.by)

    def _reconcile(self) -> None:
        """After replay: what the last record may not have told the OMS, and orders left stranded."""
        pending = [_poss_resend(o) for o in self.recovery.undelivered]
        for order in self.orders.stranded_orders():    # a crash between a venue's end and our retry
            now = self.clock.now()
            self._write(J.RemainderDone(order_id=order.order_id, text="ended after a restart", at=now))
            pending += [_poss_resend(o) for o in self.orders.end_remainder(order, now, "ended after a restart")
                        if isinstance(o, (ReportToOms, RejectOmsCancel))]
        for cmd in pending:
            session = cmd.order.session if isinstance(cmd, ReportToOms) else cmd.session
            self._pending_oms.setdefault(session, []).append(cmd)

    # ------------------------------------------------------------ journal housekeeping

    def compact(self, keep_old: bool = True, keep_done: bool = True) -> tuple[bool, str]:
        """Replace the journal by one snapshot record if now is a safe point (see journal.py).
        Returns (done, what happened or why not). Call it between events, e.g. after start-up
        replay and when ``journal_size()`` passes a limit at a quiet moment."""
        problem = J.snapshot_problem(self.orders)
        if problem is None and any(self._pending_oms.values()):
            problem = "reports are waiting for an OMS session to log on"
        if problem is not None:
            return False, f"not compacted: {problem}"
        states = _in_force(self._risk_states)
        snap = J.make_snapshot(self.orders, states, at=self.clock.now(), keep_done=keep_done)
        before = self.journal.size()
        try:
            old = self.journal.compact(snap, keep_old=keep_old)
        except OSError as exc:
            self._journal_failure(exc)
            return False, f"journal compaction failed: {exc}"
        self._risk_states = states
        kept = f"; the old journal is {old}" if old else ""
        return True, (f"journal compacted: {before} -> {self.journal.size()} bytes, "
                      f"{len(snap.orders)} orders in one snapshot{kept}")

    def journal_size(self) -> int:
        return self.journal.size()

    def close(self) -> None:
        """A clean stop: everything journaled was carried out."""
        if self.journal._fd is not None:
            self._write(J.Stopped(at=self.clock.now()))
        self.journal.close()
        self.decisions.close()

    # ------------------------------------------------------------ views

    def orders_view(self, limit: int = 200) -> list[dict]:
        rows = list(self.orders.by_order_id.values())[-limit:]
        return [_order_row(o) for o in rows]

    def snapshot(self) -> dict:
        return {"orders": self.orders.summary(), "risk": self.risk.snapshot(), "counts": dict(self.counts),
                "in_flight": dict(self.orders.in_flight),
                "recovery": {"applied": self.recovery.applied, "skipped": len(self.recovery.skipped),
                             "clean_stop": self.recovery.clean_stop}}


def _request_not_processed(session: str, cl_ord_id: str, orig_cl_ord_id: str, response_to: str) -> RejectOmsCancel:
    return RejectOmsCancel(session=session, cl_ord_id=cl_ord_id, orig_cl_ord_id=orig_cl_ord_id, order_id="NONE",
                           ord_status="8", response_to=response_to, reason=CXL_OTHER,
                           text="gateway error: request not processed")


def _in_force(states: list) -> list:
    """The risk-state records that still decide something: the last firm one, the last per session."""
    firm = [r for r in states if r.session is None][-1:]
    last: dict[str, Any] = {}
    for r in states:
        if r.session is not None:
            last[r.session] = r
    return firm + list(last.values())


def _poss_resend(cmd):
    if isinstance(cmd, ReportToOms):
        from dataclasses import replace
        return replace(cmd, poss_resend=True)
    return cmd


def _order_row(o: OmsOrder) -> dict:
    i = o.intent
    return {"order_id": o.order_id, "session": i.oms_session, "cl_ord_id": i.cl_ord_id, "symbol": i.symbol,
            "side": i.side, "qty": i.qty, "price": i.price, "tif": i.tif, "status": o.status,
            "cum_qty": o.cum_qty, "avg_px": o.avg_px, "policy": o.policy, "route_reason": o.route_reason,
            "text": o.text, "created_at": o.created_at, "done_at": o.done_at or None,
            "children": [{"venue": c.venue, "cl_ord_id": c.cl_ord_id, "qty": c.qty, "price": c.price,
                          "status": c.status, "cum_qty": c.cum_qty, "venue_order_id": c.venue_order_id}
                         for c in o.children]}

