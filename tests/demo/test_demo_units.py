"""The demo's pure parts: report figures, live view, configs (no sockets)."""
from __future__ import annotations

import json

from gateway.apps.demo import report
from gateway.apps.demo.view import fmt_px, render, summary_line


def trip(i, outcome, pnl=1.0, s2e=500.0, state="closed", ids=None, ticks=None):
    return {"trip_id": f"SCALP-T{i}", "state": state, "outcome": outcome, "pnl_money": pnl if outcome != "missed_entry"
            else 0.0, "pnl_ticks": ticks if ticks is not None else (1.0 if outcome == "profit" else -1.0),
            "signal_to_exec_us": s2e, "slippage_ticks": 0.0 if outcome != "missed_entry" else None,
            "exit_reason": "target" if outcome == "profit" else "stop_loss", "venues": ["BRAVO"],
            "entry_ids": ids or [f"SCALP-{i}"]}


def order(cl, status="2", reason="entry:entry", done=True, qty=100, filled=100):
    return {"cl_ord_id": cl, "status": status, "reason": reason, "done": done, "qty": qty, "filled_qty": filled}


def decision(cl, venue, scores):
    return {"cl_ord_id": cl, "children": [{"venue": venue}], "rejected": False,
            "scores": [{"venue": v, "up": True, "latency_us": lat, "available": av} for v, lat, av in scores]}


def run(policy, trips, orders, decisions=(), repeat=1, competitors=True, state="ACTIVE"):
    return {"policy": policy, "meta": {"repeat": repeat, "competitors": competitors,
                                       "kill_switch": {"loss_window_s": 5.0, "loss_threshold": 1500.0}},
            "trips": trips, "orders": orders, "decisions": list(decisions),
            "final_status": {"risk": {"state": state}}}


def test_trip_figures_win_rate_is_profitable_over_round_trips():
    trips = [trip(1, "profit", 2.0, 400), trip(2, "loss_price_moved", -1.0, 600), trip(3, "missed_entry", s2e=900),
             trip(4, "scratch", 0.0, 800), trip(5, None, state="open")]
    f = report.trip_figures(trips)
    assert (f["round_trips"], f["missed"], f["wins"], f["losses"], f["scratches"], f["not_closed"]) == (3, 1, 1, 1, 1, 1)
    assert f["win_rate"] == round(1 / 3, 4) and f["pnl_total"] == 1.0 and f["pnl_per_round_trip"] == round(1 / 3, 6)
    assert f["signal_to_exec_p50_us"] == 600          # round trips only: the missed entry's 900 is not in it
    assert report.trip_figures([])["win_rate"] is None


def test_accounting_flags_an_open_order():
    ok = report.accounting([order("A"), order("B", "4", filled=0), order("C", "8", filled=0)])
    assert ok["accounted"] and ok["by_status"] == {"filled": 1, "canceled": 1, "rejected": 1}
    bad = report.accounting([order("A"), order("B", "0", done=False)])
    assert not bad["accounted"] and bad["open"] == 1


def test_router_share_counts_the_fastest_venue_showing_the_price():
    ds = [decision("E1", "BRAVO", [("ALPHA", 200, 0), ("BRAVO", 800, 100), ("CHARLIE", 3000, 100)]),   # fastest showing
          decision("E2", "CHARLIE", [("ALPHA", 200, 0), ("BRAVO", 800, 100), ("CHARLIE", 3000, 100)]),  # not
          decision("E3", "ALPHA", [("ALPHA", 200, 0), ("BRAVO", 800, 0)]),                              # nobody showed
          decision("X1", "ALPHA", [("ALPHA", 200, 100)])]                                                # an exit: ignored
    share = report.router_share(ds, {"E1", "E2", "E3"})
    assert (share["to_fastest_showing_price"], share["with_depth_somewhere"], share["no_venue_showed_depth"]) == (1, 2, 1)
    assert share["share"] == 0.5 and share["venues_per_order_max"] == 1


