"""Sans-IO parts of the certifier: script parsing, rendering, framing, comparison."""
from __future__ import annotations

import pytest

from gateway.apps.certify.compare import LOOSE, STRICT, compare, integrity_problem
from gateway.apps.certify.faulty import drop_outbound, repair_checksums
from gateway.apps.certify.script import (ANY, SOH, Context, ScriptError, builtin_suite, discover, fixify,
                                    parse_file, parse_text, show, substitute)
from gateway.apps.certify.wire import Framer, FramingError

CTX = Context("CERT", "ISLD", 30)


def wire(text: str) -> bytes:
    return fixify(text.replace("|", SOH))


# ---------------------------------------------------------------- parsing

def test_parses_steps_connections_and_description():
    script = parse_text("# first comment\n# second\n\ni1,CONNECT\nI1,8=FIX.4.4|35=0|\nE8=FIX.4.4|35=0|\n"
                        "i2,CONNECT\ne2,DISCONNECT\niDISCONNECT\n", "x.def")
    kinds = [(s.kind, s.conn, s.line) for s in script.steps]
    assert kinds == [("connect", 1, 4), ("send", 1, 5), ("expect", 1, 6), ("connect", 2, 7),
                     ("expect_disconnect", 2, 8), ("disconnect", 1, 9)]
    assert script.description == "first comment second"
    assert script.steps[1].text == f"8=FIX.4.4{SOH}35=0{SOH}"  # '|' accepted, trailing SOH added


def test_soh_lines_are_kept_verbatim():
    script = parse_text(f"iCONNECT\nI8=FIX.4.4{SOH}35=0{SOH}58=a|b{SOH}\n")
    assert script.steps[1].text == f"8=FIX.4.4{SOH}35=0{SOH}58=a|b{SOH}"


@pytest.mark.parametrize("text, line, words", [
    ("iCONNECT\nX8=FIX.4.4|\n", 2, "starts with I, E, i or e"),
    ("iCONNECT\niFOO\n", 2, "expected CONNECT or DISCONNECT"),
    ("eCONNECT\ni2,CONNECT\n", 1, "not both"),
    ("iCONNECT\nI8=FIX.4.4|37=<CAPTURE:oid>|\n", 2, "only allowed in E"),
    ("iCONNECT\nE8=FIX.4.4|37=<CAPTURE>|\n", 2, "take a name"),
    ("iCONNECT\nE8=FIX.4.4|37=<ANY:x>|\n", 2, "take a name"),
    ("#@compare fuzzy\niCONNECT\n", 1, "expected one of strict, loose, subset"),
    ("iCONNECT\nI8=FIX.4.4|52=<NOW>|\n", 2, "unknown placeholder <NOW>"),
    ("iCONNECT\nE35=0|\n", 2, "starts with 8="),
    ("iCONNECT\nE8=FIX.4.4|garbled|\n", 2, "not tag=value"),
    ("I8=FIX.4.4|35=0|\n", 1, "before iCONNECT"),
    ("iCONNECT\nI2,8=FIX.4.4|35=0|\n", 2, "connection 2 used before i2,CONNECT"),
    ("iCONNECT\nI8=FIX.4.4|58=<ANY>|\n", 2, "only allowed in E"),
    ("iCONNECT\nI8=FIX.4.4|58=<LEN>|\n", 2, "only allowed as the BodyLength"),
    ("# nothing\n", 1, "no iCONNECT or eCONNECT"),
])
def test_syntax_errors_name_the_line(text, line, words):
    with pytest.raises(ScriptError) as err:
        parse_text(text, "bad.def")
    assert err.value.line == line
    assert words in str(err.value)
    assert str(err.value).startswith(f"bad.def:{line}: ")


def test_bundled_suite_parses_and_covers_the_catalogue():
    paths = discover([builtin_suite()])
    names = {p.stem for p in paths}
    assert len(paths) >= 50
    for p in paths:
        parse_file(p)  # no syntax error in our own suite
    for must in ("1b_DuplicateIdentity", "2b_MsgSeqNumTooHigh", "2c_MsgSeqNumTooLow", "3b_InvalidChecksum",
                 "4a_HeartbeatAndTestRequestOnSilence", "4b_ReceivedTestRequest", "8_OnlyApplicationMessages",
                 "20_SimultaneousResendRequest", "11c_NewSeqNoLess", "14i_RepeatingGroupCountNotEqual",
                 "21_RepeatingGroupSpecifierWithValueOfZero", "13b_UnsolicitedLogoutMessage"):
        assert must in names
    assert [p.stem for p in paths][:2] == ["1a_ValidLogonMsgSeqNumTooHigh", "1a_ValidLogonWithCorrectMsgSeqNum"]
    assert [p.stem for p in paths].index("2a_MsgSeqNumCorrect") < [p.stem for p in paths].index("10_MsgSeqNumEqual")


