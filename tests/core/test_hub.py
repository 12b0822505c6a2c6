"""GatewayCore without sockets: events in, commands out; compute, journal, apply; restart reconciliation."""
from __future__ import annotations

import itertools
import os

import pytest

from gateway.common.clock import FakeClock
from gateway.core import journal as J
from gateway.core.hub import (BroadcastNews, GatewayCore, IdGen, KillRequested, OmsCancelRequest, OmsNewOrder,
                              OmsReplaceRequest, OmsSessionUp, OmsStatusRequest, QueryOrderStatus, RejectOmsCancel,
                              ReportToOms, ResetRequested, SendCancel, SendNewOrder, SendReplace, Tick,
                              VenueCancelRejected, VenueSendFailed, VenueUp)
from gateway.core.market import MarketState
from gateway.core.model import BUY, DAY, LIMIT, SELL, OrderIntent
from gateway.core.orders import VenueExecutionReport
from gateway.core.risk import HALTED, RiskConfig
from gateway.core.router.config import RoutingConfig

S = "FIX.4.4:FIXGW->OMS1"
S2 = "FIX.4.4:FIXGW->OMS2"
_n = itertools.count(1)


def core(tmp_path, venues=("ALPHA",), **risk) -> GatewayCore:
    clock = FakeClock(100.0)
    routing = RoutingConfig.model_validate({"policy": "dma", "default_venue": venues[0]})
    market = MarketState(routing, clock, sender=lambda *a, **k: True)
    for v in venues:
        market.on_venue_up(v, None)
    return GatewayCore(routing=routing, risk=RiskConfig.model_validate(risk), journal_path=tmp_path / "orders.journal",
                       market=market, clock=clock, ids=IdGen("t"))


def new(cid="c1", qty=100.0, px=10.0, side=BUY, session=S, symbol="AAPL", resend=False) -> OmsNewOrder:
    return OmsNewOrder(intent=OrderIntent(session, cid, symbol, side, qty, LIMIT, px, DAY), possible_resend=resend)


def venue_report(child_id, et, status, cum=0.0, leaves=0.0, avg=0.0, last_qty=0.0, last_px=0.0, text=None,
                 orig=None, venue="ALPHA") -> VenueExecutionReport:
    return VenueExecutionReport(venue=venue, cl_ord_id=child_id, orig_cl_ord_id=orig, exec_id=f"X{next(_n)}",
                                exec_type=et, ord_status=status, cum_qty=cum, leaves_qty=leaves, avg_px=avg,
                                last_qty=last_qty, last_px=last_px, venue_order_id="V1", text=text)


def sent(cmds, kind):
    return [c for c in cmds if isinstance(c, kind)]


def place(gw, cid="c1", **kw):
    (cmd,) = gw.handle(new(cid, **kw))
    assert isinstance(cmd, SendNewOrder), cmd
    gw.handle(venue_report(cmd.child.cl_ord_id, "0", "0", leaves=cmd.child.qty))
    return cmd.child


class FailingWrites:
    """Stands in for os.write on the journal's descriptor only."""

    def __init__(self, monkeypatch, gw):
        self.fd = gw.journal._fd
        real = os.write

        def write(fd, data):
            if fd == self.fd:
                raise OSError(28, "No space left on device")
            return real(fd, data)
        monkeypatch.setattr(os, "write", write)


def open_exposure(gw) -> int:
    return gw.risk.snapshot()["open_orders"]


# ---- compute, journal, apply (issue 13) ---------------------------------------------------------

def test_an_order_whose_journal_write_fails_books_nothing_and_is_rejected(tmp_path, monkeypatch):
    gw = core(tmp_path)
    FailingWrites(monkeypatch, gw)
    (rep,) = gw.handle(new("c1"))
    assert isinstance(rep, ReportToOms) and rep.ord_status == "8" and "journal" in rep.text
    assert open_exposure(gw) == 0 and not gw.orders.open and gw.orders.in_flight.get("ALPHA", 0) == 0
    assert gw.risk.snapshot()["positions"] == {}
    monkeypatch.undo()
    assert isinstance(gw.handle(new("c1"))[0], SendNewOrder)     # the ClOrdID was not used up


