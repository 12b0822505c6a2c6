"""Latency models: how long a message takes one way to and from a venue (hftbacktest's shape).

    class LatencyModel(Protocol):
        def entry(self, now: float) -> float      # seconds from us to the venue
        def response(self, now: float) -> float   # seconds from the venue back to us

``now`` is the caller's clock in seconds (``gateway.common.clock``); models never read a
clock of their own except ``ScheduledJitterLatency``, whose schedule is relative to a
start time taken from its injected clock. Three models:

- ``ConstantLatency(entry_s, response_s)``: fixed delays.
- ``ScheduledJitterLatency``: base + jitter ("none" | "normal" | "exponential") with a
  schedule of (at_s, base_us, jitter_us) steps relative to ``start()``, plus a live
  override ``set()``. It is what the simulator injects per venue, both directions alike.
- ``EmpiricalLatency(rtt_samples_s, seed)``: half of a sampled round trip each way, e.g.
  from the probe RTTs the gateway recorded.
- ``WindowedEmpiricalLatency(times_s, rtts_s, window_s, seed)``: the same, drawn only from
  the probes taken within ``window_s`` of the order (keeps mid-run latency changes).

Invariants: every delay is >= 0; a model with a seed draws the same sequence for the same
calls; nothing here locks or sleeps (callers on several threads wrap it themselves).
"""
from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from typing import Callable, Iterable, Literal, Protocol, Sequence

JitterKind = Literal["none", "normal", "exponential"]


class LatencyModel(Protocol):
    def entry(self, now: float) -> float: ...
    def response(self, now: float) -> float: ...


@dataclass(frozen=True)
class ConstantLatency:
    entry_s: float
    response_s: float

    def __post_init__(self) -> None:
        if self.entry_s < 0 or self.response_s < 0:
            raise ValueError("latency cannot be negative")

    def entry(self, now: float) -> float:  # noqa: ARG002 - the Protocol's shape
        return self.entry_s

    def response(self, now: float) -> float:  # noqa: ARG002
        return self.response_s


@dataclass(frozen=True)
class LatencyStep:
    """From ``at_s`` seconds after start on, the base and jitter are these (microseconds)."""
    at_s: float
    base_us: float
    jitter_us: float = 0.0


class ScheduledJitterLatency:
    """One-way delay = max(0, base + jitter) with a schedule; the same in both directions.

    The schedule is applied lazily at each draw (no timer): the step in force at
    ``now - t0`` wins, unless ``set()`` overrode the values after that step began (an
    override lasts until the next step's time). ``t0`` is the clock's time at
    construction or at ``start()``.
    """

    def __init__(self, base_us: float = 0.0, jitter_us: float = 0.0, jitter: JitterKind = "normal",
                 schedule: Iterable[LatencyStep | tuple[float, float, float]] = (), *, seed: int = 0,
                 clock: Callable[[], float] | None = None) -> None:
        if base_us < 0 or jitter_us < 0:
            raise ValueError("latency cannot be negative")
        if jitter not in ("none", "normal", "exponential"):
            raise ValueError(f"jitter must be none, normal or exponential, not {jitter!r}")
        self.kind: JitterKind = jitter
        self.base_us = float(base_us)
        self.jitter_us = float(jitter_us)
        steps = [s if isinstance(s, LatencyStep) else LatencyStep(*s) for s in schedule]
        self._steps = sorted(steps, key=lambda s: s.at_s)
        self._step_times = [s.at_s for s in self._steps]
        self._applied = 0           # steps already in force (they only move forward)
        self._clock = clock
        self._rng = random.Random(seed)
        self.t0 = clock() if clock else 0.0

    @classmethod
    def from_config(cls, config, *, seed: int = 0, clock: Callable[[], float] | None = None
                    ) -> "ScheduledJitterLatency":
        """From anything with base_us, jitter_us, jitter, schedule (e.g. sim LatencyConfig)."""
        steps = [LatencyStep(s.at_s, s.base_us, s.jitter_us) for s in config.schedule]
        return cls(config.base_us, config.jitter_us, config.jitter, steps, seed=seed, clock=clock)

    def start(self, now: float | None = None) -> None:
        """Schedule times count from here (``now``, or the injected clock's now)."""
        if now is None:
            now = self._clock() if self._clock else 0.0
        self.t0 = now

    def set(self, base_us: float, jitter_us: float | None = None) -> None:
        """Override the current values live; later schedule steps still apply when due."""
        self.base_us = float(base_us)
        if jitter_us is not None:
            self.jitter_us = float(jitter_us)

    def current(self, now: float | None = None) -> tuple[float, float]:
        """(base_us, jitter_us) in force at ``now`` (default: the injected clock's now)."""
        if self._applied < len(self._steps):
            if now is None:
                now = self._clock() if self._clock else self.t0
            due = bisect.bisect_right(self._step_times, now - self.t0)
            if due > self._applied:
                step = self._steps[due - 1]
                self.base_us, self.jitter_us = step.base_us, step.jitter_us
                self._applied = due
        return self.base_us, self.jitter_us

    def sample(self, now: float | None = None) -> float:
        """One one-way delay in seconds."""
        base, jitter = self.current(now)
        extra = 0.0
        if jitter > 0:
            if self.kind == "normal":
                extra = self._rng.gauss(0.0, jitter)
            elif self.kind == "exponential":
                extra = self._rng.expovariate(1.0 / jitter)
        return max(0.0, base + extra) / 1e6

    def entry(self, now: float) -> float:
        return self.sample(now)

    def response(self, now: float) -> float:
        return self.sample(now)

    @property
    def is_zero(self) -> bool:
        """No delay now and none scheduled (a caller may skip its delay line)."""
        return self.base_us == 0 and self.jitter_us == 0 and self._applied >= len(self._steps)


