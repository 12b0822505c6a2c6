"""The admin endpoint's lockdown (no gateway behind it: AdminActions are plain callables) and the
OMS logon back-off."""
from __future__ import annotations

import http.client
import json
import stat

import pytest

from gateway.apps.server.admin import AdminActions, AdminServer, ensure_token, main as admin_main
from gateway.apps.server.oms import LogonGuard


@pytest.fixture
def admin(tmp_path):
    calls: list = []
    state = {"halted": False}

    def kill(reason, by):
        calls.append(("kill", reason, by))
        changed, state["halted"] = not state["halted"], True
        return changed

    def reset(by, session=None):
        calls.append(("reset", by, session))
        changed, state["halted"] = state["halted"], False
        return changed

    actions = AdminActions(status=lambda: {"ok": True}, orders=lambda n: [], decisions=lambda n: [],
                           kill=kill, reset=reset, risk=lambda: {"state": "HALTED" if state["halted"] else "ACTIVE"})
    token = ensure_token(tmp_path)
    server = AdminServer(actions, "127.0.0.1", 0, token)
    server.start()
    yield server, token, calls, tmp_path
    server.stop()


def call(server, method, path, body=b"", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def good(token, body=b'{"by": "alice"}', **extra):
    return {"Host": "127.0.0.1", "Authorization": f"Bearer {token}", "Content-Type": "application/json",
            "Content-Length": str(len(body)), **extra}


def test_token_file_is_private_and_kept_across_starts(tmp_path):
    token = ensure_token(tmp_path)
    mode = stat.S_IMODE((tmp_path / "admin.token").stat().st_mode)
    assert mode == 0o600 and len(token) >= 32 and ensure_token(tmp_path) == token


def test_kill_needs_the_token_json_and_a_local_host(admin):
    server, token, calls, _ = admin
    body = b'{"by": "alice"}'
    assert call(server, "POST", "/kill", body, {**good(token), "Authorization": ""})[0] == 401
    assert call(server, "POST", "/kill", body, good("wrong" * 8))[0] == 401
    assert call(server, "POST", "/kill", body, good(token, **{"Content-Type": "text/plain"}))[0] == 415
    assert call(server, "POST", "/kill", body, good(token, Host="evil.example:9180"))[0] == 403
    assert call(server, "GET", "/status", b"", {"Host": "evil.example"})[0] == 403
    assert calls == []
    status, answer = call(server, "POST", "/kill", body, good(token, Host="localhost:9180"))
    assert status == 200 and answer["changed"] is True and calls == [("kill", "manual kill", "alice")]


@pytest.mark.parametrize("length", ["-1", "99999999", "abc"])
def test_absurd_content_lengths_are_refused_before_any_read(admin, length):
    server, token, calls, _ = admin
    status, _ = call(server, "POST", "/kill", b"", good(token, **{"Content-Length": length}))
    assert status in (411, 413) and calls == []


def test_status_stays_readable_without_a_token(admin):
    server, *_ = admin
    assert call(server, "GET", "/status", b"", {"Host": "127.0.0.1"}) == (200, {"ok": True})


def test_cli_kill_and_reset_print_one_line_and_fail_when_nothing_changed(admin, capsys):
    server, token, calls, store = admin
    args = ["--admin", f"127.0.0.1:{server.port}", "--token-file", str(store / "admin.token"), "--by", "alice"]
    assert admin_main(args, command="kill") == 0
    assert admin_main(args, command="kill") == 1               # already halted: nothing changed
    assert admin_main(args, command="reset") == 0
    assert admin_main(args, command="reset") == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and "nothing changed" in lines[1] and "nothing changed" in lines[3]


def test_failed_logons_back_off_per_comp_id():
    now = [0.0]
    guard = LogonGuard(lambda: now[0])
    for _ in range(3):
        guard.failed("OMS2")
    assert guard.wait_s("OMS2") > 0 and guard.wait_s("OMS1") == 0
    now[0] += 60
    assert guard.wait_s("OMS2") == 0
    guard.succeeded("OMS2")
    assert guard.failures == {}
