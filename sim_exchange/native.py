"""One simulated venue on the native FIX engine and the process's one asyncio loop.

FIX messages in (``VenueCore.on_message``, on the loop thread), engine calls,
FIX message bodies out (``fixtext``) through ``SessionHandle.send``: that per-order path is
``venuecore.VenueCore`` (compiled), the base of ``NativeVenue``. There is no lock:
the matching engine, the flow and the market sources are only ever touched from the
loop thread (``apply`` hands calls from other threads over with call_soon_threadsafe).

Injected latency sits *around* the session (``DelayedEngine``): inbound bytes wait in a
``DelayLine`` before the ``Session`` sees them and outbound bytes wait after the
``Session`` produced them, so heartbeats, TestRequest answers, rejects and reports all
see the venue's latency, as a network would add it. A venue with no latency configured
(and ``always_proxy`` off) runs the plain engine: zero cost. With ``always_proxy`` at zero
delay, bytes skip the lines while nothing waits in them (``DelayLine.straight``).

Invariants (and those of ``publish.EventPublisher``, shared with the quickfix venue):
- per counterparty, reports and market data leave in engine order, a step's reports in one
  write ahead of its market data;
- ids and symbols are ``str`` decoded as latin-1: any byte goes through.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from gateway.common.clock import MONOTONIC, Clock
from gateway.core.matching.engine import Instrument, MatchingEngine
from gateway.core.matching.marketdata import Subscription
from gateway.core.models.latency import ScheduledJitterLatency
from gateway.fix import transport
from gateway.fix.engine import BaseApplication
from gateway.fix.settings import SessionSettings
from gateway.fix.store import FileStore, MemoryStore
from sim_exchange import fixtext
from sim_exchange.status import OrderLog, status_report
from sim_exchange.config import SimConfig, VenueConfig
from sim_exchange.delayline import ERROR_WINDOW, PreciseTimer, error_stats
from sim_exchange.flow import FLOW_OWNER_PREFIX, FlowModel
from sim_exchange.stores import NoResendFileStore, NoResendMemoryStore
from sim_exchange.venuecore import DelayedSession, VenueCore, store_while_away

log = logging.getLogger("sim.native")


# ---------------------------------------------------------------- latency around the session

def _delayed_disconnect(ns: DelayedSession, event: Any) -> None:
    """The session wants the socket closed: after the bytes it queued (Logout) have left."""
    ns.flush()
    routine = ns.engine.stopping or "logout" in event.reason.lower()
    ns.close_after_sent(event.reason, routine)


def _no_resend_store(engine: "VenueEngine", store: Any) -> Any:
    """The engine's store as the venue's kind (stores.py: market data is never resent).
    A FileStore is closed and opened again as a ``NoResendFileStore`` (same files, same
    fsync policy): the engine's hook hands over a store it opened already."""
    if isinstance(store, FileStore):
        store.close()
        return NoResendFileStore(engine.store_dir, store.key, fsync=store.fsync,
                                 fsync_interval_s=store.fsync_interval_s, defer=store.defer)
    if isinstance(store, MemoryStore):
        return NoResendMemoryStore()
    raise TypeError(f"the venue has no market-data filter for a {type(store).__name__}")


class VenueEngine(transport.NativeEngine):
    """The venue's acceptor: market data is never resent (its sessions' stores are
    ``stores.NoResend*``); with ``delay_model`` every session is a ``DelayedSession`` sharing that
    latency model and ``delay_timer``."""

    def __init__(self, *args: Any, delay_model: Any = None, delay_timer: PreciseTimer | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, store_wrapper=lambda _settings, store: _no_resend_store(self, store), **kwargs)
        self.delay_model = delay_model
        self.delay_timer = delay_timer
        self.delay_errors: deque[float] = deque(maxlen=ERROR_WINDOW)   # every line's, for stats
        if delay_model is not None:
            self.session_class = DelayedSession
            self.handlers = {**transport.HANDLERS, "Disconnect": _delayed_disconnect}


