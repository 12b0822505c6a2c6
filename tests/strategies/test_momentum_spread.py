"""Momentum (RTT gate, burst start) and cross-venue spread capture (threshold, legging)."""
from __future__ import annotations

import json

import pytest

from gateway.core.strategies.base import BUY, SELL
from gateway.core.strategies.momentum import Momentum, MomentumConfig
from gateway.core.strategies.spread_capture import SpreadCapture, SpreadCaptureConfig
from strat_helpers import SYM, FakeMarket, fill, miss, places


def momentum(max_rtt_us=500.0) -> Momentum:
    return Momentum(MomentumConfig(symbols=[SYM], qty=100, window_s=0.1, min_window_volume=300,
                                   min_base_volume=100, accel_ratio=3.0, max_rtt_us=max_rtt_us, cooldown_s=0))


def two_venue_book(m: FakeMarket):
    m.quote("A", [(1.1000, 300)], [(1.1001, 300)])
    m.quote("B", [(1.1000, 300)], [(1.1001, 300)])


def buy_burst(s: Momentum, m: FakeMarket):
    """Quiet tape, then 4 x 100 lifted offers inside 40 ms; returns every command produced."""
    out = places(s.on_trade(m.trade("A", 1.1000, 20, SELL), m))
    m.advance(0.15)
    for _ in range(4):
        m.advance(0.01)
        out += places(s.on_trade(m.trade("A", 1.1001, 100, BUY), m))
    return out


def test_burst_with_fast_venue_enters_pinned_to_it():
    s, m = momentum(), FakeMarket()
    two_venue_book(m)
    m.rtt.update(A=800.0, B=200.0)
    out = buy_burst(s, m)
    assert len(out) == 1
    assert (out[0].side, out[0].venue, out[0].price) == (BUY, "B", pytest.approx(1.1001))
    assert s.stats()["signals"]["bursts"] == 1


def test_no_entry_when_the_fastest_venue_is_above_the_rtt_threshold():
    s, m = momentum(max_rtt_us=500.0), FakeMarket()
    two_venue_book(m)
    m.rtt.update(A=800.0, B=900.0)
    assert buy_burst(s, m) == []
    assert s.stats()["signals"]["skipped_rtt"] == 1


def test_steady_flow_is_no_burst():
    s, m = momentum(), FakeMarket()
    two_venue_book(m)
    m.rtt.update(A=100.0)
    out = []
    for _ in range(40):          # 100 every 50 ms both ways: volume but no acceleration, no side
        m.advance(0.05)
        out += places(s.on_trade(m.trade("A", 1.1001, 100, BUY), m))
        out += places(s.on_trade(m.trade("A", 1.1000, 100, SELL), m))
    assert out == []


def spread(**kw) -> SpreadCapture:
    return SpreadCapture(SpreadCaptureConfig(symbols=[SYM], qty=100, fee_ticks_per_leg=0.5, base_margin_ticks=0.5,
                                             margin_ticks_per_ms=1.0, cooldown_s=0, **kw))


def test_cross_smaller_than_fees_is_ignored():
    s, m = spread(), FakeMarket(venues=("A", "B"))
    m.rtt.update(A=100.0, B=100.0)
    m.quote("B", [(1.0999, 100)], [(1.1000, 100)])
    # A's bid 1 tick above B's ask; needed 2*0.5 + 0.5 + 0.1 = 1.6 ticks
    assert s.on_book(m.quote("A", [(1.1001, 100)], [(1.1002, 100)]), m) == []
    assert s.stats()["signals"]["below_threshold"] == 1


def test_slow_venue_raises_the_margin():
    s = spread()
    assert s.required_edge_ticks(100.0, 2000.0) == pytest.approx(3.5)
    assert s.required_edge_ticks(100.0, float("inf")) == float("inf")


def crossed(s: SpreadCapture, m: FakeMarket):
    m.rtt.update(A=100.0, B=100.0)
    m.quote("B", [(1.0998, 100)], [(1.0999, 80)])
    legs = places(s.on_book(m.quote("A", [(1.1002, 100)], [(1.1003, 100)]), m))   # 3 ticks > 1.6
    assert sorted((l.side, l.venue, l.qty) for l in legs) == [(BUY, "B", 80), (SELL, "A", 80)]
    assert all(l.tif == "3" for l in legs)
    return {l.side: l for l in legs}


def test_both_legs_fill_captures_the_spread():
    s, m = spread(), FakeMarket(venues=("A", "B"))
    legs = crossed(s, m)
    s.on_report(fill(legs[SELL], venue="A"), m)
    assert s.on_report(fill(legs[BUY], venue="B"), m) == []
    trip = s.stats()["recent"][0]
    assert trip["outcome"] == "profit" and trip["pnl_ticks"] == 3.0 and trip["legging"] is None
    assert s.is_flat()


def test_missed_leg_is_unwound_at_once_and_counted_as_legging():
    s, m = spread(), FakeMarket(venues=("A", "B"))
    legs = crossed(s, m)
    assert s.on_report(fill(legs[BUY], venue="B"), m) == []        # waits for the other leg
    unwind = places(s.on_report(miss(legs[SELL], venue="A"), m))
    assert len(unwind) == 1 and unwind[0].side == SELL and unwind[0].qty == 80
    assert unwind[0].reason == "exit:unwind" and unwind[0].price == pytest.approx(1.1002)
    m.quote("A", [(1.0998, 100)], [(1.1003, 100)])
    s.on_report(fill(unwind[0], px=1.0998), m)
    st = s.stats()
    assert st["legging_incidents"] == 1 and st["legging_loss_money"] == pytest.approx(-80 * 0.0001)
    assert st["recent"][0]["pnl_ticks"] == -1.0 and s.is_flat()
    json.dumps(st, allow_nan=False)
