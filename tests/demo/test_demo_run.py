"""End-to-end: `fixgw demo` in short mode (simulator + gateway + client as real processes),
asserting on the report's content, the files and the absence of orphan processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from gateway.common import procs
from gateway.apps.server.config import GatewayConfig
from gateway.common.configfile import validate_config
from gateway.apps.demo.config import CONFIG_DIR, load_demo_config
from gateway.apps.demo.runner import gateway_config, read_toml, sim_config
from gateway.common.paths import REPO_ROOT
from sim_exchange.config import SimConfig



def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _assert_no_orphans(report: dict) -> None:
    for run in report["runs"]:
        for key in ("sim_pid", "gateway_pid"):
            pid = run["meta"][key]
            assert not _alive(pid), f"{run['policy']} {key} {pid} still running"
        assert run["meta"]["gateway_exit"] == 0 and run["meta"]["sim_exit"] == 0, run["meta"]


def test_generated_configs_validate(tmp_path):
    cfg = load_demo_config()
    sim_t, gw_t = read_toml(CONFIG_DIR / "sim.toml"), read_toml(CONFIG_DIR / "gateway.toml")
    ports = {"ALPHA": 20001, "BRAVO": 20002, "CHARLIE": 20003}
    sim = validate_config(sim_config(sim_t, ports, tmp_path / "s", 10.0, cfg, seed=5), SimConfig)
    alpha = next(v for v in sim.venues if v.name == "ALPHA")
    # 30 s schedule (12 s, 22.5 s) scaled to 10 s and shifted by the startup offset
    assert [s.at_s for s in alpha.latency.schedule] == [cfg.startup_offset_s + 4.0, cfg.startup_offset_s + 7.5]
    assert [v.port for v in sim.venues] == [20001, 20002, 20003] and sim.venues[0].seed == 5001
    assert sim.market.enabled and sim.market.competitors_enabled and sim.market.competitors
    lead = [v.name for v in sim.venues if v.market.lag_us == 0]
    assert lead == [cfg.scalper().lead_venue]          # the scalper watches the sim's lead venue
    control = validate_config(sim_config(sim_t, ports, tmp_path / "s", 10.0, cfg, seed=5, competitors=False),
                              SimConfig)
    assert control.market.enabled and not control.market.competitors_enabled
    gw = validate_config(gateway_config(gw_t, ports, 20010, 20011, tmp_path / "g", "best_price",
                                        cfg.kill_switch.model_dump(), client=("DEMO", "pw-run1")), GatewayConfig)
    assert gw.risk.loss_threshold == cfg.kill_switch.loss_threshold and gw.risk.kill_switch_enabled
    assert (gw.oms.port, gw.admin.port, gw.routing.policy) == (20010, 20011, "best_price")
    demo = [c for c in gw.oms.clients if c.comp_id == "DEMO"]
    assert len(demo) == 1 and demo[0].password == "pw-run1"   # every OMS client logs on with a password
    assert {v.name: v.port for v in gw.venues} == ports


@pytest.mark.timeout(60)
def test_demo_short_run_accounts_for_every_order(tmp_path):
    out, run_dir = tmp_path / "report", tmp_path / "run"
    proc = subprocess.run(procs.fixgw_command("demo", "--policy", "scalp", "--no-control", "--duration", "4",
                                              "--plain", "--out", str(out), "--run-dir", str(run_dir)),
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=55)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()
    s = report["policies"]["scalp"]
    for key in ("win_rate", "pnl_per_round_trip", "round_trips", "missed", "signal_to_exec_p50_us"):
        assert key in s and key in s["repeats"][0], key
    acc = s["accounting"]
    assert acc["orders"] > 0 and acc["open"] == 0 and acc["accounted"], acc
    assert s["round_trips"] + s["missed"] > 0
    assert s["kill_switch"][0]["loss_threshold"] is not None     # armed
    assert s["router"]["venues_per_order_max"] == 1                 # scalp: one venue per order
    run = report["runs"][0]
    assert run["meta"]["competitors"] and run["meta"]["drained"]
    # the market data and probes of the run are saved next to the report, ready to replay
    from gateway.core.recording import read_recording
    rec = read_recording(out / "recordings" / "scalp-1.rec")
    assert len(rec) > 0 and set(rec.venues) == {"ALPHA", "BRAVO", "CHARLIE"} and len(rec.probe_rtt) > 0
    assert "| Trade ID | System Type | Signal-to-Execution (us) | Venue(s) Queried | Slippage (ticks) | Outcome |" in md
    assert "Published: scalp" in md and "## Where ours differ" in md
    _assert_no_orphans(report)
    from gateway.apps.demo.view import render   # the live view draws the gateway's real /status
    text = render(run["final_status"], {}, "demo scalp", 4.0, 4.0, "AAPL", {"AAPL": 0.01})
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert all(f"{v:<8} up" in text for v in ("ALPHA", "BRAVO", "CHARLIE")), text


@pytest.mark.timeout(60)
def test_demo_ctrl_c_stops_cleanly_and_reports(tmp_path):
    out = tmp_path / "report"
    proc = subprocess.Popen(procs.fixgw_command("demo", "--duration", "40", "--plain", "--out", str(out),
                                                "--run-dir", str(tmp_path / "run")),
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:   # bounded: readline returns at each summary line or EOF
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("[demo policy=scalp"):
                break
        assert any(line.startswith("[demo policy=scalp") for line in lines), "".join(lines)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=40)
    finally:
        procs.stop(proc)
    assert proc.returncode == 0, "".join(lines) + rest
    assert "(interrupted: the report covers what ran)" in rest
    report = json.loads((out / "report.json").read_text())
    assert report["meta"]["interrupted"] and report["runs"][0]["meta"]["trading_s"] < 30
    _assert_no_orphans(report)


@pytest.mark.timeout(60)
def test_demo_double_ctrl_c_leaves_no_orphans(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(procs.fixgw_command("demo", "--duration", "40", "--plain", "--out", str(tmp_path / "r"),
                                                "--run-dir", str(run_dir)),
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:   # bounded: one line per summary or EOF
            line = proc.stdout.readline()
            if not line or line.startswith("[demo policy=scalp"):
                break
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)     # impatient user: abort or keep stopping, never orphan
        out, _ = proc.communicate(timeout=40)
    finally:
        procs.stop(proc)
    assert proc.returncode in (0, 130), out
    pids = json.loads((run_dir / "scalp-1" / "pids.json").read_text())
    assert set(pids) == {"sim", "gateway"}
    assert not [name for name, pid in pids.items() if _alive(pid)], out
