"""PNG charts of a demo report (matplotlib, Agg backend; optional).

Without matplotlib (the ``charts`` extra) no chart is drawn and the report says so.
"""
from __future__ import annotations

from pathlib import Path

VENUE_COLORS = {"ALPHA": "tab:blue", "BRAVO": "tab:orange", "CHARLIE": "tab:green"}


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def _legend(ax, **kw) -> None:
    if ax.get_legend_handles_labels()[0]:   # an empty run has nothing to label
        ax.legend(**kw)


def _color(venue: str, i: int) -> str:
    return VENUE_COLORS.get(venue, f"C{(i + 3) % 10}")


def write_charts(report: dict, out_dir: Path) -> dict:
    plt = _pyplot()
    if plt is None:
        return {"files": [], "note": "Charts skipped: matplotlib is not installed "
                                     "(pip install -e '.[charts]')."}
    runs = report.get("runs", [])
    files = [
        latency_chart(plt, runs, out_dir / "latency_by_venue.png"),
        routing_share_chart(plt, runs, out_dir / "routing_share.png"),
        fill_rate_chart(plt, report.get("summaries", []), out_dir / "fill_rate_by_policy.png"),
        latency_cdf_chart(plt, runs, out_dir / "signal_to_exec_cdf.png"),
    ]
    return {"files": [str(f) for f in files if f], "note": ""}


def _venues(runs: list[dict]) -> list[str]:
    names: set[str] = set()
    for r in runs:
        for snap in r.get("series", []):
            names.update(snap.get("venues", {}))
        names.update(o["venue"] for o in r.get("orders", []) if o.get("venue"))
    return sorted(names)


def latency_chart(plt, runs: list[dict], path: Path) -> Path | None:
    """Per policy and venue: probe RTT EWMA (line), windowed p99 (dashed), the orders'
    signal-to-exec (crosses) and the simulator's latency schedule changes (dotted)."""
    if not runs:
        return None
    venues = _venues(runs)
    fig, axes = plt.subplots(len(runs), 1, figsize=(12, 3.4 * len(runs)), squeeze=False, sharex=True)
    for ax, run in zip(axes[:, 0], runs):
        for i, v in enumerate(venues):
            pts = [(s["t"], s["venues"][v]) for s in run.get("series", []) if v in s.get("venues", {})]
            c = _color(v, i)
            ewma = [(t, d.get("ewma_us")) for t, d in pts if d.get("ewma_us")]
            p99 = [(t, d.get("p99_us")) for t, d in pts if d.get("p99_us")]
            if ewma:
                ax.plot(*zip(*ewma), color=c, label=f"{v} probe RTT (EWMA)")
            if p99:
                ax.plot(*zip(*p99), color=c, linestyle="--", linewidth=0.8, label=f"{v} probe p99 (window)")
            for at, base, _ in ((run.get("meta") or {}).get("latency_model") or {}).get(v, {}).get("schedule", []):
                ax.axvline(at, color=c, linestyle=":", linewidth=1)
                ax.annotate(f"{v} -> {base:,.0f} us one-way", (at, 0.03), xycoords=("data", "axes fraction"),
                            fontsize=7, color=c, rotation=90, va="bottom", ha="right")
            dots = [(o["signal_ts"], o["signal_to_exec_us"]) for o in run.get("orders", [])
                    if o.get("venue") == v and o.get("signal_to_exec_us")]
            if dots:
                ax.scatter(*zip(*dots), color=c, s=8, marker="x", label=f"{v} order signal-to-exec")
        ax.set_yscale("log")
        ax.set_ylabel("microseconds")
        ax.set_title(f"policy {run.get('policy')}: venue latency over time")
        ax.grid(True, which="both", alpha=0.3)
        _legend(ax, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[-1, 0].set_xlabel("seconds since the client started trading")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _child_venues(run: dict) -> dict[str, list[str]]:
    """cl_ord_id -> venues of its child orders (from the decisions), else the reported venue."""
    from gateway.apps.demo.report import decision_order_id, decision_venues
    by_id = {decision_order_id(d): decision_venues(d) for d in run.get("decisions", [])}
    return {o["cl_ord_id"]: by_id.get(o["cl_ord_id"]) or [o.get("venue") or "(none)"]
            for o in run.get("orders", [])}


def routing_share_chart(plt, runs: list[dict], path: Path, bins: int = 10) -> Path | None:
    """Per policy: share of child orders sent to each venue in equal time bins (stacked)."""
    if not runs:
        return None
    venues = _venues(runs) + ["(none)"]
    fig, axes = plt.subplots(len(runs), 1, figsize=(10, 2.8 * len(runs)), squeeze=False, sharex=True)
    for ax, run in zip(axes[:, 0], runs):
        orders = run.get("orders", [])
        span = max([o["signal_ts"] for o in orders] + [run.get("meta", {}).get("duration_s", 1.0)])
        width = span / bins
        counts = [[0] * bins for _ in venues]
        children = _child_venues(run)
        for o in orders:
            b = min(int(o["signal_ts"] / width), bins - 1) if width > 0 else 0
            for v in children[o["cl_ord_id"]]:
                counts[venues.index(v) if v in venues else -1][max(b, 0)] += 1
        totals = [sum(c[b] for c in counts) or 1 for b in range(bins)]
        xs = [width * (b + 0.5) for b in range(bins)]
        bottom = [0.0] * bins
        for i, v in enumerate(venues):
            share = [counts[i][b] / totals[b] for b in range(bins)]
            if any(share):
                ax.bar(xs, share, width=width * 0.9, bottom=bottom, color=_color(v, i), label=v)
                bottom = [a + b for a, b in zip(bottom, share)]
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of child orders")
        ax.set_title(f"policy {run.get('policy')}: routing share over time")
        _legend(ax, fontsize=7, ncol=4, loc="upper right")
    axes[-1, 0].set_xlabel("seconds since the client started trading")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def fill_rate_chart(plt, summaries: list[dict], path: Path) -> Path | None:
    """Fill rate, full-fill rate and win rate per policy (grouped bars)."""
    if not summaries:
        return None
    metrics = [("fill_rate", "fill rate (any fill)"), ("full_fill_rate", "fully filled"),
               ("win_rate", "win rate (at intended px)"), ("fill_ratio_qty", "fill ratio (qty)")]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(metrics)
    for j, (key, label) in enumerate(metrics):
        vals = [100 * (s.get(key) or 0) for s in summaries]
        xs = [i + (j - (len(metrics) - 1) / 2) * width for i in range(len(summaries))]
        bars = ax.bar(xs, vals, width=width, label=label)
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(range(len(summaries)), [s["policy"] for s in summaries])
    ax.set_ylim(0, 110)
    ax.set_ylabel("% of orders sent")
    ax.set_title("fill rate per routing policy")
    _legend(ax, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def latency_cdf_chart(plt, runs: list[dict], path: Path) -> Path | None:
    """Distribution (CDF) of signal-to-execution latency per policy."""
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(8, 4))
    for run in runs:
        vals = sorted(o["signal_to_exec_us"] for o in run.get("orders", []) if o.get("signal_to_exec_us"))
        if vals:
            ax.step(vals, [(i + 1) / len(vals) for i in range(len(vals))], where="post", label=run.get("policy"))
    ax.set_xscale("log")
    ax.set_xlabel("signal-to-execution latency (us)")
    ax.set_ylabel("fraction of orders")
    ax.set_title("signal-to-execution latency per policy")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
