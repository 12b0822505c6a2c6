"""Small helpers for the gateway's FIX edges (oms.py, venues.py): field text without per-order work.

Prices and quantities repeat (the same levels, the same lot sizes), so their FIX text is
cached: ``num(value)`` is one dict hit instead of a float format and two strips; only a
value not seen before runs ``codec.fix_number``. An ExecutionReport has five to eight of
them. The other way, ``to_float(text)`` is ``float(text)`` cached by the text. (Compiled
with mypyc, ``num`` is a native call; see gateway/common/accel.py.)

``FieldReader(tags)`` reads the edges' fields of parsed messages by position: the positions
of its tags are worked out once per layout (``codec.Shape``, shared by every message with the
same tags), so a message's ten or twelve fields cost one check of its layout, not a lookup each.

``order_fields(...)`` is an order's 55/54/38/40/[44]/59 text, made once per distinct order
(symbol, side, quantity, type, price, time in force) and reused by every NewOrderSingle to a
venue and every ExecutionReport to the OMS that carries the same figures.

``transact_time()`` is ``codec.utc_timestamp(time.time(), 6)``, the date and second formatted
once a second, the microseconds by integer arithmetic on ``time.time_ns()`` and two table reads.
"""
from __future__ import annotations

from time import time_ns as _clock_time_ns
from typing import Any, Final

from gateway.common.clock import DIGITS3, SecondText
from gateway.core.orders import OmsOrder
from gateway.fix.codec import Message, Shape, fix_number, utc_timestamp

class EventSink:
    """What the two edges hand their decoded events to: ``Dispatcher`` (dispatch.py). An edge
    given ``dispatcher.submit`` keeps the dispatcher too (``native_sink``) and calls its
    ``submit`` natively when compiled, where the bound method is a Python-level call (argument
    parsing, a frame of glue) per event. Declared here, below both edges and the dispatcher,
    as dispatch.py imports the edges."""

    def submit(self, event: object) -> None:
        raise NotImplementedError


def native_sink(sink: Any) -> EventSink | None:
    """The ``EventSink`` whose ``submit`` ``sink`` is (a bound method), else None (any other callable)."""
    owner = getattr(sink, "__self__", None)
    if isinstance(owner, EventSink) and getattr(sink, "__name__", "") == "submit":
        return owner
    return None


MAX_CACHED: Final = 100_000      # distinct numbers kept; beyond that the cache starts again
MAX_ORDER_FIELDS: Final = 50_000   # distinct order figures whose text is kept
MAX_LAYOUTS: Final = 256         # message layouts whose field positions a FieldReader keeps

NUM: Final[dict[float, str]] = {}     # value -> its FIX text, filled by ``num``
FLOATS: Final[dict[str, float]] = {}  # FIX text -> its value, filled by ``to_float``
# (symbol, side, qty, ord_type, price, tif) -> "55=..\x0154=..\x0138=..\x0140=..\x01[44=..\x01]59=..\x01"
ORDER_FIELDS: Final[dict[tuple[str, str, float, str, float | None, str], str]] = {}


def num(value: float) -> str:
    """``codec.fix_number(value)``, cached by value (zero, every filled order's LeavesQty, without
    the float's hash and the dict)."""
    if value == 0.0:
        return "0"
    text = NUM.get(value)
    if text is None:
        text = fix_number(value)
        if len(NUM) >= MAX_CACHED:
            NUM.clear()
        NUM[value] = text
    return text


def to_float(text: str) -> float:
    """``float(text)``, cached by text (prices and quantities repeat); raises ValueError as float does.
    "0" (a fill's LeavesQty, an ack's CumQty) without the dict. (A digit-by-digit reader, exact,
    measured ~10% slower compiled than this cache: the text's hash and one lookup.)"""
    if text == "0":
        return 0.0
    value = FLOATS.get(text)
    if value is None:
        value = float(text)
        if len(FLOATS) >= MAX_CACHED:
            FLOATS.clear()
        FLOATS[text] = value
    return value


