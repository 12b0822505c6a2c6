"""The report of one `fixgw trade` run: round trips, hit rate, PnL, legging, every order.

Input (JSON-able, ``runner.collect``): ``{"tactic", "meta", "stats": strategy.stats(),
"trips": [trip dicts + entry_ids], "orders": [driver order dicts], "scenario": what the
simulator's scenario did or None}``. Pure functions; Markdown and JSON out.
"""
from __future__ import annotations

import json
from pathlib import Path

from gateway.apps.demo.report import OUTCOME_TEXT, accounting, trip_figures

SHOW_TRADES = 20


def summarize(run: dict) -> dict:
    trips = run.get("trips", [])
    figs = trip_figures(trips)
    stats = run.get("stats") or {}
    legged = [t for t in trips if t.get("legging")]
    out = {"tactic": run.get("tactic"), **figs, "hit_rate": figs["win_rate"],
           "legging_incidents": len(legged),
           "legging_loss_money": round(sum(min(0.0, t.get("pnl_money") or 0.0) for t in legged), 6),
           "accounting": accounting(run.get("orders", [])),
           "stuck": sum(1 for t in trips if t.get("state") == "stuck"),
           "open_trips": sum(1 for t in trips if t.get("state") not in ("closed", "stuck")),
           "signals": {k: v for k, v in stats.items() if isinstance(v, (int, float)) and k not in figs
                       and k not in ("open", "stuck")} | (stats.get("signals") or {}),
           "why_no_trades": None}
    if not trips:
        out["why_no_trades"] = why_none(run)
    return out


def why_none(run: dict) -> str:
    scen = run.get("scenario")
    stats = run.get("stats") or {}
    if scen is not None and not scen.get("episodes"):
        return "the simulator's scenario produced no episode in the run (run longer or shorten gap_s)"
    counts = {k: v for k, v in stats.items() if isinstance(v, (int, float))}
    counts.update(stats.get("signals") or {})
    return ("no entry condition held during the run; the tactic's counters: "
            + json.dumps(counts, sort_keys=True)
            + (f"; scenario episodes: {scen.get('episodes')}" if scen else "; no scenario (plain simulator)"))


def render_markdown(run: dict, summary: dict) -> str:
    meta = run.get("meta", {})
    s = summary
    out = [f"# fixgw trade: {run.get('tactic')}", "",
           f"{meta.get('started_utc', '?')}: {meta.get('trading_s', '?')} s of trading against "
           f"{meta.get('against', '?')}; config `{meta.get('config')}`"
           + (f", scenario `{meta.get('scenario')}`" if meta.get("scenario") else "") + ".", "",
           "| Round trips | Missed | Hit rate | PnL total | PnL / trip | Ticks / trip | S2E p50 (us) | "
           "Legging incidents | Orders (open) |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
           f"| {s['round_trips']} | {s['missed']} | {_p(s['hit_rate'])} | {_f(s['pnl_total'], '{:+,.2f}')} | "
           f"{_f(s['pnl_per_round_trip'], '{:+,.2f}')} | {_f(s['pnl_ticks_per_round_trip'], '{:+.2f}')} | "
           f"{_f(s['signal_to_exec_p50_us'], '{:,.0f}')} | {s['legging_incidents']} "
           f"({_f(s['legging_loss_money'], '{:+,.2f}')}) | {s['accounting']['orders']} ({s['accounting']['open']}) |",
           "", f"Exit reasons: {json.dumps(s['exit_reasons'])}. Orders by status: "
           f"{json.dumps(s['accounting']['by_status'])}; every order accounted for: "
           f"{'yes' if s['accounting']['accounted'] else 'NO'}; stuck trips: {s['stuck']}.", ""]
    if s["why_no_trades"]:
        out += [f"**No trades**: {s['why_no_trades']}.", ""]
    scen = run.get("scenario")
    if scen:
        kinds: dict[str, int] = {}
        for e in scen.get("log", []):
            key = f"{e.get('kind', '?')}:{e.get('outcome')}" if e.get("outcome") else str(e.get("kind", "?"))
            kinds[key] = kinds.get(key, 0) + 1
        out += [f"Scenario: {scen.get('episodes')} episodes ({json.dumps(kinds)}).", ""]
    out += ["| Trip | Side | Signal-to-exec (us) | Venues | Slippage (ticks) | PnL (ticks) | Exit | Outcome | Legging |",
            "|---|---|---:|---|---:|---:|---|---|---|"]
    for t in run.get("trips", [])[:SHOW_TRADES]:
        leg = t.get("legging")
        out.append(f"| {t['trip_id']} | {t.get('side')} | {_f(t.get('signal_to_exec_us'), '{:,.0f}', '-')} | "
                   f"{', '.join(t.get('venues') or []) or '-'} | {_f(t.get('slippage_ticks'), '{:+.1f}', '-')} | "
                   f"{_f(t.get('pnl_ticks'), '{:+.1f}', '-')} | {t.get('exit_reason') or '-'} | "
                   f"{OUTCOME_TEXT.get(t.get('outcome'), t.get('outcome') or t.get('state'))} | "
                   f"{'residual ' + format(leg['residual'], 'g') if leg else '-'} |")
    return "\n".join(out) + "\n"


def write_report(run: dict, out_dir: Path) -> tuple[dict, dict[str, Path]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(run)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md"}
    paths["json"].write_text(json.dumps({"summary": summary, **run}, indent=1, default=str))
    paths["md"].write_text(render_markdown(run, summary))
    return summary, paths


def _f(v, fmt: str, none: str = "n/a") -> str:
    return none if v is None else fmt.format(v)


def _p(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"
