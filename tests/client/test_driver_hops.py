"""StrategyDriver's order path inside a market data batch: the NOS is written at once, and
the client-side hop times (bytes read, on the wire, report read) are kept per order."""
from __future__ import annotations

import pytest

from gateway.apps.client.driver import StrategyDriver
from gateway.apps.client.feed import MarketFeed, VenueAddress
from gateway.common.clock import FakeClock
from gateway.core.strategies.base import PlaceOrder


class Session:
    """A native session handle's surface: ``send`` queues, ``flush`` writes (both logged)."""
    target_comp_id = "FIXGW"

    def __init__(self, calls, flushable=True):
        self.calls = calls
        self.received_at = None
        if flushable:
            self.flush = lambda: calls.append("flush")

    def send(self, msg_type, body):
        self.calls.append(f"send {msg_type}")
        return True


class OneEntry:
    name = "one"
    timer_interval_s = 1.0

    def __init__(self, calls):
        self.calls = calls
        self.reports = []

    def on_book(self, ev, market):
        self.calls.append("strategy")
        return [PlaceOrder(cl_ord_id="E-1", symbol="EURUSD", side="1", qty=100, price=1.1, venue=None,
                           reason="entry:entry")]

    def on_trade(self, ev, market):
        return []

    def on_timer(self, now, market):
        return []

    def on_report(self, rep, market):
        self.reports.append(rep)
        return []


class Msg:
    msg_type = "8"

    def __init__(self, fields):
        self.fields = fields

    def get(self, tag, default=None):
        return self.fields.get(tag, default)


def setup(flushable=True):
    clock = FakeClock(100.0)
    feed = MarketFeed([VenueAddress(name="BRAVO", host="127.0.0.1", port=1)], ["EURUSD"], {"EURUSD": 0.00001},
                      clock=clock)
    calls: list[str] = []
    driver = StrategyDriver(OneEntry(calls), feed, clock=clock, wall=lambda: 1_700_000_000.0)
    session = Session(calls, flushable)
    driver.on_logon(session)
    driver.trading = True
    return clock, feed, driver, session, calls


def test_an_entry_from_market_data_is_written_at_once_with_its_hop_times():
    clock, feed, driver, session, calls = setup()
    feed.last_read_at = 99.9990                 # the triggering bytes were read 1 ms ago (engine clock)
    clock.advance(0.0002)
    driver._on_market("book", "BRAVO", "EURUSD", 1.1, 100.0, None, 99.9995)
    assert calls == ["strategy", "send D", "flush"]        # not left for the end of the market data pump
    e = driver.log.orders["E-1"]
    assert (e.md_read_at, e.signal_at) == (99.9990, 99.9995)
    assert e.sent_at == e.written_at == pytest.approx(100.0002)
    session.received_at = 100.0010
    clock.advance(0.0010)
    driver.on_message(session, Msg({11: "E-1", 150: "F", 39: "2", 32: "100", 31: "1.1", 14: "100", 151: "0",
                                    30: "ALPHA"}))
    assert e.report_read_at == 100.0010 and e.first_report_at == pytest.approx(100.0012) and e.done


def test_a_session_without_flush_still_sends():
    clock, feed, driver, session, calls = setup(flushable=False)
    driver._on_market("book", "BRAVO", "EURUSD", 1.1, 100.0, None, 100.0)
    assert calls == ["strategy", "send D"]
    assert driver.log.orders["E-1"].written_at == 100.0 and driver.log.orders["E-1"].md_read_at is None
