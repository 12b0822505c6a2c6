"""Chaos findings F1 and F2, driven through GatewayCore without sockets.

F1: a report re-sent after a restart (PossResend) must carry the ExecID it had the first
time, or the OMS books it twice. F2: after a restart, a pending cancel or replace is
resolved with the venue, and a PossDup cancel/replace whose ClOrdID is known gets the
order's status, not "duplicate ClOrdID".
"""
from __future__ import annotations

from gateway.core.hub import (OmsCancelRequest, OmsReplaceRequest, OmsSessionUp, OmsStatusRequest, QueryOrderStatus,
                              RejectOmsCancel, ReportToOms, SendCancel, SendReplace, VenueUp)
from gateway.core.orders import SendNewOrder
from tests.core.test_hub import S, core, new, place, sent, venue_report


def reports(cmds):
    return sent(cmds, ReportToOms)


def restart(gw, tmp_path):
    gw.journal.close()                      # SIGKILL: no Stopped record
    return core(tmp_path)


# ---- F1: ExecIDs are the core's, stable per report across replay -----------------------------------

def test_a_fill_resent_after_a_restart_keeps_its_exec_id(tmp_path):
    gw = core(tmp_path)
    (cmd,) = gw.handle(new("c1"))
    (ack,) = gw.handle(venue_report(cmd.child.cl_ord_id, "0", "0", leaves=100))
    (fill,) = gw.handle(venue_report(cmd.child.cl_ord_id, "F", "2", 100, 0, 10.0, 100, 10.0))  # killed here
    assert ack.exec_id and fill.exec_id and ack.exec_id != fill.exec_id
    again = restart(gw, tmp_path)
    (rep,) = again.handle(OmsSessionUp(session=S))
    assert rep.poss_resend and rep.exec_type == "F"
    assert rep.exec_id == fill.exec_id          # the OMS recognises the repeat


def test_a_cancel_resent_after_a_restart_keeps_its_exec_id(tmp_path):
    gw = core(tmp_path)
    child = place(gw)
    gw.handle(OmsCancelRequest(session=S, cl_ord_id="x1", orig_cl_ord_id="c1"))
    (done,) = gw.handle(venue_report(gw.orders.find_child(child.cl_ord_id).cancel_pending, "4", "4",
                                     orig=child.cl_ord_id))
    assert done.ord_status == "4"
    again = restart(gw, tmp_path)
    (rep,) = again.handle(OmsSessionUp(session=S))
    assert (rep.exec_type, rep.ord_status, rep.exec_id, rep.poss_resend) == ("4", "4", done.exec_id, True)


def test_reports_after_a_restart_continue_the_sequence_and_status_answers_use_their_own_ids(tmp_path):
    gw = core(tmp_path)
    (cmd,) = gw.handle(new("c1"))
    first = [r.exec_id for r in reports(gw.handle(venue_report(cmd.child.cl_ord_id, "0", "0", leaves=100)))]
    first += [r.exec_id for r in reports(gw.handle(venue_report(cmd.child.cl_ord_id, "F", "1", 40, 60, 10.0, 40,
                                                                10.0)))]
    (status,) = gw.handle(OmsStatusRequest(session=S, cl_ord_id="c1"))
    assert status.exec_type == "I" and status.exec_id and status.exec_id not in first
    again = restart(gw, tmp_path)
    again.handle(OmsSessionUp(session=S))
    outs = again.handle(OmsCancelRequest(session=S, cl_ord_id="x1", orig_cl_ord_id="c1"))
    (pending,) = reports(outs)
    assert pending.ord_status == "6" and pending.exec_id not in first
    (status2,) = again.handle(OmsStatusRequest(session=S, cl_ord_id="c1"))
    assert status2.exec_id not in first + [status.exec_id, pending.exec_id]
    every = first + [pending.exec_id]
    assert len(set(every)) == len(every)


# ---- F2 (b): a PossDup cancel/replace with a known ClOrdID gets the status ---------------------------

