"""SessionSchedule: QuickFIX's StartTime/EndTime/StartDay/EndDay/TimeZone/LogonTime/LogoutTime."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from gateway.fix.schedule import SessionSchedule

NY = ZoneInfo("America/New_York")


def ny(*args) -> float:
    return datetime(*args, tzinfo=NY).timestamp()


def utc(*args) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


FX_WEEK = SessionSchedule(start_day="Sun", start_time="17:00:00", end_day="Fri", end_time="17:00:00",
                          time_zone="America/New_York")


def test_weekly_fx_session_in_and_out():
    # 2026-12-06 is a Sunday
    assert not FX_WEEK.is_in_session(ny(2026, 12, 6, 16, 59, 59))
    assert FX_WEEK.is_in_session(ny(2026, 12, 6, 17, 0, 0))
    assert FX_WEEK.is_in_session(ny(2026, 12, 9, 3, 0))           # Wednesday night
    assert FX_WEEK.is_in_session(ny(2026, 12, 11, 16, 59, 59))    # Friday before the close
    assert not FX_WEEK.is_in_session(ny(2026, 12, 11, 17, 0, 0))  # half-open: the end is out
    assert not FX_WEEK.is_in_session(ny(2026, 12, 12, 12, 0))     # Saturday


def test_weekly_instance_identity_and_next_times():
    mon, thu = ny(2026, 12, 7, 9, 0), ny(2026, 12, 10, 9, 0)
    assert FX_WEEK.same_session(mon, thu)
    assert FX_WEEK.session_start(mon) == ny(2026, 12, 6, 17, 0)
    next_mon = ny(2026, 12, 14, 9, 0)
    assert not FX_WEEK.same_session(mon, next_mon)
    assert FX_WEEK.next_end(mon) == ny(2026, 12, 11, 17, 0)
    assert FX_WEEK.next_start(mon) == ny(2026, 12, 13, 17, 0)
    sat = ny(2026, 12, 12, 12, 0)
    assert FX_WEEK.session_start(sat) is None
    assert FX_WEEK.next_start(sat) == ny(2026, 12, 13, 17, 0)
    assert FX_WEEK.next_end(sat) == ny(2026, 12, 18, 17, 0)


def test_dst_keeps_local_time():
    # US DST ends 2026-11-01: the Sunday open is 17:00 New York on both sides (22:00 / 23:00 UTC)
    before = FX_WEEK.session_start(ny(2026, 10, 27, 12, 0))
    after = FX_WEEK.session_start(ny(2026, 11, 3, 12, 0))
    assert datetime.fromtimestamp(before, timezone.utc).hour == 21
    assert datetime.fromtimestamp(after, timezone.utc).hour == 22


def test_daily_default_is_whole_day_utc():
    s = SessionSchedule()
    t = utc(2026, 12, 1, 15, 0)
    assert s.is_in_session(t)
    assert s.session_start(t) == utc(2026, 12, 1)
    assert s.next_end(t) == utc(2026, 12, 2)
    assert not s.same_session(utc(2026, 12, 1, 23, 59), utc(2026, 12, 2, 0, 1))


def test_daily_overnight_window():
    s = SessionSchedule(start_time="17:00", end_time="08:00", time_zone="UTC")
    assert s.is_in_session(utc(2026, 12, 1, 3, 0))
    assert not s.is_in_session(utc(2026, 12, 1, 12, 0))
    assert s.same_session(utc(2026, 12, 1, 18, 0), utc(2026, 12, 2, 7, 0))
    assert s.next_start(utc(2026, 12, 1, 12, 0)) == utc(2026, 12, 1, 17, 0)


def test_logon_window_inside_the_session():
    s = SessionSchedule(start_time="08:00", end_time="18:00", logon_time="08:30", logout_time="17:30")
    assert s.is_in_session(utc(2026, 12, 1, 8, 10)) and not s.is_logon_time(utc(2026, 12, 1, 8, 10))
    assert s.is_logon_time(utc(2026, 12, 1, 9, 0))
    assert not s.is_logon_time(utc(2026, 12, 1, 17, 45))
    assert s.next_logon_start(utc(2026, 12, 1, 17, 45)) == utc(2026, 12, 2, 8, 30)
    assert s.next_boundary(utc(2026, 12, 1, 9, 0)) == utc(2026, 12, 1, 17, 30)


def test_config_errors_name_the_problem():
    with pytest.raises(ValidationError, match="time zone"):
        SessionSchedule(time_zone="Mars/Olympus")
    with pytest.raises(ValidationError, match="go together"):
        SessionSchedule(start_day="Sun")
    with pytest.raises(ValidationError, match="unknown day"):
        SessionSchedule(start_day="Funday", end_day="Fri")
