"""The whole bundled suite against our own counterparties, started as processes from TOML:
a simulator venue (through its latency proxy) and the gateway's OMS acceptor."""
from __future__ import annotations

from certify_helpers import SUITE, SUITE_NAMES, failures, run_certify

# Known gap, asserted rather than hidden: the simulator and the gateway run quickfix with
# ValidateUserDefinedFields=N (hard-coded in gateway/fix/quickfix_backend.engine_defaults, no
# config key), so a Heartbeat with tag 5000 is accepted silently instead of rejected. Once
# their session configs expose `validate_user_defined_fields` (default true), this set
# becomes empty and the tests below fail until it is emptied here.
USER_DEFINED_TAG = "14j_UserDefinedTagInAdminMessage"
KNOWN_GAPS = {USER_DEFINED_TAG}


def assert_only_known_gaps(report: dict) -> None:
    failed = failures(report)
    assert set(failed) == KNOWN_GAPS, failed
    # the Heartbeat with tag 5000 was taken silently: no Reject ever came
    assert failed[USER_DEFINED_TAG] == ("timed out after 10s waiting for Reject 35=3 34=2 45=2 "
                                        "58=Invalid tag number"), failed[USER_DEFINED_TAG]


def test_whole_suite_passes_against_a_simulator_venue(stack, tmp_path):
    stack.start_sim("cert", [{"name": "ALPHA", "latency": {"base_us": 100, "jitter_us": 15}}])
    rc, report, wall = run_certify(tmp_path, "--venue", "ALPHA", "--config", str(tmp_path / "sim-cert.toml"))
    assert_only_known_gaps(report)
    assert rc == 1
    assert [s["name"] for s in report["scenarios"]] == SUITE_NAMES
    assert report["counterparty"] == {"host": "127.0.0.1", "port": stack.venue_ports["ALPHA"], "sender": "CERT",
                                      "target": "ALPHA", "label": "sim venue ALPHA"}
    assert report["summary"]["passed"] == len(SUITE) - len(KNOWN_GAPS)
    assert wall < 60


def test_whole_suite_passes_against_the_gateway_oms_acceptor(stack, tmp_path):
    stack.start_sim("venues", [{"name": "ALPHA"}])
    stack.start_gateway()
    rc, report, wall = run_certify(tmp_path, "--gateway", "--config", str(tmp_path / "gateway.toml"))
    # the gateway (native engine by default) validates user-defined fields: no known gap left
    assert failures(report) == {}
    assert rc == 0
    assert report["counterparty"]["port"] == stack.oms_port
    assert report["counterparty"]["target"] == "FIXGW"
    assert report["summary"]["passed"] == len(SUITE)
    assert wall < 60
    # the gateway still serves its venue after 50-odd certification sessions
    assert all(v["logged_on"] for v in stack.status()["venues"])
