import pytest

from gateway.core.latency import INF
from gateway.core.market import MarketState, parse_fields
from gateway.core.router.config import RoutingConfig

from router_helpers import fix, incremental, make_market, snapshot, up


def test_logon_subscribes_every_symbol_with_unique_ids():
    cfg, clock, sender, m = make_market(md_symbols=["EURUSD", "AAPL"], md_depth=5)
    m.on_venue_up("ALPHA", "sA")
    reqs = sender.of_type("V")
    assert len(reqs) == 2
    sess, _, fields, groups = reqs[0]
    f = dict(fields)
    assert sess == "sA" and f[263] == "1" and f[264] == 5 and f[265] == "1"
    assert groups[0] == (267, [[(269, "0")], [(269, "1")], [(269, "2")]])
    assert groups[1] == (146, [[(55, "EURUSD")]])
    ids = {dict(r[2])[262] for r in reqs}
    assert len(ids) == 2
    m.on_venue_down("ALPHA")
    m.on_venue_up("ALPHA", "sA2")                       # reconnect: resubscribe, fresh ids
    again = sender.of_type("V")[2:]
    assert len(again) == 2 and not ids & {dict(r[2])[262] for r in again}


def test_probe_round_and_heartbeat_give_rtt_samples():
    cfg, clock, sender, m = make_market()
    m.on_venue_up("ALPHA", "sA")
    assert m.probe_round() == 1                          # only the logged-on venue
    sess, mt, fields, _ = sender.of_type("1")[0]
    rid = dict(fields)[112]
    clock.advance(0.0004)
    m.on_venue_admin("ALPHA", fix((35, "0"), (112, "TEST1")), "0")   # quickfix's own: ignored
    m.on_venue_admin("ALPHA", fix((35, "0"), (112, rid)), "0")
    v = m.venues["ALPHA"]
    assert v.lat.count == 1 and v.lat.last_us == pytest.approx(400)
    assert v.pending_since is None


def test_unanswered_probe_raises_route_latency():
    cfg, clock, sender, m = make_market()
    up(m, "ALPHA", rtt_us=300)
    m.probe_round()
    clock.advance(0.002)                                 # a hiccup: not counted
    assert m.route_latency(m.venues["ALPHA"], clock.now())[0] == pytest.approx(300)
    clock.advance(0.058)                                 # over half a probe interval: counted
    lat, stale = m.route_latency(m.venues["ALPHA"], clock.now())
    assert lat == pytest.approx(60_000) and not stale
    clock.advance(0.5)
    assert m.route_latency(m.venues["ALPHA"], clock.now())[1] is True


def test_failed_send_does_not_leave_a_pending_probe():
    cfg, clock, sender, m = make_market()
    up(m, "ALPHA", rtt_us=300)
    sender.ok = False
    assert m.probe_round() == 0
    assert m.venues["ALPHA"].pending_since is None and m.send_failures == 1


def test_snapshot_then_incrementals_build_the_book():
    cfg, clock, sender, m = make_market()
    up(m, "ALPHA", 100)
    snapshot(m, "ALPHA", "EURUSD", [(1.0999, 100)], [(1.1001, 50), (1.1002, 70)])
    incremental(m, "ALPHA", "EURUSD", [("0", "1", 1.10005, 5), ("2", "1", 1.1002, None), ("0", "2", 1.1001, 3)])
    b = m.venues["ALPHA"].books["EURUSD"]
    assert b.best_ask() == (1.10005, 5) and b.levels("1") == [(1.10005, 5), (1.1001, 50)]
    assert b.last_trade_px == 1.1001 and b.updates == 2


def test_incremental_before_snapshot_is_ignored_and_w_without_symbol_uses_request():
    cfg, clock, sender, m = make_market(md_symbols=["EURUSD"])
    m.on_venue_up("ALPHA", "sA")
    req_id = dict(sender.of_type("V")[0][2])[262]
    incremental(m, "ALPHA", "EURUSD", [("0", "1", 1.2, 5)])
    assert m.venues["ALPHA"].books["EURUSD"].best_ask() is None
    m.on_venue_app("ALPHA", fix((35, "W"), (262, req_id), (268, 1), (269, "0"), (270, 1.1), (271, 9)), "W")
    assert m.venues["ALPHA"].books["EURUSD"].best_bid() == (1.1, 9.0)


