import json
import random

import pytest

from gateway.common.configfile import ConfigError, validate_config
from gateway.core.model import DAY, FOK, IOC, LIMIT, MARKET, SELL
from gateway.core.router import build_router, fill_probability
from gateway.core.router.config import RoutingConfig

from router_helpers import incremental, intent, make_market, snapshot, up

ASKS = [(1.10010, 100), (1.10020, 200)]
BIDS = [(1.09990, 100), (1.09980, 200)]


def three_venues(lat=(300, 500, 900), **kw):
    cfg, clock, sender, m = make_market(**kw)
    for name, us in zip(("ALPHA", "BRAVO", "CHARLIE"), lat):
        up(m, name, us)
        snapshot(m, name, "EURUSD", BIDS, ASKS)
    return cfg, clock, m


def scalp(m, cfg, clock, **kw):
    return build_router(cfg, m, clock, policy=kw.pop("policy", "scalp"))


def test_scalp_goes_to_fastest_with_depth_as_one_ioc():
    cfg, clock, m = three_venues()
    d = scalp(m, cfg, clock).decide(intent(qty=100, price=1.10010))
    assert [(c.venue, c.qty, c.price, c.ord_type, c.tif) for c in d.children] == \
        [("ALPHA", 100, 1.10010, LIMIT, IOC)]
    assert d.policy == "scalp" and d.decision_us > 0 and "ALPHA" in d.reason
    assert {r[0] for r in d.scores} == {"ALPHA", "BRAVO", "CHARLIE"}


def test_fastest_without_depth_loses_to_next_with_depth():
    cfg, clock, m = three_venues()
    snapshot(m, "ALPHA", "EURUSD", BIDS, [(1.10030, 500)])   # nothing at our limit
    d = scalp(m, cfg, clock).decide(intent(qty=100, price=1.10010))
    assert d.children[0].venue == "BRAVO"


def test_latency_ties_within_tolerance_fall_to_fill_prob_then_price():
    cfg, clock, m = three_venues(lat=(300, 340, 900), latency_tie_tolerance_us=50)
    snapshot(m, "BRAVO", "EURUSD", BIDS, [(1.10005, 300)])    # better price, more depth
    assert scalp(m, cfg, clock).decide(intent(qty=100, price=1.10010)).children[0].venue == "BRAVO"
    cfg2, clock2, m2 = three_venues(lat=(300, 360, 900), latency_tie_tolerance_us=50)
    snapshot(m2, "BRAVO", "EURUSD", BIDS, [(1.10005, 300)])
    assert scalp(m2, cfg2, clock2).decide(intent(qty=100, price=1.10010)).children[0].venue == "ALPHA"


def test_tie_on_latency_and_fill_goes_to_better_price():
    cfg, clock, m = three_venues(lat=(300, 310, 900))
    snapshot(m, "BRAVO", "EURUSD", BIDS, [(1.10008, 100)])
    d = scalp(m, cfg, clock).decide(intent(qty=100, price=1.10010))
    assert d.children[0].venue == "BRAVO" and d.children[0].price == 1.10010   # child keeps the limit


def test_sell_side_uses_bids():
    cfg, clock, m = three_venues()
    snapshot(m, "ALPHA", "EURUSD", [(1.09950, 100)], ASKS)
    d = scalp(m, cfg, clock).decide(intent(qty=50, price=1.09990, side=SELL))
    assert d.children[0].venue == "BRAVO"


def test_stale_venue_counts_as_slow():
    cfg, clock, m = three_venues(lat=(300, 500, 900))
    clock.advance(0.6)                                        # all stale (stale after 5 x 100 ms)
    m.venues["BRAVO"].lat.add(0.0005)                         # BRAVO answered recently
    m.venues["CHARLIE"].lat.add(0.0009)
    d = scalp(m, cfg, clock).decide(intent())
    assert d.children[0].venue == "BRAVO"
    row = next(r for r in d.scores if r[0] == "ALPHA")
    assert row[3] is True                                     # recorded as stale


def test_down_venue_never_chosen_and_all_down_rejects_with_reason():
    cfg, clock, m = three_venues()
    m.on_venue_down("ALPHA")
    r = scalp(m, cfg, clock)
    assert r.decide(intent()).children[0].venue == "BRAVO"
    m.on_venue_down("BRAVO")
    m.on_venue_down("CHARLIE")
    d = r.decide(intent())
    assert d.rejected and "no venue available" in d.reason and "ALPHA" in d.reason