def test_build_report_per_policy_repeats_control_and_json_keys(tmp_path):
    runs = [run("scalp", [trip(1, "profit"), trip(2, "profit")], [order("SCALP-1"), order("SCALP-2")], repeat=1),
            run("best_price", [trip(1, "loss_price_moved", -2.0)], [order("SCALP-1")], repeat=1),
            run("scalp", [trip(1, "loss_price_moved", -1.0), trip(2, "missed_entry")],
                [order("SCALP-1"), order("SCALP-2", "4", filled=0)], repeat=2),
            run("scalp", [trip(1, "profit")], [order("SCALP-1")], competitors=False, state="HALTED")]
    rep = report.build_report(runs, {"duration_s": 1, "repeats": 2, "symbols": ["EURUSD"]})
    s = rep["policies"]["scalp"]
    assert s["round_trips"] == 3 and s["missed"] == 1 and s["win_rate"] == round(2 / 3, 4)
    assert [r["win_rate"] for r in s["repeats"]] == [1.0, 0.0] and s["spread"]["win_rate"] == [0.0, 1.0]
    assert rep["control"]["policies"]["scalp"]["kill_switch"][0]["state"] == "HALTED"
    paths = report.write_report(rep, tmp_path)
    data = json.loads(paths["json"].read_text())
    for key in ("win_rate", "pnl_per_round_trip", "round_trips", "missed", "signal_to_exec_p50_us"):
        assert key in data["policies"]["scalp"] and key in data["policies"]["scalp"]["repeats"][0]
    md = paths["md"].read_text()
    assert "| SCALP-T1 | scalp | 500 | BRAVO | +0.0 | Profit |" in md
    assert "## Appendix: control, competitors switched off" in md and "Published: SOR" in md
    assert "scalp beats best_price" in md or "scalp does NOT beat best_price" in md
    assert all(len(line) <= 80 for line in report.comparison_table(rep).splitlines())


def test_live_view_fits_80_columns_empty_sides_dash_prices_on_grid():
    status = {"venues": [{"name": "ALPHA", "logged_on": True, "market": {"latency": {"ewma_us": 1234.5},
                          "books": {"EURUSD": {"bid": 1.1000000000002, "ask": None}}}},
                         {"name": "CHARLIE_LONG_NAME", "logged_on": False, "market": {}}],
              "risk": {"state": "ACTIVE", "total_pnl": -12.5}}
    client = {"trips": {"round_trips": 3, "win_rate": 0.5, "missed": 2, "pnl_per_round_trip": -1.0,
                        "pnl_money_total": -3.0, "signal_to_exec_p50_us": 812.0, "stuck": 0},
              "orders": 9, "open_orders": 0, "by_venue": {"ALPHA": 4}, "positions": {"EURUSD": 100.0},
              "kill_switch": {"loss_threshold": 1500.0, "loss_window_s": 5.0}}
    text = render(status, client, "demo policy=scalp repeat 2/3", 12.3, 20, "EURUSD", {"EURUSD": 0.00001})
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    assert "1.10000 x -" in text and "repeat 2/3" in text and "loss > 1,500 in 5 s" in text
    assert "DOWN" in text and "- x -" in text and "pos EURUSD +100" in text
    assert len(summary_line(status, client, "demo policy=scalp repeat 2/3", 12.0)) <= 80
    assert fmt_px(60000.5000001, 0.5) == "60000.5" and fmt_px(190.029999, 0.01) == "190.03" and fmt_px(None, 1) == "-"


def test_bad_demo_config_exits_2_naming_the_field(tmp_path, capsys):
    from gateway import cli
    bad = tmp_path / "demo.toml"
    bad.write_text("duration_s = 5\n[kill_switch]\nloss_threshold = -1\n")
    assert cli.main(["demo", "--config", str(bad)]) == 2
    assert "kill_switch.loss_threshold" in capsys.readouterr().err


