"""Small helpers for the gateway's FIX edges (oms.py, venues.py): field text without per-order work.

Prices and quantities repeat (the same levels, the same lot sizes), so their FIX text is
cached: ``NUM[value]`` is a plain dict hit (C speed, no Python call) instead of a float
format and two strips; only a value not seen before runs ``codec.fix_number``. An
ExecutionReport has five to eight of them.

``transact_time()`` is ``codec.utc_timestamp(time.time(), 6)`` in integer arithmetic: the
date-and-second text is made once a second, the microseconds are added by string
concatenation (a ``:06d`` format spec costs more than the rest together).
"""
from __future__ import annotations

import time
from time import time_ns

from gateway.fix.codec import fix_number

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


_second: tuple[int, str] = (-1, "")      # (epoch second, "YYYYMMDD-HH:MM:SS."): one tuple, never half-updated


def transact_time() -> str:
    """UTC now as a FIX UTCTimestamp to the microsecond: YYYYMMDD-HH:MM:SS.ssssss."""
    global _second
    sec, ns = divmod(time_ns(), 1_000_000_000)
    cached, text = _second
    if sec != cached:
        text = time.strftime("%Y%m%d-%H:%M:%S.", time.gmtime(sec))
        _second = (sec, text)
    return text + str(ns // 1000 + 1_000_000)[1:]      # 1xxxxxx -> the microseconds as six digits
