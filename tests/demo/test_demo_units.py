"""Unit tests of the demo's pure parts: market-data books, the signal rule, order
records and the report maths, with hand-made messages and records."""
from __future__ import annotations

import json

import pytest

from gateway.common.clock import FakeClock
from gateway.apps.demo import report
from gateway.apps.demo.config import ClientConfig
from gateway.apps.demo.mdbook import MarketView, Touch, md_entries, parse_fields
from gateway.apps.demo.orders import OrderRecord, OrderTracker
from gateway.apps.demo.signals import SignalRule
from gateway.core.model import BUY, SELL

S = "\x01"


def fix(*pairs) -> str:
    return S.join(f"{t}={v}" for t, v in pairs) + S


def snapshot(symbol, bids, asks):
    pairs = [(8, "FIX.4.4"), (35, "W"), (55, symbol), (268, len(bids) + len(asks))]
    for px, q in bids:
        pairs += [(269, 0), (270, px), (271, q)]
    for px, q in asks:
        pairs += [(269, 1), (270, px), (271, q)]
    return fix(*pairs, (10, "000"))


def test_md_entries_groups_and_trailer():
    sym, entries = md_entries(parse_fields(snapshot("AAPL", [("190.00", 100)], [("190.01", 200)])))
    assert sym == "AAPL"
    assert entries == [{269: "0", 270: "190.00", 271: "100"}, {269: "1", 270: "190.01", 271: "200"}]


def test_market_view_snapshot_incremental_and_consolidated_touch():
    mv = MarketView()
    assert mv.on_message("ALPHA", "W", snapshot("AAPL", [("190.00", 100), ("189.99", 50)],
                                                  [("190.02", 300)])) == {"AAPL"}
    mv.on_message("BRAVO", "W", snapshot("AAPL", [("189.99", 900)], [("190.01", 800)]))
    t = mv.touch("AAPL")
    assert (t.bid, t.bid_venue, t.ask, t.ask_venue) == (190.00, "ALPHA", 190.01, "BRAVO")
    # delete ALPHA's best bid, a trade entry (ignored), a new BRAVO bid level
    x = fix((8, "FIX.4.4"), (35, "X"), (268, 2), (279, 2), (269, 0), (270, "190.00"), (271, 0), (55, "AAPL"),
            (279, 0), (269, 2), (270, "190.01"), (271, 5), (55, "AAPL"), (10, "000"))
    assert mv.on_message("ALPHA", "X", x) == {"AAPL"}
    x2 = fix((8, "FIX.4.4"), (35, "X"), (268, 1), (279, 0), (269, 0), (270, "190.005"), (271, 10),
             (55, "AAPL"), (10, "000"))
    mv.on_message("BRAVO", "X", x2)
    t = mv.touch("AAPL")
    assert (t.bid, t.bid_qty, t.bid_venue) == (190.005, 10, "BRAVO")
    assert mv.book("ALPHA", "AAPL").asks == {190.02: 300}   # the trade did not become a level
    mv.forget_venue("BRAVO")
    assert mv.touch("AAPL").ask == 190.02
    assert mv.touch("EURUSD") is None


def _touch(bid, ask):
    return Touch(bid, 100, "ALPHA", ask, 100, "BRAVO")


def test_signal_rule_is_seeded_and_follows_the_mid():
    cfg = ClientConfig(seed=3, symbols=["AAPL"], signal_probability=1.0, max_orders_per_s=1000)
    clock = FakeClock(0)
    rule = SignalRule(cfg, clock)
    assert rule.on_touch("AAPL", _touch(10.00, 10.02)) is None        # first touch: nothing to compare
    clock.advance(1)
    up = rule.on_touch("AAPL", _touch(10.01, 10.03))
    assert (up.side, up.price) == (BUY, 10.03) and up.qty in cfg.sizes
    clock.advance(1)
    assert rule.on_touch("AAPL", _touch(10.01, 10.03)) is None        # unchanged touch
    down = rule.on_touch("AAPL", _touch(10.00, 10.03))
    assert (down.side, down.price) == (SELL, 10.00)
    # same seed, same touches -> same stream
    rule2 = SignalRule(cfg, FakeClock(0))
    seq = [rule2.on_touch("AAPL", _touch(10.00, 10.02)), rule2.on_touch("AAPL", _touch(10.01, 10.03))]
    assert seq[1].qty == up.qty


