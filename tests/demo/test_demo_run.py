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

POLICIES = ["scalp", "best_price", "dma"]


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
    gw = validate_config(gateway_config(gw_t, ports, 20010, 20011, tmp_path / "g", "best_price"), GatewayConfig)
    assert (gw.oms.port, gw.admin.port, gw.routing.policy) == (20010, 20011, "best_price")
    assert "DEMO" in [c.comp_id for c in gw.oms.clients]
    assert {v.name: v.port for v in gw.venues} == ports


@pytest.mark.timeout(110)
def test_demo_compare_short_run(tmp_path):
    out, run_dir = tmp_path / "report", tmp_path / "run"
    proc = subprocess.run(procs.fixgw_command("demo", "--compare", "--duration", "4", "--plain",
                                              "--out", str(out), "--run-dir", str(run_dir)),
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| Metric | scalp | best_price | dma |" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()
    assert [s["policy"] for s in report["summaries"]] == POLICIES
    for s in report["summaries"]:
        o = s["outcomes"]
        assert s["orders_sent"] > 0, s
        assert s["orders_sent"] == o["filled"] + o["partial_then_done"] + o["missed"] + o["rejected"], s
        assert o["unresolved"] == 0 and s["accounted"]
        assert s["cum_qty_mismatches"] == 0, s   # the gateway's CumQty agrees with the fills it reported
        lat = s["signal_to_exec_us"]
        assert lat["n"] == s["orders_sent"] and 0 < lat["p50"] <= lat["p99"] < 1e6
        assert s["signal_to_send_us"]["p50"] > 0 and s["send_to_ack_us"]["n"] > 0
        assert s["venues_per_order"]["matched_to_orders"] == s["orders_sent"]
        assert s["venues_per_order"]["mean"] >= 1
        assert 0 <= s["win_rate"] <= s["fill_rate"] <= 1
        assert sum(v["orders"] for v in s["by_venue"].values()) == s["orders_sent"]
    by = {s["policy"]: s for s in report["summaries"]}
    assert by["scalp"]["venues_per_order"]["max"] == 1 and by["dma"]["venues_per_order"]["max"] == 1
    assert set(by["dma"]["by_venue"]) <= {"ALPHA", "(none)"}   # the static route of configs/demo
    for run in report["runs"]:
        assert run["series"] and run["decisions"]
        assert {v for snap in run["series"] for v in snap["venues"]} == {"ALPHA", "BRAVO", "CHARLIE"}
    _assert_no_orphans(report)
    from gateway.apps.demo.view import render   # the live table draws the gateway's real /status
    text = render(report["runs"][0]["final_status"], {}, "scalp", 4.0, 4.0, "AAPL")
    assert all(f"{v:<8} up" in text for v in ("ALPHA", "BRAVO", "CHARLIE")), text
    pngs = {p.name for p in out.glob("*.png")}
    assert pngs == {"latency_by_venue.png", "routing_share.png", "fill_rate_by_policy.png",
                    "signal_to_exec_cdf.png"}
    assert "## How each figure is measured" in md and "Win rate (filled at intended price)" in md
    assert "The `dma` run sends every order to `ALPHA`" in md and "## Observations" in md


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
            if line.startswith("[demo scalp t="):
                break
        assert any(line.startswith("[demo scalp") for line in lines), "".join(lines)
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
            if not line or line.startswith("[demo scalp t="):
                break
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)     # impatient user: abort or keep stopping, never orphan
        out, _ = proc.communicate(timeout=40)
    finally:
        procs.stop(proc)
    assert proc.returncode in (0, 130), out
    pids = json.loads((run_dir / "scalp" / "pids.json").read_text())
    assert set(pids) == {"sim", "gateway"}
    assert not [name for name, pid in pids.items() if _alive(pid)], out
