"""A risk snapshot as text a person can read (the JSON form is the snapshot dict itself)."""
from __future__ import annotations


def format_snapshot(snap: dict) -> str:
    lines = [f"risk state: {snap['state']}"]
    if snap.get("trip_reason"):
        lines.append(f"  tripped by {snap.get('tripped_by')} at {snap.get('tripped_at'):.3f}: {snap['trip_reason']}")
    lines.append(f"  pnl: realized {snap['realized_pnl']:.2f}  unrealized {snap['unrealized_pnl']:.2f}  "
                 f"total {snap['realized_pnl'] + snap['unrealized_pnl']:.2f}")
    lines.append(f"  gross exposure {snap['gross_exposure']:.2f}  checks {snap['checks']}  "
                 f"open orders {snap.get('open_orders', 0)}")
    positions = snap.get("positions") or {}
    if positions:
        lines.append(f"  {'symbol':<10}{'qty':>12}{'avg_cost':>12}{'mark':>12}{'realized':>12}{'unrealized':>12}")
        for sym, p in sorted(positions.items()):
            mark = "-" if p["mark"] is None else f"{p['mark']:.4f}"
            lines.append(f"  {sym:<10}{p['qty']:>12g}{p['avg_cost']:>12.4f}{mark:>12}"
                         f"{p['realized_pnl']:>12.2f}{p['unrealized_pnl']:>12.2f}")
    rejects = snap.get("rejects_by_check") or {}
    if rejects:
        lines.append("  rejects: " + ", ".join(f"{k} {v}" for k, v in sorted(rejects.items())))
    return "\n".join(lines)
