"""Risk News messages validate against the FIX 4.4 dictionary the sessions use."""
from __future__ import annotations

import quickfix as fix

from gateway.fix.quickfix_backend import dictionary_path
from gateway.core.model import RiskReject
from gateway.apps.server.news import reject_fields, reset_news, trip_news


def _validate(msg: fix.Message) -> fix.Message:
    dd = fix.DataDictionary(str(dictionary_path()))
    msg.getHeader().setField(49, "GW")
    msg.getHeader().setField(56, "OMS1")
    msg.getHeader().setField(34, "1")
    msg.getHeader().setField(52, "20260101-00:00:00.000")
    parsed = fix.Message(msg.toString(), dd, True)
    dd.validate(parsed)       # raises on a missing or misplaced field
    return parsed


def test_trip_news_carries_the_reason_and_validates():
    reason = "rolling loss: PnL fell 510.00 within 1s (now -510.00) > loss_threshold 500 " + "x" * 1000
    msg = _validate(trip_news(reason))
    assert msg.getField(148) == "KILL SWITCH: trading halted"
    assert msg.getField(33) == "2"
    text = msg.toString()
    assert "loss_threshold 500" in text


def test_reset_news_validates():
    assert "alice" in _validate(reset_news("alice")).toString()


def test_reject_fields():
    assert reject_fields(RiskReject("max_order_qty", "max_order_qty: 5 > limit 1", 3)) == \
        ((103, "3"), (58, "max_order_qty: 5 > limit 1"))
