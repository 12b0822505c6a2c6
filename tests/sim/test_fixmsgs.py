"""Everything the venue sends validates against fix_specs/FIX44.xml (the gateway's quickfix checks it)."""
from __future__ import annotations

import pytest
import quickfix as fix

from gateway.common.clock import FakeClock
from gateway.fix.quickfix_backend import dictionary_path
from sim_exchange import fixmsgs
from gateway.core.matching.engine import BUY, DAY, IOC, LIMIT, MARKET, SELL, Instrument, MatchingEngine
from gateway.core.matching.events import CancelReject, ExecReport
from gateway.core.matching.marketdata import Subscription

DD = fix.DataDictionary(str(dictionary_path()))


def wire(msg: fix.Message) -> str:
    h = msg.getHeader()
    h.setField(49, "ALPHA")
    h.setField(56, "CLIENT")
    h.setField(34, "7")
    h.setField(52, "20260101-00:00:00.000")
    return msg.toString()


def validate(msg: fix.Message) -> fix.Message:
    parsed = fix.Message(wire(msg), DD, True)
    DD.validate(parsed)
    return parsed


@pytest.fixture
def engine():
    eng = MatchingEngine([Instrument("EURUSD", 0.00001, 1.1)], FakeClock(), "ALPHA")
    eng.new_order("m", "s1", "EURUSD", SELL, 50, LIMIT, 1.10001, DAY)
    eng.new_order("m", "b1", "EURUSD", BUY, 50, LIMIT, 1.09999, DAY)
    return eng


def test_every_execution_report_kind_validates(engine):
    events = []
    events += engine.new_order("c", "1", "EURUSD", BUY, 80, LIMIT, 1.10001, IOC)     # new, fill, cancel
    events += engine.new_order("c", "2", "EURUSD", BUY, 10, LIMIT, 1.100001, DAY)    # reject
    events += engine.new_order("c", "3", "EURUSD", SELL, 5, MARKET, None, DAY)       # market fill
    events += engine.new_order("c", "4", "EURUSD", BUY, 10, LIMIT, 1.09, DAY)
    events += engine.replace("c", "5", "4", 8, 1.09)
    events += engine.cancel("c", "6", "5")
    events += engine.cancel("c", "7", "nope")
    ers = [e for e in events if isinstance(e, ExecReport)]
    assert {e.exec_type for e in ers} >= {"0", "F", "4", "8", "5"}
    for er in ers:
        parsed = validate(fixmsgs.execution_report(er, "ALPHA"))
        assert parsed.getField(150) == er.exec_type
    (cr,) = [e for e in events if isinstance(e, CancelReject)]
    validate(fixmsgs.cancel_reject(cr))


def test_market_data_messages_validate_and_keep_group_order(engine):
    engine.new_order("c", "t", "EURUSD", BUY, 10, LIMIT, 1.10001, IOC)              # a last trade
    sub = Subscription("r1", ["EURUSD"], 0)
    snap = validate(fixmsgs.snapshot("r1", "EURUSD", sub.snapshot(engine, "EURUSD")))
    assert snap.getField(268) == "3"
    engine.new_order("c", "u", "EURUSD", BUY, 40, LIMIT, 1.10001, IOC)              # deletes the offer
    engine.new_order("c", "v", "EURUSD", BUY, 7, LIMIT, 1.09998, DAY)               # a new bid level
    text = wire(fixmsgs.incremental("r1", sub.update(engine, "EURUSD")))
    DD.validate(fix.Message(text, DD, True))
    assert sub.update(engine, "EURUSD") == []                                       # nothing new
    assert "279=2\x01269=1\x0155=EURUSD\x01270=1.10001\x01" in text
    assert "279=0\x01269=0\x0155=EURUSD\x01270=1.09998\x01271=7\x01" in text
    validate(fixmsgs.md_reject("r2", "unknown symbol XYZ"))


def test_validation_catches_a_bad_value(engine):
    er = next(e for e in engine.new_order("c", "1", "EURUSD", BUY, 1, LIMIT, 1.0, DAY) if isinstance(e, ExecReport))
    msg = fixmsgs.execution_report(er, "ALPHA")
    msg.setField(150, "Z")
    with pytest.raises(fix.IncorrectTagValue):
        validate(msg)


def test_number_formatting():
    assert [fixmsgs.fmt_num(v) for v in (100, 1.1, 1.1000000000000001, 60000.0, 0.0, 190.05)] == [
        "100", "1.1", "1.1", "60000", "0", "190.05"]


# ---------------------------------------------------------------- the native venue's text bodies

def validate_text(msg_type: str, body: str) -> fix.Message:
    """A native body, framed with a header, through quickfix's DataDictionary (the gateway's
    check) and the native engine's own Dictionary."""
    from gateway.fix.codec import encode, parse
    from gateway.fix.dictionary import Dictionary
    frame = encode("FIX.4.4", msg_type, "34=7\x0149=ALPHA\x0152=20260101-00:00:00.000\x0156=CLIENT\x01", body)
    Dictionary.load().validate(parse(frame), strict_group_order=True)
    parsed = fix.Message(frame.decode("latin-1"), DD, True)
    DD.validate(parsed)
    return parsed


def test_native_bodies_validate_like_the_quickfix_messages(engine):
    from sim_exchange import fixtext
    events = engine.new_order("c", "1", "EURUSD", BUY, 80, LIMIT, 1.10001, IOC)
    events += engine.new_order("c", "2", "EURUSD", BUY, 10, LIMIT, 1.100001, DAY)
    events += engine.new_order("c", "4", "EURUSD", BUY, 10, LIMIT, 1.09, DAY)
    events += engine.replace("c", "5", "4", 8, 1.09)
    events += engine.cancel("c", "7", "nope")
    for er in [e for e in events if isinstance(e, ExecReport)]:
        assert validate_text("8", fixtext.execution_report(er, "ALPHA")).getField(150) == er.exec_type
    (cr,) = [e for e in events if isinstance(e, CancelReject)]
    validate_text("9", fixtext.cancel_reject(cr))
    sub = Subscription("r1", ["EURUSD"], 0)
    validate_text("W", fixtext.snapshot("r1", "EURUSD", sub.snapshot(engine, "EURUSD")))
    engine.new_order("c", "v", "EURUSD", BUY, 7, LIMIT, 1.09998, DAY)
    body = fixtext.incremental("r1", sub.update(engine, "EURUSD"))
    validate_text("X", body)
    assert "279=0\x01269=0\x0155=EURUSD\x01270=1.09998\x01271=7\x01" in body
    validate_text("Y", fixtext.md_reject("r2", "unknown symbol XYZ"))
    empty = Subscription("r3", ["EURUSD"], 0)
    validate_text("W", fixtext.snapshot("r3", "EURUSD", []))
    assert empty.req_id == "r3"
