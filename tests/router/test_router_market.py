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
    cfg, clock, sender, m = make_market(probe_primed=False)
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
    m.register_venue("ALPHA", probe_max_per_s=100)   # the cap is not what this test is about
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


def test_probe_rate_is_capped_per_venue_and_staleness_follows_the_cap():
    """probe_max_per_s caps our TestRequests per venue whatever the probe timer asks; a
    probe may go a tenth of its gap early (timer jitter) but the long-run rate holds."""
    from gateway.common.clock import FakeClock
    clock = FakeClock(1000.0)
    calls = []
    m = MarketState(RoutingConfig(probe_interval_ms=10, md_symbols=[], probe_primed=False), clock,
                    sender=lambda sess, mt, fields, groups: calls.append(sess) or True)
    m.register_venue("SLOW", probe_max_per_s=2)      # a venue that allows 2 TestRequests a second
    m.register_venue("FAST", probe_max_per_s=1000)
    for v in ("SLOW", "FAST"):
        m.on_venue_up(v, v)
    for _ in range(1000):                            # 10 s of a 10 ms probe timer
        m.probe_round()
        clock.advance(0.0101)
    assert 20 <= calls.count("SLOW") <= 21           # 10.1 s at 2/s (one now, the next a little early)
    assert calls.count("FAST") == 1000
    slow = m.venues["SLOW"]
    assert slow.probes_capped == 1000 - calls.count("SLOW")
    assert slow.stale_after_s == pytest.approx(5 * 0.5)     # stale_after_intervals x the capped gap
    assert m.venues["FAST"].stale_after_s == pytest.approx(5 * 0.01)
    assert m.snapshot()["SLOW"]["probe_max_per_s"] == 2


class _Handle:
    """A session handle with the native engine's transport-edge stamp."""
    received_at = None


def _probe_market(primed: bool = True, **routing):
    """A fake clock, a handle, the TestReqIDs sent (each send takes 30 us) and the market."""
    from gateway.common.clock import FakeClock
    clock = FakeClock(1000.0)
    h = _Handle()
    sent: list[str] = []

    def sender(sess, mt, fields, groups):
        clock.advance(0.000030)                      # 30 us: encode and write
        sent.append(dict(fields)[112])
        return True

    m = MarketState(RoutingConfig(md_symbols=[], probe_primed=primed, **routing), clock, sender=sender)
    return clock, h, sent, m


def test_probe_answer_is_split_into_the_venue_and_our_floor():
    """decided -> handed (send path, ours) -> received (the venue's part) -> handled
    (receive path, ours): the router ranks by the venue's part, the floor is shown apart."""
    clock, h, sent, m = _probe_market(primed=False)
    m.register_venue("ALPHA")
    m.on_venue_up("ALPHA", h)
    m.probe_round()
    clock.advance(0.000100)                          # 100 us on the wire and in the venue
    h.received_at = clock.now()
    clock.advance(0.000020)                          # 20 us: read, parse, dispatch
    m.on_venue_admin("ALPHA", fix((35, "0"), (112, sent[0])), "0")
    v = m.venues["ALPHA"]
    assert v.rtt.last_us == pytest.approx(150)
    assert v.lat.last_us == pytest.approx(100)
    assert m.floor.last_us == pytest.approx(50)
    snap = m.snapshot()["ALPHA"]
    assert snap["latency"]["p50_us"] == pytest.approx(100) and snap["rtt"]["p50_us"] == pytest.approx(150)
    assert snap["latency"]["floor_p50_us"] == pytest.approx(50)
    assert m.route_latency(v, clock.now())[0] == pytest.approx(100)
    assert m.stats()["probe_floor_p50_us"] == pytest.approx(50)


def test_time_off_the_cpu_in_our_send_goes_to_the_venue():
    """Real clock: the send half is this thread's CPU time. A sender that is off the CPU
    (here: sleeping 20 ms, as when the venue, woken by our write, preempts us and answers
    before the write returns) has that time moved to the venue's part; rtt is unchanged."""
    import time

    from gateway.common.clock import MonotonicClock
    clock = MonotonicClock()
    h = _Handle()
    sent = []

    def sender(sess, mt, fields, groups):
        time.sleep(0.020)
        sent.append(dict(fields)[112])
        return True

    m = MarketState(RoutingConfig(md_symbols=[], probe_primed=False), clock, sender=sender)
    m.register_venue("ALPHA")
    m.on_venue_up("ALPHA", h)
    m.probe_round()
    h.received_at = clock.now()
    m.on_venue_admin("ALPHA", fix((35, "0"), (112, sent[0])), "0")
    v = m.venues["ALPHA"]
    assert v.rtt.last_us >= 20_000
    assert v.lat.last_us >= 19_000                   # the sleep is the venue's, not ours
    assert m.floor_send.last_us < 5_000
    assert v.lat.last_us + m.floor.last_us == pytest.approx(v.rtt.last_us)


