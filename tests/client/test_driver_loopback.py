"""StrategyDriver + MarketFeed + ClientRuntime over loopback against a small native-engine
fake venue (market data, probes) and fake gateway (fills, then BusinessMessageReject)."""
from __future__ import annotations

import asyncio
import time
import threading

import pytest

from gateway.apps.client.driver import StrategyDriver
from gateway.apps.client.feed import MarketFeed, VenueAddress
from gateway.apps.client.runtime import ClientRuntime
from gateway.core.strategies.base import PlaceOrder
from gateway.fix.engine import BaseApplication, create_engine
from gateway.fix.settings import SessionSettings
from gateway.fix.transport import new_event_loop

SNAP = "262={req}\x0155=EURUSD\x01268=2\x01269=0\x01270=1.10000\x01271=900\x01269=1\x01270=1.10001\x01271=100\x01"


class FakeVenue(BaseApplication):
    def on_message(self, session, msg):
        if msg.msg_type == "V":
            session.send("W", SNAP.format(req=msg.get(262)))


class FakeGateway(BaseApplication):
    """Fills the first order at its limit; refuses every later one with a BusinessMessageReject."""

    def __init__(self):
        self.orders = []

    def on_message(self, session, msg):
        if msg.msg_type != "D":
            return
        self.orders.append(msg)
        cl, px, qty = msg.get(11), msg.get(44) or "1.1", msg.get(38)
        if len(self.orders) == 1:
            session.send("8", f"37=O1\x0111={cl}\x0117=E1\x01150=F\x0139=2\x0155=EURUSD\x0154={msg.get(54)}\x01"
                              f"38={qty}\x0132={qty}\x0131={px}\x01151=0\x0114={qty}\x016={px}\x0130=ALPHA\x01")
        else:
            session.send("j", f"45={msg.seq_num}\x01372=D\x01379={cl}\x01380=0\x0158=risk says no\x01")


class TwoOrders:
    """Places two IOCs on its first timer; records the reports."""
    name = "two"
    timer_interval_s = 0.01

    def __init__(self):
        self.sent = False
        self.reports = []
        self.stopped = False

    def on_book(self, ev, market):
        return []

    def on_trade(self, ev, market):
        return []

    def on_timer(self, now, market):
        if self.sent or market.book("ALPHA", "EURUSD") is None:
            return []
        self.sent = True
        px = market.book("ALPHA", "EURUSD").best_ask()[0]
        return [PlaceOrder(cl_ord_id=f"T-{i}", symbol="EURUSD", side="1", qty=100, price=px) for i in (1, 2)]

    def on_report(self, ev, market):
        self.reports.append(ev)
        return []

    def stop(self, now, market):
        self.stopped = True
        return []

    def is_flat(self):
        return len([r for r in self.reports if r.ord_status in "28"]) == 2


