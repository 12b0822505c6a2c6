"""Injected latency on the event loop: a precise timer and one delay line per direction.

``PreciseTimer`` is a timer heap on an asyncio loop whose wake-ups come from a Linux
``timerfd`` registered with ``loop.add_reader``. Why not ``loop.call_at``: asyncio (and
uvloop) sleep in epoll with millisecond resolution, so a 100 us delay would become
~1 ms. The timerfd fires with nanosecond resolution and no timer slack, but the process
wakes some tens of microseconds after it fires (scheduler latency). The timer learns that
wake-up lateness (a clipped EWMA of ``now - armed target``: a median-like location that one
loaded moment moves by at most ``_LATENESS_STEP_S``) and arms that much early; a wake-up that
still comes early spins the rest, at most ``MAX_SPIN_S``, so nothing fires before it is due,
and about half the wake-ups spin a few microseconds (one much earlier re-arms instead).
Elsewhere (not Linux) it falls back to ``call_later``.

``DelayLine`` is one direction of one connection: ``push(data)`` stamps
``due = max(now + model.sample(now), previous due)`` (so order is preserved) and hands the
bytes to ``deliver`` when due. A push that is due at once with nothing pending is
delivered inline (zero latency costs one clock read); while the model is zero and nothing
is pending, ``straight()`` lets the caller skip the line altogether. Given an ``errors`` deque, each
delivery appends its error (delivered minus due, seconds): ``error_stats`` summarises it. ``then(fn)`` runs ``fn`` after
everything pushed so far (e.g. close the socket after the Logout left).

Invariants: nothing is delivered before its due time (within the clock's resolution);
per line, deliveries keep push order; a closed line delivers nothing more; every loop
here is bounded by what is queued.
"""
from __future__ import annotations

import ctypes
import heapq
import itertools
import logging
import os
import sys
import time
from collections import deque
from typing import Any, Callable

log = logging.getLogger("sim.delay")

MAX_SPIN_S = 40e-6           # a wake-up this close to due spins the rest (bounded)
ERROR_WINDOW = 4096          # delivery errors a venue keeps for error_stats()
LATENESS_QUANTILE = 0.75     # arm this quantile of the wake-up lateness early
_LATENESS_INIT_S = 20e-6
_LATENESS_STEP_S = 2e-6      # per wake-up: up by QUANTILE * this, down by (1 - QUANTILE) * this
_LATENESS_MAX_S = 200e-6

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = 0o4000
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1
_PR_SET_TIMERSLACK = 29


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.timerfd_create, libc.timerfd_settime    # noqa: B018 - both must exist
        return libc
    except (OSError, AttributeError):
        return None