def test_latency_ceiling_excludes_slow_and_rejects_when_none_below():
    cfg, clock, m = three_venues(lat=(3000, 500, 900), latency_ceiling_us=1000)
    snapshot(m, "BRAVO", "EURUSD", BIDS, [(1.2, 1)])
    snapshot(m, "CHARLIE", "EURUSD", BIDS, [(1.2, 1)])
    d = scalp(m, cfg, clock).decide(intent())
    assert d.children[0].venue == "BRAVO"                     # ALPHA has depth but is above ceiling
    cfg2, clock2, m2 = three_venues(lat=(3000, 2500, 1900), latency_ceiling_us=1000)
    d2 = scalp(m2, cfg2, clock2).decide(intent())
    assert d2.rejected and "latency ceiling 1000us" in d2.reason and "CHARLIE 1900us" in d2.reason


def test_latency_first_among_venues_with_enough_depth():
    cfg, clock, m = three_venues(lat=(300, 900, 2000))          # min_fill_prob 0.5 by default
    snapshot(m, "ALPHA", "EURUSD", BIDS, [(1.10010, 60)])     # 60% of the order on the fastest
    d = scalp(m, cfg, clock).decide(intent(qty=100, price=1.10010, tif=IOC))
    assert d.children[0].venue == "ALPHA"
    snapshot(m, "ALPHA", "EURUSD", BIDS, [(1.10010, 40)])     # 40%: below the bar, the next one wins
    d = scalp(m, cfg, clock).decide(intent(qty=100, price=1.10010, tif=IOC))
    assert d.children[0].venue == "BRAVO"


def test_fastest_with_partial_depth_loses_to_next_with_enough():
    cfg, clock, m = three_venues(lat=(300, 900, 2000), min_fill_prob=0.9)
    snapshot(m, "ALPHA", "EURUSD", BIDS, [(1.10010, 60)])
    d = scalp(m, cfg, clock).decide(intent(qty=100, price=1.10010, tif=IOC))
    assert d.children[0].venue == "BRAVO"
    snapshot(m, "BRAVO", "EURUSD", BIDS, [(1.10010, 70)])
    snapshot(m, "CHARLIE", "EURUSD", BIDS, [(1.10010, 10)])
    d = scalp(m, cfg, clock).decide(intent(qty=100, price=1.10010, tif=IOC))
    assert d.children[0].venue == "ALPHA"                     # nobody has enough: fastest partial
    assert "best partial" in d.reason
    snapshot(m, "ALPHA", "EURUSD", BIDS, [(1.10030, 60)])     # fastest shows nothing at the limit
    d = scalp(m, cfg, clock).decide(intent(qty=100, price=1.10010, tif=IOC))
    assert d.children[0].venue == "BRAVO"                     # partial depth beats none


def test_fok_needs_full_depth_ioc_takes_partial():
    cfg, clock, m = three_venues(lat=(300, 900, 2000), min_fill_prob=0.5)
    snapshot(m, "ALPHA", "EURUSD", BIDS, [(1.10010, 60)])     # partial depth on the fastest
    r = scalp(m, cfg, clock)
    ioc = r.decide(intent(qty=100, price=1.10010, tif=IOC))
    assert ioc.children[0].venue == "ALPHA" and ioc.children[0].tif == IOC
    fok = r.decide(intent(qty=100, price=1.10010, tif=FOK))
    assert fok.children[0].venue == "BRAVO" and fok.children[0].tif == FOK
    day = r.decide(intent(qty=10, price=1.10010, tif=DAY))
    assert day.children[0].tif == IOC                         # scalp never rests an order