def test_without_a_receive_stamp_only_the_send_path_is_taken_off():
    """quickfix gives no transport-edge stamp: the venue's figure keeps our receive path and
    the floor gets no sample (never a guess)."""
    clock, _h, sent, m = _probe_market(primed=False)
    m.register_venue("ALPHA")
    m.on_venue_up("ALPHA", "a quickfix session id")
    m.probe_round()
    clock.advance(0.000120)
    m.on_venue_admin("ALPHA", fix((35, "0"), (112, sent[0])), "0")
    v = m.venues["ALPHA"]
    assert v.rtt.last_us == pytest.approx(150) and v.lat.last_us == pytest.approx(120)
    assert m.floor.count == 0 and m.snapshot()["ALPHA"]["latency"]["floor_p50_us"] is None


def test_heartbeat_arrival_jitter_is_a_passive_figure():
    """The venue's own Heartbeats (no 112): their arrival interval and its spread; an
    interval with market data in it is not a heartbeat period and is left out."""
    cfg, clock, sender, m = make_market(venues=())
    m.register_venue("QUIET", probe=False, market_data=False)
    m.on_venue_up("QUIET", "s")
    hb = fix((35, "0"))
    assert m.snapshot()["QUIET"]["heartbeat"]["jitter_us"] is None
    for gap in (1.0, 1.002, 0.999, 1.001, 1.0, 1.003):
        m.on_venue_admin("QUIET", hb, "0")
        clock.advance(gap)
    m.on_venue_admin("QUIET", hb, "0")
    fig = m.snapshot()["QUIET"]["heartbeat"]
    assert fig["intervals"] == 6
    assert fig["interval_p50_us"] == pytest.approx(1_000_500, abs=1)
    assert 1_000 < fig["jitter_us"] < 4_000
    m.venues["QUIET"].last_md_at = clock.now() + 0.5   # market data inside the next interval
    clock.advance(1.0)
    m.on_venue_admin("QUIET", hb, "0")
    assert m.snapshot()["QUIET"]["heartbeat"]["intervals"] == 6


def test_heartbeat_interval_with_another_venue_message_in_it_is_left_out():
    """Anything the venue sends restarts its heartbeat timer: an interval holding the answer
    to a probe (ours or the session's own TestRequest) or an order's report is not one
    heartbeat period (it would read as jitter of seconds on a venue probed rarely)."""
    cfg, clock, sender, m = make_market(venues=(), probe_primed=False)
    m.register_venue("SLOW", probe_max_per_s=0.1, market_data=False)
    m.on_venue_up("SLOW", "s")
    hb = fix((35, "0"))
    for i in range(4):                       # 3 clean intervals
        if i:
            clock.advance(1.0)
        m.on_venue_admin("SLOW", hb, "0")
    assert m.snapshot()["SLOW"]["heartbeat"]["intervals"] == 3
    clock.advance(0.4)
    assert m.probe_round() == 1              # our probe, answered inside the next interval
    rid = dict(sender.of_type("1")[-1][2])[112]
    m.on_venue_admin("SLOW", fix((35, "0"), (112, rid)), "0")
    assert m.venues["SLOW"].rtt.count == 1
    clock.advance(0.6)
    m.on_venue_admin("SLOW", hb, "0")
    assert m.venues["SLOW"].hb.count == 3                              # left out
    clock.advance(1.0)
    m.on_venue_admin("SLOW", hb, "0")
    assert m.venues["SLOW"].hb.count == 4                              # clean
    clock.advance(0.3)
    m.on_venue_admin("SLOW", fix((35, "0"), (112, "TEST-7")), "0")   # the session's own TestRequest
    clock.advance(0.7)
    m.on_venue_admin("SLOW", hb, "0")
    clock.advance(0.5)
    m.record_ack("SLOW", 0.0002)                                       # an order's first report
    clock.advance(0.5)
    m.on_venue_admin("SLOW", hb, "0")
    assert m.venues["SLOW"].hb.count == 4
    clock.advance(1.0)
    m.on_venue_admin("SLOW", hb, "0")                                  # a clean one again
    assert m.venues["SLOW"].hb.count == 5


def test_probes_are_spread_over_the_interval_one_venue_per_tick():
    """probe_next: each probed venue once per interval, in turn, never two back to back
    (a venue's answer must not wait in our socket while we send the next venue's probe)."""
    from gateway.common.clock import FakeClock
    clock = FakeClock(1000.0)
    calls = []
    m = MarketState(RoutingConfig(probe_interval_ms=20, md_symbols=[]), clock,
                    sender=lambda sess, mt, fields, groups: calls.append(sess) or True)
    for name in ("A", "B", "C", "D", "OFF"):
        m.register_venue(name, probe=name != "OFF", probe_max_per_s=100)
        m.on_venue_up(name, name)
    tick, per_tick = m.probe_schedule()
    assert (tick, per_tick) == (pytest.approx(0.005), 1)
    for _ in range(8):
        assert m.probe_next(per_tick) == 1
        clock.advance(tick)
    assert calls == ["A", "B", "C", "D"] * 2
    big = MarketState(RoutingConfig(probe_interval_ms=100, md_symbols=[]), clock)
    for i in range(120):
        big.register_venue(f"V{i}")
    tick, per_tick = big.probe_schedule()                 # loop timers are ~1 ms: a few per tick
    assert tick >= 0.002 and tick * 120 / per_tick == pytest.approx(0.1)