def test_session_drop_marks_books_stale_and_md_reject_recorded():
    cfg, clock, sender, m = make_market(md_symbols=["EURUSD"])
    up(m, "ALPHA", 100)
    snapshot(m, "ALPHA", "EURUSD", [(1.0, 1)], [(1.2, 1)])
    assert m.mark_price("EURUSD") == pytest.approx(1.1)
    m.on_venue_down("ALPHA")
    snap = m.snapshot()["ALPHA"]
    assert snap["up"] is False and snap["books"]["EURUSD"]["stale"] is True
    m.on_venue_up("ALPHA", "s")
    assert m.snapshot()["ALPHA"]["books"]["EURUSD"]["stale"] is True     # until the new W
    req_id = dict(sender.of_type("V")[-1][2])[262]
    assert m.on_venue_app("ALPHA", fix((35, "Y"), (262, req_id), (281, "0"), (58, "unknown symbol")), "Y")
    assert m.snapshot()["ALPHA"]["md_rejects"] == {"EURUSD": "unknown symbol"}
    assert m.on_venue_app("ALPHA", fix((35, "8")), "8") is False


def test_quiet_book_stays_fresh_while_probes_answer():
    cfg, clock, sender, m = make_market(md_symbols=["EURUSD"], book_stale_after_s=1.0)
    up(m, "ALPHA", 100)
    snapshot(m, "ALPHA", "EURUSD", [(1.0, 1)], [(1.2, 1)])
    v = m.venues["ALPHA"]
    clock.advance(5.0)
    v.lat.add(0.0001)                                  # probes still answered: a quiet market
    assert m.book_usable(v, v.books["EURUSD"], clock.now())
    clock.advance(1.5)                                 # no market data, no probe answer
    assert not m.book_usable(v, v.books["EURUSD"], clock.now())


def test_mark_price_falls_back_to_last_trade():
    cfg, clock, sender, m = make_market(md_symbols=["EURUSD"])
    up(m, "ALPHA", 100)
    snapshot(m, "ALPHA", "EURUSD", [], [(1.2, 1)])
    incremental(m, "ALPHA", "EURUSD", [("0", "2", 1.15, 3)])
    assert m.mark_price("EURUSD") == 1.15
    assert m.mark_price("NOPE") is None


def test_snapshot_is_json_able_and_ack_latency_kept():
    import json
    cfg, clock, sender, m = make_market()
    up(m, "ALPHA", 250)
    m.record_ack("ALPHA", 0.0005)
    snap = m.snapshot()
    json.dumps(snap)
    assert snap["ALPHA"]["ack"]["samples"] == 1 and snap["ALPHA"]["latency"]["p50_us"] == pytest.approx(250)
    assert snap["BRAVO"]["up"] is False and snap["BRAVO"]["latency"]["ewma_us"] is None


def test_garbled_market_data_is_counted_not_raised():
    cfg, clock, sender, m = make_market()
    up(m, "ALPHA", 100)
    assert m.on_venue_app("ALPHA", fix((35, "W"), (55, "EURUSD"), (268, 1), (269, "0"), (270, "abc")), "W")
    assert m.parse_errors == 1


def test_parse_fields_accepts_bytes():
    assert parse_fields(b"8=FIX.4.4\x0135=0\x01112=x\x01") == [(8, "FIX.4.4"), (35, "0"), (112, "x")]


def test_probe_rounds_are_loop_driven_and_capped_per_venue():
    """No thread: the gateway's loop timer calls probe_round(); however often it is called,
    a venue gets at most one probe per min_probe_gap_s (real venues throttle TestRequests)."""
    from gateway.common.clock import FakeClock
    calls = []
    clock = FakeClock(1000.0)
    m = MarketState(RoutingConfig(probe_interval_ms=20, md_symbols=["EURUSD"]), clock,
                    sender=lambda sess, mt, fields, groups: calls.append(mt) or True)
    m.register_venue("ALPHA")
    m.on_venue_up("ALPHA", "s")                      # subscribes at once, on the caller's loop turn
    assert calls == ["V"]
    for _ in range(100):                             # a runaway timer: 100 calls within 10 ms
        m.probe_round()
        clock.advance(0.0001)
    assert calls.count("1") == 1 and m.probes_capped == 99
    clock.advance(0.02)
    assert m.probe_round() == 1


def test_a_venue_without_probes_or_market_data_is_ranked_by_order_acks():
    cfg, clock, sender, m = make_market(venues=())
    m.register_venue("QUIET", probe=False, market_data=False)
    m.register_venue("LOUD")
    for v in ("QUIET", "LOUD"):
        m.on_venue_up(v, f"sess-{v}")
    m.subscribe_pending()
    assert m.probe_round() == 1                               # LOUD only
    assert {s[0] for s in sender.of_type("1")} == {"sess-LOUD"}
    assert {s[0] for s in sender.of_type("V")} == {"sess-LOUD"}
    quiet = m.venues["QUIET"]
    assert m.route_latency(quiet, clock.now()) == (INF, False)   # nothing measured yet, not stale
    m.record_ack("QUIET", 0.000350)
    assert m.route_latency(quiet, clock.now())[0] == pytest.approx(350.0)
