"""The execution-quality report: figures per policy, Markdown, JSON and PNG charts.

Input per policy (a "run", JSON-able, as ``runner`` produces it):
``{"policy", "meta": {...}, "orders": [OrderRecord.as_dict()], "decisions": [/decisions
dicts], "series": [view.condense() snapshots], "final_status": {/status}}``.
Everything here is a pure function of that input, so a saved report.json can be
re-rendered and the maths is unit-tested with hand-made records.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable

import numpy as np

from gateway.apps.demo.orders import OUTCOMES

PUBLISHED = {  # the example from the literature the issue asks us to compare against
    "scalp": {"latency": "~150", "win_rate": "100%"},
    "sor": {"latency": "1,000-2,000", "win_rate": "60%"},
}

MEASUREMENT_NOTES = [
    "**Signal-to-execution latency**: measured in the demo OMS client process with one monotonic clock "
    "(perf_counter): from the moment the market-data message (W/X from a venue, over that venue's delayed "
    "link) that fired the order entered the client's quickfix callback, to the moment the ExecutionReport "
    "that ends the order (filled, canceled, expired or rejected) entered it. It includes the client's "
    "Python, the gateway (risk + routing + two FIX hops) and the venue's injected one-way latency both ways.",
    "**Injected venue RTT / our software**: the simulator adds a configured one-way delay per venue in "
    "both directions (configs/demo/sim.toml, with ALPHA's schedule); per order we take 2 x (base + mean "
    "jitter) of the venue it went to at that moment (the slowest, for a split order). Signal-to-execution "
    "minus that is what our software (Python client, quickfix on both hops, gateway risk and routing, the "
    "simulator's matching and proxy) adds; the schedule times are approximate by the simulator's start-up.",
    "**Signal-to-send**: the client's own share (parse the market data, run the rule, build and send the order).",
    "**Send-to-first-ack**: order out of the client -> first ExecutionReport back (the order round trip).",
    "**Venues queried per order**: distinct venues the gateway sent child orders to for one OMS order, from "
    "its routing decision log (GET /decisions). All policies *read* every venue's latency and book from "
    "memory; no venue is asked anything per order.",
    "**Routed to a venue showing no depth**: from the scores the router recorded with its decision: a child "
    "order went to a venue whose displayed quantity at the limit was 0 when the router decided (in brackets: "
    "while another venue displayed some). Such an IOC can only fill if liquidity arrives in flight.",
    "**Slippage (ticks)**: quantity-weighted average fill price minus the intended price (the consolidated "
    "touch when the signal fired), in ticks of the symbol, positive = worse for us; over orders with fills. "
    "IOC limit orders at the touch cannot fill worse than the limit, so misses, not slippage, are where "
    "the cost of latency shows.",
    "**Win rate**: orders fully filled at the intended price or better / orders sent.",
    "**Fill rate**: orders with any fill / orders sent; fill ratio (qty) = filled quantity / sent quantity.",
    "**Same seed and order stream**: each policy runs against a fresh simulator with the same seed and a "
    "client with the same RNG seed and rule. The market is live (background flow and latencies run on the "
    "wall clock), so the streams are identical in rule and seed, not order by order.",
]


# ---------------------------------------------------------------- figures

def percentiles(values: Iterable[float], qs: tuple[int, ...] = (50, 90, 99)) -> dict:
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return {"n": 0, **{f"p{q}": None for q in qs}, "mean": None, "max": None}
    out = {"n": int(arr.size)}
    out.update({f"p{q}": float(np.percentile(arr, q)) for q in qs})
    out.update(mean=float(arr.mean()), max=float(arr.max()), min=float(arr.min()))
    return out


def decision_venues(decision: dict) -> list[str]:
    """Distinct venues a decision sent child orders to (0 for a rejected decision)."""
    names: list[str] = []
    children = decision.get("children")
    if isinstance(children, list) and children:
        names = [c.get("venue") if isinstance(c, dict) else str(c) for c in children]
    elif isinstance(decision.get("venues"), list):
        names = [v.get("venue") if isinstance(v, dict) else str(v) for v in decision["venues"]]
    return sorted({n for n in names if n})


def decision_order_id(decision: dict) -> str | None:
    for key in ("cl_ord_id", "oms_cl_ord_id", "order", "client_order_id"):
        val = decision.get(key)
        if isinstance(val, str):
            return val
    intent = decision.get("intent")
    if isinstance(intent, dict):
        return intent.get("cl_ord_id")
    return None


def injected_rtt_us(model: dict, venue: str, t: float) -> float | None:
    """The simulator's injected round trip to ``venue`` at trading time ``t``: 2 x (base + mean jitter)."""
    m = model.get(venue)
    if m is None:
        return None
    base, jitter = m["base_us"], m["jitter_us"]
    for at, b, j in m.get("schedule", []):
        if at <= t:
            base, jitter = b, j
    mean_extra = jitter if m.get("jitter") == "exponential" else 0.0
    return 2 * (base + mean_extra)


