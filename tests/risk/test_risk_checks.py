"""Every pre-trade check, passing and failing at its boundary, with a fake clock."""
from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from gateway.common.clock import FakeClock
from gateway.core.model import (BUY, LIMIT, MARKET, REJ_DUPLICATE, REJ_EXCEEDS_LIMIT,
                           REJ_UNKNOWN_SYMBOL, SELL, OrderIntent)
from gateway.core.risk import RiskConfig, RiskEngine

SESSION = "FIX.4.4:GW->OMS1"
_ids = itertools.count()


def order(side=BUY, qty=10, price=100.0, symbol="AAPL", ord_type=LIMIT, session=SESSION, cid=None):
    return OrderIntent(session, cid or f"c{next(_ids)}", symbol, side, float(qty), ord_type,
                       price if ord_type == LIMIT else None, "0")


def engine(marks=None, clock=None, **cfg):
    marks = {} if marks is None else marks
    return RiskEngine(RiskConfig.model_validate(cfg), clock or FakeClock(), marks.get)


def test_empty_config_passes_everything():
    eng = RiskEngine(RiskConfig(), FakeClock())
    assert eng.check(order(qty=1e9, price=1e9)) is None
    assert eng.check(order(ord_type=MARKET)) is None


def test_max_order_qty_boundary():
    eng = engine(max_order_qty=1000)
    assert eng.check(order(qty=1000)) is None
    rej = eng.check(order(qty=1001))
    assert rej.check == "max_order_qty" and rej.ord_rej_reason == REJ_EXCEEDS_LIMIT
    assert rej.text == "max_order_qty: 1001 > limit 1000"
    assert eng.snapshot()["rejects_by_check"] == {"max_order_qty": 1}


def test_max_notional_boundary_and_market_orders_use_the_mark():
    eng = engine({"AAPL": 100.0}, max_notional=10_000)
    assert eng.check(order(qty=100, price=100.0)) is None
    rej = eng.check(order(qty=100, price=100.01))
    assert rej.check == "max_notional" and "10001.00 > limit 10000.00" in rej.text
    assert eng.check(order(qty=101, ord_type=MARKET)).check == "max_notional"


def test_market_order_without_reference_rejected_only_when_configured():
    assert engine(max_notional=10).check(order(ord_type=MARKET)) is None
    rej = engine(max_notional=10, reject_without_reference=True).check(order(ord_type=MARKET))
    assert rej.check == "no_reference_price"


def test_market_order_permission():
    eng = engine(allow_market_orders=False, symbol_limits={"MSFT": {"allow_market_orders": True}})
    assert eng.check(order(ord_type=MARKET)).check == "market_orders_not_allowed"
    assert eng.check(order(ord_type=LIMIT)) is None
    assert eng.check(order(ord_type=MARKET, symbol="MSFT")) is None


def test_symbol_allow_list():
    eng = engine(symbols=["AAPL"])
    assert eng.check(order(symbol="AAPL")) is None
    rej = eng.check(order(symbol="TSLA"))
    assert rej.check == "symbol_not_allowed" and rej.ord_rej_reason == REJ_UNKNOWN_SYMBOL
    assert "TSLA" in rej.text


def test_duplicate_cl_ord_id_per_session():
    eng = engine()
    assert eng.check(order(cid="X1")) is None
    rej = eng.check(order(cid="X1"))
    assert rej.check == "duplicate_cl_ord_id" and rej.ord_rej_reason == REJ_DUPLICATE
    assert eng.check(order(cid="X1", session="FIX.4.4:GW->OMS2")) is None   # other session: its own id space


def test_price_band_ticks_vs_mark():
    marks = {"AAPL": 100.0}
    eng = engine(marks, price_band_ticks=5, tick_size=0.01)
    assert eng.check(order(price=100.05)) is None
    assert eng.check(order(price=99.95)) is None
    rej = eng.check(order(price=100.06))
    assert rej.check == "price_band_ticks" and "6.0 ticks from reference 100 > limit 5 ticks" in rej.text
    marks["AAPL"] = 100.02                           # the reference follows the live book
    assert eng.check(order(price=100.06)) is None


def test_price_band_bps_vs_mark():
    eng = engine({"AAPL": 200.0}, price_band_bps=50)  # 50 bps of 200 = 1.00
    assert eng.check(order(price=201.0)) is None
    assert eng.check(order(side=SELL, price=199.0)) is None
    rej = eng.check(order(price=201.02))
    assert rej.check == "price_band_bps" and "51.0 bps" in rej.text


