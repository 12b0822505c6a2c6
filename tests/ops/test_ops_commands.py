"""`fixgw session ...` against a fake admin endpoint (the contract in gateway/apps/ops.py) and
`fixgw order` against a native acceptor standing in for the gateway's OMS side."""
from __future__ import annotations

import asyncio
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.apps import ops
from gateway.common.configfile import load_config
from gateway.fix.engine import BaseApplication, create_engine
from gateway.fix.settings import SessionSettings
from gateway.fix.transport import new_event_loop

TOKEN = "s3cret-token"
ROWS = [
    {"key": "FIX.4.4:FIXGW->OMS1", "kind": "oms", "name": "OMS1", "logged_on": True, "state": "ACTIVE",
     "next_sender_seq": 12, "next_target_seq": 9, "last_logon_at": "2026-12-01T14:00:00.123456Z",
     "last_received_at": "2026-12-01T15:00:01.5Z", "last_sent_at": "2026-12-01T15:00:02Z",
     "last_disconnect_reason": None},
    {"key": "FIX.4.4:FIXGW->ALPHA", "kind": "venue", "name": "ALPHA", "logged_on": False,
     "state": "DISCONNECTED", "next_sender_seq": 40, "next_target_seq": 41, "last_logon_at": None,
     "last_received_at": None, "last_sent_at": None,
     "last_disconnect_reason": "cannot connect (ConnectionRefusedError); retrying every <= 30 s"},
]