def order_injected_rtt(order: dict, decision: dict | None, model: dict) -> float | None:
    """Injected RTT of the slowest venue the order went to (the one its terminal report waits for)."""
    venues = decision_venues(decision) if decision else ([order["venue"]] if order.get("venue") else [])
    rtts = [injected_rtt_us(model, v, order["signal_ts"]) for v in venues]
    rtts = [r for r in rtts if r is not None]
    return max(rtts) if rtts else None


def routed_without_depth(decision: dict) -> tuple[bool, bool] | None:
    """(a child went to a venue showing no depth at the limit, another venue did show some);
    None when the decision recorded no depth for its venues (e.g. DMA does not look)."""
    scores = {r.get("venue"): r for r in decision.get("scores") or [] if isinstance(r, dict)}
    chosen = decision_venues(decision)
    if not chosen or any(not isinstance((scores.get(v) or {}).get("available"), (int, float)) for v in chosen):
        return None
    blind = any(scores[v]["available"] == 0 for v in chosen)
    other = any((r.get("available") or 0) > 0 for v, r in scores.items() if v not in chosen)
    return blind, blind and other


def summarize(run: dict) -> dict:
    """The figures of one policy run."""
    orders = run.get("orders", [])
    decisions = run.get("decisions", [])
    ours = {o["cl_ord_id"] for o in orders}
    by_id = {decision_order_id(d): d for d in decisions}
    matched = [by_id[c] for c in ours if c in by_id]
    # Decisions not tied to an order id still count when they cannot be matched at all.
    used = matched if matched else decisions
    venue_counts = [len(decision_venues(d)) for d in used if decision_venues(d)]
    outcomes = {k: 0 for k in OUTCOMES}
    for o in orders:
        outcomes[o["outcome"]] += 1
    sent = len(orders)
    sent_qty = sum(o["qty"] for o in orders)
    filled_qty = sum(o["filled_qty"] for o in orders)
    with_fills = [o for o in orders if o["filled_qty"] > 0]
    slip_qty = sum(o["filled_qty"] for o in with_fills)
    slip_w = (sum(o["slippage_ticks"] * o["filled_qty"] for o in with_fills) / slip_qty) if slip_qty else None
    model = run.get("meta", {}).get("latency_model") or {}
    rtts = {o["cl_ord_id"]: o["injected_rtt_us"] if "injected_rtt_us" in o
            else order_injected_rtt(o, by_id.get(o["cl_ord_id"]), model) for o in orders}
    overhead = [o["signal_to_exec_us"] - rtts[o["cl_ord_id"]] for o in orders
                if o["signal_to_exec_us"] is not None and rtts[o["cl_ord_id"]] is not None]
    blind = [b for b in (routed_without_depth(d) for d in used) if b is not None]
    blind_misses = sum(1 for o in orders if o["outcome"] == "missed" and o["cl_ord_id"] in by_id
                       and (routed_without_depth(by_id[o["cl_ord_id"]]) or (False, False))[0])
    accounted = outcomes["filled"] + outcomes["partial_then_done"] + outcomes["missed"] + outcomes["rejected"]
    return {
        "policy": run.get("policy"),
        "orders_sent": sent,
        "qty_sent": sent_qty,
        "qty_filled": filled_qty,
        "outcomes": outcomes,
        "accounted": accounted == sent and outcomes["unresolved"] == 0,
        "cum_qty_mismatches": sum(1 for o in orders if o.get("cum_qty") is not None
                                  and abs(o["cum_qty"] - o["filled_qty"]) > 1e-9),
        "fill_rate": (outcomes["filled"] + outcomes["partial_then_done"]) / sent if sent else None,
        "full_fill_rate": outcomes["filled"] / sent if sent else None,
        "fill_ratio_qty": filled_qty / sent_qty if sent_qty else None,
        "win_rate": sum(1 for o in orders if o["win"]) / sent if sent else None,
        "slippage_ticks": {"weighted_mean": slip_w,
                           **percentiles([o["slippage_ticks"] for o in with_fills], (50, 95))},
        "signal_to_exec_us": percentiles(o["signal_to_exec_us"] for o in orders),
        "signal_to_send_us": percentiles(o["signal_to_send_us"] for o in orders),
        "injected_rtt_us": percentiles(v for v in rtts.values() if v is not None),
        "overhead_us": percentiles(overhead),
        "send_to_ack_us": percentiles(o["send_to_ack_us"] for o in orders),
        "decision_us": percentiles(d.get("decision_us") for d in used if isinstance(d.get("decision_us"), (int, float))),
        "venues_per_order": {"mean": float(np.mean(venue_counts)) if venue_counts else None,
                             "max": max(venue_counts) if venue_counts else None,
                             "decisions": len(used), "matched_to_orders": len(matched)},
        "routed_without_depth": sum(b for b, _ in blind) if blind else None,
        "routed_without_depth_while_other_had_depth": sum(o for _, o in blind) if blind else None,
        "misses_routed_without_depth": blind_misses,
        "per_repeat": per_repeat(orders),
        "by_venue": by_venue(orders, run.get("final_status") or {}),
        "gateway": gateway_totals(run.get("final_status") or {}),
        "signals": run.get("meta", {}).get("signals", {}),
    }


