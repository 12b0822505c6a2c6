import math

import numpy as np
import pytest

from gateway.common.clock import FakeClock
from gateway.core.latency import INF, LatencyEstimator, ProbeTracker


def test_ewma_recent_and_percentiles():
    clock = FakeClock()
    est = LatencyEstimator(clock, window=10, ewma_alpha=0.5, stale_after_s=0.5, recent_samples=3)
    assert est.ewma_us == INF and est.p50_us == INF and est.is_stale()
    for us in (100, 200, 300):
        est.add(us / 1e6)
    assert est.ewma_us == pytest.approx(225.0)          # 100 -> 150 -> 225
    assert est.recent_us == pytest.approx(200.0)
    assert est.p50_us == pytest.approx(200.0)
    assert est.count == 3 and not est.is_stale()


def test_window_keeps_only_last_n_and_jitter():
    est = LatencyEstimator(FakeClock(), window=4, ewma_alpha=0.2)
    for us in (1000, 1000, 10, 20, 30, 40):
        est.add(us / 1e6)
    data = np.array([10, 20, 30, 40.0])
    assert est.p50_us == pytest.approx(np.percentile(data, 50))
    assert est.p99_us == pytest.approx(np.percentile(data, 99))
    assert est.jitter_us == pytest.approx(np.percentile(data, 90) - np.percentile(data, 10))


def test_percentiles_are_cached_until_next_sample():
    est = LatencyEstimator(FakeClock(), window=8)
    est.add(0.001)
    first = est.p50_us
    assert est._cache is not None
    est.add(0.003)
    assert est._cache is None and est.p50_us != first


def test_stale_after_silence():
    clock = FakeClock()
    est = LatencyEstimator(clock, stale_after_s=0.5)
    est.add(0.0002)
    clock.advance(0.5)
    assert not est.is_stale()
    clock.advance(0.001)
    assert est.is_stale()
    assert est.snapshot()["stale"] is True and est.snapshot()["last_sample_age_s"] == pytest.approx(0.501)


def test_recent_median_follows_level_shift_within_three_samples():
    est = LatencyEstimator(FakeClock(), ewma_alpha=0.2, recent_samples=5)
    for _ in range(20):
        est.add(0.001)
    for _ in range(3):
        est.add(0.050)
    assert est.recent_us == pytest.approx(50_000)
    for _ in range(3):
        est.add(0.001)
    assert est.recent_us == pytest.approx(1000)
    assert est.ewma_us > 10_000     # the EWMA is still far behind: why scalp ranks by "recent"


def test_single_spike_does_not_move_recent():
    est = LatencyEstimator(FakeClock(), recent_samples=5)
    for us in (100, 100, 5000, 100, 100):
        est.add(us / 1e6)
    assert est.recent_us == 100


def test_probe_tracker_matches_and_rejects_foreign_ids():
    clock = FakeClock(10.0)
    pt = ProbeTracker(clock)
    rid = pt.new_probe("ALPHA")
    assert rid.startswith("PRB-ALPHA-") and pt.is_ours(rid)
    clock.advance(0.00025)
    assert pt.on_heartbeat("BRAVO", rid) is None          # wrong venue
    assert pt.on_heartbeat("ALPHA", "TEST") is None        # quickfix's own TestReqID
    assert pt.on_heartbeat("ALPHA", rid) == pytest.approx(0.00025)
    assert pt.on_heartbeat("ALPHA", rid) is None           # answered once only
    assert pt.unmatched == 2


def test_probe_answer_retires_older_pending_and_ids_unique():
    clock = FakeClock()
    pt = ProbeTracker(clock)
    ids = [pt.new_probe("A") for _ in range(3)]
    assert len(set(ids)) == 3
    assert pt.oldest_pending_at("A") == 0.0
    clock.advance(1.0)
    assert pt.on_heartbeat("A", ids[2]) == pytest.approx(1.0)
    assert pt.pending("A") == 0 and pt.expired == 2


def test_probe_pending_is_bounded_and_expires():
    clock = FakeClock()
    pt = ProbeTracker(clock, max_pending=4, max_age_s=1.0)
    for _ in range(10):
        pt.new_probe("A")
    assert pt.pending("A") <= 4
    clock.advance(2.0)
    pt.new_probe("A")
    assert pt.pending("A") == 1
    pt.clear("A")
    assert pt.oldest_pending_at("A") is None


def test_negative_rtt_ignored():
    est = LatencyEstimator(FakeClock())
    est.add(-1e-6)
    assert est.count == 0 and math.isinf(est.ewma_us)


def test_route_latency_ignores_one_spike_follows_two_and_recovers_by_median():
    est = LatencyEstimator(FakeClock(), recent_samples=5)
    for _ in range(5):
        est.add(0.0003)
    est.add(0.005)
    assert est.recent_us == pytest.approx(300) and est.route_us == pytest.approx(300)   # one spike
    est.add(0.005)
    assert est.route_us == pytest.approx(5000)                                       # confirmed
    est.add(0.005)
    est.add(0.0003)
    est.add(0.0003)
    assert est.route_us == pytest.approx(5000)   # median still slow: 2 of 5 fast
    est.add(0.0003)
    assert est.route_us == pytest.approx(300)


# ---------------------------------------------------------------- bench-only probe hop trace

def test_probe_trace_is_off_unless_its_directory_is_named(monkeypatch):
    from gateway.core.latency import TRACE_ENV, probe_trace
    monkeypatch.delenv(TRACE_ENV, raising=False)
    assert probe_trace("gw") is None
    monkeypatch.setenv(TRACE_ENV, "")
    assert probe_trace("gw") is None


def test_probe_trace_rows_reach_the_file_with_their_test_req_ids(tmp_path, monkeypatch):
    from gateway.core.latency import TRACE_ENV, probe_trace
    monkeypatch.setenv(TRACE_ENV, str(tmp_path))
    trace = probe_trace("sim")
    assert trace is not None
    trace.add("gw", "PRB-D0-1", 1.0, 1.5, 2.0, 2.25)       # no running loop: kept until dumped
    trace.add("out", b"8=FIX.4.4\x019=5\x0135=0\x01112=PRB-D0-1\x0110=000\x01"
                     b"8=FIX.4.4\x019=5\x0135=0\x01112=PRB-D0-2\x0110=000\x01", 3.0, 3.5)
    trace.add("in", b"8=FIX.4.4\x0135=1\x01", 4.0, 4.5)      # no 112: written as "-"
    trace.dump()
    trace.dump()                                              # nothing more: nothing written twice
    (path,) = tmp_path.glob("sim-*.trace")
    lines = path.read_text().splitlines()
    assert lines == ["gw PRB-D0-1 1.000000000 1.500000000 2.000000000 2.250000000",
                     "out PRB-D0-1 3.000000000 3.500000000", "out PRB-D0-2 3.000000000 3.500000000",
                     "in - 4.000000000 4.500000000"]


def test_the_recent_median_is_the_median_of_the_last_samples_whatever_their_order():
    import random
    import statistics
    from gateway.core.latency import LatencyEstimator
    rng = random.Random(3)
    for n in (1, 2, 5, 6):
        est = LatencyEstimator(recent_samples=n)
        samples: list[float] = []
        for _ in range(300):
            x = rng.choice([rng.uniform(0, 1e-3), 2e-4, 5e-4])     # ties included
            est.add(x, at=0.0)
            samples.append(x * 1e6)
            assert est.recent_us == statistics.median(samples[-n:])
