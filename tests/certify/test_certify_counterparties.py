"""The whole bundled suite against our own counterparties, started as processes from TOML:
a simulator venue (through its latency proxy) and the gateway's OMS acceptor."""
from __future__ import annotations

from certify_helpers import SUITE, SUITE_NAMES, failures, run_certify


def test_whole_suite_passes_against_a_simulator_venue(stack, tmp_path):
    # native engines validate user-defined fields by default: the whole suite passes (14j too)
    stack.start_sim("cert", [{"name": "ALPHA", "latency": {"base_us": 100, "jitter_us": 15}}])
    rc, report, wall = run_certify(tmp_path, "--venue", "ALPHA", "--config", str(tmp_path / "sim-cert.toml"))
    assert failures(report) == {}
    assert rc == 0
    assert [s["name"] for s in report["scenarios"]] == SUITE_NAMES
    assert report["counterparty"] == {"host": "127.0.0.1", "port": stack.venue_ports["ALPHA"], "sender": "CERT",
                                      "target": "ALPHA", "label": "sim venue ALPHA"}
    assert report["summary"]["passed"] == len(SUITE)
    assert wall < 60


def test_whole_suite_passes_against_the_gateway_oms_acceptor(stack, tmp_path):
    stack.start_sim("venues", [{"name": "ALPHA"}])
    stack.start_gateway()
    rc, report, wall = run_certify(tmp_path, "--gateway", "--config", str(tmp_path / "gateway.toml"))
    assert (rc, failures(report)) == (0, {})          # user-defined tags rejected (14j) included
    assert report["counterparty"]["port"] == stack.oms_port
    assert report["counterparty"]["target"] == "FIXGW"
    assert report["summary"]["passed"] == len(SUITE)
    assert wall < 60
    # the gateway still serves its venue after 50-odd certification sessions
    assert all(v["logged_on"] for v in stack.status()["venues"])