def test_depth_discounted_by_expected_vanishing():
    cfg, clock, m = three_venues(lat=(300, 320, 5000))
    snapshot(m, "ALPHA", "EURUSD", BIDS, [(1.10010, 110)])
    snapshot(m, "BRAVO", "EURUSD", BIDS, [(1.10010, 110)])
    for i in range(50):                                       # ALPHA's touch is eaten fast
        clock.advance(0.001)
        incremental(m, "ALPHA", "EURUSD", [("1", "1", 1.10010, 110 + 1000 - 20 * i)])
        incremental(m, "ALPHA", "EURUSD", [("1", "1", 1.10010, 110)])
    for name in ("ALPHA", "BRAVO", "CHARLIE"):
        m.venues[name].lat.add(m.venues[name].lat.recent_us / 1e6)   # keep latencies fresh
    d = scalp(m, cfg, clock).decide(intent(qty=100, price=1.10010, tif=FOK))
    rows = {r[0]: r for r in d.scores}
    assert rows["ALPHA"][5] > rows["BRAVO"][5]                # more expected to vanish
    assert rows["ALPHA"][6] < rows["BRAVO"][6]
    assert d.children[0].venue == "BRAVO"


def test_market_order_becomes_ioc_limit_at_sweep_price():
    cfg, clock, m = three_venues()
    d = scalp(m, cfg, clock).decide(intent(qty=150, price=None, ord_type=MARKET))
    c = d.children[0]
    assert (c.venue, c.ord_type, c.tif, c.price) == ("ALPHA", LIMIT, IOC, 1.10020)
    big = scalp(m, cfg, clock).decide(intent(qty=10_000, price=None, ord_type=MARKET))
    assert big.children[0].price == 1.10020                   # all that shows


def test_market_order_without_any_book_is_rejected():
    cfg, clock, sender, m = make_market()
    up(m, "ALPHA", 300)
    d = build_router(cfg, m, clock).decide(intent(price=None, ord_type=MARKET))
    assert d.rejected and "market order" in d.reason


def test_limit_order_without_depth_anywhere_goes_to_fastest():
    cfg, clock, m = three_venues()
    d = scalp(m, cfg, clock).decide(intent(price=1.0))
    assert d.children[0].venue == "ALPHA" and "none shows depth" in d.reason


def test_micro_burst_retry_once_to_next_best():
    cfg, clock, m = three_venues(micro_burst=True)
    r = scalp(m, cfg, clock)
    it = intent(qty=100)
    d = r.decide(it)
    again = r.retry(it, d, 40)
    assert again.children[0].venue == "BRAVO" and again.children[0].qty == 40
    assert "micro-burst" in again.reason
    assert r.retry(it, again, 10) is None                     # once only
    assert r.retry(it, d, 0) is None
    fok = r.decide(intent(tif=FOK))
    assert r.retry(it, fok, 10) is None
    off_cfg, off_clock, off_m = three_venues()
    off = scalp(off_m, off_cfg, off_clock)
    assert off.retry(it, off.decide(it), 40) is None
    assert r.log.total == 3


def test_best_price_slices_across_venues_and_keeps_tif():
    cfg, clock, m = three_venues()
    snapshot(m, "ALPHA", "EURUSD", BIDS, [(1.10010, 100), (1.10030, 500)])
    snapshot(m, "BRAVO", "EURUSD", BIDS, [(1.10005, 50), (1.10020, 100)])
    snapshot(m, "CHARLIE", "EURUSD", BIDS, [(1.10020, 100)])
    r = build_router(cfg, m, clock, policy="best_price")
    d = r.decide(intent(qty=300, price=1.10020, tif=DAY))
    got = {c.venue: c.qty for c in d.children}
    assert got == {"BRAVO": 150 + 0, "ALPHA": 100, "CHARLIE": 50}   # 50@.05, 100@.10, then .20 (BRAVO faster)
    assert all(c.tif == DAY and c.price == 1.10020 for c in d.children)
    d2 = r.decide(intent(qty=1000, price=1.10020))
    got2 = {c.venue: c.qty for c in d2.children}
    assert got2["BRAVO"] == 150 + 650 and sum(got2.values()) == 1000   # remainder to the best venue
    assert "remainder" in d2.reason


def test_best_price_market_and_empty():
    cfg, clock, m = three_venues()
    r = build_router(cfg, m, clock, policy="best_price")
    d = r.decide(intent(qty=50, price=None, ord_type=MARKET, tif=IOC))
    assert [(c.venue, c.ord_type, c.price) for c in d.children] == [("ALPHA", MARKET, None)]
    d2 = r.decide(intent(qty=50, price=1.0))
    assert len(d2.children) == 1 and "nothing displayed" in d2.reason
    for v in ("ALPHA", "BRAVO", "CHARLIE"):
        m.on_venue_down(v)
    assert r.decide(intent()).rejected


