"""Each model on hand-built events: queue position, vanished quotes, latency, the take rule."""
from __future__ import annotations

import pytest

from bt_strategies import Scripted
from helpers import US, config, replay, snap, trade, upd
from gateway.core.models.queue import ProbabilisticQueue, RiskAverseQueue
from gateway.core.recording import AGG_BUY, AGG_SELL, ASK, BID
from gateway.core.strategies.base import BUY, IOC, PlaceOrder, CancelOrder
from gateway.core.model import DAY, FOK


def place(cid, side, qty, px, tif=IOC, venue="A"):
    return PlaceOrder(cl_ord_id=cid, symbol="SYM", side=side, qty=qty, price=px, tif=tif, venue=venue)


def fills(strat):
    return [(r.cl_ord_id, r.last_qty, r.last_px, round(r.at * 1e6, 3)) for r in strat.reports if r.exec_type == "F"]


# ------------------------------------------------------------------ queue position

def test_queued_order_fills_only_after_the_quantity_ahead_trades():
    rows = snap(0, [(100.0, 10)], [(101.0, 10)])
    rows += upd(1000, ASK, 101.0, 11)                       # our buy is sent on this event
    rows += trade(2000, 100.0, 4, AGG_SELL) + upd(2000, BID, 100.0, 6)
    rows += trade(3000, 100.0, 5, AGG_SELL) + upd(3000, BID, 100.0, 1)
    rows += trade(4000, 100.0, 1, AGG_SELL) + upd(4000, BID, 100.0, 0)   # the last of the 10 ahead
    rows += trade(5000, 100.0, 2, AGG_SELL)                 # now it reaches us
    rows += upd(9000, ASK, 101.0, 12)
    s = Scripted([(0.001, place("B1", BUY, 1, 100.0, tif=DAY))])
    _, res = replay(rows, s)
    assert [r.exec_type for r in s.reports] == ["0", "F"]
    assert fills(s) == [("B1", 1.0, 100.0, 5100.0)]        # trade at 5000 us + 100 us response
    assert res["ledger"]["maker_qty"] == 1.0


def test_cancels_do_not_advance_a_risk_averse_queue_but_do_a_probabilistic_one():
    for model, expect_fill in (("risk_averse", False), ("probabilistic", True)):
        rows = snap(0, [(100.0, 10)], [(101.0, 10)])
        rows += upd(1000, ASK, 101.0, 11)
        rows += upd(2000, BID, 100.0, 12)                   # 2 join behind us
        rows += upd(3000, BID, 100.0, 5)                    # 7 cancelled: risk-averse keeps 5 ahead,
        rows += trade(4000, 100.0, 5, AGG_SELL)             # probabilistic puts most of them ahead (~3)
        rows += upd(9000, ASK, 101.0, 12)
        s = Scripted([(0.001, place("B1", BUY, 1, 100.0, tif=DAY))])
        replay(rows, s, config(queue=model))
        assert bool(fills(s)) is expect_fill, model


def test_queue_model_units():
    class O:
        front = 0.0
        cum_trade = 0.0
    ra, o = RiskAverseQueue(), O()
    ra.on_new_order(o, 10)
    ra.on_trade(o, 9)
    assert ra.filled_qty(o) == 0
    ra.on_depth(o, 10, 12)           # growth is behind us
    assert o.front == 1
    ra.on_trade(o, 3)
    assert ra.filled_qty(o) == 2
    pq, o = ProbabilisticQueue(), O()
    pq.on_new_order(o, 10)
    pq.on_depth(o, 20, 10)           # level grew to 20 behind us, then 10 cancelled
    assert 0 < o.front < 10
    pq.on_trade(o, 4)
    pq.on_depth(o, 10, 6)            # that decrease is the trade, not a cancel
    assert o.cum_trade == 0


# ------------------------------------------------------------------ vanished quotes and latency

@pytest.mark.parametrize("feed_us", [0, 600])
def test_ioc_arriving_after_the_quote_vanished_misses(feed_us):
    # the ask vanishes at the venue at 1200 us; our IOC (sent at 1000 us) arrives at 1500 us.
    # With 600 us of feed latency we have not even seen it go when the IOC arrives.
    rows = snap(0, [(100.0, 5)], [(101.0, 5)])
    rows += upd(1000, BID, 100.0, 6)
    rows += upd(1200, ASK, 101.0, 0, feed_us=feed_us) + upd(1200, ASK, 102.0, 5, feed_us=feed_us)
    rows += upd(5000, BID, 100.0, 7)
    s = Scripted([(0.001, place("B1", BUY, 5, 101.0))])
    replay(rows, s, config(entry_us=500))
    assert fills(s) == []
    assert [(r.exec_type, r.cum_qty) for r in s.reports] == [("4", 0.0)]


