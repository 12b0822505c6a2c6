"""The gateway process: `fixgw run --config configs/gateway.toml`.

``Gateway`` wires the parts: the OMS acceptor and the venue initiator (quickfix edges),
the ``OrderManager`` (order state), the ``Journal`` (crash recovery), the ``RiskEngine``,
the routers and the ``MarketState`` (live latency and books). Each order event runs under
one lock, in the quickfix thread that received it, from FIX message in to FIX message
out: no queue hop, no extra thread on the hot path. The lock is re-entrant because a fill
can trip the kill switch, which cancels every open order in the same call.

Two quickfix threads do the work (the non-threaded SocketAcceptor and SocketInitiator
each poll their sockets in one thread); the main thread blocks on an Event (GIL trap).
"""
from __future__ import annotations

import argparse
import itertools
import logging
import os
import threading
import time
from collections import deque

from gateway.fix import quickfix_backend as fixedge
from gateway.common.clock import MONOTONIC, Clock
from gateway.apps.server.config import GatewayConfig, session_settings
from gateway.common.configfile import load_config
from gateway.core.journal import Journal, replay
from gateway.core.market import MarketState
from gateway.core.model import LIMIT, REJ_DUPLICATE, REJ_OTHER, ChildOrder, OrderIntent
from gateway.apps.server.oms import OmsApplication
from gateway.core.orders import OmsCancelReject, OmsExec, OmsOrder, OrderManager, Retry, VenueExec, VenueNew
from gateway.core.risk import RiskEngine
from gateway.apps.server.news import reset_news, trip_news
from gateway.core.router import build_router
from gateway.core.router.decisions import DecisionLog
from gateway.apps.server.venues import VenueApplication

log = logging.getLogger("gateway")
MARK_REFRESH_S = 0.05     # how often risk re-marks positions to the live books


class IdGen:
    """Unique ids across restarts: a time-based run prefix and a counter."""

    def __init__(self) -> None:
        self.prefix = _base36(int(time.time() * 1000))
        self._n = itertools.count(1)

    def venue(self) -> str:
        return f"G{self.prefix}.{next(self._n)}"

    def order(self) -> str:
        return f"O{self.prefix}.{next(self._n)}"

    def exec(self) -> str:
        return f"E{self.prefix}.{next(self._n)}"


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


