"""The native venue's per-message path: a FIX message in, the matching engine, the report
texts (``fixtext``) out through the counterparty's session. Compiled with mypyc (listed in
``gateway/common/accel.py``) with the engine, the report texts, the session and ``publish``,
so an order crosses no interpreted frame between the engine's pump and the socket write.

``native.NativeVenue`` subclasses ``VenueCore`` (an interpreted subclass, allowed) and keeps
the rest: lifecycle on the loop, configuration, stats, status requests, market-data requests.
``DelayedSession`` (injected latency around the session, ``native.VenueEngine``'s sessions
when the venue has a delay line) is here too: every message of such a venue passes it.
The invariants are ``publish.EventPublisher``'s and ``native``'s.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Final

from mypy_extensions import mypyc_attr

from gateway.core.latency import ProbeTrace, probe_trace
from gateway.core.matching.engine import LIMIT
from gateway.core.matching.events import CancelReject, ExecReport
from gateway.core.matching.marketdata import MDEntry, Subscription
from gateway.fix.codec import Message
from gateway.fix.drive import NativeSession
from sim_exchange import fixtext
from sim_exchange.publish import EventPublisher

# BusinessMessageReject 380=3 is written here, in QuickFIX's field order (45, 58, 372, 380),
# which strict certification compares; the engine's own puts 58 last.
_UNSUPPORTED = "58=Unsupported Message Type\x01"


@mypyc_attr(allow_interpreted_subclasses=True)      # native.NativeVenue
class VenueCore(EventPublisher):
    comp_id: str
    fix: Any                                          # the VenueEngine (interpreted), None when stopped
    handlers: dict[str, Callable[[Any, Any], None]]   # MsgType -> handler(session, msg), the rare ones too
    subscriptions: dict[str, dict[str, Subscription]]
    on_book_change: Callable[[str, str], None] | None     # the market's hook
    _handles: dict[str, NativeSession]                # counterparty -> session handle

    # ------------------------------------------------------------------ FIX messages in
    def on_message(self, session: NativeSession, msg: Message) -> None:
        """The application's on_message (``native.VenueApplication`` hands it over as is)."""
        msg_type = msg.msg_type
        if msg_type == "D":
            self._on_new_order(session, msg)
            return
        handler = self.handlers.get(msg_type)
        if handler is None:
            session.send("j", f"45={msg.seq_num}\x01{_UNSUPPORTED}372={msg_type}\x01380=3\x01")
            return
        handler(session, msg)

    def _on_new_order(self, session: NativeSession, msg: Message) -> None:
        owner = session.target_comp_id
        cl_ord_id = msg[11]
        ord_type = msg[40]
        price_text = msg.get(44)
        price = float(price_text) if price_text is not None and ord_type == LIMIT else None
        poss_dup = msg.poss_dup
        self.order_log.new_order(owner, cl_ord_id, poss_dup)
        if poss_dup and self.engine.knows(owner, cl_ord_id):
            self.stats["possdup_ignored"] += 1          # a resent order we have: never a second one
            return
        self.stats["orders"] += 1
        self._publish(self.engine.new_order(owner, cl_ord_id, msg[55], msg[54], float(msg[38]), ord_type,
                                            price, msg.get(59) or "0"))

    def _on_cancel(self, session: NativeSession, msg: Message) -> None:
        self.stats["cancels"] += 1
        self._publish(self.engine.cancel(session.target_comp_id, msg[11], msg[41]))

    def _on_replace(self, session: NativeSession, msg: Message) -> None:
        price_text = msg.get(44)
        self.stats["replaces"] += 1
        self._publish(self.engine.replace(session.target_comp_id, msg[11], msg[41], float(msg[38]),
                                          float(price_text) if price_text is not None else None))

    # ------------------------------------------------------------------ publishing (publish.py)
    def _send_report(self, er: ExecReport) -> None:
        self._send("8", fixtext.execution_report(er, self.name), er.owner)

    def _send_cancel_reject(self, cr: CancelReject) -> None:
        self._send("9", fixtext.cancel_reject(cr), cr.owner)

    def _send_incremental(self, counterparty: str, req_id: str, entries: list[MDEntry]) -> None:
        self._send("X", fixtext.incremental(req_id, entries), counterparty)

    def _md_targets(self) -> list[tuple[str, list[Subscription]]]:
        return [(cp, list(subs.values())) for cp, subs in self.subscriptions.items()]

    def _begin_step(self) -> Any:
        # Inside a pump the engine's send batch is open already; from the market driver or
        # apply() it is opened here, so each counterparty gets one write per step.
        batch = self.fix.batch if self.fix is not None else None
        if batch is not None:
            batch.depth += 1
        return batch

    def _reports_out(self, owners: list[str]) -> None:
        # The step's reports are queued in their sessions: out now, one write per
        # counterparty, before the market data is even formatted.
        for owner in owners:
            handle = self._handle(owner)
            if handle is not None and handle.conn is not None:
                handle.flush()

    def _end_step(self, token: Any) -> None:
        if token is not None:
            token.depth -= 1
            if not token.depth and token.dirty:
                token.flush_dirty()

    def _after_publish(self, touched: list[str]) -> None:
        hook = self.on_book_change
        if hook is not None:
            for symbol in touched:
                hook(self.name, symbol)

    def _send(self, msg_type: str, body: str, counterparty: str) -> None:
        handle = self._handle(counterparty)
        if handle is not None and handle.send(msg_type, body):
            return
        if handle is not None and msg_type in ("8", "9") and store_while_away(handle, msg_type, body):
            self.stats["stored_for_resend"] = self.stats.get("stored_for_resend", 0) + 1
            return
        self.stats["send_failures"] += 1

    def _handle(self, counterparty: str) -> NativeSession | None:
        """The session of ``counterparty`` (configured ones only, so the cache is bounded)."""
        if self.fix is None:
            return None
        handle = self._handles.get(counterparty)
        if handle is None:
            handle = self.fix.sessions.get(f"FIX.4.4:{self.comp_id}->{counterparty}")
            if handle is not None:
                self._handles[counterparty] = handle
        return handle


