"""Positions/PnL (average cost) and the kill switch: triggers, states, manual trip and reset."""
from __future__ import annotations

import itertools

import pytest

from gateway.common.clock import FakeClock
from gateway.core.model import BUY, LIMIT, SELL, OrderIntent
from gateway.core.risk import ACTIVE, HALTED, REDUCING, RiskConfig, RiskEngine
from gateway.core.risk.killswitch import RollingLoss

SESSION = "FIX.4.4:GW->OMS1"
_ids = itertools.count()


def order(side=BUY, qty=10, price=100.0, symbol="AAPL"):
    return OrderIntent(SESSION, f"k{next(_ids)}", symbol, side, float(qty), LIMIT, price, "0")


class Trips:
    """The firm trips so far, read from the engine's history (risk returns changes, it calls no one)."""

    def __init__(self, eng: RiskEngine) -> None:
        self.eng = eng

    def _list(self) -> list[str]:
        return [h["reason"] for h in self.eng.history if h["state"] == HALTED and "session" not in h]

    def __eq__(self, other) -> bool:
        return self._list() == other

    def __len__(self) -> int:
        return len(self._list())

    def __getitem__(self, i):
        return self._list()[i]


def make(clock=None, marks=None, **cfg):
    eng = RiskEngine(RiskConfig.model_validate(cfg), clock or FakeClock(), marks.get if marks is not None else None)
    return eng, Trips(eng)


def fill(eng, side, qty, px, symbol="AAPL"):
    intent = order(side, qty, px, symbol)
    assert eng.check(intent) is None
    eng.on_fill(intent, qty, px)
    eng.on_order_done(intent, 0)


# ---- positions and PnL ----------------------------------------------------------------------

def test_average_cost_and_realized_pnl():
    eng, _ = make()
    fill(eng, BUY, 100, 10.0)
    fill(eng, BUY, 100, 12.0)
    pos = eng.snapshot()["positions"]["AAPL"]
    assert pos["qty"] == 200 and pos["avg_cost"] == pytest.approx(11.0)
    fill(eng, SELL, 50, 13.0)
    pos = eng.snapshot()["positions"]["AAPL"]
    assert pos["qty"] == 150 and pos["avg_cost"] == pytest.approx(11.0)
    assert pos["realized_pnl"] == pytest.approx(100.0)


def test_flip_long_to_short_opens_remainder_at_fill_price():
    eng, _ = make()
    fill(eng, BUY, 100, 10.0)
    fill(eng, SELL, 150, 9.0)        # closes 100 at a loss of 1, opens 50 short at 9
    pos = eng.snapshot()["positions"]["AAPL"]
    assert pos["qty"] == -50 and pos["avg_cost"] == pytest.approx(9.0)
    assert pos["realized_pnl"] == pytest.approx(-100.0)
    fill(eng, BUY, 80, 8.0)          # covers 50 short at +1, opens 30 long at 8
    pos = eng.snapshot()["positions"]["AAPL"]
    assert pos["qty"] == 30 and pos["avg_cost"] == pytest.approx(8.0)
    assert eng.realized_pnl == pytest.approx(-50.0)
    fill(eng, SELL, 30, 8.5)
    pos = eng.snapshot()["positions"]["AAPL"]
    assert pos["qty"] == 0 and pos["avg_cost"] == 0.0 and pos["unrealized_pnl"] == 0.0
    assert eng.realized_pnl == pytest.approx(-35.0)


def test_unrealized_pnl_per_symbol_and_total():
    marks = {"AAPL": 10.0, "MSFT": 50.0}
    eng, _ = make(marks=marks)
    fill(eng, BUY, 100, 10.0)
    fill(eng, SELL, 10, 50.0, symbol="MSFT")
    eng.on_mark("AAPL", 10.5)
    eng.on_mark("MSFT", 49.0)
    snap = eng.snapshot()
    assert snap["positions"]["AAPL"]["unrealized_pnl"] == pytest.approx(50.0)
    assert snap["positions"]["MSFT"]["unrealized_pnl"] == pytest.approx(10.0)
    assert snap["unrealized_pnl"] == pytest.approx(60.0)
    assert snap["gross_exposure"] == pytest.approx(100 * 10.5 + 10 * 49.0)


