"""Initiator certification (`fixgw certify --listen`): the certifier is the acceptor and
plays the bundled initiator suite against a plain quickfix initiator (FileStore in tmp),
and catches an initiator that ignores ResendRequests."""
from __future__ import annotations

import threading

import pytest
from certify_helpers import failures, run_certify, statuses

from gateway.apps.certify.faulty import FaultyInitiator
from gateway.apps.certify.initiator import ReferenceInitiator
from gateway.apps.certify.script import builtin_suite, discover
from gateway.common.procs import free_port

INITIATOR_SUITE = [p.stem for p in discover([builtin_suite("initiator")])]


def listen_args(port: int, *more: str) -> list[str]:
    return ["--listen", f"127.0.0.1:{port}", "--sender", "CERT", "--target", "CERTI", "--timeout", "3",
            "--accept-timeout", "10", *more]


def test_initiator_suite_passes_against_a_plain_quickfix_initiator(tmp_path):
    port = free_port()
    # started first: it retries every second until the certifier listens
    initiator = ReferenceInitiator(port, "CERTI", "CERT", store_dir=tmp_path / "initiator-store").start()
    try:
        rc, report, wall = run_certify(tmp_path, *listen_args(port))
    finally:
        initiator.stop()
    assert failures(report) == {}
    assert rc == 0
    assert list(statuses(report)) == INITIATOR_SUITE and len(INITIATOR_SUITE) >= 7
    assert {s["suite"] for s in report["scenarios"]} == {"session initiator"}
    assert report["suites"] == {"session initiator": {"total": len(INITIATOR_SUITE), "passed": len(INITIATOR_SUITE),
                                                      "failed": 0, "errors": 0}}
    assert wall < 60


def test_initiator_that_ignores_resend_requests_is_caught(tmp_path):
    port = free_port()
    faulty = FaultyInitiator(port, {"ignore-resend-request"})
    # Started once the certifier listens: a Logon sent into the proxy while nothing listens
    # behind it would be lost but counted, and the first scenario would see MsgSeqNum 2.
    starter = threading.Timer(0.5, faulty.start)
    starter.start()
    try:
        rc, report, _ = run_certify(tmp_path, *listen_args(port, "-k", "i1_", "-k", "i3_"))
    finally:
        starter.join()
        faulty.stop()
    assert rc == 1
    assert statuses(report) == {"i1_LogonAnsweredLogoutFromAcceptor": "pass", "i3_ResendRequestFromAcceptor": "fail"}
    assert failures(report)["i3_ResendRequestFromAcceptor"] == ("timed out after 3s waiting for SequenceReset "
                                                                "35=4 34=1 36=2")


def test_acceptor_scripts_and_initiator_scripts_do_not_mix(tmp_path, capsys):
    port = free_port()
    rc, report, _ = run_certify(tmp_path, *listen_args(port, "--scripts", str(builtin_suite()), "-k", "1e_",
                                                       "--accept-timeout", "1"))
    assert rc == 1
    assert "this script is for certifying an acceptor" in failures(report)["1e_NotLogonMessage"]
    rc, report, _ = run_certify(tmp_path, "--port", "1", "--target", "X", "--no-reset-check",
                                "--scripts", str(builtin_suite("initiator")), "-k", "i1_")
    # port 1 is unreachable: a usage-level exit before any scenario
    assert rc == 2


@pytest.mark.parametrize("value", ["nohostport", "127.0.0.1:x"])
def test_listen_usage_errors(value, capsys):
    from gateway.apps.certify import cli
    assert cli.main(["--listen", value, "--target", "X"]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err
    assert cli.main(["--listen", "127.0.0.1:0"]) == 2
    assert "--listen needs --target" in capsys.readouterr().err


def test_gateway_venue_initiator_passes_the_initiator_suite(stack, tmp_path):
    """The gateway's own venue session, certified as a venue would: its venue is us. Set up
    as for any certification: reset after Logout, and no latency probes or market data
    requests on that session (they are application traffic the scripts do not expect)."""
    port = free_port()
    stack.venue_ports["ALPHA"] = port  # the gateway's venue ALPHA is us
    options = {"reset_on_logout": True, "probes": False, "market_data": False}
    starter = threading.Timer(0.5, lambda: stack.start_gateway(wait_venues=False, venue_options=options))
    starter.start()
    try:
        rc, report, _ = run_certify(tmp_path, "--listen", f"127.0.0.1:{port}", "--sender", "ALPHA",
                                    "--target", "FIXGW", "--timeout", "3", "--accept-timeout", "15")
    finally:
        starter.join()
    assert failures(report) == {}
    assert rc == 0
    assert list(statuses(report)) == INITIATOR_SUITE