def test_dma_routes_to_ex_destination_or_default():
    cfg, clock, m = three_venues(default_venue="CHARLIE")
    r = build_router(cfg, m, clock, policy="dma")
    d = r.decide(intent(ex="BRAVO", tif=DAY))
    assert [(c.venue, c.tif, c.price) for c in d.children] == [("BRAVO", DAY, 1.10010)]
    assert r.decide(intent()).children[0].venue == "CHARLIE"
    assert "unknown venue 'ZULU'" in r.decide(intent(ex="ZULU")).reason
    m.on_venue_down("BRAVO")
    assert "BRAVO is down" in r.decide(intent(ex="BRAVO")).reason
    cfg2, clock2, m2 = three_venues()
    assert "no ExDestination" in build_router(cfg2, m2, clock2, policy="dma").decide(intent()).reason


def test_decision_log_ring_counts_export(tmp_path):
    cfg, clock, m = three_venues(decision_log_size=3)
    r = build_router(cfg, m, clock)
    for _ in range(5):
        r.decide(intent())
    m.on_venue_down("ALPHA"), m.on_venue_down("BRAVO"), m.on_venue_down("CHARLIE")
    r.decide(intent())
    assert len(r.log) == 3 and r.log.total == 6
    assert r.log.counts_by_venue() == {"ALPHA": 5, "(rejected)": 1}
    recent = r.log.recent(2)
    assert recent[-1]["rejected"] and recent[0]["children"][0]["venue"] == "ALPHA"
    s = recent[0]["scores"][0]
    assert set(s) >= {"venue", "latency_us", "stale", "available", "vanish_qty", "fill_prob", "price"}
    out = tmp_path / "d.jsonl"
    assert r.log.export_jsonl(out) == 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[-1]["seq"] == 6 and rows[0]["policy"] == "scalp"


def test_decision_log_keeps_plain_values_only():
    """A kept decision costs the garbage collector nothing: the ring's records are tuples of plain
    values, which the collector untracks (the decision, its children and its intent are not
    kept), for the DMA and scalp policies alike; what a record says comes back in full (views,
    retry)."""
    import gc
    for policy in ("dma", "scalp"):
        cfg, clock, m = three_venues(default_venue="ALPHA")
        r = build_router(cfg, m, clock, policy=policy)
        it = intent()
        d = r.decide(it)
        gc.collect()
        gc.collect()                # a tuple is untracked once what it holds is: two passes at most
        (rec,) = r.log._ring
        assert not gc.is_tracked(rec), (policy, rec)
        back = r.log.last_for(it)
        assert back is not d and (back.policy, back.children, back.reason) == (d.policy, d.children, d.reason)
        assert list(back.scores) == list(d.scores) and back.decided_at == d.decided_at
        (row,) = r.log.recent(1)
        assert row["cl_ord_id"] == it.cl_ord_id and row["children"][0]["venue"] == d.children[0].venue
        assert row["scores"][0]["venue"] == d.scores[0][0]


def test_decision_log_path_appended_by_flush(tmp_path):
    path = tmp_path / "sub" / "decisions.jsonl"
    cfg, clock, m = three_venues(decision_log_path=str(path))
    r = build_router(cfg, m, clock)
    r.decide(intent())
    r.decide(intent())
    r.log.close()
    assert len(path.read_text().splitlines()) == 2


def test_fill_probability_matches_monte_carlo():
    rng = random.Random(7)
    for avail, qty, vanish in ((150, 100, 30), (80, 100, 20), (100, 100, 5), (300, 100, 400)):
        xs = [rng.expovariate(1 / vanish) for _ in range(40_000)]
        ioc = sum(min(qty, max(0.0, avail - x)) for x in xs) / len(xs) / qty
        fok = sum(avail - x >= qty for x in xs) / len(xs)
        assert fill_probability(avail, qty, vanish, False) == pytest.approx(ioc, abs=0.01)
        assert fill_probability(avail, qty, vanish, True) == pytest.approx(fok, abs=0.01)
    assert fill_probability(0, 10, 0, False) == 0 and fill_probability(5, 10, 0, False) == 0.5
    assert fill_probability(5, 10, 0, True) == 0 and fill_probability(10, 10, 0, True) == 1


