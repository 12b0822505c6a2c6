"""``BusyPoll`` (``busy_poll_us``): after a read the loop keeps polling without sleeping for
the window, then stops by itself; every engine on one loop shares one instance; a session
pair with it on behaves as without it."""
from __future__ import annotations

import asyncio
import time

from transport_helpers import Recorder, run
from test_transport import pair

from gateway.fix.transport import BusyPoll, Limits


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_polls_for_the_window_after_a_read_then_stops():
    async def main():
        loop = asyncio.get_running_loop()
        clock = Clock()
        bp = BusyPoll(loop, 0.001, clock)
        bp.touch()
        assert bp.spinning and bp.until == 100.001
        for _ in range(5):                      # inside the window: one callback stays ready
            await asyncio.sleep(0)
            assert bp.spinning
        clock.t = 100.0009
        bp.touch()                              # a read inside the window extends it
        clock.t = 100.0015
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert bp.spinning                      # 100.0015 < 100.0019
        clock.t = 100.002
        for _ in range(3):
            await asyncio.sleep(0)
        assert not bp.spinning                  # the window passed without a read: the loop may sleep
        bp.touch()
        assert bp.spinning                      # and the next read starts it again
        clock.t = 101.0
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not bp.spinning
    run(main())


def test_one_instance_per_loop_with_the_longest_window_and_none_when_off():
    async def main():
        loop = asyncio.get_running_loop()
        assert BusyPoll.of(loop, 0) is None
        a = BusyPoll.of(loop, 200)
        b = BusyPoll.of(loop, 1000)
        assert a is b and a.window_s == 0.001
        assert BusyPoll.of(loop, 50) is a and a.window_s == 0.001
    run(main())
    other = asyncio.new_event_loop()
    try:
        assert BusyPoll.of(other, 100).loop is other
    finally:
        other.close()


def test_a_session_pair_with_busy_polling_logs_on_exchanges_and_the_loop_goes_quiet():
    async def main():
        venue_app, client_app = Recorder(), Recorder()
        venue, client = await pair(venue_app, client_app, initiator_kw={"busy_poll_us": 2000},
                                   acceptor_kw={"busy_poll_us": 2000})
        try:
            gw = await client.wait_logged_on()
            assert client.busy is venue.busy is not None        # one loop, one instance
            assert gw.send_test_request("BP-1")
            await client_app.wait(lambda: any(m.get(112) == "BP-1" for m in client_app.admin),
                                  what="the Heartbeat answering BP-1")
            deadline = time.monotonic() + 2.0
            while client.busy.spinning and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            assert not client.busy.spinning                     # idle again once reads stop
        finally:
            await client.stop()
            await venue.stop()
    run(main())


def test_the_option_is_validated_like_every_limit():
    assert Limits.from_options({"busy_poll_us": 500}).busy_poll_us == 500
    assert Limits().busy_poll_us == 0
