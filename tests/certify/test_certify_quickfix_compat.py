"""QuickFIX-format scripts with a fixed BodyLength get QuickFIX's verdicts: <TIME> is
rendered as QuickFIX's Ruby runner renders it (whole seconds), so an acceptor that echoes
our TransactTime sends exactly the BodyLength the script's author computed."""
from __future__ import annotations

import pytest
from certify_helpers import failures, run_certify

from gateway.apps.certify.acceptor import ReferenceAcceptor
from gateway.common.procs import free_port, wait_for_ports

# QuickFIX's server/fix44/19b_PossResendMessageThatHasNotBeenSent.def as its suite writes it:
# SOH separators, TW44/ISLD, explicit BodyLengths computed with <TIME> in whole seconds
# (60=...-00:00:00, 17 characters) and the acceptor's SendingTime in milliseconds.
QUICKFIX_19B = (
    "# @testcase 19.b - Test PossResend handling\n\n"
    "iCONNECT\n"
    "I8=FIX.4.4\x0135=A\x0134=1\x0149=TW44\x0152=<TIME>\x0156=ISLD\x0198=0\x01108=2\x01\n"
    "E8=FIX.4.4\x019=62\x0135=A\x0134=1\x0149=ISLD\x0152=00000000-00:00:00.000\x0156=TW44\x0198=0\x01108=2\x0110=0\x01\n"
    "I8=FIX.4.4\x0135=D\x0134=2\x0149=TW44\x0152=<TIME>\x0156=ISLD\x0197=Y\x0111=id\x0121=3\x0140=1\x0154=1\x01"
    "55=MSFT\x0160=<TIME>\x01\n"
    "E8=FIX.4.4\x019=106\x0135=D\x0134=2\x0149=ISLD\x0152=00000000-00:00:00.000\x0156=TW44\x0197=Y\x0111=id\x01"
    "21=3\x0140=1\x0154=1\x0155=MSFT\x0160=00000000-00:00:00\x0110=0\x01\n"
    "I8=FIX.4.4\x0135=5\x0134=3\x0149=TW44\x0152=<TIME>\x0156=ISLD\x01\n"
    "E8=FIX.4.4\x019=51\x0135=5\x0134=3\x0149=ISLD\x0152=00000000-00:00:00.000\x0156=TW44\x0110=0\x01\n"
    "eDISCONNECT\n")


@pytest.fixture
def echo_acceptor(tmp_path):
    """QuickFIX's acceptance-test acceptor: application messages echoed back."""
    acc = ReferenceAcceptor(free_port(), "ISLD", ("CERT",), store_dir=tmp_path / "echo-store", echo=True).start()
    wait_for_ports([acc.port], 10)
    try:
        yield acc
    finally:
        acc.stop()


def run(tmp_path, port: int, text: str):
    script = tmp_path / "19b_PossResendMessageThatHasNotBeenSent.def"
    script.write_bytes(text.encode("latin-1"))
    # TW44 -> CERT keeps every length: the script's BodyLengths stay true
    return run_certify(tmp_path, "--port", str(port), "--target", "ISLD", "--map", "TW44=CERT",
                       "--scripts", str(script), "--timeout", "3", "--no-reset-check")


def test_fixed_body_length_script_passes_against_an_echoing_acceptor_as_in_quickfix(echo_acceptor, tmp_path):
    rc, report, _ = run(tmp_path, echo_acceptor.port, QUICKFIX_19B)
    assert (rc, failures(report)) == (0, {})


def test_a_case_quickfix_fails_fails_here_too(echo_acceptor, tmp_path):
    # QuickFIX's Comparator: "Value in field (11) should be (other) but was (id)"
    wrong = QUICKFIX_19B.replace("\x0111=id\x0121=3\x0140=1\x0154=1\x0155=MSFT\x0160=00000000",
                                 "\x0111=other\x0121=3\x0140=1\x0154=1\x0155=MSFT\x0160=00000000")
    rc, report, _ = run(tmp_path, echo_acceptor.port, wrong)
    assert rc == 1
    assert "field 11 should be 'other' but was 'id'" in failures(report)["19b_PossResendMessageThatHasNotBeenSent"]


def test_millisecond_time_would_have_failed_the_echo(echo_acceptor, tmp_path, monkeypatch):
    """The issue's symptom, kept as a regression guard: with <TIME> in milliseconds the echoed
    TransactTime is 4 bytes longer than the BodyLength the script fixes."""
    from gateway.apps.certify.script import Script
    monkeypatch.setattr(Script, "fixes_body_length", property(lambda self: False))
    rc, report, _ = run(tmp_path, echo_acceptor.port, QUICKFIX_19B)
    assert rc == 1
    assert "field 9 should be '106' but was '110'" in failures(report)["19b_PossResendMessageThatHasNotBeenSent"]
