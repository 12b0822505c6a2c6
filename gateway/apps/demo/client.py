"""The demo OMS client: a quickfix initiator that trades the simulator's touch via the gateway.

Sessions (one SocketInitiator: all callbacks on one quickfix thread, so market data,
signals and execution reports never contend for the GIL or our locks; measured no slower
than a thread per session on 2 cores):
- DEMO -> FIXGW on the gateway's OMS port (ResetOnLogon=Y: each run starts fresh),
  NewOrderSingle out (IOC limit at the touch), ExecutionReports in;
- CLIENT -> <venue> on each simulated venue: a consolidated market-data feed
  (MarketDataRequest, snapshot + updates). The signal fires in the market-data callback;
  its timestamp is taken on entry to that callback.
"""
from __future__ import annotations

import itertools
import threading
from decimal import Decimal
from pathlib import Path

import quickfix as fix

from gateway.fix import quickfix_backend as fixedge
from gateway.common.clock import Clock, MONOTONIC
from gateway.apps.demo.config import ClientConfig
from gateway.apps.demo.mdbook import MarketView, parse_fields
from gateway.apps.demo.orders import OrderRecord, OrderTracker
from gateway.apps.demo.signals import Signal, SignalRule
from gateway.core.model import IOC, LIMIT


def price_decimals(tick: float) -> int:
    exp = Decimal(str(tick)).normalize().as_tuple().exponent
    return max(0, -int(exp))


