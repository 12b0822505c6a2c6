"""Risk check cost per order (p50/p99, all checks on, overrides present) and per-fill update cost.

Usage: .venv/bin/python benchmarks/bench_risk.py [--orders 20000] [--runs 5]
Pure CPU, no sockets. Each timed call is wrapped in perf_counter_ns (timer overhead,
~50-100 ns, is measured and printed so it can be subtracted mentally).
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.common.clock import MONOTONIC  # noqa: E402
from gateway.core.model import BUY, LIMIT, SELL, OrderIntent  # noqa: E402
from gateway.core.risk import RiskConfig, RiskEngine  # noqa: E402

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOG", "NFLX"]
SESSIONS = ["FIX.4.4:GW->OMS1", "FIX.4.4:GW->OMS2", "FIX.4.4:GW->OMS3"]
MARKS = {s: 100.0 + 10 * i for i, s in enumerate(SYMBOLS)}


def config() -> RiskConfig:
    return RiskConfig.model_validate({
        "max_order_qty": 10_000, "max_notional": 5_000_000, "max_position": 1e9,
        "max_gross_exposure": 1e12, "price_band_bps": 100, "tick_size": 0.01,
        "allow_market_orders": True, "max_orders_per_second": 10_000_000, "symbols": SYMBOLS,
        "loss_threshold": 1e12, "daily_loss_limit": 1e12, "venue_reject_threshold": 1000,
        "sessions": {"OMS1": {"max_order_qty": 20_000, "max_orders_per_second": 10_000_000},
                     "OMS2": {"allow_market_orders": False}},
        "symbol_limits": {"AAPL": {"price_band_ticks": 50, "max_position": 1e9},
                          "TSLA": {"max_notional": 1e7}},
    })


def intents(n: int, tag: str) -> list[OrderIntent]:
    out = []
    for i in range(n):
        sym = SYMBOLS[i % len(SYMBOLS)]
        px = MARKS[sym] + (0.01 * (i % 7) - 0.03)
        out.append(OrderIntent(SESSIONS[i % len(SESSIONS)], f"{tag}{i}", sym, BUY if i % 2 else SELL,
                               float(100 + i % 50), LIMIT, round(px, 2), "0"))
    return out


def pct(sorted_ns: list[int], p: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(p * len(sorted_ns)))] / 1000.0


def run_once(n: int, tag: str) -> tuple[list[int], list[int], int]:
    eng = RiskEngine(config(), MONOTONIC, MARKS.get)
    orders = intents(n, tag)
    clock = time.perf_counter_ns
    check, fill, done = eng.check, eng.on_fill, eng.on_order_done
    check_ns, fill_ns, rejected = [], [], 0
    gc.disable()
    try:
        for intent in orders:
            t0 = clock()
            rej = check(intent)
            t1 = clock()
            check_ns.append(t1 - t0)
            if rej is not None:
                rejected += 1
                continue
            t0 = clock()
            fill(intent, intent.qty, intent.price)
            t1 = clock()
            fill_ns.append(t1 - t0)
            done(intent, 0.0)
    finally:
        gc.enable()
    return sorted(check_ns), sorted(fill_ns), rejected


def timer_overhead_ns() -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(20_000):
        t0 = clock()
        t1 = clock()
        samples.append(t1 - t0)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--orders", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    print(f"timer overhead (median of back-to-back perf_counter_ns): {timer_overhead_ns():.0f} ns")
    print(f"{'run':>4} {'check p50':>10} {'check p99':>10} {'fill p50':>10} {'fill p99':>10} {'rejected':>9}  (us)")
    p50s, p99s, f50s, f99s = [], [], [], []
    for run in range(args.runs):
        check_ns, fill_ns, rejected = run_once(args.orders, f"r{run}-")
        p50s.append(pct(check_ns, 0.50)); p99s.append(pct(check_ns, 0.99))
        f50s.append(pct(fill_ns, 0.50)); f99s.append(pct(fill_ns, 0.99))
        print(f"{run:>4} {p50s[-1]:>10.2f} {p99s[-1]:>10.2f} {f50s[-1]:>10.2f} {f99s[-1]:>10.2f} {rejected:>9}")
    print(f"median over {args.runs} runs: check p50 {statistics.median(p50s):.2f} us, "
          f"p99 {statistics.median(p99s):.2f} us; fill p50 {statistics.median(f50s):.2f} us, "
          f"p99 {statistics.median(f99s):.2f} us (target: check p50 < 5 us)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
