"""Operator commands against a real gateway process (simulator + gateway over loopback):
`fixgw session seqnum` changes the next expected number of a live OMS session, `fixgw
session list|logout|logon`, `fixgw order` through the built-in OMS session, and
GET /metrics shows the order counter move."""
from __future__ import annotations

import io
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stack import Stack  # noqa: E402

from gateway.apps import ops  # noqa: E402

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path)
    try:
        s.start_sim("a", [{"name": "ALPHA", "seed": 1}])
        s.start_gateway(clients=[{"comp_id": "OMS1"}, {"comp_id": "OPS", "password": "ops-pw"}])
        yield s
    finally:
        s.stop()


def _session(stack, *args):
    out, err = io.StringIO(), io.StringIO()
    code = ops.session_main(["--config", str(stack.tmp / "gateway.toml"), *args], out=out, err=err)
    return code, out.getvalue() + err.getvalue()


def _row(stack, name):
    return next(r for r in stack.status("/sessions") if name in (r["name"], r["key"]))


def _metric(stack, name: str, **labels) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{stack.admin_port}/metrics", timeout=5).read().decode()
    from prometheus_client.parser import text_string_to_metric_families
    total = 0.0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def test_seqnum_changes_the_next_expected_number_of_a_live_session(stack):
    oms = stack.oms("OMS1")
    code, out = _session(stack, "list")
    assert code == 0 and "OMS1" in out and "ALPHA" in out
    before = _row(stack, "OMS1")["next_target_seq"]
    code, out = _session(stack, "seqnum", "OMS1", "--set-next-in", str(before + 10))
    assert code == 0, out
    assert _row(stack, "OMS1")["next_target_seq"] == before + 10
    # the client jumps its numbers too: its next message is in sequence, not a gap
    oms.next_seq = before + 10
    oms.order("S1", tif="3", price="1.0")
    reports = oms.reports("S1")
    assert reports and reports[-1][39] in ("4", "8", "C", "2")
    assert _row(stack, "OMS1")["next_target_seq"] == before + 11
    code, out = _session(stack, "seqnum", "OMS1", "--set-next-in", str(before + 11))
    assert code == 1 and "nothing changed" in out


def test_logout_logon_of_a_venue(stack):
    code, out = _session(stack, "logout", "ALPHA", "--text", "maintenance")
    assert code == 0, out
    stack.wait_status(lambda st: not st["venues"][0]["logged_on"], "ALPHA down")
    time.sleep(0.5)
    assert not _row(stack, "ALPHA")["logged_on"]          # held down: not redialled
    code, out = _session(stack, "logon", "ALPHA")
    assert code == 0, out
    stack.wait_status(lambda st: st["venues"][0]["logged_on"], "ALPHA up again")


def test_order_command_and_metrics(stack):
    filled_before = _metric(stack, "fixgw_orders_total")
    out = io.StringIO()
    code = ops.order_main(["--config", str(stack.tmp / "gateway.toml"), "--symbol", "AAPL", "--side", "buy",
                           "--qty", "10", "--price", "1.00", "--tif", "ioc", "--cl-ord-id", "OPS1"], out=out)
    text = out.getvalue()
    assert code == 0, text
    assert "logged on to" in text and "ClOrdID=OPS1" in text
    deadline = time.monotonic() + 5
    while _metric(stack, "fixgw_orders_total") <= filled_before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _metric(stack, "fixgw_orders_total") == filled_before + 1
    assert _metric(stack, "fixgw_session_up", session="ALPHA") == 1


def test_venue_schedule_end_expires_day_orders_and_status_explains(tmp_path):
    """A venue whose schedule ends 3 s from now: the gateway logs out of it and expires the
    resting Day order to the OMS with ExecType C; status says why the venue is down."""
    from datetime import datetime, timedelta, timezone

    from gateway.common import procs
    s = Stack(tmp_path)
    try:
        s.start_sim("a", [{"name": "ALPHA", "seed": 1}])
        now = datetime.now(timezone.utc)
        sched = {"start_time": (now - timedelta(hours=1)).strftime("%H:%M:%S"),
                 "end_time": (now + timedelta(seconds=5)).strftime("%H:%M:%S"), "time_zone": "UTC"}
        s.gw_cfg = {"store_dir": str(tmp_path / "gw-store"),
                    "oms": {"port": procs.free_port(), "clients": [{"comp_id": "OMS1"}]},
                    "venues": [{"name": "ALPHA", "port": s.venue_ports["ALPHA"], "schedule": sched}],
                    "admin": {"port": procs.free_port()},
                    "routing": {"policy": "dma", "default_venue": "ALPHA", "md_symbols": ["AAPL"]}}
        s.start_gateway()
        oms = s.oms("OMS1")
        oms.order("D1", tif="0", price="1.00")              # a Day order far from the market: rests
        reports = oms.reports("D1", timeout=12)
        assert [r[150] for r in reports] == ["0", "C"], reports
        expired = reports[-1]
        assert expired[39] == "C" and "ALPHA session ended" in expired[58]
        st = s.wait_status(lambda st: not st["venues"][0]["logged_on"] and st["venues"][0]["link"][
            "link_state"].startswith("outside the session schedule"), "ALPHA out of its schedule")
        link = st["venues"][0]["link"]
        assert link["last_disconnect"] == "end of session"
        assert link["last_logon_at"] and link["in_schedule"] is False
        from gateway.apps.server.admin import format_status
        assert "down: outside the session schedule" in format_status(st)
        assert (tmp_path / "gw-store").parent.joinpath("log").is_dir()     # FIX logs on by default
    finally:
        s.stop()


def test_the_collector_runs_on_the_gateway_loop_and_status_shows_it(stack):
    """`fixgw run` starts the [collector] policy on its loop (app.serve): after some flow, a
    pause brings a sweep (collect the young objects, freeze the survivors), and /status says so."""
    code = ops.order_main(["--config", str(stack.tmp / "gateway.toml"), "--symbol", "AAPL", "--side", "buy",
                           "--qty", "10", "--price", "1.00", "--tif", "ioc", "--cl-ord-id", "GC1"], out=io.StringIO())
    assert code == 0
    st = stack.wait_status(lambda s: ((s["gateway"]["collector"] or {}).get("sweep") or {}).get("count", 0) >= 1,
                           "a sweep by the loop's collector")
    col = st["gateway"]["collector"]
    assert col["mode"] == "loop" and col["deep"]["count"] == 0
    assert col["sweep"]["longest_ms"] > 0 and col["sweep"]["total_ms"] >= col["sweep"]["longest_ms"]