def test_refresh_marks_pulls_from_the_mark_function():
    marks = {"AAPL": 10.0}
    eng, _ = make(marks=marks)
    fill(eng, BUY, 100, 10.0)
    marks["AAPL"] = 9.0
    eng.refresh_marks()
    assert eng.unrealized_pnl == pytest.approx(-100.0)


def test_partial_fills_release_open_exposure():
    eng, _ = make(max_position=100)
    big = order(BUY, 100)
    assert eng.check(big) is None
    eng.on_fill(big, 40, 100.0)
    pos = eng.snapshot()["positions"]["AAPL"]
    assert pos["qty"] == 40 and pos["open_buy"] == 60
    assert eng.check(order(BUY, 1)).check == "max_position"
    eng.on_order_done(big, 60)
    assert eng.snapshot()["positions"]["AAPL"]["open_buy"] == 0
    assert eng.check(order(BUY, 60)) is None


# ---- kill switch triggers ---------------------------------------------------------------------

def test_rolling_window_loss_trips_once_with_the_numbers():
    clock = FakeClock()
    eng, trips = make(clock, loss_threshold=500, loss_window_s=1.0)
    fill(eng, BUY, 100, 100.0)
    clock.advance(0.3)
    eng.on_mark("AAPL", 97.0)        # -300
    assert eng.state == ACTIVE
    clock.advance(0.3)
    eng.on_mark("AAPL", 94.9)        # -510 within 0.6 s
    assert eng.state == HALTED
    assert trips == [eng.trip_reason]
    assert "510.00" in trips[0] and "loss_threshold 500" in trips[0]
    eng.on_mark("AAPL", 90.0)        # deeper: still one trip
    assert len(trips) == 1


def test_loss_spread_beyond_the_window_does_not_trip():
    clock = FakeClock()
    eng, trips = make(clock, loss_threshold=500, loss_window_s=1.0)
    fill(eng, BUY, 100, 100.0)
    for _ in range(8):               # -300 every 1.01 s: 2400 in total, never 500 inside 1 s
        clock.advance(1.01)
        eng.on_mark("AAPL", eng.snapshot()["positions"]["AAPL"]["mark"] - 3.0)
    assert eng.total_pnl == pytest.approx(-2400.0)
    assert eng.state == ACTIVE and trips == []


def test_rolling_loss_uses_the_value_in_effect_at_window_start():
    loss = RollingLoss(1.0, 64, 0.0, 0.0)
    assert loss.add(0.5, 100.0) == 0.0
    assert loss.add(0.9, 40.0) == pytest.approx(60.0)
    assert loss.add(1.6, 40.0) == pytest.approx(60.0)  # window [0.6, 1.6]: 100 was in effect until 0.9
    assert loss.add(2.0, 40.0) == pytest.approx(0.0)   # window [1.0, 2.0]: the peak left it
    assert loss.add(2.1, 30.0) == pytest.approx(10.0)

def test_daily_loss_limit():
    clock = FakeClock()
    eng, trips = make(clock, daily_loss_limit=1000)
    fill(eng, BUY, 100, 100.0)
    for step in range(1, 11):        # slow bleed of 100 every 10 s
        clock.advance(10)
        eng.on_mark("AAPL", 100.0 - step)
    assert eng.state == ACTIVE       # exactly 1000: not beyond the limit
    clock.advance(10)
    eng.on_mark("AAPL", 89.99)
    assert eng.state == HALTED and len(trips) == 1
    assert "daily loss: 1001.00" in trips[0] and "daily_loss_limit 1000" in trips[0]


def test_venue_reject_spike():
    clock = FakeClock()
    eng, trips = make(clock, firm_venue_reject_threshold=3, venue_reject_window_s=1.0)
    eng.on_venue_reject("V1")
    clock.advance(0.6)
    eng.on_venue_reject("V2")
    clock.advance(0.6)               # the first left the window
    eng.on_venue_reject("V1")
    assert eng.state == ACTIVE
    clock.advance(0.1)
    eng.on_venue_reject("V2")
    assert eng.state == HALTED
    assert trips == ["venue reject spike: 3 rejects within 1s (last from V2) >= firm_venue_reject_threshold 3"]


