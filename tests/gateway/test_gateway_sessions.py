"""Operators' view of the FIX sessions (GET /sessions, POST /sessions/logout|logon|seqnum), the
OMS acceptor bound to loopback only, and UTC times in the status (socket tests)."""
from __future__ import annotations

import time
from datetime import datetime

import pytest

from gateway.fix.raw import ConnectionClosed
from stack import Oms

SESSION_FIELDS = {"key", "kind", "name", "logged_on", "state", "next_sender_seq", "next_target_seq",
                  "last_logon_at", "last_received_at", "last_sent_at", "last_disconnect_reason"}


def iso_or_none(value) -> bool:
    if value is None:
        return True
    return datetime.fromisoformat(value).utcoffset().total_seconds() == 0


def listening_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on ``port`` (from /proc/net/tcp and tcp6)."""
    out = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            addr, p = cols[1].split(":")
            if int(p, 16) == port and cols[3] == "0A":          # 0A = LISTEN
                out.add(addr)
    return out


@pytest.fixture
def gw(stack):
    stack.start_sim("a", [{"name": "ALPHA", "seed": 1}])
    stack.start_gateway()
    return stack


def session(stack, name: str) -> dict:
    rows = stack.status("/sessions")
    return next(r for r in rows if r["name"] == name)


def test_native_oms_acceptor_listens_on_loopback_only(gw):
    assert listening_addresses(gw.oms_port) == {"0100007F"}      # 127.0.0.1, not 0.0.0.0 / ::


def test_sessions_view_and_operator_commands(gw):
    rows = gw.status("/sessions")
    assert {r["kind"] for r in rows} == {"oms", "venue"}
    assert all(set(r) == SESSION_FIELDS for r in rows)
    assert all(iso_or_none(r[k]) for r in rows for k in ("last_logon_at", "last_received_at", "last_sent_at"))
    alpha = session(gw, "ALPHA")
    assert alpha["logged_on"] and alpha["last_logon_at"] and alpha["kind"] == "venue"

    # a venue logged out by an operator stays down (no redial) until logged on again
    assert gw.post("/sessions/logout", {"session": "ALPHA", "text": "maintenance"})["held"] is True
    gw.wait_status(lambda st: not st["venues"][0]["logged_on"], "ALPHA down")
    time.sleep(2.0)                                              # > reconnect_s: it would be back by now
    assert not session(gw, "ALPHA")["logged_on"] and session(gw, "ALPHA")["state"].startswith("held")
    gw.post("/sessions/logon", {"session": alpha["key"]})
    gw.wait_status(lambda st: st["venues"][0]["logged_on"], "ALPHA back")

    # an OMS session: logged out, its logons refused while held, accepted after logon
    oms = gw.oms()
    assert session(gw, "OMS1")["logged_on"]
    gw.post("/sessions/logout", {"session": "OMS1", "text": "bye"})
    assert oms.recv_type("5", 5) is not None
    oms.close()
    c = Oms(port=gw.oms_port, sender="OMS1", target="FIXGW", timeout=3).connect()
    try:
        answer = c.logon(reset=True)
    except (ConnectionClosed, TimeoutError, OSError):
        answer = None
    assert answer is None or answer.get(35) == b"5"
    c.close()
    gw.post("/sessions/logon", {"session": "OMS1"})
    oms = gw.oms()
    row = session(gw, "OMS1")
    assert row["logged_on"] and row["last_disconnect_reason"]

    # sequence numbers set by an operator
    answer = gw.post("/sessions/seqnum", {"session": "OMS1", "next_out": 50, "next_in": None})
    assert answer["next_sender_seq"] == 50
    oms.order("sq1", price=None)
    first = oms.recv(5)
    assert first is not None and int(first.get(34)) == 50

    code, err = gw.post("/sessions/logon", {"session": "NOPE"}, status=True)
    assert code == 404 and "NOPE" in err["error"]
    code, err = gw.post("/sessions/seqnum", {"session": "OMS1", "next_in": -3}, status=True)
    assert code == 400


def test_status_times_are_utc_iso(gw):
    gw.post("/kill", {"by": "tester", "reason": "drill"})
    st = gw.status()
    assert iso_or_none(st["risk"]["tripped_at"]) and st["risk"]["tripped_at"] is not None
    assert all(iso_or_none(e["at"]) for e in st["events"])


def test_quickfix_engine_warns_that_it_binds_every_interface(stack):
    stack.engine = "quickfix"
    stack.start_sim("a", [{"name": "ALPHA", "seed": 1}])
    stack.start_gateway()
    oms = stack.oms()
    oms.order("q1", price=None)
    assert oms.reports("q1")[-1][39] in ("2", "4", "8")
    log = (stack.tmp / "gateway.log").read_text()
    assert "cannot bind one address" in log and stack.status()["gateway"]["engine"] == "quickfix"