def per_repeat(orders: list[dict]) -> list[dict]:
    """The headline figures of each repeat (``--repeat``), to show the run-to-run spread."""
    groups: dict[int, list[dict]] = {}
    for o in orders:
        groups.setdefault(o.get("repeat", 1), []).append(o)
    if len(groups) < 2:
        return []
    out = []
    for k, group in sorted(groups.items()):
        n = len(group)
        out.append({"repeat": k, "orders": n,
                    "signal_to_exec_p50_us": percentiles(o["signal_to_exec_us"] for o in group)["p50"],
                    "win_rate": sum(1 for o in group if o["win"]) / n,
                    "fill_rate": sum(1 for o in group if o["filled_qty"] > 0) / n})
    return out


def by_venue(orders: list[dict], status: dict) -> dict:
    out: dict[str, dict] = {}
    total = len(orders) or 1
    for o in orders:
        v = out.setdefault(o.get("venue") or "(none)", {k: 0 for k in OUTCOMES} | {"orders": 0, "_lat": []})
        v["orders"] += 1
        v[o["outcome"]] += 1
        v["_lat"].append(o["signal_to_exec_us"])
    probes = {v.get("name"): ((v.get("market") or {}).get("latency") or {}) for v in status.get("venues", [])}
    for name, v in out.items():
        lat = v.pop("_lat")
        v["share"] = v["orders"] / total
        v["fill_rate"] = (v["filled"] + v["partial_then_done"]) / v["orders"]
        v["signal_to_exec_p50_us"] = percentiles(lat)["p50"]
        v["probe_p50_us_at_end"] = probes.get(name, {}).get("p50_us")
    return out


