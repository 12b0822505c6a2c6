"""The matching engine and the flow model, without sockets (FakeClock)."""
from __future__ import annotations

import pytest

from gateway.common.clock import FakeClock
from sim_exchange.config import FlowConfig
from gateway.core.matching.engine import BUY, DAY, FOK, IOC, LIMIT, MARKET, SELL, Instrument, MatchingEngine
from gateway.core.matching.events import (
    CXL_DUPLICATE_CLORDID, CXL_TOO_LATE, CXL_UNKNOWN_ORDER, REJ_DUPLICATE, REJ_INCORRECT_QTY,
    REJ_INVALID_PRICE, REJ_UNKNOWN_SYMBOL, REJ_UNSUPPORTED, RESPONSE_TO_CANCEL, RESPONSE_TO_REPLACE, BookTouched,
    CancelReject, ExecReport, TradePrint,
)
from sim_exchange.flow import FlowModel

SYM = "EURUSD"


@pytest.fixture
def eng():
    return MatchingEngine([Instrument(SYM, 0.00001, 1.1), Instrument("AAPL", 0.01, 190.0)], FakeClock(), "T")


def ers(events, owner=None):
    return [e for e in events if isinstance(e, ExecReport) and (owner is None or e.owner == owner)]


def px(ticks):
    return round(ticks * 0.00001, 10)


def rest(eng, owner, cl, side, qty, ticks):
    out = eng.new_order(owner, cl, SYM, side, qty, LIMIT, px(ticks), DAY)
    assert ers(out)[-1].ord_status == "0", out
    return out


def test_limit_order_rests_and_is_acknowledged(eng):
    out = eng.new_order("c", "1", SYM, BUY, 100, LIMIT, 1.09999, DAY)
    (ack,) = ers(out)
    assert (ack.exec_type, ack.ord_status, ack.leaves_qty, ack.cum_qty, ack.avg_px) == ("0", "0", 100, 0, 0.0)
    assert ack.price == 1.09999 and ack.order_id and ack.exec_id
    assert eng.levels(SYM, BUY) == [(109999, 100)]
    assert any(isinstance(e, BookTouched) for e in out)


def test_price_time_priority(eng):
    rest(eng, "a", "a1", SELL, 100, 110001)
    rest(eng, "b", "b1", SELL, 100, 110001)      # same price, later
    rest(eng, "c", "c1", SELL, 100, 110000)      # better price, latest
    out = eng.new_order("t", "t1", SYM, BUY, 250, LIMIT, px(110001), DAY)
    passive = [(e.owner, e.last_qty, e.last_px) for e in ers(out) if e.owner != "t" and e.exec_type == "F"]
    assert passive == [("c", 100, px(110000)), ("a", 100, px(110001)), ("b", 50, px(110001))]
    assert eng.levels(SYM, SELL) == [(110001, 50)]


def test_partial_fills_and_avg_px_over_several_fills(eng):
    rest(eng, "m", "s1", SELL, 30, 110000)
    rest(eng, "m", "s2", SELL, 30, 110002)
    out = eng.new_order("c", "b1", SYM, BUY, 100, LIMIT, px(110002), DAY)
    mine = ers(out, "c")
    assert [e.exec_type for e in mine] == ["0", "F", "F"]
    assert [e.ord_status for e in mine] == ["0", "1", "1"]
    last = mine[-1]
    assert (last.cum_qty, last.leaves_qty, last.last_qty, last.last_px) == (60, 40, 30, px(110002))
    assert last.avg_px == pytest.approx(1.10001)
    # the remainder rests at its limit and is hit later
    out = eng.new_order("d", "s3", SYM, SELL, 40, LIMIT, px(110002), DAY)
    fill = ers(out, "c")[-1]
    assert (fill.ord_status, fill.cum_qty, fill.leaves_qty) == ("2", 100, 0)
    assert fill.avg_px == pytest.approx((30 * 1.1 + 70 * 1.10002) / 100)
    trades = [e for e in out if isinstance(e, TradePrint)]
    assert [(t.price, t.qty, t.aggressor_side) for t in trades] == [(px(110002), 40, SELL)]


def test_ioc_partial_then_canceled_and_ioc_miss(eng):
    rest(eng, "m", "s1", SELL, 50, 110000)
    out = eng.new_order("c", "i1", SYM, BUY, 80, LIMIT, px(110000), IOC)
    mine = ers(out, "c")
    assert [(e.exec_type, e.ord_status) for e in mine] == [("0", "0"), ("F", "1"), ("4", "4")]
    assert (mine[-1].cum_qty, mine[-1].leaves_qty) == (50, 0)
    out = eng.new_order("c", "i2", SYM, BUY, 10, LIMIT, px(110000), IOC)
    assert [(e.exec_type, e.ord_status, e.cum_qty, e.leaves_qty) for e in ers(out)] == [
        ("0", "0", 0, 10), ("4", "4", 0, 0)]
    assert eng.levels(SYM, BUY) == []          # IOC never rests


