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

from gateway import fixedge
from gateway.fixedge import get, msg_type, require
from gateway.model import DAY, LIMIT, MARKET, OrderIntent
from gateway.orders import OmsCancelReject, OmsExec

if TYPE_CHECKING:
    from gateway.server import Gateway

_SIDES = frozenset("12")
_ORD_TYPES = frozenset((MARKET, LIMIT))
_TIFS = frozenset("0346")  # Day, IOC, FOK, GTD is refused below (no expiry handling): see _intent


def fmt(value: float) -> str:
    """A quantity or price as FIX text without float noise (1.1, 100, 60000.5)."""
    return f"{value:.12g}"


def _number(msg: fix.Message, tag: int) -> float:
    text = require(msg, tag)
    try:
        return float(text)
    except ValueError:
        raise fix.IncorrectDataFormat(tag, text) from None


class OmsApplication(fixedge.SafeApplication):
    def __init__(self, gateway: "Gateway") -> None:
        super().__init__("gateway.oms")
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
        t = msg_type(msg)
        key = fixedge.session_key(session_id)
        if t == "D":
            self.gw.on_new_order(self._intent(msg, key, "D"), _is_resend(msg))
        elif t == "F":
            self.gw.on_cancel(key, require(msg, 11), require(msg, 41))
        elif t == "G":
            self.gw.on_replace(key, self._intent(msg, key, "G"), require(msg, 41))
        else:
            raise fix.UnsupportedMessageType()

    def _intent(self, msg: fix.Message, key: str, kind: str) -> OrderIntent:
        cl_ord_id = require(msg, 11)
        side = require(msg, 54)
        if side not in _SIDES:
            raise fix.IncorrectTagValue(54)
        ord_type = require(msg, 40)
        if ord_type not in _ORD_TYPES:
            raise fix.IncorrectTagValue(40)
        tif = get(msg, 59, DAY)
        if tif not in _TIFS or tif == "6":
            raise fix.IncorrectTagValue(59)
        price = _number(msg, 44) if ord_type == LIMIT else None
        return OrderIntent(key, cl_ord_id, require(msg, 55), side, _number(msg, 38), ord_type, price, tif,
                           get(msg, 100), self.gw.clock.now())

    # ------------------------------------------------------------ outgoing

    def send_exec(self, ex: OmsExec, exec_id: str) -> bool:
        order = ex.order
        intent = order.intent
        msg = fixedge.new_message("8")
        msg.setField(37, order.order_id)
        msg.setField(11, ex.cl_ord_id)
        if ex.orig_cl_ord_id:
            msg.setField(41, ex.orig_cl_ord_id)
        msg.setField(17, exec_id)
        msg.setField(150, ex.exec_type)
        msg.setField(39, ex.ord_status)
        msg.setField(55, intent.symbol)
        msg.setField(54, intent.side)
        msg.setField(38, fmt(intent.qty))
        msg.setField(40, intent.ord_type)
        if intent.price is not None:
            msg.setField(44, fmt(intent.price))
        msg.setField(59, intent.tif)
        if ex.last_qty:
            msg.setField(32, fmt(ex.last_qty))
            msg.setField(31, fmt(ex.last_px))
        if ex.last_mkt:
            msg.setField(30, ex.last_mkt)
        if ex.venue_order_id:
            msg.setField(198, ex.venue_order_id)
        msg.setField(151, fmt(ex.leaves_qty))
        msg.setField(14, fmt(ex.cum_qty))
        msg.setField(6, fmt(ex.avg_px))
        if ex.ord_rej_reason is not None:
            msg.setField(103, str(ex.ord_rej_reason))
        if ex.text:
            msg.setField(58, ex.text[:400])
        msg.setField(60, fixedge.utc_timestamp())
        return self._send(msg, intent.oms_session)

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


def _is_resend(msg: fix.Message) -> bool:
    """PossDupFlag(43) or PossResend(97): the OMS may have sent this order before."""
    header = msg.getHeader()
    return get(header, 43) == "Y" or get(header, 97) == "Y"
