"""Small helpers for the gateway's FIX edges (oms.py, venues.py): field text without per-order work.

Prices and quantities repeat (the same levels, the same lot sizes), so their FIX text is
cached: ``NUM[value]`` is a plain dict hit (C speed, no Python call) instead of a float
format and two strips; only a value not seen before runs ``codec.fix_number``. An
ExecutionReport has five to eight of them.

``transact_time()`` is ``codec.utc_timestamp(time.time(), 6)`` (which formats the date and
second once a second).
"""
from __future__ import annotations

import time

from gateway.fix.codec import fix_number, utc_timestamp

MAX_CACHED = 100_000      # distinct numbers kept; beyond that the cache starts again


class NumberText(dict):
    """value -> its FIX text (``codec.fix_number``); filled on first use, bounded."""

    def __missing__(self, value: float) -> str:
        text = fix_number(value)
        if len(self) >= MAX_CACHED:
            self.clear()
        self[value] = text
        return text


NUM = NumberText()


def num(value: float) -> str:
    """``codec.fix_number(value)``, cached by value (``NUM[value]`` in hot code)."""
    return NUM[value]


def transact_time() -> str:
    """UTC now as a FIX UTCTimestamp to the microsecond: YYYYMMDD-HH:MM:SS.ssssss."""
    return utc_timestamp(time.time(), 6)
