"""delayline.py: the precise loop timer and the per-direction delay lines (real loop, short)."""
from __future__ import annotations

import asyncio
import time

from gateway.core.models.latency import ScheduledJitterLatency
from sim_exchange.delayline import DelayLine, PreciseTimer


def _run(coro):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_never_early_order_kept_and_then_runs_after_the_bytes():
    async def main():
        timer = PreciseTimer(asyncio.get_running_loop())
        got: list[tuple[bytes, float]] = []
        line = DelayLine(timer, ScheduledJitterLatency(2000, 1500, "normal", seed=4),
                         lambda d: got.append((d, time.monotonic())))
        sent = {}
        for i in range(40):
            data = b"m%d" % i
            sent[data] = time.monotonic()
            line.push(data)
            await asyncio.sleep(0.0002)
        closed = asyncio.get_running_loop().create_future()
        line.then(lambda: closed.set_result(len(got)))
        assert await asyncio.wait_for(closed, 2) == 40          # after every byte pushed before it
        timer.close()
        return got, sent

    got, sent = _run(main())
    assert [d for d, _ in got] == [b"m%d" % i for i in range(40)]   # jitter never reorders
    assert all(t - sent[d] >= 0 for d, t in got)
    # the mean injected delay is there (jitter drawn per push, dues kept monotonic)
    assert sum(t - sent[d] for d, t in got) / len(got) >= 0.0015


def test_zero_delay_is_inline_and_close_drops_pending():
    async def main():
        timer = PreciseTimer(asyncio.get_running_loop())
        got: list[bytes] = []
        zero = DelayLine(timer, ScheduledJitterLatency(), got.append)
        zero.push(b"now")
        assert got == [b"now"]                                   # no loop round trip at zero
        slow = DelayLine(timer, ScheduledJitterLatency(50_000, 0, "none"), got.append)
        slow.push(b"later")
        slow.close()
        await asyncio.sleep(0.08)
        timer.close()
        return got

    assert _run(main()) == [b"now"]


def test_sub_millisecond_delay_is_accurate_on_the_loop():
    """Printed, loosely bounded: asyncio's own timers would give ~1 ms here."""
    async def main():
        timer = PreciseTimer(asyncio.get_running_loop())
        errs = []
        line = DelayLine(timer, ScheduledJitterLatency(300, 0, "none"),
                         lambda t0: errs.append((time.monotonic() - t0) * 1e6 - 300))
        for _ in range(60):
            line.push(time.monotonic())
            await asyncio.sleep(0.002)
        timer.close()
        return sorted(errs)

    errs = _run(main())
    print(f"300 us delay: error p50 {errs[len(errs) // 2]:.0f} us, max {errs[-1]:.0f} us")
    assert errs[0] >= -1 and errs[len(errs) // 2] < 400


def test_learned_lateness_tracks_its_quantile_and_comes_down_after_a_loaded_moment():
    """The estimate follows the wake-up lateness against what the timerfd was armed for
    (compensated or not) to its LATENESS_QUANTILE; one very late wake-up moves it by one
    bounded step. (The old estimate measured uncompensated wake-ups against the compensated
    target and stuck at its cap.)"""
    import random

    from sim_exchange.delayline import LATENESS_QUANTILE
    timer = PreciseTimer.__new__(PreciseTimer)       # the learning rule only: no loop, no fd
    timer.lateness = 200e-6
    rng = random.Random(1)
    for i in range(3000):                             # lateness uniform in 10..30 us
        timer._target = 10.0 if i % 2 else 10.0 - timer.lateness   # uncompensated / compensated
        timer._learn_lateness(timer._target + rng.uniform(10e-6, 30e-6))
    expected = 10e-6 + LATENESS_QUANTILE * 20e-6
    assert abs(timer.lateness - expected) < 3e-6, timer.lateness
    before = timer.lateness
    timer._learn_lateness(timer._target + 5e-3)       # one loaded moment
    assert timer.lateness - before < 2e-6


def test_delivery_errors_are_recorded_and_summarised():
    from collections import deque

    from sim_exchange.delayline import error_stats

    async def main():
        timer = PreciseTimer(asyncio.get_running_loop())
        errors: deque = deque(maxlen=100)
        got: list[bytes] = []
        line = DelayLine(timer, ScheduledJitterLatency(200, 0, "none"), got.append, errors)
        for i in range(5):
            line.push(b"%d" % i)
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)
        timer.close()
        return got, errors

    got, errors = _run(main())
    assert len(got) == 5 and len(errors) == 5 and min(errors) >= 0     # never early
    stats = error_stats(errors)
    assert stats["n"] == 5 and stats["p1"] >= 0 and error_stats([]) == {"n": 0}


def test_bytes_skip_the_line_only_at_zero_delay_with_nothing_pending():
    async def main():
        timer = PreciseTimer(asyncio.get_running_loop())
        model = ScheduledJitterLatency()
        got: list[bytes] = []
        line = DelayLine(timer, model, got.append)
        assert line.straight()                                  # zero now, nothing scheduled
        model.set(20_000)
        assert not line.straight()                              # a delay now: through the line
        line.push(b"slow")
        model.set(0)
        assert not line.straight()                              # zero again, but b"slow" waits: order kept
        await asyncio.sleep(0.05)
        assert got == [b"slow"] and line.straight()
        scheduled = DelayLine(timer, ScheduledJitterLatency(0, 0, "none", [(60.0, 300, 0)],
                                                            clock=time.monotonic), got.append)
        assert not scheduled.straight()                         # a step to come: the line applies it
        line.close()
        assert not line.straight()
        timer.close()

    _run(main())