class Gateway:
    def __init__(self, cfg: GatewayConfig, clock: Clock = MONOTONIC, policy: str | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.policy = policy or cfg.routing.policy
        self._policy_override = policy
        self.lock = threading.RLock()
        self.started_at = clock.now()
        self.events: deque[dict] = deque(maxlen=500)
        self.counts = {"resends_ignored": 0, "send_failures": 0}
        self.ids = IdGen()

        self.market = MarketState(cfg.routing, clock)
        for v in cfg.venues:
            self.market.register_venue(v.name)
        self.decisions = DecisionLog(cfg.routing.decision_log_size, cfg.routing.decision_log_path)
        self._routers: dict[str, object] = {}          # policy name -> router
        self._session_router: dict[str, object] = {}   # OMS session key -> router
        self.risk = RiskEngine(cfg.risk, clock, mark_price=self.market.mark_price)
        self.risk.on_trip = self._on_trip
        self.orders = OrderManager(self.risk, self._retry_route if cfg.routing.micro_burst else None,
                                   self.risk.on_venue_reject)
        risk_states: list[tuple[str, str, str]] = []
        self.recovered = replay(cfg.journal_path, self.orders, risk_states)
        self._restore_risk(risk_states)
        self.journal = Journal(cfg.journal_path)
        self.oms = OmsApplication(self)
        self.venues = VenueApplication(self)
        self._acceptor = self._initiator = self._admin = None
        self._stop = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self.cpu: int | None = None

    def _restore_risk(self, risk_states: list[tuple[str, str, str]]) -> None:
        """Positions, open exposure, used ClOrdIDs and a tripped switch survive a restart."""
        orders = self.orders
        fills = [(o.intent, c.cum_qty, c.avg_px) for o in orders.by_order_id.values()
                 for c in o.children if c.cum_qty > 0]
        open_orders = [(o.intent, o.leaves_qty) for o in orders.open.values()]
        self.risk.restore(fills, open_orders, list(orders.by_oms))
        if risk_states and risk_states[-1][0] == "HALTED":
            _, reason, by = risk_states[-1]
            self.risk.on_trip = None             # its orders were canceled before the restart
            self.risk.trip(f"{reason} (still halted after a restart)", by=by)
            self.risk.on_trip = self._on_trip

    # ------------------------------------------------------------ routing

    def router_for(self, oms_session: str):
        router = self._session_router.get(oms_session)
        if router is None:
            name = self._policy_override or self.cfg.routing.policy_for(oms_session)
            router = self._routers.get(name)
            if router is None:
                router = self._routers[name] = build_router(self.cfg.routing, self.market, self.clock, name,
                                                            log=self.decisions)
            self._session_router[oms_session] = router
        return router

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

    # ------------------------------------------------------------ order path (quickfix threads)

    def on_new_order(self, intent: OrderIntent, resend: bool) -> None:
        with self.lock:
            orders = self.orders
            if orders.is_known(intent.oms_session, intent.cl_ord_id):
                if resend:      # PossDup/PossResend of an order we already have: never route twice
                    self.counts["resends_ignored"] += 1
                    return
                return self._reject(intent, f"duplicate ClOrdID {intent.cl_ord_id!r}", REJ_DUPLICATE)
            if not intent.qty > 0:
                return self._reject(intent, f"OrderQty must be positive (got {intent.qty:g})", REJ_OTHER)
            if intent.ord_type == LIMIT and not intent.price > 0:
                return self._reject(intent, f"limit Price must be positive (got {intent.price:g})", REJ_OTHER)
            rej = self.risk.check(intent)
            if rej is not None:
                return self._reject(intent, f"risk: {rej.text}", rej.ord_rej_reason)
            decision = self.router_for(intent.oms_session).decide(intent)
            if decision.rejected:
                self.risk.on_order_done(intent, intent.qty)
                return self._reject(intent, f"no route: {decision.reason}", REJ_OTHER)
            now = self.clock.now()
            order_id = self.ids.order()
            vids = [self.ids.venue() for _ in decision.children]
            self.journal.accepted(intent, order_id, decision.children, vids, decision.policy, decision.reason, now)
            self._dispatch(orders.accept(intent, order_id, decision.children, vids, decision.policy,
                                         decision.reason, now))

    def _reject(self, intent: OrderIntent, text: str, reason: int) -> None:
        order_id = self.ids.order()
        now = self.clock.now()
        self.journal.rejected(intent, order_id, text, reason, now)
        self._dispatch(self.orders.reject_new(intent, order_id, text, reason, now))

    def on_cancel(self, session: str, cl_ord_id: str, orig: str) -> None:
        with self.lock:
            ids, gen = _recording(self.ids.venue)
            outs = self.orders.cancel(session, cl_ord_id, orig, gen)
            self.journal.cancel(session, cl_ord_id, orig, ids)
            self._dispatch(outs)

    def on_replace(self, session: str, new: OrderIntent, orig: str) -> None:
        with self.lock:
            vid = self.ids.venue()
            self.journal.replace(session, new, orig, vid)
            self._dispatch(self.orders.replace(session, new, orig, vid))

    def on_status_request(self, session: str, cl_ord_id: str, fields: dict[str, str]) -> None:
        """OrderStatusRequest (H): the order's current state as an ExecutionReport (ExecType I)."""
        with self.lock:
            report = self.orders.status_report(session, cl_ord_id, fields.get("55", "?"), fields.get("54", "1"))
            self.oms.send_exec(report, self.ids.exec())

    def on_venue_exec(self, ev: VenueExec) -> None:
        with self.lock:
            now = self.clock.now()
            child = self.orders.find_child(ev.cl_ord_id)
            if child is not None and not child.acked:
                self.market.record_ack(child.venue, now - child.sent_at)
            if ev.exec_type == "F":
                self.venues.venues[ev.venue].fills += 1
            self.journal.venue_exec(ev, now)
            self._dispatch(self.orders.on_venue_exec(ev, now))

    def on_venue_cancel_reject(self, venue: str, venue_cl_ord_id: str, text: str) -> None:
        with self.lock:
            self.journal.cancel_reject(venue_cl_ord_id, text)
            self._dispatch(self.orders.on_venue_cancel_reject(venue_cl_ord_id, text))

    def _dispatch(self, outs: list) -> None:
        """Send what the order manager asked for (called under the lock, in order)."""
        for out in outs:
            if isinstance(out, OmsExec):
                self.oms.send_exec(out, self.ids.exec())
            elif isinstance(out, OmsCancelReject):
                self.oms.send_cancel_reject(out)
            elif isinstance(out, Retry):
                vid = self.ids.venue()
                now = self.clock.now()
                self.journal.retry(out.order.order_id, out.spec, vid, now)
                self._dispatch(self.orders.add_retry(out.order, out.spec, vid, now))
            elif not self.venues.send(out):
                self._send_failed(out)

    def _send_failed(self, out) -> None:
        self.counts["send_failures"] += 1
        text = f"venue {out.child.venue} session is not logged on"
        if isinstance(out, VenueNew):
            self.journal.send_failed(out.child.cl_ord_id, text)
            self._dispatch(self.orders.send_failed(out.child, text, self.clock.now()))
        else:
            self.journal.cancel_reject(out.cl_ord_id, text)
            self._dispatch(self.orders.on_venue_cancel_reject(out.cl_ord_id, text))

    # ------------------------------------------------------------ risk events

    def _on_trip(self, reason: str) -> None:
        """Kill switch: cancel every open venue order and tell every OMS session (lock held or taken)."""
        with self.lock:
            log.error("KILL SWITCH TRIPPED: %s", reason)
            self.event("risk", "kill_switch", f"tripped: {reason}")
            self.journal.risk_state("HALTED", reason, self.risk.tripped_by or "auto")
            ids, gen = _recording(self.ids.venue)
            outs = self.orders.cancel_all(gen, f"kill switch: {reason}")
            self.journal.cancel_all(f"kill switch: {reason}", ids)
            self._dispatch(outs)
            self.oms.broadcast(trip_news(reason))

    def trip(self, reason: str, by: str) -> bool:
        with self.lock:
            return self.risk.trip(f"manual: {reason}", by=by)

    def reset_risk(self, by: str) -> None:
        with self.lock:
            self.risk.reset(by)
            self.journal.risk_state("ACTIVE", "reset", by)
            self.event("risk", "kill_switch", f"reset by {by}")
            self.oms.broadcast(reset_news(by))

    # ------------------------------------------------------------ lifecycle

    def event(self, kind: str, name: str, text: str) -> None:
        now = self.clock.now()
        self.events.append({"at": round(now - self.started_at, 3), "kind": kind, "name": name, "event": text})
        if kind == "venue" and name in self.venues.venues:
            self.venues.venues[name].events.append((now - self.started_at, text))
        log.info("%s %s: %s", kind, name, text)

    def start(self) -> None:
        self.cpu = self.cfg.pin_cpu()            # before any thread starts: they inherit it
        acceptor_settings, initiator_settings = session_settings(self.cfg)
        files = bool(self.cfg.log_dir)
        self._acceptor = fixedge.start_engine("acceptor", self.oms, acceptor_settings, log_to_files=files)
        self._initiator = fixedge.start_engine("initiator", self.venues, initiator_settings, log_to_files=files)
        self.market.start()
        if self.cfg.admin.port:
            from gateway.apps.server.admin import AdminServer
            self._admin = AdminServer(self, self.cfg.admin.host, self.cfg.admin.port)
            self._admin.start()
        self._housekeeper = threading.Thread(target=self._housekeeping, name="gw-housekeeping", daemon=True)
        self._housekeeper.start()

    def _housekeeping(self) -> None:
        # marks move with the books even without fills, so the loss triggers see price moves
        while not self._stop.wait(MARK_REFRESH_S):
            with self.lock:
                self.risk.refresh_marks()

    def stop(self) -> None:
        self._stop.set()
        for engine in (self._initiator, self._acceptor):
            if engine is not None:
                engine.stop()        # logs out every session
        self.market.stop()
        if self._admin is not None:
            self._admin.stop()
        self.decisions.close()
        self.journal.close()

    # ------------------------------------------------------------ status

    def status(self) -> dict:
        with self.lock:
            market = self.market.snapshot()
            open_by_venue = self.orders.open_by_venue()
            venues = self.venues.snapshot()
            for row in venues:
                row["open_orders"] = open_by_venue.get(row["name"], 0)
                row["market"] = market.get("venues", market).get(row["name"], {})
            return {
                "gateway": {"uptime_s": round(self.clock.now() - self.started_at, 3), "pid": os.getpid(),
                            "oms_port": self.cfg.oms.port, "policy": self.policy, "cpu": self.cpu,
                            "journal": str(self.cfg.journal_path), "recovered_records": self.recovered,
                            "callback_errors": self.oms.callback_errors + self.venues.callback_errors,
                            **self.counts},
                "oms_sessions": [{"session": key, "logged_on": key in self.oms.logged_on,
                                  **fixedge.seq_nums(sid)} for key, sid in self.oms.sessions.items()],
                "venues": venues,
                "orders": self.orders.summary(),
                "routing": {"policy": self.policy, "decisions": self.decisions.total,
                            "by_venue": self.decisions.counts_by_venue()},
                "risk": self.risk.snapshot(),
                "events": list(self.events)[-30:],
            }

    def orders_view(self, limit: int = 200) -> list[dict]:
        with self.lock:
            rows = list(self.orders.by_order_id.values())[-limit:]
            return [_order_row(o) for o in rows]


def _order_row(o: OmsOrder) -> dict:
    i = o.intent
    return {"order_id": o.order_id, "session": i.oms_session, "cl_ord_id": i.cl_ord_id, "symbol": i.symbol,
            "side": i.side, "qty": i.qty, "price": i.price, "tif": i.tif, "status": o.status,
            "cum_qty": o.cum_qty, "avg_px": o.avg_px, "policy": o.policy, "route_reason": o.route_reason,
            "text": o.text, "created_at": o.created_at, "done_at": o.done_at or None,
            "children": [{"venue": c.venue, "cl_ord_id": c.cl_ord_id, "qty": c.qty, "price": c.price,
                          "status": c.status, "cum_qty": c.cum_qty, "venue_order_id": c.venue_order_id}
                         for c in o.children]}


def _recording(gen):
    """(ids, wrapped generator): the ids a call used, for the journal."""
    ids: list[str] = []

    def next_id() -> str:
        vid = gen()
        ids.append(vid)
        return vid
    return ids, next_id


# ------------------------------------------------------------ command line

def main(argv: list[str] | None = None, prog: str = "fixgw run", command: str = "run") -> int:
    ap = argparse.ArgumentParser(prog=prog, description="Run the FIX 4.4 gateway (OMS acceptor + venue initiators).")
    ap.add_argument("--config", default="configs/gateway.toml", help="gateway TOML (default: %(default)s)")
    ap.add_argument("--policy", choices=("scalp", "best_price", "dma"),
                    help="routing policy for every session (overrides [routing])")
    ap.add_argument("--duration", type=float, help="stop after this many seconds (default: until SIGINT/SIGTERM)")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config(args.config, GatewayConfig)
    gw = Gateway(cfg, policy=args.policy)
    gw.start()
    venues = ", ".join(f"{v.name}@{v.host}:{v.port}" for v in cfg.venues)
    admin = f"http://{cfg.admin.host}:{cfg.admin.port}/status" if cfg.admin.port else "off"
    print(f"fixgw gateway pid {os.getpid()}: OMS acceptor {cfg.oms.host}:{cfg.oms.port} as {cfg.oms.comp_id}; "
          f"venues {venues}; policy {gw.policy}; admin {admin}; recovered {gw.recovered} journal records"
          + (f"; pinned to CPU {gw.cpu}" if gw.cpu is not None else ""),
          flush=True)
    try:
        fixedge.wait_for_shutdown(duration=args.duration)
    finally:
        gw.stop()
        print("fixgw gateway stopped", flush=True)
    return 0
