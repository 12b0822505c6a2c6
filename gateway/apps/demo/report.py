"""The demo report: round trips per routing policy, in the published example's shape.

Input per run (JSON-able, as ``runner.collect`` makes it): ``{"policy", "meta": {repeat,
competitors, kill_switch, ...}, "trips": [RoundTripBook.trip_dict()], "stats", "orders":
[driver order dicts], "decisions": [GET /decisions], "final_status": {GET /status}}``.
Everything here is a pure function of that input (unit-tested with hand-made runs), so a
saved report.json can be re-rendered.

Definitions (also printed in the report):
- round trip: an entry that filled (any quantity) and its exit; ``missed``: an entry IOC
  that filled nothing;
- win rate = profitable round trips / round trips (gross price PnL in ticks > 0);
- PnL per round trip: money (price x qty x multiplier - fees) over round trips;
- signal-to-execution: market data that fired the entry entered the client -> first fill
  report of the entry, on the client's clock (round trips only);
- signal-to-report: the same for every entry, filled or missed (a missed IOC's end is the
  same path: client, gateway, venue, gateway, client): about twice the sample;
- entry hops (client clock, native engine): the triggering bytes read -> signal (parse,
  book, recording) -> order handed to the socket (decide, build, send) -> the first report's
  bytes read (outside the client: kernel, gateway, venue, gateway) -> report handled;
- router share: entry orders the gateway sent to the fastest venue (its probe RTT) among
  those that showed quantity at the limit when it decided, from its decision log.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable

PUBLISHED = {"scalp": {"signal_to_exec_us": "~150", "win_rate": "100%"},
             "sor": {"signal_to_exec_us": "1,000-2,000", "win_rate": "~60%"}}
TERMINAL = {"2", "3", "4", "8", "C"}
FIRST_TRADES = 8


# ---------------------------------------------------------------- figures

def pct(values: Iterable[float | None], q: float) -> float | None:
    arr = sorted(v for v in values if v is not None and not math.isnan(v))
    if not arr:
        return None
    k = (len(arr) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return arr[lo] + (arr[hi] - arr[lo]) * (k - lo)


def trip_figures(trips: list[dict]) -> dict:
    """The headline figures of a set of round trips (one run, one repeat or a whole policy)."""
    closed = [t for t in trips if t.get("state") == "closed"]
    traded = [t for t in closed if t.get("outcome") != "missed_entry"]
    wins = sum(1 for t in traded if t.get("outcome") == "profit")
    pnl = sum(t.get("pnl_money") or 0.0 for t in traded)
    s2e = [t.get("signal_to_exec_us") for t in traded]
    s2r = [t.get("signal_to_exec_us") for t in closed]
    return {
        "round_trips": len(traded),
        "missed": sum(1 for t in closed if t.get("outcome") == "missed_entry"),
        "not_closed": len(trips) - len(closed),
        "win_rate": round(wins / len(traded), 4) if traded else None,
        "wins": wins,
        "losses": sum(1 for t in traded if t.get("outcome") == "loss_price_moved"),
        "scratches": sum(1 for t in traded if t.get("outcome") == "scratch"),
        "pnl_total": round(pnl, 6),
        "pnl_per_round_trip": round(pnl / len(traded), 6) if traded else None,
        "pnl_ticks_per_round_trip": round(sum(t.get("pnl_ticks") or 0 for t in traded) / len(traded), 4)
        if traded else None,
        "signal_to_exec_p50_us": _r(pct(s2e, 50)),
        "signal_to_exec_p90_us": _r(pct(s2e, 90)),
        "signal_to_exec_p99_us": _r(pct(s2e, 99)),
        "signal_to_report_n": sum(1 for x in s2r if x is not None),
        "signal_to_report_p50_us": _r(pct(s2r, 50)),
        "signal_to_report_p90_us": _r(pct(s2r, 90)),
        "slippage_ticks_mean": _r(_mean(t.get("slippage_ticks") for t in traded), 3),
        "exit_reasons": _count(t.get("exit_reason") for t in traded),
    }


# (name, from, to): the hops of an entry order on the client's clock (``order_dict`` fields)
HOPS = (("md_to_signal", "md_read_at", "signal_at"),          # client: parse, books, recording tap
        ("signal_to_wire", "signal_at", "written_at"),        # client: strategy, NOS built, sent
        ("outside_client", "written_at", "report_read_at"),   # kernel, gateway, venue, gateway
        ("report_in", "report_read_at", "first_report_at"),   # client: the first report parsed
        ("md_to_report", "md_read_at", "first_report_at"))


def entry_hops(orders: list[dict]) -> dict:
    """Per hop of the entry orders (filled or not): n, p50 and p90 in microseconds."""
    entries = [o for o in orders if str(o.get("reason", "")).startswith("entry")]
    out = {}
    for name, a, b in HOPS:
        xs = [(o[b] - o[a]) * 1e6 for o in entries if o.get(a) is not None and o.get(b) is not None]
        out[name] = {"n": len(xs), "p50_us": _r(pct(xs, 50)), "p90_us": _r(pct(xs, 90))}
    return out


def accounting(orders: list[dict]) -> dict:
    """Every order the client sent, by how it ended; ``accounted`` when none is left open."""
    by_status: dict[str, int] = {}
    for o in orders:
        key = {"2": "filled", "4": "canceled", "8": "rejected", "C": "expired", "3": "done_for_day"}.get(
            o.get("status"), "open" if not o.get("done") else str(o.get("status")))
        by_status[key] = by_status.get(key, 0) + 1
    open_ = sum(1 for o in orders if not o.get("done"))
    return {"orders": len(orders), "by_status": by_status, "open": open_, "accounted": open_ == 0,
            "partially_filled": sum(1 for o in orders if 0 < (o.get("filled_qty") or 0) < o.get("qty", 0))}


def fastest_showing(decision: dict) -> str | None:
    """The venue with the lowest latency among those that showed quantity at the limit."""
    rows = [r for r in decision.get("scores") or [] if isinstance(r, dict) and (r.get("available") or 0) > 0
            and r.get("up", True) and r.get("latency_us") is not None]
    return min(rows, key=lambda r: r["latency_us"])["venue"] if rows else None


def router_share(decisions: list[dict], entry_ids: set[str]) -> dict:
    """Share of entry orders the gateway sent to the fastest venue showing the price."""
    considered = to_fastest = no_depth = 0
    venues_per_order: list[int] = []
    for d in decisions:
        if d.get("cl_ord_id") not in entry_ids or d.get("rejected"):
            continue
        chosen = sorted({c.get("venue") for c in d.get("children") or [] if c.get("venue")})
        venues_per_order.append(len(chosen))
        fast = fastest_showing(d)
        if fast is None:
            no_depth += 1
            continue
        considered += 1
        to_fastest += chosen == [fast]
    return {"entries_decided": len(venues_per_order), "with_depth_somewhere": considered,
            "to_fastest_showing_price": to_fastest,
            "share": round(to_fastest / considered, 4) if considered else None,
            "no_venue_showed_depth": no_depth,
            "venues_per_order_mean": _r(_mean(venues_per_order), 2), "venues_per_order_max": max(venues_per_order,
                                                                                                  default=None)}


def entry_venues(decisions: list[dict]) -> dict[str, list[str]]:
    return {d.get("cl_ord_id"): sorted({c.get("venue") for c in d.get("children") or [] if c.get("venue")})
            for d in decisions}


def summarize(policy: str, runs: list[dict]) -> dict:
    """One policy over its repeats: the aggregate, each repeat, accounting, router share, kill switch."""
    trips = [t for r in runs for t in r.get("trips", [])]
    orders = [o for r in runs for o in r.get("orders", [])]
    out = {"policy": policy, **trip_figures(trips)}
    out["repeats"] = [{"repeat": r.get("meta", {}).get("repeat", i + 1), **trip_figures(r.get("trips", []))}
                      for i, r in enumerate(runs)]
    win_rates = [x["win_rate"] for x in out["repeats"] if x["win_rate"] is not None]
    pnls = [x["pnl_per_round_trip"] for x in out["repeats"] if x["pnl_per_round_trip"] is not None]
    out["spread"] = {"win_rate": [min(win_rates), max(win_rates)] if win_rates else None,
                     "pnl_per_round_trip": [min(pnls), max(pnls)] if pnls else None}
    out["accounting"] = accounting(orders)
    out["entry_hops"] = entry_hops(orders)
    out["accounting"]["stuck_trips"] = sum(1 for t in trips if t.get("state") == "stuck")
    shares = []
    for r in runs:
        ids = {o["cl_ord_id"] for o in r.get("orders", []) if str(o.get("reason", "")).startswith("entry")}
        shares.append(router_share(r.get("decisions", []), ids))
    considered = sum(s["with_depth_somewhere"] for s in shares)
    out["router"] = {"to_fastest_showing_price": sum(s["to_fastest_showing_price"] for s in shares),
                     "with_depth_somewhere": considered,
                     "share": round(sum(s["to_fastest_showing_price"] for s in shares) / considered, 4)
                     if considered else None,
                     "no_venue_showed_depth": sum(s["no_venue_showed_depth"] for s in shares),
                     "venues_per_order_mean": _r(_mean(s["venues_per_order_mean"] for s in shares), 2),
                     "venues_per_order_max": max((s["venues_per_order_max"] or 0 for s in shares), default=None)}
    out["kill_switch"] = [{"repeat": r.get("meta", {}).get("repeat"), **(r.get("meta", {}).get("kill_switch") or {}),
                           "state": ((r.get("final_status") or {}).get("risk") or {}).get("state"),
                           "trip_reason": ((r.get("final_status") or {}).get("risk") or {}).get("trip_reason")}
                          for r in runs]
    return out


def group(runs: list[dict]) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """(main runs by policy, control runs by policy), policies in first-seen order."""
    main: dict[str, list[dict]] = {}
    control: dict[str, list[dict]] = {}
    for r in runs:
        (main if r.get("meta", {}).get("competitors", True) else control).setdefault(r["policy"], []).append(r)
    return main, control


def build_report(runs: list[dict], meta: dict) -> dict:
    main, control = group(runs)
    report = {"meta": meta,
              "policies": {p: summarize(p, rs) for p, rs in main.items()},
              "control": {"policies": {p: summarize(p, rs) for p, rs in control.items()}},
              "runs": runs}
    report["first_trades"] = {p: first_trades(p, rs[0]) for p, rs in main.items() if rs}
    return report


def first_trades(policy: str, run: dict, n: int = FIRST_TRADES) -> list[dict]:
    venues = entry_venues(run.get("decisions", []))
    rows = []
    by_order = {o["cl_ord_id"]: o for o in run.get("orders", [])}
    for t in run.get("trips", [])[:n]:
        entry_ids = t.get("entry_ids") or []
        queried = sorted({v for c in entry_ids for v in venues.get(c, [])}) or t.get("venues") or []
        rows.append({"trade_id": t.get("trip_id"), "system_type": policy,
                     "signal_to_exec_us": t.get("signal_to_exec_us") if t.get("outcome") != "missed_entry" else None,
                     "venues_queried": queried, "slippage_ticks": t.get("slippage_ticks"),
                     "outcome": t.get("outcome") or t.get("state"), "pnl_ticks": t.get("pnl_ticks"),
                     "entry_status": [by_order.get(c, {}).get("status") for c in entry_ids]})
    return rows


# ---------------------------------------------------------------- rendering

def _f(v, fmt: str = "{:,.0f}", none: str = "n/a") -> str:
    return none if v is None else fmt.format(v)


def _p(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


OUTCOME_TEXT = {"profit": "Profit", "loss_price_moved": "Loss (price moved)", "missed_entry": "Missed",
                "scratch": "Scratch (0 ticks)"}


def trades_table(rows: list[dict]) -> str:
    lines = ["| Trade ID | System Type | Signal-to-Execution (us) | Venue(s) Queried | Slippage (ticks) | Outcome |",
             "|---|---|---:|---|---:|---|"]
    for r in rows:
        lines.append(f"| {r['trade_id']} | {r['system_type']} | {_f(r['signal_to_exec_us'])} | "
                     f"{', '.join(r['venues_queried']) or '-'} | {_f(r['slippage_ticks'], '{:+.1f}', '-')} | "
                     f"{OUTCOME_TEXT.get(r['outcome'], r['outcome'])} |")
    return "\n".join(lines)


def aggregate_table(policies: dict[str, dict], published: bool = True) -> str:
    names = list(policies)
    head = "| Metric | " + " | ".join(names) + (" | Published: scalp | Published: SOR |" if published else " |")
    lines = [head, "|---|" + "---:|" * len(names) + ("---:|---:|" if published else "")]

    def row(label, fn, a="", b=""):
        lines.append(f"| {label} | " + " | ".join(fn(policies[p]) for p in names)
                     + (f" | {a} | {b} |" if published else " |"))
    row("Round trips", lambda s: str(s["round_trips"]))
    row("Missed entries", lambda s: str(s["missed"]))
    row("Win rate (profitable / round trips)", lambda s: _p(s["win_rate"]),
        PUBLISHED["scalp"]["win_rate"], PUBLISHED["sor"]["win_rate"])
    row("Wins / losses / scratches", lambda s: f"{s['wins']} / {s['losses']} / {s['scratches']}")
    row("PnL per round trip (money)", lambda s: _f(s["pnl_per_round_trip"], "{:+,.2f}"))
    row("PnL per round trip (ticks)", lambda s: _f(s["pnl_ticks_per_round_trip"], "{:+.2f}"))
    row("PnL total (money)", lambda s: _f(s["pnl_total"], "{:+,.2f}"))
    row("Signal-to-execution p50 (us)", lambda s: _f(s["signal_to_exec_p50_us"]),
        PUBLISHED["scalp"]["signal_to_exec_us"], PUBLISHED["sor"]["signal_to_exec_us"])
    row("Signal-to-execution p90 / p99 (us)",
        lambda s: f"{_f(s['signal_to_exec_p90_us'])} / {_f(s['signal_to_exec_p99_us'])}")
    row("Signal-to-report p50 / p90, every entry, filled or missed (us; n)",
        lambda s: f"{_f(s.get('signal_to_report_p50_us'))} / {_f(s.get('signal_to_report_p90_us'))} "
                  f"({s.get('signal_to_report_n', 0)})")
    row("Entry hops p50 (us): md read -> signal / -> on the wire / outside the client / report in",
        lambda s: hops_text(s.get("entry_hops") or {}))
    row("Slippage (ticks, mean, + = worse)", lambda s: _f(s["slippage_ticks_mean"], "{:+.2f}"))
    row("Win rate per repeat", lambda s: " / ".join(_p(r["win_rate"]) for r in s["repeats"]))
    row("PnL per round trip per repeat", lambda s: " / ".join(_f(r["pnl_per_round_trip"], "{:+,.1f}")
                                                                for r in s["repeats"]))
    row("Signal-to-exec p50 per repeat (us)", lambda s: " / ".join(_f(r["signal_to_exec_p50_us"])
                                                                     for r in s["repeats"]))
    row("Venues per entry (mean / max)", lambda s: f"{_f(s['router']['venues_per_order_mean'], '{:.2f}')} / "
                                                   f"{_f(s['router']['venues_per_order_max'], '{}')}", "1", ">1")
    row("Entries routed to the fastest venue showing the price",
        lambda s: f"{_p(s['router']['share'])} ({s['router']['to_fastest_showing_price']}/"
                  f"{s['router']['with_depth_somewhere']})")
    row("Orders sent / open at the end", lambda s: f"{s['accounting']['orders']} / {s['accounting']['open']}")
    row("Kill switch (final state per repeat)", lambda s: " / ".join(str(k.get("state")) for k in s["kill_switch"]))
    return "\n".join(lines)


def differences(policies: dict[str, dict], control: dict[str, dict]) -> list[str]:
    """Plain statements: ours against the published example and the issue's test."""
    out = []
    s, b, d = policies.get("scalp"), policies.get("best_price"), policies.get("dma")
    if s:
        out.append(f"Published scalp-optimized: ~150 us signal-to-execution, 100% win rate. Ours: "
                   f"{_f(s['signal_to_exec_p50_us'])} us at the median and {_p(s['win_rate'])} over "
                   f"{s['round_trips']} round trips ({s['missed']} missed entries). Our path is a Python client, "
                   f"a Python gateway and simulated venues with 100 us - 1.5 ms of injected one-way latency, so "
                   f"the microseconds cannot match; a 100% win rate would need every stale quote to be ours.")
    if b:
        out.append(f"Published standard SOR: 1-2 ms, ~60%. Our best_price: {_f(b['signal_to_exec_p50_us'])} us, "
                   f"{_p(b['win_rate'])}.")
    if s and b and s["win_rate"] is not None and b["win_rate"] is not None:
        better = s["win_rate"] > b["win_rate"] and (s["pnl_per_round_trip"] or 0) > (b["pnl_per_round_trip"] or 0)
        worst_s = min((r["win_rate"] for r in s["repeats"] if r["win_rate"] is not None), default=None)
        best_b = max((r["win_rate"] for r in b["repeats"] if r["win_rate"] is not None), default=None)
        out.append(("scalp beats best_price on win rate and PnL per round trip" if better else
                    "scalp does NOT beat best_price on both win rate and PnL per round trip")
                   + (f"; worst scalp repeat {_p(worst_s)} vs best best_price repeat {_p(best_b)}"
                      f" ({'separated' if worst_s > best_b else 'overlapping'})."
                      if worst_s is not None and best_b is not None else "."))
    if d:
        out.append(f"dma (a fixed route to one venue): {_p(d['win_rate'])} over {d['round_trips']} round trips, "
                   f"{d['missed']} missed.")
    if control and s and "scalp" in control and b and "best_price" in control:
        cs, cb = control["scalp"], control["best_price"]
        if None not in (cs["win_rate"], cb["win_rate"], s["win_rate"], b["win_rate"]):
            out.append(f"Competitors off (appendix): scalp {_p(cs['win_rate'])} vs best_price {_p(cb['win_rate'])}; "
                       f"gap {100 * (cs['win_rate'] - cb['win_rate']):+.1f} points against "
                       f"{100 * (s['win_rate'] - b['win_rate']):+.1f} with competitors on.")
    return out


