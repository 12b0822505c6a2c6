"""Wall-clock chores of the gateway process: session ends, the trading-day end, journal compaction.

- ``WallTimer``: call ``fire()`` at wall-clock moments given by ``next_at(now)`` (a venue
  schedule's end, the configured day end), on the process's asyncio loop. Long waits are
  cut into at most ``MAX_SLEEP_S`` so a wall clock that jumps (NTP step, a VM resumed) is
  noticed within that.
- ``DayEnd``: the ``day_end`` config (time of day in a time zone, optionally on some days
  only) -> the next moment it happens.
- ``JournalKeeper``: compaction of the order journal at a safe point: once after start-up
  replay, then whenever the journal is over ``max_bytes`` at a quiet moment (no journal
  record since the previous check). The core decides whether now is safe (``GatewayCore.compact``).
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import time as dtime
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.fix.schedule import SessionSchedule, parse_day, utc_iso

log = logging.getLogger("gateway.housekeeping")
MAX_SLEEP_S = 3600.0


class WallTimer:
    """``fire()`` at each ``next_at(wall())`` on ``loop``; re-armed after each firing."""

    def __init__(self, loop: asyncio.AbstractEventLoop, next_at: Callable[[float], float | None],
                 fire: Callable[[], Any], *, name: str = "timer", wall: Callable[[], float] = time.time) -> None:
        self.loop, self.next_at, self.fire, self.name, self.wall = loop, next_at, fire, name, wall
        self._handle: asyncio.TimerHandle | None = None
        self._due: float | None = None
        self.fired = 0

    @property
    def due(self) -> float | None:
        """The wall-clock time (UTC epoch s) of the next firing, or None."""
        return self._due

    def start(self) -> "WallTimer":
        self._arm(self.next_at(self.wall()))
        return self

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._due = None

    def _arm(self, due: float | None) -> None:
        self._due = due
        if due is None:
            return
        delay = min(max(due - self.wall(), 0.0), MAX_SLEEP_S)
        self._handle = self.loop.call_later(delay, self._wake)

    def _wake(self) -> None:
        self._handle = None
        now = self.wall()
        if self._due is not None and now + 0.0005 < self._due:
            self._arm(self._due)              # a long wait cut short, or the clock moved: not yet
            return
        try:
            self.fire()
            self.fired += 1
        except Exception:  # noqa: BLE001 - a chore failing once must not stop its later runs
            log.exception("%s failed", self.name)
        # strictly after the moment just served, so one moment fires once
        self._arm(self.next_at(max(now, self._due or now) + 0.001))


class DayEnd(BaseModel):
    """``day_end = { time = "17:00:00", time_zone = "America/New_York", days = ["Mon", ...] }``:
    open Day orders are canceled at their venue and expired to the OMS at that moment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: dtime
    time_zone: str = "UTC"
    days: tuple[int, ...] = Field(default=(), description="weekdays it applies to (default: every day)")

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, v: Any) -> tuple[int, ...]:
        return tuple(parse_day(d) for d in (v or ()))

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        SessionSchedule(time_zone=v)          # same check, same message
        return v

    def next_at(self, t: float) -> float:
        """The first day end strictly after ``t``."""
        sched = SessionSchedule(start_time=self.time, end_time=self.time, time_zone=self.time_zone)
        at = sched.next_start(t)
        for _ in range(8):                    # bounded: a week has a wanted day if days is not empty
            if not self.days or _weekday(at, self.time_zone) in self.days:
                return at
            at = sched.next_start(at)
        return at


def _weekday(t: float, zone: str) -> int:
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo
    return datetime.fromtimestamp(t, timezone.utc if zone == "UTC" else ZoneInfo(zone)).weekday()


class JournalKeeper:
    """Compacts the order journal at safe, quiet points (see the module docstring).

    Quiet means: no journal record written since the previous ``check()`` (the caller runs
    it from a timer every ``quiet_s``), so nothing is added to the order path."""

    def __init__(self, core: Any, max_bytes: int, quiet_s: float = 1.0, keep_old: bool = True) -> None:
        self.core, self.max_bytes, self.quiet_s, self.keep_old = core, max_bytes, quiet_s, keep_old
        self._last_n = self._records()
        self.compactions = 0
        self.last_result = ""

    def _records(self) -> int:
        return getattr(getattr(self.core, "journal", None), "next_n", 0)

    def at_start(self) -> tuple[bool, str]:
        if self._records() <= 2:          # empty, or one record (a snapshot already): nothing to gain
            return False, "journal not compacted: it holds at most one record"
        result = self._compact("after start-up replay")
        self._last_n = self._records()
        return result

    def check(self) -> tuple[bool, str] | None:
        """Call from a timer: compacts if the journal is over the limit and the flow is quiet."""
        n = self._records()
        quiet, self._last_n = n == self._last_n, n
        if not quiet or self.max_bytes <= 0 or self.core.journal_size() <= self.max_bytes:
            return None
        result = self._compact(f"journal over {self.max_bytes} bytes")
        self._last_n = self._records()
        return result

    def _compact(self, why: str) -> tuple[bool, str]:
        done, text = self.core.compact(keep_old=self.keep_old)
        self.last_result = f"{utc_iso(time.time())} {why}: {text}"
        if done:
            self.compactions += 1
        log.info("%s: %s", why, text)
        return done, text
