"""The venue side: one ``Application`` for every venue session (one initiator engine).

Thin edge, the same for both engines: session events, probe answers (Heartbeats) and
market data (W/X/Y) go to the ``MarketState``; ExecutionReports and OrderCancelRejects are
decoded into the core's events (``VenueExecutionReport``, ``VenueCancelRejected``,
``VenueUp``, ``VenueDown``) and handed to ``sink``; the core's venue commands are
formatted here as preformatted body text. It holds no reference to the core.
``market_sender`` is the ``MarketState``'s way out: TestRequests via
``SessionHandle.send_test_request``, MarketDataRequests via ``SessionHandle.send``.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Final

from gateway.core.hub import VenueCancelRejected, VenueDown, VenueUp
from gateway.core.market import body_text
from gateway.core.orders import QueryOrderStatus, SendCancel, SendNewOrder, SendReplace, VenueExecutionReport
from gateway.apps.server.wire import (EventSink, FieldReader, native_sink, num, order_fields, required, to_float,
                                     transact_time, value_at)
from gateway.fix.codec import Message
from gateway.fix.engine import Unsupported

log = logging.getLogger("gateway.apps.server.venues")
# MarketDataRequests go out this long after a logon, not inside the logon callback: the logon
# exchange settles first (a venue that answers our Logon with a Logout, a resend, a sequence
# reset, sees those answered before any application message of ours).
SUBSCRIBE_DELAY_S: Final = 0.02


# the ExecutionReport's fields the order path reads, in this order (see parse_exec)
_EXEC: Final = FieldReader((11, 41, 17, 150, 39, 14, 151, 6, 32, 31, 37, 58))


def parse_exec(venue: str, msg: Message) -> VenueExecutionReport:
    """The order path's view of a venue ExecutionReport (codec ``Message``); an absent or
    empty quantity or price reads 0. Fields read by position (``wire.FieldReader``: one check
    of the message's layout, not a lookup per tag)."""
    at = _EXEC.positions(msg)
    return VenueExecutionReport(
        venue=venue, cl_ord_id=required(msg, at[0], 11), orig_cl_ord_id=value_at(msg, at[1]),
        exec_id=required(msg, at[2], 17), exec_type=required(msg, at[3], 150), ord_status=required(msg, at[4], 39),
        cum_qty=to_float(value_at(msg, at[5]) or "0"), leaves_qty=to_float(value_at(msg, at[6]) or "0"),
        avg_px=to_float(value_at(msg, at[7]) or "0"), last_qty=to_float(value_at(msg, at[8]) or "0"),
        last_px=to_float(value_at(msg, at[9]) or "0"), venue_order_id=value_at(msg, at[10]), text=value_at(msg, at[11]))


class VenueSession:
    """What the gateway tracks about one venue session."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.handle: Any = None
        self.key = ""
        self.logged_on = False
        self.state = "connecting"
        self.events: list[tuple[float, str]] = []
        self.orders_routed = 0
        self.fills = 0


class VenueApplication:
    """An ``Application`` (gateway/fix/engine.py) for the venue sessions. ``sink(event)``
    receives the order-path events; ``market`` (a ``MarketState``) the rest."""

    def __init__(self, venues: Any, market: Any, sink: Callable[[object], None],
                 note: Callable[[str, str, str], None], tracker: Any) -> None:
        self.market, self.sink, self.note, self.tracker = market, sink, note, tracker
        # the dispatcher behind ``sink`` (wire.native_sink), called natively while ``sink`` is it
        self._to: EventSink | None = native_sink(sink)
        self._to_sink: object = sink
        # messages in/out counted by our callbacks (quickfix); fixed for the tracker's life
        self.by_callbacks: bool = bool(tracker.by_callbacks)
        self.venues: dict[str, VenueSession] = {v.name: VenueSession(v.name) for v in venues}
        self._by_ids: dict[tuple[str, str], str] = {(v.sender_comp_id, v.target): v.name for v in venues}
        self._name_of: dict[str, str] = {}      # session key -> venue name
        self._session_of: dict[str, VenueSession] = {}   # session key -> its VenueSession (one read per report)
        self.on_md_reject: Callable[[str], None] | None = None   # metrics: a venue refused our MD request

    def attach(self, handles: dict[str, Any]) -> None:
        """The engine's handles, once it exists: each venue learns its session."""
        for key, handle in handles.items():
            name = self._by_ids.get((handle.sender_comp_id, handle.target_comp_id))
            if name is not None:
                self._name_of[key] = name
                self._session_of[key] = self.venues[name]
                self.venues[name].handle, self.venues[name].key = handle, key

    # ------------------------------------------------------------ session events

    def check_logon(self, session: Any, logon: Message) -> str | None:
        return None

    def on_logon(self, session: Any) -> None:
        name = self._name_of[session.key]
        vs = self.venues[name]
        vs.logged_on, vs.state = True, "logged_on"
        self.tracker.logon(session.key)
        self.note("venue", name, "logon")
        self.market.on_venue_up(name, session, subscribe=False)
        asyncio.get_running_loop().call_later(SUBSCRIBE_DELAY_S, self._subscribe)
        self.sink(VenueUp(venue=name))

    def _subscribe(self) -> None:
        try:
            self.market.subscribe_pending()
        except Exception:  # noqa: BLE001 - a loop callback must not raise
            log.exception("market data subscription failed")

    def on_logout(self, session: Any, reason: str) -> None:
        name = self._name_of[session.key]
        vs = self.venues[name]
        was_up = vs.logged_on
        vs.logged_on, vs.state = False, "down"
        self.tracker.logout(session.key, reason)
        self.note("venue", name, "logout" if was_up else "connect failed or logon refused")
        self.market.on_venue_down(name)
        self.sink(VenueDown(venue=name))

    def on_admin(self, session: Any, msg: Message) -> None:
        if self.by_callbacks:
            self.tracker.received(session.key)
        if msg.msg_type == "0":
            self.market.on_venue_admin(self._name_of[session.key], msg, "0")

    def on_message(self, session: Any, msg: Message) -> None:
        if self.by_callbacks:
            self.tracker.received(session.key)
        vs = self._session_of[session.key]
        venue = vs.name
        t = msg.msg_type
        if t == "8":
            ev = parse_exec(venue, msg)
            if ev.exec_type == "F":
                vs.fills += 1
            to = self._to
            if to is not None and self.sink is self._to_sink:
                to.submit(ev)
            else:
                self.sink(ev)
        elif t == "9":
            self.sink(VenueCancelRejected(venue=venue, cl_ord_id=msg[11], text=msg.get(58) or "cancel rejected"))
        elif t == "j" and msg.get(372) == "V":
            self._md_business_reject(venue, msg)
        elif not self.market.on_venue_app(venue, msg, t):
            if t == "j":
                log.warning("venue %s BusinessMessageReject of our 35=%s: %s", venue, msg.get(372), msg.get(58))
                self.note("venue", venue, f"BusinessMessageReject of 35={msg.get(372)}: {msg.get(58)}")
            else:
                raise Unsupported(f"MsgType {t} not supported")
        elif t == "Y" and self.on_md_reject is not None:
            self.on_md_reject(venue)

    def _md_business_reject(self, venue: str, msg: Message) -> None:
        """A BusinessMessageReject of our MarketDataRequest: shown in status beside the 35=Y ones."""
        v = self.market.venues.get(venue)
        ref = msg.get(379) or ""                      # BusinessRejectRefID: our MDReqID, when the venue says
        symbol = (v.md_req.get(ref) if v is not None else None) or (f"MDReqID {ref}" if ref else
                                                                    f"request seq {msg.get(45) or '?'}")
        reason = msg.get(58) or f"BusinessRejectReason {msg.get(380) or '?'}"
        if v is not None:
            v.md_rejects[symbol] = f"BusinessMessageReject: {reason}"
        log.warning("venue %s rejected market data for %s: %s", venue, symbol, reason)
        self.note("venue", venue, f"market data for {symbol} rejected: {reason}")
        if self.on_md_reject is not None:
            self.on_md_reject(venue)

    # ------------------------------------------------------------ outgoing

    def market_sender(self, session: Any, msg_type: str, fields: Any, groups: Any) -> bool:
        """``MarketState``'s sender: probes as TestRequests, everything else as an app message."""
        if msg_type == "1":
            ok = session.send_test_request(str(fields[0][1]))
        else:
            ok = session.send(msg_type, body_text(fields, groups))
        if ok and self.by_callbacks:
            self.tracker.sent(session.key)
        return ok

    def send(self, out: SendNewOrder | SendCancel | SendReplace | QueryOrderStatus) -> bool:
        """Send a SendNewOrder / SendCancel / SendReplace / QueryOrderStatus; False if the session would not take it."""
        child = out.child
        vs = self.venues.get(child.venue)
        if vs is None or not vs.logged_on or vs.handle is None:
            return False
        order = child.parent
        intent = order.intent
        if type(out) is SendNewOrder:
            vs.orders_routed += 1
            fields = order_fields(intent.symbol, intent.side, child.qty, child.ord_type, child.price, child.tif)
            if (order.wire_intent is not intent and child.qty == intent.qty and child.price == intent.price
                    and child.ord_type == intent.ord_type and child.tif == intent.tif):
                order.wire_fields, order.wire_intent = fields, intent   # the order's reports reuse it
            body = f"11={child.cl_ord_id}\x01{fields}60={transact_time()}\x01"
            msg_type = "D"
        elif type(out) is QueryOrderStatus:
            own = out.cl_ord_id is None     # a pending replace's ClOrdID is asked alone: no OrderID fallback
            body = (f"11={out.cl_ord_id or child.cl_ord_id}\x01"
                    + (f"37={child.venue_order_id}\x01" if child.venue_order_id and own else "")
                    + f"55={intent.symbol}\x0154={intent.side}\x01")
            msg_type = "H"
        elif type(out) is SendCancel:
            body = (f"11={out.cl_ord_id}\x0141={out.orig_cl_ord_id}\x01"
                    + (f"37={child.venue_order_id}\x01" if child.venue_order_id else "")
                    + f"55={intent.symbol}\x0154={intent.side}\x0138={num(child.qty)}\x01"
                    f"60={transact_time()}\x01")
            msg_type = "F"
        elif type(out) is SendReplace:
            body = (f"11={out.cl_ord_id}\x0141={out.orig_cl_ord_id}\x0155={intent.symbol}\x0154={intent.side}"
                    f"\x0138={num(out.qty)}\x0140={child.ord_type}\x01"
                    + (f"44={num(out.price)}\x01" if out.price is not None else "")
                    + f"59={child.tif}\x0160={transact_time()}\x01")
            msg_type = "G"
        else:
            raise TypeError(f"not a venue order message: {out!r}")
        ok: bool = vs.handle.send(msg_type, body)
        if ok and self.by_callbacks:
            self.tracker.sent(vs.key)
        return ok

    def snapshot(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, vs in self.venues.items():
            h = vs.handle
            out.append({"name": name, "session": vs.key, "logged_on": vs.logged_on, "state": vs.state,
                        "orders_routed": vs.orders_routed, "fills": vs.fills,
                        "next_sender_seq": h.next_sender_seq if h is not None else None,
                        "next_target_seq": h.next_target_seq if h is not None else None,
                        "events": [{"at": round(t, 3), "event": e} for t, e in vs.events[-10:]]})
        return out
