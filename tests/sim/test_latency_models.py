"""gateway.core.models.latency: the models the simulator and the backtester share."""
from __future__ import annotations

import statistics

import pytest

from gateway.common.clock import FakeClock
from gateway.core.models.latency import (ConstantLatency, EmpiricalLatency, LatencyModel, LatencyStep,
                                         ScheduledJitterLatency)
from sim_exchange.config import LatencyConfig


def test_constant_latency_and_protocol():
    m: LatencyModel = ConstantLatency(0.001, 0.002)
    assert (m.entry(5.0), m.response(5.0)) == (0.001, 0.002)
    with pytest.raises(ValueError):
        ConstantLatency(-1, 0)


def test_schedule_is_relative_to_start_and_live_override_lasts_until_next_step():
    clock = FakeClock(100.0)
    m = ScheduledJitterLatency(100, 0, "none", [(30, 3000, 0), LatencyStep(10, 500)], clock=clock.now)
    m.start()
    assert m.entry(clock.now()) == pytest.approx(100e-6)
    clock.advance(10.5)
    assert m.response(clock.now()) == pytest.approx(500e-6)     # steps in time order
    m.set(50, 0)
    assert m.sample() == pytest.approx(50e-6)                  # the override holds...
    clock.advance(20)
    assert m.sample() == pytest.approx(3000e-6)                # ...until the next step
    assert m.current() == (3000, 0)


def test_schedule_uses_the_callers_now_without_a_clock():
    m = ScheduledJitterLatency(100, 0, "none", [(1.0, 900, 0)])
    m.start(10.0)
    assert m.entry(10.5) == pytest.approx(100e-6)
    assert m.entry(11.0) == pytest.approx(900e-6)


@pytest.mark.parametrize("kind", ["normal", "exponential"])
def test_jitter_moments_and_seed(kind):
    cfg = LatencyConfig(base_us=1000, jitter_us=200, jitter=kind)
    m = ScheduledJitterLatency.from_config(cfg, seed=5)
    xs = [m.entry(0.0) * 1e6 for _ in range(4000)]
    assert min(xs) >= 0
    assert statistics.mean(xs) == pytest.approx(1000 if kind == "normal" else 1200, rel=0.05)
    assert statistics.pstdev(xs) == pytest.approx(200, rel=0.15)
    again = ScheduledJitterLatency.from_config(cfg, seed=5)
    assert [again.entry(0.0) * 1e6 for _ in range(10)] == xs[:10]


def test_never_negative_and_zero_detection():
    m = ScheduledJitterLatency(10, 500, "normal", seed=1)
    assert min(m.entry(0) for _ in range(2000)) >= 0
    assert ScheduledJitterLatency().is_zero
    assert not ScheduledJitterLatency(0, 0, "none", [(5, 100, 0)]).is_zero


def test_empirical_is_half_a_sampled_rtt():
    m = EmpiricalLatency([0.002, 0.004], seed=3)
    draws = {m.entry(0) for _ in range(200)} | {m.response(0) for _ in range(200)}
    assert draws == {0.001, 0.002}
    with pytest.raises(ValueError):
        EmpiricalLatency([])
