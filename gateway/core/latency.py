"""Live venue latency: RTT samples from our TestRequest probes -> estimates (sans-IO).

``ProbeTracker`` hands out TestReqIDs (112) with a recognisable prefix and turns the
matching Heartbeat into one RTT sample. ``LatencyEstimator`` keeps, per venue:

- ``ewma_us``: exponentially weighted mean (alpha per sample),
- ``recent_us``: median of the last few samples (default 5). It follows a level shift
  within ~3 probes and ignores a single spike, which the EWMA (alpha 0.2) does not:
  from 50 ms back to 1 ms it needs ~30 samples to get within 50 us,
- ``route_us`` = max(recent_us, min(last two samples)): what the scalp router ranks by
  by default (``rank_latency = "recent"``). Asymmetric on purpose: a slowdown counts from
  its second slow answer (and, in ``MarketState``, once a probe is unanswered for over
  half a probe interval), a recovery needs the median to come down (3 of 5 fast answers).
  A single spike (p99 RTTs of several ms happen on a loaded 2-core box) moves nothing,
- ``p50_us`` / ``p99_us`` / ``jitter_us`` (p90 - p10) over the last ``window`` samples
  (a plain list ring: ``add`` is a few float stores and a sort of ``recent_samples``),
  computed with numpy lazily when asked (status, reports), never per order,
- staleness: no sample for ``stale_after_s`` -> ``is_stale()``.

All times come from an injected clock (seconds); figures are reported in microseconds.
"""
from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any

import numpy as np
from mypy_extensions import mypyc_attr

from gateway.common.clock import MONOTONIC, Clock

INF = float("inf")


class LatencyEstimator:
    __slots__ = ("clock", "window", "alpha", "stale_after_s", "count", "ewma_us", "recent_us", "route_us",
                 "prev_us",
                 "last_us", "last_at", "_ring", "_pos", "_recent", "_recent_n", "_cache")

    def __init__(self, clock: Clock = MONOTONIC, window: int = 200, ewma_alpha: float = 0.2,
                 stale_after_s: float = 0.5, recent_samples: int = 5) -> None:
        if window < 1 or not 0 < ewma_alpha <= 1 or recent_samples < 1:
            raise ValueError("window >= 1, 0 < ewma_alpha <= 1 and recent_samples >= 1 required")
        self.clock = clock
        self.window = window
        self.alpha = ewma_alpha
        self.stale_after_s = stale_after_s
        self._recent_n = recent_samples
        self._clear()

    def _clear(self) -> None:
        self.count = 0                  # samples ever added
        self.ewma_us = INF              # INF until the first sample
        self.recent_us = INF
        self.route_us = INF
        self.last_us = INF
        self.prev_us = INF
        self.last_at: float | None = None
        self._ring = [0.0] * self.window    # the newest ``window`` samples (us), oldest overwritten
        self._pos = 0
        self._recent: list[float] = []
        self._cache: tuple[float, float, float, float] | None = None  # p50, p99, jitter, mean

    def add(self, rtt_seconds: float, at: float | None = None) -> None:
        """One sample; ``at``: when it was taken (default: the clock now, one more read)."""
        us = rtt_seconds * 1e6
        if us < 0:
            return  # a clock that went backwards is not a sample
        count = self.count
        self.ewma_us = us if count == 0 else self.ewma_us + self.alpha * (us - self.ewma_us)
        self.count = count + 1
        prev = self.prev_us = self.last_us
        self.last_us = us
        self.last_at = self.clock.now() if at is None else at
        pos = self._pos
        self._ring[pos] = us            # a list: a float store, no numpy scalar per sample
        pos += 1
        self._pos = 0 if pos == self.window else pos
        recent = self._recent
        recent.append(us)
        if len(recent) > self._recent_n:
            del recent[0]
        ordered = sorted(recent)
        n = len(ordered)
        median = ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])
        self.recent_us = median
        confirmed = us if us < prev else prev      # both of the last two were this slow
        self.route_us = confirmed if confirmed > median else median
        self._cache = None

    def reset(self) -> None:
        """Forget every sample (e.g. a venue whose link changed); keeps the settings."""
        self._clear()

    # -- staleness
    def age_s(self) -> float | None:
        return None if self.last_at is None else self.clock.now() - self.last_at

    def is_stale(self) -> bool:
        return self.last_at is None or self.clock.now() - self.last_at > self.stale_after_s

    # -- windowed statistics (lazy, cached until the next sample)
    def _stats(self) -> tuple[float, float, float, float]:
        if self._cache is None:
            n = min(self.count, self.window)
            if n == 0:
                self._cache = (INF, INF, INF, INF)
            else:
                data = np.array(self._ring[:n], dtype=np.float64)
                p10, p50, p90, p99 = np.percentile(data, (10, 50, 90, 99))
                self._cache = (float(p50), float(p99), float(p90 - p10), float(data.mean()))
        return self._cache

    def percentile_us(self, q: float) -> float:
        n = min(self.count, self.window)
        return INF if n == 0 else float(np.percentile(np.array(self._ring[:n], dtype=np.float64), q))

    @property
    def p50_us(self) -> float:
        return self._stats()[0]

    @property
    def p99_us(self) -> float:
        return self._stats()[1]

    @property
    def jitter_us(self) -> float:
        """Spread of the window: p90 - p10."""
        return self._stats()[2]

    @property
    def mean_us(self) -> float:
        return self._stats()[3]

    def snapshot(self) -> dict:
        age = self.age_s()
        return {
            "ewma_us": _num(self.ewma_us), "recent_us": _num(self.recent_us),
            "last_us": _num(self.last_us), "p50_us": _num(self.p50_us), "p99_us": _num(self.p99_us),
            "mean_us": _num(self.mean_us), "jitter_us": _num(self.jitter_us),
            "samples": self.count, "stale": self.is_stale(),
            "last_sample_age_s": None if age is None else round(age, 6),
        }


