"""Small helpers for the gateway's FIX edges (oms.py, venues.py): field text without per-order work.

Prices and quantities repeat (the same levels, the same lot sizes), so their FIX text is
cached: ``num(value)`` is one dict hit instead of a float format and two strips; only a
value not seen before runs ``codec.fix_number``. An ExecutionReport has five to eight of
them. (Compiled with mypyc, ``num`` is a native call; see gateway/common/accel.py.)

``transact_time()`` is ``codec.utc_timestamp(time.time(), 6)`` (which formats the date and
second once a second).
"""
from __future__ import annotations

import time
from typing import Final

from gateway.fix.codec import fix_number, utc_timestamp

MAX_CACHED: Final = 100_000      # distinct numbers kept; beyond that the cache starts again

NUM: Final[dict[float, str]] = {}     # value -> its FIX text, filled by ``num``


def num(value: float) -> str:
    """``codec.fix_number(value)``, cached by value."""
    text = NUM.get(value)
    if text is None:
        text = fix_number(value)
        if len(NUM) >= MAX_CACHED:
            NUM.clear()
        NUM[value] = text
    return text


def transact_time() -> str:
    """UTC now as a FIX UTCTimestamp to the microsecond: YYYYMMDD-HH:MM:SS.ssssss."""
    return utc_timestamp(time.time(), 6)