def test_price_band_without_reference():
    assert engine(price_band_bps=1).check(order(price=1.0)) is None
    assert engine(price_band_bps=1, reject_without_reference=True).check(order()).check == "no_reference_price"


def test_price_band_uses_pushed_mark_without_callable():
    eng = RiskEngine(RiskConfig(price_band_bps=10), FakeClock())
    eng.on_mark("AAPL", 100.0)
    assert eng.check(order(price=100.1)) is None
    assert eng.check(order(price=100.2)).check == "price_band_bps"


def test_ticks_band_needs_tick_size():
    with pytest.raises(ValueError, match="tick_size"):
        engine(price_band_ticks=3)


def test_worst_case_position_counts_open_orders():
    eng = engine(max_position=100)
    first = order(qty=60)
    assert eng.check(first) is None
    rej = eng.check(order(qty=41))                  # 0 filled + 60 open + 41 > 100
    assert rej.check == "max_position" and "worst case 101" in rej.text
    assert eng.check(order(qty=40)) is None         # exactly 100
    eng.on_order_done(first, 60)                    # canceled: its exposure is released
    assert eng.check(order(qty=60)) is None


def test_worst_case_position_after_fills_and_on_the_short_side():
    eng = engine(max_position=100)
    buy = order(qty=80)
    eng.check(buy)
    eng.on_fill(buy, 80, 100.0)
    eng.on_order_done(buy, 0)
    assert eng.check(order(qty=21)).check == "max_position"
    assert eng.check(order(qty=20)) is None
    assert eng.check(order(side=SELL, qty=180)) is None     # 80 -> -100
    rej = eng.check(order(side=SELL, qty=1))
    assert rej.check == "max_position" and "< -limit 100" in rej.text


def test_max_gross_exposure_counts_positions_and_open_orders():
    eng = engine({"AAPL": 100.0, "MSFT": 50.0}, max_gross_exposure=10_000)
    buy = order(qty=50, price=100.0)
    eng.check(buy)
    eng.on_fill(buy, 50, 100.0)                    # 5000 held
    assert eng.check(order(symbol="MSFT", qty=60, price=50.0)) is None   # +3000 open
    assert eng.check(order(symbol="MSFT", qty=41, price=50.0)).check == "max_gross_exposure"
    assert eng.check(order(symbol="MSFT", qty=40, price=50.0)) is None   # exactly 10000


def test_throttle_window_slides():
    clock = FakeClock(100.0)
    eng = engine(clock=clock, max_orders_per_second=3)
    for _ in range(3):
        assert eng.check(order()) is None
        clock.advance(0.1)                          # sent at 100.0, 100.1, 100.2
    rej = eng.check(order())
    assert rej.check == "max_orders_per_second" and "limit 3/s" in rej.text
    clock.set(100.999)
    assert eng.check(order()).check == "max_orders_per_second"
    clock.set(101.0)                                # the first order left the window
    assert eng.check(order()) is None
    assert eng.check(order()).check == "max_orders_per_second"
    clock.set(101.1)
    assert eng.check(order()) is None


def test_throttle_is_per_session_with_overrides():
    clock = FakeClock()
    eng = engine(clock=clock, max_orders_per_second=1, sessions={"OMS2": {"max_orders_per_second": 2}})
    assert eng.check(order()) is None
    assert eng.check(order()).check == "max_orders_per_second"
    other = "FIX.4.4:GW->OMS2"
    assert eng.check(order(session=other)) is None
    assert eng.check(order(session=other)) is None
    assert eng.check(order(session=other)).check == "max_orders_per_second"


def test_override_precedence_symbol_over_session_over_global():
    eng = engine(max_order_qty=100, sessions={"OMS1": {"max_order_qty": 200}},
                 symbol_limits={"MSFT": {"max_order_qty": 300}})
    assert eng.check(order(qty=200)) is None
    assert eng.check(order(qty=201)).check == "max_order_qty"
    assert eng.check(order(qty=300, symbol="MSFT")) is None
    assert eng.check(order(qty=150, session="FIX.4.4:GW->OMS9")).check == "max_order_qty"


def test_disabled_checks_still_track_exposure():
    eng = engine(enabled=False, max_order_qty=1)
    intent = order(qty=5)
    assert eng.check(intent) is None
    assert eng.snapshot()["positions"]["AAPL"]["open_buy"] == 5