def test_fok_is_all_or_nothing_across_levels(eng):
    rest(eng, "m", "s1", SELL, 50, 110000)
    rest(eng, "m", "s2", SELL, 50, 110001)
    rest(eng, "m", "s3", SELL, 50, 110003)
    out = eng.new_order("c", "f1", SYM, BUY, 120, LIMIT, px(110001), FOK)   # only 100 within limit
    assert [(e.exec_type, e.ord_status) for e in ers(out)] == [("0", "0"), ("4", "4")]
    assert eng.levels(SYM, SELL) == [(110000, 50), (110001, 50), (110003, 50)]
    out = eng.new_order("c", "f2", SYM, BUY, 100, LIMIT, px(110001), FOK)   # exactly enough, two levels
    mine = ers(out, "c")
    assert [e.exec_type for e in mine] == ["0", "F", "F"] and mine[-1].ord_status == "2"
    assert eng.levels(SYM, SELL) == [(110003, 50)]


def test_market_orders_take_liquidity_and_cancel_the_rest(eng):
    rest(eng, "m", "s1", SELL, 50, 110000)
    rest(eng, "m", "s2", SELL, 50, 110010)
    out = eng.new_order("c", "mk1", SYM, BUY, 120, MARKET, None, DAY)
    mine = ers(out, "c")
    assert [e.exec_type for e in mine] == ["0", "F", "F", "4"]
    assert (mine[-1].ord_status, mine[-1].cum_qty, mine[-1].leaves_qty) == ("4", 100, 0)
    out = eng.new_order("c", "mk2", SYM, SELL, 10, MARKET, None, DAY)       # empty bid side
    assert [(e.exec_type, e.ord_status) for e in ers(out)] == [("0", "0"), ("4", "4")]


@pytest.mark.parametrize("kwargs,reason,text", [
    (dict(symbol="NOPE"), REJ_UNKNOWN_SYMBOL, "unknown symbol"),
    (dict(qty=0), REJ_INCORRECT_QTY, "quantity"),
    (dict(qty=-5), REJ_INCORRECT_QTY, "quantity"),
    (dict(qty=1.5), REJ_INCORRECT_QTY, "whole"),
    (dict(price=1.100005), REJ_INVALID_PRICE, "not on tick"),
    (dict(price=None), REJ_INVALID_PRICE, "limit price"),
    (dict(price=-1.0), REJ_INVALID_PRICE, "limit price"),
    (dict(tif="6"), REJ_UNSUPPORTED, "TimeInForce"),
    (dict(ord_type="3"), REJ_UNSUPPORTED, "OrdType"),
    (dict(side="5"), REJ_UNSUPPORTED, "side"),
])
def test_rejects(eng, kwargs, reason, text):
    args = dict(symbol=SYM, side=BUY, qty=100, ord_type=LIMIT, price=1.1, tif=DAY) | kwargs
    (rej,) = ers(eng.new_order("c", "r1", args.pop("symbol"), **args))
    assert (rej.exec_type, rej.ord_status, rej.ord_rej_reason, rej.leaves_qty) == ("8", "8", reason, 0)
    assert text in rej.text
    assert eng.levels(SYM, BUY) == []


def test_duplicate_clordid_rejected_per_owner(eng):
    rest(eng, "c", "dup", BUY, 10, 109990)
    (rej,) = ers(eng.new_order("c", "dup", SYM, BUY, 10, LIMIT, 1.0999, DAY))
    assert (rej.exec_type, rej.ord_rej_reason) == ("8", REJ_DUPLICATE)
    rest(eng, "other", "dup", BUY, 10, 109990)   # another owner may reuse it
    assert eng.levels(SYM, BUY) == [(109990, 20)]


def test_cancel_and_cancel_rejects(eng):
    rest(eng, "c", "o1", BUY, 100, 109990)
    out = eng.cancel("c", "x1", "o1")
    (er,) = ers(out)
    assert (er.exec_type, er.ord_status, er.cl_ord_id, er.orig_cl_ord_id, er.leaves_qty) == ("4", "4", "x1", "o1", 0)
    assert eng.levels(SYM, BUY) == []
    (cr,) = eng.cancel("c", "x2", "o1")                      # already done
    assert isinstance(cr, CancelReject) and (cr.reason, cr.response_to, cr.ord_status) == (
        CXL_TOO_LATE, RESPONSE_TO_CANCEL, "4")
    (cr,) = eng.cancel("c", "x3", "never")                   # unknown
    assert (cr.reason, cr.order_id) == (CXL_UNKNOWN_ORDER, "NONE")
    (cr,) = eng.cancel("someone-else", "x4", "o1")            # orders are per owner
    assert cr.reason == CXL_UNKNOWN_ORDER
    rest(eng, "c", "o2", BUY, 100, 109990)
    (cr,) = eng.cancel("c", "o1", "o2")                      # reused ClOrdID
    assert cr.reason == CXL_DUPLICATE_CLORDID


