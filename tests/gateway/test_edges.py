"""The gateway's FIX edges without sockets (oms.py, venues.py, wire.py): an order in, its venue
NewOrderSingle, the venue's fill, the OMS's ExecutionReport; every body validates against the
FIX 4.4 dictionary (ours and quickfix's) and any latin-1 byte of a field passes through."""
from __future__ import annotations

import math
import random
import re
import struct
import time

import pytest

from gateway.apps.server.app import Gateway
from gateway.apps.server.config import GatewayConfig
from gateway.apps.server.wire import (MAX_CACHED, MAX_ORDER_FIELDS, NUM, ORDER_FIELDS, FieldReader, num,
                                     order_fields, required, to_float, transact_time, value_at)
from gateway.common.configfile import validate_config
from gateway.common.paths import FIX44_XML
from gateway.fix.codec import Message, encode, fix_number, parse, utc_timestamp
from gateway.fix.dictionary import Dictionary

OMS_KEY, VENUE_KEY = "FIX.4.4:FIXGW->OMS1", "FIX.4.4:FIXGW->ALPHA"


class Handle:
    """A logged-on session handle that keeps what is sent."""

    def __init__(self, key: str, target: str) -> None:
        self.key, self.sender_comp_id, self.target_comp_id = key, "FIXGW", target
        self.logged_on, self.next_sender_seq, self.next_target_seq = True, 1, 1
        self.sent: list[tuple[str, str, str]] = []

    def send(self, msg_type: str, body: str, *, extra_header: str = "") -> bool:
        self.sent.append((msg_type, body, extra_header))
        return True

    def send_test_request(self, test_req_id: str) -> bool:
        return True


@pytest.fixture
def gw(tmp_path):
    cfg = validate_config({"store_dir": str(tmp_path), "oms": {"port": 1, "clients": [{"comp_id": "OMS1"}]},
                           "venues": [{"name": "ALPHA", "port": 2}], "admin": {"port": 0},
                           "routing": {"policy": "dma", "default_venue": "ALPHA"}}, GatewayConfig)
    gw = Gateway(cfg)
    gw.oms_handle, gw.venue_handle = Handle(OMS_KEY, "OMS1"), Handle(VENUE_KEY, "ALPHA")
    gw.oms.handles = {OMS_KEY: gw.oms_handle}
    gw.venues.attach({VENUE_KEY: gw.venue_handle})
    gw.oms.on_logon(gw.oms_handle)
    gw.market.on_venue_up("ALPHA", gw.venue_handle)
    vs = gw.venues.venues["ALPHA"]
    vs.logged_on, vs.state = True, "logged_on"
    yield gw
    gw.core.close()


def msg(msg_type: str, *fields: tuple[int, str]) -> Message:
    return Message([(8, "FIX.4.4"), (35, msg_type), (34, "2"), *fields, (10, "000")], msg_type=msg_type)


def nos(cl_ord_id: str, *extra: tuple[int, str], symbol: str = "AAPL", qty: str = "100", price: str = "190.5"):
    return msg("D", (11, cl_ord_id), (55, symbol), (54, "1"), (38, qty), (40, "2"), (44, price), (59, "0"),
               (60, "20260101-00:00:00"), *extra)


def validated(msg_type: str, body: str, sender: str = "FIXGW", target: str = "OMS1") -> Message:
    """The body as a whole message, checked by our dictionary and (ASCII only: its Python binding
    hands str to C++ as UTF-8, which changes the length of a latin-1 byte above 127) quickfix's."""
    wire = encode("FIX.4.4", msg_type, f"49={sender}\x0156={target}\x0134=7\x0152={utc_timestamp(time.time())}\x01",
                  body)
    m = parse(wire)
    Dictionary.load(FIX44_XML).validate(m)
    if not wire.isascii():
        return m
    import quickfix as fix
    dd = fix.DataDictionary(str(FIX44_XML))
    dd.validate(fix.Message(wire.decode("latin-1"), dd, True))
    return m