DEFINITIONS = [
    "**Round trip**: an entry IOC that filled (any quantity) and its exit; **missed**: an entry that filled nothing.",
    "**Win rate** = profitable round trips / round trips (gross price PnL in ticks > 0); scratches count as not won.",
    "**PnL**: money = price difference x quantity x multiplier - fees, per symbol's own units (BTCUSD ticks weigh "
    "most); also in ticks per unit.",
    "**Signal-to-execution**: from the moment the market data that fired the entry entered the client (its "
    "asyncio loop, one monotonic clock) to the first fill report of the entry; round trips only.",
    "**Venue(s) queried**: the venues the gateway sent the entry's child orders to (its decision log); no venue "
    "is asked anything before the order: books and latencies are read from memory.",
    "**Slippage**: average entry price against the touch at the signal, in ticks, + = worse.",
    "**Router share**: entries the gateway sent to the venue with the lowest probe RTT among those that showed "
    "quantity at the limit when it decided (GET /decisions scores).",
    "**Accounting**: every order the client sent ends with a terminal ExecutionReport (filled, canceled, "
    "rejected, expired) or a synthetic reject when it could not be sent; 'open at the end' must be 0.",
]


def render_markdown(report: dict) -> str:
    meta = report["meta"]
    pols = report["policies"]
    ctrl = report["control"]["policies"]
    out = ["# fixgw demo: round-trip scalping by routing policy", "",
           f"Run {meta.get('started_utc', '?')}: {meta.get('duration_s', '?')} s of trading per run, "
           f"{meta.get('repeats', 1)} interleaved repeat(s) per policy on the same seeds "
           f"(market seed {meta.get('market_seed', '?')}, venue seeds {meta.get('sim_seed', '?')}), "
           f"symbols {', '.join(meta.get('symbols', []))}, signal `{meta.get('signal', '?')}`. "
           f"Run dir: `{meta.get('run_dir', '')}`.", ""]
    out += [f"**FAILED: {f}** (the figures cover what ran)\n" for f in meta.get("failures") or []]
    out += ["## First trades of each policy", ""]
    rows = [r for p in pols for r in report.get("first_trades", {}).get(p, [])]
    out += [trades_table(rows), "", "## Aggregate per policy (competitors on)", ""]
    out += [aggregate_table(pols) if pols else "(no run)", "",
            "The published columns are the example the issue quotes (a scalp-optimized router against a "
            "standard SOR).", "", "## Where ours differ", ""]
    out += [f"- {x}" for x in differences(pols, ctrl)]
    out += ["", "## Kill switch", ""]
    for p, s in pols.items():
        for k in s["kill_switch"]:
            out.append(f"- `{p}` repeat {k.get('repeat')}: loss > {k.get('loss_threshold')} within "
                       f"{k.get('loss_window_s')} s -> final state {k.get('state')}"
                       + (f" ({k['trip_reason']})" if k.get("trip_reason") else ""))
    out += ["", "## Definitions", ""] + [f"- {x}" for x in DEFINITIONS]
    if ctrl:
        out += ["", "## Appendix: control, competitors switched off", "",
                "The same policies, seeds and durations with the simulator's latency-sensitive competitors off "
                "(`[market] competitors_enabled = false`); price formation with a lead venue stays on.", "",
                aggregate_table(ctrl, published=False)]
    return "\n".join(out).rstrip() + "\n"