def gateway_totals(status: dict) -> dict:
    risk = status.get("risk") or {}
    return {"orders": status.get("orders") or {}, "risk_state": risk.get("state"),
            "realized_pnl": risk.get("realized_pnl"), "total_pnl": risk.get("total_pnl"),
            "routing": status.get("routing") or {}}


# ---------------------------------------------------------------- rendering

def _f(v, fmt: str = "{:,.0f}", none: str = "n/a") -> str:
    return none if v is None else fmt.format(v)


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def comparison_rows(summaries: list[dict]) -> list[tuple[str, list[str], str, str]]:
    """(metric, our value per policy, published scalp, published SOR)."""
    def row(name, fn, pub_scalp="", pub_sor=""):
        return name, [fn(s) for s in summaries], pub_scalp, pub_sor
    return [
        row("Orders sent", lambda s: str(s["orders_sent"])),
        row("Signal-to-execution p50 (us)", lambda s: _f(s["signal_to_exec_us"]["p50"]),
            PUBLISHED["scalp"]["latency"], PUBLISHED["sor"]["latency"]),
        row("Signal-to-execution p90 (us)", lambda s: _f(s["signal_to_exec_us"]["p90"])),
        row("Signal-to-execution p99 (us)", lambda s: _f(s["signal_to_exec_us"]["p99"])),
        row("  of which simulated network: injected venue RTT p50 (us)", lambda s: _f(s["injected_rtt_us"]["p50"])),
        row("  of which our software: signal-to-exec minus injected RTT p50 (us)",
            lambda s: _f(s["overhead_us"]["p50"])),
        row("  of which the client, signal-to-send p50 (us)", lambda s: _f(s["signal_to_send_us"]["p50"])),
        row("  of which router decision p50 (us)", lambda s: _f(s["decision_us"]["p50"], "{:,.1f}")),
        row("Venues queried per order (mean / max)",
            lambda s: f"{_f(s['venues_per_order']['mean'], '{:.2f}')} / {_f(s['venues_per_order']['max'], '{}')}",
            "1", ">1"),
        row("Orders routed to a venue showing no depth at the limit (another venue had some)",
            lambda s: "n/a (not recorded)" if s["routed_without_depth"] is None else
            f"{s['routed_without_depth']} ({s['routed_without_depth_while_other_had_depth']})"),
        row("Slippage (ticks, qty-weighted mean, + = worse)",
            lambda s: _f(s["slippage_ticks"]["weighted_mean"], "{:+.2f}")),
        row("Win rate (filled at intended price)", lambda s: _pct(s["win_rate"]),
            PUBLISHED["scalp"]["win_rate"], PUBLISHED["sor"]["win_rate"]),
        row("Fill rate (orders with a fill)", lambda s: _pct(s["fill_rate"])),
        row("Fill ratio (quantity)", lambda s: _pct(s["fill_ratio_qty"])),
        row("Filled / partial / missed / rejected / unresolved",
            lambda s: " / ".join(str(s["outcomes"][k]) for k in OUTCOMES)),
    ]


def repeat_rows(summaries: list[dict]) -> list[tuple[str, list[str], str, str]]:
    """Rows with each repeat's value, when the run had repeats."""
    if not any(s.get("per_repeat") for s in summaries):
        return []
    def row(name, key, fmt):
        return (name, [" / ".join(fmt(r[key]) for r in s.get("per_repeat") or []) or "-" for s in summaries], "", "")
    return [row("Signal-to-execution p50 per repeat (us)", "signal_to_exec_p50_us", lambda v: _f(v)),
            row("Win rate per repeat", "win_rate", _pct),
            row("Fill rate per repeat", "fill_rate", _pct)]