def test_an_order_and_its_fill_through_both_edges_keep_every_byte(gw):
    cl_ord_id, symbol = "ordre-\xe9\xff\x7f=1", "\xc4BC"          # any byte but SOH may be in a field
    gw.oms.on_message(gw.oms_handle, nos(cl_ord_id, symbol=symbol, qty="100.0", price="190.50"))
    msg_type, body, _ = gw.venue_handle.sent[-1]
    assert msg_type == "D"
    out = validated("D", body, target="ALPHA")
    assert out[55] == symbol and out[38] == "100" and out[44] == "190.5" and out[40] == "2" and out[59] == "0"
    assert re.fullmatch(r"\d{8}-\d\d:\d\d:\d\d\.\d{6}", out[60])
    venue_cl_ord_id = out[11]

    gw.venues.on_message(gw.venue_handle, msg(
        "8", (37, "V\xe91"), (11, venue_cl_ord_id), (17, "X1"), (150, "F"), (39, "2"), (55, symbol), (54, "1"),
        (38, "100"), (32, "100"), (31, "190.5"), (151, "0"), (14, "100"), (6, "190.5"), (58, "voil\xe0")))
    reports = [(t, b) for t, b, _ in gw.oms_handle.sent if t == "8"]
    er = validated("8", reports[-1][1])
    assert er[11] == cl_ord_id and er[55] == symbol and er[150] == "F" and er[39] == "2"
    assert (er[32], er[31], er[151], er[14], er[6], er[38], er[44]) == ("100", "190.5", "0", "100", "190.5",
                                                                          "100", "190.5")
    assert er[37].startswith("O") and 41 not in er and 103 not in er


def test_a_possdup_order_is_answered_with_its_status_not_routed_twice(gw):
    gw.oms.on_message(gw.oms_handle, nos("c1"))
    routed = len(gw.venue_handle.sent)
    gw.oms.on_message(gw.oms_handle, nos("c1", (43, "Y")))
    assert len(gw.venue_handle.sent) == routed
    er = validated("8", gw.oms_handle.sent[-1][1])
    assert er[11] == "c1" and er[150] == "I"
    gw.oms.on_message(gw.oms_handle, nos("c1"))            # not marked: a duplicate ClOrdID, rejected
    er = validated("8", gw.oms_handle.sent[-1][1])
    assert er[150] == "8" and er[103] == "6" and "duplicate ClOrdID" in er[58]


def test_a_status_request_echoes_its_id_and_an_unsupported_value_names_its_tag(gw):
    gw.oms.on_message(gw.oms_handle, nos("c1"))
    gw.oms.on_message(gw.oms_handle, msg("H", (790, "q\xe97"), (11, "c1"), (55, "AAPL"), (54, "1")))
    er = validated("8", gw.oms_handle.sent[-1][1])
    assert er[150] == "I" and er[790] == "q\xe97"
    bad = msg("D", (11, "c2"), (55, "AAPL"), (54, "1"), (38, "1"), (40, "2"), (44, "1"), (59, "6"))
    gw.oms.on_message(gw.oms_handle, bad)
    msg_type, body, _ = gw.oms_handle.sent[-1]
    reject = validated("j", body)
    assert msg_type == "j" and reject[380] == "0" and reject[372] == "D" and "tag 59" in reject[58]


def test_a_cancel_goes_to_the_venue_and_its_confirmation_back_with_origclordid(gw):
    gw.oms.on_message(gw.oms_handle, nos("c1"))
    venue_id = parse_body(gw.venue_handle.sent[-1][1])[11]
    gw.venues.on_message(gw.venue_handle, msg("8", (37, "V1"), (11, venue_id), (17, "X1"), (150, "0"), (39, "0"),
                                              (151, "100"), (14, "0"), (6, "0")))
    gw.oms.on_message(gw.oms_handle, msg("F", (11, "k1"), (41, "c1"), (55, "AAPL"), (54, "1"), (38, "100")))
    msg_type, body, _ = gw.venue_handle.sent[-1]
    cancel = validated("F", body, target="ALPHA")
    assert msg_type == "F" and cancel[41] == venue_id and cancel[37] == "V1"
    gw.venues.on_message(gw.venue_handle, msg("8", (37, "V1"), (11, cancel[11]), (41, venue_id), (17, "X2"),
                                              (150, "4"), (39, "4"), (151, "0"), (14, "0"), (6, "0")))
    er = validated("8", gw.oms_handle.sent[-1][1])
    assert er[150] == "4" and er[11] == "k1" and er[41] == "c1"


def parse_body(body: str) -> dict[int, str]:
    return {int(t): v for t, v in (f.split("=", 1) for f in body.split("\x01") if f)}


def test_number_text_is_fix_number_and_bounded():
    for value in (0.0, -0.0, 1.0, 100, 190.01, 1e-7, 123456789.123, -5.25, 0.1 + 0.2):
        assert num(value) == fix_number(value) == (NUM[value] if value else "0")   # zero: without the cache
    NUM.clear()
    for i in range(MAX_CACHED + 10):
        num(i + 0.5)
    assert len(NUM) <= MAX_CACHED


