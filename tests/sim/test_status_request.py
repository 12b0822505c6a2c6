"""OrderStatusRequest (35=H) on both venue engines: ExecType I with the order's current
state, OrdStatus 8 "unknown order" for an order the venue never saw, OrdStatusReqID(790)
echoed; and the venue's per-ClOrdID NewOrderSingle counters and fill counters."""
from __future__ import annotations

import pytest

from sim_helpers import client, quiet_venue, reports, send_order

NOW = "20260101-00:00:00.000"


def status(c, cl_ord_id, req_id=None, order_id=None, symbol="T1", side="1"):
    fields = [(11, cl_ord_id)] + ([(37, order_id)] if order_id else []) + [(55, symbol), (54, side)]
    if req_id is not None:
        fields.append((790, req_id))
    c.send("H", fields)
    want = cl_ord_id.encode("latin-1")
    return c.recv_until(lambda m: m.get(35) == b"8" and m.get(150) == b"I" and m.get(11) == want, timeout=3.0)


def test_status_of_resting_filled_replaced_and_unknown_orders(exchange_factory, ports):
    ex = exchange_factory([quiet_venue("ALPHA", ports[0])])
    with client(ports[0], "ALPHA") as c:
        # a resting Day buy of 10 at 99.50: New, leaves 10
        rest = send_order(c, "T1", "1", 10, "99.50")
        (ack,) = reports(c, rest, n=1)
        r = status(c, rest, req_id="Q1")
        assert (r.get(150), r.get(39), r.get(14), r.get(151), r.get(37), r.get(790)) == (
            b"I", b"0", b"0", b"10", ack.get(37), b"Q1")
        assert r.get(17) and r.get(55) == b"T1" and r.get(54) == b"1"
        # 790 absent: not invented
        assert status(c, rest).get(790) is None
        # partially filled Day order: 150 at 100.00 takes the 100 offered, 50 rest
        part = send_order(c, "T1", "1", 150, "100.00")
        reports(c, part, n=2)
        r = status(c, part, req_id="Q2")
        assert (r.get(39), r.get(14), r.get(151), r.get(6)) == (b"1", b"100", b"50", b"100")
        # replaced: the status is found under the new ClOrdID and the old one
        c.send("G", [(11, "R" + rest), (41, rest), (55, "T1"), (54, "1"), (38, 20), (40, "2"), (44, "99.40"),
                     (59, "0"), (60, NOW)])
        (rep,) = reports(c, "R" + rest, n=1)
        assert rep.get(150) == b"5"
        for cid in ("R" + rest, rest):
            r = status(c, cid)
            assert (r.get(39), r.get(38), r.get(151), r.get(11)) == (b"0", b"20", b"20", cid.encode())
        # canceled
        c.send("F", [(11, "X" + rest), (41, "R" + rest), (55, "T1"), (54, "1"), (38, 20), (60, NOW)])
        reports(c, "X" + rest)
        assert status(c, rest).get(39) == b"4"
        # unknown: OrdStatus 8, text "unknown order", our ClOrdID and request id echoed
        r = status(c, "never-sent", req_id="Q3", order_id="XYZ")
        assert (r.get(150), r.get(39), r.get(58), r.get(790), r.get(37), r.get(14), r.get(151)) == (
            b"I", b"8", b"unknown order", b"Q3", b"XYZ", b"0", b"0")
        # found by OrderID when the ClOrdID is not one of the order's
        r = status(c, "other-id", order_id=ack.get(37).decode())
        assert (r.get(39), r.get(37)) == (b"4", ack.get(37))
    st = ex.venue("ALPHA").snapshot_stats()
    assert st["status_requests"] == 8 and st["callback_errors"] == 0
    assert st["new_order_ids"] == 2 and st["new_order_dupes"] == {}
    assert st["client_fills"] == {"CLIENT": {"T1": 100.0}}


def test_status_of_a_bytes_clordid_and_duplicate_counter(exchange_factory, ports, sim_engine):
    if sim_engine == "quickfix":
        # Known gap: the quickfix venue cannot even acknowledge a NewOrderSingle whose ClOrdID
        # is not UTF-8 (the binding's getField/Message(str) round trip fails; the report is
        # counted in publish_errors and never sent). Bytes-safety is the native venue's.
        pytest.skip("quickfix venue: ClOrdIDs that are not UTF-8 cannot be answered (binding)")
    ex = exchange_factory([quiet_venue("ALPHA", ports[0])])
    cl = "B\x80\xa0\xff-" + "x"
    with client(ports[0], "ALPHA") as c:
        fields = [(11, cl.encode("latin-1")), (55, "T1"), (54, "2"), (38, 5), (40, "2"), (44, "101"),
                  (59, "0"), (60, NOW)]
        c.send("D", fields)
        (ack,) = reports(c, cl, n=1)
        assert ack.get(11) == cl.encode("latin-1")
        c.send("H", [(11, cl.encode("latin-1")), (55, "T1"), (54, "2"), (790, b"S\xe9")])
        r = c.recv_until(lambda m: m.get(150) == b"I", timeout=3.0)
        assert (r.get(11), r.get(39), r.get(790)) == (cl.encode("latin-1"), b"0", b"S\xe9")
        c.send("D", fields)                       # the same ClOrdID again, no PossDup: a second order
        (rej,) = reports(c, cl, n=1)
        assert rej.get(150) == b"8"
    st = ex.venue("ALPHA").snapshot_stats()
    assert st["new_order_dupes"] == {"CLIENT:" + cl: 2}
