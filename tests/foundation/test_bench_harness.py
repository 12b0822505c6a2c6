"""The gateway benchmark's own parts (benchmarks/loadgen.py, bench_gateway.py): framing that a FIX
peer accepts, a load run that counts every order, the per-process figures it prints. No timing
is asserted: the benchmarks print numbers."""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from gateway.common import procs

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_gateway  # noqa: E402
import loadgen  # noqa: E402


def test_checksum_is_the_byte_sum_mod_256_at_any_length():
    rng = random.Random(7)
    for n in (0, 1, 255, 256, 257, 511, 4096):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert loadgen.checksum(data) == sum(data) % 256, n


def test_frames_parse_back_with_a_valid_checksum_and_body_length():
    body = "11=L1\x0138=5\x0144=190\x01"
    wire = loadgen.frame("D", 7, "OMS1", "FIXGW", body) + loadgen.frame("0", 8, "OMS1", "FIXGW", "")
    buf = bytearray(wire + b"8=FIX.4.4\x019=")            # a partial third message stays in the buffer
    msgs = loadgen.messages(buf)
    assert len(msgs) == 2 and buf == bytearray(b"8=FIX.4.4\x019=")
    d = msgs[0]
    assert loadgen.field(d, b"35") == b"D" and loadgen.field(d, b"34") == b"7"
    assert loadgen.field(d, b"38") == b"5" and loadgen.field(d, b"52").endswith(b".000")
    cut = d.rindex(b"\x0110=") + 1
    assert int(d[cut + 3:-1]) == sum(d[:cut]) % 256
    start = d.index(b"\x019=") + 3
    body_start = d.index(b"\x01", start) + 1
    assert int(d[start:body_start - 1]) == cut - body_start


def test_sending_time_is_formatted_once_a_second(monkeypatch):
    now = [1_000_000_000.25]
    monkeypatch.setattr(loadgen.time, "time", lambda: now[0])
    first = loadgen.sending_time()
    assert first == "20010909-01:46:40.000"
    now[0] += 0.5
    assert loadgen.sending_time() is first               # the same second: the same text, not formatted again
    now[0] += 1
    assert loadgen.sending_time() == "20010909-01:46:41.000"


def test_a_load_run_counts_every_order_and_reports_each_process(tmp_path):
    port = procs.free_port()
    venue = procs.start([sys.executable, str(BENCH / "loadgen.py"), "venue", str(port), "LGV"], tmp_path / "v.log")
    try:
        procs.wait_for_ports([port], 10, venue)
        before = bench_gateway.proc_usage(venue.pid)
        result = loadgen.client(port, "LGV", 300, 50)
        after = bench_gateway.proc_usage(venue.pid)
    finally:
        procs.stop(venue)
    assert result["orders"] == result["terminal"] == result["filled"] == 300
    assert result["duplicates"] == 0
    assert set(result["usage"]) == {"cpu_us", "busy", "reads", "writes", "ctx_switches", "preempted"}
    assert result["usage"]["reads"] > 0 and result["usage"]["writes"] > 0
    if os.path.exists(f"/proc/{os.getpid()}/task"):            # Linux: the venue's own figures
        per = bench_gateway.usage_per_order(before, after, 300, result["seconds"])
        assert per["cpu_us"] > 0 and per["busy"] is not None


def test_probe_overlap_counts_orders_with_a_probe_in_flight():
    sent = list(range(0, 1000, 10))                    # 100 orders of 5 ns each, every 10 ns
    got = [s + 5 for s in sent]
    got[-1] += 100                                      # the slowest
    out = bench_gateway.probe_overlap(sent, got, [992, 3])
    assert out == {"probes": 2, "all_pct": 2.0, "slowest_pct": 100.0}
    assert bench_gateway.probe_overlap([], [], [])["all_pct"] is None


def test_the_harness_runs_off_the_pinned_gateways_cpu(monkeypatch):
    monkeypatch.setattr(bench_gateway, "ALL_CPUS", {0, 1})
    monkeypatch.setattr(bench_gateway, "HARNESS_APART", True)
    monkeypatch.setattr(bench_gateway, "CPU", -1)
    assert bench_gateway.harness_cpus() == {0}
    monkeypatch.setattr(bench_gateway, "CPU", 0)
    assert bench_gateway.harness_cpus() == {1}
    monkeypatch.setattr(bench_gateway, "CPU", None)
    assert bench_gateway.harness_cpus() is None
    monkeypatch.setattr(bench_gateway, "CPU", 1)
    monkeypatch.setattr(bench_gateway, "HARNESS_APART", False)
    assert bench_gateway.harness_cpus() is None
    monkeypatch.setattr(bench_gateway, "ALL_CPUS", {1})
    monkeypatch.setattr(bench_gateway, "HARNESS_APART", True)
    assert bench_gateway.harness_cpus() is None         # one CPU: nowhere else to go


@pytest.mark.parametrize("n", [1, 2])
def test_pct_prints_the_sample_count(n):
    assert f"(n={n})" in bench_gateway.pct(np.arange(n))


def test_the_fake_venue_answers_each_message_type():
    venue = bench_gateway.FakeVenue("FV", 0)
    try:
        field = loadgen.field
        nos = loadgen.frame("D", 2, "FIXGW", "FV", "11=c1\x0138=7\x0140=2\x0144=190.5\x0154=2\x0155=MSFT\x01")
        mt, body = venue.answer(nos, 123)
        fill = loadgen.frame(mt, 2, "FV", "FIXGW", body)
        assert mt == "8" and venue.recv_at == [123] and venue.orders == 1
        for tag, want in ((b"11", b"c1"), (b"39", b"2"), (b"150", b"F"), (b"32", b"7"), (b"31", b"190.5"),
                          (b"54", b"2"), (b"55", b"MSFT"), (b"151", b"0"), (b"14", b"7"), (b"37", b"V1")):
            assert field(fill, tag) == want, tag
        probe = loadgen.frame("1", 3, "FIXGW", "FV", "112=PRB-1\x01")
        assert venue.answer(probe, 456) == ("0", "112=PRB-1\x01") and venue.probes_at == [456]
        assert venue.answer(loadgen.frame("A", 1, "FIXGW", "FV", "98=0\x01108=30\x01"), 0)[0] == "A"
        assert venue.answer(loadgen.frame("V", 4, "FIXGW", "FV", "262=m1\x01"), 0)[0] == "Y"
        assert venue.answer(loadgen.frame("5", 5, "FIXGW", "FV", ""), 0) == ("5", "")
        assert venue.answer(loadgen.frame("0", 6, "FIXGW", "FV", ""), 0) is None
    finally:
        venue.listener.close()


def test_the_floor_pair_fills_orders_one_at_a_time():
    with bench_gateway.floor_pair() as (venue, c):
        for i in range(5):
            t0 = bench_gateway.send_order(c, f"t{i}")
            assert bench_gateway.wait_terminal(c, f"t{i}") >= t0
        assert venue.orders == 5 and len(venue.recv_at) == len(venue.send_at) == 5