class Fakes:
    """The fake venue and gateway on a loop of their own (another thread, as another process would be)."""

    def __init__(self):
        self.loop = new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.gateway = FakeGateway()

    def start(self):
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self):
        self.venue_engine = create_engine("native", "acceptor", [SessionSettings(
            sender_comp_id="ALPHA", target_comp_id="CLIENT", role="acceptor", reset_on_logon=True)], FakeVenue())
        self.gw_engine = create_engine("native", "acceptor", [SessionSettings(
            sender_comp_id="FIXGW", target_comp_id="DEMO", role="acceptor", reset_on_logon=True)], self.gateway)
        await self.venue_engine.start()
        await self.gw_engine.start()
        return self.venue_engine.port, self.gw_engine.port

    def stop(self):
        async def down():
            await self.gw_engine.stop()
            await self.venue_engine.stop()
        asyncio.run_coroutine_threadsafe(down(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.mark.timeout(30)
def test_orders_filled_and_refused_are_all_accounted_for_over_loopback():
    fakes = Fakes()
    venue_port, gw_port = fakes.start()
    strategy = TwoOrders()
    rt = ClientRuntime(strategy, oms=("127.0.0.1", gw_port), venues=[VenueAddress(name="ALPHA", host="127.0.0.1",
                                                                                    port=venue_port)],
                       symbols=["EURUSD"], ticks={"EURUSD": 0.00001}, probe_interval_s=0.02)
    try:
        rt.start(timeout=10)
        rt.start_trading()
        assert rt.drain(timeout=10), rt.call(lambda: [e.status for e in rt.driver.log.entries()])
        rt.stop_trading()
        entries = rt.call(rt.driver.log.entries)
        deadline = time.monotonic() + 5      # the orders may finish before the first probe (every 20 ms) is answered
        while (rtt := rt.call(lambda: rt.feed.latency["ALPHA"].count)) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        rt.stop()
        fakes.stop()
    assert [e.status for e in entries] == ["2", "8"] and all(e.done for e in entries)
    filled, refused = entries
    assert filled.cum_qty == 100 and filled.venue == "ALPHA" and filled.fills == [(100.0, 1.10001, "ALPHA")]
    assert filled.signal_at <= filled.sent_at <= filled.first_report_at <= filled.done_at
    assert "refused by the gateway: risk says no" in refused.text
    assert [(r.cl_ord_id, r.ord_status) for r in strategy.reports] == [("T-1", "2"), ("T-2", "8")]
    wire = fakes.gateway.orders[0]
    assert (wire.get(44), wire.get(59), wire.get(40), wire.get(38)) == ("1.10001", "3", "2", "100")
    assert strategy.stopped and rtt > 0                      # our own probes measured the venue


def test_an_order_that_cannot_be_sent_gets_a_terminal_report():
    strategy = TwoOrders()
    feed = MarketFeed([VenueAddress(name="ALPHA", host="127.0.0.1", port=1)], ["EURUSD"], {"EURUSD": 0.00001})
    driver = StrategyDriver(strategy, feed)
    driver.begin_stop()            # after stop(): orders the strategy returns are still sent and accounted
    driver._run(lambda: [PlaceOrder(cl_ord_id="X-1", symbol="EURUSD", side="2", qty=5, price=1.1,
                                    reason="exit:stop")], 0.0)
    (entry,) = driver.log.entries()
    assert entry.done and entry.status == "8" and "OMS session down" in entry.text
    assert driver.stats["send_failures"] == 1 and strategy.reports[0].ord_status == "8"


@pytest.mark.timeout(30)
def test_the_runtime_runs_the_collector_on_its_loop_and_puts_cpython_back_at_stop():
    """The demo's client (ClientRuntime.run_collector): the [collector] policy on the client's
    loop sweeps at a pause after the orders; stop() restores CPython's own collector."""
    import gc

    from gateway.common.collector import SWEEP, CollectorConfig
    before = (gc.isenabled(), gc.get_threshold())
    fakes = Fakes()
    venue_port, gw_port = fakes.start()
    rt = ClientRuntime(TwoOrders(), oms=("127.0.0.1", gw_port), venues=[VenueAddress(name="ALPHA", host="127.0.0.1",
                                                                                      port=venue_port)],
                       symbols=["EURUSD"], ticks={"EURUSD": 0.00001}, probe_interval_s=0.02)
    try:
        rt.start(timeout=10)
        collector = rt.run_collector(CollectorConfig(idle_ms=20))
        assert gc.get_threshold()[0] == 2 * collector.cfg.young_max      # the backstop, while it runs
        rt.start_trading()
        assert rt.drain(timeout=10)
        deadline = time.monotonic() + 5
        while rt.call(lambda: collector.counts[SWEEP]) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert collector.counts[SWEEP] >= 1
    finally:
        rt.stop()
        fakes.stop()
        gc.unfreeze()                        # the sweeps froze this test process's objects too
    assert (gc.isenabled(), gc.get_threshold()) == before
