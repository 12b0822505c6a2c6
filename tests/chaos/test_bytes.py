"""Bytes-safe end to end, and parse by tag: through a real gateway process to simulated
venues (both venue engines).

- an OMS NewOrderSingle and its cancel whose ClOrdIDs hold bytes 0x80-0xFF come back in
  the OMS's reports with exactly those bytes (11 and 41), and the order reached the venue;
- an OrderCancelRequest carrying ``35=D...`` inside SecureData(91) (length in 90) is a
  cancel request: the order is canceled and no second order reaches the venue.
"""
from __future__ import annotations

import pytest

from gateway.fix.raw import utc_now
from tests.chaos.harness import ChaosStack

HIGH = bytes(range(0x80, 0x100))


@pytest.fixture(params=["native", "quickfix"])
def stack(request, tmp_path):
    s = ChaosStack(tmp_path)
    s.start_sim("a", [{"name": "BV", "engine": request.param}])
    s.start_gateway(clients=[{"comp_id": "OMS1", "password": "p1"}], routing={"default_venue": "BV"})
    yield s
    s.stop()


def _reports(oms, cl: bytes, timeout: float = 5.0) -> list:
    out = []
    while True:
        m = oms.recv_until(lambda m: m.get(35) in (b"8", b"9") and m.get(11) == cl, timeout=timeout)
        out.append(m)
        if m.get(35) == b"9" or m.get(39) in (b"2", b"4", b"8", b"C"):
            return out
        if m.get(39) == b"0" and m.get(150) == b"0":
            return out


def test_high_bytes_clordid_round_trip_and_securedata_cancel(stack):
    oms = stack.oms("OMS1", extra=[(554, "p1")])
    cl = b"HB-" + HIGH[:64]
    cl2 = b"HB2-" + HIGH[64:]
    oms.send("D", [(11, cl), (55, "AAPL"), (54, "1"), (38, 10), (40, "2"), (44, "189.50"), (59, "0"),
                   (60, utc_now())])
    (ack,) = _reports(oms, cl)
    assert (ack.get(35), ack.get(150), ack.get(39), ack.get(11)) == (b"8", b"0", b"0", cl), ack
    oms.send("F", [(11, cl2), (41, cl), (55, "AAPL"), (54, "1"), (38, 10), (60, utc_now())])
    *pending, cxl = _reports(oms, cl2)            # the gateway may say PendingCancel (6) first
    assert all(m.get(150) == b"6" and m.get(11) == cl2 for m in pending), pending
    assert (cxl.get(35), cxl.get(150), cxl.get(39), cxl.get(11), cxl.get(41)) == (b"8", b"4", b"4", cl2, cl), cxl
    stats = stack.stop_sim_stats("a")["BV"]
    assert stats["new_order_ids"] == 1 and stats["cancels"] == 1, stats


def test_securedata_holding_a_new_order_is_a_cancel(stack):
    """SecureData(91) holding a whole NewOrderSingle, sent as an OrderCancelRequest."""
    oms = stack.oms("OMS1", extra=[(554, "p1")])
    cl3, cl4 = b"SD-order", b"SD-cancel"
    oms.send("D", [(11, cl3), (55, "AAPL"), (54, "1"), (38, 10), (40, "2"), (44, "189.40"), (59, "0"),
                   (60, utc_now())])
    assert _reports(oms, cl3)[-1].get(39) == b"0"
    evil = b"35=D\x0111=EVIL\x0155=AAPL\x0154=1\x0138=7\x0140=2\x0144=190.01\x0159=0\x01"
    oms.send("F", [(11, cl4), (41, cl3), (55, "AAPL"), (54, "1"), (38, 10), (60, utc_now())],
             header=[(90, len(evil)), (91, evil)])
    first = oms.recv_until(lambda m: m.get(35) in (b"8", b"9", b"3", b"j"), timeout=5)
    assert (first.get(35), first.get(11), first.get(41)) == (b"8", cl4, cl3), f"not treated as a cancel: {first}"
    last = _reports(oms, cl4)[-1] if first.get(39) != b"4" else first
    assert (last.get(150), last.get(39), last.get(11), last.get(41)) == (b"4", b"4", cl4, cl3), last
    st = stack.status()
    stats = stack.stop_sim_stats("a")["BV"]
    assert stats["new_order_ids"] == 1 and stats["new_orders_fresh"] == 1, stats
    assert stats["cancels"] == 1, stats
    assert st["risk"]["state"] == "ACTIVE"
