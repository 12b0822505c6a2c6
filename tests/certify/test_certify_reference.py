"""The whole bundled suite against a plain quickfix acceptor, and the command's bad-input paths."""
from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

from certify_helpers import SUITE, SUITE_NAMES, failures, run_certify, statuses

from gateway.common.procs import fixgw_command, free_port


def test_whole_suite_passes_against_a_plain_quickfix_acceptor(reference_acceptor, tmp_path, capsys):
    junit = tmp_path / "cert.xml"
    rc, report, wall = run_certify(tmp_path, "--port", str(reference_acceptor.port), "--target", "ISLD",
                                   "--junit", str(junit))
    assert failures(report) == {}
    assert rc == 0
    assert list(statuses(report)) == SUITE_NAMES
    assert report["summary"] == {"total": len(SUITE), "passed": len(SUITE), "failed": 0, "errors": 0, "ok": True}
    assert report["preflight"]["status"] == "pass"
    assert report["scenarios"][0]["description"].startswith("Logon: a Logon with MsgSeqNum too high")
    assert wall < 60
    out = capsys.readouterr().out
    assert f"/{len(SUITE)}] {SUITE_NAMES[0]}" in out  # a live line per scenario
    assert f"{len(SUITE)} scenario(s): {len(SUITE)} passed" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == str(len(SUITE)) and suite.get("failures") == "0"


def test_syntax_error_is_reported_with_file_and_line_and_others_still_run(reference_acceptor, tmp_path, capsys):
    good = tmp_path / "a_good.def"
    good.write_text("# fine\niCONNECT\nI8=FIX.4.4|35=A|34=1|49=<SENDER>|52=<TIME>|56=<TARGET>|98=0|108=30|\n"
                    "E8=FIX.4.4|35=A|34=1|49=<TARGET>|52=<TIME>|56=<SENDER>|98=0|108=30|\n"
                    "I8=FIX.4.4|35=5|34=2|49=<SENDER>|52=<TIME>|56=<TARGET>|\n"
                    "E8=FIX.4.4|35=5|34=2|49=<TARGET>|52=<TIME>|56=<SENDER>|\neDISCONNECT\n")
    bad = tmp_path / "b_bad.def"
    bad.write_text("iCONNECT\nI8=FIX.4.4|35=A|34=1|49=<SENDER>|52=<TIME>|56=<TARGET>|98=0|108=30|\n"
                   "X this is not a step\n")
    mismatch = tmp_path / "c_mismatch.def"
    mismatch.write_text("iCONNECT\nI8=FIX.4.4|35=A|34=1|49=<SENDER>|52=<TIME>|56=<TARGET>|98=0|108=30|\n"
                        "E8=FIX.4.4|35=A|34=7|49=<TARGET>|52=<TIME>|56=<SENDER>|98=0|108=30|\n")
    rc, report, _ = run_certify(tmp_path, "--port", str(reference_acceptor.port), "--target", "ISLD",
                                "--scripts", str(tmp_path), "--timeout", "2")
    assert rc == 1
    by_name = {s["name"]: s for s in report["scenarios"]}
    assert by_name["a_good"]["status"] == "pass"
    assert by_name["b_bad"]["status"] == "error"
    assert by_name["b_bad"]["step"] == f"{bad}:3"
    assert "syntax error" in by_name["b_bad"]["reason"]
    failed = by_name["c_mismatch"]
    assert failed["status"] == "fail" and failed["step"] == f"{mismatch}:3"
    assert "field 34 should be '7' but was '1'" in failed["reason"]
    assert failed["expected"].startswith("8=FIX.4.4|9=") and "|34=7|" in failed["expected"]
    assert "|34=1|" in failed["received"]
    out = capsys.readouterr().out
    assert f"at {bad}:3: script error" in out and "expected: 8=FIX.4.4|" in out


def test_timeout_says_what_it_waited_for(reference_acceptor, tmp_path):
    script = tmp_path / "wait.def"
    script.write_text("iCONNECT\nI8=FIX.4.4|35=A|34=1|49=<SENDER>|52=<TIME>|56=<TARGET>|98=0|108=30|\n"
                      "E8=FIX.4.4|35=A|34=1|49=<TARGET>|52=<TIME>|56=<SENDER>|98=0|108=30|\n"
                      "E8=FIX.4.4|35=1|34=2|49=<TARGET>|52=<TIME>|56=<SENDER>|112=NEVER|\n")
    rc, report, _ = run_certify(tmp_path, "--port", str(reference_acceptor.port), "--target", "ISLD",
                                "--scripts", str(script), "--timeout", "0.5")
    assert rc == 1
    assert report["scenarios"][0]["reason"] == "timed out after 0.5s waiting for TestRequest 35=1 34=2 112=NEVER"


