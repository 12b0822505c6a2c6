"""SessionSchedule: when a FIX session may be up, and which session instance a moment is in.

Sans-IO: every method takes a wall-clock time (UTC epoch seconds) and answers; nothing
reads a clock. The names and meaning are QuickFIX's session time settings:

==================  ==========================  =============================================
QuickFIX            here                        meaning
==================  ==========================  =============================================
StartTime/EndTime   ``start_time``/``end_time`` time of day the session starts / ends
StartDay/EndDay     ``start_day``/``end_day``   weekly session (both or neither): Sun 17:00 ->
                                                Fri 17:00 is one session a week, not five
TimeZone            ``time_zone``               IANA name (zoneinfo); times are local to it,
                                                so 17:00 New York stays 17:00 across DST
LogonTime/          ``logon_time``/             a narrower window inside the session in which
LogoutTime          ``logout_time``             the initiator logs on and the acceptor accepts
                                                a Logon (default: the session's own times);
                                                past the logout time a logged-on session
                                                logs out
==================  ==========================  =============================================

A *session instance* is one run of the window: ``session_start(t)`` is the moment the
window containing ``t`` opened (None outside the schedule). QuickFIX resets the store
(sequence numbers back to 1) when the store's creation time and now are not in the same
instance; so do we (``same_session``), which gives "sequence reset at session start".

Windows are half-open, [start, end). ``end_time == start_time`` (and, weekly, the same
day) is a session of a whole day (week) that ends and restarts at that moment: the
gateway's former hard-coded schedule, 00:00:00 UTC, is ``SessionSchedule()``. (QuickFIX
compares calendar dates for that daily case; with StartTime 00:00:00 the two agree.)

Example (FX week, a daily maintenance logout 16:58-17:05 would be logon/logout times)::

    [[venues]]
    schedule = { start_day = "Sun", start_time = "17:00:00", end_day = "Fri",
                 end_time = "17:00:00", time_zone = "America/New_York" }
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

DAY_NAMES = ("mo", "tu", "we", "th", "fr", "sa", "su")    # Python's weekday(): Monday = 0


def parse_day(value: object) -> int | None:
    """'Sun', 'sunday', 'SU' (QuickFIX: the first two letters count) or 0-6 (Monday = 0)."""
    if value is None or isinstance(value, int):
        if isinstance(value, int) and not 0 <= value <= 6:
            raise ValueError(f"day number must be 0 (Monday) .. 6 (Sunday), got {value}")
        return value
    text = str(value).strip().lower()[:2]
    if text not in DAY_NAMES:
        raise ValueError(f"unknown day {value!r}; use Mon, Tue, Wed, Thu, Fri, Sat or Sun")
    return DAY_NAMES.index(text)


class _Range:
    """One recurring window [start, end): daily, or weekly when days are given."""

    __slots__ = ("start", "end", "start_day", "end_day", "tz")

    def __init__(self, start: time, end: time, start_day: int | None, end_day: int | None, tz) -> None:
        self.start, self.end, self.start_day, self.end_day, self.tz = start, end, start_day, end_day, tz

    @property
    def weekly(self) -> bool:
        return self.start_day is not None

    def _at(self, d: date, t: time) -> float:
        return datetime.combine(d, t, tzinfo=self.tz).timestamp()

    def window(self, t: float) -> tuple[float, float]:
        """The window that opened most recently at or before ``t`` (it may have closed)."""
        local = datetime.fromtimestamp(t, self.tz)
        d = local.date()
        period = 7 if self.weekly else 1
        if self.weekly:
            d -= timedelta(days=(local.weekday() - self.start_day) % 7)
        start = self._at(d, self.start)
        if start > t:
            d -= timedelta(days=period)
            start = self._at(d, self.start)
        # the end, by calendar arithmetic (DST keeps local times local)
        days = (self.end_day - self.start_day) % 7 if self.weekly else 0
        end_d = d + timedelta(days=days)
        end = self._at(end_d, self.end)
        if end <= start:
            end = self._at(end_d + timedelta(days=period), self.end)
        return start, end

    def contains(self, t: float) -> bool:
        start, end = self.window(t)
        return start <= t < end

    def next_start(self, t: float) -> float:
        """The first window start strictly after ``t``."""
        start, _ = self.window(t)
        local = datetime.fromtimestamp(start, self.tz).date()
        nxt = self._at(local + timedelta(days=7 if self.weekly else 1), self.start)
        if nxt <= t:   # DST edge: a local time that does not exist jumps forward; step once more
            nxt = self._at(local + timedelta(days=14 if self.weekly else 2), self.start)
        return nxt


class SessionSchedule(BaseModel):
    """When a session runs. All fields optional: the default is a daily session at 00:00 UTC.

    Parameters
    ----------
    start_time, end_time : "HH:MM[:SS]" local to ``time_zone``.
    start_day, end_day : weekly session when given (both or neither): "Sun" .. "Sat".
    time_zone : IANA zone name ("America/New_York"); default "UTC".
    logon_time, logout_time : the logon window inside the session (default: start/end).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_time: time = time(0, 0, 0)
    end_time: time = time(0, 0, 0)
    start_day: int | None = None
    end_day: int | None = None
    time_zone: str = "UTC"
    logon_time: time | None = None
    logout_time: time | None = None

    @field_validator("start_day", "end_day", mode="before")
    @classmethod
    def _day(cls, v: object) -> int | None:
        return parse_day(v)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as 'America/New_York')") from None
        return v

    @model_validator(mode="after")
    def _days_together(self) -> "SessionSchedule":
        if (self.start_day is None) != (self.end_day is None):
            raise ValueError("start_day and end_day go together (a weekly session needs both)")
        return self

    # -- the two ranges (built on demand; frozen models cannot cache in fields)
    @property
    def _tz(self):
        return timezone.utc if self.time_zone == "UTC" else ZoneInfo(self.time_zone)

    @property
    def _session(self) -> _Range:
        return _Range(self.start_time, self.end_time, self.start_day, self.end_day, self._tz)

    @property
    def _logon(self) -> _Range | None:
        if self.logon_time is None and self.logout_time is None:
            return None
        return _Range(self.logon_time or self.start_time, self.logout_time or self.end_time,
                      self.start_day, self.end_day, self._tz)

    # -- questions
    def is_in_session(self, t: float) -> bool:
        """``t`` (UTC epoch seconds) is inside a session window."""
        return self._session.contains(t)

    def is_logon_time(self, t: float) -> bool:
        """Inside the session and inside the logon window: a logon may happen / stay up."""
        logon = self._logon
        return self.is_in_session(t) and (logon is None or logon.contains(t))

    def session_start(self, t: float) -> float | None:
        """The session instance ``t`` is in (the moment its window opened), or None outside."""
        start, end = self._session.window(t)
        return start if start <= t < end else None

    def same_session(self, t1: float, t2: float) -> bool:
        """Both moments are in the same session instance (QuickFIX's isInSameRange)."""
        s1 = self.session_start(t1)
        return s1 is not None and s1 == self.session_start(t2)

    def next_start(self, t: float) -> float:
        """The next moment a session window opens, strictly after ``t``."""
        return self._session.next_start(t)

    def next_end(self, t: float) -> float:
        """The end of the window ``t`` is in, or of the next one when ``t`` is outside."""
        start, end = self._session.window(t)
        if start <= t < end:
            return end
        return self._session.window(self.next_start(t))[1]

    def next_logon_start(self, t: float) -> float:
        """``t`` itself when a logon may happen now, else the next moment one may."""
        if self.is_logon_time(t):
            return t
        logon = self._logon
        # Bounded: each candidate is a later window start; the two ranges realign within a period.
        cand = t
        for _ in range(16):
            nxt = min(self.next_start(cand), logon.next_start(cand) if logon else float("inf"))
            if self.is_logon_time(nxt):
                return nxt
            cand = nxt
        return self.next_start(t)

    def next_boundary(self, t: float) -> float:
        """The next moment after ``t`` at which ``is_logon_time`` or the instance may change."""
        cands = [self.next_start(t), self.next_end(t)]
        logon = self._logon
        if logon is not None:
            start, end = logon.window(t)
            cands += [logon.next_start(t), end if end > t else logon.window(logon.next_start(t))[1]]
        return min(c for c in cands if c > t)

    def describe(self) -> str:
        days = f"{DAY_NAMES[self.start_day].title()} " if self.start_day is not None else ""
        end_days = f"{DAY_NAMES[self.end_day].title()} " if self.end_day is not None else ""
        text = f"{days}{self.start_time} - {end_days}{self.end_time} {self.time_zone}"
        if self._logon is not None:
            text += f" (logon {self.logon_time or self.start_time} - {self.logout_time or self.end_time})"
        return text


def utc_iso(t: float) -> str:
    """Epoch seconds -> '2026-12-01T15:00:00Z' (for logs and status)."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