def test_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="policy"):
        validate_config({"policy": "fastest"}, RoutingConfig)
    with pytest.raises(ConfigError, match="probe_interval_ms"):
        validate_config({"probe_interval_ms": 0}, RoutingConfig)
    with pytest.raises(ConfigError, match="md_symbols"):
        validate_config({"md_symbols": ["A", "A"]}, RoutingConfig)
    with pytest.raises(ConfigError, match="recent_samples"):
        validate_config({"latency_window": 3, "recent_samples": 5}, RoutingConfig)
    with pytest.raises(ConfigError, match="surprise"):
        validate_config({"surprise": 1}, RoutingConfig)
    cfg = validate_config({"session_policies": {"OMS2": "best_price"}}, RoutingConfig)
    assert cfg.policy_for("FIX.4.4:FIXGW->OMS2") == "best_price" and cfg.policy_for("OMS1") == "scalp"
    assert cfg.latency_stale_after_s == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown routing policy"):
        build_router(cfg, make_market()[3], policy="nope")


def test_micro_burst_retry_without_decision_finds_it_in_the_log():
    cfg, clock, m = three_venues(micro_burst=True)
    r = scalp(m, cfg, clock)
    it = intent(qty=100)
    r.decide(it)
    again = r.retry(it, None, 30)                             # the gateway's call
    assert again.children[0].venue == "BRAVO" and again.children[0].qty == 30
    other = intent(qty=100)
    other.cl_ord_id = "C2"
    assert r.retry(other, None, 30, exclude={"ALPHA", "BRAVO"}).children[0].venue == "CHARLIE"
    m.on_venue_down("BRAVO"), m.on_venue_down("CHARLIE")
    third = intent(qty=100)
    third.cl_ord_id = "C3"
    r.decide(third)
    assert r.retry(third, None, 30) is None                   # no other venue up


class ProbeDriver:
    """Probe rounds through MarketState with a fake clock: each venue answers after its RTT."""

    def __init__(self, m, clock):
        self.m, self.clock, self.pending = m, clock, {}

    def send_round(self, rtts: dict):
        sender = self.m.sender
        before = len(sender.sent)
        self.m.probe_round()
        start = self.clock.now()
        for sess, mt, fields, _ in sender.sent[before:]:
            venue = sess.removeprefix("sess-")
            self.pending[venue] = (start + rtts[venue], dict(fields)[112])

    def advance(self, seconds: float):
        end = self.clock.now() + seconds
        for venue, (due, rid) in sorted(self.pending.items(), key=lambda kv: kv[1][0]):
            if due <= end:
                self.clock.set(max(due, self.clock.now()))
                self.m.on_venue_admin(venue, f"35=0\x01112={rid}\x01", "0")
                del self.pending[venue]
        self.clock.set(end)


def test_router_follows_a_slowdown_and_recovery_within_a_few_probes():
    cfg, clock, m = three_venues(lat=(300, 800, 1500), probe_primed=False)     # one TestRequest a probe
    r = scalp(m, cfg, clock)
    p = ProbeDriver(m, clock)
    fast = {"ALPHA": 0.0003, "BRAVO": 0.0008, "CHARLIE": 0.0015}
    slow = dict(fast, ALPHA=0.020)
    p.send_round(fast)
    p.advance(0.1)
    assert r.decide(intent()).children[0].venue == "ALPHA"
    # ALPHA turns slow (20 ms): one slow answer could be a hiccup, the second one counts
    p.send_round(slow)
    p.advance(0.1)
    assert r.decide(intent()).children[0].venue == "ALPHA"
    for _ in range(3):
        p.send_round(slow)
        p.advance(0.1)
        assert r.decide(intent()).children[0].venue == "BRAVO"
    # ALPHA hangs: a probe unanswered for over half an interval counts at once
    hung = dict(fast, ALPHA=10.0)
    for _ in range(3):
        p.send_round(fast)
        p.advance(0.1)
    assert r.decide(intent()).children[0].venue == "ALPHA"
    p.send_round(hung)
    p.advance(0.02)
    assert r.decide(intent()).children[0].venue == "ALPHA"
    p.advance(0.04)
    assert r.decide(intent()).children[0].venue == "BRAVO"
    p.advance(10.0)                                           # the answer comes in the end
    for _ in range(3):
        p.send_round(slow)
        p.advance(0.1)
    # recovery: the median of the last 5 RTTs is fast again after 3 fast answers
    chosen = []
    for _ in range(3):
        p.send_round(fast)
        p.advance(0.1)
        chosen.append(r.decide(intent()).children[0].venue)
    assert chosen == ["BRAVO", "BRAVO", "ALPHA"]


