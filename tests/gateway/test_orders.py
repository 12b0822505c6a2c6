"""The order state machine (sans-IO): every OMS order ends exactly once, figures stay consistent."""
from __future__ import annotations

import dataclasses
import itertools

import pytest

from gateway.core import journal as J
from gateway.core.journal import Journal, replay
from gateway.core.model import BUY, DAY, IOC, LIMIT, SELL, ChildOrder, OrderIntent
from gateway.core.orders import (CANCELED, EXPIRED, FILLED, NEW, PARTIAL, PENDING_CANCEL, REJECTED, REPLACED,
                                 TRADE, OrderManager, RejectOmsCancel, ReportToOms, RouteRemainder, SendCancel,
                                 SendNewOrder, SendReplace, VenueExecutionReport)

S = "FIX.4.4:FIXGW->OMS1"
_ids = itertools.count(1)


def vid():
    return f"V{next(_ids)}"


def intent(cid="c1", qty=100.0, px=10.0, tif=IOC, side=BUY):
    return OrderIntent(S, cid, "AAPL", side, qty, LIMIT, px, tif)


def ex(child_id, et, status, cum, leaves, avg=0.0, last_qty=0.0, last_px=0.0, venue="ALPHA", text=None,
       orig=None):
    return VenueExecutionReport(venue=venue, cl_ord_id=child_id, orig_cl_ord_id=orig, exec_id=f"X{next(_ids)}",
                                exec_type=et, ord_status=status, cum_qty=cum, leaves_qty=leaves, avg_px=avg,
                                last_qty=last_qty, last_px=last_px, venue_order_id="VO1", text=text)


def route(om, it, *venues_qty):
    children = [ChildOrder(v, q, it.price, LIMIT, it.tif) for v, q in venues_qty] or [
        ChildOrder("ALPHA", it.qty, it.price, LIMIT, it.tif)]
    ids = [vid() for _ in children]
    outs = om.accept(it, f"O{next(_ids)}", children, ids)
    assert [type(o) for o in outs] == [SendNewOrder] * len(children)
    return om.by_oms[(S, it.cl_ord_id)], ids


def execs(outs):
    return [o for o in outs if isinstance(o, ReportToOms)]


def test_fill_in_two_parts_keeps_cum_leaves_avg():
    om = OrderManager()
    order, (v,) = route(om, intent(tif=DAY))
    assert execs(om.on_venue_exec(ex(v, NEW, NEW, 0, 100)))[0].exec_type == NEW
    e1 = execs(om.on_venue_exec(ex(v, TRADE, PARTIAL, 40, 60, 10.0, 40, 10.0)))[0]
    assert (e1.ord_status, e1.cum_qty, e1.leaves_qty, e1.last_qty, e1.last_mkt) == (PARTIAL, 40, 60, 40, "ALPHA")
    e2 = execs(om.on_venue_exec(ex(v, TRADE, FILLED, 100, 0, 10.06, 60, 10.1)))[0]
    assert (e2.ord_status, e2.cum_qty, e2.leaves_qty) == (FILLED, 100, 0)
    assert e2.avg_px == pytest.approx(10.06)
    assert order.done and not om.open and om.counts["filled"] == 1


def test_ioc_partial_then_remainder_canceled_is_one_terminal_report():
    om = OrderManager()
    order, (v,) = route(om, intent())
    om.on_venue_exec(ex(v, TRADE, PARTIAL, 30, 70, 10.0, 30, 10.0))
    outs = execs(om.on_venue_exec(ex(v, CANCELED, CANCELED, 30, 0, 10.0)))
    assert [(o.exec_type, o.ord_status, o.cum_qty, o.leaves_qty) for o in outs] == [(CANCELED, CANCELED, 30, 0)]
    assert om.on_venue_exec(ex(v, CANCELED, CANCELED, 30, 0, 10.0)) == []        # nothing after the end
    assert om.counts["partially_filled"] == 1 and om.counts["canceled"] == 1