def test_a_possdup_cancel_whose_clordid_is_known_gets_its_status_not_a_duplicate_reject(tmp_path):
    gw = core(tmp_path)
    place(gw)
    gw.handle(OmsCancelRequest(session=S, cl_ord_id="x1", orig_cl_ord_id="c1"))
    (rep,) = gw.handle(OmsCancelRequest(session=S, cl_ord_id="x1", orig_cl_ord_id="c1", possible_resend=True))
    assert isinstance(rep, ReportToOms)
    assert (rep.exec_type, rep.ord_status, rep.cl_ord_id, rep.orig_cl_ord_id) == ("I", "6", "x1", "c1")
    (dup,) = gw.handle(OmsCancelRequest(session=S, cl_ord_id="x1", orig_cl_ord_id="c1"))   # no flag: a reuse
    assert isinstance(dup, RejectOmsCancel) and "duplicate" in dup.text


def test_a_possdup_replace_whose_clordid_is_known_gets_its_status(tmp_path):
    gw = core(tmp_path)
    place(gw)
    ev = OmsReplaceRequest(session=S, new=new("r1", qty=120).intent, orig_cl_ord_id="c1")
    assert sent(gw.handle(ev), SendReplace)
    (rep,) = gw.handle(OmsReplaceRequest(session=S, new=ev.new, orig_cl_ord_id="c1", possible_resend=True))
    assert isinstance(rep, ReportToOms)
    assert (rep.exec_type, rep.ord_status, rep.cl_ord_id, rep.orig_cl_ord_id) == ("I", "E", "r1", "c1")


# ---- F2 (a): restart reconciliation resolves pending cancels and replaces ---------------------------

def test_restart_resends_a_pending_cancel_the_venue_never_saw_and_the_order_ends(tmp_path):
    gw = core(tmp_path)
    child = place(gw)
    outs = gw.handle(OmsCancelRequest(session=S, cl_ord_id="x1", orig_cl_ord_id="c1"))   # killed before the send
    (lost,) = sent(outs, SendCancel)
    again = restart(gw, tmp_path)
    (pending,) = again.handle(OmsSessionUp(session=S))
    assert pending.ord_status == "6" and pending.poss_resend
    (query,) = again.handle(VenueUp(venue="ALPHA"))
    assert isinstance(query, QueryOrderStatus) and query.child.cl_ord_id == child.cl_ord_id
    (resend,) = again.handle(venue_report(child.cl_ord_id, "I", "0", leaves=100))     # the venue: still working
    assert isinstance(resend, SendCancel) and resend.cl_ord_id != lost.cl_ord_id
    assert resend.orig_cl_ord_id == child.cl_ord_id
    (done,) = again.handle(venue_report(resend.cl_ord_id, "4", "4", orig=child.cl_ord_id))
    assert (done.exec_type, done.ord_status, done.cl_ord_id, done.orig_cl_ord_id) == ("4", "4", "x1", "c1")
    assert not again.orders.open
    # had the first cancel reached the venue after all, its refusal is absorbed: one answer only
    assert again.handle(venue_report(lost.cl_ord_id, "8", "8")) == []


def test_a_resent_cancel_is_replayed_with_the_same_clordid(tmp_path):
    gw = core(tmp_path)
    child = place(gw)
    gw.handle(OmsCancelRequest(session=S, cl_ord_id="x1", orig_cl_ord_id="c1"))
    again = restart(gw, tmp_path)
    again.handle(VenueUp(venue="ALPHA"))
    (resend,) = again.handle(venue_report(child.cl_ord_id, "I", "0", leaves=100))
    third = restart(again, tmp_path)
    assert third.recovery.skipped == []
    assert third.orders.find_child(child.cl_ord_id).cancel_pending == resend.cl_ord_id
    (query,) = third.handle(VenueUp(venue="ALPHA"))        # still unanswered: asked again, sent again if needed
    (again_resend,) = third.handle(venue_report(child.cl_ord_id, "I", "0", leaves=100))
    assert again_resend.cl_ord_id not in (resend.cl_ord_id,)