# ---------------------------------------------------------------- rendering

def test_fixify_computes_body_length_and_checksum():
    data = wire("8=FIX.4.4|35=0|34=2|49=A|56=B|")
    assert data.startswith(b"8=FIX.4.4\x019=20\x0135=0\x01")
    body_end = data.rindex(b"10=")
    assert data[body_end:] == b"10=%03d\x01" % (sum(data[:body_end]) % 256)
    assert integrity_problem(data) is None


def test_fixify_keeps_explicit_length_and_checksum_and_resolves_len_offsets():
    assert b"\x019=5\x01" in wire("8=FIX.4.4|9=5|35=0|34=2|")
    assert wire("8=FIX.4.4|35=0|10=256|").endswith(b"\x0110=256\x01")
    true = wire("8=FIX.4.4|35=0|34=2|")
    short = wire("8=FIX.4.4|9=<LEN-3>|35=0|34=2|")
    assert int(true.split(b"\x01")[1][2:]) - 3 == int(short.split(b"\x01")[1][2:])
    assert wire("35=0|8=FIX.4.4|") == b"35=0\x018=FIX.4.4\x01"  # not starting with 8=: as written


def test_substitute_placeholders_and_compid_map():
    text = substitute("49=<SENDER>|56=<TARGET>|108=<HEARTBEAT>|52=<TIME-121>|58=<ANY>|".replace("|", SOH), CTX)
    fields = dict(f.split("=", 1) for f in text.split(SOH) if f)
    assert (fields["49"], fields["56"], fields["108"], fields["58"]) == ("CERT", "ISLD", "30", ANY)
    assert len(fields["52"]) == 21


def test_one_clock_reading_per_message(monkeypatch):
    import gateway.apps.certify.script as script
    seen = []
    monkeypatch.setattr(script, "utc_time", lambda off=0, now=None, whole=False: seen.append(now) or "T")
    substitute(f"52=<TIME>{SOH}122=<TIME>{SOH}60=<TIME+1>{SOH}", CTX)
    assert len(seen) == 3 and seen[0] is not None and seen.count(seen[0]) == 3
    mapped = substitute(f"49=TW{SOH}56=ISLD{SOH}58=TW{SOH}", Context("CERT", "ALPHA", 30, {"TW": "CERT", "ISLD": "ALPHA"}))
    assert mapped == f"49=CERT{SOH}56=ALPHA{SOH}58=TW{SOH}"


# ---------------------------------------------------------------- framing

def test_framer_cuts_messages_across_reads_and_rejects_garbage():
    a, b = wire("8=FIX.4.4|35=0|34=2|"), wire("8=FIX.4.4|35=1|34=3|112=X|")
    f = Framer()
    stream = a + b
    for i in range(0, len(stream), 7):
        f.feed(stream[i:i + 7])
    assert [f.next_message(), f.next_message(), f.next_message()] == [a, b, None]
    f.feed(b"garbage")
    with pytest.raises(FramingError):
        f.next_message()


# ---------------------------------------------------------------- comparison

EXPECTED = "8=FIX.4.4|35=0|34=2|49=ISLD|52=<TIME>|56=CERT|112=HELLO|"


def expected_bytes(text: str = EXPECTED) -> bytes:
    return fixify(substitute(text.replace("|", SOH), CTX))


def test_strict_match_ignores_time_values_and_checksum_but_checks_body_length():
    got = wire("8=FIX.4.4|35=0|34=2|49=ISLD|52=20260101-00:00:00.123456|56=CERT|112=HELLO|")
    assert compare(expected_bytes(), got, STRICT) is None  # microseconds: BodyLength follows the value


