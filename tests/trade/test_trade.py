"""`fixgw trade`: a few seconds per tactic against its scenario through a real gateway,
plus the pure parts (venue renaming, the scenario adapter, the report)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gateway.apps.trade import report
from gateway.apps.trade.runner import venue_names
from gateway.apps.trade.simproc import ScenarioSource
from gateway.common.paths import REPO_ROOT
from gateway.common.clock import FakeClock
from gateway.core.matching.engine import BUY, DAY, LIMIT, SELL, Instrument, MatchingEngine
from gateway.core.matching.scenarios import ScenarioFile, build_scenario

TACTICS = ["scalper", "momentum", "liquidity_fade", "spread_capture"]


@pytest.mark.timeout(40)
@pytest.mark.parametrize("tactic", TACTICS)
def test_a_short_live_run_trades_or_says_why_and_accounts_for_every_order(tmp_path, tactic):
    out = tmp_path / "rep"
    proc = subprocess.run([sys.executable, "-m", "gateway.apps.trade", "--tactic", tactic, "--duration", "4",
                           "--plain", "--run-dir", str(tmp_path / "run"), "--out", str(out)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=38)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((out / "report.json").read_text())
    s = data["summary"]
    assert s["accounting"]["accounted"] and s["accounting"]["open"] == 0, s["accounting"]
    assert s["round_trips"] + s["missed"] > 0 or s["why_no_trades"], s
    assert data["meta"]["gateway_exit"] == 0 and data["meta"]["sim_exit"] == 0, data["meta"]
    md = (out / "report.md").read_text()
    assert "Hit rate" in md and "Legging incidents" in md
    if tactic != "scalper":
        assert data["scenario"] is not None and "scenario" in data["meta"]["against"]


def test_venues_renamed_to_the_scenario_in_order():
    template = {"venues": [{"name": "ALPHA"}, {"name": "BRAVO"}, {"name": "CHARLIE"}]}
    assert venue_names(template, ScenarioFile(venues=["ALPHA", "BETA", "GAMMA"], symbol="X")) == \
        ["ALPHA", "BETA", "GAMMA"]
    assert venue_names(template, ScenarioFile(venue="BRAVO", symbol="X")) == ["BRAVO", "BRAVOX", "CHARLIE"]
    assert venue_names(template, None) == ["ALPHA", "BRAVO", "CHARLIE"]


def test_scenario_source_turns_generator_actions_into_engine_calls():
    engines = {}
    for name in ("ALPHA", "BETA"):
        eng = MatchingEngine([Instrument("EURUSD", 0.00001, 1.1)], FakeClock(), name)
        for i in range(3):
            eng.new_order("flow:book", f"B{i}", "EURUSD", BUY, 1000, LIMIT, round(1.1 - i * 0.00001, 5), DAY)
            eng.new_order("flow:book", f"S{i}", "EURUSD", SELL, 1000, LIMIT, round(1.10001 + i * 0.00001, 5), DAY)
        engines[name] = eng
    f = ScenarioFile(venues=["ALPHA", "BETA"], symbol="EURUSD", seed=3,
                     scenario={"gap_s": 0.1, "burst_orders": 2, "burst_qty": 10, "burst_spacing_s": 0.01})
    src = ScenarioSource(build_scenario("momentum", f, start_at=0.0), engines)
    calls, t = [], 0.0
    for _ in range(200):
        t = src.next_time()
        if t > 5:
            break
        calls += src.step(t)
    assert calls and {c.venue for c in calls} <= {"ALPHA", "BETA"}
    events = calls[0].fn(engines[calls[0].venue])
    assert isinstance(events, list)


def test_report_without_trades_says_why():
    run = {"tactic": "momentum", "meta": {}, "trips": [], "orders": [],
           "stats": {"bursts": 3, "skipped_rtt": 3}, "scenario": {"episodes": 2, "log": []}}
    s = report.summarize(run)
    assert s["round_trips"] == 0 and "skipped_rtt" in s["why_no_trades"]
    assert "no episode" in report.summarize({**run, "scenario": {"episodes": 0}})["why_no_trades"]