def test_signal_rule_bounds_rate_in_flight_and_crossed_books():
    cfg = ClientConfig(seed=1, symbols=["AAPL"], signal_probability=1.0, max_orders_per_s=2, max_in_flight=1)
    clock = FakeClock(0)
    rule = SignalRule(cfg, clock)
    rule.on_touch("AAPL", _touch(10.00, 10.02))
    assert rule.on_touch("AAPL", _touch(10.01, 10.03)) is not None
    clock.advance(0.1)
    assert rule.on_touch("AAPL", _touch(10.02, 10.04)) is None           # 0.1 s < 1/2 s
    clock.advance(1)
    assert rule.on_touch("AAPL", _touch(10.03, 10.05), {"AAPL"}, 1) is None
    assert rule.on_touch("AAPL", _touch(10.05, 10.05)) is None           # locked consolidated book
    assert rule.counts == {"touch_changes": 5, "fired": 1, "skipped_busy": 1, "skipped_rate": 1,
                           "skipped_crossed": 1}


def _er(cl, exec_id, exec_type, status, last_qty=0, last_px=0, venue="ALPHA"):
    return {11: cl, 17: exec_id, 150: exec_type, 39: status, 32: str(last_qty), 31: str(last_px), 30: venue}


def test_tracker_partial_then_cancel_and_duplicates():
    tr = OrderTracker()
    rec = OrderRecord("C1", "AAPL", BUY, 300, 190.01, 0.01, signal_ts=1.0, send_ts=1.0001)
    tr.add(rec)
    assert tr.busy() == ({"AAPL"}, 1)
    tr.on_execution_report(_er("C1", "E0", "0", "0"), 1.0003)
    tr.on_execution_report(_er("C1", "E1", "F", "1", 100, 190.01), 1.0004)
    tr.on_execution_report(_er("C1", "E1", "F", "1", 100, 190.01), 1.0004)   # resent: ignored
    assert not rec.done
    tr.on_execution_report(_er("C1", "E2", "4", "4"), 1.0005)
    assert rec.outcome == "partial_then_done" and rec.filled_qty == 100 and rec.venue == "ALPHA"
    assert rec.cum_qty is None   # the hand-made reports carry no CumQty(14)
    tr.add(OrderRecord("C2", "AAPL", BUY, 100, 190.01, 0.01, signal_ts=2.0))
    tr.on_execution_report(_er("C2", "E5", "F", "2", 100, 190.01) | {14: "100"}, 2.1)
    assert tr.orders["C2"].cum_qty == 100 and tr.orders["C2"].outcome == "filled"
    s = report.summarize({"policy": "scalp", "orders": [r.as_dict() for r in tr.records()], "decisions": []})
    assert s["cum_qty_mismatches"] == 0
    tr.orders["C2"].cum_qty = 50
    s = report.summarize({"policy": "scalp", "orders": [r.as_dict() for r in tr.records()], "decisions": []})
    assert s["cum_qty_mismatches"] == 1
    assert rec.signal_to_exec_us == pytest.approx(500)
    assert rec.send_to_ack_us == pytest.approx(200)
    assert tr.busy() == (set(), 0) and tr.wait_idle(0.01)
    assert tr.on_execution_report(_er("ZZ", "E9", "0", "0"), 2) is None and tr.unknown_reports == 1


def test_record_slippage_and_win_signs():
    buy = OrderRecord("B", "EURUSD", BUY, 200, 1.10002, 0.00001, 0.0, terminal_ts=0.001, status="2",
                      fills=[(100, 1.10002, "A"), (100, 1.10000, "A")])
    assert buy.slippage_ticks == pytest.approx(-1.0) and buy.win          # bought 1 tick better on average
    sell = OrderRecord("S", "EURUSD", SELL, 100, 1.10000, 0.00001, 0.0, terminal_ts=0.001, status="2",
                       fills=[(100, 1.09998, "A")])
    assert sell.slippage_ticks == pytest.approx(2.0) and not sell.win     # sold 2 ticks worse
    rej = OrderRecord("R", "EURUSD", SELL, 100, 1.1, 0.00001, 0.0, terminal_ts=0.001, status="8")
    assert rej.outcome == "rejected" and rej.slippage_ticks is None and not rej.win
    assert OrderRecord("U", "EURUSD", SELL, 100, 1.1, 0.00001, 0.0).outcome == "unresolved"