def test_config_rejects_unknown_and_bad_fields():
    with pytest.raises(ValidationError):
        RiskConfig.model_validate({"max_order_qtty": 5})
    with pytest.raises(ValidationError):
        RiskConfig.model_validate({"max_order_qty": -1})
    with pytest.raises(ValidationError):
        RiskConfig.model_validate({"symbol_limits": {"AAPL": {"max_orders_per_second": 3}}})


def test_checks_are_counted():
    eng = engine(max_order_qty=1)
    eng.check(order(qty=1))
    eng.check(order(qty=2))
    snap = eng.snapshot()
    assert snap["checks"] == 2 and snap["rejects_by_check"] == {"max_order_qty": 1}


def test_config_names_the_section_missing_a_tick_size():
    with pytest.raises(ValidationError, match="risk.symbol_limits.AAPL.price_band_ticks needs a tick_size"):
        RiskConfig.model_validate({"symbol_limits": {"AAPL": {"price_band_ticks": 3}}})
    with pytest.raises(ValidationError, match="risk.sessions.OMS1.price_band_ticks"):
        RiskConfig.model_validate({"sessions": {"OMS1": {"price_band_ticks": 3}}})
    RiskConfig.model_validate({"sessions": {"OMS1": {"price_band_ticks": 3, "tick_size": 0.01}}})
    RiskConfig.model_validate({"price_band_ticks": 3, "symbols": ["AAPL"],
                               "symbol_limits": {"AAPL": {"tick_size": 0.01}}})


def test_replace_swaps_open_exposure_and_counts_prior_fills():
    eng = engine(max_position=100)
    orig = order(qty=60, cid="O1")
    assert eng.check(orig) is None
    eng.on_fill(orig, 20, 100.0)                    # 20 filled, 40 open
    bigger = order(qty=90, cid="O2")                # total 90: 70 open after the fill
    assert eng.check_replace(orig, bigger) is None
    pos = eng.snapshot()["positions"]["AAPL"]
    assert pos["qty"] == 20 and pos["open_buy"] == 70
    too_big = order(qty=121, cid="O3")              # 20 filled + 121 > 100 even without O2's 70
    rej = eng.check_replace(bigger, too_big)
    assert rej.check == "max_position"
    assert eng.snapshot()["positions"]["AAPL"]["open_buy"] == 70   # the original stands
    eng.on_order_done(bigger, 70)
    assert eng.snapshot()["positions"]["AAPL"]["open_buy"] == 0


def test_replace_refused_when_halted():
    eng = engine()
    orig = order(cid="H1")
    eng.check(orig)
    eng.trip("test", by="alice")
    assert eng.check_replace(orig, order(cid="H2")).check == "kill_switch"
    assert eng.snapshot()["positions"]["AAPL"]["open_buy"] == 10


def test_replace_chain_remembers_all_fills():
    eng = engine(max_position=100)
    first = order(qty=50, cid="R1")
    eng.check(first)
    eng.on_fill(first, 20, 100.0)
    second = order(qty=50, cid="R2")
    assert eng.check_replace(first, second) is None
    eng.on_fill(second, 10, 100.0)                  # 30 filled in all, 20 open
    third = order(qty=100, cid="R3")                # 30 filled + 70 open = 100
    assert eng.check_replace(second, third) is None
    pos = eng.snapshot()["positions"]["AAPL"]
    assert pos["qty"] == 30 and pos["open_buy"] == 70
    assert eng.check(order(qty=1)).check == "max_position"


def test_the_gateway_marks_are_asked_natively_and_a_replaced_mark_source_is_used():
    """A ``MarketState.mark_price`` is kept as its market (called natively); any other callable,
    or one put in ``mark_price`` later, is called as it is."""
    from gateway.core.market import MarketState
    from gateway.core.router import RoutingConfig
    market = MarketState(RoutingConfig.model_validate({}), FakeClock())
    eng = RiskEngine(RiskConfig(), FakeClock(), market.mark_price)
    assert eng._market is market
    assert eng._mark("AAPL") is None                  # no book, no trade: no mark
    assert RiskEngine(RiskConfig(), FakeClock(), {"AAPL": 5.0}.get)._market is None
    eng.mark_price = {"AAPL": 7.0}.get
    assert eng._mark("AAPL") == 7.0
    eng.mark_price = None
    assert eng._mark("AAPL") is None
