"""Backtester benchmark: market events replayed per second, and memory for 10 million events.

Usage:
  .venv/bin/python benchmarks/bench_backtest.py speed  [--events 1000000] [--notify every|touch|message] [--repeat 5]
  .venv/bin/python benchmarks/bench_backtest.py memory [--events 10000000]
  .venv/bin/python benchmarks/bench_backtest.py all

Data: synthetic, one symbol on three venues (ALPHA, BETA, GAMMA; feed latencies 50 /
120 / 300 us, probe RTTs 200 / 400 / 900 us), ~20,000 events/s of market time, 5
levels per side, 5% trades (``gateway/apps/backtest/synth.py``). Strategy: ``ScalpLike``
below (``--strategy scalper`` runs the demo's real scalper from the tactics registry), scalp-shaped: it reads the touch of the venue that moved on every book event,
sends an IOC through the scalp router when the touch shows size (one order in flight),
exits the position at the touch on the next signal. Everything the replay does for a
live-like run is on: the real RiskEngine (limits set), the scalp router, probe
estimators, exchange-side books with queue model and the take rule, reports and ledger.

``speed`` runs in this process (one core; targets >= 500,000 events/s). ``memory`` writes
the recording to Parquet in a child process, then replays it in a fresh child and
reports that child's peak RSS (target <= 1 GB for 10 million events), so generator
temporaries are not counted.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.core.strategies.base import BUY, IOC, SELL, PlaceOrder  # noqa: E402


class ScalpLike:
    name = "scalp_like"
    timer_interval_s = 0.25

    def __init__(self, qty: float = 1.0, min_qty: float = 8.0, every: int = 200) -> None:
        self.qty, self.min_qty, self.every = qty, min_qty, every
        self.n = self.seq = self.sent = self.fills = 0
        self.pos = 0.0
        self.busy = False

    def on_book(self, ev, market):
        self.n += 1
        if self.busy or self.n % self.every:
            return []
        book = market.book(ev.venue, ev.symbol)
        if book is None:
            return []
        if self.pos:
            top = book.best_bid() if self.pos > 0 else book.best_ask()
            return self._send(SELL if self.pos > 0 else BUY, abs(self.pos), top[0]) if top else []
        ask = book.best_ask()
        if ask and ask[1] >= self.min_qty:
            return self._send(BUY, self.qty, ask[0])
        return []

    def _send(self, side, qty, px):
        self.seq += 1
        self.sent += 1
        self.busy = True
        self._side = side
        return [PlaceOrder(cl_ord_id=f"S{self.seq}", symbol="SYM", side=side, qty=qty, price=px, tif=IOC)]

    def on_trade(self, ev, market):
        return []

    def on_report(self, ev, market):
        if ev.exec_type == "F":
            self.fills += 1
            self.pos += ev.last_qty if self._side == BUY else -ev.last_qty
        if ev.ord_status in ("2", "4", "8"):
            self.busy = False
        return []

    def on_timer(self, now, market):
        return []

    def stats(self):
        return {"sent": self.sent, "fills": self.fills, "position": self.pos}


def _config(notify: str = "every"):
    from gateway.apps.backtest.config import load_config
    return load_config(None, {"backtest.notify": notify, "backtest.default_venue.taker_bps": 0.5,
                              "risk.max_order_qty": 100, "risk.max_position": 50,
                              "risk.max_orders_per_second": 1000})


def _strategy(name: str):
    if name == "scalp_like":
        return ScalpLike()
    from gateway.apps.backtest.engine import load_strategy   # the demo's tactics (registry)
    return load_strategy(name, {"symbols": ["SYM"], "qty": 1, "imbalance_ratio": 2.0})


def _replay(rec, notify: str, strategy: str = "scalp_like") -> dict:
    from gateway.apps.backtest.engine import Replay
    r = Replay(rec, _strategy(strategy), _config(notify))
    t0, c0 = time.perf_counter(), time.process_time()
    res = r.run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    # per CPU second too: on a shared 2-core box wall time counts other people's work
    return {"events": len(rec), "wall_s": round(wall, 3), "events_per_s": round(len(rec) / wall),
            "cpu_s": round(cpu, 3), "events_per_cpu_s": round(len(rec) / cpu), "load_avg_1m": os.getloadavg()[0],
            "orders": res["orders_sent"], "fill_rate": round(res["fill_rate"] or 0, 4),
            "fills": res["ledger"]["fills"], "notify": notify, "strategy": strategy}


def speed(events: int, notify: str, strategy: str = "scalp_like", repeat: int = 1) -> dict:
    """``repeat`` replays of the same data (a fresh Replay each); with several, a summary line
    (median and best of wall and CPU rates) follows the runs."""
    from gateway.apps.backtest.synth import synthetic
    rec = synthetic(events)
    runs = []
    for _ in range(max(repeat, 1)):
        out = _replay(rec, notify, strategy)
        runs.append(out)
        print(json.dumps({"speed": out}), flush=True)
    if len(runs) > 1:
        def med(key):
            v = sorted(r[key] for r in runs)
            return v[len(v) // 2]
        summary = {"runs": len(runs), "events": runs[0]["events"], "notify": notify,
                   "wall_median": med("events_per_s"), "wall_best": max(r["events_per_s"] for r in runs),
                   "cpu_median": med("events_per_cpu_s"), "cpu_best": max(r["events_per_cpu_s"] for r in runs),
                   "load_avg_1m": [round(r["load_avg_1m"], 2) for r in runs]}
        print(json.dumps({"speed_summary": summary}))
    return runs[-1]


def memory(events: int) -> dict:
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.rec"
        t0 = time.perf_counter()
        subprocess.run([py, __file__, "_write", "--events", str(events), "--path", str(path)], check=True)
        write_s = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in path.iterdir())
        got = subprocess.run([py, __file__, "_replay", "--path", str(path)], check=True,
                             capture_output=True, text=True)
        child = json.loads(got.stdout.strip().splitlines()[-1])
    out = {"events": events, "parquet_mb": round(size / 2**20, 1), "generate_and_write_s": round(write_s, 1),
           **child}
    print(json.dumps({"memory": out}))
    return out


def _child_write(events: int, path: str) -> None:
    from gateway.apps.backtest.synth import synthetic
    from gateway.core.recording import write_recording
    write_recording(synthetic(events), path)


def _child_replay(path: str) -> None:
    from gateway.core.recording import read_recording
    t0 = time.perf_counter()
    rec = read_recording(path)
    read_s = time.perf_counter() - t0
    columns_mb = rec.nbytes / 2**20
    res = _replay(rec, "every")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux
    print(json.dumps({"read_s": round(read_s, 2), "columns_mb": round(columns_mb, 1),
                      "peak_rss_mb": round(peak, 1), **res}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["speed", "memory", "all", "_write", "_replay"])
    ap.add_argument("--events", type=float, default=None)
    ap.add_argument("--notify", default="every", choices=["every", "touch", "message"])
    ap.add_argument("--repeat", type=int, default=1, help="speed: replays of the same data")
    ap.add_argument("--path")
    ap.add_argument("--strategy", default="scalp_like",
                    help="scalp_like (below) or a registered tactic name, e.g. scalper (the demo's client)")
    a = ap.parse_args(argv)
    if a.what == "_write":
        _child_write(int(a.events), a.path)
    elif a.what == "_replay":
        _child_replay(a.path)
    elif a.what == "speed":
        speed(int(a.events or 1e6), a.notify, a.strategy, a.repeat)
    elif a.what == "memory":
        memory(int(a.events or 1e7))
    else:
        speed(int(a.events or 1e6), "every")
        speed(int(a.events or 1e6), "touch")
        memory(int(1e7))
    return 0


if __name__ == "__main__":
    sys.exit(main())