def test_a_cancel_whose_journal_write_fails_sets_no_pending_flag(tmp_path, monkeypatch):
    gw = core(tmp_path)
    child = place(gw)
    FailingWrites(monkeypatch, gw)
    (rej,) = gw.handle(OmsCancelRequest(session=S, cl_ord_id="x1", orig_cl_ord_id="c1"))
    assert isinstance(rej, RejectOmsCancel) and "journal" in rej.text
    order = gw.orders.by_oms[(S, "c1")]
    assert child.cancel_pending is None and order.cancel_request is None and (S, "x1") not in gw.orders.by_oms
    monkeypatch.undo()
    outs = gw.handle(OmsCancelRequest(session=S, cl_ord_id="x1", orig_cl_ord_id="c1"))
    assert sent(outs, SendCancel)                                  # the OMS may simply try again


def test_a_replace_whose_journal_write_fails_changes_nothing(tmp_path, monkeypatch):
    gw = core(tmp_path)
    place(gw)
    before = gw.risk.snapshot()["positions"]
    FailingWrites(monkeypatch, gw)
    ev = OmsReplaceRequest(session=S, new=new("c2", qty=150).intent, orig_cl_ord_id="c1")
    (rej,) = gw.handle(ev)
    assert isinstance(rej, RejectOmsCancel) and rej.response_to == "2"
    order = gw.orders.by_oms[(S, "c1")]
    assert order.replace_request is None and gw.risk.snapshot()["positions"] == before


def test_non_utf8_cancel_then_kill_then_restart_replays(tmp_path):
    gw = core(tmp_path)
    place(gw, "c1")
    place(gw, "c2", side=SELL)
    odd = "\x80\xff\udc80caf\xe9"           # latin-1 bytes and a surrogate-escaped byte
    assert sent(gw.handle(OmsCancelRequest(session=S, cl_ord_id=odd, orig_cl_ord_id="c1")), SendCancel)
    outs = gw.handle(KillRequested(by="alice", reason="test"))
    assert len(sent(outs, SendCancel)) == 1 and sent(outs, BroadcastNews)
    gw.journal.close()
    again = core(tmp_path)
    assert again.recovery.skipped == [] and again.risk.state == HALTED
    assert again.orders.by_oms[(S, odd)] is again.orders.by_oms[(S, "c1")]
    assert all(c.cancel_pending for o in again.orders.open.values() for c in o.live_children())


# ---- the kill switch answers through values, not callbacks --------------------------------------

def test_a_losing_fill_trips_the_switch_and_the_core_cancels_everything(tmp_path):
    gw = core(tmp_path, loss_threshold=50, loss_window_s=10)
    resting = place(gw, "rest", px=9.0)
    child = place(gw, "c1")
    gw.risk.on_mark("AAPL", 10.0)
    outs = gw.handle(venue_report(child.cl_ord_id, "F", "2", 100, 0, 10.0, 100, 10.0))
    gw.risk.mark_price = lambda sym: 9.0   # the market falls: -100 within the window
    outs = gw.handle(gw_tick())
    assert gw.risk.state == HALTED
    assert [c.child.cl_ord_id for c in sent(outs, SendCancel)] == [resting.cl_ord_id]
    assert sent(outs, BroadcastNews)[0].headline.startswith("KILL SWITCH")
    kinds = [r.kind if hasattr(r, "kind") else type(r).__name__ for _, r in J.read_records(gw.journal.path)]
    assert kinds[-2:] == ["RiskState", "CancelAll"]


def gw_tick():
    from gateway.core.hub import Tick
    return Tick()


def test_manual_kill_twice_changes_once_and_reset_needs_a_person(tmp_path):
    gw = core(tmp_path)
    assert gw.handle(KillRequested(by="alice"))
    assert gw.handle(KillRequested(by="bob")) == []
    with pytest.raises(ValueError):
        gw.reset(ResetRequested(by="auto"))
    assert sent(gw.reset(ResetRequested(by="alice")), BroadcastNews) and gw.risk.state == "ACTIVE"
    assert gw.reset(ResetRequested(by="alice")) == []            # nothing to reset: nothing changed


