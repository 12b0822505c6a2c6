"""The garbage collector off the order path: collections run by the loop, at moments it picks.

Why. CPython's automatic collector runs a young collection whenever 700 more tracked objects
exist than at the last one: inside whichever handler made the 701st, i.e. in the middle of an
order. An order leaves ~13 tracked objects alive (the order's records, its tuples and lists),
so the gateway paid a ~100 us pause every ~50 orders (the p99 of the added latency), a bigger
one every ~500, and a full collection (every object made since start-up: 12-14 ms after
10,000 orders, growing with the day) every ~10,000 (docs/operations.md "The garbage collector").

What instead (``mode = "loop"``, the default):

- The start-up heap is frozen (``procs.freeze_startup_heap``): never scanned again.
- CPython's automatic collector stays on only as a backstop, at ``2 * young_max`` objects:
  it fires only if the loop stops ticking (a blocked loop, a thread allocating).
- A timer on the loop looks at the young-object count every ``check_ms``:
  * once nothing new has appeared for ``idle_ms`` (the flow paused), it SWEEPS: a collection
    of the young and the pending objects, then ``gc.freeze()``: what survived is moved out of
    every later collection. One sweep per pause: a quiet loop is left alone.
  * under non-stop flow, when the young count reaches ``young_max``, it collects the young
    objects anyway (a pause of ~0.3 ms at 2,000, ~0.45 ms at 5,000), keeping the survivors as
    "pending"; when the pending objects pass ``pending_max`` the collection is a sweep.
  So the garbage waiting for a collection stays bounded under any load, an order is scanned
  once (twice with ``pending_max``) and the day's orders are never rescanned. (The young
  count is CPython's own, ``gc.get_count()[0]``: tracked allocations minus deallocations
  since the last collection; the pending and frozen counts are estimates from it.)
- What freezing costs: a frozen object is still freed by reference counting the moment
  nothing refers to it (the usual case: a finished order's objects), but a *cycle* that
  becomes garbage after it was frozen is not found by any young collection. Cycles made and
  dropped within one sweep period (an exception's traceback, a reconnect's protocol objects,
  a task) are freed by the sweep; ones that lived longer wait for a DEEP collection
  (``gc.unfreeze()``, a full collection, ``gc.freeze()``), which scans the whole heap (start-up
  included: 0.5-1.3 s on the test VM after 100,000 orders, 607,000 frozen objects). It runs
  when ``deep_after`` objects were frozen since the last one and the loop has been idle
  ``deep_idle_ms`` (default 5 minutes: in practice outside trading), and in any case once
  ``deep_max`` were frozen (default 0: never under load). Measured: after 100,000 orders a
  deep collection found nothing unreachable; the order path makes no such cycles.

``mode = "python"`` keeps CPython's automatic collector (``thresholds``), for comparison.

The policy (``CollectorPolicy``) is sans-IO: fed the clock and the young count, it answers
what to run; ``LoopCollector`` runs it on an asyncio loop; ``GcStats`` counts the pauses
(``gc.callbacks``) of whatever collects, ours or CPython's.
"""
from __future__ import annotations

import gc
import logging
import time
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("gateway.collector")

# What the policy may answer
NOTHING, YOUNG, SWEEP, DEEP = 0, 1, 2, 3
ACTIONS = ("nothing", "young", "sweep", "deep")

# The loop's own timers and buffers come and go between two checks: growth of the young
# count by at most this many objects is not activity.
SLACK = 32
# When nothing is pending (swept, quiet), the loop looks this many times less often.
REST_FACTOR = 10


class CollectorConfig(BaseModel):
    """``[collector]``: when the garbage collector runs (see the module docstring).

    ```toml
    [collector]
    mode = "loop"          # "loop": collections run by the loop; "python": CPython's automatic collector
    check_ms = 2           # how often the loop looks at the young-object count
    idle_ms = 4            # sweep (collect + freeze) once nothing new appeared for this long
    young_max = 2000       # collect the young objects in any case at this many (non-stop flow)
    pending_max = 0        # survivors kept unfrozen for one more look (0: freeze at every collection)
    deep_after = 100000    # a deep collection (unfreeze, full, freeze) once this many were frozen ...
    deep_idle_ms = 300000  # ... at a pause of this length (5 minutes: outside trading, in practice)
    deep_max = 0           # ... or in any case at this many frozen since the last (0: only when idle)
    thresholds = [700, 10, 10]   # mode "python" only: gc.set_threshold
    ```"""
    model_config = ConfigDict(extra="forbid")

    mode: Literal["loop", "python"] = "loop"
    check_ms: float = Field(2.0, gt=0, le=1000)
    idle_ms: float = Field(4.0, gt=0, le=60_000)
    young_max: int = Field(2000, ge=100, le=10_000_000)
    pending_max: int = Field(0, ge=0, le=100_000_000)
    deep_after: int = Field(100_000, ge=0)            # 0: no deep collection at pauses
    deep_idle_ms: float = Field(300_000.0, gt=0, le=86_400_000)
    deep_max: int = Field(0, ge=0)                    # 0: no deep collection under load
    thresholds: tuple[int, int, int] = (700, 10, 10)