def _num(x: float) -> float | None:
    """JSON-able: None for 'no data yet'."""
    return None if x == INF else round(x, 3)


@mypyc_attr(native_class=False)   # a plain class even compiled: recordings wrap on_heartbeat per instance
class ProbeTracker:
    """Pending probes per venue: TestReqID -> send time; the Heartbeat answer gives the RTT.

    IDs look like ``PRB-ALPHA-17``. A session delivers in order, so an answer also
    retires any older probe of the same venue still pending (it was lost with a
    dropped connection). Each venue keeps at most ``max_pending`` probes, none older
    than ``max_age_s``.

    Two times per probe: ``new_probe`` stamps when we decided to send it (the RTT runs
    from there), ``handed(rid, at)`` when its bytes were handed to the socket. After a
    matching ``on_heartbeat``, ``answered_handed_at`` holds the latter (None if never
    given): the estimator's floor split (``MarketState.on_venue_admin``).
    """

    def __init__(self, clock: Clock = MONOTONIC, prefix: str = "PRB", max_pending: int = 64,
                 max_age_s: float = 30.0) -> None:
        self.clock = clock
        self.prefix = prefix
        self.max_pending = max_pending
        self.max_age_s = max_age_s
        self._seq = itertools.count(1)
        self._pending: dict[str, OrderedDict[str, float]] = {}
        self._handed: dict[str, float] = {}     # TestReqID -> bytes handed to the socket at
        self.answered_handed_at: float | None = None
        self.answered_at = 0.0                  # clock time of the last matched answer
        self.unmatched = 0      # heartbeats with our prefix but no pending probe
        self.expired = 0

    def is_ours(self, test_req_id: str | None) -> bool:
        return test_req_id is not None and test_req_id.startswith(self.prefix)

    def new_probe(self, venue: str) -> str:
        now = self.clock.now()
        pend = self._pending.setdefault(venue, OrderedDict())
        self._expire(pend, now)
        test_req_id = f"{self.prefix}-{venue}-{next(self._seq)}"
        pend[test_req_id] = now
        return test_req_id

    def handed(self, test_req_id: str, at: float) -> None:
        """The probe's bytes reached the socket at ``at`` (same clock)."""
        self._handed[test_req_id] = at

    def on_heartbeat(self, venue: str, test_req_id: str | None) -> float | None:
        """The RTT in seconds when ``test_req_id`` is a pending probe of ``venue``; else None."""
        pend = self._pending.get(venue)
        if not pend or test_req_id is None or test_req_id not in pend:
            if self.is_ours(test_req_id):
                self.unmatched += 1
            return None
        now = self.clock.now()
        handed = self._handed
        while pend:
            rid, sent = pend.popitem(last=False)
            at = handed.pop(rid, None)
            if rid == test_req_id:
                self.answered_handed_at = at
                self.answered_at = now
                return now - sent
            self.expired += 1
        return None  # pragma: no cover - the id was in the map

    def oldest_pending_at(self, venue: str) -> float | None:
        """Send time of the oldest unanswered probe (a lower bound on the current RTT)."""
        pend = self._pending.get(venue)
        if not pend:
            return None
        return next(iter(pend.values()))

    def pending(self, venue: str) -> int:
        return len(self._pending.get(venue, ()))

    def clear(self, venue: str) -> None:
        """The session dropped: its pending probes will never be answered."""
        for rid in self._pending.pop(venue, ()):
            self._handed.pop(rid, None)

    def _expire(self, pend: OrderedDict[str, float], now: float) -> None:
        while pend and (len(pend) >= self.max_pending or now - next(iter(pend.values())) > self.max_age_s):
            rid, _ = pend.popitem(last=False)
            self._handed.pop(rid, None)
            self.expired += 1