class PreciseTimer:
    """``call_at(when, fn)`` on ``time.monotonic()``'s scale, with sub-100 us accuracy."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.clock = time.monotonic
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._armed_for: float | None = None     # due time of the head we armed for
        self._target = 0.0                       # the time the timerfd was armed for
        self._learn = False
        self._fallback: Any = None
        self.lateness = _LATENESS_INIT_S
        self.fired = 0
        self._libc = _libc()
        self._fd = -1
        self._spec = _Itimerspec()                    # reused by every _arm (no allocation)
        self._spec_ref = ctypes.byref(self._spec)
        self._settime = self._libc.timerfd_settime if self._libc is not None else None
        if self._libc is not None:
            self._libc.prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)   # epoll wake-ups without 50 us slack
            fd = self._libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
            if fd >= 0:
                self._fd = fd
                loop.add_reader(fd, self._on_fd)

    @property
    def precise(self) -> bool:
        return self._fd >= 0

    def call_at(self, when: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), fn))
        if self._armed_for is None or when < self._armed_for:
            self._arm(when)

    def close(self) -> None:
        self._heap.clear()
        if self._fd >= 0:
            self.loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        if self._fallback is not None:
            self._fallback.cancel()

    # -- internals
    def _arm(self, when: float, compensate: bool = True) -> None:
        self._armed_for = when
        target = when - self.lateness if compensate else when
        # Learn lateness only from wake-ups armed for the future (not "due already").
        self._learn = target > self.clock()
        self._target = target
        if self._fd >= 0:
            target = max(target, 1e-9)
            value = self._spec.it_value
            value.tv_sec = sec = int(target)
            value.tv_nsec = int((target - sec) * 1e9)
            if self._settime(self._fd, _TFD_TIMER_ABSTIME, self._spec_ref, None) == 0:
                return
            log.warning("timerfd_settime failed (errno %d): falling back to call_later", ctypes.get_errno())
            self.loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        if self._fallback is not None:
            self._fallback.cancel()
        self._fallback = self.loop.call_later(max(0.0, target - self.clock()), self._run)

    def _on_fd(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:      # a re-arm raced the expiry: nothing to read
            pass
        if self._armed_for is not None and self._learn:
            self._learn_lateness(self.clock())
        self._run()

    def _learn_lateness(self, now: float) -> None:
        """Lateness of this wake-up against what the timerfd was armed for (compensated or
        not) moves the quantile estimate one bounded step (Robbins-Monro): a loaded moment
        must not make every later wake-up spin."""
        q = LATENESS_QUANTILE if now - self._target > self.lateness else LATENESS_QUANTILE - 1.0
        self.lateness = min(max(self.lateness + q * _LATENESS_STEP_S, 0.0), _LATENESS_MAX_S)

    def _run(self) -> None:
        self._fallback = None
        self._armed_for = None
        heap = self._heap
        if heap:
            early = heap[0][0] - self.clock()
            if early > MAX_SPIN_S:
                # Woke well before due (the learned lateness overshot, e.g. after a loaded
                # moment): arm for the due time itself, no compensation, so the next wake is
                # on time or late and the estimate can come down again.
                self._arm(heap[0][0], compensate=False)
                return
            head = heap[0][0]
            while self.clock() < head:      # bounded: at most MAX_SPIN_S
                pass
        now = self.clock()
        for _ in range(len(heap)):
            if not heap or heap[0][0] > now:
                break
            _, _, fn = heapq.heappop(heap)
            self.fired += 1
            try:
                fn()
            except Exception:  # noqa: BLE001 - one failing delivery must not stop the others
                log.exception("delayed callback failed")
        # A callback's own call_at may have armed for the head already (a delay line that
        # pushed during its delivery): arm once, not twice (a timerfd_settime each).
        if heap and (self._armed_for is None or heap[0][0] < self._armed_for):
            self._arm(heap[0][0])


def error_stats(errors: Any) -> dict[str, float]:
    """Delivery errors (delivered minus due, seconds) as us percentiles: p1 < 0 never (not early)."""
    xs = sorted(errors)
    if not xs:
        return {"n": 0}
    at = lambda q: round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1e6, 1)  # noqa: E731
    return {"n": len(xs), "p1": at(0.01), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99),
            "max": round(xs[-1] * 1e6, 1)}


class DelayLine:
    """One direction of one connection (see the module docstring)."""

    def __init__(self, timer: PreciseTimer, model: Any, deliver: Callable[[bytes], object],
                 errors: deque | None = None) -> None:
        self.timer = timer
        self.errors = errors
        self.model = model
        self.deliver = deliver
        self.clock = timer.clock
        self._queue: deque[tuple[float, Any]] = deque()
        self.last_due = 0.0
        self.closed = False
        self.delivered = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    def straight(self) -> bool:
        """True when bytes may skip the line: nothing waits in it and the delay is zero now
        and stays so (``model.is_zero``). A venue at zero injected latency (the probes'
        reference) then runs the plain engine's path: what ``push`` would have done inline,
        minus its calls. Bytes that skip the line are not in ``errors`` (never delayed)."""
        return not (self._queue or self.closed) and getattr(self.model, "is_zero", False)

    def push(self, data: bytes) -> None:
        if self.closed:
            return
        now = self.clock()
        due = max(now + self.model.sample(now), self.last_due)
        self.last_due = due
        if not self._queue and due <= now:
            if self.errors is not None:
                self.errors.append(0.0)
            self._deliver(data)
            return
        self._enqueue(due, data)

    def then(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once everything pushed so far is delivered."""
        if self.closed:
            return
        if not self._queue:
            fn()
            return
        self._enqueue(self.last_due, fn)

    def close(self) -> None:
        self.closed = True
        self._queue.clear()

    def _enqueue(self, due: float, item: Any) -> None:
        self._queue.append((due, item))
        if len(self._queue) == 1:
            self.timer.call_at(due, self._release)

    def _release(self) -> None:
        queue = self._queue
        now = self.clock()
        for _ in range(len(queue)):
            if self.closed or not queue or queue[0][0] > now:
                break
            due, item = queue.popleft()
            if callable(item):
                item()
            else:
                if self.errors is not None:
                    self.errors.append(now - due)
                self._deliver(item)
        if queue and not self.closed:
            self.timer.call_at(queue[0][0], self._release)

    def _deliver(self, data: bytes) -> None:
        self.delivered += 1
        self.deliver(data)