def store_while_away(handle: NativeSession, msg_type: str, body: str) -> bool:
    """A report for a counterparty that is away (no connection): stamp it with the next
    sequence number and put it in the session's store, as quickfix does. Its next Logon
    then carries a higher MsgSeqNum, the peer asks for a resend, and the report arrives
    as a PossDup resend. Only with no connection: a live Session owns its numbering.
    (Works on the store's public interface; the engine should offer this itself.)"""
    s: Any = handle.settings
    if handle.conn is not None or s.reset_on_logon:
        return False
    from gateway.fix.codec import encode, utc_timestamp
    store: Any = handle.store
    seq = store.next_sender_seq
    header = (f"34={seq}\x0149={s.sender_comp_id}\x0152={utc_timestamp(time.time(), s.timestamp_precision)}"
              f"\x0156={s.target_comp_id}\x01")
    store.save(seq, encode(s.begin_string, msg_type, header, body))
    return True


# ---------------------------------------------------------------- latency around the session

_TRACE: Final[ProbeTrace | None] = probe_trace("sim")   # bench-only hop stamps (latency.ProbeTrace)


class DelayedSession(NativeSession):
    """A ``NativeSession`` whose socket bytes pass through two delay lines (in, out): the
    native venue's sessions when it has latency configured (``native.VenueEngine``). Compiled
    here, beside the order path: every message of such a venue, a probe's TestRequest and
    Heartbeat included, passes ``receive`` and ``flush``; as an interpreted subclass of the
    compiled ``NativeSession`` each of its calls into the base went through Python-level glue."""

    line_in: Any = None                 # delayline.DelayLine (interpreted), fresh per connection
    line_out: Any = None

    def attach(self, conn: Any) -> None:
        # Fresh lines per connection: bytes of a dead connection never reach a new one.
        from sim_exchange.delayline import DelayLine
        engine = self.engine
        timer, model, errors = engine.delay_timer, engine.delay_model, engine.delay_errors
        self.line_in = DelayLine(timer, model, self._receive_now, errors)
        self.line_out = DelayLine(timer, model, self.write_out, errors)
        super().attach(conn)

    def detach(self, conn: Any, reason: str) -> None:
        if self.conn is conn:
            for line in (self.line_in, self.line_out):
                if line is not None:
                    line.close()
        super().detach(conn, reason)

    def _receive_now(self, data: bytes) -> None:
        """The inbound line's delivery: the engine's own receive."""
        super().receive(data)

    def receive(self, data: bytes) -> None:
        traced = _TRACE is not None and b"\x0135=1\x01" in data    # bench-only: read returned .. handled
        t0 = time.perf_counter() if traced else 0.0
        line = self.line_in
        if line is None or line.straight():
            super().receive(data)
        else:
            line.push(data)
        if traced and _TRACE is not None:
            _TRACE.add("in", data, t0, time.perf_counter())

    def _write(self, data: bytes, frames: list[bytes], end: int) -> bool:
        # every socket write passes here: the delay line's (write_out) and a straight flush's
        traced = _TRACE is not None and b"\x01112=" in data      # bench-only: the answer's socket write
        t0 = time.perf_counter() if traced else 0.0
        ok = super()._write(data, frames, end)
        if traced and _TRACE is not None:
            _TRACE.add("out", data, t0, time.perf_counter())
        return ok

    def flush(self) -> None:
        """Take what the session has to send now; the line writes it when due."""
        conn = self.conn
        line = self.line_out
        if conn is None or conn.closing or line is None or line.straight():
            super().flush()
            return
        session = self.session
        for _ in range(10_000):          # bounded: a resend streams in chunks
            data = session.data_to_send()
            if not data:
                break
            line.push(data)

    def close_after_sent(self, reason: str, quiet: bool) -> None:
        conn = self.conn
        if conn is None:
            return
        if self.line_out is None:
            conn.close(reason, quiet=quiet)
        else:
            self.line_out.then(lambda: conn.close(reason, quiet=quiet))