def test_duplicate_exec_id_is_ignored():
    om = OrderManager()
    order, (v,) = route(om, intent(tif=DAY))
    rep = ex(v, TRADE, PARTIAL, 40, 60, 10.0, 40, 10.0)
    assert execs(om.on_venue_exec(rep))
    assert om.on_venue_exec(rep) == []
    assert order.cum_qty == 40


def test_same_exec_id_on_another_order_is_not_a_duplicate():
    om = OrderManager()
    _, (a,) = route(om, intent("e1", tif=DAY))
    order_b, (b,) = route(om, intent("e2", tif=DAY))
    first = ex(a, TRADE, PARTIAL, 10, 90, 10.0, 10, 10.0)
    om.on_venue_exec(first)
    again = dataclasses.replace(first, cl_ord_id=b, venue_order_id="VO2")
    assert execs(om.on_venue_exec(again)) and order_b.cum_qty == 10


def test_sliced_order_ends_when_all_children_end():
    om = OrderManager()
    order, (a, b) = route(om, intent(qty=100), ("ALPHA", 60), ("BRAVO", 40))
    om.on_venue_exec(ex(a, TRADE, FILLED, 60, 0, 10.0, 60, 10.0))
    assert not order.done and order.status == PARTIAL
    outs = execs(om.on_venue_exec(ex(b, EXPIRED, EXPIRED, 0, 0, venue="BRAVO")))
    assert [(o.exec_type, o.cum_qty) for o in outs] == [(EXPIRED, 60)]
    assert order.done


def test_all_children_rejected_is_a_rejected_order_with_the_venue_text():
    om = OrderManager()
    order, (v,) = route(om, intent())
    outs = execs(om.on_venue_exec(ex(v, REJECTED, REJECTED, 0, 0, text="unknown symbol")))
    assert outs[0].ord_status == REJECTED and "ALPHA: unknown symbol" in outs[0].text


def test_cancel_flow_and_refusals():
    om = OrderManager()
    order, (v,) = route(om, intent(tif=DAY))
    om.on_venue_exec(ex(v, NEW, NEW, 0, 100))
    outs = om.cancel(S, "c2", "c1", vid)
    assert [type(o) for o in outs] == [ReportToOms, SendCancel] and outs[0].ord_status == PENDING_CANCEL
    cxl = outs[1]
    again = om.cancel(S, "c3", "c1", vid)
    assert isinstance(again[0], RejectOmsCancel) and again[0].reason == "3"
    done = execs(om.on_venue_exec(ex(cxl.cl_ord_id, CANCELED, CANCELED, 0, 0, orig=v)))
    assert [(o.exec_type, o.cl_ord_id, o.orig_cl_ord_id) for o in done] == [(CANCELED, "c2", "c1")]
    late = om.cancel(S, "c4", "c1", vid)
    assert isinstance(late[0], RejectOmsCancel) and late[0].reason == "0"
    unknown = om.cancel(S, "c5", "nope", vid)
    assert unknown[0].reason == "1"


def test_cancel_that_loses_the_race_to_a_fill_still_gets_its_reject():
    om = OrderManager()
    order, (v,) = route(om, intent(tif=DAY))
    om.on_venue_exec(ex(v, NEW, NEW, 0, 100))
    cxl = om.cancel(S, "c2", "c1", vid)[1]
    fill = execs(om.on_venue_exec(ex(v, TRADE, FILLED, 100, 0, 10.0, 100, 10.0)))
    assert fill[0].ord_status == FILLED and order.done
    rej = om.on_venue_cancel_reject(cxl.cl_ord_id, "too late to cancel")
    assert [(r.cl_ord_id, r.ord_status, r.reason) for r in rej] == [("c2", FILLED, "0")]
    assert om.on_venue_cancel_reject(cxl.cl_ord_id, "again") == []       # one answer per request


