"""``fixgw backtest fidelity``: a short live demo run, recorded, then replayed; live vs replay side by side.

1. Live: the demo's own pieces (``gateway.apps.demo.runner.DemoRunner``): ``fixgw sim``
   (the demo's cross-venue market, competitors on), ``fixgw run`` (the gateway, the
   policy), the round-trip scalper as an OMS client through ``StrategyDriver``. While
   it trades, the client's own market data feed (the venues' W/X as the strategy saw
   them) and its RTT probes are recorded with ``start_recording`` (record.py).
2. Replay: the recording through the backtester with a fresh scalper of the same
   config, the run's own gateway TOML (``[routing]`` policy, ``[risk]`` with the kill
   switch), latency per venue empirical from the recorded probes (only those within
   ``--window`` s of each order, so ALPHA's mid-run slowdown is kept), and the strategy
   live only inside the live trading window (``on_*`` before it ignored, ``stop()`` at
   its end, as the driver does).
3. The table: orders, order fill rate, entry fill rate (round trips / entries), round
   trips, missed, win rate, PnL (money, the scalper's own round-trip book on both sides).

    fixgw backtest fidelity --duration 20 --out var/fidelity [--policy scalp] [--seed 7]
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

_EPS = 1e-9


class WindowedStrategy:
    """The live driver's trading window on a replayed strategy: market events and timers
    before ``start_s`` are not delivered, ``stop()`` is called at ``stop_s`` (then exits
    keep their market events and reports), a second ``stop`` (end of data) is a no-op."""

    def __init__(self, inner: Any, start_s: float, stop_s: float) -> None:
        self.inner = inner
        self.start_s, self.stop_s = start_s, stop_s
        self.stopped = False
        self.name = getattr(inner, "name", "strategy")
        self.timer_interval_s = getattr(inner, "timer_interval_s", 0.05)

    def _gate(self, t: float, market) -> list | None:
        if t < self.start_s:
            return None
        if t >= self.stop_s and not self.stopped:
            self.stopped = True
            return list(self.inner.stop(t, market) or ())
        return []

    def on_book(self, ev, market):
        pre = self._gate(ev.at, market)
        return [] if pre is None else pre + list(self.inner.on_book(ev, market) or ())

    def on_trade(self, ev, market):
        pre = self._gate(ev.at, market)
        return [] if pre is None else pre + list(self.inner.on_trade(ev, market) or ())

    def on_timer(self, now, market):
        pre = self._gate(now, market)
        return [] if pre is None else pre + list(self.inner.on_timer(now, market) or ())

    def on_report(self, ev, market):
        return self.inner.on_report(ev, market)

    def stop(self, now, market):
        if self.stopped:
            return []
        self.stopped = True
        return self.inner.stop(now, market)

    def stats(self) -> dict:
        return self.inner.stats()


def live_run(out: Path, duration_s: float, policy: str, seed: int | None, competitors: bool = True,
             quiet: bool = True) -> dict:
    """One demo run with the client's market data recorded to ``<run dir>/recording.rec``."""
    from gateway.apps.backtest.record import start_recording
    from gateway.apps.demo.config import load_demo_config
    from gateway.apps.demo.runner import DemoRunner, RunSettings

    class RecordingRunner(DemoRunner):
        """The demo runner, plus: recording from the client being up to the end of the drain."""
        recording = None
        window_ns: tuple[int, int] | None = None

        def start_client(self, run) -> None:
            super().start_client(run)
            path = run.pdir / "recording.rec"
            self.recording = run.client.call(lambda: start_recording(
                run.client.feed, path, meta={"source": "fixgw backtest fidelity", "policy": run.policy}))

        def trade(self, run) -> None:
            t0 = time.time_ns()
            try:
                super().trade(run)
            finally:
                self.window_ns = (t0, t0 + int(run.meta.get("trading_s", duration_s) * 1e9))

        def run_policy(self, policy, label=None):
            try:
                return super().run_policy(policy, label)
            finally:
                if self.recording is not None:       # the client's loop is stopped by now
                    self.rec_summary = self.recording.close()

    settings = RunSettings(cfg=load_demo_config(), run_dir=out, duration_s=duration_s, seed=seed,
                           out=io.StringIO() if quiet else sys.stdout, tty=False, competitors=competitors)
    runner = RecordingRunner(settings)
    run = runner.run_policy(policy)
    run["recording"] = runner.rec_summary
    run["window_ns"] = runner.window_ns
    run["scalper_cfg"] = runner.scalper_cfg
    return run


