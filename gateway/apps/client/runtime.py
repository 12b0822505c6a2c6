"""The client process's one asyncio loop, on a thread of its own: feed + driver + engines.

``ClientRuntime`` owns two native initiator engines on one loop: one session per venue
for market data and probes (``MarketFeed``, e.g. CLIENT -> ALPHA) and the OMS session to
the gateway (``StrategyDriver``, e.g. DEMO -> FIXGW). Everything that touches the feed,
the driver or the strategy runs on that loop; other threads (a runner, a live view) go
through ``call(fn)``, which runs ``fn`` on the loop and returns its result (bounded wait).
Nothing here spins: the runner thread blocks on futures, the loop on its selector.

    rt = ClientRuntime(strategy, oms=("127.0.0.1", 9100), venues=[VenueAddress(...)], ...)
    rt.start(timeout=20)      # logged on everywhere, every book seen
    rt.start_trading()
    ...
    rt.stop_trading()         # strategy.stop(): no new entries, positions start their exits
    rt.drain(timeout=5)       # until flat and no order open (bounded)
    rt.stop()                 # logout, engines and loop down, thread joined
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Callable, Sequence, TypeVar

from gateway.apps.client.driver import StrategyDriver
from gateway.apps.client.feed import MarketFeed, VenueAddress
from gateway.common.clock import MONOTONIC, Clock
from gateway.common.collector import CollectorConfig, LoopCollector
from gateway.fix.engine import create_engine
from gateway.fix.settings import SessionSettings
from gateway.fix.transport import new_event_loop

T = TypeVar("T")


class ClientRuntime:
    def __init__(self, strategy: Any, *, oms: tuple[str, int], venues: Sequence[VenueAddress],
                 symbols: Sequence[str], ticks: dict[str, float], comp_id: str = "DEMO",
                 gateway_comp_id: str = "FIXGW", md_comp_id: str = "CLIENT",
                 logon_fields: tuple[tuple[int, str], ...] = (), heartbeat_s: int = 30,
                 probe_interval_s: float = 0.05, depth: int = 5, clock: Clock = MONOTONIC,
                 md_validate: bool = True) -> None:
        self.clock = clock
        self.feed = MarketFeed(venues, symbols, ticks, depth=depth, probe_interval_s=probe_interval_s,
                               clock=clock, md_prefix=md_comp_id)
        self.driver = StrategyDriver(strategy, self.feed, clock=clock, gateway_comp_id=gateway_comp_id)
        self.strategy = strategy
        self._oms_settings = SessionSettings(sender_comp_id=comp_id, target_comp_id=gateway_comp_id,
                                             role="initiator", heartbeat_s=heartbeat_s, reset_on_logon=True,
                                             logon_fields=tuple(logon_fields))
        # ``md_validate=False``: the venues' market data is not checked against the FIX
        # dictionary (still framed, checksummed, sequenced). A W/X carries a repeating group,
        # which the dictionary's validation takes on its slow path (~35 of ~52 us compiled per
        # message here, cold caches several times that), on the way to every signal.
        self._md_settings = [SessionSettings(sender_comp_id=md_comp_id, target_comp_id=v.name, role="initiator",
                                             heartbeat_s=heartbeat_s, reset_on_logon=True,
                                             validate=md_validate) for v in venues]
        self._oms_addr = oms
        self._venue_hosts = {s.key: [(v.host, v.port)] for s, v in zip(self._md_settings, venues)}
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self._main, name="client-loop", daemon=True)
        self._oms_engine: Any = None
        self._md_engine: Any = None
        self.t0: float | None = None       # clock time trading started
        self.thread_id: int | None = None  # the loop thread's OS id (for the scheduler's view of a run)
        self.stopped = False
        self.collector: LoopCollector | None = None     # run_collector(): the [collector] policy

    def run_collector(self, cfg: CollectorConfig | None = None) -> LoopCollector:
        """Collections run by this runtime's loop, at pauses and within bounds, as the gateway's
        (gateway/common/collector.py): none in the middle of a signal. Call it once the start-up
        heap is frozen; ``stop()`` puts CPython's collector back."""
        self.collector = LoopCollector(cfg or CollectorConfig())
        self.call(lambda: self.collector.start(self.loop))
        return self.collector

    # ------------------------------------------------------------ loop thread
    def _main(self) -> None:
        self.thread_id = threading.get_native_id()
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _run(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run ``fn`` on the loop thread and return its result (for views and reports)."""
        if not self._thread.is_alive():
            return fn()                    # loop gone: nothing else touches the objects any more
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def job() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)
        self.loop.call_soon_threadsafe(job)
        return fut.result(timeout)

    # ------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 20.0) -> None:
        """Connect everything; return when the OMS session is up and every book is seen.
        TimeoutError (naming what is missing) otherwise; the caller then calls ``stop``."""
        self._thread.start()
        try:
            self._run(self._start(timeout), timeout + 5)
        except (asyncio.TimeoutError, concurrent.futures.TimeoutError, TimeoutError):
            raise TimeoutError(f"client not ready after {timeout:.0f}s: {self.call(self.readiness)}") from None

    async def _start(self, timeout: float) -> None:
        ready = asyncio.Event()
        self.feed.on_ready = ready.set
        # The engines' clock is the driver's: their transport-edge times (bytes read) and the
        # driver's own times are one timeline.
        self._md_engine = create_engine("native", "initiator", self._md_settings, self.feed,
                                        hosts=self._venue_hosts, clock=self.clock)
        self._oms_engine = create_engine("native", "initiator", [self._oms_settings], self.driver,
                                         hosts=[self._oms_addr], clock=self.clock)
        await self._md_engine.start()
        await self._oms_engine.start()
        await asyncio.wait_for(asyncio.gather(ready.wait(), self._oms_engine.wait_logged_on(timeout=timeout)),
                               timeout)

    def readiness(self) -> dict:
        return {"oms_up": self.driver.session is not None, "venues_up": sorted(self.feed.sessions),
                "books": {v: sorted(s for s in self.feed.symbols if self.feed.book(v, s) is not None)
                          for v in self.feed.addresses}}

    def start_trading(self) -> None:
        def go() -> None:
            self.t0 = self.clock.now()
            self.driver.start_trading()
        self.call(go)

    def stop_trading(self) -> None:
        """No new entries; the strategy starts closing every position."""
        self.call(self.driver.begin_stop)

    def drain(self, timeout: float) -> bool:
        """Wait (bounded) until the strategy is flat and no order is open; True if it got there."""
        async def wait() -> bool:
            deadline = self.clock.now() + timeout
            while not self.driver.is_flat():
                if self.clock.now() >= deadline:
                    return False
                await asyncio.sleep(0.02)      # a timer on the loop: reports keep flowing meanwhile
            return True
        try:
            return bool(self._run(wait(), timeout + 5))
        except (concurrent.futures.TimeoutError, RuntimeError):
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Logout from the gateway and the venues, engines down, loop stopped, thread joined."""
        if self.stopped:
            return
        self.stopped = True
        if self._thread.is_alive():
            try:
                self._run(self._stop(), timeout)
            except Exception:  # noqa: BLE001 - the loop still has to go
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()

    async def _stop(self) -> None:
        self.driver.close()
        self.feed.stop()
        if self.collector is not None:
            self.collector.stop()
        for engine in (self._oms_engine, self._md_engine):
            if engine is not None:
                await engine.stop()

    def elapsed(self) -> float:
        return 0.0 if self.t0 is None else self.clock.now() - self.t0