class EmpiricalLatency:
    """Half of a round trip drawn from recorded samples, each way (independent draws)."""

    def __init__(self, rtt_samples_s: Sequence[float], seed: int = 0) -> None:
        samples = [float(x) for x in rtt_samples_s]
        if not samples:
            raise ValueError("EmpiricalLatency needs at least one RTT sample")
        if min(samples) < 0:
            raise ValueError("RTT samples cannot be negative")
        self._samples = samples
        self._rng = random.Random(seed)

    def _half(self) -> float:
        return self._samples[self._rng.randrange(len(self._samples))] / 2

    def entry(self, now: float) -> float:  # noqa: ARG002
        return self._half()

    def response(self, now: float) -> float:  # noqa: ARG002
        return self._half()


class WindowedEmpiricalLatency:
    """Half of a round trip drawn from the recorded probe samples taken near the order's time:
    those sent within ``window_s`` of ``now`` (replay seconds), or the nearest one when the
    window holds none. Keeps a venue's latency regime changes (a venue that degrades mid-run)
    where a time-blind ``EmpiricalLatency`` would mix them over the whole recording."""

    def __init__(self, times_s: Sequence[float], rtt_samples_s: Sequence[float], window_s: float,
                 seed: int = 0) -> None:
        pairs = sorted((float(t), float(r)) for t, r in zip(times_s, rtt_samples_s))
        if not pairs:
            raise ValueError("WindowedEmpiricalLatency needs at least one RTT sample")
        if window_s <= 0:
            raise ValueError("window_s must be > 0")
        if min(r for _, r in pairs) < 0:
            raise ValueError("RTT samples cannot be negative")
        self._t = [t for t, _ in pairs]
        self._r = [r for _, r in pairs]
        self.window_s = window_s
        self._rng = random.Random(seed)

    def _half(self, now: float) -> float:
        t = self._t
        i = bisect.bisect_left(t, now - self.window_s)
        j = bisect.bisect_right(t, now + self.window_s)
        if j > i:
            return self._r[i + self._rng.randrange(j - i)] / 2
        k = min(i, len(t) - 1)
        if k > 0 and abs(t[k - 1] - now) < abs(t[k] - now):
            k -= 1
        return self._r[k] / 2

    def entry(self, now: float) -> float:
        return self._half(now)

    def response(self, now: float) -> float:
        return self._half(now)