# ---------------------------------------------------------------- the venue

class VenueApplication(BaseApplication):
    on_admin = None       # nothing to do with admin messages: the engine skips the call (call_app)

    def __init__(self, venue: "NativeVenue") -> None:
        self.venue = venue
        # FIX application messages go straight to the venue's compiled path (venuecore.py):
        # no interpreted frame between the engine's pump and the matching engine.
        self.on_message = venue.on_message

    @property
    def callback_errors(self) -> int:
        return self.venue.fix.callback_errors if self.venue.fix is not None else 0

    def on_logon(self, session: Any) -> None:
        self.venue.sessions[session.target_comp_id] = session

    def on_logout(self, session: Any, reason: str) -> None:  # noqa: ARG002
        self.venue.sessions.pop(session.target_comp_id, None)
        self.venue.subscriptions.pop(session.target_comp_id, None)


class NativeVenue(VenueCore):
    kind = "native"

    def __init__(self, config: VenueConfig, sim: SimConfig, clock: Clock = MONOTONIC) -> None:
        self.cfg = config
        self.sim = sim
        self.name = config.name
        self.comp_id = config.comp_id
        self.port = config.port
        instruments = [Instrument(s.symbol, s.tick_size, s.ref_price) for s in sim.venue_symbols(config)]
        self.engine = MatchingEngine(instruments, clock, venue=config.name, id_prefix=f"{int(time.time()):x}")
        self.flow = FlowModel(self.engine, config.flow, config.seed, owner=f"{FLOW_OWNER_PREFIX}{config.name}")
        self.latency = ScheduledJitterLatency.from_config(config.latency, seed=config.seed, clock=time.monotonic)
        self.app = VenueApplication(self)
        self.handlers = {"D": self._on_new_order, "F": self._on_cancel, "G": self._on_replace,
                         "H": self._on_status_request, "V": self._on_md_request}
        self.order_log = OrderLog()
        self.sessions: dict[str, Any] = {}                        # logged-on counterparty -> handle
        self.subscriptions: dict[str, dict[str, Subscription]] = {}
        self.stats = {"orders": 0, "cancels": 0, "replaces": 0, "exec_reports": 0, "md_messages": 0,
                      "md_rejects": 0, "send_failures": 0, "possdup_ignored": 0, "publish_errors": 0}
        self.fix: Any = None
        self._handles: dict[str, Any] = {}                        # counterparty -> session handle
        self.loop: asyncio.AbstractEventLoop | None = None
        self.on_book_change: Callable[[str, str], None] | None = None   # the market's hook

    # ------------------------------------------------------------------ lifecycle (on the loop)
    async def start(self, timer: PreciseTimer) -> None:
        self.loop = asyncio.get_running_loop()
        self.flow.seed_book()
        kwargs = dict(host="127.0.0.1", port=self.port, store_dir=self._store_dir(),
                      log_dir=(Path(self.sim.log_dir) / self.name) if self.sim.log_dir else None,
                      busy_poll_us=self.cfg.busy_poll_us)   # 0: sleeps between messages (BusyPoll)
        settings = self._settings()
        self._handles.clear()
        if self.cfg.latency.needs_proxy:
            self.fix = VenueEngine("acceptor", settings, self.app, delay_model=self.latency,
                                   delay_timer=timer, **kwargs)
        else:
            self.fix = VenueEngine("acceptor", settings, self.app, **kwargs)
        try:
            await self.fix.start()
        except OSError as exc:
            raise RuntimeError(f"venue {self.name} cannot start on port {self.port}: "
                               f"{type(exc).__name__}: {exc}") from exc
        # The schedule counts from the moment the port listens (loading the dictionary and
        # the stores takes a few hundred ms), as the quickfix proxy's does.
        self.latency.start()

    async def stop(self) -> None:
        if self.fix is not None:
            await self.fix.stop()
            self.fix = None
            self._handles.clear()

    def _store_dir(self) -> Path:
        path = Path(self.sim.store_dir) / self.name / "native"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _settings(self) -> list[SessionSettings]:
        out = []
        for cp in self.cfg.counterparties:
            out.append(SessionSettings(
                sender_comp_id=self.comp_id, target_comp_id=cp.comp_id, role="acceptor",
                reset_on_logon=cp.reset_on_logon, reset_on_logout=cp.reset_on_logon,
                reset_on_disconnect=cp.reset_on_logon,
                validate_user_defined_fields=cp.validate_user_defined_fields,
                check_latency=cp.check_latency, max_latency_s=cp.max_latency_s))
        return out

    # ------------------------------------------------------------------ API shared with the quickfix Venue
    def set_latency(self, base_us: float, jitter_us: float | None = None) -> None:
        """Change the injected one-way delay live (needs latency configured or always_proxy)."""
        if not self.cfg.latency.needs_proxy and self.fix is not None:
            raise RuntimeError(f"venue {self.name} runs without a delay line (set latency.always_proxy)")
        self.latency.set(base_us, jitter_us)

    def snapshot_stats(self) -> dict:
        return self.call(self._stats)

    def _stats(self) -> dict:
        out = dict(self.stats)
        out.update(orders_in=self.engine.orders_in, trades=self.engine.trades, sessions=sorted(self.sessions),
                   flow=dict(self.flow.actions), latency_us=self.latency.current(),
                   callback_errors=self.fix.callback_errors if self.fix else 0)
        if self.fix is not None and self.fix.delay_model is not None:
            out["delay_error_us"] = error_stats(self.fix.delay_errors)
            out["delay_error_us"]["timer_lateness_est"] = round(self.fix.delay_timer.lateness * 1e6, 1)
        out.update(self.order_log.snapshot())
        return out

    def call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run ``fn()`` on the loop thread (from any thread) and return its result."""
        loop = self.loop
        if loop is None or not loop.is_running() or _on_loop_thread(loop):
            return fn()
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return fut.result(timeout)

    def apply(self, step: Callable[[], list]) -> list:
        """Run ``step()`` (engine calls returning events) on the loop and publish the events."""
        def run() -> list:
            events = step()
            self._publish(events)
            return events
        return self.call(run)

    def apply_call(self, fn: Callable[[MatchingEngine], list]) -> list:
        """The market driver's path (already on the loop): one EngineCall."""
        events = fn(self.engine)
        self._publish(events)
        return events

    # ------------------------------------------------------------------ FIX handlers (the order path: venuecore.py)
    def _on_status_request(self, session: Any, msg: Any) -> None:
        """OrderStatusRequest: ExecType I with the order's state, or OrdStatus 8 "unknown order"."""
        owner = session.target_comp_id
        self.order_log.status_requests += 1
        er = status_report(self.engine, owner, msg[11], msg.get(37), msg.get(55), msg.get(54))
        self._send("8", fixtext.execution_report(er, self.name, msg.get(790)), owner)

    def _on_md_request(self, session: Any, msg: Any) -> None:
        cp = session.target_comp_id
        req_id, sub_type = msg[262], msg[263]
        depth = int(msg.get(264) or 0)
        if sub_type == "2":
            self.subscriptions.get(cp, {}).pop(req_id, None)
            return
        symbols = [g[55] for g in msg.groups(146, 55) if 55 in g]
        unknown = [s for s in symbols if s not in self.engine.instruments]
        if unknown or not symbols:
            self.stats["md_rejects"] += 1
            text = f"unknown symbol {', '.join(unknown)}" if unknown else "no symbol requested"
            self._send("Y", fixtext.md_reject(req_id, text), cp)
            return
        sub = Subscription(req_id, symbols, max(depth, 0))
        for symbol in symbols:
            self.stats["md_messages"] += 1
            self._send("W", fixtext.snapshot(req_id, symbol, sub.snapshot(self.engine, symbol)), cp)
        if sub_type == "1":
            self.subscriptions.setdefault(cp, {})[req_id] = sub


_store_while_away = store_while_away      # moved to venuecore.py (compiled)


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False