def _answer(m, clock, h, rid, wire_s, receive_s=0.000020):
    clock.advance(wire_s)
    h.received_at = clock.now()
    clock.advance(receive_s)
    m.on_venue_admin("ALPHA", fix((35, "0"), (112, rid)), "0")


def test_primed_probe_measures_the_probe_after_the_primer_and_keeps_the_primer_apart():
    """probe_primed: the tick sends a primer; its answer sends the measured probe at once
    (through ``defer``); only the measured probe is a latency sample, the primer's round
    trip is ``rtt_cold``."""
    clock, h, sent, m = _probe_market()
    deferred = []
    m.defer = deferred.append
    m.register_venue("ALPHA")
    m.on_venue_up("ALPHA", h)
    assert m.probe_round() == 1 and len(sent) == 1
    _answer(m, clock, h, sent[0], 0.000400)           # the primer: cold, 400 us on the wire
    v = m.venues["ALPHA"]
    assert v.lat.count == 0 and v.rtt.count == 0 and m.floor.count == 0
    assert v.cold.last_us == pytest.approx(450)
    assert len(sent) == 1 and len(deferred) == 1      # the measured probe waits for the loop's turn
    deferred.pop()()
    assert len(sent) == 2 and v.pending_since is not None
    _answer(m, clock, h, sent[1], 0.000060)           # the measured probe: warm, 60 us
    assert v.lat.last_us == pytest.approx(60) and v.rtt.last_us == pytest.approx(110)
    assert m.floor.last_us == pytest.approx(50) and v.pending_since is None
    snap = m.snapshot()["ALPHA"]
    assert snap["rtt_cold"]["p50_us"] == pytest.approx(450) and snap["latency"]["p50_us"] == pytest.approx(60)
    assert m.stats()["probes_sent"] == 2               # TestRequests, primers included


def test_primed_probes_count_twice_against_the_venue_cap():
    """A venue allowing 10 TestRequests/s gets 5 primed probes/s (10 TestRequests)."""
    clock, h, sent, m = _probe_market(probe_interval_ms=10)
    m.register_venue("ALPHA", probe_max_per_s=10)
    m.on_venue_up("ALPHA", h)
    for _ in range(1000):                              # ~10 s of a 10 ms probe timer
        if m.probe_round() and m.venues["ALPHA"].primer_id is not None:
            _answer(m, clock, h, m.venues["ALPHA"].primer_id, 0.0001)   # measured one sent at once
            _answer(m, clock, h, sent[-1], 0.0001)
        clock.advance(0.0100)
    assert 100 <= len(sent) <= 104                     # ~10.2 s at 10 TestRequests/s
    assert m.venues["ALPHA"].lat.count == len(sent) // 2
    assert m.venues["ALPHA"].stale_after_s == pytest.approx(5 * 0.2)   # 5 x a pair's two gaps


def test_primed_probe_is_not_sent_after_the_session_dropped():
    clock, h, sent, m = _probe_market()
    deferred = []
    m.defer = deferred.append
    m.register_venue("ALPHA")
    m.on_venue_up("ALPHA", h)
    m.probe_round()
    _answer(m, clock, h, sent[0], 0.0003)
    m.on_venue_down("ALPHA")
    m.on_venue_up("ALPHA", h)                          # back before the loop's turn came
    deferred.pop()()
    assert len(sent) == 1 and m.venues["ALPHA"].pending_since is None
    clock.advance(0.2)
    assert m.probe_round() == 1 and m.venues["ALPHA"].primer_id == sent[1]   # a fresh pair starts


def test_a_lost_primer_does_not_block_the_next_pair():
    clock, h, sent, m = _probe_market()
    m.register_venue("ALPHA")
    m.on_venue_up("ALPHA", h)
    m.probe_round()
    clock.advance(0.2)                                 # its answer never came
    m.probe_round()
    v = m.venues["ALPHA"]
    assert v.primer_id == sent[1]
    _answer(m, clock, h, sent[1], 0.0003)              # retires the lost one, sends the probe at once
    assert len(sent) == 3 and m.probes.expired == 1
    _answer(m, clock, h, sent[2], 0.0001)
    assert v.lat.last_us == pytest.approx(100)


def test_status_text_shows_the_primers_round_trip_beside_the_probe():
    from gateway.apps.server.admin import format_status
    clock, h, sent, m = _probe_market()
    m.register_venue("ALPHA")
    m.on_venue_up("ALPHA", h)
    m.probe_round()
    _answer(m, clock, h, sent[0], 0.000700)
    _answer(m, clock, h, sent[1], 0.000060)
    text = format_status({"gateway": {}, "venues": [{"name": "ALPHA", "market": m.snapshot()["ALPHA"]}]})
    assert "latency p50 60us" in text and "(rtt p50 110us, primer 750us)" in text, text