def live_figures(run: dict) -> dict:
    st = run["stats"]
    orders = run["orders"]
    filled = sum(1 for o in orders if (o.get("filled_qty") or 0) > _EPS)
    entries = st.get("round_trips", 0) + st.get("missed", 0)
    return {"orders": len(orders), "order_fill_rate": filled / len(orders) if orders else None,
            "entry_fill_rate": st.get("round_trips", 0) / entries if entries else None,
            "round_trips": st.get("round_trips"), "missed": st.get("missed"), "win_rate": st.get("win_rate"),
            "pnl": st.get("pnl_money_total"), "open_at_end": st.get("open"),
            "signal_to_exec_p50_us": st.get("signal_to_exec_p50_us")}


def replay_run(rec_path: Path, run: dict, window_s: float, hop_us: float = 0.0, notify: str = "message") -> dict:
    """The recording through the backtester with the live run's strategy config, gateway TOML
    (routing policy + risk) and empirical latency from the recorded probes."""
    from gateway.apps.backtest.config import load_config
    from gateway.apps.backtest.engine import Replay
    from gateway.core.recording import read_recording
    from gateway.core.strategies.scalper import Scalper

    rec = read_recording(rec_path)
    pdir = Path(run["meta"]["run_dir"])
    import tomllib
    sim = tomllib.loads((pdir / "sim.toml").read_text())
    ticks = {s["symbol"]: float(s["tick_size"]) for s in sim.get("symbols", [])}
    over: dict[str, Any] = {"backtest.tick_sizes": ticks, "backtest.synthesize_probes": True,
                           "backtest.notify": notify}
    for v in rec.venues:
        over[f"backtest.venues.{v}"] = {"latency": "empirical", "empirical_window_s": window_s}
    cfg = load_config(pdir / "gateway.toml", over)
    t0 = int(min(rec.ts_exch.min(), rec.ts_local.min()))
    start_ns, stop_ns = run["window_ns"]
    strategy = WindowedStrategy(Scalper(run["scalper_cfg"]), (start_ns - t0) * 1e-9, (stop_ns - t0) * 1e-9)
    replay = Replay(rec, strategy, cfg)
    # the client -> gateway -> venue hop (and back) that the client's own probes do not see:
    # fixed (--hop-us) or measured per venue from the live orders (order RTT - probe RTT then)
    hops = {v: hop_us for v in rec.venues} if hop_us >= 0 else order_hops(run, rec, window_s)
    for v, h in hops.items():
        if h > 0 and v in replay.latency:
            _add_hop(replay.latency[v], h * 1e-6)
    res = replay.run()
    st = res["strategy"]
    entries = st.get("round_trips", 0) + st.get("missed", 0)
    return {"orders": res["orders_sent"], "order_fill_rate": res["fill_rate"],
            "entry_fill_rate": st.get("round_trips", 0) / entries if entries else None,
            "round_trips": st.get("round_trips"), "missed": st.get("missed"), "win_rate": st.get("win_rate"),
            "pnl": st.get("pnl_money_total"), "open_at_end": st.get("open"),
            "signal_to_exec_p50_us": st.get("signal_to_exec_p50_us"), "events": res["events"],
            "wall_s": round(res["wall_s"], 3), "risk_state": res["risk"]["state"],
            "kill_switch_trips": res["risk"]["trips"], "routes": res["routes"],
            "latency": {v: s["latency"] for v, s in res["config"]["latency"].items()},
            "hop_us_each_way": {v: round(h, 1) for v, h in hops.items()}}


def order_hops(run: dict, rec, window_s: float) -> dict[str, float]:
    """Per venue, half the median of (a live order's RTT, sent -> first report on the client's
    clock, minus the median probe RTT to its venue within ``window_s`` of it): what the gateway
    path adds to each way beyond the venue's own latency. Empirical, from the live run's
    own order log (the orders are probes of the full path), not from its fills."""
    import numpy as np
    start_ns = run["window_ns"][0]
    out: dict[str, float] = {}
    for i, v in enumerate(rec.venues):
        mine = rec.probe_venue == i
        sent, rtt = rec.probe_sent_at[mine], rec.probe_rtt[mine]
        order = np.argsort(sent)
        sent, rtt = sent[order], rtt[order]
        diffs = []
        for o in run.get("orders") or []:
            if o.get("venue") != v or o.get("sent_at") is None or o.get("first_report_at") is None:
                continue
            t = start_ns + int(o["sent_at"] * 1e9)
            a, b = np.searchsorted(sent, [t - window_s * 1e9, t + window_s * 1e9])
            if b > a:
                diffs.append(o["first_report_at"] - o["sent_at"] - float(np.median(rtt[a:b])))
        out[v] = max(0.0, float(np.median(diffs)) * 1e6 / 2) if diffs else 0.0
    return out