def test_decisions_between_churning_market_data_updates_do_not_break():
    # The gateway applies market data and decides on one loop thread (MarketState has no
    # lock: nothing runs concurrently), so the churn is interleaved here, not threaded:
    # levels added and deleted at and around the touch between every two decisions.
    cfg, clock, m = three_venues()
    r = scalp(m, cfg, clock)
    for i in range(3000):
        incremental(m, "ALPHA", "EURUSD", [("0", "1", 1.10011 + (i % 5) * 1e-5, 10 + i % 7),
                                          ("2", "1", 1.10011 + ((i + 2) % 5) * 1e-5, None)])
        d = r.decide(intent(qty=50, price=1.10015))
        assert d.children


def test_quiet_book_with_silent_session_counts_as_no_depth():
    cfg, clock, m = three_venues(book_stale_after_s=1.0)
    clock.advance(1.5)                      # no probe answers, no market data anywhere...
    incremental(m, "BRAVO", "EURUSD", [("1", "1", 1.10020, 250)])   # ...except BRAVO's data
    d = scalp(m, cfg, clock).decide(intent())
    rows = {r[0]: r for r in d.scores}
    assert rows["ALPHA"][4] == 0 and rows["BRAVO"][4] == 100 and d.children[0].venue == "BRAVO"
    assert m.snapshot()["ALPHA"]["books"]["EURUSD"]["stale"] is True


def test_scalp_routes_to_a_venue_with_depth_before_its_first_probe_answer():
    # a venue up with a book but no RTT sample yet (latency INF): a blind pick, not a crash
    cfg, clock, _, m = make_market(venues=("ALPHA",), md_symbols=["EURUSD"])
    up(m, "ALPHA")                                    # logged on, no probe answered
    snapshot(m, "ALPHA", "EURUSD", [(1.10000, 500)], [(1.10010, 500)])
    d = build_router(cfg, m, clock).decide(intent(qty=100, price=1.10010))
    assert [c.venue for c in d.children] == ["ALPHA"]
    assert "ALPHA ?us" in d.reason


def test_scalp_ranks_a_venue_without_probes_by_its_order_acks_and_a_capped_one_by_its_own_staleness():
    """The scalp policy's inlined ranking follows MarketState.route_latency: a venue with
    probes off is ranked by order-ack time (never stale); a venue whose probe rate is capped
    is stale only after stale_after_intervals of its capped gap."""
    cfg, clock, sender, m = make_market(venues=())
    m.register_venue("QUIET", probe=False)
    m.register_venue("SLOWCAP", probe_max_per_s=1)          # probed once a second at most
    m.register_venue("LOUD")
    up(m, "QUIET")
    up(m, "SLOWCAP", 600)
    up(m, "LOUD", 900)
    for name in ("QUIET", "SLOWCAP", "LOUD"):
        snapshot(m, name, "EURUSD", BIDS, ASKS)
    m.record_ack("QUIET", 0.000350)
    router = scalp(m, cfg, clock)
    d = router.decide(intent(qty=100, price=1.10010))
    assert d.children[0].venue == "QUIET", d.scores
    assert m.route_latency(m.venues["QUIET"], clock.now()) == \
        (pytest.approx(350.0), False)
    m.venues["QUIET"].up = False
    clock.advance(1.0)          # over LOUD's window (5 x 100 ms), inside SLOWCAP's (5 x 1 s)
    d = router.decide(intent(qty=100, price=1.10010))
    assert m.route_latency(m.venues["SLOWCAP"], clock.now())[1] is False
    assert m.route_latency(m.venues["LOUD"], clock.now())[1] is True
    assert d.children[0].venue == "SLOWCAP", d.scores