def test_order_fields_and_numbers_read_are_cached_by_value_and_bounded():
    assert order_fields("AAPL", "1", 100.0, "2", 190.01, "3") == "55=AAPL\x0154=1\x0138=100\x0140=2\x0144=190.01\x0159=3\x01"
    assert order_fields("AAPL", "2", 5.0, "1", None, "0") == "55=AAPL\x0154=2\x0138=5\x0140=1\x0159=0\x01"
    assert ORDER_FIELDS[("AAPL", "2", 5.0, "1", None, "0")] == order_fields("AAPL", "2", 5.0, "1", None, "0")
    ORDER_FIELDS.clear()
    for i in range(MAX_ORDER_FIELDS + 10):
        order_fields("X", "1", i + 0.5, "2", 1.0, "3")
    assert len(ORDER_FIELDS) <= MAX_ORDER_FIELDS


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def test_to_float_is_float_bit_for_bit_and_raises_as_it_does():
    texts = ["100", "190.01", "1e-7", "-0", "-0.0", "0", "0.0", "0.1", ".5", "5.", "-1.25", "+3", " 7", "7 ",
             "123456789012345", "1234567890123456", "0.000000000000001", "999999999999999.9", "1_000",
             "inf", "-inf", "nan", "1E5", "00012.50", "-.5", "12345678901234.5"]
    rng = random.Random(7)
    for _ in range(20_000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 15)))
        cut = rng.randint(0, len(digits))
        text = digits[:cut] + "." + digits[cut:] if rng.random() < 0.7 else digits
        texts.append(("-" if rng.random() < 0.2 else "") + text)
    for text in texts:
        expected = float(text)
        got = to_float(text)
        assert _bits(got) == _bits(expected) or (math.isnan(got) and math.isnan(expected)), text
    for bad in ("1.2.3", "", "-", ".", "-.", "1-2", "abc", "1.2e"):
        with pytest.raises(ValueError):
            to_float(bad)


def test_a_field_reader_reads_what_get_reads_with_or_without_a_layout():
    reader = FieldReader((11, 41, 55, 58))
    parsed = parse(encode("FIX.4.4", "8", "49=V\x0156=G\x0134=1\x01", "11=A\x0155=X\x0111=B\x0158=t\x01"))
    built = Message.build("8", [(11, "A"), (55, "X"), (11, "B"), (58, "t")])
    assert parsed.shape is not None and built.shape is None
    for msg in (parsed, built, parsed):
        at = reader.positions(msg)
        assert [value_at(msg, i) for i in at] == [msg.get(t) for t in reader.tags] == ["A", None, "X", "t"]
        assert required(msg, at[0], 11) == "A"
        with pytest.raises(KeyError):
            required(msg, at[1], 41)


def test_transact_time_is_a_utc_timestamp_of_now():
    before = utc_timestamp(time.time(), 6)
    text = transact_time()
    after = utc_timestamp(time.time(), 6)
    assert re.fullmatch(r"\d{8}-\d\d:\d\d:\d\d\.\d{6}", text)
    assert before <= text <= after


def test_the_edges_hand_events_to_the_dispatcher_natively_and_to_any_other_sink_as_given(gw):
    """``wire.native_sink``: an edge given ``dispatcher.submit`` calls the dispatcher's ``submit``
    directly; another callable (or a sink replaced later) is called as it is."""
    from gateway.apps.server.wire import native_sink
    assert native_sink(gw.dispatcher.submit) is gw.dispatcher
    assert native_sink(lambda ev: None) is None and native_sink(print) is None
    assert gw.oms._to is gw.dispatcher and gw.venues._to is gw.dispatcher
    gw.oms.on_message(gw.oms_handle, nos("native-1"))
    assert gw.venue_handle.sent[-1][0] == "D"                     # the core routed it: the native path
    seen: list = []
    gw.oms.sink = gw.venues.sink = seen.append                    # replaced: the new sink gets the events
    gw.oms.on_message(gw.oms_handle, nos("native-2"))
    venue_cl_ord_id = validated("D", gw.venue_handle.sent[-1][1], target="ALPHA")[11]
    gw.venues.on_message(gw.venue_handle, msg(
        "8", (37, "V1"), (11, venue_cl_ord_id), (17, "X1"), (150, "0"), (39, "0"), (55, "AAPL"), (54, "1"),
        (38, "100"), (151, "100"), (14, "0"), (6, "0")))
    assert [type(e).__name__ for e in seen] == ["OmsNewOrder", "VenueExecutionReport"]