def test_kill_switch_disabled_never_trips():
    eng, trips = make(kill_switch_enabled=False, daily_loss_limit=1, venue_reject_threshold=1,
                      firm_venue_reject_threshold=1)
    fill(eng, BUY, 100, 100.0)
    eng.on_mark("AAPL", 50.0)
    eng.on_venue_reject("V1")
    assert eng.state == ACTIVE and trips == []


# ---- states -------------------------------------------------------------------------------------

def test_halted_refuses_new_orders_with_the_reason():
    eng, trips = make()
    changed = eng.trip("operator pressed the button", by="alice")
    assert (changed.state, changed.previous, changed.by) == (HALTED, ACTIVE, "alice")
    assert eng.trip("again", by="bob") is None       # already halted: no second change
    assert trips == ["operator pressed the button"]
    rej = eng.check(order())
    assert rej.check == "kill_switch" and "operator pressed the button" in rej.text
    snap = eng.snapshot()
    assert snap["state"] == HALTED and snap["tripped_by"] == "alice"
    assert snap["rejects_by_check"] == {"kill_switch": 1}


def test_only_a_person_resets():
    clock = FakeClock()
    eng, trips = make(clock, loss_threshold=100)
    fill(eng, BUY, 100, 100.0)
    eng.on_mark("AAPL", 98.0)
    assert eng.state == HALTED
    clock.advance(3600)
    assert eng.state == HALTED                      # automatic trips never reset themselves
    for nobody in ("", "  ", "auto"):
        with pytest.raises(ValueError):
            eng.reset(nobody)
    eng.reset("alice")
    assert eng.state == ACTIVE and eng.snapshot()["trip_reason"] is None
    assert eng.check(order(SELL, 100, 98.0)) is None
    eng.on_mark("AAPL", 97.9)                       # the old loss does not re-trip
    assert eng.state == ACTIVE
    eng.on_mark("AAPL", 96.0)                       # a new one does, with a second callback
    assert eng.state == HALTED and len(trips) == 2
    assert [h["by"] for h in eng.history] == ["auto", "alice", "auto"]


def test_reducing_accepts_only_orders_that_shrink_a_position():
    eng, _ = make()
    fill(eng, BUY, 100, 10.0)
    eng.reduce_only("alice")
    assert eng.state == REDUCING
    assert eng.check(order(BUY, 1, 10.0)).check == "reducing_only"
    assert eng.check(order(SELL, 101, 10.0)).check == "reducing_only"   # would flip short
    assert eng.check(order(SELL, 60, 10.0)) is None
    assert eng.check(order(SELL, 41, 10.0)).check == "reducing_only"    # 60 already open to sell
    assert eng.check(order(SELL, 40, 10.0)) is None
    assert eng.check(order(SELL, 1, 10.0, symbol="MSFT")).check == "reducing_only"  # flat: nothing to shrink
    eng.reset("alice")
    assert eng.check(order(BUY, 1, 10.0)) is None


def test_start_new_day_moves_the_daily_baseline():
    eng, trips = make(daily_loss_limit=100)
    fill(eng, BUY, 100, 10.0)
    eng.on_mark("AAPL", 9.5)
    eng.start_new_day("alice")
    eng.on_mark("AAPL", 8.6)         # -140 in total, but only 90 lost today
    assert eng.state == ACTIVE
    eng.on_mark("AAPL", 8.4)         # 110 lost today
    assert eng.state == HALTED


def test_format_snapshot_names_state_reason_and_positions():
    from gateway.core.risk import format_snapshot
    eng, _ = make(max_order_qty=5)
    fill(eng, BUY, 5, 10.0)
    eng.check(order(BUY, 6))
    eng.trip("manual: test", by="alice")
    text = format_snapshot(eng.snapshot())
    assert "risk state: HALTED" in text and "manual: test" in text and "alice" in text
    assert "AAPL" in text and "max_order_qty 1" in text


def test_trip_is_logged_with_the_numbers(caplog):
    eng, _ = make(daily_loss_limit=10)
    fill(eng, BUY, 10, 10.0)
    with caplog.at_level("WARNING", logger="gateway.core.risk"):
        eng.on_mark("AAPL", 8.0)
    assert "ACTIVE -> HALTED by auto: daily loss: 20.00" in caplog.text
    assert "unrealized -20.00" in caplog.text
