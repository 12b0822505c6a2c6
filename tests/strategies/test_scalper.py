"""The round-trip scalper and the shared round-trip bookkeeping, on hand-built books."""
from __future__ import annotations

import json

import pytest

from gateway.common.configfile import ConfigError, validate_config
from gateway.core.strategies.base import BUY, SELL
from gateway.core.strategies.roundtrip import ExitConfig
from gateway.core.strategies.scalper import Scalper, ScalperConfig
from strat_helpers import SYM, FakeMarket, fill, miss, places

T = 0.0001


def scalper(**kw) -> Scalper:
    exits = kw.pop("exits", {})
    return Scalper(ScalperConfig(symbols=[SYM], qty=100, imbalance_ratio=3.0, cooldown_s=0.0,
                                 exits=ExitConfig(**{"target_ticks": 1, "stop_ticks": 2, "max_hold_s": 1.0, **exits}),
                                 **kw))


def enter_long(s: Scalper, m: FakeMarket):
    """Bid-heavy touch on A and B -> a buy IOC at 1.1001, filled."""
    m.quote("B", [(1.1000, 500)], [(1.1001, 100)])
    cmds = places(s.on_book(m.quote("A", [(1.1000, 500)], [(1.1001, 100)]), m))
    assert len(cmds) == 1 and cmds[0].side == BUY and cmds[0].price == pytest.approx(1.1001)
    assert cmds[0].tif == "3" and cmds[0].venue is None
    m.advance(0.0002)
    assert s.on_report(fill(cmds[0], at=m.clock.now()), m) == []
    return cmds[0]


def test_balanced_touch_gives_no_entry():
    s, m = scalper(), FakeMarket()
    assert s.on_book(m.quote("A", [(1.1000, 200)], [(1.1001, 100)]), m) == []


def test_round_trip_hits_target_with_plus_one_tick():
    s, m = scalper(), FakeMarket()
    enter_long(s, m)
    m.advance(0.01)
    exits = places(s.on_book(m.quote("A", [(1.1002, 100)], [(1.1003, 100)]), m))
    assert [(e.side, e.price, e.reason) for e in exits] == [(SELL, pytest.approx(1.1002), "exit:target")]
    s.on_report(fill(exits[0], at=m.clock.now()), m)
    trip = s.stats()["recent"][0]
    assert trip["outcome"] == "profit" and trip["pnl_ticks"] == 1.0
    assert trip["pnl_money"] == pytest.approx(100 * 0.0001)
    assert trip["signal_to_exec_us"] == pytest.approx(200.0) and trip["slippage_ticks"] == 0.0
    assert s.is_flat() and s.stats()["win_rate"] == 1.0


def test_round_trip_hits_stop_with_minus_two_ticks():
    s, m = scalper(), FakeMarket()
    enter_long(s, m)
    # the consolidated bid falls to 1.0999 (both venues): 2 ticks under the entry at 1.1001 -> stop
    m.quote("B", [(1.0999, 100)], [(1.1000, 100)])
    exits = places(s.on_book(m.quote("A", [(1.0999, 100)], [(1.1000, 100)]), m))
    assert exits and exits[0].reason == "exit:stop_loss"
    s.on_report(fill(exits[0], at=m.clock.now()), m)
    trip = s.stats()["recent"][0]
    assert trip["outcome"] == "loss_price_moved" and trip["pnl_ticks"] == -2.0


def test_round_trip_times_out_and_scratches():
    s, m = scalper(), FakeMarket()
    enter_long(s, m)
    m.quote("A", [(1.1001, 100)], [(1.1002, 100)])
    assert s.on_timer(m.advance(0.5), m) == []
    exits = places(s.on_timer(m.advance(0.6), m))
    assert exits and exits[0].reason == "exit:timeout" and exits[0].price == pytest.approx(1.1001)
    s.on_report(fill(exits[0]), m)
    trip = s.stats()["recent"][0]
    assert trip["outcome"] == "scratch" and trip["pnl_ticks"] == 0.0 and trip["exit_reason"] == "timeout"


