"""The application-level suite (order flow, `fixgw certify --app`) against a simulator
venue and the gateway's OMS acceptor, and a venue that never cancels an IOC remainder."""
from __future__ import annotations

from certify_helpers import failures, run_certify, statuses

from gateway.apps.certify.faulty import FaultyVenue
from gateway.apps.certify.script import builtin_suite, discover
from gateway.common.procs import free_port, wait_for_ports

APP_SUITE = [p.stem for p in discover([builtin_suite("app")])]
# The scenarios provide their own liquidity: the venue's AAPL book must start empty.
EMPTY_BOOK = {"enabled": False, "initial_levels": 0}
# Known gaps, asserted so that a fix shows up here. The scenario stays as FIX 4.4 specifies:
# - the simulator does not support OrderStatusRequest (35=H): BusinessMessageReject;
# (the gateway answers it with ExecType=I OrdStatus=8 and echoes OrdStatusReqID(790).)
NO_ORDER_STATUS = "a6_OrderStatusUnknownOrder"


def test_app_suite_against_a_simulator_venue(stack, tmp_path):
    stack.start_sim("cert", [{"name": "ALPHA", "flow": EMPTY_BOOK}])
    rc, report, wall = run_certify(tmp_path, "--app", "--venue", "ALPHA", "--config", str(tmp_path / "sim-cert.toml"),
                                   "--timeout", "3")
    assert list(statuses(report)) == APP_SUITE
    assert set(failures(report)) == {NO_ORDER_STATUS}, failures(report)
    assert "35=j" in failures(report)[NO_ORDER_STATUS] or "BusinessMessageReject" in failures(report)[NO_ORDER_STATUS]
    assert rc == 1
    assert {s["suite"] for s in report["scenarios"]} == {"application"}
    assert wall < 60
    # again on the same book: every scenario cleans up, and <RUNID> makes ClOrdIDs new
    rc, again, _ = run_certify(tmp_path, "--app", "--venue", "ALPHA", "--config", str(tmp_path / "sim-cert.toml"),
                               "--timeout", "3", "-k", "a1_", "-k", "a2_", "-k", "a3_", "-k", "a5_")
    assert (rc, failures(again)) == (0, {})


def test_app_suite_against_the_gateway_oms_acceptor(stack, tmp_path):
    stack.start_sim("venues", [{"name": "ALPHA", "flow": EMPTY_BOOK}])
    stack.start_gateway()
    rc, report, wall = run_certify(tmp_path, "--app", "--gateway", "--config", str(tmp_path / "gateway.toml"),
                                   "--timeout", "3")
    assert list(statuses(report)) == APP_SUITE
    assert failures(report) == {}              # the gateway echoes OrdStatusReqID(790) now
    assert rc == 0
    assert wall < 60


def test_venue_that_never_cancels_an_ioc_remainder_is_caught(stack, tmp_path):
    stack.start_sim("cert", [{"name": "ALPHA", "flow": EMPTY_BOOK}])
    faulty = FaultyVenue(free_port(), stack.venue_ports["ALPHA"], {"no-ioc-cancel"}).start()
    try:
        wait_for_ports([faulty.port], 10)
        rc, report, _ = run_certify(tmp_path, "--app", "--port", str(faulty.port), "--target", "ALPHA",
                                    "--timeout", "2", "-k", "a1_", "-k", "a3_")
    finally:
        faulty.stop()
    assert rc == 1
    # a requested cancel (a1) still gets through: only the IOC expiry is missing
    assert statuses(report) == {"a1_NewOrderAcknowledged": "pass", "a3_IocRemainderCanceled": "fail"}
    reason = failures(report)["a3_IocRemainderCanceled"]
    assert reason.startswith("timed out after 2s waiting for ExecutionReport 35=8 11=A3-")
    assert reason.endswith("-B 150=4 39=4")
