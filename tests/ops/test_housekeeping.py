"""WallTimer (fires at wall-clock moments, once each), DayEnd (next day end in a zone, on
chosen days) and JournalKeeper (compaction when over the limit and quiet)."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from gateway.apps.housekeeping import DayEnd, JournalKeeper, WallTimer
from gateway.fix.transport import new_event_loop

NY = ZoneInfo("America/New_York")


def test_wall_timer_fires_each_moment_once():
    async def main():
        start = time.time()
        moments = [start + 0.05, start + 0.1]
        fired = []
        nxt = lambda t: next((m for m in moments if m > t), None)   # noqa: E731
        timer = WallTimer(asyncio.get_running_loop(), nxt, lambda: fired.append(time.time()), name="t").start()
        for _ in range(100):
            if len(fired) == 2 and timer.due is None:
                break
            await asyncio.sleep(0.01)
        timer.cancel()
        assert len(fired) == 2 and fired[0] >= moments[0] - 0.002 and fired[1] >= moments[1] - 0.002
    loop = new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(main(), 5))
    finally:
        loop.close()


def test_wall_timer_survives_a_failing_chore():
    async def main():
        start = time.time()
        calls = []

        def boom():
            calls.append(1)
            raise RuntimeError("chore failed")
        nxt = lambda t: start + 0.02 if t < start + 0.02 else (start + 0.04 if t < start + 0.04 else None)  # noqa: E731
        WallTimer(asyncio.get_running_loop(), nxt, boom).start()
        await asyncio.sleep(0.15)
        assert len(calls) == 2
    loop = new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(main(), 5))
    finally:
        loop.close()


def test_day_end_next_moment_in_zone_and_days():
    d = DayEnd(time="17:00", time_zone="America/New_York", days=["Mon", "Tue", "Wed", "Thu", "Fri"])
    fri_noon = datetime(2026, 12, 11, 12, 0, tzinfo=NY).timestamp()
    assert d.next_at(fri_noon) == datetime(2026, 12, 11, 17, 0, tzinfo=NY).timestamp()
    fri_6pm = datetime(2026, 12, 11, 18, 0, tzinfo=NY).timestamp()
    assert d.next_at(fri_6pm) == datetime(2026, 12, 14, 17, 0, tzinfo=NY).timestamp()   # Monday
    assert DayEnd(time="00:00").next_at(fri_6pm) > fri_6pm
    with pytest.raises(ValidationError):
        DayEnd(time="17:00", time_zone="Nowhere/Town")


class FakeJournal:
    next_n = 10


class FakeCore:
    def __init__(self):
        self.size, self.calls, self.journal = 10, [], FakeJournal()

    def journal_size(self):
        return self.size

    def compact(self, keep_old=True):
        self.calls.append(keep_old)
        self.size = 1
        self.journal.next_n = 2
        return True, "journal compacted"


def test_journal_keeper_waits_for_size_and_quiet():
    core = FakeCore()
    keeper = JournalKeeper(core, max_bytes=50)
    assert keeper.at_start() == (True, "journal compacted") and keeper.compactions == 1
    assert keeper.at_start()[0] is False          # one record (the snapshot): nothing to gain
    core.size = 100
    core.journal.next_n = 40                      # records written since the last check
    assert keeper.check() is None                 # over the limit but not quiet
    assert keeper.check() == (True, "journal compacted")
    assert keeper.check() is None                 # under the limit again
    assert "over 50 bytes" in keeper.last_result