def comparison_table(summaries: list[dict]) -> str:
    heads = [s["policy"] for s in summaries]
    lines = ["| Metric | " + " | ".join(heads) + " | Published: scalp-optimized | Published: standard SOR |",
             "|---|" + "---:|" * len(heads) + "---:|---:|"]
    for name, vals, pub_a, pub_b in comparison_rows(summaries) + repeat_rows(summaries):
        lines.append(f"| {name} | " + " | ".join(vals) + f" | {pub_a} | {pub_b} |")
    return "\n".join(lines)


def venue_table(summary: dict) -> str:
    lines = ["| Venue | Orders | Share | Filled | Partial | Missed | Rejected | Fill rate | "
             "Signal-to-exec p50 (us) | Probe RTT p50 at end (us) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, v in sorted(summary["by_venue"].items()):
        lines.append(f"| {name} | {v['orders']} | {_pct(v['share'])} | {v['filled']} | {v['partial_then_done']} | "
                     f"{v['missed']} | {v['rejected']} | {_pct(v['fill_rate'])} | "
                     f"{_f(v['signal_to_exec_p50_us'])} | {_f(v['probe_p50_us_at_end'])} |")
    return "\n".join(lines)


def observations(summaries: list[dict]) -> list[str]:
    """A few plain sentences read off the figures (no judgement the numbers do not carry)."""
    runs = [s for s in summaries if s["orders_sent"]]
    if not runs:
        return ["No orders were sent: nothing to compare."]
    out = []
    def best(label, get, pick=max, fmt=_pct):
        vals = [s for s in runs if get(s) is not None]
        if vals:
            top = pick(vals, key=get)
            out.append(f"{label}: best `{top['policy']}` ({fmt(get(top))})"
                       + "".join(f", `{s['policy']}` {fmt(get(s))}" for s in vals if s is not top) + ".")
    best("Win rate", lambda s: s["win_rate"])
    best("Fill rate", lambda s: s["fill_rate"])
    best("Signal-to-execution p50", lambda s: s["signal_to_exec_us"]["p50"], min, lambda v: f"{v:,.0f} us")
    for s in runs:
        if s.get("routed_without_depth"):
            out.append(f"`{s['policy']}` sent {s['routed_without_depth']} of {s['orders_sent']} orders to a venue "
                       f"that showed no depth at the limit when it decided ({s['routed_without_depth_while_other_had_depth']}"
                       f" while another venue showed some); {s['misses_routed_without_depth']} of its "
                       f"{s['outcomes']['missed']} misses are among them.")
    over = [s["overhead_us"]["p50"] for s in runs if s["overhead_us"]["p50"] is not None]
    if over:
        out.append(f"Against the published ~150 us: our software alone (signal-to-execution minus the injected "
                   f"venue round trip) takes {min(over):,.0f}-{max(over):,.0f} us at the median here: a Python client, "
                   f"a Python gateway and a Python venue simulator, each hop through quickfix, on a shared 2-core VM.")
    return out


def render_markdown(report: dict) -> str:
    meta = report["meta"]
    sums = report["summaries"]
    out = ["# fixgw demo: execution quality by routing policy",
           "",
           f"Run {meta.get('started_utc', '?')}, {meta.get('duration_s', '?')} s of trading per policy, "
           f"sim seed {meta.get('sim_seed', '?')}, client seed {meta.get('client_seed', '?')}, "
           f"symbols {', '.join(meta.get('symbols', []))}"
           + (f", {meta['repeats']} interleaved repeats per policy (figures over all of them; live view "
              f"series and gateway totals from one repeat)" if (meta.get("repeats") or 1) > 1 else "")
           + f". Run dir: `{meta.get('run_dir', '')}`.",
           "",
           *[f"**FAILED: {f}** (the figures cover what ran)\n" for f in meta.get("failures") or []],
           comparison_table(sums),
           "",
           "The published columns are the example figures quoted by the issue (a scalp-optimized router "
           "against a standard SOR); ours are measured on this machine over loopback with simulated venue "
           "latency, with a Python client and gateway.",
           "",
           "## Observations", ""]
    out += [f"- {o}" for o in observations(sums)]
    out += ["", "## How each figure is measured", ""]
    out += [f"- {n}" for n in MEASUREMENT_NOTES]
    dma = [r for r in report.get("runs", []) if r.get("policy") == "dma"]
    if dma:
        venue = (dma[0].get("meta", {}).get("routing") or {}).get("default_venue")
        out += ["", f"The `dma` run sends every order to `{venue}` (`[routing].default_venue` of the demo's "
                    f"gateway config): a static route, whatever that venue's latency or book."]
    for s in sums:
        g = s["gateway"]
        out += ["", f"## Policy `{s['policy']}`", "", venue_table(s), "",
                f"Gateway totals: orders {json.dumps(g['orders'])}; risk state {g['risk_state']}; "
                f"realized PnL {_f(g['realized_pnl'], '{:,.2f}')}; total PnL {_f(g['total_pnl'], '{:,.2f}')}. "
                f"Signal rule: {json.dumps(s['signals'])}. "
                f"Orders accounted for (sent == filled + partial + missed + rejected): "
                f"{'yes' if s['accounted'] else 'NO'}; final CumQty(14) different from the sum of our fills: "
                f"{s['cum_qty_mismatches']} orders."]
    charts = report.get("charts") or {}
    out += ["", "## Charts", ""]
    if charts.get("files"):
        out += [f"![{Path(p).stem}]({Path(p).name})" for p in charts["files"]]
    out.append(charts.get("note", ""))
    return "\n".join(out).rstrip() + "\n"


def merge_runs(runs: list[dict]) -> list[dict]:
    """Runs of the same policy (``--repeat``) as one run per policy, in first-seen order.

    Order ids get a ``#k`` suffix per repeat (each run starts at DEMO-000001); each order
    keeps its injected RTT computed with its own run's latency model; status series and
    final status are those of the first and last repeat.
    """
    groups: dict[str, list[dict]] = {}
    for run in runs:
        groups.setdefault(run["policy"], []).append(run)
    return [group[0] if len(group) == 1 else _merge(policy, group) for policy, group in groups.items()]


def _merge(policy: str, group: list[dict]) -> dict:
    orders, decisions, signals = [], [], {}
    for k, run in enumerate(group, start=1):
        tag = f"#{k}"
        model = run.get("meta", {}).get("latency_model") or {}
        by_id = {decision_order_id(d): d for d in run.get("decisions", [])}
        for o in run.get("orders", []):
            rtt = order_injected_rtt(o, by_id.get(o["cl_ord_id"]), model)
            orders.append(dict(o, cl_ord_id=o["cl_ord_id"] + tag, repeat=k, injected_rtt_us=rtt))
        for d in run.get("decisions", []):
            decisions.append(dict(d, cl_ord_id=(decision_order_id(d) or "?") + tag))
        for name, n in (run.get("meta", {}).get("signals") or {}).items():
            signals[name] = signals.get(name, 0) + n
    meta = dict(group[0].get("meta", {}), repeats=len(group), signals=signals,
                repeat_meta=[r.get("meta", {}) for r in group])
    return {"policy": policy, "meta": meta, "orders": orders, "decisions": decisions,
            "series": group[0].get("series", []), "final_status": group[-1].get("final_status") or {}}


def build_report(runs: list[dict], meta: dict) -> dict:
    merged = merge_runs(runs)
    return {"meta": meta, "summaries": [summarize(r) for r in merged], "runs": merged}


def write_report(report: dict, out_dir: Path) -> dict[str, Path]:
    """report.json, report.md and the charts in ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    from gateway.apps.demo import charts  # matplotlib is optional; charts says so itself
    report["charts"] = charts.write_charts(report, out_dir)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md"}
    paths["json"].write_text(json.dumps(report, indent=1, default=_json_default))
    paths["md"].write_text(render_markdown(report))
    return paths


def _json_default(obj):
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON-able: {type(obj).__name__}")
