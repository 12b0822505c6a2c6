"""The shared foundation: config errors, settings rendering, the quickfix callback guard, the raw client."""
from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

import pytest
import quickfix as fix
from pydantic import BaseModel, ConfigDict

from gateway.fix import quickfix_backend as fixedge
from gateway.common.clock import FakeClock
from gateway.common.configfile import ConfigError, load_config
from gateway.fix.raw import RawFixSession, accept

ROOT = Path(__file__).resolve().parents[2]


class _Venue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    port: int


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    venues: list[_Venue]


def test_config_error_names_the_field(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[venues]]\nname = "A"\nport = "not-a-port"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, _Cfg)
    assert "venues.0.port" in str(err.value)
    assert "not-a-port" in str(err.value)


def test_config_error_for_unknown_key_and_bad_toml(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('[[venues]]\nname = "A"\nport = 1\nprot = 2\n')
    with pytest.raises(ConfigError, match=r"venues\.0\.prot"):
        load_config(path, _Cfg)
    path.write_text("venues = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, _Cfg)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", _Cfg)


def test_settings_render_booleans_and_skip_none(tmp_path):
    text = fixedge.settings_text({"A": True, "B": None, "C": 3}, [{"D": False}])
    assert text == "[DEFAULT]\nA=Y\nC=3\n[SESSION]\nD=N\n"
    defaults = fixedge.engine_defaults(tmp_path / "store")
    settings = fixedge.build_settings(defaults, [{"ConnectionType": "acceptor", "SenderCompID": "S",
                                                  "TargetCompID": "T", "SocketAcceptPort": 1}])
    assert len(settings.getSessions()) == 1
    assert Path(defaults["DataDictionary"]).is_file()


def test_dictionary_is_loadable_by_quickfix():
    dd = fix.DataDictionary(str(fixedge.dictionary_path()))
    assert dd.getVersion() == "FIX.4.4"


class _Exploding(fixedge.SafeApplication):
    def from_app(self, msg, session_id):
        raise RuntimeError("boom")

    def on_logon(self, session_id):
        raise KeyError("x")


def test_safe_application_swallows_our_errors_and_counts_them():
    app = _Exploding("test")
    msg = fixedge.new_message("D")
    sid = fix.SessionID("FIX.4.4", "A", "B")
    app.fromApp(msg, sid)  # no session exists: the BusinessMessageReject send fails quietly
    app.onLogon(sid)
    assert app.callback_errors == 2


def test_safe_application_lets_fix_exceptions_through():
    class Strict(fixedge.SafeApplication):
        def from_app(self, msg, session_id):
            raise fix.FieldNotFound(55)

    with pytest.raises(fix.FieldNotFound):
        Strict().fromApp(fixedge.new_message("D"), fix.SessionID("FIX.4.4", "A", "B"))


def test_business_reject_references_the_message():
    ref = fixedge.new_message("D")
    ref.getHeader().setField(34, "7")
    out = fixedge.business_reject(ref, "nope", fixedge.BRR_UNSUPPORTED_MSGTYPE, ref_id="C1")
    assert fixedge.get(out, 45) == "7" and fixedge.get(out, 372) == "D"
    assert fixedge.get(out, 380) == "3" and fixedge.get(out, 379) == "C1"


def test_utc_timestamp_format():
    assert re.fullmatch(r"\d{8}-\d\d:\d\d:\d\d\.\d{6}", fixedge.utc_timestamp())
    assert re.fullmatch(r"\d{8}-\d\d:\d\d:\d\d\.\d{3}", fixedge.utc_timestamp(micros=False))


def test_fake_clock_never_goes_back():
    clock = FakeClock(1.0)
    assert clock.advance(0.5) == 1.5
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(1.0)


def test_raw_session_round_trip_over_loopback():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    server_msgs = []
    done = threading.Event()

    def serve():
        with accept(listener, sender="SRV", target="CLI") as srv:
            logon = srv.recv_type("A", timeout=5)
            server_msgs.append(logon)
            srv.send("A", [(98, 0), (108, 30)])
            srv.send("1", [(112, "PING")])
            server_msgs.append(srv.recv_type("0", timeout=5))
            done.wait(5)  # stay connected until the client has finished waiting

    t = threading.Thread(target=serve)
    t.start()
    try:
        with RawFixSession(port=port, sender="CLI", target="SRV", timeout=5).connect() as cli:
            ack = cli.logon()
            assert ack.get(35) == b"A"
            # recv_until answers the TestRequest on the way to a message that never comes
            with pytest.raises(TimeoutError):
                cli.recv_type("8", timeout=0.5)
    finally:
        done.set()
        t.join(10)
        listener.close()
    assert server_msgs[0].get(141) == b"Y"
    assert server_msgs[1].get(112) == b"PING"


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"^(python3 -m venv .*pytest.*)$", readme, re.M)
    assert commands, "README.md must show the test command"
    assert commands[-1] in ci.splitlines()


def test_bench_subcommand_runs_the_scripts_and_refuses_unknown_names(capsys):
    from gateway.apps import bench as benchcli
    assert benchcli.main(["nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
    for name, (script, _) in benchcli.BENCHMARKS.items():
        assert (ROOT / "benchmarks" / script).exists(), name
    assert benchcli.main(["risk", "--help"]) == 0
