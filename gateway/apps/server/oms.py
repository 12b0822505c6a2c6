"""The OMS side: an ``Application`` (gateway/fix/engine.py) for upstream OMS/EMS sessions.

Thin edge, the same for both engines: it checks logons (allowed CompIDs, Username/Password,
a per-CompID back-off after failed logons, sessions an operator holds down), decodes
NewOrderSingle / OrderCancelRequest / OrderCancelReplaceRequest / OrderStatusRequest
(our codec's ``Message``) into the core's events (gateway/core/hub.py) and hands them to
``sink``; it formats the core's ``ReportToOms``, ``RejectOmsCancel`` and News commands as
preformatted body text. It holds no reference to the core. Missing or malformed fields
never reach it: the engine's dictionary validation answers those with a Reject (35=3).
A value the gateway does not support (an OrdType or TimeInForce it cannot honour) gets a
BusinessMessageReject (35=j, 380=0) naming the tag; another MsgType, 380=3.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Final

from gateway.core.hub import OmsCancelRequest, OmsNewOrder, OmsReplaceRequest, OmsSessionUp, OmsStatusRequest
from gateway.core.model import BUY, DAY, FOK, IOC, LIMIT, MARKET, SELL, OrderIntent
from gateway.core.orders import RejectOmsCancel, ReportToOms
from gateway.fix.codec import Message, utc_timestamp
from gateway.apps.server.wire import (EventSink, FieldReader, intent_fields, native_sink, num, required, to_float,
                                     transact_time, value_at)
from gateway.fix.engine import Unsupported, reject_body

# Supported values are checked by comparing with these literals (a native compare of one
# character each, where a frozenset lookup hashes): Side 1/2; OrdType market/limit; TimeInForce
# Day, IOC, FOK (GTC/GTD refused: no overnight or expiry handling).
LOGON_BACKOFF_S: Final = (0.0, 0.0, 1.0, 2.0, 5.0, 10.0, 30.0)   # after n failures in a row; capped at the last
_TEXT_CHUNK: Final = 900
MAX_UNDELIVERED: Final = 100_000      # reports kept per OMS session while it is logged out


class BadValue(Exception):
    """A field holds a value the gateway does not support: answered with 35=j naming the tag."""

    def __init__(self, tag: int, value: str | None) -> None:
        super().__init__(f"value {value!r} of tag {tag} is not supported")
        self.tag = tag


def _text(text: str) -> str:
    """Text(58) safe for the wire: no SOH, bounded."""
    return text.replace("\x01", " ")[:400]


# the order messages' fields the OMS edge reads, in this order (see decode)
_ORDER: Final = FieldReader((11, 41, 43, 97, 54, 40, 59, 38, 44, 55, 100))
# (constants one by one: Final, so a compiled read is a literal, not a module dict lookup)
_CL: Final = 0
_ORIG: Final = 1
_POSS_DUP: Final = 2
_POSS_RESEND: Final = 3
_SIDE: Final = 4
_TYPE: Final = 5
_TIF: Final = 6
_QTY: Final = 7
_PRICE: Final = 8
_SYMBOL: Final = 9
_DEST: Final = 10


def decode(msg: Message, key: str, now: float) -> object:
    """One OMS application message (codec ``Message``) -> the core's event. Raises BadValue,
    KeyError (a required tag missing: the dictionary catches it first) or Unsupported."""
    t = msg.msg_type
    if t != "D" and t != "F" and t != "G" and t != "H":
        raise Unsupported(f"MsgType {t} not supported")
    if t == "H":
        return OmsStatusRequest(session=key, cl_ord_id=msg[11], symbol=msg.get(55) or "?",
                                side=msg.get(54) or "1")
    # reads by position (wire.FieldReader: one check of the message's layout, not a lookup per tag)
    at = _ORDER.positions(msg)
    if t == "D":
        return OmsNewOrder(intent=_intent(msg, at, key, now), possible_resend=_resend(msg, at))
    if t == "F":
        return OmsCancelRequest(session=key, cl_ord_id=required(msg, at[_CL], 11),
                                orig_cl_ord_id=required(msg, at[_ORIG], 41), possible_resend=_resend(msg, at))
    return OmsReplaceRequest(session=key, new=_intent(msg, at, key, now), orig_cl_ord_id=required(msg, at[_ORIG], 41),
                             possible_resend=_resend(msg, at))


def _resend(m: Message, at: list[int]) -> bool:
    """PossDupFlag(43) or PossResend(97) is Y."""
    return value_at(m, at[_POSS_DUP]) == "Y" or value_at(m, at[_POSS_RESEND]) == "Y"


def _intent(m: Message, at: list[int], key: str, now: float) -> OrderIntent:
    """The order fields of a NewOrderSingle or a CancelReplaceRequest (``m``, ``at``: the message
    and ``_ORDER``'s positions in it)."""
    side = required(m, at[_SIDE], 54)
    if side != BUY and side != SELL:
        raise BadValue(54, side)
    ord_type = required(m, at[_TYPE], 40)
    if ord_type != LIMIT and ord_type != MARKET:
        raise BadValue(40, ord_type)
    tif = value_at(m, at[_TIF]) or DAY
    if tif != IOC and tif != DAY and tif != FOK:
        raise BadValue(59, tif)
    try:
        qty = to_float(required(m, at[_QTY], 38))
        price = to_float(required(m, at[_PRICE], 44)) if ord_type == LIMIT else None
    except ValueError:
        raise BadValue(38, value_at(m, at[_QTY])) from None
    return OrderIntent(key, required(m, at[_CL], 11), required(m, at[_SYMBOL], 55), side, qty, ord_type, price,
                       tif, value_at(m, at[_DEST]), now)


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


class OmsApplication:
    """An ``Application`` (gateway/fix/engine.py) for the OMS sessions. ``sink(event)`` receives
    every decoded event; ``note(kind, name, text)`` session news for status; ``tracker``
    (``SessionTracker``) keeps the operator's view of each session."""

    def __init__(self, clients: Any, sink: Callable[[object], None], note: Callable[[str, str, str], None],
                 tracker: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.sink, self.note, self.tracker, self.clock = sink, note, tracker, clock
        # the dispatcher behind ``sink`` (wire.native_sink), called natively while ``sink`` is it
        self._to: EventSink | None = native_sink(sink)
        self._to_sink: object = sink
        # messages in/out counted by our callbacks (quickfix); fixed for the tracker's life
        self.by_callbacks: bool = bool(tracker.by_callbacks)
        self.handles: dict[str, Any] = {}          # session key -> SessionHandle (set by the gateway)
        self.logged_on: set[str] = set()
        self.clients: dict[str, Any] = {c.comp_id: c for c in clients}
        self.passwords: dict[str, str | None] = {c.comp_id: c.expected_password() for c in clients}
        self.logons = LogonGuard(clock)
        self.held: set[str] = set()                # keys an operator logged out: refused until logon
        self.bad_values = 0
        # Reports for a session that is not logged on: sent on its next logon, marked PossResend.
        # Memory only (bounded): a crash meanwhile loses them from here, not from the journal; the
        # OMS learns the state with an OrderStatusRequest (answered from the replayed orders).
        self.undelivered: dict[str, deque[tuple[str, str]]] = {}
        self.undelivered_dropped = 0
        self._status_req_id: str | None = None    # OrdStatusReqID(790) of the request being answered

    # ------------------------------------------------------------ session events

    def check_logon(self, session: Any, logon: Message) -> str | None:
        comp_id: str = session.target_comp_id
        key: str = session.key
        client = self.clients.get(comp_id)
        if client is None:                         # the engine refuses unknown sessions first
            return "unknown CompID"
        if key in self.held:
            self.note("oms", key, "logon refused: held down by an operator")
            return "logon refused: session disabled by an operator"
        wait = self.logons.wait_s(comp_id)
        if wait > 0:
            self.note("oms", key, f"logon refused: backing off {wait:.1f}s")
            return f"logon refused: too many failed logons; retry in {wait:.0f}s"
        problem = None
        if client.username is not None and logon.get(553) != client.username:
            problem = "bad Username(553)"
        elif self.passwords[comp_id] is not None and logon.get(554) != self.passwords[comp_id]:
            problem = "bad Password(554)"
        if problem is not None:
            self.logons.failed(comp_id)
            self.note("oms", key, f"logon refused: {problem}")
            return f"logon refused: {problem}"
        self.logons.succeeded(comp_id)
        return None

    def on_logon(self, session: Any) -> None:
        key: str = session.key
        self.logged_on.add(key)
        self.tracker.logon(key)
        self.note("oms", key, "logon")
        queued = self.undelivered.pop(key, None)
        while queued:
            msg_type, body = queued.popleft()
            self._send(msg_type, body, key, "97=Y\x01")
        self.sink(OmsSessionUp(session=key))

    def on_logout(self, session: Any, reason: str) -> None:
        key: str = session.key
        self.logged_on.discard(key)
        self.tracker.logout(key, reason)
        self.note("oms", key, "logout")

    def on_admin(self, session: Any, msg: Message) -> None:
        if self.by_callbacks:
            self.tracker.received(session.key)

    # ------------------------------------------------------------ application messages

    def on_message(self, session: Any, msg: Message) -> None:
        key: str = session.key
        if self.by_callbacks:
            self.tracker.received(key)
        try:
            ev = decode(msg, key, self.clock())
        except BadValue as exc:
            self.bad_values += 1
            session.send("j", reject_body(msg.seq_num, msg.msg_type or "", "0", str(exc)))
            return
        if type(ev) is OmsStatusRequest:
            # the core's answer is carried out before sink returns (one loop): echo 790 in it
            self._status_req_id = msg.get(790)
            try:
                self.sink(ev)
            finally:
                self._status_req_id = None
            return
        to = self._to
        if to is not None and self.sink is self._to_sink:
            to.submit(ev)
        else:
            self.sink(ev)

    # ------------------------------------------------------------ outgoing

    def send_exec(self, ex: ReportToOms, exec_id: str) -> bool:
        """An ExecutionReport: one f-string over the report's figures; the order's own fields
        (55..59) are formatted once per order (``wire.intent_fields``), numbers come from ``num``
        (a whole fill's LastQty/LastPx are its CumQty/AvgPx: their text is reused). The reports
        of a working venue order (LastMkt and the venue's OrderID known, no OrigClOrdID, no
        text, reject reason or status request id): ONE string build, fill or not; the rest
        assemble their optional fields first."""
        order = ex.order
        cum, avg = num(ex.cum_qty), num(ex.avg_px)
        last_qty = ex.last_qty
        market, venue_id = ex.last_mkt, ex.venue_order_id
        rare = bool(ex.text or ex.ord_rej_reason is not None or self._status_req_id)
        if market and venue_id and not ex.orig_cl_ord_id and not rare:
            if last_qty:
                last_px = ex.last_px
                body = (f"37={order.order_id}\x0111={ex.cl_ord_id}\x0117={exec_id}\x01150={ex.exec_type}\x01"
                        f"39={ex.ord_status}\x01{intent_fields(order)}"
                        f"32={cum if last_qty == ex.cum_qty else num(last_qty)}\x01"
                        f"31={avg if last_px == ex.avg_px else num(last_px)}\x01"
                        f"30={market}\x01198={venue_id}\x01151={num(ex.leaves_qty)}\x0114={cum}\x016={avg}\x01"
                        f"60={transact_time()}\x01")
            else:
                body = (f"37={order.order_id}\x0111={ex.cl_ord_id}\x0117={exec_id}\x01150={ex.exec_type}\x01"
                        f"39={ex.ord_status}\x01{intent_fields(order)}30={market}\x01198={venue_id}\x01"
                        f"151={num(ex.leaves_qty)}\x0114={cum}\x016={avg}\x0160={transact_time()}\x01")
            return self._send("8", body, order.intent.oms_session, "97=Y\x01" if ex.poss_resend else "")
        orig = f"41={ex.orig_cl_ord_id}\x01" if ex.orig_cl_ord_id else ""
        if last_qty:
            last_px = ex.last_px
            fill = (f"32={cum if last_qty == ex.cum_qty else num(last_qty)}\x01"
                    f"31={avg if last_px == ex.avg_px else num(last_px)}\x01")
        else:
            fill = ""
        market_text = f"30={market}\x01" if market else ""
        venue_id_text = f"198={venue_id}\x01" if venue_id else ""
        rare_text = self._rare_fields(ex) if rare else ""
        body = (f"37={order.order_id}\x0111={ex.cl_ord_id}\x01{orig}17={exec_id}\x01150={ex.exec_type}\x01"
                f"39={ex.ord_status}\x01{intent_fields(order)}{fill}{market_text}{venue_id_text}"
                f"151={num(ex.leaves_qty)}\x0114={cum}\x016={avg}\x01{rare_text}"
                f"60={transact_time()}\x01")
        # re-sent after a restart: the OMS may have it already (PossResend)
        return self._send("8", body, order.intent.oms_session, "97=Y\x01" if ex.poss_resend else "")

    def _rare_fields(self, ex: ReportToOms) -> str:
        """OrdRejReason(103), Text(58) and, answering an OrderStatusRequest, OrdStatusReqID(790)."""
        text = ex.text
        return ((f"103={ex.ord_rej_reason}\x01" if ex.ord_rej_reason is not None else "")
                + (f"58={_text(text)}\x01" if text else "")
                + (f"790={self._status_req_id}\x01" if self._status_req_id and ex.exec_type == "I" else ""))

    def send_cancel_reject(self, rej: RejectOmsCancel) -> bool:
        body = (f"37={rej.order_id}\x0111={rej.cl_ord_id}\x0141={rej.orig_cl_ord_id}\x0139={rej.ord_status}\x01"
                f"434={rej.response_to}\x01102={rej.reason}\x0158={_text(rej.text)}\x01")
        return self._send("9", body, rej.session)

    def broadcast(self, headline: str, text: str, session: str | None = None) -> int:
        """News (35=B) to every logged-on OMS session (or one); returns how many took it."""
        body = news_body(headline, text)
        sent = 0
        for key in ([session] if session is not None else sorted(self.logged_on)):
            sent += self._send("B", body, key)
        return sent

    def _send(self, msg_type: str, body: str, key: str, extra_header: str = "") -> bool:
        handle = self.handles.get(key)
        if handle is None:
            return False
        ok: bool = handle.send(msg_type, body, extra_header=extra_header) if extra_header else handle.send(msg_type, body)
        if ok:
            if self.by_callbacks:
                self.tracker.sent(key)
        elif msg_type == "8" or msg_type == "9":
            queue = self.undelivered.get(key)
            if queue is None:
                queue = self.undelivered[key] = deque(maxlen=MAX_UNDELIVERED)
            if len(queue) == MAX_UNDELIVERED:
                self.undelivered_dropped += 1
            queue.append((msg_type, body))
        return ok


def news_body(headline: str, text: str) -> str:
    """A News (35=B) body: OrigTime, Urgency Flash, Headline, LinesOfText."""
    chunks = [text[i:i + _TEXT_CHUNK] for i in range(0, len(text), _TEXT_CHUNK)] or [""]
    return (f"42={utc_timestamp(time.time(), 3)}\x0161=1\x01148={_text(headline)}\x0133={len(chunks)}\x01"
            + "".join(f"58={c.replace(chr(1), ' ')}\x01" for c in chunks))