@pytest.mark.parametrize("got, words", [
    ("8=FIX.4.4|35=0|34=3|49=ISLD|52=20260101-00:00:00.123|56=CERT|112=HELLO|", "field 34 should be '2' but was '3'"),
    ("8=FIX.4.4|35=0|49=ISLD|34=2|52=20260101-00:00:00.123|56=CERT|112=HELLO|", "expected tag 34 but found tag 49"),
    ("8=FIX.4.4|35=0|34=2|49=ISLD|52=yesterday|56=CERT|112=HELLO|", "not a UTCTimestamp"),
    ("8=FIX.4.4|35=0|34=2|49=ISLD|52=20260101-00:00:00.123|56=CERT|", "expected 9 fields, received 8 (missing 112)"),
])
def test_strict_mismatches_say_why(got, words):
    reason = compare(expected_bytes(), wire(got), STRICT)
    assert reason is not None and words in reason


def test_counterparty_bad_checksum_or_body_length_is_caught_in_both_modes():
    good = wire("8=FIX.4.4|35=0|34=2|49=ISLD|52=20260101-00:00:00.123|56=CERT|112=HELLO|")
    bad_sum = good[:-4] + b"%03d\x01" % ((int(good[-4:-1]) + 1) % 256)
    for mode in (STRICT, LOOSE):
        assert "CheckSum" in compare(expected_bytes(), bad_sum, mode)
    bad_len = wire("8=FIX.4.4|9=99|35=0|34=2|49=ISLD|52=20260101-00:00:00.123|56=CERT|112=HELLO|")
    assert "BodyLength 99" in compare(expected_bytes(), bad_len, LOOSE)


def test_explicit_body_length_in_script_is_compared_as_written():
    got = wire("8=FIX.4.4|35=0|34=2|49=ISLD|52=20260101-00:00:00.123|56=CERT|112=HELLO|")
    exp = fixify(substitute("8=FIX.4.4|9=57|35=0|34=2|49=ISLD|52=<TIME>|56=CERT|112=HELLO|".replace("|", SOH), CTX))
    assert "field 9 should be '57'" in compare(exp, got, STRICT, explicit_length=True)


def test_loose_ignores_order_and_compares_text_by_prefix():
    exp = expected_bytes("8=FIX.4.4|35=5|34=2|49=ISLD|52=<TIME>|56=CERT|58=MsgSeqNum too low|")
    got = wire("8=FIX.4.4|35=5|49=ISLD|34=2|56=CERT|52=20260101-00:00:00.123|58=MsgSeqNum too low, expecting 5|")
    assert compare(exp, got, LOOSE) is None
    assert compare(exp, got, STRICT) is not None
    extra = wire("8=FIX.4.4|35=5|49=ISLD|34=2|56=CERT|52=20260101-00:00:00.123|58=MsgSeqNum too low|999=X|")
    assert "unexpected field(s) 999" in compare(exp, extra, LOOSE)


def test_any_placeholder_accepts_any_non_empty_value():
    exp = expected_bytes("8=FIX.4.4|35=j|34=2|49=ISLD|52=<TIME>|56=CERT|45=2|58=<ANY>|372=R|380=3|")
    got = wire("8=FIX.4.4|35=j|34=2|49=ISLD|52=20260101-00:00:00.123|56=CERT|45=2|58=Not supported here|372=R|380=3|")
    assert compare(exp, got, STRICT) is None
    assert "<ANY>" in show(exp)


# ---------------------------------------------------------------- faulty acceptor helpers

def test_fault_helpers_repair_checksums_and_drop_messages():
    bad = wire("8=FIX.4.4|35=0|34=2|10=256|")
    garbled = b"35=0\x018=FIX.4.4\x01"
    assert integrity_problem(repair_checksums(bad)) is None
    assert repair_checksums(garbled + bad) == garbled + repair_checksums(bad)
    hb = wire("8=FIX.4.4|35=0|34=2|112=X|")
    assert drop_outbound(hb, {"no-test-request-reply"}) and not drop_outbound(hb, {"ignore-seq-gaps"})
    assert drop_outbound(wire("8=FIX.4.4|35=2|34=2|7=1|16=0|"), {"ignore-seq-gaps"})


