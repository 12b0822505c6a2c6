"""The native venue's message bodies, exactly (both implementations: tests/foundation/test_accel.py
runs this file again compiled or pure). Numbers go out without float noise or a trailing '.0'
whether the engine's events hold them as int (pure) or float (compiled)."""
from __future__ import annotations

import pytest

from gateway.common.clock import FakeClock
from gateway.core.matching.engine import BUY, DAY, IOC, LIMIT, SELL, Instrument, MatchingEngine
from gateway.core.matching.events import ExecReport
from sim_exchange import fixtext


@pytest.fixture
def engine() -> MatchingEngine:
    return MatchingEngine([Instrument("EURUSD", 0.00001, 1.1)], FakeClock(), "ALPHA")


def fields(body: str) -> list[str]:
    assert body.endswith("\x01")
    return body[:-1].split("\x01")


def test_ack_and_ioc_cancel_bodies(engine):
    ack, cancel = engine.new_order("c", "A1", "EURUSD", BUY, 100, LIMIT, 1.09, IOC)
    f = fields(fixtext.execution_report(ack, "ALPHA"))
    assert f[:15] == ["37=ALPHA-1", "11=A1", "17=ALPHA-E1", "150=0", "39=0", "55=EURUSD", "54=1", "38=100",
                      "40=2", "44=1.09", "59=3", "14=0", "151=100", "6=0", f[14]]
    assert f[14].startswith("60=") and len(f) == 15
    f = fields(fixtext.execution_report(cancel, "ALPHA"))
    assert f[1:4] == ["11=A1", "17=ALPHA-E2", "150=4"]
    assert "151=0" in f and "58=no liquidity" in f


def test_fill_carries_last_px_last_qty_and_venue(engine):
    engine.new_order("m", "S1", "EURUSD", SELL, 30, LIMIT, 1.10002, DAY)
    events = engine.new_order("c", "B1", "EURUSD", BUY, 50, LIMIT, 1.10005, DAY)
    fills = [e for e in events if isinstance(e, ExecReport) and e.exec_type == "F" and e.owner == "c"]
    (fill,) = fills
    body = fixtext.execution_report(fill, "ALPHA")
    assert "\x0114=30\x01151=20\x016=1.10002\x01" in body
    assert "\x0131=1.10002\x0132=30\x0130=ALPHA\x01" in body
    assert "38=50\x01" in body and "44=1.10005\x01" in body


def test_reject_text_is_cleaned_and_status_request_echoed(engine):
    (rej,) = engine.new_order("c", "R\x01X", "NOPE", BUY, 1, LIMIT, 1.0, DAY)
    body = fixtext.execution_report(rej, "ALPHA", status_req_id="Q7")
    assert "\x01103=1\x01" in body and "58=unknown symbol\x01" in body and "790=Q7\x01" in body
    assert "11=R\x01X\x01" in body                        # ids pass through as given


def test_whole_ticks_price_like_to_price(engine):
    for tick in (0.00001, 0.0001, 0.001, 0.01, 0.05, 0.25, 0.5, 1.0, 0.3, 0.07):
        inst = Instrument("X", tick, 1.0)
        for ticks in (0, 1, 3, 7, 110000, 109999, 123457, 10**6 + 1):
            assert inst.tick_price(ticks) == inst.to_price(ticks), (tick, ticks)
