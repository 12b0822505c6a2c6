"""Order-path warming (``warm_every_ms``, gateway/apps/server/warm.py): synthetic orders run on
twins while idle, and nothing real moves: not the real sessions, journal, orders or sockets."""
from __future__ import annotations

import asyncio
import gc
import sys
import time

import pytest

from gateway.apps.server import warm
from gateway.apps.server.app import Gateway
from gateway.apps.server.config import GatewayConfig
from gateway.common import procs
from stack import Stack


def _config(tmp, **extra) -> GatewayConfig:
    return GatewayConfig.model_validate({
        "engine": "native", "store_dir": str(tmp / "gw-store"), "log_dir": "",
        "oms": {"port": procs.free_port(), "clients": [{"comp_id": "OMS1"}]},
        "venues": [{"name": "ALPHA", "port": procs.free_port(), "reconnect_s": 60}],   # nobody listens
        "routing": {"policy": "scalp", "md_symbols": ["AAPL"]}, **extra})


def test_config_names_the_field():
    with pytest.raises(ValueError, match="warm_every_ms: only the native engine"):
        GatewayConfig.model_validate({"engine": "quickfix", "warm_every_ms": 1, "oms": {"port": 1, "clients": [{"comp_id": "O"}]},
                                      "venues": [{"name": "A", "port": 2}]})
    with pytest.raises(ValueError, match="warm_every_ms: 0.05 is below 0.1 ms"):
        GatewayConfig.model_validate({"warm_every_ms": 0.05, "oms": {"port": 1, "clients": [{"comp_id": "O"}]},
                                        "venues": [{"name": "A", "port": 2}]})


def test_synthetic_orders_reach_only_the_twins_and_the_twin_is_trimmed(tmp_path, monkeypatch):
    """In process: the warmer's orders route on the twin (DMA, whatever the real policy); every
    TRIM_EVERY orders the twin forgets them and empties its journal; the real gateway's
    journal, orders and session sequence numbers do not move."""
    monkeypatch.setattr(warm, "TRIM_EVERY", 5)

    async def run() -> None:
        gw = Gateway(_config(tmp_path, warm_every_ms=1000))     # the timer's first tick after 1 s: driven by hand here
        await gw.start()
        try:
            w = gw.warmer
            assert w is not None and w.twin is not None             # built at start
            oms_ns = next(iter(gw._acceptor.sessions.values()))
            venue_ns = next(iter(gw._initiators[0].sessions.values()))
            before = (gw.core.journal.records_written, gw.orders.summary()["total"],
                      oms_ns.next_sender_seq, venue_ns.next_sender_seq, oms_ns.next_target_seq)
            for _ in range(12):
                w.warm()
            assert (w.warmed, w.routed, w.trims) == (12, 12, 2)        # trimmed before the 6th and the 11th
            twin = w.twin.gateway
            assert twin.orders.summary()["filled"] == 12               # each synthetic order filled ...
            assert len(twin.orders.by_order_id) == 2                   # ... and only the last two kept
            assert twin.risk is not gw.risk and twin.core.journal is not gw.core.journal
            journal = (tmp_path / "gw-store" / "warm" / "orders.journal").read_text()
            assert journal.count('"WARM-') == 2 and '"WARM-11"' in journal    # emptied at the last trim
            assert (gw.core.journal.records_written, gw.orders.summary()["total"], oms_ns.next_sender_seq,
                    venue_ns.next_sender_seq, oms_ns.next_target_seq) == before
            assert "WARM" not in (tmp_path / "gw-store" / "orders.journal").read_text()
            assert gw.status()["gateway"]["warming"]["routed"] == 12
        finally:
            await gw.stop()
        assert w.twin is None                                           # stop drops the twin

    asyncio.run(run())


def test_trimmed_orders_are_freed_even_when_the_collector_froze_them(tmp_path, monkeypatch):
    """Each synthetic order is a parent/child cycle; the loop's collector freezes what lives
    through a sweep (common/collector.py), and a frozen cycle is never collected again. After
    a trim nothing but this test holds the twin's orders and children (reference counts, not
    the collector): they go by reference counting, frozen or not."""
    monkeypatch.setattr(warm, "TRIM_EVERY", 1_000)

    async def run() -> None:
        gw = Gateway(_config(tmp_path, warm_every_ms=1000))
        await gw.start()
        try:
            w = gw.warmer
            for _ in range(20):
                w.warm()
            twin = w.twin
            orders = list(twin.gateway.orders.by_order_id.values())
            children = [c for o in orders for c in o.children]
            assert len(orders) == len(children) == 20
            gc.freeze()
            try:
                w._trim(twin)
            finally:
                gc.unfreeze()
            # held by nothing but the list: as many references as a bare object in the same list
            children.append(object())
            refs = [sys.getrefcount(c) for c in children]
            assert refs == [refs[-1]] * 21
            del children
            orders.append(object())
            refs = [sys.getrefcount(o) for o in orders]
            assert refs == [refs[-1]] * 21
        finally:
            await gw.stop()

    asyncio.run(run())


def test_a_failure_turns_warming_off_and_the_gateway_goes_on(tmp_path):
    async def run() -> None:
        gw = Gateway(_config(tmp_path, warm_every_ms=0.5))
        await gw.start()
        try:
            w = gw.warmer
            w.symbol = "A\x01B"             # an order the twin OMS session rejects: no message to route
            await asyncio.sleep(0.05)
            assert w.failed and "did not accept" in w.failed and w._timer is None
            assert gw.status()["gateway"]["warming"]["failed"] == w.failed
        finally:
            await gw.stop()

    asyncio.run(run())


@pytest.fixture
def warm_stack(tmp_path):
    s = Stack(tmp_path, engine="native")
    s.start_sim("a", [{"name": "ALPHA", "seed": 1}])
    s.start_gateway(venue_options={"probes": False, "market_data": False}, extra={"warm_every_ms": 1.0})
    yield s
    s.stop()


def test_live_gateway_warms_while_idle_and_real_orders_are_untouched(warm_stack, tmp_path):
    """Over loopback against the simulator: while idle the warmer runs (and the real venue
    session sends nothing: probes and market data off); a real order then fills as usual,
    with one report and nothing of the warmer's reaching the OMS."""
    s = warm_stack
    st = s.wait_status(lambda st: (st["gateway"]["warming"] or {}).get("warmed", 0) >= 20, "20 warm-ups")
    seq0 = st["venues"][0]["next_sender_seq"]
    assert seq0 is not None
    w0 = st["gateway"]["warming"]
    assert w0["routed"] == w0["warmed"] and w0["failed"] is None
    time.sleep(0.3)
    st = s.status()
    assert st["gateway"]["warming"]["warmed"] > w0["warmed"]                 # still warming while idle
    assert st["venues"][0]["next_sender_seq"] == seq0                         # nothing sent to the venue
    assert st["orders"]["total"] == 0

    oms = s.oms()
    oms.order("w1", qty=100, price="200.00")
    reps = oms.reports("w1")
    assert [r[39] for r in reps if r[39] in {"2", "4", "8"}] == ["2"]
    assert all(r[11] == "w1" for r in reps)
    assert s.status()["orders"]["total"] == 1
    assert "WARM" not in (tmp_path / "gw-store" / "orders.journal").read_text()
