"""A certifier that cannot fail is worthless: a deliberately faulty acceptor must be caught
on exactly the scenarios its faults break, with a reason that points at the fault."""
from __future__ import annotations

import pytest
from certify_helpers import SUITE_NAMES, failures, run_certify, statuses

from gateway.apps.certify.faulty import FaultyAcceptor
from gateway.common.procs import free_port, wait_for_ports


@pytest.fixture
def faulty():
    started = []

    def start(*faults: str) -> FaultyAcceptor:
        acc = FaultyAcceptor(free_port(), set(faults)).start()
        started.append(acc)
        wait_for_ports([acc.port], 10)
        return acc

    yield start
    for acc in started:
        acc.stop()


def test_settings_and_checksum_faults_fail_exactly_their_scenarios(faulty, tmp_path):
    acc = faulty("accept-bad-checksum", "no-sendingtime-check", "no-compid-check")
    # every scenario but the three slow ones these faults do not concern (heartbeat timing,
    # duplicate logon and unanswered logout take 2-6 s each)
    slow = ("4a_", "1b_", "13a_")
    selected = [n for n in SUITE_NAMES if not n.startswith(slow)]
    args = ["--port", str(acc.port), "--target", "ISLD", "--timeout", "2"]
    for name in selected:
        args += ["-k", name]
    rc, report, wall = run_certify(tmp_path, *args)
    assert rc == 1
    assert len(report["scenarios"]) == len(selected)
    failed = failures(report)
    assert set(failed) == {"3b_InvalidChecksum", "1d_InvalidLogonBadSendingTime", "2o_SendingTimeValueOutOfRange",
                           "2k_CompIDDoesNotMatchProfile"}
    # the reasons say what the counterparty did instead
    # It took the bad-CheckSum message as 2, so the good 2 was "too low": Logout, then it
    # closes. Which of the two the certifier sees first is a race with our next send (both
    # seen in CI): the Logout where the ResendRequest should be, or the closed connection.
    reason = failed["3b_InvalidChecksum"]
    assert (("expected ResendRequest 35=2 34=2 7=3" in reason
             and "received Logout 35=5 34=2 58=MsgSeqNum too low, expecting 3 but received 2" in reason)
            or reason.startswith("the counterparty had closed the connection before this message could be sent")), reason
    assert failed["1d_InvalidLogonBadSendingTime"] == "expected a disconnect, received Logon 35=A 34=1"
    assert "waiting for Reject 35=3 34=2 45=2 58=SendingTime accuracy problem" in failed["2o_SendingTimeValueOutOfRange"]
    assert "expected Reject 35=3 34=2 45=2 58=CompID problem" in failed["2k_CompIDDoesNotMatchProfile"]
    assert sum(1 for s in statuses(report).values() if s == "pass") == len(selected) - 4


def test_acceptor_that_ignores_sequence_gaps_is_caught(faulty, tmp_path):
    acc = faulty("ignore-seq-gaps")
    rc, report, _ = run_certify(tmp_path, "--port", str(acc.port), "--target", "ISLD", "--timeout", "1",
                                "-k", "2a_MsgSeqNumCorrect", "-k", "2b_MsgSeqNumTooHigh", "-k", "10_MsgSeqNumGreater",
                                "-k", "4b_ReceivedTestRequest")
    assert rc == 1
    assert statuses(report) == {"2a_MsgSeqNumCorrect": "pass", "2b_MsgSeqNumTooHigh": "fail",
                                "4b_ReceivedTestRequest": "pass", "10_MsgSeqNumGreater": "fail"}
    assert failures(report)["2b_MsgSeqNumTooHigh"] == "timed out after 1s waiting for ResendRequest 35=2 34=2 7=4 16=0"


def test_acceptor_that_does_not_answer_test_requests_is_caught(faulty, tmp_path):
    acc = faulty("no-test-request-reply")
    rc, report, _ = run_certify(tmp_path, "--port", str(acc.port), "--target", "ISLD", "--timeout", "1",
                                "-k", "4b_ReceivedTestRequest", "-k", "13b_Unsolicited", "-k", "1e_NotLogon")
    assert rc == 1
    assert statuses(report) == {"1e_NotLogonMessage": "pass", "4b_ReceivedTestRequest": "fail",
                                "13b_UnsolicitedLogoutMessage": "pass"}
    assert failures(report)["4b_ReceivedTestRequest"] == ("timed out after 1s waiting for Heartbeat 35=0 34=2 "
                                                          "112=CERT-PING-1")


def test_acceptor_that_keeps_sequence_numbers_fails_the_reset_check(faulty, tmp_path, capsys):
    acc = faulty("no-reset-on-logon")
    rc, report, _ = run_certify(tmp_path, "--port", str(acc.port), "--target", "ISLD", "--timeout", "2")
    assert rc == 1
    assert report["scenarios"] == []
    assert report["preflight"]["status"] == "fail"
    assert "MsgSeqNum too low, expecting 3 but received 1" in report["preflight"]["reason"]
    assert "must reset sequence numbers on logon for CERT" in report["preflight"]["reason"]
    assert "must reset sequence numbers on logon" in capsys.readouterr().out