# ---- risk isolation -----------------------------------------------------------------------------

def test_one_clients_venue_rejects_suspend_that_client_not_the_firm(tmp_path):
    gw = core(tmp_path, venue_reject_threshold=5, venue_reject_window_s=60)
    for i in range(250):                                     # an unknown symbol, over and over
        outs = gw.handle(new(f"u{i}", symbol="NOPE"))
        for cmd in sent(outs, SendNewOrder):
            gw.handle(venue_report(cmd.child.cl_ord_id, "8", "8", text="unknown symbol"))
    assert gw.risk.state == "ACTIVE"
    assert list(gw.risk.suspended_sessions()) == [S]
    rep = gw.handle(new("late", symbol="NOPE"))[0]
    assert rep.ord_status == "8" and "session_suspended" in rep.text
    assert isinstance(gw.handle(new("other", session=S2))[0], SendNewOrder)   # the firm trades on
    assert sent(gw.reset(ResetRequested(by="alice", session=S)), BroadcastNews)
    assert isinstance(gw.handle(new("back"))[0], SendNewOrder)


def test_a_venue_with_too_many_orders_in_flight_pushes_back(tmp_path):
    gw = core(tmp_path, max_in_flight_per_venue=2)
    first = [gw.handle(new(f"f{i}"))[0] for i in range(2)]
    rep = gw.handle(new("f2"))[0]
    assert isinstance(rep, ReportToOms) and "in flight" in rep.text and gw.counts["in_flight_rejects"] == 1
    gw.handle(venue_report(first[0].child.cl_ord_id, "0", "0", leaves=100))    # an ack frees a slot
    assert isinstance(gw.handle(new("f3"))[0], SendNewOrder)


def test_a_possible_resend_of_a_known_order_gets_its_status(tmp_path):
    gw = core(tmp_path)
    place(gw)
    (rep,) = gw.handle(new("c1", resend=True))
    assert (rep.exec_type, rep.ord_status, rep.cl_ord_id) == ("I", "0", "c1")
    assert gw.counts["resends_answered"] == 1
    dup = gw.handle(new("c1"))[0]
    assert dup.ord_status == "8" and "duplicate" in dup.text


def test_a_venue_that_is_down_ends_the_order_with_a_reject(tmp_path):
    gw = core(tmp_path)
    (cmd,) = gw.handle(new("c1"))
    (rep,) = gw.handle(VenueSendFailed(command=cmd, text="venue ALPHA session is not logged on"))
    assert rep.ord_status == "8" and "not logged on" in rep.text and open_exposure(gw) == 0


# ---- restart reconciliation ---------------------------------------------------------------------

def test_restart_queries_unanswered_venue_orders_and_resolves_unknown_ones(tmp_path):
    gw = core(tmp_path)
    (cmd,) = gw.handle(new("c1"))             # sent; the venue never answered before the crash
    gw.journal.close()
    again = core(tmp_path)
    (query,) = again.handle(VenueUp(venue="ALPHA"))
    assert isinstance(query, QueryOrderStatus) and query.child.cl_ord_id == cmd.child.cl_ord_id
    outs = again.handle(venue_report(cmd.child.cl_ord_id, "I", "8", text="unknown order"))
    assert [(r.exec_type, r.ord_status) for r in outs] == [("8", "8")]
    assert not again.orders.open and open_exposure(again) == 0


def test_restart_catches_up_on_fills_the_status_answer_reveals(tmp_path):
    gw = core(tmp_path)
    (cmd,) = gw.handle(new("c1"))
    gw.journal.close()
    again = core(tmp_path)
    again.handle(VenueUp(venue="ALPHA"))
    outs = again.handle(venue_report(cmd.child.cl_ord_id, "I", "2", cum=100, avg=10.0))
    assert [(r.exec_type, r.ord_status, r.last_qty) for r in outs] == [("F", "2", 100)]
    assert again.risk.snapshot()["positions"]["AAPL"]["qty"] == 100