class CollectorPolicy:
    """When to collect, from the clock and the young-object count (sans-IO).

    ``check(now, young)`` at each look answers NOTHING, YOUNG, SWEEP or DEEP; after running
    what it asked, the caller reports ``collected(action, young, freed)`` (the young count it
    saw and what the collection found unreachable), from which the policy keeps its estimate
    of the pending and the frozen objects (survivors = seen - freed)."""

    def __init__(self, idle_s: float, young_max: int, pending_max: int = 0, deep_after: int = 0,
                 deep_idle_s: float = 1.0, deep_max: int = 0, now: float = 0.0, slack: int = SLACK) -> None:
        self.idle_s, self.young_max, self.pending_max = idle_s, young_max, pending_max
        self.deep_after, self.deep_idle_s, self.deep_max, self.slack = deep_after, deep_idle_s, deep_max, slack
        self.pending = 0             # survivors of young collections, not yet frozen (estimate)
        self.frozen = 0              # frozen by sweeps since the last deep collection (estimate)
        self.active_at = now         # when the young count last grew
        self.swept = True            # nothing to sweep until something new appears
        self._seen = 0               # the young count at the previous look

    @classmethod
    def from_config(cls, cfg: CollectorConfig, now: float = 0.0) -> "CollectorPolicy":
        return cls(cfg.idle_ms / 1e3, cfg.young_max, cfg.pending_max, cfg.deep_after, cfg.deep_idle_ms / 1e3,
                   cfg.deep_max, now)

    def check(self, now: float, young: int) -> int:
        if young > self._seen + self.slack:
            self.active_at, self.swept = now, False
        self._seen = young
        idle = now - self.active_at
        if self.deep_max and self.frozen >= self.deep_max:
            return DEEP
        if self.deep_after and self.frozen >= self.deep_after and idle >= self.deep_idle_s:
            return DEEP
        if not self.swept and idle >= self.idle_s:
            if young + self.pending <= self.slack:
                self.swept = True    # next to nothing made during the flow: no pause for it
                return NOTHING
            return SWEEP
        if young >= self.young_max:
            return SWEEP if self.pending >= self.pending_max else YOUNG
        return NOTHING

    @property
    def at_rest(self) -> bool:
        """Swept and quiet: the caller may look less often."""
        return self.swept and not self.pending

    def collected(self, action: int, young: int, freed: int) -> None:
        if action == YOUNG:
            self.pending += max(0, young - freed)
        elif action == SWEEP:
            self.frozen += max(0, young + self.pending - freed)
            self.pending, self.swept = 0, True
        elif action == DEEP:
            self.frozen = self.pending = 0
            self.swept = True
        self._seen = 0               # a collection resets the young count


