"""The OMS side: a quickfix acceptor Application for upstream OMS/EMS sessions.

Thin edge: it checks logons (allowed CompIDs, Username/Password, a per-CompID back-off
after failed logons), decodes NewOrderSingle / OrderCancelRequest /
OrderCancelReplaceRequest / OrderStatusRequest into the core's events
(gateway/core/hub.py) and hands them to ``sink``; it formats the core's ``ReportToOms``,
``RejectOmsCancel`` and News commands. It holds no reference to the core. Anything else
at the application level is refused with a BusinessMessageReject (UnsupportedMessageType);
malformed fields raise quickfix's own exceptions, which quickfix answers with a Reject.
"""
from __future__ import annotations

import time
from typing import Callable

import quickfix as fix

from gateway.fix import quickfix_backend as fixedge
from gateway.fix.quickfix_backend import fix_number, get, msg_type, number, required
from gateway.core.hub import OmsCancelRequest, OmsNewOrder, OmsReplaceRequest, OmsSessionUp, OmsStatusRequest
from gateway.core.model import DAY, LIMIT, MARKET, OrderIntent
from gateway.core.orders import RejectOmsCancel, ReportToOms

_SIDES = frozenset("12")
_ORD_TYPES = frozenset((MARKET, LIMIT))
_TIFS = frozenset("034")   # Day, IOC, FOK (GTC/GTD refused: no overnight or expiry handling)
LOGON_BACKOFF_S = (0.0, 0.0, 1.0, 2.0, 5.0, 10.0, 30.0)   # after n failures in a row; capped at the last


def _text(text: str) -> str:
    """Text(58) safe for the wire: no SOH, bounded."""
    return text.replace("\x01", " ")[:400]


def decode(f: dict[str, str], key: str, now: float):
    """One OMS application message (``fixedge.field_map``) -> the core's event. Raises quickfix errors."""
    t = f["35"]
    if t == "D":
        return OmsNewOrder(intent=_intent(f, key, now), possible_resend=f.get("43") == "Y" or f.get("97") == "Y")
    if t == "F":
        return OmsCancelRequest(session=key, cl_ord_id=required(f, 11), orig_cl_ord_id=required(f, 41))
    if t == "G":
        return OmsReplaceRequest(session=key, new=_intent(f, key, now), orig_cl_ord_id=required(f, 41))
    if t == "H":
        return OmsStatusRequest(session=key, cl_ord_id=required(f, 11), symbol=f.get("55", "?"),
                                side=f.get("54", "1"))
    raise fix.UnsupportedMessageType()


def _intent(f: dict[str, str], key: str, now: float) -> OrderIntent:
    side = required(f, 54)
    if side not in _SIDES:
        raise fix.IncorrectTagValue(54)
    ord_type = required(f, 40)
    if ord_type not in _ORD_TYPES:
        raise fix.IncorrectTagValue(40)
    tif = f.get("59", DAY)
    if tif not in _TIFS:
        raise fix.IncorrectTagValue(59)
    price = number(f, 44) if ord_type == LIMIT else None
    return OrderIntent(key, required(f, 11), required(f, 55), side, number(f, 38), ord_type, price, tif,
                       f.get("100"), now)


