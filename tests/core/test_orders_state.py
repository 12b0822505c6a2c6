"""The order state machine with a real RiskEngine attached: one transition table, exposure, fills booked once."""
from __future__ import annotations

import itertools

import pytest

from gateway.common.clock import FakeClock
from gateway.core.model import BUY, DAY, LIMIT, ChildOrder, OrderIntent, TradingStateChanged
from gateway.core.orders import (CANCELED, FILLED, NEW, PARTIAL, PENDING_NEW, REJECTED, TRANSITIONS, OmsOrder,
                                 OrderManager, OrderStateError, RejectOmsCancel, ReportToOms, SendNewOrder,
                                 VenueExecutionReport, move)
from gateway.core.risk import RiskConfig, RiskEngine

S = "FIX.4.4:FIXGW->OMS1"
_n = itertools.count(1)


def intent(cid="c1", qty=100.0, px=10.0, side=BUY):
    return OrderIntent(S, cid, "AAPL", side, qty, LIMIT, px, DAY)


def report(child_id, et, status, cum=0.0, leaves=0.0, avg=0.0, last_qty=0.0, last_px=0.0, exec_id=None):
    return VenueExecutionReport(venue="ALPHA", cl_ord_id=child_id, exec_id=exec_id or f"X{next(_n)}",
                                exec_type=et, ord_status=status, cum_qty=cum, leaves_qty=leaves, avg_px=avg,
                                last_qty=last_qty, last_px=last_px)


def with_risk(**cfg):
    risk = RiskEngine(RiskConfig.model_validate(cfg), FakeClock())
    return OrderManager(risk), risk


def place(om, risk, it):
    assert risk.check(it) is None
    (cmd,) = om.accept(it, f"O{next(_n)}", [ChildOrder("ALPHA", it.qty, it.price, LIMIT, it.tif)], [f"V{next(_n)}"])
    return cmd.child


# ---- one table --------------------------------------------------------------------------------

@pytest.mark.parametrize("frm", sorted({FILLED, CANCELED, REJECTED}))
def test_nothing_leaves_a_terminal_state_and_the_state_is_unchanged(frm):
    order = OmsOrder(intent(), "O1", status=frm)
    with pytest.raises(OrderStateError):
        move(order, NEW)
    assert order.status == frm


def test_partial_cannot_go_back_to_new_or_pending():
    order = OmsOrder(intent(), "O1", status=PARTIAL)
    for to in (NEW, PENDING_NEW, REJECTED):
        with pytest.raises(OrderStateError):
            move(order, to)
        assert order.status == PARTIAL
    assert set(TRANSITIONS) == {PENDING_NEW, NEW, PARTIAL}


def test_a_report_that_would_need_an_illegal_move_is_counted_not_applied():
    om, risk = with_risk()
    child = place(om, risk, intent())
    om.on_venue_exec(report(child.cl_ord_id, "4", "4"))                       # canceled: over
    assert om.on_venue_exec(report(child.cl_ord_id, "F", "2", 100, 0, 10.0, 100, 10.0)) == []
    assert om.counts["unexpected_reports"] == 1 and child.cum_qty == 0 and child.status == CANCELED
    assert om.on_venue_exec(report(child.cl_ord_id, "D", "0")) == []           # restated: counted
    assert om.counts["unexpected_reports"] == 2


# ---- with risk attached -------------------------------------------------------------------------

def test_exposure_is_released_when_an_order_ends():
    om, risk = with_risk()
    child = place(om, risk, intent())
    assert risk.snapshot()["positions"]["AAPL"]["open_buy"] == 100
    om.on_venue_exec(report(child.cl_ord_id, "F", "1", 30, 70, 10.0, 30, 10.0))
    om.on_venue_exec(report(child.cl_ord_id, "4", "4", 30, 0, 10.0))
    pos = risk.snapshot()["positions"]["AAPL"]
    assert (pos["qty"], pos["open_buy"]) == (30, 0) and risk.snapshot()["open_orders"] == 0


def test_a_fill_is_booked_into_positions_exactly_once():
    om, risk = with_risk()
    child = place(om, risk, intent())
    fill = report(child.cl_ord_id, "F", "1", 40, 60, 10.0, 40, 10.0, exec_id="E1")
    om.on_venue_exec(fill)
    om.on_venue_exec(fill)                                   # a PossDup resend of the same ExecID
    assert risk.snapshot()["positions"]["AAPL"]["qty"] == 40
    om.on_venue_exec(report(child.cl_ord_id, "F", "2", 100, 0, 10.0, 60, 10.0))
    assert risk.snapshot()["positions"]["AAPL"]["qty"] == 100 and risk.snapshot()["open_orders"] == 0


def test_a_replace_below_the_filled_quantity_is_refused_and_changes_nothing():
    om, risk = with_risk()
    child = place(om, risk, intent())
    om.on_venue_exec(report(child.cl_ord_id, "F", "1", 60, 40, 10.0, 60, 10.0))
    before = risk.snapshot()["positions"]["AAPL"]
    (rej,) = om.replace(S, intent("c2", qty=50), "c1", "R1")
    assert isinstance(rej, RejectOmsCancel) and "below the filled quantity 60" in rej.text
    order = om.by_oms[(S, "c1")]
    assert order.replace_request is None and (S, "c2") not in om.by_oms
    assert risk.snapshot()["positions"]["AAPL"] == before


def test_a_losing_fill_returns_the_trip_instead_of_calling_back():
    om, risk = with_risk(loss_threshold=50, loss_window_s=10)
    child = place(om, risk, intent())
    risk.on_mark("AAPL", 10.0)
    risk.mark_price = lambda sym: 9.0
    outs = om.on_venue_exec(report(child.cl_ord_id, "F", "2", 100, 0, 10.0, 100, 10.0))
    changed = [o for o in outs if isinstance(o, TradingStateChanged)]
    assert changed and changed[0].state == "HALTED" and [type(o) for o in outs][-1] is ReportToOms


def test_accept_counts_orders_in_flight_until_the_venue_answers():
    om, risk = with_risk()
    child = place(om, risk, intent())
    assert om.in_flight == {"ALPHA": 1}
    om.on_venue_exec(report(child.cl_ord_id, "0", "0", leaves=100))
    assert om.in_flight == {"ALPHA": 0}
    assert isinstance(om.add_retry(om.by_oms[(S, "c1")], ChildOrder("BRAVO", 1, 10.0, LIMIT, DAY), "R9")[0],
                      SendNewOrder)
    assert om.in_flight["BRAVO"] == 1