def test_trade_for_notices_a_dead_child_and_ctrl_c():
    import subprocess
    import sys
    import time
    from gateway.apps.demo.config import DemoConfig
    from gateway.apps.demo.runner import DemoRunner, RunSettings
    runner = DemoRunner(RunSettings(cfg=DemoConfig(), run_dir=None, duration_s=1))
    quick = subprocess.Popen([sys.executable, "-c", "pass"])
    quick.wait(10)
    t = time.monotonic()
    assert runner.trade_for(5.0, {"gateway": quick}) == "gateway" and time.monotonic() - t < 1.5
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert runner.trade_for(0.3, {"simulator": sleeper}) is None
        runner.interrupt()
        t = time.monotonic()
        assert runner.trade_for(5.0, {"simulator": sleeper}) is None and time.monotonic() - t < 0.1
    finally:
        sleeper.kill()
        sleeper.wait(5)


def test_toml_writer_round_trips_the_config_shapes():
    import tomllib
    from gateway.apps.demo.tomlout import dumps
    data = {"store_dir": "C:\\x \"q\"", "n": None,
            "oms": {"port": 1, "clients": [{"comp_id": "A"}, {"comp_id": "B", "reset_on_logon": True}]},
            "venues": [{"name": "A", "latency": {"base_us": 100.5, "schedule": [{"at_s": 1.5, "base_us": 3}]}},
                       {"name": "B", "flow": {"enabled": False}}],
            "risk": {"symbol_limits": {"AAPL": {"tick_size": 0.01}}}}
    expected = {k: v for k, v in data.items() if v is not None}
    assert tomllib.loads(dumps(data)) == expected


def test_signal_to_report_counts_every_entry_and_hops_come_from_the_client_clock():
    trips = [trip(1, "profit", s2e=400), trip(2, "missed_entry", s2e=900), trip(3, "loss_price_moved", s2e=600)]
    f = report.trip_figures(trips)
    assert f["signal_to_exec_p50_us"] == 500 and f["signal_to_report_p50_us"] == 600 and f["signal_to_report_n"] == 3
    entry = {**order("E1"), "md_read_at": 1.0, "signal_at": 1.0002, "written_at": 1.0005,
             "report_read_at": 1.0015, "first_report_at": 1.0016}
    exit_ = {**order("X1", reason="exit:target"), "md_read_at": None, "signal_at": 2.0, "written_at": 2.1,
             "report_read_at": 2.2, "first_report_at": 2.3}
    hops = report.entry_hops([entry, exit_, order("E2")])           # exits and orders without times left out
    assert {k: (v["n"], v["p50_us"]) for k, v in hops.items()} == {
        "md_to_signal": (1, 200.0), "signal_to_wire": (1, 300.0), "outside_client": (1, 1000.0),
        "report_in": (1, 100.0), "md_to_report": (1, 1600.0)}
    rep = report.build_report([run("scalp", trips, [entry, exit_])], {"started_utc": "T"})
    s = rep["policies"]["scalp"]
    assert s["entry_hops"]["outside_client"]["p50_us"] == 1000.0
    table = report.comparison_table(rep)
    assert "600 (3)" in table and "200 / 300 / 1,000 / 100" in table
    assert all(len(line) <= 80 for line in table.splitlines())
    assert "Signal-to-report" in report.render_markdown(rep)


def test_zero_latency_clears_every_venue_latency_and_schedule():
    from gateway.apps.demo.config import DemoConfig
    from gateway.apps.demo.runner import sim_config
    template = {"venues": [{"name": "A", "latency": {"base_us": 100, "jitter_us": 20,
                                                     "schedule": [{"at_s": 1.0, "base_us": 3000}]}},
                           {"name": "B"}]}
    ports = {"A": 1, "B": 2}
    kept = sim_config(template, ports, "store", 30.0, DemoConfig(), None)
    assert kept["venues"][0]["latency"]["base_us"] == 100 and kept["venues"][0]["latency"]["schedule"]
    zero = sim_config(template, ports, "store", 30.0, DemoConfig(), None, zero_latency=True)
    assert [v["latency"] for v in zero["venues"]] == [{"base_us": 0, "jitter_us": 0}] * 2
    assert template["venues"][0]["latency"]["base_us"] == 100          # the template is not touched
