"""The gateway process: `fixgw run --config configs/gateway.toml`.

``Gateway`` wires the parts on ONE asyncio loop (uvloop when installed):
- the OMS acceptor engine and the venue initiator engine (``create_engine(cfg.engine, ...)``:
  our native engine by default, quickfix on request), whose Applications (oms.py,
  venues.py) decode FIX into the core's events and hand them to ``submit``;
- the ``GatewayCore`` (gateway/core/hub.py: orders, journal, risk, routers; sans-IO);
- the ``MarketState`` (live latency and books), fed by the venue edge;
- loop timers: ``Tick`` every ``MARK_REFRESH_S`` (risk re-marks), probes (each venue once
  per ``probe_interval_ms``, spread over it: ``MarketState.probe_schedule``).

``submit`` (``Dispatcher.submit``, dispatch.py) runs one event from FIX message in to FIX
messages out: ``core.handle(event)``, then every command it returns, in order, before the
next event (the core has journaled each decision before returning it, so a record reaches
the OS before the message it explains reaches the wire). No lock, no thread hand-over: with
the native engine every session callback, timer and order event runs on the loop thread.
With quickfix, its C++ threads hand each callback to the loop (``call_soon_threadsafe``) and
the rest is the same.

The admin HTTP server (admin.py) runs in its own thread, blocked in ``select`` between
requests; each request that touches the gateway runs as a call on the loop
(``run_coroutine_threadsafe``, bounded wait), never concurrently with the order path.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import threading
import time
from collections import deque
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable

from gateway.apps.housekeeping import JournalKeeper, WallTimer
from gateway.apps.metrics import GatewayMetrics
from gateway.apps.server.admin import AdminActions, ensure_token
from gateway.apps.server.config import GatewayConfig, session_settings
from gateway.apps.server.dispatch import Dispatcher
from gateway.apps.server.oms import OmsApplication
from gateway.apps.server.venues import VenueApplication
from gateway.apps.server.warm import OrderPathWarmer
from gateway.common.clock import MONOTONIC, Clock, MonotonicClock
from gateway.common.configfile import find_config, load_config
from gateway.common.failures import StartupError, check_certificate, check_port_free, check_store_dir, run_cleanly
from gateway.common.collector import LoopCollector
from gateway.common.procs import freeze_startup_heap
from gateway.core.hub import DayEnded, GatewayCore, KillRequested, ResetRequested, SessionEnded, Tick
from gateway.core.market import MarketState
from gateway.fix.engine import create_engine

log = logging.getLogger("gateway")
MARK_REFRESH_S = 0.05     # how often risk re-marks positions to the live books
ADMIN_CALL_TIMEOUT_S = 5.0
TIMING_SAMPLE = 64        # every 64th order's risk check and routing decision are timed (metrics)
JOURNAL_CHECK_S = 1.0     # journal size check; compaction when over the limit and no record since the last check


def iso(wall: float | None) -> str | None:
    """UTC ISO 8601 of an epoch time (None stays None)."""
    return None if wall is None else datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="microseconds")


class SessionTracker:
    """What operators see of each session that the engines do not keep: wall times, last reason."""

    def __init__(self, by_callbacks: bool = True) -> None:
        self.rows: dict[str, dict] = {}
        # last received/sent from our callbacks: only for engines that do not keep them
        # (quickfix); the native Session keeps both, for free, and sessions_view reads them.
        self.by_callbacks = by_callbacks

    def row(self, key: str) -> dict:
        r = self.rows.get(key)
        if r is None:
            r = self.rows[key] = {"last_logon_at": None, "last_received_at": None, "last_sent_at": None,
                                  "last_disconnect_reason": None}
        return r

    def logon(self, key: str) -> None:
        self.row(key)["last_logon_at"] = time.time()

    def logout(self, key: str, reason: str) -> None:
        self.row(key)["last_disconnect_reason"] = reason

    def received(self, key: str) -> None:
        self.row(key)["last_received_at"] = time.time()

    def sent(self, key: str) -> None:
        self.row(key)["last_sent_at"] = time.time()


class Gateway:
    def __init__(self, cfg: GatewayConfig, clock: Clock = MONOTONIC, policy: str | None = None) -> None:
        self.cfg = cfg
        self.collector: LoopCollector | None = None   # the [collector] policy, started by serve()
        self.clock = clock
        self.started_at = clock.now()
        self.events: deque[dict] = deque(maxlen=500)
        self.tracker = SessionTracker(by_callbacks=cfg.engine != "native")
        self.market = MarketState(cfg.routing, clock)
        for v in cfg.venues:
            self.market.register_venue(v.name, probe=v.probes, market_data=v.market_data,
                                       probe_max_per_s=v.probe_max_per_s)
        self.core = GatewayCore(routing=cfg.routing, risk=cfg.risk, journal_path=cfg.journal_path,
                                market=self.market, clock=clock, policy=policy,
                                retire_after_s=cfg.retire_after_s)
        self.policy = self.core.policy
        # metrics: counters on the order path; latency samples, timings and gauges read on scrape
        self.metrics = GatewayMetrics()
        # the order path: the edges hand their events to the dispatcher, which carries out the
        # core's commands through them
        self.dispatcher = dispatcher = Dispatcher(self.core, self.metrics, self.event)
        # the real clock's now() is time.perf_counter: called directly, one Python frame less per order
        now = time.perf_counter if type(clock) is MonotonicClock else clock.now
        self.oms = dispatcher.oms = OmsApplication(cfg.oms.clients, dispatcher.submit, self.event, self.tracker, now)
        self.venues = dispatcher.venues = VenueApplication(cfg.venues, self.market, dispatcher.submit, self.event,
                                                           self.tracker)
        self.market.sender = self.venues.market_sender
        self._acceptor: Any = None        # the OMS acceptor Engine, once started
        self._initiators: list[Any] = []
        self._admin: Any = None           # the AdminServer, when the admin port is on
        self._timers: list[asyncio.TimerHandle] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self.cpu: int | None = None
        self._busy: Any = None               # the loop's BusyPoll when busy_poll_us > 0 (start)
        self.warmer: OrderPathWarmer | None = None   # warm_every_ms > 0 (start)
        self.log_events = True                # False: a twin (warm.py), whose events are not the gateway's
        self.metrics.watch_sessions(self._session_metric_rows)
        self.venues.on_md_reject = self.metrics.on_md_reject
        self.core.timing_sample = TIMING_SAMPLE
        self._samples_seen: dict[int, int] = {}
        self.keeper = JournalKeeper(self.core, cfg.journal_compact_mb << 20, quiet_s=JOURNAL_CHECK_S)
        self._wall_timers: list[WallTimer] = []

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

    # ------------------------------------------------------------ the event path (loop thread)

    def submit(self, event: object) -> None:
        """One event from a timer or an operator (the edges call ``dispatcher.submit`` directly)."""
        self.dispatcher.submit(event)

    def _session_ended(self, venue: str) -> None:
        self.submit(SessionEnded(venue=venue))

    # ------------------------------------------------------------ timers (loop thread)

    def _every(self, interval: float, fn: Callable[[], object]) -> None:
        loop = self.loop
        assert loop is not None, "timers start with the gateway"

        def fire() -> None:
            try:
                fn()
            except Exception:  # noqa: BLE001 - a timer must outlive one bad round
                log.exception("timer %s failed", getattr(fn, "__name__", fn))
            self._timers[idx] = loop.call_later(interval, fire)
        idx = len(self._timers)
        self._timers.append(loop.call_later(interval, fire))

    # ------------------------------------------------------------ metrics (loop thread, on scrape)

    def _session_metric_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for kind, name, h in self._handles():
            st = h.status() if hasattr(h, "status") else {}
            rows.append({"name": name, "kind": kind, "logged_on": h.logged_on,
                         "messages_in": st.get("messages_in", 0), "messages_out": st.get("messages_out", 0)})
        return rows

    def _drain_samples(self, key: int, est, observe, venue: str) -> None:
        """New samples of a LatencyEstimator since the last scrape (its ring holds the newest)."""
        seen = self._samples_seen.get(key, 0)
        new = min(est.count - seen, est.window)
        self._samples_seen[key] = est.count
        ring, pos, window = est._ring, est._pos, est.window
        for i in range(new, 0, -1):
            observe(venue, float(ring[(pos - i) % window]) / 1e6)

    def metrics_text(self) -> bytes:
        m = self.metrics
        m.set_risk_state(self.risk.state)
        m.set_journal_bytes(self.core.journal_size())
        timings = self.core.timings
        while timings:
            kind, seconds = timings.popleft()
            (m.observe_risk if kind == "risk" else m.observe_router)(seconds)
        # --- latency (issue 12): raw probe RTT, the venue's part, our floor, heartbeat jitter ---
        for v in self.market.venue_list:
            self._drain_samples(id(v.rtt), v.rtt, m.observe_probe, v.name)
            self._drain_samples(id(v.cold), v.cold, m.observe_primer, v.name)
            self._drain_samples(id(v.lat), v.lat, m.observe_venue_latency, v.name)
            self._drain_samples(id(v.ack), v.ack, m.observe_ack, v.name)
            m.set_heartbeat_jitter(v.name, self.market.heartbeat_figures(v)["jitter_us"])
        floor = self.market.floor
        self._drain_samples(id(floor), floor, lambda _venue, s: m.observe_probe_floor(s), "")
        return m.exposition()

    def _tick(self) -> None:
        self.submit(Tick())

    # ------------------------------------------------------------ people (admin thread -> loop)

    def on_loop(self, fn, *args):
        """Run ``fn(*args)`` on the loop thread and return its result (from any thread; bounded)."""
        if self.loop is None or threading.get_ident() == self._loop_thread:
            return fn(*args)

        async def call():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(ADMIN_CALL_TIMEOUT_S)

    def trip(self, reason: str, by: str) -> bool:
        def run() -> bool:
            commands = self.core.handle(KillRequested(by=by, reason=reason))
            self.dispatcher.execute(commands)
            return bool(commands)
        return self.on_loop(run)

    def reset_risk(self, by: str, session: str | None = None) -> bool:
        def run() -> bool:
            commands = self.core.reset(ResetRequested(by=by, session=session))   # ValueError: no person named
            self.dispatcher.execute(commands)
            return bool(commands)
        return self.on_loop(run)

    def admin_actions(self) -> AdminActions:
        return AdminActions(status=lambda: self.on_loop(self.status),
                            orders=lambda n: self.on_loop(self.core.orders_view, n),
                            decisions=lambda n: self.on_loop(self.decisions.recent, n),
                            kill=self.trip, reset=self.reset_risk, risk=lambda: self.on_loop(self._risk_view),
                            sessions=lambda: self.on_loop(self.sessions_view),
                            session_logout=lambda s, text: self.on_loop(self.session_logout, s, text),
                            session_logon=lambda s: self.on_loop(self.session_logon, s),
                            session_seqnum=lambda s, n_in, n_out: self.on_loop(self.session_seqnum, s, n_in, n_out),
                            metrics=lambda: self.on_loop(self.metrics_text))

    # ------------------------------------------------------------ sessions (operators)

    def _handles(self) -> list[tuple[str, str, Any]]:
        """(kind, name, handle) of every session: OMS clients, then venues."""
        out: list[tuple[str, str, Any]] = []
        if self._acceptor is not None:
            out += [("oms", h.target_comp_id, h) for h in self._acceptor.sessions.values()]
        out += [("venue", name, vs.handle) for name, vs in self.venues.venues.items() if vs.handle is not None]
        return out

    def _find(self, session: str):
        for kind, name, h in self._handles():
            if session in (h.key, name):
                return kind, name, h
        raise KeyError(f"no session {session!r}; GET /sessions lists them")

    def sessions_view(self) -> list[dict]:
        rows = []
        offset = time.time() - self.clock.now()
        for kind, name, h in self._handles():
            t = self.tracker.row(h.key)
            native = getattr(h, "session", None)
            last_rx, last_tx = t["last_received_at"], t["last_sent_at"]
            state = "logged_on" if h.logged_on else "disconnected"
            if native is not None:          # the native engine knows more than our callbacks see
                state = str(native.state)
                if getattr(h, "conn", None) is not None:
                    last_rx = native.last_received_at + offset
                    last_tx = native.last_sent_at + offset
            if kind == "oms" and h.key in self.oms.held or (kind == "venue" and _held(h)):
                state = "held: " + state
            rows.append({"key": h.key, "kind": kind, "name": name, "logged_on": h.logged_on, "state": state,
                         "next_sender_seq": h.next_sender_seq, "next_target_seq": h.next_target_seq,
                         "last_logon_at": iso(t["last_logon_at"]), "last_received_at": iso(last_rx),
                         "last_sent_at": iso(last_tx), "last_disconnect_reason": t["last_disconnect_reason"]})
        return rows

    def session_logout(self, session: str, text: str = "") -> dict:
        kind, name, h = self._find(session)
        if kind == "oms":
            self.oms.held.add(h.key)       # its logons are refused until POST /sessions/logon
        else:
            _hold(h, True)
        h.logout(text or "logout by operator")
        self.event(kind, name, f"logout by operator: {text}")
        return {"session": h.key, "logged_on": h.logged_on, "held": True}

    def session_logon(self, session: str) -> dict:
        kind, name, h = self._find(session)
        if kind == "oms":
            self.oms.held.discard(h.key)
            _hold(h, False)
            note = "accepting logons again (the OMS initiates)"
        else:
            _hold(h, False)
            note = "reconnecting"
        self.event(kind, name, "logon enabled by operator")
        return {"session": h.key, "logged_on": h.logged_on, "held": False, "note": note}

    def session_seqnum(self, session: str, next_in: int | None, next_out: int | None) -> dict:
        kind, name, h = self._find(session)
        for n in (next_in, next_out):
            if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
                raise ValueError("next_in / next_out must be integers >= 1 or null")
        _set_seqs(h, next_in, next_out)
        self.event(kind, name, f"sequence numbers set by operator: next_in={next_in} next_out={next_out}")
        return {"session": h.key, "next_sender_seq": h.next_sender_seq, "next_target_seq": h.next_target_seq}

    # ------------------------------------------------------------ lifecycle

    def event(self, kind: str, name: str, text: str) -> None:
        now = self.clock.now()
        self.events.append({"at": iso(time.time()), "kind": kind, "name": name, "event": text})
        if kind == "venue" and name in self.venues.venues:
            self.venues.venues[name].events.append((now - self.started_at, text))
        if self.log_events:
            log.info("%s %s: %s", kind, name, text)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.market.defer = self.loop.call_soon     # probe_primed: the measured probe after its primer
        cfg = self.cfg
        self.cpu = cfg.pin_cpu()            # before any thread starts: they inherit it
        oms_settings, venue_settings = session_settings(cfg)
        store = Path(cfg.store_dir) / ("fix" if cfg.engine == "quickfix" else "native")
        log_dir = cfg.log_path
        # the journal replayed in __init__: compact it now, before any new event (a safe point
        # unless a cancel was in flight or reports wait for an OMS; then the size check does it)
        self.event("gateway", "journal", self.keeper.at_start()[1])
        native: dict[str, Any] = ({"store_fsync": cfg.store_fsync, "busy_poll_us": cfg.busy_poll_us}
                                  if cfg.engine == "native" else {})
        extra: dict[str, Any] = ({"reconnect_s": min(v.reconnect_s for v in cfg.venues)} if cfg.engine == "quickfix"
                                 else {**native, "warm_probes": cfg.warm_probes})
        self._acceptor = create_engine(cfg.engine, "acceptor", oms_settings, self.oms, host=cfg.oms.host,
                                       port=cfg.oms.port, store_dir=store, log_dir=log_dir,
                                       tls=cfg.oms.tls.to_engine() if cfg.oms.tls else None, **native)
        await self._acceptor.start()
        self.oms.handles = self._acceptor.sessions
        # one initiator engine for every venue (one per distinct TLS setup: TLS is per engine)
        groups: dict[str, list] = {}
        for v, s in zip(cfg.venues, venue_settings):
            groups.setdefault(v.tls.model_dump_json() if v.tls else "", []).append((v, s))
        for members in groups.values():
            tls = members[0][0].tls
            engine = create_engine(cfg.engine, "initiator", [s for _, s in members], self.venues,
                                   hosts={s.key: v.addresses for v, s in members}, store_dir=store,
                                   log_dir=log_dir, tls=tls.to_engine() if tls else None, **extra)
            await engine.start()
            self.venues.attach(engine.sessions)
            self._initiators.append(engine)
        self._group_journal(True)
        self._busy = self._acceptor.busy if cfg.engine == "native" else None     # BusyPoll: one per loop
        if cfg.warm_every_ms:           # the order path kept warm while idle (warm.py)
            self.warmer = OrderPathWarmer(cfg, Gateway, next(iter(self._acceptor.sessions.values())),
                                          next(iter(self._initiators[0].sessions.values())), self.core.journal,
                                          cfg.warm_every_ms / 1e3)
            self.warmer.start(self.loop)
        self._every(MARK_REFRESH_S, self._tick)
        # probes spread over the interval, a few venues per tick (issue 12: MarketState.probe_schedule)
        tick_s, per_tick = self.market.probe_schedule()
        self._every(tick_s, lambda: self._probe(per_tick))
        self._every(JOURNAL_CHECK_S, self.keeper.check)
        for v in cfg.venues:          # a venue's scheduled end expires its Day orders (ExecType C)
            if v.schedule is not None:
                self._wall_timers.append(WallTimer(
                    self.loop, v.schedule.next_end, partial(self._session_ended, v.name),
                    name=f"venue {v.name} session end").start())
        if cfg.day_end is not None:
            self._wall_timers.append(WallTimer(self.loop, cfg.day_end.next_at, lambda: self.submit(DayEnded()),
                                               name="day end").start())
        if cfg.admin.port:
            from gateway.apps.server.admin import AdminServer
            token = ensure_token(cfg.store_dir)
            self._admin = AdminServer(self.admin_actions(), cfg.admin.host, cfg.admin.port, token)
            self._admin.start()

    async def stop(self) -> None:
        if self.warmer is not None:
            self.warmer.stop()
        for t in self._timers:
            t.cancel()
        for w in self._wall_timers:
            w.cancel()
        if self._admin is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._admin.stop)
        for engine in self._initiators + ([self._acceptor] if self._acceptor else []):
            try:
                await engine.stop()        # logs out every session
            except Exception:  # noqa: BLE001 - stop the rest anyway
                log.exception("stopping an engine")
        self._group_journal(False)
        self.core.close()

    # -- journal group commit (issue 12, round 4: batch) ------------------------------------
    def _probe(self, per_tick: int) -> None:
        # with busy polling on, the loop polls for the Heartbeat instead of sleeping until it comes
        if self.market.probe_next(per_tick) and self._busy is not None:
            self._busy.touch()

    def _group_journal(self, on: bool) -> None:
        """Native engine: the order journal holds its records while a received chunk is
        dispatched and writes them in one os.write before anything they explain is stored or
        sent (``SendBatch.before_send``, gateway/fix/drive.py; gateway/core/journal.py says what
        a crash can lose). Off (``on=False``, at stop): every record written at once again."""
        journal = self.core.journal
        batches = {id(b): b for b in (getattr(e, "batch", None) for e in
                                       [self._acceptor, *self._initiators]) if b is not None}
        for batch in batches.values():
            if on:
                batch.before_send = journal.flush
            elif batch.before_send == journal.flush:
                batch.before_send = None
        if len(batches) == 1 or not on:        # one loop thread: one batch (drive.loop_batch)
            journal.group_with(next(iter(batches.values())) if on else None)

    # ------------------------------------------------------------ status (loop thread)

    def _risk_view(self) -> dict:
        snap = self.risk.snapshot()
        at = snap.get("tripped_at")
        if isinstance(at, (int, float)):
            snap["tripped_at"] = iso(time.time() - (self.clock.now() - at))
        return snap

    def status(self) -> dict:
        market = self.market.snapshot()
        open_by_venue = self.orders.open_by_venue()
        venues = self.venues.snapshot()
        for row in venues:
            row["open_orders"] = open_by_venue.get(row["name"], 0)
            row["in_flight"] = self.orders.in_flight.get(row["name"], 0)
            row["market"] = market.get(row["name"], {})
            handle = self.venues.venues[row["name"]].handle
            if handle is not None and hasattr(handle, "status"):
                row["link"] = handle.status()    # times (UTC), link state, connect attempts, last reason
        rec = self.core.recovery
        acceptor = self._acceptor
        engines = ([acceptor] if acceptor else []) + self._initiators
        return {
            "gateway": {"uptime_s": round(self.clock.now() - self.started_at, 3), "pid": os.getpid(),
                        "engine": self.cfg.engine, "oms_port": self.cfg.oms.port, "policy": self.policy,
                        "cpu": self.cpu, "journal": str(self.cfg.journal_path), "recovered_records": rec.applied,
                        "skipped_records": len(rec.skipped),
                        "callback_errors": sum(e.callback_errors for e in engines),
                        "bad_values": self.oms.bad_values, "market": self.market.stats(),
                        "probe_floor": self.market.floor_snapshot(),   # our own per-probe cost (issue 12)
                        "collector": self._collector_view(),
                        "warming": self.warmer.view() if self.warmer is not None else None,
                        **self.core.counts},
            "oms_sessions": [{"session": key, "logged_on": h.logged_on, "next_sender_seq": h.next_sender_seq,
                              "next_target_seq": h.next_target_seq}
                             for key, h in (acceptor.sessions.items() if acceptor else ())],
            "venues": venues,
            "orders": self.orders.summary(),
            "routing": {"policy": self.policy, "decisions": self.decisions.total,
                        "by_venue": self.decisions.counts_by_venue()},
            "risk": self._risk_view(),
            "events": list(self.events)[-30:],
        }

    def _collector_view(self) -> dict | None:
        """The garbage collector's runs on this loop (``[collector]``): mode, then per action
        (young, sweep, deep) the count, total and longest pause. None: not started (a Gateway
        driven without ``serve``)."""
        c = self.collector
        return None if c is None else {"mode": c.cfg.mode, **c.summary()}

    def orders_view(self, limit: int = 200) -> list[dict]:
        return self.on_loop(self.core.orders_view, limit)


# ------------------------------------------------------------ backend-specific session commands
# (candidates for SessionHandle itself: enable/disable and set_next_seqs on both backends)

def _held(h) -> bool:
    enabled = getattr(h, "enabled", None)
    return enabled is not None and not enabled.is_set()


def _hold(h, held: bool) -> None:
    enabled = getattr(h, "enabled", None)        # native: the initiator waits on it
    if enabled is not None:
        enabled.clear() if held else enabled.set()
        return
    session_id = getattr(h, "session_id", None)  # quickfix: logout() disables, logon() enables
    if session_id is not None and not held:
        import quickfix as fix
        qs = fix.Session.lookupSession(session_id)
        if qs is not None:
            qs.logon()


def _set_seqs(h, next_in: int | None, next_out: int | None) -> None:
    native = getattr(h, "session", None)
    if native is not None:
        if next_in is not None:
            native.set_next_target_seq(next_in)
        if next_out is not None:
            native.set_next_sender_seq(next_out)
        return
    import quickfix as fix
    qs = fix.Session.lookupSession(h.session_id)
    if qs is None:
        raise KeyError(f"quickfix has no session {h.key}")
    if next_in is not None:
        qs.setNextTargetMsgSeqNum(next_in)
    if next_out is not None:
        qs.setNextSenderMsgSeqNum(next_out)


# ------------------------------------------------------------ command line

def preflight(cfg: GatewayConfig) -> None:
    """What a start needs, checked before anything opens: one ``StartupError`` line if not."""
    check_store_dir(cfg.store_dir)
    if cfg.log_path is not None:
        check_store_dir(cfg.log_path, what="log directory")
    check_port_free(cfg.oms.host, cfg.oms.port, "OMS acceptor port")
    if cfg.admin.port:
        check_port_free(cfg.admin.host, cfg.admin.port, "admin port")
    if cfg.oms.tls is not None:
        t = cfg.oms.tls
        check_certificate(t.cert, t.key, t.ca, what="[oms.tls]")
    for v in cfg.venues:
        if v.tls is not None:
            check_certificate(v.tls.cert, v.tls.key, v.tls.ca, what=f"venue {v.name} TLS")
    try:
        session_settings(cfg)              # secrets from the environment or files resolve here
    except ValueError as exc:
        raise StartupError(str(exc)) from None


async def serve(cfg: GatewayConfig, policy: str | None, duration: float | None) -> int:
    preflight(cfg)
    gw = Gateway(cfg, policy=policy)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await gw.start()
    freeze_startup_heap()
    # --- collector: collections run by the loop at pauses and within bounds (common/collector.py)
    collector = LoopCollector(cfg.collector)
    collector.start(loop)
    gw.collector = collector                     # its figures in /status
    # ---
    venues = ", ".join(f"{v.name}@{v.host}:{v.port}" for v in cfg.venues)
    admin = f"http://{cfg.admin.host}:{cfg.admin.port}/status" if cfg.admin.port else "off"
    print(f"fixgw gateway pid {os.getpid()} ({cfg.engine} engine): OMS acceptor {cfg.oms.host}:{cfg.oms.port} "
          f"as {cfg.oms.comp_id}; venues {venues}; policy {gw.policy}; admin {admin}; recovered {gw.recovered} "
          "journal records" + (f"; pinned to CPU {gw.cpu}" if gw.cpu is not None else ""), flush=True)
    try:
        await asyncio.wait_for(stop.wait(), duration) if duration else await stop.wait()
    except asyncio.TimeoutError:
        pass
    finally:
        await gw.stop()
        collector.stop()
        print(f"fixgw gateway stopped ({collector.line()})", flush=True)
    return 0


def main(argv: list[str] | None = None, prog: str = "fixgw run", command: str = "run") -> int:
    ap = argparse.ArgumentParser(prog=prog, description="Run the FIX 4.4 gateway (OMS acceptor + venue initiators).")
    ap.add_argument("--config", help="gateway TOML (default: $FIXGW_CONFIG, then ./configs/gateway.toml)")
    ap.add_argument("--policy", choices=("scalp", "best_price", "dma"),
                    help="routing policy for every session (overrides [routing])")
    ap.add_argument("--engine", choices=("native", "quickfix"), help="FIX backend (overrides the config's engine)")
    ap.add_argument("--duration", type=float, help="stop after this many seconds (default: until SIGINT/SIGTERM)")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config(find_config(args.config), GatewayConfig)
    if args.engine:
        cfg = cfg.model_copy(update={"engine": args.engine})
    from gateway.fix.transport import new_event_loop

    def run() -> int:
        loop = new_event_loop()
        try:
            return loop.run_until_complete(serve(cfg, args.policy, args.duration))
        finally:
            loop.close()
    # a port in use, a store directory that cannot be made, a bad certificate, a store locked
    # by another gateway: one line naming it, exit 2
    return run_cleanly(run, prog)
