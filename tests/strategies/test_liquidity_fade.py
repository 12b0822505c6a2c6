"""Liquidity fading: held walls are faded, pulled walls are spoofs and are not."""
from __future__ import annotations

import pytest

from gateway.core.strategies.base import BUY, SELL
from gateway.core.strategies.liquidity_fade import LiquidityFade, LiquidityFadeConfig
from strat_helpers import FakeMarket, fill, places

ASKS_AT = lambda top: [(round(top + i * 0.0001, 4), 100) for i in range(5)]   # noqa: E731


def fade() -> LiquidityFade:
    return LiquidityFade(LiquidityFadeConfig(symbols=["EURUSD"], qty=100, wall_multiple=5.0, near_ticks=5,
                                             min_lifetime_s=0.5, pull_distance_ticks=2, trigger_ticks=1))


def book(m, s, bid_top, wall_qty=2000, wall_px=1.0997):
    """Bids from ``bid_top`` down to 1.0995 (100 each) with a wall at ``wall_px``; asks 1 tick above."""
    bids = []
    px = bid_top
    while px >= 1.0995 - 1e-9:
        bids.append((round(px, 4), wall_qty if abs(px - wall_px) < 1e-9 else 100))
        px -= 0.0001
    return places(s.on_book(m.quote("A", bids, ASKS_AT(round(bid_top + 0.0001, 4))), m))


def test_held_wall_is_faded_with_a_stop_beyond_it_and_exits_on_target():
    s, m = fade(), FakeMarket(venues=("A",))
    assert book(m, s, 1.1000) == []                 # wall at 3 ticks: a candidate
    m.advance(1.0)
    assert book(m, s, 1.1000) == []                 # held 1 s: a wall, still 3 ticks away
    assert s.classify(next(iter(s.walls.values())), m.clock.now()) == "wall"
    m.advance(0.1)
    assert book(m, s, 1.0999) == []                 # 2 ticks: not yet
    m.advance(0.1)
    cmds = book(m, s, 1.0998)                       # 1 tick from the wall, moving toward it -> buy
    assert len(cmds) == 1 and cmds[0].side == BUY and cmds[0].price == pytest.approx(1.0999)
    s.on_report(fill(cmds[0]), m)
    m.advance(0.1)
    out = book(m, s, 1.1000)                       # bounced: bid 1.1000 = entry + 1 tick
    assert out and out[0].side == SELL and out[0].reason == "exit:target"
    s.on_report(fill(out[0]), m)
    assert s.stats()["recent"][0]["outcome"] == "profit" and s.stats()["signals"]["held"] == 1


def test_pulled_wall_is_a_spoof_and_is_not_faded():
    s, m = fade(), FakeMarket(venues=("A",))
    book(m, s, 1.1000)
    m.advance(1.0)
    book(m, s, 1.1000)
    m.advance(0.1)
    assert book(m, s, 1.0999) == []                 # price approaches: 2 ticks away
    m.advance(0.05)
    assert book(m, s, 1.0999, wall_qty=100) == []   # the wall vanishes, no trades there: pulled
    wall = next(iter(s.walls.values()))
    assert s.classify(wall, m.clock.now()) == "spoof"
    m.advance(0.05)
    assert book(m, s, 1.0998) == []                 # it comes back at 1 tick: still a spoof, no fade
    assert s.stats()["signals"]["spoofs"] == 1 and s.stats()["signals"]["fades"] == 0


def test_wall_traded_away_is_broken_not_spoof():
    s, m = fade(), FakeMarket(venues=("A",))
    book(m, s, 1.1000)
    m.advance(0.1)
    s.on_trade(m.trade("A", 1.0997, 1950, SELL), m)
    book(m, s, 1.0999, wall_qty=50)
    wall = next(iter(s.walls.values()))
    assert s.classify(wall, m.clock.now()) == "broken"


def test_young_wall_is_not_faded():
    s, m = fade(), FakeMarket(venues=("A",))
    book(m, s, 1.1000)
    m.advance(0.1)
    assert book(m, s, 1.0998) == []                 # 1 tick away but only 0.1 s old


def test_position_exits_at_once_when_its_wall_is_pulled():
    s, m = fade(), FakeMarket(venues=("A",))
    book(m, s, 1.1000)
    m.advance(1.0)
    book(m, s, 1.1000)
    m.advance(0.1)
    cmds = book(m, s, 1.0998)
    s.on_report(fill(cmds[0]), m)
    m.advance(0.05)
    out = book(m, s, 1.0998, wall_qty=100)           # the wall it leaned on is pulled
    assert out and out[0].side == SELL and out[0].reason == "exit:wall_pulled"