def test_replace_moves_ids_and_quantity():
    om = OrderManager()
    order, (v,) = route(om, intent(tif=DAY))
    om.on_venue_exec(ex(v, NEW, NEW, 0, 100))
    new = intent("c2", qty=150, px=10.5, tif=DAY)
    outs = om.replace(S, new, "c1", "R1")
    assert isinstance(outs[0], SendReplace) and outs[0].orig_cl_ord_id == v
    rep = execs(om.on_venue_exec(ex("R1", REPLACED, NEW, 0, 150, orig=v)))[0]
    assert (rep.cl_ord_id, rep.orig_cl_ord_id, rep.leaves_qty) == ("c2", "c1", 150)
    assert order.intent.price == 10.5 and order.cl_ord_id == "c2"
    fill = execs(om.on_venue_exec(ex("R1", TRADE, FILLED, 150, 0, 10.5, 150, 10.5)))[0]
    assert fill.ord_status == FILLED and fill.cl_ord_id == "c2"


def test_kill_cancels_every_open_order():
    om = OrderManager()
    route(om, intent("k1", tif=DAY))
    route(om, intent("k2", tif=DAY, side=SELL))
    outs = om.cancel_all(vid, "kill switch: test")
    assert sum(isinstance(o, SendCancel) for o in outs) == 2


def test_journal_replay_rebuilds_state(tmp_path):
    path = tmp_path / "j"
    j = Journal(path)
    om = OrderManager()
    it = intent(tif=DAY)
    ids = [vid()]
    j.write(J.Accepted(intent=it, order_id="O1", children=[ChildOrder("ALPHA", 100, 10.0, LIMIT, DAY)],
                       venue_ids=ids, policy="dma", reason="test"))
    om.accept(it, "O1", [ChildOrder("ALPHA", 100, 10.0, LIMIT, DAY)], ids)
    fill = ex(ids[0], TRADE, PARTIAL, 40, 60, 10.0, 40, 10.0)
    j.write(J.VenueReport(report=fill))
    j.close()
    with path.open("a") as fh:
        fh.write('{"kind": "venue_report", "torn')       # a crash mid-write
    fresh = OrderManager()
    result = replay(path, fresh)
    assert result.applied == 2 and [n for n, _ in result.skipped] == [3]
    order = fresh.by_oms[(S, "c1")]
    assert order.cum_qty == 40 and not order.done and fresh.find_child(ids[0]) is order.children[0]
    assert fresh.on_venue_exec(fill) == []                 # the resent report is not counted twice
    outs = execs(fresh.on_venue_exec(ex(ids[0], TRADE, FILLED, 100, 0, 10.0, 60, 10.0)))
    assert outs[0].ord_status == FILLED and outs[0].cl_ord_id == "c1"


def test_micro_burst_asks_once_for_an_ioc_remainder_route():
    om = OrderManager(micro_burst=True)
    order, (v,) = route(om, intent(qty=100))
    om.on_venue_exec(ex(v, TRADE, PARTIAL, 30, 70, 10.0, 30, 10.0))
    outs = om.on_venue_exec(ex(v, CANCELED, CANCELED, 30, 0, 10.0))
    assert isinstance(outs[0], RouteRemainder) and outs[0].qty == 70 and not order.done   # nothing told yet
    (new,) = om.add_retry(order, ChildOrder("BRAVO", 70, order.intent.price, LIMIT, IOC), "R1")
    assert isinstance(new, SendNewOrder) and new.child.venue == "BRAVO" and new.child.qty == 70
    end = execs(om.on_venue_exec(ex("R1", CANCELED, CANCELED, 0, 0, venue="BRAVO")))
    assert [(e.exec_type, e.cum_qty) for e in end] == [(CANCELED, 30)]                   # only once


def test_a_remainder_with_no_route_ends_the_order():
    om = OrderManager(micro_burst=True)
    order, (v,) = route(om, intent(qty=100))
    (rr,) = om.on_venue_exec(ex(v, CANCELED, CANCELED, 0, 0))
    end = execs(om.end_remainder(rr.order))
    assert [(e.exec_type, e.text) for e in end] == [(CANCELED, "IOC remainder not filled")] and order.done