def test_filled_order_cannot_be_canceled_or_replaced(eng):
    rest(eng, "c", "o1", BUY, 10, 110000)
    eng.new_order("m", "s1", SYM, SELL, 10, LIMIT, 1.1, DAY)
    (cr,) = eng.cancel("c", "x1", "o1")
    assert (cr.reason, cr.ord_status) == (CXL_TOO_LATE, "2")
    (cr,) = eng.replace("c", "x2", "o1", 20, 1.1)
    assert (cr.reason, cr.response_to) == (CXL_TOO_LATE, RESPONSE_TO_REPLACE)


def test_replace_priority_rule(eng):
    rest(eng, "a", "a1", SELL, 100, 110001)
    rest(eng, "b", "b1", SELL, 100, 110001)
    # qty down at the same price: keeps its place ahead of b
    (er, *_) = eng.replace("a", "a2", "a1", 60, px(110001))
    assert (er.exec_type, er.ord_status, er.order_qty, er.leaves_qty, er.orig_cl_ord_id) == ("5", "0", 60, 60, "a1")
    out = eng.new_order("t", "t1", SYM, BUY, 10, LIMIT, px(110001), IOC)
    assert [e.owner for e in ers(out) if e.exec_type == "F" and e.owner != "t"] == ["a"]
    # qty up: back of the queue, behind b
    eng.replace("a", "a3", "a2", 200, px(110001))
    out = eng.new_order("t", "t2", SYM, BUY, 10, LIMIT, px(110001), IOC)
    assert [e.owner for e in ers(out) if e.exec_type == "F" and e.owner != "t"] == ["b"]
    # the chain is addressable by its latest ClOrdID; older ones are done
    assert eng.order("a", "a3").qty == 200


def test_replace_to_marketable_price_trades_and_reject_below_filled(eng):
    rest(eng, "m", "s1", SELL, 50, 110005)
    rest(eng, "c", "b1", BUY, 100, 110000)
    out = eng.replace("c", "b2", "b1", 100, px(110005))
    mine = ers(out, "c")
    assert [e.exec_type for e in mine] == ["5", "F"]
    assert (mine[-1].cum_qty, mine[-1].leaves_qty, mine[-1].cl_ord_id) == (50, 50, "b2")
    assert eng.levels(SYM, BUY) == [(110005, 50)]
    (cr,) = eng.replace("c", "b3", "b2", 40, px(110005))     # below the 50 already filled
    assert isinstance(cr, CancelReject) and "filled" in cr.text
    (cr,) = eng.replace("c", "b4", "b2", 100, 1.100051)      # off tick
    assert "tick" in cr.text


def _flow_run(seed, steps=300):
    eng = MatchingEngine([Instrument(SYM, 0.00001, 1.1)], FakeClock(), "F")
    model = FlowModel(eng, FlowConfig(rate_per_s=50, initial_levels=5, level_qty=100), seed, owner="flow:F")
    model.seed_book()
    trace = []
    for _ in range(steps):
        trace.append(round(model.next_delay(), 9))
        for e in model.step():
            if isinstance(e, TradePrint):
                trace.append((e.price, e.qty))
    return trace, eng, model


def test_flow_is_deterministic_for_a_seed_and_keeps_the_book_two_sided():
    a, eng, model = _flow_run(7)
    b, _, _ = _flow_run(7)
    c, _, _ = _flow_run(8)
    assert a == b and a != c
    assert all(model.actions.values()), model.actions
    bid, ask = eng.best_bid(SYM), eng.best_ask(SYM)
    assert bid is not None and ask is not None and bid < ask
    assert abs((bid + ask) / 2 - 110000) < 50          # roughly centred on the reference
    # finished flow orders are forgotten: memory stays bounded on long runs
    assert eng.order_count <= len(eng.open_orders("flow:F")) + 5


def test_forget_only_drops_finished_orders(eng):
    rest(eng, "c", "o1", BUY, 10, 109990)
    assert not eng.forget("c", "o1")
    eng.cancel("c", "o2", "o1")
    assert eng.forget("c", "o2") and eng.order("c", "o1") is None and eng.order("c", "o2") is None
