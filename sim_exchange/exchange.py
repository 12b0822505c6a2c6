"""SimExchange: every configured venue in one process (the programmatic API).

    ex = SimExchange(SimConfig.load("configs/sim.toml")); ex.start()
    ex.venue("ALPHA").port / .engine / .set_latency(base_us, jitter_us) / .snapshot_stats()
    ex.market.add_source(src)   # more flow sources (scenarios), native venues
    ex.stop()

Native venues (``engine = "native"``) share ONE asyncio loop, run by this object on one
thread (``LoopThread``): their FIX sessions, delay lines, the background flow, the fair
value and the competitors are all timers and callbacks on that loop, so nothing on the
order path takes a lock or changes thread. The cross-venue market (``market.py``) spans
the native venues of this process; run one process per venue (``--venue``) and each has
its own quoter but no competitor sees another venue.

quickfix venues (``engine = "quickfix"``) keep the old design: quickfix's threads, a
FlowDriver thread per venue and the TCP delay proxy. They do not take part in the
cross-venue market.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from functools import partial
from typing import Any

from gateway.common.clock import MONOTONIC, Clock
from sim_exchange.config import SimConfig

log = logging.getLogger("sim")


class LoopThread:
    """One asyncio loop on one daemon thread; ``run(coro)`` from other threads waits for it."""

    def __init__(self, name: str = "sim-loop") -> None:
        from gateway.fix.transport import new_event_loop
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5.0)
        if not self.loop.is_running():
            self.loop.close()


class MarketDriver:
    """The market's timer on the loop: apply every due EngineCall to its venue, then re-arm.

    ``kick()`` after a book changed outside the driver (a client order): a competitor may
    have scheduled something earlier than the armed time.

    One arming is live at a time: the timer cannot cancel, so an arming that an earlier one
    superseded still fires, and is ignored (its generation is not the current one). Without
    that, every superseded arming ran the market (``due``, ``next_time`` over every source)
    and re-armed a duplicate of the live one when it fired: duplicates accumulated with
    every quote change (~8 market passes per timer wake-up on average over a 20 s demo,
    growing with the run's length)."""

    MAX_CALLS_PER_FIRE = 10_000       # bounded; the rest runs on the next loop iteration

    def __init__(self, market: Any, venues: dict[str, Any], timer: Any) -> None:
        self.market = market
        self.venues = venues
        self.timer = timer
        self.clock = timer.clock
        self._armed: float | None = None
        self._generation = 0                # of the live arming; a fire of an older one is stale
        self.applied = 0
        self.errors = 0
        self.stale_fires = 0
        self.stopped = False

    def book_changed(self, venue: str, symbol: str) -> None:
        self.market.book_changed(venue, symbol, self.clock())
        self.kick()

    def kick(self) -> None:
        t = self.market.next_time()
        if not self.stopped and t != float("inf") and (self._armed is None or t < self._armed):
            self._armed = t
            self._generation += 1
            self.timer.call_at(t, partial(self._fire, self._generation))

    def _fire(self, generation: int | None = None) -> None:
        if generation is not None and generation != self._generation:
            self.stale_fires += 1           # superseded by an earlier arming, which ran and re-armed
            return
        self._armed = None
        if self.stopped:
            return
        now = self.clock()
        done = 0
        while done < self.MAX_CALLS_PER_FIRE:
            calls = self.market.due(now)
            if not calls:
                break
            for call in calls:
                done += 1
                self._apply(call)
        self.applied += done
        self.kick()

    def _apply(self, call: Any) -> None:
        venue = self.venues.get(call.venue)
        if venue is None:
            return
        try:
            venue.apply_call(call.fn)
        except Exception:  # noqa: BLE001 - one bad call must not stop the market
            self.errors += 1
            log.exception("market call on %s failed", call.venue)


class SimExchange:
    def __init__(self, config: SimConfig, clock: Clock = MONOTONIC) -> None:
        self.config = config
        self.venues: dict[str, Any] = {}
        for v in config.venues:
            if config.venue_engine(v) == "native":
                from sim_exchange.native import NativeVenue
                self.venues[v.name] = NativeVenue(v, config, clock)
            else:
                from sim_exchange.venue import Venue     # imports quickfix: only when used
                self.venues[v.name] = Venue(v, config, clock)
        self._started: list[Any] = []
        self._loop: LoopThread | None = None
        self._timer: Any = None
        self.market: Any = None
        self.driver: MarketDriver | None = None

    @property
    def event_loop(self) -> Any:
        """The asyncio loop the native venues run on (its own thread), or None before start
        or without native venues."""
        return self._loop.loop if self._loop is not None else None

    @property
    def native(self) -> dict[str, Any]:
        return {n: v for n, v in self.venues.items() if getattr(v, "kind", "quickfix") == "native"}

    def venue(self, name: str) -> Any:
        try:
            return self.venues[name]
        except KeyError:
            raise KeyError(f"no venue {name!r} (have {sorted(self.venues)})") from None

    # ------------------------------------------------------------------ start / stop
    def start(self) -> "SimExchange":
        try:
            for v in self.venues.values():
                if getattr(v, "kind", "quickfix") != "native":
                    v.start()
                    self._started.append(v)
            if self.native:
                self._loop = LoopThread()
                self._loop.start()
                self._loop.run(self._start_native())
        except Exception:
            self.stop(logout_timeout=0.0)
            raise
        return self

    async def _start_native(self) -> None:
        from sim_exchange.delayline import PreciseTimer
        from sim_exchange.market import market_from_config
        self._timer = PreciseTimer(asyncio.get_running_loop())
        venues = self.native
        for v in venues.values():
            await v.start(self._timer)
            self._started.append(v)
        if self.config.market.enabled and len(venues) < len(self.venues):
            log.warning("the cross-venue market spans only the native venues: %s", sorted(venues))
        engines = {n: v.engine for n, v in venues.items()}
        self.market, initial = market_from_config(self.config, engines, {n: v.flow for n, v in venues.items()},
                                                  self._timer.clock())
        self.driver = MarketDriver(self.market, venues, self._timer)
        for call in initial:
            self.driver._apply(call)
        for v in venues.values():
            v.on_book_change = self.driver.book_changed
        self.driver.kick()

    def stop(self, logout_timeout: float = 2.0) -> None:
        """Log out every counterparty of every venue at once, then stop them (reverse start order)."""
        started, self._started = list(reversed(self._started)), []
        qf = [v for v in started if getattr(v, "kind", "quickfix") != "native"]
        for v in qf:
            self._guard(v.begin_stop, v)
        deadline = time.monotonic() + logout_timeout
        if self._loop is not None:
            nat = [v for v in started if getattr(v, "kind", "quickfix") == "native"]
            try:
                self._loop.run(self._stop_native(nat), timeout=logout_timeout + 10)
            except Exception:  # noqa: BLE001 - keep stopping the rest
                log.exception("stopping the native venues")
            self._loop.stop()
            self._loop = None
        for v in qf:
            self._guard(lambda: v.finish_stop(max(0.0, deadline - time.monotonic())), v)

    async def _stop_native(self, venues: list[Any]) -> None:
        if self.driver is not None:
            self.driver.stopped = True
        results = await asyncio.gather(*(v.stop() for v in venues), return_exceptions=True)
        for v, r in zip(venues, results):
            if isinstance(r, BaseException):
                log.error("stopping venue %s: %r", v.name, r)
        if self._timer is not None:
            self._timer.close()

    @staticmethod
    def _guard(fn, venue) -> None:
        try:
            fn()
        except Exception:  # noqa: BLE001 - keep stopping the others
            log.exception("stopping venue %s", venue.name)

    def stats(self) -> dict[str, dict]:
        out = {name: v.snapshot_stats() for name, v in self.venues.items()}
        if self.market is not None:
            comp = [s for s in self.market.sources if type(s).__name__ == "Competitors"]
            pf = [s for s in self.market.sources if type(s).__name__ == "PriceFormation"]
            out["_market"] = {"fair_moves": pf[0].moves if pf else 0,
                              "competitors": dict(comp[0].stats) if comp else None,
                              "quote_changes": self.market.quote_changes,
                              "calls_applied": self.driver.applied if self.driver else 0,
                              "stale_timer_fires": self.driver.stale_fires if self.driver else 0}
        return out

    def __enter__(self) -> "SimExchange":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