def test_restart_resends_the_last_report_marked_poss_resend(tmp_path):
    gw = core(tmp_path)
    (cmd,) = gw.handle(new("c1"))
    gw.handle(venue_report(cmd.child.cl_ord_id, "F", "2", 100, 0, 10.0, 100, 10.0))   # crash before the send
    gw.journal.close()
    again = core(tmp_path)
    (rep,) = again.handle(OmsSessionUp(session=S))
    assert (rep.exec_type, rep.ord_status, rep.poss_resend) == ("F", "2", True)
    assert again.handle(OmsSessionUp(session=S)) == []         # once


class Dispatch:
    """Stands in for the native engine's SendBatch: a received chunk is dispatched while depth > 0."""
    depth = 0


def test_a_crash_after_a_dispatchs_journal_write_resends_every_report_it_held_back(tmp_path):
    """A venue chunk of several reports is one journal write, and the OMS reports they make
    are released only after it: a SIGKILL in between kept back all of them, not only the
    last record's (chaos found it: three orders the OMS never saw acknowledged)."""
    gw = core(tmp_path)
    children = [sent(gw.handle(new(f"c{i}")), SendNewOrder)[0].child for i in range(3)]
    batch = Dispatch()
    gw.journal.group_with(batch)
    batch.depth = 1                               # the chunk: three acks and a fill
    for child in children:
        gw.handle(venue_report(child.cl_ord_id, "0", "0", leaves=100))
    gw.handle(venue_report(children[0].cl_ord_id, "F", "1", 40, 60, 10.0, 40, 10.0))
    batch.depth = 0
    gw.journal.flush()                            # the records reach the file ... and SIGKILL
    gw.journal.close()
    again = core(tmp_path)
    resent = again.handle(OmsSessionUp(session=S))
    assert [(r.cl_ord_id, r.exec_type, r.poss_resend) for r in resent] == [
        ("c0", "0", True), ("c1", "0", True), ("c2", "0", True), ("c0", "F", True)]


def test_a_dispatch_followed_by_another_record_was_sent(tmp_path):
    gw = core(tmp_path)
    (cmd,) = sent(gw.handle(new("c1")), SendNewOrder)
    batch = Dispatch()
    gw.journal.group_with(batch)
    batch.depth = 1
    gw.handle(venue_report(cmd.child.cl_ord_id, "0", "0", leaves=100))
    gw.handle(venue_report(cmd.child.cl_ord_id, "F", "1", 40, 60, 10.0, 40, 10.0))
    batch.depth = 0
    gw.journal.flush()
    (cmd2,) = sent(gw.handle(new("c2")), SendNewOrder)   # after the dispatch's sends: written alone
    gw.journal.close()
    again = core(tmp_path)
    assert again.handle(OmsSessionUp(session=S)) == []    # c2's accept told the OMS nothing yet


def test_a_clean_stop_resends_nothing(tmp_path):
    gw = core(tmp_path)
    (cmd,) = gw.handle(new("c1"))
    gw.handle(venue_report(cmd.child.cl_ord_id, "F", "2", 100, 0, 10.0, 100, 10.0))
    gw.close()
    again = core(tmp_path)
    assert again.recovery.clean_stop and again.handle(OmsSessionUp(session=S)) == []


# ---- ended orders retired from memory -----------------------------------------------------------

def fill(gw, child, qty=100.0, px=10.0):
    return gw.handle(venue_report(child.cl_ord_id, "F", "2", cum=qty, avg=px, last_qty=qty, last_px=px))