class LogonGuard:
    """Failed logons per CompID: after repeated failures a CompID must wait before trying again."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.failures: dict[str, int] = {}
        self.last_failure: dict[str, float] = {}

    def wait_s(self, comp_id: str) -> float:
        n = self.failures.get(comp_id, 0)
        if not n:
            return 0.0
        backoff = LOGON_BACKOFF_S[min(n, len(LOGON_BACKOFF_S) - 1)]
        return max(self.last_failure[comp_id] + backoff - self.clock(), 0.0)

    def failed(self, comp_id: str) -> None:
        self.failures[comp_id] = self.failures.get(comp_id, 0) + 1
        self.last_failure[comp_id] = self.clock()

    def succeeded(self, comp_id: str) -> None:
        self.failures.pop(comp_id, None)


class OmsApplication(fixedge.SafeApplication):
    """``sink(event)`` receives every decoded event; ``note(kind, name, text)`` session news for status."""

    def __init__(self, clients, sink: Callable[[object], None], note: Callable[[str, str, str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("gateway.apps.server.oms")
        self.sink, self.note, self.clock = sink, note, clock
        self.sessions: dict[str, fix.SessionID] = {}     # session key -> SessionID
        self.logged_on: set[str] = set()
        self.clients = {c.comp_id: c for c in clients}
        self.logons = LogonGuard(clock)

    # ------------------------------------------------------------ session events

    def on_create(self, session_id):
        self.sessions[fixedge.session_key(session_id)] = session_id

    def on_logon(self, session_id):
        key = fixedge.session_key(session_id)
        self.logged_on.add(key)
        self.note("oms", key, "logon")
        self.sink(OmsSessionUp(session=key))

    def on_logout(self, session_id):
        key = fixedge.session_key(session_id)
        self.logged_on.discard(key)
        self.note("oms", key, "logout")

    def from_admin(self, msg, session_id):
        if msg_type(msg) != "A":
            return
        comp_id = session_id.getTargetCompID().getValue()
        client = self.clients.get(comp_id)
        if client is None:      # quickfix refuses unknown sessions first; this is belt and braces
            raise fix.RejectLogon("unknown CompID")
        wait = self.logons.wait_s(comp_id)
        if wait > 0:            # answered with a Logout carrying the text, like every refusal here
            self.note("oms", fixedge.session_key(session_id), f"logon refused: backing off {wait:.1f}s")
            raise fix.RejectLogon(f"logon refused: too many failed logons; retry in {wait:.0f}s")
        problem = None
        if client.username is not None and get(msg, 553) != client.username:
            problem = "bad Username(553)"
        elif client.password is not None and get(msg, 554) != client.password:
            problem = "bad Password(554)"
        if problem is not None:
            self.logons.failed(comp_id)
            self.note("oms", fixedge.session_key(session_id), f"logon refused: {problem}")
            raise fix.RejectLogon(f"logon refused: {problem}")
        self.logons.succeeded(comp_id)

    # ------------------------------------------------------------ application messages

    def from_app(self, msg, session_id):
        f = fixedge.field_map(msg)          # one SWIG call for every field, MsgType included
        if f["35"] not in ("D", "F", "G", "H"):
            raise fix.UnsupportedMessageType()
        self.sink(decode(f, fixedge.session_key(session_id), self.clock()))

    # ------------------------------------------------------------ outgoing

    def send_exec(self, ex: ReportToOms, exec_id: str) -> bool:
        """An ExecutionReport, formatted in one string (see fixedge.message_from_body)."""
        order = ex.order
        intent = order.intent
        parts = [f"37={order.order_id}\x0111={ex.cl_ord_id}\x01"]
        if ex.orig_cl_ord_id:
            parts.append(f"41={ex.orig_cl_ord_id}\x01")
        parts.append(f"17={exec_id}\x01150={ex.exec_type}\x0139={ex.ord_status}\x0155={intent.symbol}\x01"
                     f"54={intent.side}\x0138={fix_number(intent.qty)}\x0140={intent.ord_type}\x01")
        if intent.price is not None:
            parts.append(f"44={fix_number(intent.price)}\x01")
        parts.append(f"59={intent.tif}\x01")
        if ex.last_qty:
            parts.append(f"32={fix_number(ex.last_qty)}\x0131={fix_number(ex.last_px)}\x01")
        if ex.last_mkt:
            parts.append(f"30={ex.last_mkt}\x01")
        if ex.venue_order_id:
            parts.append(f"198={ex.venue_order_id}\x01")
        parts.append(f"151={fix_number(ex.leaves_qty)}\x0114={fix_number(ex.cum_qty)}\x016={fix_number(ex.avg_px)}\x01")
        if ex.ord_rej_reason is not None:
            parts.append(f"103={ex.ord_rej_reason}\x01")
        if ex.text:
            parts.append(f"58={_text(ex.text)}\x01")
        parts.append(f"60={fixedge.utc_timestamp()}\x01")
        msg = fixedge.message_from_body("8", "".join(parts))
        if ex.poss_resend:      # re-sent after a restart: the OMS may have it already
            msg.getHeader().setField(97, "Y")
        return self._send(msg, intent.oms_session)

    def send_cancel_reject(self, rej: RejectOmsCancel) -> bool:
        msg = fixedge.new_message("9")
        msg.setField(37, rej.order_id)
        msg.setField(11, rej.cl_ord_id)
        msg.setField(41, rej.orig_cl_ord_id)
        msg.setField(39, rej.ord_status)
        msg.setField(434, rej.response_to)
        msg.setField(102, rej.reason)
        msg.setField(58, rej.text[:400])
        return self._send(msg, rej.session)

    def broadcast(self, msg: fix.Message, session: str | None = None) -> int:
        """Send ``msg`` (e.g. News) to every logged-on OMS session (or one); returns how many took it."""
        sent = 0
        for key in ([session] if session is not None else list(self.logged_on)):
            sent += self._send(fix.Message(msg), key)
        return sent

    def _send(self, msg: fix.Message, key: str) -> bool:
        session_id = self.sessions.get(key)
        return session_id is not None and fixedge.send(msg, session_id)

