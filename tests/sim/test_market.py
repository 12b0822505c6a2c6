"""The cross-venue market (sim_exchange/market.py), sans-IO on a fake clock."""
from __future__ import annotations

from gateway.common.clock import FakeClock
from gateway.core.matching.engine import Instrument, MatchingEngine
from sim_exchange.config import SimConfig
from sim_exchange.flow import FlowModel
from sim_exchange.market import EngineCall, Scheduled, apply_call, drive, market_from_config


def _config(competitors=True, flow=False, move_rate=5.0) -> SimConfig:
    venue = lambda name, port, lag: {  # noqa: E731
        "name": name, "port": port,
        "flow": {"enabled": flow, "rate_per_s": 20, "initial_levels": 0, "level_qty": 100, "spread_ticks": 1},
        "market": {"lag_us": lag, "lag_jitter_us": 0, "quote_qty": 100, "quote_levels": 1}}
    return SimConfig.model_validate({
        "symbols": [{"symbol": "X", "tick_size": 0.01, "ref_price": 100.0}],
        "venues": [venue("LEAD", 9001, 0), venue("FAST", 9002, 3000), venue("SLOW", 9003, 3000)],
        "market": {"enabled": True, "seed": 3, "move_rate_per_s": move_rate, "competitors_enabled": competitors,
                   "competitors": [{"name": "HFT", "reaction_us": 500, "reaction_jitter_us": 0,
                                    "entry_us": 200, "take_qty": 50}]}})


def _build(cfg: SimConfig, clock: FakeClock):
    engines = {v.name: MatchingEngine([Instrument("X", 0.01, 100.0)], clock, v.name) for v in cfg.venues}
    flows = {v.name: FlowModel(engines[v.name], v.flow, v.seed, owner=f"flow:{v.name}") for v in cfg.venues}
    market, initial = market_from_config(cfg, engines, flows, clock.now())
    for call in initial:
        apply_call(market, call, clock.now())
    return market, engines


def _touches(engines):
    return {n: (e.best_bid("X"), e.best_ask("X")) for n, e in engines.items()}


def test_quoters_show_the_same_price_on_every_venue_at_start():
    clock = FakeClock(10.0)
    _, engines = _build(_config(), clock)
    assert set(_touches(engines).values()) == {(10000, 10001)}


def test_followers_lag_the_lead_then_catch_up():
    clock = FakeClock(10.0)
    market, engines = _build(_config(competitors=False), clock)
    pf = market.sources[0]
    first = pf.next_time()
    drive(market, clock, first + 0.0001)          # the move, and the lead's requote at lag 0
    t = _touches(engines)
    assert t["LEAD"] != t["FAST"] and t["FAST"] == t["SLOW"]          # followers stale
    drive(market, clock, first + 0.0031)
    t = _touches(engines)
    assert t["LEAD"] == t["FAST"] == t["SLOW"]                         # caught up


def test_competitors_take_stale_quotes_on_the_followers_before_they_requote():
    clock = FakeClock(10.0)
    market, engines = _build(_config(), clock)
    comp = market.sources[-1]
    first = market.sources[0].next_time()
    drive(market, clock, first + 0.0008)          # move + 0.5 ms reaction + 0.2 ms entry
    assert comp.stats["iocs"] == 2                # one per stale follower
    assert comp.stats["filled_qty"] == 100        # 50 on each follower's stale quote
    drive(market, clock, 60.0)
    assert comp.stats["filled_qty"] > 100 and market.sources[0].moves > 100


def test_without_competitors_nobody_takes_the_stale_quotes():
    clock = FakeClock(10.0)
    market, engines = _build(_config(competitors=False), clock)
    drive(market, clock, 60.0)
    assert sum(e.trades for e in engines.values()) == 0


def test_same_seed_same_market_with_background_flow():
    def run():
        clock = FakeClock(10.0)
        market, engines = _build(_config(flow=True), clock)
        drive(market, clock, 30.0)
        return _touches(engines), [e.trades for e in engines.values()], market.sources[-1].stats

    a, b = run(), run()
    assert a == b
    assert sum(a[1]) > 0


def test_a_scenario_plugs_in_as_a_flow_source():
    """The plug point for scenario generators: next_time() + step(now) -> EngineCalls."""
    class Wall:
        def __init__(self) -> None:
            self.sched = Scheduled()
            self.sched.at(11.0, "wall")

        def next_time(self) -> float:
            return self.sched.next_time()

        def step(self, now: float) -> list[EngineCall]:
            self.sched.pop_due(now)
            return [EngineCall("FAST", lambda eng: eng.new_order("flow:wall", "W1", "X", "1", 5000, "2", 99.95))]

    clock = FakeClock(10.0)
    market, engines = _build(_config(competitors=False, move_rate=0), clock)
    market.add_source(Wall())
    drive(market, clock, 12.0)
    assert (9995, 5000) in engines["FAST"].levels("X", "1")
