"""One simulated venue on the quickfix backend: matching engine + flow + quickfix acceptor
+ delay proxy (``engine = "quickfix"``; the native backend is ``native.py``).

All engine access (quickfix callback threads and the flow thread) happens under the
venue's one lock, and the resulting messages are sent before it is released, so each
counterparty sees its ExecutionReports and market data in engine order. Sending under
the lock is safe: quickfix does not hold its session mutex around fromApp, and
sendToTarget releases the GIL. quickfix does hold that mutex around onLogout, so the
logout path only takes the small sessions lock, never the venue lock.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import quickfix as fix
import quickfix44 as fix44

from gateway.fix import quickfix_backend as fixedge
from gateway.common.clock import MONOTONIC, Clock
from gateway.common.procs import free_port
from sim_exchange import fixmsgs
from sim_exchange.status import OrderLog, status_report
from sim_exchange.config import SimConfig, VenueConfig
from gateway.core.matching.engine import LIMIT, Instrument, MatchingEngine
from sim_exchange.flow import FLOW_OWNER_PREFIX, FlowDriver, FlowModel
from gateway.core.matching.marketdata import MDEntry, Subscription
from sim_exchange.publish import EventPublisher
from gateway.core.models.latency import ScheduledJitterLatency
from sim_exchange.proxy import DelayProxy, LockedLatency

log = logging.getLogger("sim.venue")

_NO_RESEND = {"W", "X", "Y"}


class VenueApp(fixedge.SafeApplication):
    """The quickfix edge of a venue: FIX messages in, engine calls, FIX messages out."""

    def __init__(self, venue: "Venue") -> None:
        super().__init__(f"sim.{venue.name}")
        self.venue = venue

    def on_logon(self, session_id: fix.SessionID) -> None:
        self.venue.session_up(session_id)

    def on_logout(self, session_id: fix.SessionID) -> None:
        self.venue.session_down(session_id)

    def to_app(self, msg: fix.Message, session_id: fix.SessionID) -> None:
        # A resend (PossDup) of market data would replay a stale book: quickfix turns
        # DoNotSend during a resend into a SequenceReset-GapFill. Orders' reports are resent.
        if fixedge.msg_type(msg) in _NO_RESEND and fixedge.get(msg.getHeader(), 43) == "Y":
            raise fix.DoNotSend()

    def from_app(self, msg: fix.Message, session_id: fix.SessionID) -> None:
        mtype = fixedge.msg_type(msg)
        handler = self.venue.handlers.get(mtype)
        if handler is None:
            # quickfix answers with a BusinessMessageReject (380=3).
            raise fix.UnsupportedMessageType()
        handler(msg, session_id)


class Venue(EventPublisher):
    def __init__(self, config: VenueConfig, sim: SimConfig, clock: Clock = MONOTONIC) -> None:
        self.cfg = config
        self.sim = sim
        self.name = config.name
        self.comp_id = config.comp_id
        self.port = config.port
        self.lock = threading.Lock()        # engine, flow model, subscription state
        self._slock = threading.Lock()      # the sessions/subscriptions maps only (see session_down)
        instruments = [Instrument(s.symbol, s.tick_size, s.ref_price) for s in sim.venue_symbols(config)]
        self.engine = MatchingEngine(instruments, clock, venue=config.name, id_prefix=f"{int(time.time()):x}")
        self.flow = FlowModel(self.engine, config.flow, config.seed, owner=f"{FLOW_OWNER_PREFIX}{config.name}")
        self.latency = LockedLatency(ScheduledJitterLatency.from_config(config.latency, seed=config.seed,
                                                                         clock=time.perf_counter))
        self.app = VenueApp(self)
        self.handlers = {"D": self._on_new_order, "F": self._on_cancel, "G": self._on_replace,
                         "H": self._on_status_request, "V": self._on_md_request}
        self.order_log = OrderLog()
        self.sessions: dict[str, fix.SessionID] = {}          # logged-on counterparty CompID -> session
        # Every configured session, logged on or not: an ExecutionReport for a counterparty
        # that is away is stored by quickfix and reaches it by resend after its next logon.
        self.session_ids = {cp.comp_id: fix.SessionID(fixedge.BEGIN_STRING, self.comp_id, cp.comp_id)
                            for cp in config.counterparties}
        self.subscriptions: dict[str, dict[str, Subscription]] = {}  # counterparty -> MDReqID -> sub
        self.stats = {"orders": 0, "cancels": 0, "replaces": 0, "exec_reports": 0, "md_messages": 0,
                      "md_rejects": 0, "send_failures": 0, "possdup_ignored": 0,
                      "publish_errors": 0}
        self.internal_port = self.port
        self._acceptor = None
        self._proxy: DelayProxy | None = None
        self._driver: FlowDriver | None = None
        self._logged_out = threading.Condition()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        with self.lock:
            self.flow.seed_book()
        try:
            self._start_io()
        except Exception as exc:
            self.stop(logout_timeout=0.0)   # e.g. the public port is taken: undo what started
            raise RuntimeError(f"venue {self.name} cannot start on port {self.port}: "
                               f"{type(exc).__name__}: {exc}") from exc

    def _start_io(self) -> None:
        needs_proxy = self.cfg.latency.needs_proxy
        self.internal_port = free_port() if needs_proxy else self.port
        self._acceptor = fixedge.start_engine("acceptor", self.app, self._settings(),
                                              log_to_files=bool(self.sim.log_dir),
                                              threaded=self.sim.threaded_acceptor)
        if needs_proxy:
            self._proxy = DelayProxy(self.port, self.internal_port, self.latency, name=f"{self.name}-proxy")
            self._proxy.start()
        if self.cfg.flow.enabled and self.cfg.flow.rate_per_s > 0:
            self._driver = FlowDriver(self.flow, self.apply, name=f"{self.name}-flow")
            self._driver.start()

    def stop(self, logout_timeout: float = 2.0) -> None:
        """Stop the flow, log every counterparty out (bounded wait), stop acceptor and proxy."""
        self.begin_stop()
        self.finish_stop(logout_timeout)

    def begin_stop(self) -> None:
        """Stop the flow and send a Logout on every session (answers are awaited in finish_stop)."""
        if self._driver is not None:
            self._driver.stop()
            self._driver = None
        if self._acceptor is None:
            return
        # quickfix's own state, not ours: onLogon runs after the Logon answer went out.
        # quickfix sends the Logout on its next timer tick (within a second).
        for session in self._live_sessions():
            session.logout("venue shutting down")

    def finish_stop(self, timeout: float = 2.0) -> None:
        if self._acceptor is not None:
            with self._logged_out:
                self._logged_out.wait_for(lambda: not self._live_sessions(), timeout)
            # ThreadedSocketAcceptor.stop spins (in C++) for up to 5 s while any session is
            # still logged on: cut the ones that did not answer the Logout.
            for session in self._live_sessions():
                session.disconnect()
            self._acceptor.stop(True)
            self._acceptor = None
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None

    def _live_sessions(self) -> list:
        """Sessions with a logon in progress or done. receivedLogon, not isLoggedOn: the
        Logon answer goes out before quickfix marks the session as logged on."""
        out = []
        for sid in self.session_ids.values():
            session = fix.Session.lookupSession(sid)
            if session is not None and (session.receivedLogon() or session.isLoggedOn()):
                out.append(session)
        return out

    def set_latency(self, base_us: float, jitter_us: float | None = None) -> None:
        """Change the injected one-way delay live (needs the proxy: latency configured or always_proxy)."""
        if self._proxy is None and self._acceptor is not None:
            raise RuntimeError(f"venue {self.name} runs without a delay proxy (set latency.always_proxy)")
        self.latency.set(base_us, jitter_us)

    def snapshot_stats(self) -> dict:
        with self._slock:
            sessions = sorted(self.sessions)
        with self.lock:
            out = dict(self.stats)
            out.update(orders_in=self.engine.orders_in, trades=self.engine.trades, sessions=sessions, flow=dict(self.flow.actions),
                       latency_us=self.latency.current(), callback_errors=self.app.callback_errors)
            out.update(self.order_log.snapshot())
        return out

    def _settings(self) -> fix.SessionSettings:
        base = Path(self.sim.store_dir) / self.name
        logs = Path(self.sim.log_dir) / self.name if self.sim.log_dir else None
        default = fixedge.engine_defaults(base, logs)
        default.update(ConnectionType="acceptor", SocketAcceptPort=self.internal_port,
                       SocketReuseAddress=True, HeartBtInt=30)
        sessions = []
        for cp in self.cfg.counterparties:
            sessions.append({"SenderCompID": self.comp_id, "TargetCompID": cp.comp_id,
                             "ResetOnLogon": cp.reset_on_logon, "ResetOnLogout": cp.reset_on_logon,
                             "ResetOnDisconnect": cp.reset_on_logon,
                             "ValidateUserDefinedFields": cp.validate_user_defined_fields,
                             "CheckLatency": cp.check_latency,
                             "MaxLatency": max(1, round(cp.max_latency_s))})
        return fixedge.build_settings(default, sessions)

    # ------------------------------------------------------------------ sessions
    def session_up(self, session_id: fix.SessionID) -> None:
        with self._slock:
            self.sessions[session_id.getTargetCompID().getValue()] = session_id
        log.info("%s: %s logged on", self.name, fixedge.session_key(session_id))

    def session_down(self, session_id: fix.SessionID) -> None:
        cp = session_id.getTargetCompID().getValue()
        # Not the venue lock: quickfix calls onLogout holding its session mutex, which a
        # sender holding the venue lock may be waiting for.
        with self._slock:
            self.sessions.pop(cp, None)
            self.subscriptions.pop(cp, None)
        with self._logged_out:
            self._logged_out.notify_all()

    # ------------------------------------------------------------------ engine steps
    def apply(self, step) -> list:
        """Run ``step()`` (engine calls returning events) under the lock and publish the events."""
        with self.lock:
            events = step()
            self._publish(events)
        return events

    # ------------------------------------------------------------------ publishing (publish.py)
    def _send_report(self, er) -> None:
        self._send(fixmsgs.execution_report(er, self.name), er.owner)

    def _send_cancel_reject(self, cr) -> None:
        self._send(fixmsgs.cancel_reject(cr), cr.owner)

    def _send_incremental(self, counterparty: str, req_id: str, entries: list[MDEntry]) -> None:
        self._send(fixmsgs.incremental(req_id, entries), counterparty)

    def _md_targets(self) -> list[tuple[str, list[Subscription]]]:
        with self._slock:
            return [(cp, list(subs.values())) for cp, subs in self.subscriptions.items()]

    def _send(self, msg: fix.Message, counterparty: str) -> None:
        sid = self.session_ids.get(counterparty)
        if sid is None or not fixedge.send(msg, sid):
            self.stats["send_failures"] += 1

    # ------------------------------------------------------------------ FIX handlers
    def _on_new_order(self, msg: fix.Message, sid: fix.SessionID) -> None:
        owner = sid.getTargetCompID().getValue()
        cl_ord_id = fixedge.require(msg, 11)
        symbol = fixedge.require(msg, 55)
        side = fixedge.require(msg, 54)
        qty = _number(fixedge.require(msg, 38), 38)
        ord_type = fixedge.require(msg, 40)
        price_text = fixedge.get(msg, 44)
        price = _number(price_text, 44) if price_text is not None and ord_type == LIMIT else None
        tif = fixedge.get(msg, 59, "0")
        poss_dup = fixedge.get(msg.getHeader(), 43) == "Y"
        with self.lock:
            self.order_log.new_order(owner, cl_ord_id, poss_dup)
            if poss_dup and self.engine.knows(owner, cl_ord_id):
                # A resent order we already have: never a second order.
                self.stats["possdup_ignored"] += 1
                return
            self.stats["orders"] += 1
            events = self.engine.new_order(owner, cl_ord_id, symbol, side, qty, ord_type, price, tif)
            self._publish(events)

    def _on_cancel(self, msg: fix.Message, sid: fix.SessionID) -> None:
        owner = sid.getTargetCompID().getValue()
        cl_ord_id = fixedge.require(msg, 11)
        orig = fixedge.require(msg, 41)
        with self.lock:
            self.stats["cancels"] += 1
            self._publish(self.engine.cancel(owner, cl_ord_id, orig))

    def _on_replace(self, msg: fix.Message, sid: fix.SessionID) -> None:
        owner = sid.getTargetCompID().getValue()
        cl_ord_id = fixedge.require(msg, 11)
        orig = fixedge.require(msg, 41)
        qty = _number(fixedge.require(msg, 38), 38)
        price_text = fixedge.get(msg, 44)
        price = _number(price_text, 44) if price_text is not None else None
        with self.lock:
            self.stats["replaces"] += 1
            self._publish(self.engine.replace(owner, cl_ord_id, orig, qty, price))

    def _on_status_request(self, msg: fix.Message, sid: fix.SessionID) -> None:
        """OrderStatusRequest: ExecType I with the order's state, or OrdStatus 8 "unknown order"."""
        owner = sid.getTargetCompID().getValue()
        cl_ord_id = fixedge.require(msg, 11)
        with self.lock:
            self.order_log.status_requests += 1
            er = status_report(self.engine, owner, cl_ord_id, fixedge.get(msg, 37), fixedge.get(msg, 55),
                               fixedge.get(msg, 54))
            self._send(fixmsgs.execution_report(er, self.name, fixedge.get(msg, 790)), owner)

    def _on_md_request(self, msg: fix.Message, sid: fix.SessionID) -> None:
        cp = sid.getTargetCompID().getValue()
        req_id = fixedge.require(msg, 262)
        sub_type = fixedge.require(msg, 263)
        depth = int(fixedge.get(msg, 264, "0") or 0)
        symbols = _related_symbols(msg)
        with self.lock:
            if sub_type == "2":
                with self._slock:
                    self.subscriptions.get(cp, {}).pop(req_id, None)
                return
            unknown = [s for s in symbols if s not in self.engine.instruments]
            if unknown or not symbols:
                self.stats["md_rejects"] += 1
                text = f"unknown symbol {', '.join(unknown)}" if unknown else "no symbol requested"
                self._send(fixmsgs.md_reject(req_id, text), cp)
                return
            sub = Subscription(req_id, symbols, max(depth, 0))
            for symbol in symbols:
                self.stats["md_messages"] += 1
                self._send(fixmsgs.snapshot(req_id, symbol, sub.snapshot(self.engine, symbol)), cp)
            if sub_type == "1":
                with self._slock:
                    self.subscriptions.setdefault(cp, {})[req_id] = sub


def _number(text: str, tag: int) -> float:
    try:
        return float(text)
    except ValueError:
        # quickfix answers IncorrectDataFormat with a session Reject (373=6).
        raise fix.IncorrectDataFormat(tag, text) from None


def _related_symbols(msg: fix.Message) -> list[str]:
    count = int(fixedge.get(msg, 146, "0") or 0)
    group = fix44.MarketDataRequest.NoRelatedSym()
    out = []
    for i in range(1, count + 1):
        msg.getGroup(i, group)
        out.append(fixedge.require(group, 55))
    return out
