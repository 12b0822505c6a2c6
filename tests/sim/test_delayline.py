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