class GcStats:
    """Every collection's pause, from ``gc.callbacks``: count, total and longest per generation.

    Counts CPython's automatic collections and ours alike. ``install()`` / ``uninstall()``."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.total_s = [0.0, 0.0, 0.0]
        self.longest_s = [0.0, 0.0, 0.0]
        self.collected = 0
        self._t0 = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        dt = time.perf_counter() - self._t0
        g = info["generation"]
        self.count[g] += 1
        self.total_s[g] += dt
        if dt > self.longest_s[g]:
            self.longest_s[g] = dt
        self.collected += info["collected"]

    def install(self) -> "GcStats":
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)
        return self

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def reset(self) -> None:
        self.count, self.total_s, self.longest_s, self.collected = [0, 0, 0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], 0

    def summary(self) -> dict[str, Any]:
        return {"collections": sum(self.count), "per_generation": list(self.count),
                "total_ms": round(sum(self.total_s) * 1e3, 3), "longest_ms": round(max(self.longest_s) * 1e3, 3),
                "collected": self.collected}

    def line(self) -> str:
        s = self.summary()
        return (f"{s['collections']} collections (gen0/1/2 {'/'.join(map(str, self.count))}), "
                f"{s['total_ms']:.1f} ms in all, longest {s['longest_ms']:.2f} ms, {s['collected']} objects freed")


class LoopCollector:
    """Runs ``CollectorPolicy`` from a timer on an asyncio loop (see the module docstring).

    ``start(loop)`` on the loop's thread (after the start-up heap is frozen), ``stop()`` puts
    CPython's collector back as it was. ``counts`` / ``longest_s``: collections per action and
    the longest pause of each (measured around the whole action, freeze included; wall time,
    and this thread's CPU time, which a preemption on a busy machine does not inflate)."""

    def __init__(self, cfg: CollectorConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.clock = cfg, clock
        self.policy = CollectorPolicy.from_config(cfg, clock())
        self.counts = [0, 0, 0, 0]
        self.total_s = [0.0, 0.0, 0.0, 0.0]
        self.longest_s = [0.0, 0.0, 0.0, 0.0]
        self.longest_cpu_s = [0.0, 0.0, 0.0, 0.0]   # this thread's CPU time: without preemption
        self._loop: Any = None
        self._timer: Any = None
        self._saved: tuple[bool, tuple[int, int, int]] | None = None

    def start(self, loop: Any) -> None:
        self._saved = (gc.isenabled(), gc.get_threshold())
        if self.cfg.mode == "python":
            gc.set_threshold(*self.cfg.thresholds)
            return
        gc.set_threshold(2 * self.cfg.young_max, 10, 10)    # the backstop, if the loop stops ticking
        gc.enable()
        self._loop = loop
        self.policy = CollectorPolicy.from_config(self.cfg, self.clock())
        self._timer = loop.call_later(self.cfg.check_ms / 1e3, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._saved is not None:
            enabled, thresholds = self._saved
            gc.set_threshold(*thresholds)
            (gc.enable if enabled else gc.disable)()
            self._saved = None

    def _tick(self) -> None:
        try:
            self.step()
        finally:
            if self._loop is not None and self._saved is not None:
                delay = self.cfg.check_ms / 1e3
                self._timer = self._loop.call_later(delay * REST_FACTOR if self.policy.at_rest else delay, self._tick)

    def step(self) -> int:
        """One look: ask the policy, run what it says. Returns the action (tests call this)."""
        young = gc.get_count()[0]
        action = self.policy.check(self.clock(), young)
        if action != NOTHING:
            self.run(action, young)
        return action

    def run(self, action: int, young: int) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        if action == YOUNG:
            freed = gc.collect(0)
        elif action == SWEEP:
            freed = gc.collect(1)
            gc.freeze()
        else:
            gc.unfreeze()
            freed = gc.collect(2)
            gc.freeze()
        dt, cpu = time.perf_counter() - t0, time.thread_time() - c0
        self.policy.collected(action, young, freed)
        self.counts[action] += 1
        self.total_s[action] += dt
        if dt > self.longest_s[action]:
            self.longest_s[action] = dt
        if cpu > self.longest_cpu_s[action]:
            self.longest_cpu_s[action] = cpu
        if action == DEEP:
            log.info("deep collection: %d objects freed in %.1f ms", freed, dt * 1e3)

    def summary(self) -> dict[str, Any]:
        return {ACTIONS[a]: {"count": self.counts[a], "total_ms": round(self.total_s[a] * 1e3, 3),
                             "longest_ms": round(self.longest_s[a] * 1e3, 3),
                             "longest_cpu_ms": round(self.longest_cpu_s[a] * 1e3, 3)} for a in (YOUNG, SWEEP, DEEP)}

    def line(self) -> str:
        if self.cfg.mode == "python":
            return f"collector: CPython's automatic collector, thresholds {gc.get_threshold()}"
        parts = [f"{ACTIONS[a]} {self.counts[a]} (longest {self.longest_s[a] * 1e3:.2f} ms, "
                 f"CPU {self.longest_cpu_s[a] * 1e3:.2f} ms)" for a in (YOUNG, SWEEP, DEEP) if self.counts[a]]
        return f"collector: {', '.join(parts) or 'no collection'}; {sum(self.total_s) * 1e3:.1f} ms in all"
