"""The OMS side: a quickfix acceptor Application for upstream OMS/EMS sessions.

Thin edge: it checks logons (allowed CompIDs, optional Username/Password), turns
NewOrderSingle / OrderCancelRequest / OrderCancelReplaceRequest into calls on the
``Gateway`` and formats what the order manager answers as ExecutionReports and
OrderCancelRejects. Anything else at the application level is refused with a
BusinessMessageReject (UnsupportedMessageType); malformed fields raise quickfix's own
exceptions, which quickfix answers with a session Reject.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import quickfix as fix

from gateway.fix import quickfix_backend as fixedge
from gateway.fix.quickfix_backend import fix_number, get, msg_type, number, required
from gateway.core.model import DAY, LIMIT, MARKET, OrderIntent
from gateway.core.orders import OmsCancelReject, OmsExec

if TYPE_CHECKING:
    from gateway.apps.server.app import Gateway

_SIDES = frozenset("12")
_ORD_TYPES = frozenset((MARKET, LIMIT))
_TIFS = frozenset("034")   # Day, IOC, FOK (GTC/GTD refused: no overnight or expiry handling)


def _text(text: str) -> str:
    """Text(58) safe for the wire: no SOH, bounded."""
    return text.replace("\x01", " ")[:400]


class OmsApplication(fixedge.SafeApplication):
    def __init__(self, gateway: "Gateway") -> None:
        super().__init__("gateway.apps.server.oms")
        self.gw = gateway
        self.sessions: dict[str, fix.SessionID] = {}     # session key -> SessionID
        self.logged_on: set[str] = set()
        self.clients = {c.comp_id: c for c in gateway.cfg.oms.clients}

    # ------------------------------------------------------------ session events

    def on_create(self, session_id):
        self.sessions[fixedge.session_key(session_id)] = session_id

    def on_logon(self, session_id):
        key = fixedge.session_key(session_id)
        self.logged_on.add(key)
        self.gw.event("oms", key, "logon")

    def on_logout(self, session_id):
        key = fixedge.session_key(session_id)
        self.logged_on.discard(key)
        self.gw.event("oms", key, "logout")

    def from_admin(self, msg, session_id):
        if msg_type(msg) != "A":
            return
        client = self.clients.get(session_id.getTargetCompID().getValue())
        if client is None:      # quickfix refuses unknown sessions first; this is belt and braces
            raise fix.RejectLogon("unknown CompID")
        if client.username is not None and get(msg, 553) != client.username:
            self.gw.event("oms", fixedge.session_key(session_id), "logon refused: bad username")
            raise fix.RejectLogon("logon refused: bad Username(553)")
        if client.password is not None and get(msg, 554) != client.password:
            self.gw.event("oms", fixedge.session_key(session_id), "logon refused: bad password")
            raise fix.RejectLogon("logon refused: bad Password(554)")

    # ------------------------------------------------------------ application messages

    def from_app(self, msg, session_id):
        f = fixedge.field_map(msg)          # one SWIG call for every field, MsgType included
        t = f["35"]
        if t not in ("D", "F", "G", "H"):
            raise fix.UnsupportedMessageType()
        key = fixedge.session_key(session_id)
        if t == "D":
            self.gw.on_new_order(self._intent(f, key), f.get("43") == "Y" or f.get("97") == "Y")
        elif t == "F":
            self.gw.on_cancel(key, required(f, 11), required(f, 41))
        elif t == "H":
            self.gw.on_status_request(key, required(f, 11), f)
        else:
            self.gw.on_replace(key, self._intent(f, key), required(f, 41))

    def _intent(self, f: dict[str, str], key: str) -> OrderIntent:
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
                           f.get("100"), self.gw.clock.now())

    # ------------------------------------------------------------ outgoing

    def send_exec(self, ex: OmsExec, exec_id: str) -> bool:
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
        return self._send(fixedge.message_from_body("8", "".join(parts)), intent.oms_session)

    def send_cancel_reject(self, rej: OmsCancelReject) -> bool:
        msg = fixedge.new_message("9")
        msg.setField(37, rej.order_id)
        msg.setField(11, rej.cl_ord_id)
        msg.setField(41, rej.orig_cl_ord_id)
        msg.setField(39, rej.ord_status)
        msg.setField(434, rej.response_to)
        msg.setField(102, rej.reason)
        msg.setField(58, rej.text[:400])
        return self._send(msg, rej.session)

    def broadcast(self, msg: fix.Message) -> int:
        """Send ``msg`` (e.g. News) to every logged-on OMS session; returns how many took it."""
        sent = 0
        for key in list(self.logged_on):
            sent += self._send(fix.Message(msg), key)
        return sent

    def _send(self, msg: fix.Message, key: str) -> bool:
        session_id = self.sessions.get(key)
        return session_id is not None and fixedge.send(msg, session_id)