def _add_hop(model: Any, hop_s: float) -> None:
    entry, response = model.entry, model.response
    model.entry = lambda now: entry(now) + hop_s          # instance attributes: this replay only
    model.response = lambda now: response(now) + hop_s


def table(live: dict, replay: dict) -> str:
    def f(k, v):
        if v is None:
            return "-"
        if k.endswith("rate"):
            return f"{100 * v:.1f}%"
        if k == "pnl":
            return f"{v:,.2f}"
        return f"{v}"
    rows = [("orders sent", "orders"), ("order fill rate (filled any / sent)", "order_fill_rate"),
            ("entry fill rate (round trips / entries)", "entry_fill_rate"), ("round trips", "round_trips"),
            ("missed entries", "missed"), ("win rate", "win_rate"), ("PnL (money)", "pnl"),
            ("trips open at end", "open_at_end"), ("signal to first fill p50 (us)", "signal_to_exec_p50_us")]
    out = ["| | live | replay | diff |", "|---|---|---|---|"]
    for label, k in rows:
        lv, rv = live.get(k), replay.get(k)
        if k.endswith("rate") and lv is not None and rv is not None:
            diff = f"{100 * (rv - lv):+.1f} pp"
        elif isinstance(lv, (int, float)) and isinstance(rv, (int, float)):
            diff = f"{rv - lv:+,.2f}" if k == "pnl" else f"{rv - lv:+}"
        else:
            diff = ""
        out.append(f"| {label} | {f(k, lv)} | {f(k, rv)} | {diff} |")
    return "\n".join(out)


def verdict(live: dict, replay: dict) -> dict:
    fl, fr = live.get("entry_fill_rate"), replay.get("entry_fill_rate")
    pl, pr = live.get("pnl") or 0.0, replay.get("pnl") or 0.0
    return {"fill_rate_within_5pp": fl is not None and fr is not None and abs(fr - fl) <= 0.05,
            "pnl_same_sign": (pl > 0) == (pr > 0) and (pl < 0) == (pr < 0)}


def main(argv: list[str] | None = None, prog: str = "fixgw backtest fidelity") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--policy", default="scalp")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--window", type=float, default=0.5, help="empirical latency: probes within +-s of an order")
    ap.add_argument("--hop-us", type=float, default=-1.0,
                    help="added each way to the empirical latency; default -1: measured per venue from the "
                         "live orders' RTTs (order RTT - probe RTT, halved)")
    ap.add_argument("--no-competitors", action="store_true")
    ap.add_argument("--notify", default="message", choices=["message", "every", "touch"],
                    help="replay on_book per venue message (as live) or per level row")
    ap.add_argument("--out", default="var/fidelity")
    ap.add_argument("--replay-only", help="a previous fidelity.json: replay its recording again")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.replay_only:
        saved = json.loads(Path(args.replay_only).read_text())
        from gateway.core.strategies.scalper import ScalperConfig
        run = {"meta": saved["meta"], "window_ns": saved["window_ns"],
               "scalper_cfg": ScalperConfig.model_validate(saved["scalper_cfg"])}
        live = saved["live"]
        run["trips"], run["orders"] = saved.get("live_trips"), saved.get("live_orders")
        rec_path = Path(saved["recording"]["path"])
    else:
        t = time.monotonic()
        run = live_run(out, args.duration, args.policy, args.seed, not args.no_competitors)
        print(f"live run: {time.monotonic() - t:.1f}s wall, recording {run['recording']}", file=sys.stderr)
        live = live_figures(run)
        rec_path = Path(run["recording"]["path"])
    replay = replay_run(rec_path, run, args.window, args.hop_us, args.notify)
    result = {"live": live, "replay": replay, "verdict": verdict(live, replay), "meta": run["meta"],
              "window_ns": run["window_ns"], "recording": run.get("recording") or {"path": str(rec_path)},
              "scalper_cfg": run["scalper_cfg"].model_dump(), "window_s": args.window, "hop_us": args.hop_us,
              "notify": args.notify, "live_trips": run.get("trips"), "live_orders": run.get("orders")}
    text = table(live, replay)
    (out / "fidelity.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "fidelity.md").write_text(text + "\n")
    print(text)
    print(json.dumps(result["verdict"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