def test_an_ended_order_keeps_its_venue_side_until_the_grace_period_then_only_what_the_oms_asks(tmp_path):
    gw = core(tmp_path)
    child = place(gw, "c1")
    (rep,) = fill(gw, child)
    assert rep.ord_status == "2"
    gw.clock.advance(gw.retire_after_s - 1)
    gw.handle(Tick())
    assert gw.orders.by_venue_id and gw.orders.counts["retired"] == 0      # late reports still apply
    assert gw.orders.summary()["ended_held"] == 1
    gw.clock.advance(2)
    gw.handle(Tick())
    orders = gw.orders
    assert orders.counts["retired"] == 1 and not orders.by_venue_id and not orders.finished
    assert (orders.summary()["retired"], orders.summary()["ended_held"]) == (1, 0)      # GET /status
    order = orders.by_oms[(S, "c1")]
    assert order.children == [] and order.wire_fields == ""
    # what the OMS can still ask
    (st,) = gw.handle(OmsStatusRequest(session=S, cl_ord_id="c1"))
    assert (st.exec_type, st.ord_status, st.cum_qty, st.avg_px) == ("I", "2", 100, 10.0)
    (rej,) = gw.handle(OmsCancelRequest(session=S, cl_ord_id="x1", orig_cl_ord_id="c1"))
    assert isinstance(rej, RejectOmsCancel) and rej.reason == "0" and rej.order_id == order.order_id
    (dup,) = gw.handle(new("c1"))
    assert dup.ord_status == "8" and "duplicate" in dup.text
    # a venue's resend for it is applied to nothing
    ignored = orders.counts["ignored_reports"]
    assert fill(gw, child) == [] and orders.counts["ignored_reports"] == ignored + 1


def test_an_ended_order_the_venue_still_owes_an_answer_is_not_retired(tmp_path):
    gw = core(tmp_path)
    child = place(gw, "c1")
    (cxl,) = sent(gw.handle(OmsCancelRequest(session=S, cl_ord_id="x1", orig_cl_ord_id="c1")), SendCancel)
    fill(gw, child)                               # filled before the cancel got there
    gw.clock.advance(gw.retire_after_s + 1)
    gw.handle(Tick())
    assert gw.orders.counts["retired"] == 0 and gw.orders.finished   # the OMS's cancel awaits its answer
    (rej,) = gw.handle(VenueCancelRejected(venue="ALPHA", cl_ord_id=cxl.cl_ord_id, text="too late"))
    assert isinstance(rej, RejectOmsCancel) and rej.cl_ord_id == "x1"
    gw.clock.advance(gw.retire_after_s + 1)
    gw.handle(Tick())
    assert gw.orders.counts["retired"] == 1
    assert not gw.orders.by_venue_id and not gw.orders.requests    # the cancel's ClOrdID went too


@pytest.mark.parametrize("kind", ["cancel", "replace"])
def test_a_compaction_keeps_what_the_venue_owes_an_ended_order_so_the_oms_gets_its_answer(tmp_path, kind):
    gw = core(tmp_path)
    child = place(gw, "c1")
    if kind == "cancel":
        (req,) = sent(gw.handle(OmsCancelRequest(session=S, cl_ord_id="x1", orig_cl_ord_id="c1")), SendCancel)
    else:
        (req,) = sent(gw.handle(OmsReplaceRequest(session=S, new=new("x1", qty=150).intent, orig_cl_ord_id="c1")),
                      SendReplace)
    fill(gw, child)                               # filled before the request got there
    done, text = gw.compact()                     # no open order has a request in flight: a safe point
    assert done, text
    gw.journal.close()
    again = core(tmp_path)
    (st,) = again.handle(OmsStatusRequest(session=S, cl_ord_id="x1"))
    assert (st.ord_status, st.orig_cl_ord_id) == ("2", "c1")
    again.clock.advance(again.retire_after_s + 1)
    again.handle(Tick())
    assert again.orders.counts["retired"] == 0    # still owed: held
    (rej,) = again.handle(VenueCancelRejected(venue="ALPHA", cl_ord_id=req.cl_ord_id, text="too late"))
    assert isinstance(rej, RejectOmsCancel)
    assert (rej.cl_ord_id, rej.orig_cl_ord_id, rej.reason, rej.response_to) == (
        "x1", "c1", "0", "1" if kind == "cancel" else "2")
    assert again.handle(VenueCancelRejected(venue="ALPHA", cl_ord_id=req.cl_ord_id, text="again")) == []
    again.clock.advance(again.retire_after_s + 1)
    again.handle(Tick())
    assert again.orders.counts["retired"] == 1 and not again.orders.requests
    again.compact()                               # and a second compaction owes nothing
    again.journal.close()
    assert not core(tmp_path).orders.requests