def test_missed_entry_is_counted_and_opens_nothing():
    s, m = scalper(), FakeMarket()
    m.quote("B", [(1.1000, 500)], [(1.1001, 100)])
    cmds = places(s.on_book(m.quote("A", [(1.1000, 500)], [(1.1001, 100)]), m))
    s.on_report(miss(cmds[0], at=m.clock.now()), m)
    st = s.stats()
    assert st["missed"] == 1 and st["round_trips"] == 0 and st["win_rate"] is None and s.is_flat()


def test_unfilled_exit_is_retried_then_flattened_through_the_touch():
    s, m = scalper(exits={"max_exit_retries": 1, "max_flatten_attempts": 1, "flatten_through_ticks": 3}), FakeMarket()
    enter_long(s, m)
    e1 = places(s.on_timer(m.advance(1.1), m))[0]            # timeout, at the bid 1.1000
    e2 = places(s.on_report(miss(e1), m))[0]                   # retry at the touch
    assert e2.price == pytest.approx(1.1000) and e2.reason == "exit:timeout"
    e3 = places(s.on_report(miss(e2), m))[0]                   # flatten 3 ticks through
    assert e3.price == pytest.approx(1.0997) and e3.reason == "exit:flatten"
    e4 = places(s.on_report(miss(e3), m))[0]                   # then a market order
    assert e4.ord_type == "1" and e4.price is None
    s.on_report(fill(e4, px=1.0998), m)
    assert s.is_flat() and s.stats()["recent"][0]["pnl_ticks"] == -3.0


def test_partial_exit_sends_the_remainder():
    s, m = scalper(), FakeMarket()
    enter_long(s, m)
    e1 = places(s.on_timer(m.advance(1.1), m))[0]
    e2 = places(s.on_report(fill(e1, qty=40), m))[0]
    assert e2.qty == 60


def test_stop_flattens_an_open_position_and_blocks_new_entries():
    s, m = scalper(), FakeMarket()
    enter_long(s, m)
    out = places(s.stop(m.clock.now(), m))
    assert len(out) == 1 and out[0].reason == "exit:stop" and out[0].side == SELL
    assert not s.is_flat()
    s.on_report(fill(out[0]), m)
    assert s.is_flat()
    assert s.on_book(m.quote("A", [(1.1000, 900)], [(1.1001, 100)]), m) == []


def test_cooldown_and_one_trip_per_symbol():
    s, m = scalper(), FakeMarket()
    first = places(s.on_book(m.quote("A", [(1.1000, 500)], [(1.1001, 100)]), m))
    assert len(first) == 1
    assert s.on_book(m.quote("A", [(1.1000, 600)], [(1.1001, 100)]), m) == []
    assert s.stats()["signals"]["skipped_busy"] == 1


def test_lead_move_takes_the_other_venues_stale_quote():
    s, m = scalper(signal="lead_move", lead_venue="A"), FakeMarket()
    m.quote("B", [(1.1000, 100)], [(1.1001, 100)])
    assert s.on_book(m.quote("A", [(1.1000, 100)], [(1.1001, 100)]), m) == []
    cmds = places(s.on_book(m.quote("A", [(1.1001, 100)], [(1.1002, 100)]), m))
    assert len(cmds) == 1 and cmds[0].side == BUY and cmds[0].price == pytest.approx(1.1001)
    assert s.stats()["recent"][0]["detail"]["venues_at_touch"] == ["B"]


def test_stats_are_json_safe():
    s, m = scalper(), FakeMarket()
    enter_long(s, m)
    json.dumps(s.stats(), allow_nan=False)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="imbalance_ratio"):
        validate_config({"symbols": [SYM], "imbalance_ratio": 0.5}, ScalperConfig)
    with pytest.raises(ConfigError, match="exits.target_tick"):
        validate_config({"symbols": [SYM], "exits": {"target_tick": 1}}, ScalperConfig)
    with pytest.raises(ConfigError, match="lead_venue"):
        validate_config({"symbols": [SYM], "signal": "lead_move"}, ScalperConfig)