def _records():
    rows = [
        OrderRecord("O1", "AAPL", BUY, 100, 190.01, 0.01, 0.0, 0.00002, "ALPHA", [(100, 190.01, "ALPHA")], "2",
                    0.0004, 0.0005),
        OrderRecord("O2", "AAPL", BUY, 200, 190.01, 0.01, 1.0, 1.00002, "ALPHA", [(100, 190.01, "ALPHA")], "4",
                    1.0004, 1.0010),
        OrderRecord("O3", "AAPL", SELL, 100, 190.00, 0.01, 2.0, 2.00002, "BRAVO", [], "4", 2.002, 2.003),
        OrderRecord("O4", "AAPL", SELL, 100, 190.00, 0.01, 3.0, 3.00002, None, [], "8", 3.0002, 3.0002),
    ]
    return [r.as_dict() for r in rows]


def test_summary_accounts_for_every_order():
    decisions = [{"cl_ord_id": "O1", "children": [{"venue": "ALPHA"}], "decision_us": 4.0},
                 {"cl_ord_id": "O2", "children": [{"venue": "ALPHA"}, {"venue": "BRAVO"}], "decision_us": 6.0},
                 {"cl_ord_id": "O3", "venues": ["BRAVO"], "decision_us": 5.0},
                 {"cl_ord_id": "O4", "children": [], "decision_us": 2.0}]
    s = report.summarize({"policy": "scalp", "orders": _records(), "decisions": decisions})
    assert s["orders_sent"] == 4 and s["accounted"]
    assert s["outcomes"] == {"filled": 1, "partial_then_done": 1, "missed": 1, "rejected": 1, "unresolved": 0}
    assert s["fill_rate"] == 0.5 and s["full_fill_rate"] == 0.25 and s["win_rate"] == 0.25
    assert s["fill_ratio_qty"] == pytest.approx(200 / 500)
    assert s["slippage_ticks"]["weighted_mean"] == pytest.approx(0.0)
    assert s["venues_per_order"]["mean"] == pytest.approx(4 / 3) and s["venues_per_order"]["max"] == 2
    assert s["signal_to_exec_us"]["n"] == 4 and s["signal_to_exec_us"]["p50"] == pytest.approx(750)  # 200, 500, 1000, 3000 us
    assert s["by_venue"]["ALPHA"]["orders"] == 2 and s["by_venue"]["ALPHA"]["share"] == 0.5
    assert s["by_venue"]["(none)"]["rejected"] == 1


def test_unresolved_order_breaks_the_account():
    rows = _records() + [OrderRecord("O5", "AAPL", BUY, 100, 190.01, 0.01, 4.0, 4.0).as_dict()]
    s = report.summarize({"policy": "dma", "orders": rows, "decisions": []})
    assert not s["accounted"] and s["outcomes"]["unresolved"] == 1
    assert s["venues_per_order"]["mean"] is None


def test_write_report_files_and_table(tmp_path):
    runs = [{"policy": p, "meta": {"duration_s": 4}, "orders": _records(),
             "decisions": [{"cl_ord_id": "O1", "children": [{"venue": "ALPHA"}]}],
             "series": [{"t": 0.5, "venues": {"ALPHA": {"p50_us": 300, "p99_us": 500}}},
                        {"t": 1.0, "venues": {"ALPHA": {"p50_us": 320, "p99_us": 700}}}],
             "final_status": {"risk": {"state": "ACTIVE", "total_pnl": -1.5}}}
            for p in ("scalp", "best_price", "dma")]
    rep = report.build_report(runs, {"duration_s": 4, "symbols": ["AAPL"]})
    paths = report.write_report(rep, tmp_path)
    md = paths["md"].read_text()
    assert "| Metric | scalp | best_price | dma |" in md
    assert "Win rate (filled at intended price) | 25.0% | 25.0% | 25.0% | 100% | 60% |" in md
    data = json.loads(paths["json"].read_text())
    assert [s["policy"] for s in data["summaries"]] == ["scalp", "best_price", "dma"]
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["fill_rate_by_policy.png", "latency_by_venue.png", "routing_share.png",
                    "signal_to_exec_cdf.png"]
    assert all((tmp_path / p).stat().st_size > 5000 for p in pngs)


def test_charts_skipped_without_matplotlib(tmp_path, monkeypatch):
    from gateway.apps.demo import charts
    monkeypatch.setattr(charts, "_pyplot", lambda: None)
    rep = report.build_report([{"policy": "scalp", "orders": _records(), "decisions": []}], {})
    paths = report.write_report(rep, tmp_path)
    assert "Charts skipped: matplotlib is not installed" in paths["md"].read_text()
    assert not list(tmp_path.glob("*.png"))


