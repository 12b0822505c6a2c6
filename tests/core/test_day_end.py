"""Day orders at session end: SessionEnded(venue) / DayEnded expire open Day orders to the OMS
with ExecType C, journaled, and the expiry survives a restart (replay)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_hub import S, core, new, place, sent, venue_report  # noqa: E402

from gateway.core import journal as J  # noqa: E402
from gateway.core.hub import DayEnded, ReportToOms, SendCancel, SendNewOrder, SessionEnded  # noqa: E402
from gateway.core.model import IOC, LIMIT, BUY, OrderIntent  # noqa: E402
from gateway.core.hub import OmsNewOrder, VenueCancelRejected  # noqa: E402


def _ioc(gw, cid="i1"):
    (cmd,) = gw.handle(OmsNewOrder(intent=OrderIntent(S, cid, "AAPL", BUY, 50.0, LIMIT, 10.0, IOC)))
    assert isinstance(cmd, SendNewOrder)
    return cmd.child


def _kinds(path):
    return [type(r).__name__ for _, r in J.read_records(path)]


def test_venue_session_end_expires_day_orders_only(tmp_path):
    gw = core(tmp_path, venues=("ALPHA", "BRAVO"))
    day = place(gw, "d1")
    ioc = _ioc(gw)
    gw.handle(venue_report(day.cl_ord_id, "F", "1", cum=40, leaves=60, avg=10, last_qty=40, last_px=10))
    assert gw.handle(SessionEnded(venue="BRAVO")) == []           # nothing of ours there
    assert "DayEnded" not in _kinds(tmp_path / "orders.journal")
    out = gw.handle(SessionEnded(venue="ALPHA"))
    (rep,) = sent(out, ReportToOms)
    assert (rep.exec_type, rep.ord_status, rep.cl_ord_id) == ("C", "C", "d1")
    assert rep.cum_qty == 40 and rep.leaves_qty == 0 and "ALPHA session ended" in rep.text
    assert not sent(out, SendCancel)                              # the venue's session is over
    assert list(o.cl_ord_id for o in gw.orders.open.values()) == ["i1"]   # the IOC is not a Day order
    assert ioc.status == "A"
    gw.close()
    # restart: the expiry replays
    gw2 = core(tmp_path, venues=("ALPHA", "BRAVO"))
    order = gw2.orders.by_oms[(S, "d1")]
    assert order.status == "C" and order.cum_qty == 40
    assert gw2.recovery.skipped == []


def test_configured_day_end_cancels_at_venue_and_expires_on_confirmation(tmp_path):
    gw = core(tmp_path)
    child = place(gw, "d1")
    out = gw.handle(DayEnded())
    (cxl,) = sent(out, SendCancel)
    assert cxl.orig_cl_ord_id == child.cl_ord_id and not sent(out, ReportToOms)   # the venue first
    assert gw.compact()[0] is False                               # a cancel in flight: not a safe point
    # the venue confirms the cancel: the OMS hears Expired, once
    (rep,) = sent(gw.handle(venue_report(cxl.cl_ord_id, "4", "4", orig=child.cl_ord_id)), ReportToOms)
    assert (rep.exec_type, rep.ord_status, rep.cl_ord_id) == ("C", "C", "d1") and "end of the trading day" in rep.text
    assert gw.handle(DayEnded()) == []                            # nothing open any more
    gw.close()
    gw2 = core(tmp_path)
    assert gw2.orders.by_oms[(S, "d1")].status == "C" and not gw2.orders.open
    assert gw2.recovery.skipped == []


def test_day_end_fill_racing_the_cancel_is_kept(tmp_path):
    gw = core(tmp_path)
    child = place(gw, "d1")
    (cxl,) = sent(gw.handle(DayEnded()), SendCancel)
    (fill,) = sent(gw.handle(venue_report(child.cl_ord_id, "F", "2", cum=100, avg=10, last_qty=100, last_px=10)),
                   ReportToOms)
    assert (fill.exec_type, fill.ord_status) == ("F", "2")       # the fill reaches the OMS
    assert gw.handle(VenueCancelRejected(venue="ALPHA", cl_ord_id=cxl.cl_ord_id, text="too late")) == []
    assert gw.risk.snapshot()["positions"]["AAPL"]["qty"] == 100


def test_day_end_on_a_venue_that_is_down_expires_at_once(tmp_path):
    gw = core(tmp_path, venues=("ALPHA", "BRAVO"))
    place(gw, "d1")
    gw.market.on_venue_down("ALPHA")
    out = gw.handle(DayEnded())
    assert not sent(out, SendCancel)
    (rep,) = sent(out, ReportToOms)
    assert (rep.exec_type, rep.ord_status) == ("C", "C")
    gw.close()
    assert core(tmp_path, venues=("ALPHA", "BRAVO")).orders.by_oms[(S, "d1")].status == "C"


def test_sampled_timings_of_risk_and_routing(tmp_path):
    gw = core(tmp_path)
    gw.timing_sample = 2
    for i in range(4):
        place(gw, f"t{i}")
    kinds = [k for k, _ in gw.timings]
    assert kinds == ["risk", "route", "risk", "route"]
    assert all(0 <= s < 1 for _, s in gw.timings)