def test_ioc_arriving_before_the_quote_vanished_fills():
    rows = snap(0, [(100.0, 5)], [(101.0, 5)])
    rows += upd(1000, BID, 100.0, 6)
    rows += upd(1200, ASK, 101.0, 0)
    rows += upd(5000, BID, 100.0, 7)
    s = Scripted([(0.001, place("B1", BUY, 5, 101.0))])
    replay(rows, s, config(entry_us=100))
    assert fills(s) == [("B1", 5.0, 101.0, 1200.0)]


def test_latency_moves_the_arrival_time_exactly():
    # the ask appears at the venue at exactly 1000 + entry us: an order arriving then sees it
    # (events at the arrival instant are applied first), one arriving 1 ns earlier does not.
    for entry_us, filled in ((250.0, True), (249.999, False)):
        rows = snap(0, [(100.0, 5)], [])
        rows += upd(1000, BID, 100.0, 6)
        rows += upd(1250, ASK, 101.0, 5, feed_us=400)
        rows += upd(9000, BID, 100.0, 7)
        s = Scripted([(0.001, place("B1", BUY, 5, 101.0))])
        replay(rows, s, config(entry_us=entry_us, response_us=333.0))
        assert bool(fills(s)) is filled
        assert s.reports[-1].at == pytest.approx(0.001 + entry_us * 1e-6 + 333e-6, abs=1e-12)


# ------------------------------------------------------------------ the take rule

def test_what_we_take_cannot_be_taken_twice():
    rows = snap(0, [(100.0, 5)], [(101.0, 5)])
    rows += upd(1000, BID, 100.0, 6)
    rows += upd(2000, BID, 100.0, 7)          # no change at 101: our first take is still there
    rows += upd(3000, ASK, 101.0, 7)          # 2 new at 101 join: only those are for us
    rows += upd(4000, BID, 100.0, 8)
    rows += upd(5000, ASK, 101.0, 3)          # 4 leave in history: they were ours (7 taken -> 3): 0 shown
    rows += upd(5500, ASK, 101.0, 5)          # 2 join: shown
    rows += upd(6000, BID, 100.0, 9)
    rows += upd(9000, BID, 100.0, 9.5)
    s = Scripted([(0.001, place("B1", BUY, 5, 101.0)), (0.002, place("B2", BUY, 5, 101.0)),
                  (0.004, place("B3", BUY, 5, 101.0)), (0.006, place("B4", BUY, 5, 101.0))])
    replay(rows, s)
    got = {cid: q for cid, q, _, _ in fills(s)}
    assert got == {"B1": 5.0, "B3": 2.0, "B4": 2.0}


def test_fok_takes_all_or_nothing():
    rows = snap(0, [(100.0, 5)], [(101.0, 3), (102.0, 1)])
    rows += upd(1000, BID, 100.0, 6) + upd(9000, BID, 100.0, 7)
    s = Scripted([(0.001, place("F1", BUY, 5, 102.0, tif=FOK)), (0.001, place("F2", BUY, 4, 102.0, tif=FOK))])
    replay(rows, s)
    assert [(c, q, p) for c, q, p, _ in fills(s)] == [("F2", 3.0, 101.0), ("F2", 1.0, 102.0)]


def test_cancel_reaches_the_venue_after_entry_latency():
    rows = snap(0, [(100.0, 2)], [(101.0, 5)])
    rows += upd(1000, ASK, 101.0, 6)
    rows += trade(1150, 100.0, 3, AGG_SELL)        # before the cancel arrives (1100 + 100): fills us
    rows += upd(9000, ASK, 101.0, 7)
    s = Scripted([(0.001, place("B1", BUY, 1, 100.0, tif=DAY))])
    s.script.append((0.0011, CancelOrder(cl_ord_id="C1", orig_cl_ord_id="B1", symbol="SYM", side=BUY, qty=1)))
    rows += upd(1100, ASK, 101.0, 5)
    rows.sort(key=lambda r: r[1])
    r, _ = replay(rows, s)
    assert [x.exec_type for x in s.reports] == ["0", "F"]
    assert r.stats["cancels_too_late"] == 1


def test_risk_engine_rejects_inside_the_replay():
    rows = snap(0, [(100.0, 5)], [(101.0, 5)]) + upd(1000, BID, 100.0, 6) + upd(2000, BID, 100.0, 7)
    s = Scripted([(0.001, place("B1", BUY, 50, 101.0))])
    _, res = replay(rows, s, config(**{"risk.max_order_qty": 10}))
    assert [(x.exec_type, "max_order_qty" in (x.text or "")) for x in s.reports] == [("8", True)]
    assert res["risk"]["rejects_by_check"] == {"max_order_qty": 1}


def test_touch_notify_skips_updates_behind_the_touch():
    rows = snap(0, [(100.0, 5), (99.0, 5)], [(101.0, 5)])
    rows += upd(1000, BID, 99.0, 6)            # behind the touch: not notified in touch mode
    rows += upd(2000, BID, 100.0, 4)           # at the touch
    rows += upd(3000, ASK, 100.5, 2)           # inside the spread
    counts = {}
    for mode in ("every", "touch"):
        s = Scripted()
        replay(rows, s, config(**{"backtest.notify": mode}))
        counts[mode] = s.books
    assert counts == {"every": 3, "touch": 2}


