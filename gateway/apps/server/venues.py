"""The venue side: one quickfix initiator Application for every venue session.

Thin edge: session events and market data / probe answers go to the ``MarketState``
(the ``VenueListener``); ExecutionReports and OrderCancelRejects are decoded into the
core's events (``VenueExecutionReport``, ``VenueCancelRejected``, ``VenueUp``,
``VenueDown``) and handed to ``sink``; the core's venue commands are formatted here.
It holds no reference to the core.
"""
from __future__ import annotations

from typing import Callable

import quickfix as fix

from gateway.fix import quickfix_backend as fixedge
from gateway.fix.quickfix_backend import fix_number, get, msg_type, number, required
from gateway.core.hub import VenueCancelRejected, VenueDown, VenueUp
from gateway.core.orders import QueryOrderStatus, SendCancel, SendNewOrder, SendReplace, VenueExecutionReport


def parse_exec(venue: str, f: dict[str, str]) -> VenueExecutionReport:
    """The order path's view of a venue ExecutionReport (from ``fixedge.field_map``), by field name."""
    return VenueExecutionReport(
        venue=venue, cl_ord_id=required(f, 11), orig_cl_ord_id=f.get("41"), exec_id=required(f, 17),
        exec_type=required(f, 150), ord_status=required(f, 39), cum_qty=number(f, 14, need=False),
        leaves_qty=number(f, 151, need=False), avg_px=number(f, 6, need=False),
        last_qty=number(f, 32, need=False), last_px=number(f, 31, need=False),
        venue_order_id=f.get("37"), text=f.get("58"))


class VenueSession:
    """What the gateway tracks about one venue session."""
    __slots__ = ("name", "session_id", "key", "logged_on", "state", "events", "orders_routed", "fills")

    def __init__(self, name: str) -> None:
        self.name = name
        self.session_id: fix.SessionID | None = None
        self.key = ""
        self.logged_on = False
        self.state = "connecting"
        self.events: list[tuple[float, str]] = []
        self.orders_routed = 0
        self.fills = 0


class VenueApplication(fixedge.SafeApplication):
    """``sink(event)`` receives the order-path events; ``market`` (a ``VenueListener``) the rest."""

    def __init__(self, venues, market, sink: Callable[[object], None],
                 note: Callable[[str, str, str], None]) -> None:
        super().__init__("gateway.apps.server.venues")
        self.market, self.sink, self.note = market, sink, note
        self.venues = {v.name: VenueSession(v.name) for v in venues}
        self._by_target = {(v.sender_comp_id, v.target): v.name for v in venues}
        self._name_of: dict[str, str] = {}      # session key -> venue name

    def venue_of(self, session_id: fix.SessionID) -> str:
        key = fixedge.session_key(session_id)
        name = self._name_of.get(key)
        if name is None:
            name = self._by_target[(session_id.getSenderCompID().getValue(),
                                    session_id.getTargetCompID().getValue())]
            self._name_of[key] = name
        return name

    # ------------------------------------------------------------ session events

    def on_create(self, session_id):
        vs = self.venues[self.venue_of(session_id)]
        vs.session_id, vs.key = session_id, fixedge.session_key(session_id)

    def on_logon(self, session_id):
        name = self.venue_of(session_id)
        vs = self.venues[name]
        vs.logged_on, vs.state = True, "logged_on"
        self.note("venue", name, "logon")
        self.market.on_venue_up(name, session_id)
        self.sink(VenueUp(venue=name))

    def on_logout(self, session_id):
        name = self.venue_of(session_id)
        vs = self.venues[name]
        was_up = vs.logged_on
        vs.logged_on, vs.state = False, "down"
        self.note("venue", name, "logout" if was_up else "connect failed or logon refused")
        self.market.on_venue_down(name)
        self.sink(VenueDown(venue=name))

    def from_admin(self, msg, session_id):
        self.market.on_venue_admin(self.venue_of(session_id), msg, msg_type(msg))

    def from_app(self, msg, session_id):
        venue = self.venue_of(session_id)
        f = fixedge.field_map(msg)          # one SWIG call for every field, MsgType included
        t = f["35"]
        if t == "8":
            ev = parse_exec(venue, f)
            if ev.exec_type == "F":
                self.venues[venue].fills += 1
            self.sink(ev)
        elif t == "9":
            self.sink(VenueCancelRejected(venue=venue, cl_ord_id=required(f, 11),
                                          text=f.get("58") or "cancel rejected"))
        elif not self.market.on_venue_app(venue, msg, t):
            if t == "j":
                self.log.warning("venue %s BusinessMessageReject: %s", venue, get(msg, 58))
            else:
                raise fix.UnsupportedMessageType()

    # ------------------------------------------------------------ outgoing

    def send(self, out) -> bool:
        """Send a SendNewOrder / SendCancel / SendReplace / QueryOrderStatus; False if the session would not take it."""
        child = out.child
        vs = self.venues.get(child.venue)
        if vs is None or not vs.logged_on or vs.session_id is None:
            return False
        intent = child.parent.intent
        if isinstance(out, SendNewOrder):
            vs.orders_routed += 1
            msg_type_, head, qty, price = "D", f"11={child.cl_ord_id}\x01", child.qty, child.price
        elif isinstance(out, QueryOrderStatus):
            head = f"11={child.cl_ord_id}\x01" + (f"37={child.venue_order_id}\x01" if child.venue_order_id else "")
            body = f"{head}55={intent.symbol}\x0154={intent.side}\x01"
            return fixedge.send(fixedge.message_from_body("H", body), vs.session_id)
        elif isinstance(out, SendCancel):
            msg_type_, head, qty, price = "F", f"11={out.cl_ord_id}\x0141={out.orig_cl_ord_id}\x01", child.qty, None
            if child.venue_order_id:
                head += f"37={child.venue_order_id}\x01"
        elif isinstance(out, SendReplace):
            msg_type_, head, qty, price = "G", f"11={out.cl_ord_id}\x0141={out.orig_cl_ord_id}\x01", out.qty, out.price
        else:
            raise TypeError(f"not a venue order message: {out!r}")
        body = f"{head}55={intent.symbol}\x0154={intent.side}\x0138={fix_number(qty)}\x01"
        if msg_type_ != "F":
            body += f"40={child.ord_type}\x01" + (f"44={fix_number(price)}\x01" if price is not None else "") \
                + f"59={child.tif}\x01"
        body += f"60={fixedge.utc_timestamp()}\x01"
        return fixedge.send(fixedge.message_from_body(msg_type_, body), vs.session_id)

    def snapshot(self) -> list[dict]:
        out = []
        for name, vs in self.venues.items():
            row = {"name": name, "session": vs.key, "logged_on": vs.logged_on, "state": vs.state,
                   "orders_routed": vs.orders_routed, "fills": vs.fills,
                   "events": [{"at": round(t, 3), "event": e} for t, e in vs.events[-10:]]}
            row.update(fixedge.seq_nums(vs.session_id))
            out.append(row)
        return out

