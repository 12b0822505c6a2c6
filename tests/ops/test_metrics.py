"""GatewayMetrics: a scrape parses with prometheus-client's parser and shows counters move."""
from __future__ import annotations

import json
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gateway.apps.metrics import GatewayMetrics, reject_reason

ROOT = Path(__file__).resolve().parents[2]


def scrape(m: GatewayMetrics) -> dict:
    out = {}
    for fam in text_string_to_metric_families(m.exposition().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_scrape_parses_and_counters_move():
    m = GatewayMetrics()
    sessions = [{"name": "ALPHA", "kind": "venue", "logged_on": True, "messages_in": 5, "messages_out": 7},
                {"key": "FIX.4.4:FIXGW->OMS1", "kind": "oms", "logged_on": False}]
    m.watch_sessions(lambda: sessions)
    before = scrape(m)
    assert ("fixgw_orders_total", (("outcome", "filled"), ("policy", "scalp"))) not in before
    m.on_order_done("filled", "scalp")
    m.on_order_done("filled", "scalp")
    m.on_reject(reject_reason("risk: order qty 5 > max_order_qty 1"))
    m.observe_probe("ALPHA", 0.00012)
    m.observe_primer("ALPHA", 0.0007)
    m.observe_ack("ALPHA", 0.0004)
    m.observe_router(3e-6)
    m.observe_risk(2e-6)
    m.set_risk_state("HALTED")
    m.set_journal_bytes(12345)
    m.on_md_reject("ALPHA")
    after = scrape(m)
    assert after[("fixgw_orders_total", (("outcome", "filled"), ("policy", "scalp")))] == 2
    assert after[("fixgw_rejects_total", (("reason", "risk"),))] == 1
    assert after[("fixgw_probe_rtt_seconds_bucket", (("le", "0.0002"), ("venue", "ALPHA")))] == 1
    assert after[("fixgw_probe_rtt_seconds_bucket", (("le", "0.0001"), ("venue", "ALPHA")))] == 0
    assert after[("fixgw_order_ack_seconds_count", (("venue", "ALPHA"),))] == 1
    assert after[("fixgw_probe_primer_rtt_seconds_count", (("venue", "ALPHA"),))] == 1
    assert after[("fixgw_probe_rtt_seconds_count", (("venue", "ALPHA"),))] == 1     # the primer is not a probe sample
    assert after[("fixgw_risk_state", ())] == 2 and after[("fixgw_kill_switch_tripped", ())] == 1
    assert after[("fixgw_journal_bytes", ())] == 12345
    assert after[("fixgw_md_requests_rejected_total", (("venue", "ALPHA"),))] == 1
    assert after[("fixgw_session_up", (("kind", "venue"), ("session", "ALPHA")))] == 1
    assert after[("fixgw_session_up", (("kind", "oms"), ("session", "FIX.4.4:FIXGW->OMS1")))] == 0
    assert after[("fixgw_messages_total", (("direction", "out"), ("session", "ALPHA")))] == 7
    sessions[0]["messages_in"] = 9                       # read at scrape time
    assert scrape(m)[("fixgw_messages_total", (("direction", "in"), ("session", "ALPHA")))] == 9


def test_two_instances_do_not_collide_and_a_failing_source_does_not_break_the_scrape():
    a, b = GatewayMetrics(), GatewayMetrics()
    a.on_order_done("rejected", "dma")
    a.watch_sessions(lambda: 1 / 0)
    assert ("fixgw_orders_total", (("outcome", "rejected"), ("policy", "dma"))) not in scrape(b)
    assert scrape(a)[("fixgw_orders_total", (("outcome", "rejected"), ("policy", "dma")))] == 1


def test_reject_reasons_are_low_cardinality():
    assert reject_reason("no route: no venue up") == "no_route"
    assert reject_reason("duplicate ClOrdID 'x'") == "duplicate"
    assert reject_reason("OrderQty must be positive (got -1)") == "invalid"
    assert reject_reason("venue busy: ALPHA has 5 orders") == "venue_busy"
    assert reject_reason("something new") == "other"


def test_grafana_dashboard_uses_only_exported_metrics():
    dash = json.loads((ROOT / "configs/grafana/fixgw.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert exprs
    names = {"fixgw_session_up", "fixgw_messages_total", "fixgw_orders_total", "fixgw_rejects_total",
             "fixgw_md_requests_rejected_total", "fixgw_probe_rtt_seconds_bucket", "fixgw_order_ack_seconds_bucket",
             "fixgw_router_decision_seconds_bucket", "fixgw_risk_check_seconds_bucket", "fixgw_risk_state",
             "fixgw_kill_switch_tripped", "fixgw_journal_bytes"}
    import re
    used = {n for e in exprs for n in re.findall(r"fixgw_[a-z_]+", e)}
    assert used <= names, used - names
    assert {"fixgw_session_up", "fixgw_orders_total", "fixgw_probe_rtt_seconds_bucket",
            "fixgw_kill_switch_tripped", "fixgw_journal_bytes"} <= used


def test_probe_floor_split_and_heartbeat_jitter_metrics():
    """Issue 12: the venue's part of a probe RTT, our own floor apart, heartbeat jitter."""
    m = GatewayMetrics()
    m.observe_venue_latency("ALPHA", 0.00008)
    m.observe_probe_floor(0.00004)
    m.set_heartbeat_jitter("ALPHA", None)               # not enough heartbeats yet: no sample
    assert ("fixgw_heartbeat_jitter_seconds", (("venue", "ALPHA"),)) not in scrape(m)
    m.set_heartbeat_jitter("ALPHA", 1500.0)
    after = scrape(m)
    assert after[("fixgw_venue_latency_seconds_bucket", (("le", "0.0001"), ("venue", "ALPHA")))] == 1
    assert after[("fixgw_probe_floor_seconds_bucket", (("le", "5e-05"),))] == 1
    assert after[("fixgw_heartbeat_jitter_seconds", (("venue", "ALPHA"),))] == 0.0015
