"""`python -m sim_exchange` / `fixgw sim` as a child process: config errors, listening lines, clean stop."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.common import procs
from gateway.common.configfile import ConfigError, validate_config
from gateway.fix.raw import RawFixSession
from sim_exchange.config import SimConfig

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path, port_a: int, port_b: int, extra: str = "") -> Path:
    path = tmp_path / "sim.toml"
    path.write_text(f"""
store_dir = "{tmp_path / 'store'}"
[[symbols]]
symbol = "EURUSD"
tick_size = 0.00001
ref_price = 1.1
[[venues]]
name = "ALPHA"
port = {port_a}
[venues.flow]
rate_per_s = 50
[[venues]]
name = "BRAVO"
port = {port_b}
[venues.latency]
base_us = 300
{extra}
""")
    return path


def test_default_config_is_valid():
    cfg = SimConfig.load(ROOT / "configs" / "sim.toml")
    names = [v.name for v in cfg.venues]
    assert names == ["ALPHA", "BRAVO", "CHARLIE"]
    lat = {v.name: v.latency.base_us for v in cfg.venues}
    assert lat["ALPHA"] < lat["BRAVO"] < lat["CHARLIE"]
    assert cfg.venues[0].latency.schedule[0].base_us > lat["CHARLIE"]
    assert {s.symbol for s in cfg.symbols} == {"EURUSD", "BTCUSD", "AAPL"}


def test_bad_config_exits_2_and_names_the_field(tmp_path):
    path = write_config(tmp_path, 1, 2, extra='jitter = "gaussian"')
    out = subprocess.run([sys.executable, "-m", "sim_exchange", "--config", str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "venues.1.latency.jitter" in out.stderr
    out = subprocess.run(procs.fixgw_command("sim", "--config", str(tmp_path / "missing.toml")), cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "not found" in out.stderr


def test_venue_option_runs_a_subset(tmp_path):
    a, b = procs.free_ports(2)
    path = write_config(tmp_path, a, b)
    out = subprocess.run([sys.executable, "-m", "sim_exchange", "--config", str(path), "--venue", "BRAVO",
                          "--duration", "0.2"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "venue BRAVO listening" in out.stdout and "ALPHA" not in out.stdout
    out = subprocess.run([sys.executable, "-m", "sim_exchange", "--config", str(path), "--venue", "ZULU"],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "ZULU" in out.stderr


def test_runs_until_sigterm_then_logs_out_and_exits_0(tmp_path):
    a, b = procs.free_ports(2)
    log = tmp_path / "sim.log"
    proc = procs.start(procs.fixgw_command("sim", "--config", str(write_config(tmp_path, a, b))),
                       log_path=log, cwd=ROOT)
    try:
        procs.wait_for_ports([a, b], timeout=20, proc=proc)
        c = RawFixSession(port=b, sender="CLIENT", target="BRAVO", timeout=5).connect()
        assert c.logon().get(35) == b"A"
        proc.send_signal(signal.SIGTERM)
        got = c.recv_until(lambda m: m.get(35) == b"5", timeout=5)
        assert b"shutting down" in (got.get(58) or b"")
        c.send("5", [])
        assert proc.wait(10) == 0
        c.close()
    finally:
        procs.stop(proc)
    text = log.read_text()
    assert "venue ALPHA listening on 127.0.0.1:%d" % a in text and "venue BRAVO listening" in text
    assert "sim stopped" in text


def test_a_polling_venue_answers_and_says_so(tmp_path):
    """busy_poll_us: the venue's loop polls instead of sleeping (off by default); the
    listening line says so, ``cpu`` pins the process; a TestRequest is answered as ever."""
    b = procs.free_port()
    path = tmp_path / "sim.toml"
    path.write_text(f"""