# ---------------------------------------------------------------- bench-only: a probe's hops

TRACE_ENV = "FIXGW_PROBE_TRACE"     # a directory: each process appends its probe stamps there


@mypyc_attr(native_class=False)
class ProbeTrace:
    """Bench-only stamps of a probe's hops (``benchmarks/bench_router.py trace``), off unless
    ``FIXGW_PROBE_TRACE`` names a directory when the process starts (``probe_trace()``); off,
    the hot path pays one ``is None`` test. ``add(kind, data, *stamps)`` keeps a row in
    memory (``data``: the TestReqID, or the bytes it is found in later); the rows reach
    ``<dir>/<tag>-<pid>.trace`` 30 ms after the first of a batch, from a loop timer, so the
    file write never lands inside the probe it describes (probes are >= 10 ms apart). Stamps
    are ``time.perf_counter()`` (CLOCK_MONOTONIC on Linux: one clock for every process)."""

    def __init__(self, directory: str, tag: str) -> None:
        import os  # noqa: PLC0415 - bench-only
        self.path = os.path.join(directory, f"{tag}-{os.getpid()}.trace")
        self.rows: list[tuple] = []
        self._armed = False

    def add(self, kind: str, data: Any, *stamps: float) -> None:
        self.rows.append((kind, data, stamps))
        if not self._armed:
            import asyncio  # noqa: PLC0415
            try:
                asyncio.get_running_loop().call_later(0.03, self.dump)
                self._armed = True
            except RuntimeError:       # no loop (a test): written when asked
                pass

    def dump(self) -> None:
        import re  # noqa: PLC0415
        self._armed = False
        rows, self.rows = self.rows, []
        lines = []
        for kind, data, stamps in rows:
            if isinstance(data, (bytes, bytearray)):
                found = re.findall(rb"\x01112=([^\x01]*)\x01", bytes(data))
                ids = [x.decode("latin-1") for x in found] or ["-"]
            else:
                ids = [str(data)]
            for rid in ids:
                lines.append(f"{kind} {rid} " + " ".join(f"{s:.9f}" for s in stamps) + "\n")
        with open(self.path, "a", encoding="ascii") as f:
            f.writelines(lines)


def probe_trace(tag: str) -> ProbeTrace | None:
    """The process's ``ProbeTrace`` when ``FIXGW_PROBE_TRACE`` is set, else None."""
    import os  # noqa: PLC0415
    directory = os.environ.get(TRACE_ENV, "")
    return ProbeTrace(directory, tag) if directory else None