def test_an_internal_error_is_one_scenario_error_not_the_end_of_the_run(monkeypatch, tmp_path):
    import socket

    from gateway.apps.certify.runner import ScenarioRunner, Target
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    with listener:
        port = listener.getsockname()[1]
        runner = ScenarioRunner(Target("127.0.0.1", port, "CERT", "ISLD"))
        monkeypatch.setattr(runner, "_send", lambda step, conn: (_ for _ in ()).throw(RuntimeError("boom")))
        script = tmp_path / "s.def"
        script.write_text("iCONNECT\nI8=FIX.4.4|35=0|\n")
        outcome = runner.run_path(script)
    assert (outcome.status, outcome.reason, outcome.step) == ("error", "internal error: RuntimeError: boom",
                                                              f"{script}:2")


def test_counterparties_from_our_configs_and_reset_warnings(tmp_path):
    from gateway.apps.certify.counterparty import from_gateway_config, from_sim_config
    from gateway.common.paths import REPO_ROOT
    import tomllib
    sim_cfg = tomllib.loads((REPO_ROOT / "configs" / "sim.toml").read_text())
    bravo = next(v for v in sim_cfg["venues"] if v["name"] == "BRAVO")
    target, warnings = from_sim_config(REPO_ROOT / "configs" / "sim.toml", "bravo")  # name case-insensitive
    assert (target.host, target.port, target.sender, target.target, warnings) == (
        "127.0.0.1", bravo["port"], "CERT", bravo.get("sender_comp_id", "BRAVO"), [])
    gw_cfg = tomllib.loads((REPO_ROOT / "configs" / "gateway.toml").read_text())
    target, warnings = from_gateway_config(REPO_ROOT / "configs" / "gateway.toml")
    assert (target.port, target.sender, target.target, warnings) == (gw_cfg["oms"]["port"], "CERT",
                                                                     gw_cfg["oms"]["comp_id"], [])
    gw = tmp_path / "gw.toml"
    gw.write_text('[oms]\nport = 9100\ncomp_id = "FIXGW"\nclients = [{ comp_id = "CERT" }]\n')
    assert "reset_on_logon = false" in from_gateway_config(gw)[1][0]
    sim = tmp_path / "sim.toml"
    sim.write_text('[[venues]]\nname = "ALPHA"\nport = 1\ncounterparties = [{ comp_id = "FIXGW" }]\n')
    assert "no entry for CERT" in from_sim_config(sim, "ALPHA")[1][0]


# ---------------------------------------------------------------- QuickFIX time rendering, variables, suites

def test_time_is_rendered_in_whole_seconds_as_quickfix_runner_when_a_script_fixes_body_length():
    import datetime as dt

    from gateway.apps.certify.script import utc_time
    now = dt.datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=dt.timezone.utc)
    # QuickFIX's Reflector.rb timify!: Time.now.gmtime (+/- N s).strftime("%Y%m%d-%H:%M:%S")
    assert utc_time(0, now, whole_seconds=True) == "20260304-05:06:07"
    assert utc_time(-121, now, whole_seconds=True) == "20260304-05:04:06"
    assert utc_time(0, now) == "20260304-05:06:07.891"  # our own scripts keep milliseconds
    assert substitute(f"52=<TIME+3>{SOH}", CTX, now=now, whole_seconds=True) == f"52=20260304-05:06:10{SOH}"
    fixed = parse_text(f"iCONNECT\nE8=FIX.4.4{SOH}9=51{SOH}35=5{SOH}\n")
    computed = parse_text("iCONNECT\nE8=FIX.4.4|9=<LEN>|35=5|\nI8=FIX.4.4|35=5|\n")
    assert fixed.fixes_body_length and not computed.fixes_body_length
    assert not any(parse_file(p).fixes_body_length for p in discover([builtin_suite()]))


def test_capture_and_var_placeholders():
    from gateway.apps.certify.compare import SUBSET, captures
    from gateway.apps.certify.script import UnknownVariable
    exp = expected_bytes("8=FIX.4.4|35=8|37=<CAPTURE:oid>|17=<ANY>|150=0|")
    got = wire("8=FIX.4.4|35=8|34=2|37=V-17|17=E-1|150=0|60=20260101-00:00:00.000|")
    assert compare(exp, got, SUBSET) is None
    assert "unexpected field(s) 34,60" in compare(exp, got, LOOSE)
    assert captures(exp, got) == {"oid": "V-17"}
    assert "37=<CAPTURE:oid>" in show(exp)
    text = substitute(f"37=<VAR:oid>{SOH}34=<VAR:n+2>{SOH}11=A-<RUNID>{SOH}", CTX, variables={"oid": "V-17", "n": "4"})
    assert text == f"37=V-17{SOH}34=6{SOH}11=A-{CTX.run_id}{SOH}"
    assert CTX.run_id.isalnum() and len(CTX.run_id) == 8
    with pytest.raises(UnknownVariable):
        substitute(f"37=<VAR:nope>{SOH}", CTX)
    wrong = wire("8=FIX.4.4|35=8|37=OTHER|150=4|")
    assert "field 37 should be 'V-17' but was 'OTHER'" in compare(
        fixify(substitute(f"8=FIX.4.4{SOH}35=8{SOH}37=<VAR:oid>{SOH}150=4{SOH}", CTX, variables={"oid": "V-17"})),
        wrong, SUBSET)


