"""MarketDriver (sim_exchange/exchange.py): one live arming of the market's timer."""
from __future__ import annotations

from sim_exchange.exchange import MarketDriver


class _Timer:
    """A timer heap without cancel, like delayline.PreciseTimer; run_until fires what is due."""

    def __init__(self) -> None:
        self.now = 0.0
        self.entries: list[tuple[float, object]] = []

    def clock(self) -> float:
        return self.now

    def call_at(self, when: float, fn) -> None:
        self.entries.append((when, fn))

    def run_until(self, t: float) -> None:
        for _ in range(10_000):
            due = sorted((e for e in self.entries if e[0] <= t), key=lambda e: e[0])
            if not due:
                break
            when, fn = due[0]
            self.entries.remove(due[0])
            self.now = max(self.now, when)
            fn()
        self.now = t


class _Market:
    """Events at given times; counts the passes the driver makes over the sources."""

    def __init__(self, times: list[float]) -> None:
        self.times = sorted(times)
        self.passes = 0
        self.ran: list[float] = []

    def next_time(self) -> float:
        return self.times[0] if self.times else float("inf")

    def due(self, now: float) -> list:
        self.passes += 1
        out = []
        while self.times and self.times[0] <= now:
            t = self.times.pop(0)
            out.append(_Call(self, t))
        return out

    def book_changed(self, venue: str, symbol: str, now: float) -> None:
        pass


class _Call:
    venue = "V"

    def __init__(self, market: _Market, t: float) -> None:
        self.fn = lambda engine: market.ran.append(t) or []


class _Venue:
    def apply_call(self, fn) -> list:
        return fn(None)


def test_superseded_armings_do_not_run_the_market():
    timer = _Timer()
    market = _Market([10.0])
    driver = MarketDriver(market, {"V": _Venue()}, timer)
    driver.kick()                                  # armed for 10
    for k in range(5):                             # quote changes: something earlier each time
        market.times.insert(0, 9.0 - k)
        driver.kick()
    assert len(timer.entries) == 6                 # the timer cannot cancel: 6 armings queued
    timer.run_until(20.0)
    assert market.ran == [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]    # every event once, in time order
    assert market.passes == 2 * 6                  # per live fire: its pass, and one that finds nothing more due
    assert not timer.entries                       # nothing left armed: no duplicate keeps firing
    assert driver.stale_fires == 5                 # the superseded armings fired and were ignored


def test_stopped_driver_runs_nothing():
    timer = _Timer()
    market = _Market([1.0])
    driver = MarketDriver(market, {"V": _Venue()}, timer)
    driver.kick()
    driver.stopped = True
    timer.run_until(5.0)
    assert market.ran == [] and market.passes == 0