class FakeAdmin:
    """The server side of the contract, as the native port answers it (the session's new
    state, no "changed" field; ``say_changed`` adds one), recording what it was asked."""

    def __init__(self, say_changed: bool | None = None) -> None:
        self.posts: list[tuple[str, dict, str]] = []
        self.rows = [dict(r) for r in ROWS]
        self.say_changed = say_changed
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, payload):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/sessions":
                    return self._send(200, outer.rows)
                return self._send(404, {"error": "unknown path"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.posts.append((self.path, body, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._send(401, {"error": "missing or wrong bearer token"})
                row = next((r for r in outer.rows if body.get("session") in (r["key"], r["name"])), None)
                if row is None:
                    return self._send(404, {"error": f"no session {body.get('session')!r}"})
                state = row["state"].removeprefix("held: ")
                if self.path == "/sessions/logout":
                    row.update(state="held: DISCONNECTED", logged_on=False)
                elif self.path == "/sessions/logon":
                    row.update(state=state)
                elif self.path == "/sessions/seqnum":
                    if body.get("next_in"):
                        row["next_target_seq"] = body["next_in"]
                    if body.get("next_out"):
                        row["next_sender_seq"] = body["next_out"]
                answer = {"session": row["key"], "logged_on": row["logged_on"]}
                if outer.say_changed is not None:
                    answer["changed"] = outer.say_changed
                return self._send(200, answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def write_config(tmp_path, admin_port: int = 9180, oms_port: int = 9100):
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    (store / "admin.token").write_text(TOKEN + "\n")
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f"""
store_dir = "{store}"
[oms]
port = {oms_port}
comp_id = "FIXGW"
clients = [{{ comp_id = "OMS1", password = "p1" }}, {{ comp_id = "OPS", password = "ops-pass" }}]
[[venues]]
name = "ALPHA"
port = 9101
[admin]
port = {admin_port}
""")
    return cfg


def run_session(args):
    out, err = io.StringIO(), io.StringIO()
    code = ops.session_main(args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_session_list_prints_one_table(tmp_path):
    with FakeAdmin() as admin:
        cfg = write_config(tmp_path, admin.port)
        code, out, _ = run_session(["--config", str(cfg), "list"])
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].split()[:5] == ["SESSION", "KIND", "STATE", "NEXT", "OUT"]
    assert "OMS1" in lines[1] and "ACTIVE (up)" in lines[1] and "2026-12-01T14:00:00Z" in lines[1]
    assert "ALPHA" in lines[2] and "DISCONNECTED" in lines[2] and "cannot connect" in lines[2]


def test_session_commands_post_the_contract_with_the_token(tmp_path):
    with FakeAdmin() as admin:
        cfg = write_config(tmp_path, admin.port)
        code, out, _ = run_session(["--config", str(cfg), "logout", "OMS1", "--text", "maintenance"])
        assert code == 0 and out.count("\n") == 1 and "held: DISCONNECTED" in out
        code, out, _ = run_session(["--config", str(cfg), "logout", "OMS1"])
        assert code == 1 and "nothing changed" in out               # already out and held
        assert run_session(["--config", str(cfg), "logon", "OMS1"])[0] == 0
        assert run_session(["--config", str(cfg), "logon", "OMS1"])[0] == 1   # not held: nothing to do
        code, out, _ = run_session(["--config", str(cfg), "seqnum", "alpha", "--set-next-in", "100"])
        assert code == 0 and out.count("\n") == 1 and "next in 100" in out
        code, out, _ = run_session(["--config", str(cfg), "seqnum", "ALPHA", "--set-next-in", "100"])
        assert code == 1 and "nothing changed" in out
        assert [(p, b) for p, b, _ in admin.posts][:3] == [
            ("/sessions/logout", {"session": "FIX.4.4:FIXGW->OMS1", "text": "maintenance"}),
            ("/sessions/logout", {"session": "FIX.4.4:FIXGW->OMS1", "text": ""}),
            ("/sessions/logon", {"session": "FIX.4.4:FIXGW->OMS1"})]
        assert admin.posts[4][1] == {"session": "FIX.4.4:FIXGW->ALPHA", "next_in": 100, "next_out": None}
        assert {a for _, _, a in admin.posts} == {f"Bearer {TOKEN}"}
        code, _, err = run_session(["--config", str(cfg), "logout", "NOPE"])
        assert code == 1 and "no session 'NOPE'" in err and "OMS1, ALPHA" in err
    with FakeAdmin(say_changed=False) as admin:              # a server that says so itself
        cfg = write_config(tmp_path, admin.port)
        code, out, _ = run_session(["--config", str(cfg), "seqnum", "ALPHA", "--set-next-out", "7"])
        assert code == 1 and "nothing changed" in out


def test_session_without_config_or_gateway_says_why(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FIXGW_CONFIG", raising=False)
    code, _, err = run_session(["list"])
    assert code == 2 and "looked at" in err and "FIXGW_CONFIG" in err
    cfg = write_config(tmp_path, admin_port=1)           # nothing listens on port 1
    monkeypatch.setenv("FIXGW_CONFIG", str(cfg))
    code, _, err = run_session(["list"])
    assert code == 2 and "cannot reach the gateway admin endpoint at http://127.0.0.1:1" in err
    with pytest.raises(SystemExit):
        run_session(["seqnum", "ALPHA"])                 # neither --set-next-in nor --set-next-out


class FakeGateway(BaseApplication):
    """The gateway's OMS acceptor, reduced: checks the password, acks and fills, or rejects."""

    def __init__(self) -> None:
        self.logon_fields = None

    def check_logon(self, session, logon):
        self.logon_fields = (logon.get(554), logon.get(141))
        return None if logon.get(554) == "ops-pass" else "bad Password(554)"

    def on_message(self, session, msg):
        cid, qty = msg[11], msg.get(38) or "0"
        common = f"37=O1\x0111={cid}\x0155={msg[55]}\x0154={msg[54]}\x01"
        if msg.msg_type == "D" and float(qty) > 1000:
            session.send("8", common + f"17=E0\x01150=8\x0139=8\x01151=0\x0114=0\x016=0\x0158=risk: too big\x01")
            return
        if msg.msg_type == "D":
            session.send("8", common + f"17=E1\x01150=0\x0139=0\x01151={qty}\x0114=0\x016=0\x01")
            session.send("8", common + f"17=E2\x01150=F\x0139=2\x01151=0\x0114={qty}\x016=1.5\x01"
                                       f"32={qty}\x0131=1.5\x0130=ALPHA\x01")
            return
        if msg.msg_type == "F":
            session.send("9", f"37=O1\x0111={cid}\x0141={msg[41]}\x0139=2\x01434=1\x01102=0\x0158=too late\x01")


def run_order(tmp_path, argv):
    async def main():
        app = FakeGateway()
        gw = create_engine("native", "acceptor", [SessionSettings(sender_comp_id="FIXGW", target_comp_id="OPS",
                                                                  role="acceptor")], app, port=0)
        await gw.start()
        try:
            cfg = load_config(write_config(tmp_path, oms_port=gw.port), ops_config())
            out = io.StringIO()
            msg_type, body = ops.order_body(ops_args(argv))
            code = await ops.send_order(cfg, "OPS", msg_type, body, timeout=5, out=out)
            return code, out.getvalue(), app.logon_fields
        finally:
            await gw.stop()
    loop = new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(main(), 15))
    finally:
        loop.close()


def ops_config():
    from gateway.apps.server.config import GatewayConfig
    return GatewayConfig


def ops_args(argv):
    import argparse
    ns = argparse.Namespace(cl_ord_id=None, cancel=None, replace=None, qty=None, price=None, tif="day",
                            venue=None, symbol="EURUSD", side="buy")
    for k, v in argv.items():
        setattr(ns, k, v)
    return ns


def test_order_logs_on_as_ops_and_prints_reports_until_filled(tmp_path):
    code, out, logon = run_order(tmp_path, {"qty": 100.0, "price": 1.5, "cl_ord_id": "T1", "tif": "ioc"})
    assert code == 0 and logon == ("ops-pass", "Y")
    lines = out.splitlines()
    assert lines[0].startswith("logged on to 127.0.0.1:") and "sending order T1" in lines[0]
    assert lines[1].startswith("new") and "ClOrdID=T1" in lines[1]
    assert lines[2].startswith("trade") and "OrdStatus=2" in lines[2] and "LastMkt=ALPHA" in lines[2]
    assert len(lines) == 3


def test_order_rejected_and_cancel_rejected_exit_1(tmp_path):
    code, out, _ = run_order(tmp_path, {"qty": 5000.0, "price": 1.5, "cl_ord_id": "T2"})
    assert code == 1 and "rejected" in out and "risk: too big" in out
    code, out, _ = run_order(tmp_path, {"cancel": "T1", "cl_ord_id": "C1"})
    assert code == 1 and "cancel rejected" in out and "too late" in out


def test_order_body_fields():
    t, body = ops.order_body(ops_args({"qty": 10.0, "price": 1.25, "cl_ord_id": "A", "venue": "BRAVO",
                                       "tif": "fok", "side": "sell"}))
    pairs = dict(p.split("=", 1) for p in body.strip("\x01").split("\x01"))
    assert t == "D" and pairs["11"] == "A" and pairs["54"] == "2" and pairs["40"] == "2" and pairs["44"] == "1.25"
    assert pairs["59"] == "4" and pairs["100"] == "BRAVO" and pairs["38"] == "10"
    t, body = ops.order_body(ops_args({"replace": "A", "qty": 20.0, "price": 1.3, "cl_ord_id": "B"}))
    assert t == "G" and "\x0141=A\x01" in "\x01" + body
    with pytest.raises(ValueError):
        ops.order_body(ops_args({}))