class DemoClient(fixedge.SafeApplication):
    def __init__(self, cfg: ClientConfig, oms_port: int, venue_ports: dict[str, int], ticks: dict[str, float],
                 work_dir: Path, comp_id: str = "DEMO", gateway_comp_id: str = "FIXGW",
                 md_comp_id: str = "CLIENT", clock: Clock = MONOTONIC) -> None:
        super().__init__("demo.client")
        self.cfg, self.clock = cfg, clock
        self.oms_port, self.venue_ports = oms_port, dict(venue_ports)
        self.ticks = dict(ticks)
        self.decimals = {s: price_decimals(t) for s, t in self.ticks.items()}
        self.work_dir = Path(work_dir)
        self.comp_id, self.gateway_comp_id, self.md_comp_id = comp_id, gateway_comp_id, md_comp_id
        self.market = MarketView()
        self.rule = SignalRule(cfg, clock)
        self.tracker = OrderTracker()
        self.lock = threading.Lock()          # market view + rule: the venue threads share them
        self.ready = threading.Condition()
        self.oms_session: fix.SessionID | None = None
        self.venues_up: set[str] = set()
        self.md_seen: set[str] = set()          # symbols with a two-sided consolidated touch
        self.trading = False
        self.t0 = 0.0
        self.ids = itertools.count(1)
        self.md_ids = itertools.count(1)
        self.stats = {"md_messages": 0, "md_rejects": 0, "send_failures": 0, "session_rejects": 0,
                      "business_rejects": 0}
        self.engine = None

    # ------------------------------------------------------------ lifecycle
    def settings(self) -> fix.SessionSettings:
        default = fixedge.engine_defaults(self.work_dir / "client-store")
        default.update(ConnectionType="initiator", HeartBtInt=self.cfg.heartbeat_s, ReconnectInterval=1,
                       SocketConnectHost="127.0.0.1")
        sessions = [{"SenderCompID": self.comp_id, "TargetCompID": self.gateway_comp_id,
                     "SocketConnectPort": self.oms_port, "ResetOnLogon": True}]
        sessions += [{"SenderCompID": self.md_comp_id, "TargetCompID": venue, "SocketConnectPort": port,
                      "ResetOnLogon": True} for venue, port in self.venue_ports.items()]
        return fixedge.build_settings(default, sessions)

    def start(self) -> None:
        self.engine = fixedge.start_engine("initiator", self, self.settings(), threaded=False)

    def wait_ready(self, timeout: float) -> bool:
        """Block until the OMS session is up and every venue and symbol has market data."""
        want = set(self.cfg.symbols)
        with self.ready:
            return self.ready.wait_for(
                lambda: self.oms_session is not None and self.venues_up >= set(self.venue_ports)
                and self.md_seen >= want, timeout)

    def start_trading(self) -> None:
        with self.lock:
            self.t0 = self.clock.now()
            self.trading = True

    def stop_trading(self) -> None:
        with self.lock:
            self.trading = False

    def drain(self, timeout: float) -> bool:
        """Wait (blocking, bounded) for every open order to end."""
        return self.tracker.wait_idle(timeout)

    def stop(self) -> None:
        """Log out of every session (quickfix waits for the Logout answers, bounded)."""
        self.stop_trading()
        if self.engine is not None:
            engine, self.engine = self.engine, None
            engine.stop()

    # ------------------------------------------------------------ callbacks
    def _venue_of(self, session_id: fix.SessionID) -> str | None:
        target = session_id.getTargetCompID().getValue()
        return target if target in self.venue_ports else None

    def on_logon(self, session_id):
        venue = self._venue_of(session_id)
        if venue is None:
            with self.ready:
                self.oms_session = session_id
                self.ready.notify_all()
            return
        fixedge.send(self.md_request(venue), session_id)
        with self.ready:
            self.venues_up.add(venue)
            self.ready.notify_all()

    def on_logout(self, session_id):
        venue = self._venue_of(session_id)
        if venue is None:
            self.oms_session = None
            return
        with self.lock:
            self.venues_up.discard(venue)
            self.market.forget_venue(venue)

    def from_admin(self, msg, session_id):
        if fixedge.msg_type(msg) == "3":
            self.stats["session_rejects"] += 1

    def from_app(self, msg, session_id):
        now = self.clock.now()
        mt = fixedge.msg_type(msg)
        if mt in ("W", "X"):
            venue = self._venue_of(session_id)
            if venue is not None:
                self.on_market_data(venue, mt, msg.toString(), now)
        elif mt == "8":
            self.tracker.on_execution_report(dict(parse_fields(msg.toString())), now)
        elif mt == "j":
            self.stats["business_rejects"] += 1
            self.tracker.on_business_reject(fixedge.get(msg, 379), fixedge.get(msg, 58), now)
        elif mt == "Y":
            self.stats["md_rejects"] += 1
            self.log.warning("market data request rejected: %s", fixedge.get(msg, 58))

    # ------------------------------------------------------------ market data -> signal -> order
    def on_market_data(self, venue: str, mt: str, raw: str, now: float) -> None:
        with self.lock:
            self.stats["md_messages"] += 1
            changed = self.market.on_message(venue, mt, raw)
            for symbol in changed:
                touch = self.market.touch(symbol)
                if touch is not None and symbol not in self.md_seen:
                    with self.ready:
                        self.md_seen.add(symbol)
                        self.ready.notify_all()
                if not self.trading:
                    continue
                busy, in_flight = self.tracker.busy()
                signal = self.rule.on_touch(symbol, touch, busy, in_flight, at=now)
                if signal is not None:
                    self.send_order(signal)

    def send_order(self, sig: Signal) -> OrderRecord | None:
        session = self.oms_session
        if session is None:
            self.stats["send_failures"] += 1
            return None
        cl_ord_id = f"{self.comp_id}-{next(self.ids):06d}"
        px = f"{sig.price:.{self.decimals.get(sig.symbol, 8)}f}"
        # One SWIG call for the whole body: each setField call would release and retake the GIL.
        msg = fixedge.message_from_body("D", f"11={cl_ord_id}\x0155={sig.symbol}\x0154={sig.side}\x01"
                                             f"60={fixedge.utc_timestamp()}\x0138={sig.qty:g}\x0140={LIMIT}\x01"
                                             f"44={px}\x0159={IOC}\x01")
        rec = OrderRecord(cl_ord_id, sig.symbol, sig.side, sig.qty, sig.price,
                          self.ticks.get(sig.symbol, 0.01), signal_ts=sig.at)
        self.tracker.add(rec)   # before sending: the answer may arrive on another thread first
        rec.send_ts = self.clock.now()
        if not fixedge.send(msg, session):
            self.stats["send_failures"] += 1
            self.tracker.on_business_reject(cl_ord_id, "not sent: OMS session down", self.clock.now())
        return rec

    def md_request(self, venue: str) -> fix.Message:
        msg = fixedge.new_message("V")
        msg.setField(262, f"DEMO-MD-{venue}-{next(self.md_ids)}")
        msg.setField(263, "1")                      # snapshot + updates
        msg.setField(264, str(self.cfg.md_depth))
        msg.setField(265, "1")                      # incremental refresh
        types = fix.Group(267, 269)
        for entry_type in ("0", "1"):
            types.setField(269, entry_type)
            msg.addGroup(types)
        for symbol in self.cfg.symbols:
            sym = fix.Group(146, 55)
            sym.setField(55, symbol)
            msg.addGroup(sym)
        return msg

    # ------------------------------------------------------------ live figures
    def live_stats(self) -> dict:
        """Per-venue and total counts for the live view (cheap: a few hundred records)."""
        per: dict[str, dict] = {}
        totals = {"sent": 0, "open": 0, "filled": 0, "partial_then_done": 0, "missed": 0, "rejected": 0,
                  "unresolved": 0, "lat_us": [], "slip_qty": 0.0, "slip_ticks_x_qty": 0.0}
        for rec in self.tracker.records():
            out = rec.outcome
            totals["sent"] += 1
            totals[out] += 1
            if not rec.done:
                totals["open"] += 1
            v = per.setdefault(rec.venue or "(none)", {"orders": 0, "fills": 0, "misses": 0})
            v["orders"] += 1
            v["fills"] += out in ("filled", "partial_then_done")
            v["misses"] += out == "missed"
            if rec.signal_to_exec_us is not None:
                totals["lat_us"].append(rec.signal_to_exec_us)
            slip = rec.slippage_ticks
            if slip is not None:
                totals["slip_qty"] += rec.filled_qty
                totals["slip_ticks_x_qty"] += slip * rec.filled_qty
        return {"venues": per, "totals": totals, "signals": dict(self.rule.counts), "stats": dict(self.stats)}