store_dir = "{tmp_path / 'store'}"
cpu = -1
[[symbols]]
symbol = "EURUSD"
tick_size = 0.00001
ref_price = 1.1
[[venues]]
name = "POLL"
port = {b}
busy_poll_us = 2000
""")
    log = tmp_path / "sim.log"
    proc = procs.start([sys.executable, "-m", "sim_exchange", "--config", str(path), "--duration", "20"],
                       log_path=log, cwd=ROOT)
    try:
        procs.wait_for_ports([b], timeout=20, proc=proc)
        c = RawFixSession(port=b, sender="CLIENT", target="POLL", timeout=5).connect()
        assert c.logon().get(35) == b"A"
        c.send("1", [(112, "PRB-POLL-1")])
        got = c.recv_until(lambda m: m.get(35) == b"0", timeout=5)
        assert got.get(112) == b"PRB-POLL-1"
        c.close()
    finally:
        procs.stop(proc)
    text = log.read_text()
    assert "venue POLL listening" in text and "polls 2000 us after each read" in text
    assert "sim pinned to CPU" in text


def test_config_rules_name_the_field():
    base = {"symbols": [{"symbol": "X", "tick_size": 0.01, "ref_price": 1.0}],
            "venues": [{"name": "A", "port": 1}, {"name": "B", "port": 2, "sender_comp_id": "A"}]}
    with pytest.raises(ConfigError, match="venues.B.sender_comp_id"):
        validate_config(base, SimConfig)
    base["venues"][1] = {"name": "B", "port": 2, "symbols": ["Y"]}
    with pytest.raises(ConfigError, match="venues.B.symbols"):
        validate_config(base, SimConfig)
    base["venues"][1] = {"name": "B", "port": 2, "flow": {"cancel_fraction": 0.8, "marketable_fraction": 0.5}}
    with pytest.raises(ConfigError, match="venues.1.flow"):
        validate_config(base, SimConfig)
    base["venues"][1] = {"name": "B", "port": 2, "engine": "quickfix", "busy_poll_us": 100}
    with pytest.raises(ConfigError, match="venues.B.busy_poll_us"):
        validate_config(base, SimConfig)
    base["venues"][1] = {"name": "B", "port": 2}
    with pytest.raises(ConfigError, match="cpu"):
        validate_config({**base, "cpu": 4096}, SimConfig)
    base["symbols"][0]["ref_price"] = 1.005
    with pytest.raises(ConfigError, match="symbols.0"):
        validate_config(base, SimConfig)


MARKET = """
[market]
enabled = true
move_rate_per_s = 20
[[market.competitors]]
name = "HFT"
reaction_us = 300
"""


def test_market_spans_the_process_and_one_venue_runs_without_competitors(tmp_path):
    a, b = procs.free_ports(2)
    path = write_config(tmp_path, a, b)
    path.write_text(path.read_text().replace("[[symbols]]", MARKET + "\n[[symbols]]", 1))
    out = subprocess.run([sys.executable, "-m", "sim_exchange", "--config", str(path), "--duration", "1.5",
                          "--stats"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "market: fair value moves 20/s per symbol, lead ALPHA,BRAVO; 1 competitor(s) across ALPHA, BRAVO" \
        in out.stdout
    assert '"fair_moves"' in out.stdout
    out = subprocess.run([sys.executable, "-m", "sim_exchange", "--config", str(path), "--venue", "BRAVO",
                          "--duration", "0.2"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "no cross-venue competitors (one venue in this process)" in out.stdout


def test_demo_config_has_the_market_on_and_a_switch_to_turn_it_off():
    cfg = SimConfig.load(ROOT / "configs" / "demo" / "sim.toml")
    assert cfg.market.enabled and cfg.market.competitors_enabled and len(cfg.market.competitors) >= 1
    assert [v.name for v in cfg.venues if v.market.lag_us == 0] == ["BRAVO"]       # one lead venue
    off = SimConfig.model_validate({**cfg.model_dump(), "market": {**cfg.market.model_dump(), "enabled": False}})
    assert not off.market.enabled