def test_bundled_suites_name_their_suite_and_mode():
    from gateway.apps.certify.script import SUITE_ACCEPTOR, SUITE_APP, SUITE_INITIATOR
    for kind, suite, listens in (("acceptor", SUITE_ACCEPTOR, False), ("initiator", SUITE_INITIATOR, True),
                                 ("app", SUITE_APP, False)):
        scripts = [parse_file(p) for p in discover([builtin_suite(kind)])]
        assert scripts and {(s.suite, s.listens) for s in scripts} == {(suite, listens)}
    assert {parse_file(p).compare_mode for p in discover([builtin_suite("app")])} == {"subset"}
    names = {p.stem for p in discover([builtin_suite()])}
    assert {"14j_UserDefinedTagInAdminMessage", "2u_PossResend", "2w_ResendApplicationMessagesWithPossDup"} <= names


def test_reports_name_the_suite_of_each_case():
    from gateway.apps.certify.report import Run, summary_table, to_json, to_junit
    from gateway.apps.certify.runner import Outcome, Target
    run = Run(Target("127.0.0.1", 1, "CERT", "ISLD"), "strict")
    run.outcomes = [Outcome("1a", "1a.def", "pass", suite="session acceptor"),
                    Outcome("a3", "a3.def", "fail", reason="timed out", suite="application")]
    table = summary_table(run).splitlines()
    assert table[0].split() == ["suite", "scenario", "result", "time", "reason"]
    assert table[2].startswith("session acceptor  1a") and table[3].startswith("application       a3")
    report = to_json(run)
    assert [s["suite"] for s in report["scenarios"]] == ["session acceptor", "application"]
    assert report["suites"]["application"] == {"total": 1, "passed": 0, "failed": 1, "errors": 0}
    suites = to_junit(run)
    assert [(s.get("tests"), s.get("failures")) for s in suites] == [("1", "0"), ("1", "1")]
    assert suites[1].get("name").startswith("fixgw certify application:")
    assert suites[1].find("testcase").get("classname").startswith("certify.application.")


def test_logon_fields_added_to_logons_only():
    from gateway.apps.certify.script import with_logon_fields
    logon = "8=FIX.4.4\x0135=A\x0134=1\x0149=CERT\x0156=FIXGW\x0198=0\x01108=30\x01"
    out = with_logon_fields(logon, ((554, "pw\x80"),))
    assert out.endswith("108=30\x01554=pw\x80\x01")
    assert with_logon_fields(logon + "554=mine\x01", ((554, "pw"),)).count("554=") == 1   # script's own wins
    fixed = "8=FIX.4.4\x019=60\x0135=A\x0134=1\x01"
    assert with_logon_fields(fixed, ((554, "pw"),)) == fixed            # a fixed BodyLength is sent as written
    heartbeat = "8=FIX.4.4\x0135=0\x0134=2\x01"
    assert with_logon_fields(heartbeat, ((554, "pw"),)) == heartbeat
    with_trailer = logon + "10=000\x01"
    assert with_logon_fields(with_trailer, ((554, "pw"),)).endswith("554=pw\x0110=000\x01")


def test_gateway_counterparty_reads_the_clients_password(tmp_path):
    from gateway.apps.certify.counterparty import from_gateway_config
    cfg = tmp_path / "gw.toml"
    cfg.write_text('[oms]\nport = 9100\nclients = [{ comp_id = "CERT", password = "s3", reset_on_logon = true }]\n')
    target, warnings = from_gateway_config(cfg)
    assert target.logon_fields == ((554, "s3"),) and warnings == []
