"""Kill-switch triggers as plain objects: rolling-window PnL drop and venue reject spikes."""
from __future__ import annotations

from collections import deque


class RollingLoss:
    """Largest PnL drop inside a rolling time window, in O(1) amortized per sample.

    PnL is a step function of time; the drop at time ``now`` is the peak over
    [now - window, now] minus the current value. The peak is the larger of the value in
    effect at the window start and the largest sample inside the window (kept in a
    monotonic deque). Both deques are bounded by ``ring_size``.
    """
    __slots__ = ("window", "_samples", "_peaks")

    def __init__(self, window_s: float, ring_size: int, t0: float, pnl0: float = 0.0) -> None:
        self.window = window_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=ring_size)
        self._peaks: deque[tuple[float, float]] = deque(maxlen=ring_size)
        self._samples.append((t0, pnl0))
        self._peaks.append((t0, pnl0))

    def add(self, t: float, pnl: float) -> float:
        """Record PnL at ``t``; returns the drop over the window ending at ``t`` (>= 0)."""
        samples, peaks = self._samples, self._peaks
        samples.append((t, pnl))
        while peaks and peaks[-1][1] <= pnl:
            peaks.pop()
        peaks.append((t, pnl))
        start = t - self.window
        # keep exactly one sample at or before the window start: the value in effect there
        while len(samples) > 1 and samples[1][0] <= start:
            samples.popleft()
        while peaks[0][0] < start:
            peaks.popleft()   # never empties: the newest sample is at t
        peak = peaks[0][1]
        in_effect = samples[0][1]
        if in_effect > peak:
            peak = in_effect
        return peak - pnl


class EventRate:
    """Count of events inside a rolling window (timestamps in a bounded deque)."""
    __slots__ = ("window", "_times")

    def __init__(self, window_s: float, ring_size: int) -> None:
        self.window = window_s
        self._times: deque[float] = deque(maxlen=ring_size)

    def add(self, t: float) -> int:
        times = self._times
        times.append(t)
        start = t - self.window
        while times[0] <= start:
            times.popleft()
        return len(times)