def test_a_replaced_order_retires_every_venue_clordid_it_had(tmp_path):
    gw = core(tmp_path)
    child = place(gw, "c1")
    first = child.cl_ord_id
    (rpl,) = sent(gw.handle(OmsReplaceRequest(session=S, new=new("c2", qty=150).intent, orig_cl_ord_id="c1")),
                  SendReplace)
    gw.handle(venue_report(rpl.cl_ord_id, "5", "0", leaves=150))
    assert child.cl_ord_id == rpl.cl_ord_id and first in gw.orders.by_venue_id
    gw.handle(venue_report(rpl.cl_ord_id, "F", "2", cum=150, avg=10.0, last_qty=150, last_px=10.0))
    gw.clock.advance(gw.retire_after_s + 1)
    gw.handle(Tick())
    assert gw.orders.counts["retired"] == 1 and not gw.orders.by_venue_id and not gw.orders.requests
    for cid in ("c1", "c2"):                      # both of the OMS's ClOrdIDs still answer
        (st,) = gw.handle(OmsStatusRequest(session=S, cl_ord_id=cid))
        assert (st.ord_status, st.cum_qty) == ("2", 150)


def test_retired_orders_survive_a_compaction_and_a_restart_with_their_fills(tmp_path):
    gw = core(tmp_path)
    for cid in ("c1", "c2"):
        fill(gw, place(gw, cid))
    gw.clock.advance(gw.retire_after_s + 1)
    gw.handle(Tick())
    assert gw.orders.counts["retired"] == 2
    done, text = gw.compact()
    assert done, text
    gw.journal.close()
    again = core(tmp_path)
    assert again.risk.snapshot()["positions"]["AAPL"]["qty"] == 200        # risk rebuilt from the order sums
    (st,) = again.handle(OmsStatusRequest(session=S, cl_ord_id="c2"))
    assert (st.ord_status, st.cum_qty) == ("2", 100)
    (dup,) = again.handle(new("c1"))
    assert dup.ord_status == "8" and "duplicate" in dup.text
    assert not again.orders.finished and not again.orders.by_venue_id


def test_the_days_clordids_are_held_once_by_the_order_index_and_refused_after_a_restart(tmp_path):
    gw = core(tmp_path)
    fill(gw, place(gw, "c1"))
    assert all(not sess.seen for sess in gw.risk._sessions.values())     # risk keeps no second set
    (dup,) = gw.handle(new("c1"))
    assert dup.ord_status == "8" and "duplicate" in dup.text
    gw.journal.close()
    again = core(tmp_path)
    (dup,) = again.handle(new("c1"))
    assert dup.ord_status == "8" and "duplicate" in dup.text
    assert isinstance(again.handle(new("c2"))[0], SendNewOrder)


def test_a_restart_from_the_journal_queues_ended_orders_and_retires_them(tmp_path):
    gw = core(tmp_path)
    fill(gw, place(gw, "c1"))
    gw.journal.close()
    again = core(tmp_path)                        # replayed: the order ended, its venue side held
    assert [o.cl_ord_id for o in again.orders.finished] == ["c1"] and again.orders.by_venue_id
    again.clock.advance(again.retire_after_s + 1)
    again.handle(Tick())
    assert again.orders.counts["retired"] == 1 and not again.orders.by_venue_id
    assert again.risk.snapshot()["positions"]["AAPL"]["qty"] == 100


def test_retiring_works_off_a_backlog_a_bounded_number_per_tick(tmp_path, monkeypatch):
    import gateway.core.hub as hub
    monkeypatch.setattr(hub, "RETIRE_PER_TICK", 3)
    gw = core(tmp_path)
    for k in range(7):
        fill(gw, place(gw, f"c{k}"))
    gw.clock.advance(gw.retire_after_s + 1)
    retired = []
    for _ in range(4):
        gw.handle(Tick())
        retired.append(gw.orders.counts["retired"])
    assert retired == [3, 6, 7, 7]
