"""The gateway process: `fixgw run --config configs/gateway.toml`.

``Gateway`` wires the parts: the OMS acceptor and the venue initiator (quickfix edges,
which decode FIX into the core's events and hand them to ``submit``), the
``GatewayCore`` (gateway/core/hub.py: orders, journal, risk, routers; sans-IO) and the
``MarketState`` (live latency and books). ``submit`` runs one event under one lock, in
the quickfix thread that received it, from FIX message in to FIX messages out: no queue
hop, no extra thread on the hot path. The lock exists only because two quickfix threads
(and the admin and housekeeping threads) call in; the core never calls back, so it is
not re-entrant, and it goes away with the single asyncio loop.

Two quickfix threads do the work (the non-threaded SocketAcceptor and SocketInitiator
each poll their sockets in one thread); the main thread blocks on an Event (GIL trap).
"""
from __future__ import annotations

import argparse
import logging
import os
import threading
from collections import deque

from gateway.fix import quickfix_backend as fixedge
from gateway.common.clock import MONOTONIC, Clock
from gateway.apps.server.admin import AdminActions, ensure_token
from gateway.apps.server.config import GatewayConfig, session_settings
from gateway.common.configfile import load_config
from gateway.core.hub import (BroadcastNews, GatewayCore, KillRequested, ResetRequested, Tick,
                              VenueSendFailed)
from gateway.core.market import MarketState
from gateway.apps.server.oms import OmsApplication
from gateway.core.orders import VENUE_COMMANDS, RejectOmsCancel, ReportToOms
from gateway.apps.server.news import risk_state_news
from gateway.apps.server.venues import VenueApplication

log = logging.getLogger("gateway")
MARK_REFRESH_S = 0.05     # how often risk re-marks positions to the live books
_MAX_FOLLOW_UPS = 10_000  # bound on send-failure answers chained from one event


class Gateway:
    def __init__(self, cfg: GatewayConfig, clock: Clock = MONOTONIC, policy: str | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.lock = threading.Lock()
        self.started_at = clock.now()
        self.events: deque[dict] = deque(maxlen=500)
        self.market = MarketState(cfg.routing, clock)
        for v in cfg.venues:
            self.market.register_venue(v.name)
        self.core = GatewayCore(routing=cfg.routing, risk=cfg.risk, journal_path=cfg.journal_path,
                                market=self.market, clock=clock, policy=policy)
        self.policy = self.core.policy
        self.oms = OmsApplication(cfg.oms.clients, self.submit, self.event, clock.now)
        self.venues = VenueApplication(cfg.venues, self.market, self.submit, self.event)
        self._acceptor = self._initiator = self._admin = None
        self._stop = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self.cpu: int | None = None

    # the core's parts, for status, tests and benchmarks
    @property
    def orders(self):
        return self.core.orders

    @property
    def risk(self):
        return self.core.risk

    @property
    def journal(self):
        return self.core.journal

    @property
    def decisions(self):
        return self.core.decisions

    @property
    def recovered(self) -> int:
        return self.core.recovery.applied

    def router_for(self, oms_session: str):
        return self.core.router_for(oms_session)

    # ------------------------------------------------------------ the event path (quickfix threads)

    def submit(self, event) -> None:
        """One decoded event: the core decides, this edge carries out its commands, in order."""
        with self.lock:
            self._execute(self.core.handle(event))

    def _execute(self, commands: list) -> None:
        todo = deque(commands)
        budget = _MAX_FOLLOW_UPS
        while todo:
            cmd = todo.popleft()
            if isinstance(cmd, ReportToOms):
                self.oms.send_exec(cmd, self.core.ids.exec())
            elif isinstance(cmd, RejectOmsCancel):
                self.oms.send_cancel_reject(cmd)
            elif isinstance(cmd, BroadcastNews):
                self.event("risk", "news", cmd.headline)
                self.oms.broadcast(risk_state_news(cmd.headline, cmd.text), cmd.session)
            elif isinstance(cmd, VENUE_COMMANDS):
                if not self.venues.send(cmd) and budget > 0:
                    budget -= 1
                    text = f"venue {cmd.child.venue} session is not logged on"
                    todo.extendleft(reversed(self.core.handle(VenueSendFailed(command=cmd, text=text))))
            else:
                log.error("unknown command from the core: %r", cmd)

    # ------------------------------------------------------------ people (admin thread)

    def trip(self, reason: str, by: str) -> bool:
        with self.lock:
            commands = self.core.handle(KillRequested(by=by, reason=reason))
            self._execute(commands)
            return bool(commands)

    def reset_risk(self, by: str, session: str | None = None) -> bool:
        with self.lock:
            commands = self.core.reset(ResetRequested(by=by, session=session))   # ValueError: no person named
            self._execute(commands)
            return bool(commands)

    def admin_actions(self) -> AdminActions:
        return AdminActions(status=self.status, orders=self.orders_view, decisions=self.decisions.recent,
                            kill=self.trip, reset=self.reset_risk, risk=lambda: self.risk.snapshot())

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
            token = ensure_token(self.cfg.store_dir)
            self._admin = AdminServer(self.admin_actions(), self.cfg.admin.host, self.cfg.admin.port, token)
            self._admin.start()
        self._housekeeper = threading.Thread(target=self._housekeeping, name="gw-housekeeping", daemon=True)
        self._housekeeper.start()

    def _housekeeping(self) -> None:
        # marks move with the books even without fills, so the loss triggers see price moves
        while not self._stop.wait(MARK_REFRESH_S):
            self.submit(Tick())

    def stop(self) -> None:
        self._stop.set()
        for engine in (self._initiator, self._acceptor):
            if engine is not None:
                engine.stop()        # logs out every session
        self.market.stop()
        if self._admin is not None:
            self._admin.stop()
        with self.lock:
            self.core.close()

    # ------------------------------------------------------------ status

    def status(self) -> dict:
        with self.lock:
            market = self.market.snapshot()
            open_by_venue = self.orders.open_by_venue()
            venues = self.venues.snapshot()
            for row in venues:
                row["open_orders"] = open_by_venue.get(row["name"], 0)
                row["in_flight"] = self.orders.in_flight.get(row["name"], 0)
                row["market"] = market.get("venues", market).get(row["name"], {})
            rec = self.core.recovery
            return {
                "gateway": {"uptime_s": round(self.clock.now() - self.started_at, 3), "pid": os.getpid(),
                            "oms_port": self.cfg.oms.port, "policy": self.policy, "cpu": self.cpu,
                            "journal": str(self.cfg.journal_path), "recovered_records": rec.applied,
                            "skipped_records": len(rec.skipped),
                            "callback_errors": self.oms.callback_errors + self.venues.callback_errors,
                            **self.core.counts},
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
            return self.core.orders_view(limit)


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