def test_injected_rtt_follows_the_schedule_and_split_orders_take_the_slowest():
    model = {"ALPHA": {"base_us": 100, "jitter_us": 20, "jitter": "normal", "schedule": [[5.0, 3000, 300]]},
             "CHARLIE": {"base_us": 1500, "jitter_us": 300, "jitter": "exponential", "schedule": []}}
    assert report.injected_rtt_us(model, "ALPHA", 4.9) == 200
    assert report.injected_rtt_us(model, "ALPHA", 5.0) == 6000
    assert report.injected_rtt_us(model, "CHARLIE", 0) == 3600
    assert report.injected_rtt_us(model, "NOPE", 0) is None
    order = {"signal_ts": 1.0, "venue": "ALPHA"}
    split = {"children": [{"venue": "ALPHA"}, {"venue": "CHARLIE"}]}
    assert report.order_injected_rtt(order, split, model) == 3600
    assert report.order_injected_rtt(order, None, model) == 200
    rows = _records()
    s = report.summarize({"policy": "scalp", "orders": rows, "decisions": [],
                          "meta": {"latency_model": model}})
    # ALPHA orders only carry a venue: 500 - 200 and 1000 - 200 us
    assert s["overhead_us"]["n"] == 2 and s["overhead_us"]["p50"] == pytest.approx(550)


def test_live_view_render_and_summary_line():
    from gateway.apps.demo import view
    status = {"venues": [{"name": "ALPHA", "logged_on": True,
                          "market": {"latency": {"ewma_us": 210.4, "p50_us": 200, "p99_us": 480},
                                     "books": {"AAPL": {"bid": 190.0, "bid_qty": 300, "ask": 190.01,
                                                        "ask_qty": 200, "levels": [5, 4]}}}},
                         {"name": "CHARLIE", "logged_on": False, "market": {}}],
              "orders": {"total": 4, "filled": 2, "canceled": 1, "rejected": 1},
              "risk": {"state": "ACTIVE", "total_pnl": -12.5}}
    client = {"venues": {"ALPHA": {"orders": 3, "fills": 2, "misses": 1}},
              "totals": {"sent": 4, "open": 0, "filled": 1, "partial_then_done": 1, "missed": 1, "rejected": 1,
                         "lat_us": [900.0, 1100.0, 5000.0], "slip_qty": 300.0, "slip_ticks_x_qty": -150.0}}
    text = view.render(status, client, "scalp", 3.0, 30, "AAPL")
    assert "ALPHA    up" in text and "300 @ 190.0 x 190.01 @ 200" in text and "75%" in text and " 5/4 " in text
    assert "CHARLIE  DOWN" in text and "risk ACTIVE" in text and "PnL -12.50" in text
    assert "fill rate 50%" in text and "signal->exec p50 1,100 us" in text and "slippage -0.50 ticks" in text
    line = view.summary_line(status, client, "scalp", 3.0)
    assert line.startswith("[demo scalp t=3.0s] sent 4 filled 2 missed 1") and "ALPHA=210us" in line
    snap = view.condense(status, 1.5)
    assert snap["venues"]["ALPHA"]["ewma_us"] == 210.4 and snap["risk"]["state"] == "ACTIVE"
    assert view.render(None, {}, "dma", 0.0, 4, "AAPL").count("\n") == 3   # gateway not answering yet


def test_live_view_survives_an_unexpected_status_shape():
    import io
    from gateway.apps.demo import view
    out = io.StringIO()
    v = view.LiveView("http://127.0.0.1:1", lambda: {"totals": {"sent": "x"}}, "scalp", 4, "AAPL",
                      clock=lambda: 1.0, out=out, tty=True)
    v.poll_once()   # nobody listens on port 1 and the client stats are garbage: no exception
    v.poll_once()
    assert v.render_errors == 2 and out.getvalue().count("cannot draw the status") == 1


def test_routed_without_depth_from_decision_scores():
    d = {"children": [{"venue": "ALPHA"}],
         "scores": [{"venue": "ALPHA", "available": 0.0}, {"venue": "BRAVO", "available": 250.0}]}
    assert report.routed_without_depth(d) == (True, True)
    d["scores"][1]["available"] = 0.0
    assert report.routed_without_depth(d) == (True, False)
    d["scores"][0]["available"] = 10.0
    assert report.routed_without_depth(d) == (False, False)
    assert report.routed_without_depth({"children": [], "scores": []}) is None
    assert report.routed_without_depth({"children": [{"venue": "ALPHA"}], "scores": []}) is None   # DMA


