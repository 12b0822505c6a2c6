import pytest

from gateway.core.book import L2Book
from gateway.common.clock import FakeClock
from gateway.core.model import BUY, SELL


def book(clock=None):
    b = L2Book("EURUSD", clock or FakeClock(), tau_s=1.0)
    b.apply_snapshot(bids=[(1.0999, 100), (1.0998, 200), (1.0997, 300)],
                     asks=[(1.1001, 50), (1.1002, 150), (1.1003, 400)])
    return b


def test_best_and_depth_queries():
    b = book()
    assert b.best_bid() == (1.0999, 100) and b.best_ask() == (1.1001, 50)
    assert b.mid() == pytest.approx(1.1)
    assert b.qty_available(BUY, 1.1002) == 200
    assert b.qty_available(BUY, 1.1000) == 0
    assert b.qty_available(BUY, None) == 600
    assert b.qty_available(SELL, 1.0998) == 300
    assert b.qty_available(SELL, 1.1) == 0
    assert b.sweep_price(BUY, 50) == 1.1001
    assert b.sweep_price(BUY, 51) == 1.1002
    assert b.sweep_price(SELL, 301) == 1.0997
    assert b.sweep_price(BUY, 601) is None
    assert not b.stale and b.levels("1", 2) == [(1.1001, 50), (1.1002, 150)]


def test_incremental_new_change_delete_keep_order():
    b = book()
    b.apply_update("0", "1", 1.10005, 10)          # new better ask
    assert b.best_ask() == (1.10005, 10)
    b.apply_update("1", "0", 1.0998, 250)
    assert b.qty_available(SELL, 1.0998) == 350
    b.apply_update("2", "1", 1.10005, None)
    assert b.best_ask() == (1.1001, 50)
    b.apply_update("1", "1", 1.1002, 0)            # change to zero removes the level
    assert b.levels("1") == [(1.1001, 50), (1.1003, 400)]
    assert b.updates == 4
    with pytest.raises(ValueError):
        b.apply_update("5", "1", 1.1, 1)
    with pytest.raises(ValueError):
        b.apply_update("0", "2", 1.1, 1)


def test_touch_depletion_counts_touch_decreases_only_and_decays():
    clock = FakeClock(100.0)
    b = book(clock)
    assert b.touch_depletion_rate("1") == 0.0
    b.apply_update("1", "1", 1.1002, 10)           # not the touch: ignored
    b.apply_update("1", "1", 1.1001, 60)           # increase at touch: ignored
    assert b.touch_depletion_rate("1") == 0.0
    b.apply_update("1", "1", 1.1001, 20)           # 40 removed at touch
    assert b.touch_depletion_rate("1") == pytest.approx(40.0)   # 40 / tau(1 s)
    clock.advance(1.0)
    assert b.touch_depletion_rate("1") == pytest.approx(40.0 / 2.718281828, rel=1e-6)
    b.apply_update("2", "1", 1.1001, None)         # delete touch: 20 removed
    assert b.touch_depletion_rate("1") == pytest.approx(40.0 / 2.718281828 + 20.0, rel=1e-6)
    assert b.touch_depletion_rate("0") == 0.0


def test_steady_depletion_converges_to_true_rate():
    clock = FakeClock()
    b = L2Book("X", clock, tau_s=0.5)
    b.apply_snapshot([(99.0, 1e9)], [])
    q = 1e9
    for _ in range(2000):                            # 10 units every 10 ms = 1000 units/s
        clock.advance(0.01)
        q -= 10
        b.apply_update("1", "0", 99.0, q)
    assert b.touch_depletion_rate("0") == pytest.approx(1000.0, rel=0.02)


def test_snapshot_resets_and_trades_recorded():
    b = book()
    b.on_trade(1.1001, 5)
    b.mark_stale()
    assert b.stale
    b.apply_snapshot([(1.2, 1)], [])
    assert not b.stale and b.best_ask() is None and b.qty_available(BUY, None) == 0
    assert b.sweep_price(BUY, 1) is None and b.last_trade_px == 1.1001
    snap = b.snapshot()
    assert snap["bid"] == 1.2 and snap["ask"] is None and snap["levels"] == [1, 0]
