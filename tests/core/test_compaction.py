"""Journal compaction at a safe point: one snapshot record, then a fresh journal; a restart
across a compaction rebuilds the same orders, positions, used ClOrdIDs and risk state."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_hub import S, core, new, place, sent, venue_report  # noqa: E402

from gateway.core import journal as J  # noqa: E402
from gateway.core.hub import (KillRequested, OmsCancelRequest, OmsReplaceRequest, ReportToOms,  # noqa: E402
                              SendReplace)
from gateway.core.model import BUY, DAY, LIMIT, OrderIntent  # noqa: E402
from gateway.core.risk import HALTED  # noqa: E402


def _state(gw):
    rows = {o["cl_ord_id"]: (o["status"], o["cum_qty"], o["avg_px"], [(c["status"], c["cum_qty"])
                                                                      for c in o["children"]])
            for o in gw.orders_view(10_000)}
    risk = gw.risk.snapshot()
    return rows, risk["positions"], risk["state"], risk["realized_pnl"], gw.orders.summary()["open"]


def _day(gw):
    filled = place(gw, "f1", qty=100, px=10)
    gw.handle(venue_report(filled.cl_ord_id, "F", "2", cum=100, leaves=0, avg=10, last_qty=100, last_px=10))
    part = place(gw, "p1", qty=100, px=11)
    gw.handle(venue_report(part.cl_ord_id, "F", "1", cum=30, leaves=70, avg=11, last_qty=30, last_px=11))
    gw.handle(new("bad", qty=-1))                                   # rejected at intake
    rep = place(gw, "r1", qty=50, px=9)
    (cmd,) = sent(gw.handle(OmsReplaceRequest(session=S, new=OrderIntent(S, "r2", "AAPL", BUY, 60, LIMIT, 9.5, DAY),
                                              orig_cl_ord_id="r1")), SendReplace)
    gw.handle(venue_report(cmd.cl_ord_id, "5", "0", leaves=60, orig=rep.cl_ord_id))
    return part


def test_restart_across_a_compaction_rebuilds_the_same_state(tmp_path):
    gw = core(tmp_path)
    part = _day(gw)
    journal = tmp_path / "orders.journal"
    lines_before = journal.read_text().count("\n")
    done, text = gw.compact()
    assert done, text
    assert journal.read_text().count("\n") == 1 and "snapshot" in journal.read_text()
    assert (tmp_path / "orders.journal.1").read_text().count("\n") == lines_before
    # life goes on after the compaction: more fills on the open order, a new order
    gw.handle(venue_report(part.cl_ord_id, "F", "1", cum=80, leaves=20, avg=11.5, last_qty=50, last_px=11.8))
    place(gw, "n1", qty=10, px=10)
    live = _state(gw)
    gw.close()
    gw2 = core(tmp_path)
    assert gw2.recovery.skipped == [] and gw2.recovery.snapshots == 1
    assert _state(gw2) == live
    # ClOrdIDs used before the compaction are still known (duplicates refused, replaced ids too)
    for cid in ("f1", "r1", "r2"):
        (rep,) = gw2.handle(new(cid))
        assert isinstance(rep, ReportToOms) and rep.ord_status == "8" and "duplicate" in rep.text
    # and the old journal replays on its own to the state at the compaction
    assert J.replay(tmp_path / "orders.journal.1", type(gw2.orders)()).skipped == []


def test_kill_switch_survives_compaction_and_restart(tmp_path):
    gw = core(tmp_path)
    _day(gw)
    gw.handle(KillRequested(by="alice", reason="test"))
    for o in list(gw.orders.open.values()):      # the venue confirms the kill's cancels
        for c in o.live_children():
            gw.handle(venue_report(c.cancel_pending, "4", "4", cum=c.cum_qty, avg=c.avg_px, orig=c.cl_ord_id))
    assert not gw.orders.open
    assert gw.compact()[0]
    gw.close()
    gw2 = core(tmp_path)
    assert gw2.risk.state == HALTED


def test_no_compaction_while_a_cancel_is_in_flight(tmp_path):
    gw = core(tmp_path)
    child = place(gw, "c1")
    gw.handle(OmsCancelRequest(session=S, cl_ord_id="x1", orig_cl_ord_id="c1"))
    done, why = gw.compact()
    assert not done and "in flight" in why
    assert not (tmp_path / "orders.journal.1").exists()
    gw.handle(venue_report(child.cancel_pending, "4", "4", orig=child.cl_ord_id))
    assert gw.compact(keep_old=False)[0]
    assert not (tmp_path / "orders.journal.1").exists()
