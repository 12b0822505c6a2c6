"""Scenario generators produce their pattern on real matching engines, and the tactics see it."""
from __future__ import annotations

from gateway.common.clock import FakeClock
from gateway.core.matching.engine import BUY, SELL, Instrument, MatchingEngine
from gateway.core.matching.events import TradePrint
from gateway.core.matching.scenarios import (
    BurstScenario, BurstScenarioConfig, DislocationScenario, DislocationScenarioConfig, WallScenario,
    WallScenarioConfig, apply_actions,
)
from gateway.core.strategies.liquidity_fade import LiquidityFade, LiquidityFadeConfig
from gateway.core.strategies.momentum import Momentum, MomentumConfig
from gateway.core.strategies.spread_capture import SpreadCapture, SpreadCaptureConfig
from strat_helpers import SYM, FakeMarket


def engines(clock, venues=("A",)):
    out = {}
    for v in venues:
        eng = MatchingEngine([Instrument(SYM, 0.0001, 1.1)], clock, venue=v)
        for i in range(8):     # 8 levels of 100 a side, 1-tick spread around 1.1000
            eng.new_order("mm", f"b{i}", SYM, BUY, 100, price=round(1.1000 - i * 0.0001, 4))
            eng.new_order("mm", f"a{i}", SYM, SELL, 100, price=round(1.1001 + i * 0.0001, 4))
        out[v] = eng
    return out


def mirror(m: FakeMarket, venue: str, eng: MatchingEngine):
    """Copy an engine's book into the strategy's MarketView; returns the BookUpdated event."""
    px = eng.instruments[SYM].to_price
    bids = [(px(p), q) for p, q in eng.levels(SYM, BUY)]
    asks = [(px(p), q) for p, q in eng.levels(SYM, SELL)]
    return m.quote(venue, bids, asks)


def run(gen, engs, clock, m, strategy, until, max_steps=200):
    """Step the generator until ``until(gen)``, feeding every change to the strategy (bounded)."""
    for venue, eng in engs.items():
        if m.book(venue, SYM) is None:
            mirror(m, venue, eng)
    for _ in range(max_steps):
        if until(gen):
            return
        clock.set(max(clock.now(), gen.next_at()))
        events = apply_actions(engs, gen.step(clock.now(), engs))
        for venue, evs in events.items():
            for ev in evs:
                if isinstance(ev, TradePrint):
                    strategy.on_trade(m.trade(venue, ev.price, ev.qty, ev.aggressor_side), m)
            strategy.on_book(mirror(m, venue, engs[venue]), m)
    raise AssertionError("scenario did not finish its episode")


def fade():
    return LiquidityFade(LiquidityFadeConfig(symbols=[SYM], wall_multiple=5.0, min_lifetime_s=0.5,
                                             pull_distance_ticks=2, trigger_ticks=1))


def wall_cfg(hold):
    # the spoofer pulls at 2 ticks, before the touch reaches the tactic's 1-tick trigger
    return WallScenarioConfig(gap_s=1.0, wall_qty=2000, distance_ticks=3, settle_s=1.0, approach_interval_s=0.1,
                              hold_probability=1.0 if hold else 0.0, pull_distance_ticks=2, absorb_qty=500, hold_s=0.5)


def test_spoof_wall_appears_then_is_pulled_and_the_tactic_calls_it_a_spoof():
    clock = FakeClock(0.0)
    engs, m, s = engines(clock), FakeMarket(venues=("A",), clock=clock), fade()
    gen = WallScenario(wall_cfg(hold=False), seed=1, venue="A", symbol=SYM)
    run(gen, engs, clock, m, s, until=lambda g: g.log and g.log[0].get("outcome"))
    assert gen.log[0]["kind"] == "spoof" and gen.log[0]["outcome"] == "pulled"
    assert engs["A"].open_orders(gen.owner) == []
    assert s.stats()["signals"]["spoofs"] == 1 and s.stats()["signals"]["fades"] == 0


def test_holding_wall_absorbs_and_is_faded():
    clock = FakeClock(0.0)
    engs, m, s = engines(clock), FakeMarket(venues=("A",), clock=clock), fade()
    gen = WallScenario(wall_cfg(hold=True), seed=1, venue="A", symbol=SYM)
    run(gen, engs, clock, m, s, until=lambda g: g.log and g.log[0].get("outcome"))
    assert gen.log[0]["kind"] == "hold" and gen.log[0]["outcome"] == "held"
    assert engs["A"].open_orders(gen.owner) == []
    assert s.stats()["signals"]["fades"] == 1 and s.stats()["signals"]["spoofs"] == 0


def test_burst_is_one_sided_aggressive_flow_the_momentum_tactic_detects():
    clock = FakeClock(0.0)
    engs, m = engines(clock, ("A", "B")), FakeMarket(venues=("A", "B"), clock=clock)
    m.rtt.update(A=100.0, B=100.0)
    s = Momentum(MomentumConfig(symbols=[SYM], window_s=0.1, min_window_volume=300, min_base_volume=100))
    gen = BurstScenario(BurstScenarioConfig(gap_s=1.0, burst_orders=6, burst_qty=100, burst_spacing_s=0.01),
                        seed=3, venues=["A", "B"], symbol=SYM)
    run(gen, engs, clock, m, s, until=lambda g: g.episodes == 1 and g.left == 0)
    assert gen.log[0]["orders"] == 6
    assert s.stats()["signals"]["bursts"] == 1 and s.stats()["signals"]["entries"] == 1


def test_dislocation_crosses_two_venues_for_its_duration_then_is_gone():
    clock = FakeClock(0.0)
    engs, m = engines(clock, ("A", "B")), FakeMarket(venues=("A", "B"), clock=clock)
    m.rtt.update(A=500.0, B=1500.0)
    s = SpreadCapture(SpreadCaptureConfig(symbols=[SYM], fee_ticks_per_leg=0.2, base_margin_ticks=0.2,
                                          margin_ticks_per_ms=0.5))
    gen = DislocationScenario(DislocationScenarioConfig(gap_s=1.0, dislocation_ticks=2, qty=200, duration_s=0.0015),
                              seed=5, venues=["A", "B"], symbol=SYM)
    run(gen, engs, clock, m, s, until=lambda g: g.episodes == 1)
    hi, lo = gen.log[0]["bid_venue"], gen.log[0]["ask_venue"]
    assert engs[hi].best_bid(SYM) > engs[lo].best_ask(SYM)
    assert s.stats()["signals"]["pairs_sent"] == 1          # 2 ticks > 0.4 + 0.2 + 0.75
    run(gen, engs, clock, m, s, until=lambda g: g.log[0]["outcome"])
    assert gen.log[0]["outcome"] == "expired" and engs[hi].open_orders(gen.owner) == []
    assert engs[hi].best_bid(SYM) <= engs[lo].best_ask(SYM)