def test_restart_resends_a_replace_the_venue_never_saw(tmp_path):
    gw = core(tmp_path)
    child = place(gw)
    (lost,) = gw.handle(OmsReplaceRequest(session=S, new=new("r1", qty=120).intent, orig_cl_ord_id="c1"))
    again = restart(gw, tmp_path)
    (query,) = again.handle(VenueUp(venue="ALPHA"))
    assert isinstance(query, QueryOrderStatus) and query.cl_ord_id == lost.cl_ord_id
    (resend,) = again.handle(venue_report(lost.cl_ord_id, "I", "8", text="unknown order"))
    assert isinstance(resend, SendReplace) and resend.cl_ord_id != lost.cl_ord_id and resend.qty == 120
    assert again.orders.open                                   # the order itself was not ended
    (rep,) = again.handle(venue_report(resend.cl_ord_id, "5", "0", leaves=120, orig=child.cl_ord_id))
    assert (rep.exec_type, rep.cl_ord_id, rep.orig_cl_ord_id) == ("5", "r1", "c1")
    outs = again.handle(OmsCancelRequest(session=S, cl_ord_id="x2", orig_cl_ord_id="r1"))
    assert sent(outs, SendCancel)                              # nothing left pending


def test_restart_applies_a_replace_the_venue_did_take(tmp_path):
    gw = core(tmp_path)
    place(gw)
    (sent_replace,) = gw.handle(OmsReplaceRequest(session=S, new=new("r1", qty=120).intent, orig_cl_ord_id="c1"))
    again = restart(gw, tmp_path)
    again.handle(VenueUp(venue="ALPHA"))
    outs = again.handle(venue_report(sent_replace.cl_ord_id, "I", "1", cum=30, leaves=90, avg=10.0))
    assert [(r.exec_type, r.ord_status) for r in reports(outs)] == [("F", "1"), ("5", "1")]
    order = again.orders.by_oms[(S, "r1")]
    assert order.replace_request is None and order.intent.qty == 120 and order.cum_qty == 30
    assert not sent(outs, SendNewOrder)


# ---- F1 across a compaction: the snapshot keeps each order's report count ---------------------------

def test_exec_ids_continue_across_a_compaction_and_restart(tmp_path):
    """Chaos finding: the start-up compaction's snapshot dropped ``OmsOrder.reports``, so after the
    next restart an order's ExecIDs started again at <OrderID>-1. A PossResend terminal report then
    reused an ExecID the OMS already had (its ack or its PendingCancel) and was dropped as a repeat:
    the order never ended at the OMS."""
    gw = core(tmp_path)
    child = place(gw)                                           # -1: the ack
    (sent_replace,) = gw.handle(OmsReplaceRequest(session=S, new=new("r1", qty=120).intent, orig_cl_ord_id="c1"))
    (replaced,) = reports(gw.handle(venue_report(sent_replace.cl_ord_id, "5", "0", leaves=120,
                                                 orig=child.cl_ord_id)))        # -2: the replace
    issued = [f"{replaced.order.order_id}-1", replaced.exec_id]
    again = restart(gw, tmp_path)
    again.handle(OmsSessionUp(session=S))                       # the replace's report, PossResend
    assert again.compact()[0]                                   # what the gateway does at a safe point
    third = restart(again, tmp_path)                            # replays the snapshot only
    (pending,) = reports(third.handle(OmsCancelRequest(session=S, cl_ord_id="x1", orig_cl_ord_id="r1")))
    assert pending.exec_id not in issued
    vid = third.orders.find_child(sent_replace.cl_ord_id).cancel_pending
    (done,) = reports(third.handle(venue_report(vid, "4", "4", orig=sent_replace.cl_ord_id)))
    assert done.exec_id not in issued + [pending.exec_id]
    fourth = restart(third, tmp_path)                           # killed before the report went out
    (resent,) = reports(fourth.handle(OmsSessionUp(session=S)))
    assert (resent.ord_status, resent.exec_id, resent.poss_resend) == ("4", done.exec_id, True)
