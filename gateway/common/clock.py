"""Injected clocks for the sans-IO core.

Everything that decides (matching, books, latency estimates, routing, risk) takes a
clock instead of calling ``time`` itself, so tests drive it in exact microseconds.
Times are float seconds on a monotonic scale; wall-clock UTC is only for FIX fields.
"""
from __future__ import annotations

import time
from typing import Final, Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...


class MonotonicClock:
    """The real clock: ``time.perf_counter`` (CLOCK_MONOTONIC, ns resolution on Linux)."""

    __slots__ = ()

    def now(self) -> float:
        return time.perf_counter()


class FakeClock:
    """A clock that only moves when told to."""

    __slots__ = ("t",)

    def __init__(self, start: float = 0.0) -> None:
        self.t = float(start)

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self.t += seconds
        return self.t

    def set(self, t: float) -> None:
        if t < self.t:
            raise ValueError("a clock does not go backwards")
        self.t = float(t)


MONOTONIC = MonotonicClock()


DIGITS3: Final = tuple(str(i + 1000)[1:] for i in range(1000))    # "000" .. "999": a timestamp's
                                                                  # fraction from two lookups, not a format


class SecondText:
    """The text of one whole second (a timestamp's date and time of day), kept until the
    next second so it is formatted once a second, not once a message. ``pair`` holds the
    second and its text in ONE attribute: a reader on another thread (the quickfix
    backend's engines, the admin thread) never pairs one second with another's text."""

    __slots__ = ("pair",)

    def __init__(self) -> None:
        self.pair: tuple[int, str] = (-1, "")
