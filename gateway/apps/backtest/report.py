"""The backtest report: the same shape as the demo's (Markdown tables, JSON, PNG charts).

``write_report(result, out_dir)`` writes ``report.md``, ``report.json`` (summary, no
per-fill rows), ``fills.csv`` and, with matplotlib installed (the ``charts`` extra),
``equity.png`` and ``fills.png``. Without matplotlib the report says so and goes on.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

FILL_FIELDS = ("t", "cl_ord_id", "venue", "symbol", "side", "qty", "px", "liquidity", "fee", "position")


def summarize(result: dict) -> dict:
    """One flat row per run: what a sweep table and the report header show."""
    led = result["ledger"]
    return {
        "events": result["events"], "replay_s": round(result["replay_s"], 3),
        "events_per_s": round(result["events_per_s"] or 0.0), "orders": result["orders_sent"],
        "filled_orders": result["orders_filled"], "fill_rate": _r(result["fill_rate"]),
        "fills": led["fills"], "round_trips": led["round_trips"], "win_rate": _r(led["win_rate"]),
        "pnl_gross": _r(led["realized_gross"]), "fees": _r(led["fees"]), "pnl_net": _r(led["pnl_net"]),
        "max_drawdown": _r(led["max_drawdown"]), "risk_state": result["risk"]["state"],
        "risk_rejects": result["stats"]["risk_rejects"], "route_rejects": result["stats"]["route_rejects"],
    }


def _r(x, nd: int = 6):
    return None if x is None else round(float(x), nd)


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def table(rows: list[dict], cols: list[str] | None = None) -> str:
    """A Markdown table of dict rows."""
    if not rows:
        return "(no rows)\n"
    cols = cols or list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


def by_venue(result: dict) -> list[dict]:
    rows: dict[str, dict] = {}
    for f in result["fills"]:
        r = rows.setdefault(f["venue"], {"venue": f["venue"], "fills": 0, "qty": 0.0, "maker_qty": 0.0, "fees": 0.0})
        r["fills"] += 1
        r["qty"] += f["qty"]
        r["fees"] += f["fee"]
        if f["liquidity"] == "maker":
            r["maker_qty"] += f["qty"]
    for v, n in result["routes"].items():
        rows.setdefault(v, {"venue": v, "fills": 0, "qty": 0.0, "maker_qty": 0.0, "fees": 0.0})["routed"] = n
    return sorted(rows.values(), key=lambda r: r["venue"])


def render_markdown(result: dict, charts: list[str]) -> str:
    s = summarize(result)
    lines = ["# Backtest report", "",
             f"{s['events']:,} events over {s['replay_s']} s of market time on {', '.join(result['venues'])} "
             f"({', '.join(result['symbols'])}); policy `{result['config']['policy']}`, queue model "
             f"`{result['config']['queue']}`; replayed at {s['events_per_s']:,} events/s.", "",
             "## Summary", "", table([s]), "## By venue", "", table(by_venue(result)),
             "## Latency models", "",
             table([{"venue": v, **spec} for v, spec in result["config"]["latency"].items()]),
             "## Risk", "", f"state {result['risk']['state']}; rejects by check: "
             f"{result['risk']['rejects_by_check'] or 'none'}; kill-switch trips: {result['risk']['trips'] or 'none'}", "",
             "## Strategy", "", f"`{json.dumps(result['strategy'], default=str)}`", ""]
    if charts:
        lines += ["## Charts", ""] + [f"![{c}]({c})" for c in charts] + [""]
    else:
        lines += ["(charts: matplotlib not installed; `pip install .[charts]`)", ""]
    fills = result["fills"]
    lines += [f"## Fills ({len(fills)}; first 50, all in fills.csv)", "", table(fills[:50], list(FILL_FIELDS))]
    return "\n".join(lines)


def write_report(result: dict, out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"fills": out / "fills.csv", "json": out / "report.json", "markdown": out / "report.md"}
    with paths["fills"].open("w", newline="") as fh:
        w = csv.DictWriter(fh, FILL_FIELDS)
        w.writeheader()
        w.writerows(result["fills"])
    charts = draw_charts(result, out)
    body = {k: v for k, v in result.items() if k not in ("fills", "equity")}
    body["summary"] = summarize(result)
    body["equity_points"] = len(result["equity"])
    paths["json"].write_text(json.dumps(body, indent=2, default=str))
    paths["markdown"].write_text(render_markdown(result, [c.name for c in charts]))
    for c in charts:
        paths[c.stem] = c
    return paths


def draw_charts(result: dict, out: Path) -> list[Path]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    eq = result["equity"]
    if eq:
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.plot([t for t, _ in eq], [e for _, e in eq], lw=1)
        ax.set(title="Equity (net of fees)", xlabel="replay time (s)", ylabel="PnL")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "equity.png", dpi=110)
        plt.close(fig)
        made.append(out / "equity.png")
    fills = result["fills"]
    if fills:
        fig, ax = plt.subplots(figsize=(8, 3.5))
        for side, color in (("buy", "tab:green"), ("sell", "tab:red")):
            pts = [(f["t"], f["px"]) for f in fills if f["side"] == side]
            if pts:
                ax.scatter(*zip(*pts), s=6, c=color, label=side)
        ax.set(title="Fills", xlabel="replay time (s)", ylabel="price")
        ax.legend(loc="best")
        fig.tight_layout()
        fig.savefig(out / "fills.png", dpi=110)
        plt.close(fig)
        made.append(out / "fills.png")
    return made