class FieldReader:
    """Chosen tags of parsed messages, read by position. ``positions(msg)`` gives, for each tag
    of ``tags`` in order, the index of its first occurrence in the message's fields (-1 when absent):
    what ``msg.get(tag)`` reads. Worked out once per layout (``msg.shape``, interned by the
    codec, never changed) and kept (bounded); the last layout is checked first (a venue sends
    its acks and fills, an OMS its orders, over and over). A message without a layout (built,
    or parsed the careful way) gets its positions by a walk of its pairs."""

    def __init__(self, tags: tuple[int, ...]) -> None:
        self.tags = tags
        self.last_shape: Shape | None = None
        self.last_at: list[int] = []
        self.layouts: dict[Shape, list[int]] = {}

    def positions(self, msg: Message) -> list[int]:
        shape = msg.shape
        if shape is None:
            return self._walk(msg.pairs)
        if shape is self.last_shape:
            return self.last_at
        at = self.layouts.get(shape)
        if at is None:
            pos = shape.pos
            at = [pos.get(tag, -1) for tag in self.tags]
            if len(self.layouts) >= MAX_LAYOUTS:
                self.layouts.clear()
            self.layouts[shape] = at
        self.last_shape, self.last_at = shape, at
        return at

    def _walk(self, pairs: list[tuple[int, str]]) -> list[int]:
        tags = self.tags
        at = [-1] * len(tags)
        for i in range(len(pairs)):
            t = pairs[i][0]
            for k in range(len(tags)):
                if tags[k] == t and at[k] < 0:
                    at[k] = i
        return at


def value_at(msg: Message, i: int) -> str | None:
    """The value at position ``i`` of ``FieldReader.positions(msg)``: None when absent (-1). The
    one place the edges read a message's value by position."""
    if i < 0:
        return None
    if msg.shape is not None:         # positions from the layout: the parsed values (no pairs built)
        values = msg.values
        assert values is not None     # a layout always comes with its values (codec.Message)
        return values[i]
    return msg.pairs[i][1]


def required(msg: Message, i: int, tag: int) -> str:
    """The value at position ``i``; KeyError(tag) when absent, as ``msg[tag]`` raises."""
    value = value_at(msg, i)
    if value is None:
        raise KeyError(tag)
    return value


def intent_fields(order: OmsOrder) -> str:
    """``order_fields`` of the order's intent, kept on the order (``OmsOrder.wire_fields``): made
    once per order (or taken from its venue order's NewOrderSingle, same figures), not per report."""
    intent = order.intent
    if order.wire_intent is intent:
        return order.wire_fields
    text = order_fields(intent.symbol, intent.side, intent.qty, intent.ord_type, intent.price, intent.tif)
    order.wire_fields, order.wire_intent = text, intent
    return text


def order_fields(symbol: str, side: str, qty: float, ord_type: str, price: float | None, tif: str) -> str:
    """Symbol(55), Side(54), OrderQty(38), OrdType(40), Price(44) when given, TimeInForce(59)."""
    key = (symbol, side, qty, ord_type, price, tif)
    text = ORDER_FIELDS.get(key)
    if text is None:
        text = (f"55={symbol}\x0154={side}\x0138={num(qty)}\x0140={ord_type}\x01"
                + (f"44={num(price)}\x01" if price is not None else "") + f"59={tif}\x01")
        if len(ORDER_FIELDS) >= MAX_ORDER_FIELDS:
            ORDER_FIELDS.clear()
        ORDER_FIELDS[key] = text
    return text


_time_ns: Final = _clock_time_ns    # a static when compiled: no module dict read per message
_NOW: Final = SecondText()       # "YYYYMMDD-HH:MM:SS." of the current second
_D3: Final[tuple[str, ...]] = DIGITS3   # "000".."999", a typed static when compiled (no module dict read)


def transact_time() -> str:
    """UTC now as a FIX UTCTimestamp to the microsecond: YYYYMMDD-HH:MM:SS.ssssss; the same text
    as ``codec.utc_timestamp(time.time(), 6)`` (rounded to the microsecond, never up into the
    next second), the date and time of day formatted once a second."""
    ns = _time_ns()
    sec = ns // 1_000_000_000
    last_sec, text = _NOW.pair
    if sec != last_sec:
        text = utc_timestamp(float(sec), 0) + "."
        _NOW.pair = (sec, text)
    micros = (ns % 1_000_000_000 + 500) // 1000
    if micros > 999_999:
        micros = 999_999
    return f"{text}{_D3[micros // 1000]}{_D3[micros % 1000]}"