def test_observations_name_the_best_policy_and_blind_routes():
    rows = _records()
    decisions = [{"cl_ord_id": "O3", "children": [{"venue": "BRAVO"}],
                  "scores": [{"venue": "BRAVO", "available": 0.0}, {"venue": "ALPHA", "available": 50.0}]}]
    a = report.summarize({"policy": "scalp", "orders": rows, "decisions": decisions})
    b = report.summarize({"policy": "dma", "orders": rows[:1], "decisions": []})
    obs = report.observations([a, b])
    assert obs[0] == "Win rate: best `dma` (100.0%), `scalp` 25.0%."
    assert any("`scalp` sent 1 of 4 orders to a venue that showed no depth" in o and "1 of its 1 misses" in o
               for o in obs)
    assert report.observations([report.summarize({"policy": "dma", "orders": []})]) == [
        "No orders were sent: nothing to compare."]


def test_bad_demo_config_exits_2_naming_the_field(tmp_path, capsys):
    from gateway import cli
    bad = tmp_path / "demo.toml"
    bad.write_text("duration_s = 5\n[client]\nsignal_probability = 1.5\nsizes = [100, 200]\nsize_weights = [1]\n")
    assert cli.main(["demo", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "client.signal_probability" in err and "client.size_weights" in err


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


def test_client_order_message_fields(tmp_path, monkeypatch):
    from gateway.apps.demo import client as client_mod
    from gateway.apps.demo.signals import Signal
    sent = []
    monkeypatch.setattr(client_mod.fixedge, "send", lambda msg, sid: sent.append(msg.toString()) or True)
    c = client_mod.DemoClient(ClientConfig(), 1, {"ALPHA": 2}, {"EURUSD": 0.00001, "BTCUSD": 0.5}, tmp_path)
    c.oms_session = object()
    rec = c.send_order(Signal("EURUSD", SELL, 200.0, 1.1, at=1.0))
    c.send_order(Signal("BTCUSD", BUY, 1000.0, 60000.5, at=2.0))
    f = dict(kv.split("=", 1) for kv in sent[0].split("\x01") if kv)
    assert (f["35"], f["11"], f["55"], f["54"], f["38"], f["40"], f["44"], f["59"]) == (
        "D", rec.cl_ord_id, "EURUSD", SELL, "200", "2", "1.10000", "3")
    assert len(f["60"]) == len("20260101-00:00:00.000000")
    assert "44=60000.5\x01" in sent[1] and "38=1000\x01" in sent[1]
    assert c.tracker.busy() == ({"EURUSD", "BTCUSD"}, 2) and rec.send_ts >= rec.signal_ts


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


def test_repeats_merge_per_policy_with_unique_ids_and_their_own_latency_model():
    model_a = {"ALPHA": {"base_us": 100, "jitter_us": 0, "jitter": "none", "schedule": []}}
    model_b = {"ALPHA": {"base_us": 1000, "jitter_us": 0, "jitter": "none", "schedule": []}}
    def run(policy, model, n_fired):
        return {"policy": policy, "meta": {"latency_model": model, "signals": {"fired": n_fired}},
                "orders": _records()[:2], "series": [{"t": 0.5, "venues": {}}],
                "decisions": [{"cl_ord_id": "O1", "children": [{"venue": "ALPHA"}]},
                              {"cl_ord_id": "O2", "children": [{"venue": "ALPHA"}]}]}
    runs = [run("scalp", model_a, 2), run("dma", model_a, 1), run("scalp", model_b, 3)]
    merged = report.merge_runs(runs)
    assert [m["policy"] for m in merged] == ["scalp", "dma"]
    scalp = merged[0]
    assert [o["cl_ord_id"] for o in scalp["orders"]] == ["O1#1", "O2#1", "O1#2", "O2#2"]
    assert [o["injected_rtt_us"] for o in scalp["orders"]] == [200, 200, 2000, 2000]
    assert scalp["meta"]["repeats"] == 2 and scalp["meta"]["signals"] == {"fired": 5}
    s = report.summarize(scalp)
    assert s["orders_sent"] == 4 and s["venues_per_order"]["matched_to_orders"] == 4
    assert s["injected_rtt_us"]["max"] == 2000 and s["accounted"]
    assert merged[1] is runs[1]
    assert [r["orders"] for r in s["per_repeat"]] == [2, 2]
    table = report.comparison_table([s, report.summarize(merged[1])])
    assert "| Signal-to-execution p50 per repeat (us) | 750 / 750 | - |" in table
    assert "| Fill rate per repeat | 100.0% / 100.0% | - |" in table
    assert "per repeat" not in report.comparison_table([report.summarize(merged[1])])