def test_scalp_router_and_micro_burst_retry_run_unchanged_in_the_replay():
    # A is faster (100 us RTT vs 400 us) and shows 4 of 5: the scalp router sends there;
    # the IOC remainder (1) goes once more, to B, as the live micro-burst does.
    rows = snap(0, [(100.0, 5)], [(101.0, 4)], venue="A") + snap(0, [(100.0, 5)], [(101.0, 5)], venue="B")
    rows += upd(1000, BID, 100.0, 6, venue="A") + upd(9000, BID, 100.0, 7, venue="A")
    s = Scripted([(0.001, PlaceOrder(cl_ord_id="S1", symbol="SYM", side=BUY, qty=5, price=101.0, tif=IOC))])
    cfg = config(entry_us=50, response_us=50, **{"routing.micro_burst": True,
                                                 "backtest.venues.B.entry_us": 200, "backtest.venues.B.response_us": 200})
    r, res = replay(rows, s, cfg)
    assert [(x.venue, x.last_qty) for x in s.reports if x.exec_type == "F"] == [("A", 4.0), ("B", 1.0)]
    assert s.reports[-1].ord_status == "2" and res["stats"]["retries"] == 1
    assert res["routes"] == {"A": 1, "B": 1}


def test_recorded_probes_feed_the_router_and_the_empirical_latency_model():
    rows = snap(0, [(100.0, 5)], [(101.0, 5)]) + upd(1000, BID, 100.0, 6) + upd(9000, BID, 100.0, 7)
    s = Scripted([(0.001, place("B1", BUY, 1, 101.0))])
    cfg = config(**{"backtest.default_venue.latency": "empirical"})
    r, _ = replay(rows, s, cfg, probes=[("A", 0, 0.0004)])
    assert r.market.venues["A"].lat.last_us == pytest.approx(400.0)
    assert r.view.rtt_us("A") == pytest.approx(400.0)
    assert s.reports[-1].at == pytest.approx(0.001 + 0.0004, abs=1e-12)   # half the RTT each way


def test_windowed_empirical_latency_follows_the_regime_of_the_order_time():
    from gateway.core.models.latency import WindowedEmpiricalLatency
    times = [0.1 * i for i in range(100)]                  # 10 s of probes, slow from 4 s to 6 s
    rtts = [0.006 if 4.0 <= t < 6.0 else 0.0002 for t in times]
    m = WindowedEmpiricalLatency(times, rtts, 0.3, seed=1)
    assert all(m.entry(2.0) == 0.0001 for _ in range(20))
    assert all(m.response(5.0) == 0.003 for _ in range(20))
    assert m.entry(50.0) == 0.0001                         # past the end: the nearest sample
    import pytest
    with pytest.raises(ValueError):
        WindowedEmpiricalLatency([], [], 1.0)


def test_notify_message_calls_on_book_once_per_venue_message_after_its_trades():
    from helpers import ASK, BID, replay, snap, trade, upd, config

    class Watch:
        name = "watch"
        timer_interval_s = 0.0

        def __init__(self):
            self.seen = []

        def on_book(self, ev, market):
            b = market.book(ev.venue, ev.symbol)
            bb, ba = b.best_bid(), b.best_ask()
            self.seen.append(("book", ev.venue, round(ev.at * 1e6), bb and bb[0], ba and ba[0]))
            return []

        def on_trade(self, ev, market):
            self.seen.append(("trade", ev.venue, round(ev.at * 1e6)))
            return []

        def on_report(self, ev, market):
            return []
    rows = snap(0, [(99.0, 5)], [(101.0, 5)]) + snap(0, [(99.0, 5)], [(101.0, 5)], venue="B")
    # one message at 10 us on A: a trade, the ask moves up (delete + new); then B at 10 us; then A at 20 us
    rows += trade(10, 101.0, 5, 1) + upd(10, ASK, 101.0, 0) + upd(10, ASK, 102.0, 3, action=0)
    rows += upd(10, BID, 99.5, 2, venue="B", action=0)
    rows += upd(20, BID, 100.0, 1, action=0)
    w = Watch()
    replay(rows, w, config(**{"backtest.notify": "message"}))
    assert w.seen == [("trade", "A", 10), ("book", "A", 10, 99.0, 102.0), ("book", "B", 10, 99.5, 101.0),
                      ("book", "A", 20, 100.0, 102.0)]
    w2 = Watch()
    replay(rows, w2, config())                 # every: one call per level row, intermediate states seen
    books = [s for s in w2.seen if s[0] == "book"]
    assert len(books) == 4 and books[0] == ("book", "A", 10, 99.0, None)     # the half-applied message