def hops_text(hops: dict) -> str:
    """The entry hops' medians, in order (``entry_hops``)."""
    names = ("md_to_signal", "signal_to_wire", "outside_client", "report_in")
    return " / ".join(_f((hops.get(n) or {}).get("p50_us")) for n in names)


def comparison_table(report: dict) -> str:
    """A short table for the terminal (80 columns): round trips and their signal-to-execution
    p50, every entry's signal-to-report p50 (filled or missed: the larger sample, its count
    in brackets), then the entry hops on the client's clock."""
    lines = [f"{'':8} {'policy':<10} {'trips':>5} {'missed':>6} {'win':>6} {'PnL/trip':>9} {'s2e p50':>8} "
             f"{'s2r p50 (n)':>13}"]
    hops = []
    for label, pols in (("", report["policies"]), ("control", report["control"]["policies"])):
        for p, s in pols.items():
            s2r = f"{_f(s.get('signal_to_report_p50_us'))} ({s.get('signal_to_report_n', 0)})"
            lines.append(f"{label:8} {p:<10} {s['round_trips']:>5} {s['missed']:>6} {_p(s['win_rate']):>6} "
                         f"{_f(s['pnl_per_round_trip'], '{:+,.2f}'):>9} {_f(s['signal_to_exec_p50_us']):>8} "
                         f"{s2r:>13}")
            if s.get("entry_hops"):
                hops.append(f"  {(label + ' ' + p).strip():<18} {hops_text(s['entry_hops'])}")
    if hops:
        lines.append("entry hops p50 us: md read -> signal / -> wire / outside the client / report in")
        lines += hops
    return "\n".join(line[:80] for line in lines)


def write_report(report: dict, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md"}
    paths["json"].write_text(json.dumps(report, indent=1, default=str))
    paths["md"].write_text(render_markdown(report))
    return paths


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _count(values: Iterable[str | None]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        if v:
            out[v] = out.get(v, 0) + 1
    return out


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)
