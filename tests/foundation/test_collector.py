"""The collector policy (gateway/common/collector.py): when to collect, from counts and an
injected clock; its config; and on a real loop, that a cycle made while trading is freed."""
from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from gateway.common.collector import (DEEP, NOTHING, SWEEP, YOUNG, CollectorConfig, CollectorPolicy, GcStats,
                                      LoopCollector)
from gateway.common.configfile import ConfigError, load_config
from gateway.fix.transport import new_event_loop

MS = 1e-3


def policy(**kw) -> CollectorPolicy:
    args = dict(idle_s=4 * MS, young_max=1000, pending_max=0, deep_after=0, deep_idle_s=1.0, deep_max=0, slack=32)
    args.update(kw)
    return CollectorPolicy(**args)


def test_a_quiet_loop_is_left_alone():
    p = policy()
    assert [p.check(t * MS, 5) for t in range(0, 100, 2)] == [NOTHING] * 50
    assert p.at_rest


def test_growth_within_the_slack_is_not_activity():
    p = policy()
    young = 0
    for t in range(0, 100, 2):
        young += 10                     # timers and buffers coming and going
        assert p.check(t * MS, young if young < 30 else 30) == NOTHING


def test_one_sweep_once_the_flow_pauses_then_nothing():
    p = policy()
    assert p.check(0.0, 0) == NOTHING
    assert p.check(2 * MS, 400) == NOTHING          # orders arriving
    assert p.check(4 * MS, 800) == NOTHING
    assert p.check(6 * MS, 800) == NOTHING          # quiet for 2 ms: not yet
    assert p.check(8 * MS, 800) == SWEEP            # quiet for 4 ms: sweep
    p.collected(SWEEP, 800, 100)
    assert p.frozen == 700 and p.at_rest
    assert [p.check(t * MS, 3) for t in range(10, 60, 2)] == [NOTHING] * 25   # one sweep per pause


def test_a_pause_after_next_to_nothing_costs_no_collection():
    p = policy()
    p.check(0.0, 0)
    p.check(2 * MS, 40)                             # a heartbeat's worth of objects
    assert p.check(7 * MS, 10) == NOTHING
    assert p.at_rest


def test_non_stop_flow_collects_at_young_max():
    p = policy(young_max=1000)
    young, actions = 0, []
    for t in range(0, 200, 2):                      # never a pause: 300 objects per look
        young += 300
        a = p.check(t * MS, young)
        actions.append(a)
        if a != NOTHING:
            p.collected(a, young, 50)
            young = 0
    assert set(actions) == {NOTHING, SWEEP}
    assert actions.count(SWEEP) == 25               # every 4th look: 1,200 objects >= 1,000
    assert p.frozen == 25 * 1150


def test_pending_max_keeps_survivors_for_one_more_look():
    p = policy(young_max=1000, pending_max=2500)
    young, actions = 0, []
    for t in range(0, 60, 2):
        young += 500
        a = p.check(t * MS, young)
        if a != NOTHING:
            actions.append(a)
            p.collected(a, young, 100)              # 400 of each batch survive
            young = 0
    # YOUNG keeps 900 per collection pending; at >= 2500 pending the next one is a sweep
    assert actions[:8] == [YOUNG, YOUNG, YOUNG, SWEEP] * 2


def test_deep_collection_at_a_long_pause_once_enough_was_frozen():
    p = policy(deep_after=5000, deep_idle_s=0.1)
    p.check(0.0, 0)
    p.check(2 * MS, 6000)
    assert p.check(10 * MS, 6000) == SWEEP
    p.collected(SWEEP, 6000, 0)
    assert p.check(50 * MS, 0) == NOTHING           # idle 48 ms < 100 ms
    assert p.check(103 * MS, 0) == DEEP
    p.collected(DEEP, 0, 12)
    assert p.frozen == 0 and p.check(300 * MS, 0) == NOTHING


def test_deep_max_bounds_the_frozen_objects_under_non_stop_flow():
    p = policy(young_max=1000, deep_after=0, deep_max=3000)
    young, actions = 0, []
    for t in range(0, 40, 2):
        young += 600
        a = p.check(t * MS, young)
        if a != NOTHING:
            actions.append(a)
            p.collected(a, young, 0)
            young = 0
    assert actions[:4] == [SWEEP, SWEEP, SWEEP, DEEP]    # 3 x 1,200 frozen >= 3,000


# ------------------------------------------------------------------ config

def test_defaults_and_the_gateway_section(tmp_path):
    from gateway.apps.server.config import GatewayConfig
    path = tmp_path / "gw.toml"
    base = '[oms]\nclients = [{ comp_id = "OMS1" }]\n[[venues]]\nname = "V"\nport = 9000\n'
    path.write_text(base)
    cfg = load_config(path, GatewayConfig)
    assert cfg.collector == CollectorConfig() and cfg.collector.mode == "loop"
    path.write_text(base + '[collector]\nyoung_max = 2000\nidle_ms = 10\n')
    assert load_config(path, GatewayConfig).collector.young_max == 2000


@pytest.mark.parametrize("line, field", [("young_max = 10", "collector.young_max"),
                                         ("idle_ms = 0", "collector.idle_ms"),
                                         ('mode = "off"', "collector.mode"),
                                         ("pending_max = -1", "collector.pending_max"),
                                         ("young_maxx = 3", "collector.young_maxx")])
