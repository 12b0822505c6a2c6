"""Edges that a broken core would cross silently: reduce-only flips, robust marks, evaluate is pure,
the router's min_fill_prob boundary and its latency ceiling with stale venues."""
from __future__ import annotations

import itertools

from gateway.common.clock import FakeClock
from gateway.core.market import MarketState, robust_mark
from gateway.core.model import BUY, DAY, IOC, LIMIT, SELL, OrderIntent
from gateway.core.risk import REDUCING, RiskConfig, RiskEngine
from gateway.core.router import build_router
from gateway.core.router.config import RoutingConfig

S = "FIX.4.4:FIXGW->OMS1"
_n = itertools.count(1)


def order(side=BUY, qty=10.0, px=100.0, symbol="AAPL", tif=DAY):
    return OrderIntent(S, f"r{next(_n)}", symbol, side, qty, LIMIT, px, tif)


def risk(**cfg) -> RiskEngine:
    return RiskEngine(RiskConfig.model_validate(cfg), FakeClock())


def short(eng: RiskEngine, qty: float) -> None:
    sell = order(SELL, qty)
    assert eng.check(sell) is None
    eng.on_fill(sell, qty, 100.0)
    eng.on_order_done(sell, 0.0)


# ---- risk ---------------------------------------------------------------------------------------

def test_reduce_only_refuses_a_buy_that_flips_a_short_long():
    eng = risk()
    short(eng, 50)
    eng.reduce_only(by="alice")
    assert eng.state == REDUCING
    flip = eng.check(order(BUY, 80))
    assert flip is not None and flip.check == "reducing_only"
    assert eng.check(order(BUY, 50)) is None                 # exactly flat is a reduction
    assert eng.check(order(BUY, 1)).check == "reducing_only"  # with 50 open, one more would flip


def test_evaluate_books_nothing_and_book_counts_once():
    eng = risk(max_position=100)
    o = order(BUY, 60)
    assert eng.evaluate(o) is None and eng.evaluate(o) is None
    assert eng.snapshot()["open_orders"] == 0
    eng.book(o)
    assert eng.snapshot()["positions"]["AAPL"]["open_buy"] == 60
    assert eng.evaluate(order(BUY, 60)).check == "max_position"
    assert eng.evaluate(o).check == "duplicate_cl_ord_id"


def test_robust_mark_ignores_an_off_market_venue():
    assert robust_mark([100.0, 100.02, 99.98, 250.0]) == 100.0
    assert robust_mark([100.0, 100.1]) == 100.05
    assert robust_mark([100.0, 180.0]) == 140.0              # two that disagree: no majority to trust
    assert robust_mark([]) is None


def test_the_mark_skips_stale_books_and_off_market_mids():
    cfg = RoutingConfig()
    clock = FakeClock(1000.0)
    m = MarketState(cfg, clock, sender=lambda *a, **k: True)
    for name, mid in (("ALPHA", 100.0), ("BRAVO", 100.02), ("CHARLIE", 1.0)):
        m.on_venue_up(name, name)
        snapshot(m, name, "AAPL", [(mid - 0.01, 100)], [(mid + 0.01, 100)])
    assert abs(m.mark_price("AAPL") - 100.01) < 1e-9
    m.on_venue_down("BRAVO")                                  # its book goes stale
    assert m.mark_price("AAPL") == 50.5                      # ALPHA and CHARLIE: median of two


# ---- router boundaries --------------------------------------------------------------------------

def fix(*pairs) -> str:
    return "".join(f"{t}={v}\x01" for t, v in pairs)


def snapshot(m, venue, symbol, bids, asks) -> None:
    pairs = [(35, "W"), (55, symbol), (268, len(bids) + len(asks))]
    for px, q in bids:
        pairs += [(269, "0"), (270, px), (271, q)]
    for px, q in asks:
        pairs += [(269, "1"), (270, px), (271, q)]
    assert m.on_venue_app(venue, fix(*pairs), "W")


def market(asks_by_venue: dict, lat_us: dict, **cfg_kw):
    cfg = RoutingConfig(**cfg_kw)
    clock = FakeClock(1000.0)
    m = MarketState(cfg, clock, sender=lambda *a, **k: True)
    for venue, asks in asks_by_venue.items():
        m.on_venue_up(venue, venue)
        for _ in range(5):
            m.venues[venue].lat.add(lat_us[venue] / 1e6)
        snapshot(m, venue, "EURUSD", [(1.0999, 100)], asks)
    return cfg, clock, m


def buy(qty=100.0, px=1.1001):
    return OrderIntent(S, f"b{next(_n)}", "EURUSD", BUY, qty, LIMIT, px, IOC)


def test_min_fill_prob_boundary_is_inclusive():
    books = {"ALPHA": [(1.1001, 50)], "BRAVO": [(1.1001, 100)]}   # ALPHA fills half, BRAVO all
    lat = {"ALPHA": 300, "BRAVO": 600}
    cfg, clock, m = market(books, lat, min_fill_prob=0.5)
    assert build_router(cfg, m, clock, "scalp").decide(buy()).children[0].venue == "ALPHA"   # 0.5 >= 0.5
    cfg, clock, m = market(books, lat, min_fill_prob=0.51)
    assert build_router(cfg, m, clock, "scalp").decide(buy()).children[0].venue == "BRAVO"   # 0.5 < 0.51


def test_latency_ceiling_skips_stale_venues_even_when_their_last_rtt_was_fast():
    books = {"ALPHA": [(1.1001, 100)], "BRAVO": [(1.1001, 100)]}
    cfg, clock, m = market(books, {"ALPHA": 200, "BRAVO": 800}, latency_ceiling_us=1000)
    clock.advance(cfg.latency_stale_after_s + 0.1)           # both stale now
    m.venues["BRAVO"].lat.add(0.0008)                         # BRAVO answered again
    d = build_router(cfg, m, clock, "scalp").decide(buy())
    assert [c.venue for c in d.children] == ["BRAVO"]
    clock.advance(cfg.latency_stale_after_s + 0.1)           # now every venue is stale
    d = build_router(cfg, m, clock, "scalp").decide(buy())
    assert d.rejected and d.reason


def test_latency_ceiling_boundary():
    books = {"ALPHA": [(1.1001, 100)]}
    cfg, clock, m = market(books, {"ALPHA": 1000}, latency_ceiling_us=999)
    assert build_router(cfg, m, clock, "scalp").decide(buy()).rejected
    cfg, clock, m = market(books, {"ALPHA": 1000}, latency_ceiling_us=1001)
    assert not build_router(cfg, m, clock, "scalp").decide(buy()).rejected