def test_unreachable_counterparty_is_exit_2_with_one_line(tmp_path):
    port = free_port()  # nothing listens there
    proc = subprocess.run(fixgw_command("certify", "--port", str(port), "--target", "ISLD"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"fixgw certify: cannot connect to 127.0.0.1:{port}: Connection refused"
    assert "Traceback" not in proc.stdout + proc.stderr


def test_usage_errors_are_exit_2(tmp_path, capsys):
    from gateway.apps.certify import cli
    assert cli.main(["--port", "1"]) == 2
    assert cli.main(["--venue", "ALPHA"]) == 2
    assert cli.main(["--port", "1", "--target", "X", "--scripts", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "--target" in err and "--config" in err and "no such script" in err
    sim = tmp_path / "sim.toml"
    sim.write_text('[[venues]]\nname = "ALPHA"\nport = 9101\n')
    assert cli.main(["--venue", "ZULU", "--config", str(sim)]) == 2
    assert "venues: no venue named 'ZULU' (venues: ALPHA)" in capsys.readouterr().err


QUICKFIX_STYLE = (  # QuickFIX's own 4b case as its test suite writes it: SOH, TW44/ISLD, explicit lengths
    "# If a test request is received, a matching heartbeat should be sent\n\n"
    "iCONNECT\n"
    "I8=FIX.4.4\x0135=A\x0134=1\x0149=TW44\x0152=<TIME>\x0156=ISLD\x0198=0\x01108=30\x01\n"
    "E8=FIX.4.4\x019=63\x0135=A\x0134=1\x0149=ISLD\x0152=00000000-00:00:00.000\x0156=TW44\x0198=0\x01108=30\x0110=0\x01\n"
    "I8=FIX.4.4\x0135=1\x0134=2\x0149=TW44\x0152=<TIME>\x0156=ISLD\x01112=HELLO\x01\n"
    "E8=FIX.4.4\x019=61\x0135=0\x0134=2\x0149=ISLD\x0152=00000000-00:00:00.000\x0156=TW44\x01112=HELLO\x0110=0\x01\n"
    "I8=FIX.4.4\x0135=5\x0134=3\x0149=TW44\x0152=<TIME>\x0156=ISLD\x01\n"
    "E8=FIX.4.4\x019=51\x0135=5\x0134=3\x0149=ISLD\x0152=00000000-00:00:00.000\x0156=TW44\x0110=0\x01\n"
    "eDISCONNECT\n")


def test_quickfix_style_script_runs_with_compid_map(reference_acceptor, tmp_path):
    script = tmp_path / "4b_ReceivedTestRequest.def"
    script.write_bytes(QUICKFIX_STYLE.encode())
    base = ["--port", str(reference_acceptor.port), "--target", "ISLD", "--scripts", str(script), "--timeout", "2"]
    rc, report, _ = run_certify(tmp_path, *base, "--map", "TW44=CERT")
    assert (rc, failures(report)) == (0, {})
    # an explicit BodyLength is compared as written: one byte off fails
    script.write_bytes(QUICKFIX_STYLE.replace("\x019=61\x01", "\x019=62\x01").encode())
    rc, report, _ = run_certify(tmp_path, *base, "--map", "TW44=CERT")
    assert rc == 1 and "field 9 should be '62' but was '61'" in failures(report)["4b_ReceivedTestRequest"]


def test_loose_mode_ignores_order_and_compares_text_by_prefix(reference_acceptor, tmp_path):
    script = tmp_path / "loose.def"
    script.write_text("iCONNECT\nI8=FIX.4.4|35=A|34=1|49=<SENDER>|52=<TIME>|56=<TARGET>|98=0|108=30|\n"
                      "E8=FIX.4.4|35=A|34=1|49=<TARGET>|52=<TIME>|56=<SENDER>|108=30|98=0|\n"
                      "I8=FIX.4.4|35=0|34=2|49=<SENDER>|52=<TIME-121>|56=<TARGET>|\n"
                      "E8=FIX.4.4|35=3|34=2|49=<TARGET>|52=<TIME>|56=<SENDER>|45=2|58=SendingTime|372=0|373=10|\n")
    base = ["--port", str(reference_acceptor.port), "--target", "ISLD", "--scripts", str(script), "--timeout", "2"]
    rc, report, _ = run_certify(tmp_path, *base)
    assert rc == 1 and "expected tag 108 but found tag 98" in failures(report)["loose"]
    rc, report, _ = run_certify(tmp_path, *base, "--loose")
    assert (rc, failures(report)) == (0, {})