def test_a_bad_value_names_the_field(tmp_path, line, field):
    from gateway.apps.server.config import GatewayConfig
    path = tmp_path / "gw.toml"
    path.write_text('[oms]\nclients = [{ comp_id = "OMS1" }]\n[[venues]]\nname = "V"\nport = 9000\n'
                    f'[collector]\n{line}\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, GatewayConfig)
    assert f"  {field}:" in str(err.value)


# ------------------------------------------------------------------ a real loop

class Node:
    def __init__(self) -> None:
        self.other: Node | None = None
        self.payload = [0] * 8


def cycle() -> tuple[Node, weakref.ref]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(b)


@pytest.fixture
def clean_gc():
    """Whatever the test froze is unfrozen and the collector is as before, whatever happens."""
    enabled, thresholds = gc.isenabled(), gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    (gc.enable if enabled else gc.disable)()


def trade(loop_collector: LoopCollector, orders: int, keep: list, made: list, pause: float,
          stats: GcStats | None = None) -> bool:
    """On a real asyncio loop: ``orders`` 'orders' ~0.2 ms apart (each leaves objects alive in
    ``keep``, as the gateway's order maps do), one cycle made and dropped in the middle of
    the flow (``made`` gets its weak reference), then a pause of ``pause`` seconds. Returns
    whether the cycle was already freed when the flow ended (before the pause). ``stats``
    counts the collections from the collector's start on (not the loop's imports)."""
    loop = new_event_loop()
    freed_in_flow = []

    async def main() -> None:
        loop_collector.start(asyncio.get_running_loop())
        if stats is not None:
            stats.install()
        try:
            for i in range(orders):
                keep.append((Node(), [[i] for _ in range(40)]))   # > SLACK objects per order
                if i == orders // 2:
                    made.append(cycle()[1])    # garbage at once: only a collection frees a cycle
                await asyncio.sleep(0.0002)
            freed_in_flow.append(made[0]() is None)
            await asyncio.sleep(pause)
        finally:
            loop_collector.stop()
            if stats is not None:
                stats.uninstall()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    return freed_in_flow[0]


def test_a_cycle_made_while_trading_is_freed_at_the_next_pause(clean_gc):
    gc.collect()
    gc.freeze()                                    # as app.serve does
    # young_max (and the backstop, 2 x young_max) out of reach: the pause's sweep is the only collection
    col = LoopCollector(CollectorConfig(check_ms=1, idle_ms=50, young_max=1_000_000))   # 50: a loaded machine
    stats = GcStats()
    keep: list = []
    made: list = []
    freed_in_flow = trade(col, 300, keep, made, pause=0.4, stats=stats)
    assert not freed_in_flow                       # nothing collected while the orders flowed ...
    assert made[0]() is None                       # ... the sweep at the pause freed it
    assert col.counts[SWEEP] >= 1 and col.counts[DEEP] == 0
    assert stats.count[0] == 0                     # not CPython's automatic collector
    assert all(k[0].payload == [0] * 8 for k in keep)   # what lives is untouched


def test_under_non_stop_flow_a_cycle_is_freed_without_a_pause(clean_gc):
    gc.collect()
    gc.freeze()
    # young_max 2,000 (the backstop at 4,000): the count takes tens of ms to cross the window
    # between them, so a check (every 1 ms, 10 at rest) lands in it even on a loaded machine;
    # at 200 the window was ~1-2 ms of flow and CI once saw only the backstop run
    col = LoopCollector(CollectorConfig(check_ms=1, idle_ms=1000, young_max=2000))
    keep: list = []
    made: list = []
    assert trade(col, 1200, keep, made, pause=0.0)   # freed during the flow: at young_max
    assert col.counts[SWEEP] >= 1                  # (or by the backstop, if the loop lagged)


def test_a_cycle_frozen_alive_is_freed_by_the_deep_collection_only(clean_gc):
    gc.collect()
    gc.freeze()
    a, ref = cycle()
    col = LoopCollector(CollectorConfig(check_ms=1, idle_ms=2, young_max=100_000, deep_after=0))
    loop = asyncio.new_event_loop()
    try:
        col.start(loop)
        for _ in range(100):                       # activity, then a pause: one sweep, the cycle survives it
            Node()
        keep = [Node() for _ in range(50)]
        loop.run_until_complete(asyncio.sleep(0.05))
        assert col.counts[SWEEP] == 1 and ref() is not None
        del a                                      # the cycle is garbage now, but frozen:
        gc.collect(1)                              # no young or pending collection finds it
        assert ref() is not None
        col.run(DEEP, gc.get_count()[0])           # the deep one does
        assert ref() is None
    finally:
        col.stop()
        loop.close()
    assert keep


def test_python_mode_leaves_cpython_in_charge(clean_gc):
    col = LoopCollector(CollectorConfig(mode="python", thresholds=(900, 11, 12)))
    loop = asyncio.new_event_loop()
    try:
        col.start(loop)
        assert gc.get_threshold() == (900, 11, 12) and col._timer is None
    finally:
        col.stop()
        loop.close()
    assert col.line().startswith("collector: CPython's")
