"""Router benchmarks: decision time per order, and probe RTT accuracy against the simulator.

Usage:
  .venv/bin/python benchmarks/bench_router.py decide [--venues 8] [--levels 10] [--orders 20000]
  .venv/bin/python benchmarks/bench_router.py probes [--delays-ms 0,0.5,2,5] [--seconds 6]
  .venv/bin/python benchmarks/bench_router.py all

``decide``: pure CPU. Books of N venues x L levels per side, live-looking latencies and
touch depletion; every policy decides a stream of buy/sell IOC/FOK/market orders. The
time is ``RoutingDecision.decision_us`` (perf_counter around the whole decision, lock
included) plus the outer call time (with the decision-log append).

``probes``: starts one simulator process per injected one-way delay (delay line on, no
jitter) and the gateway (our TestRequest probes every probe_interval_ms on its venue
sessions, ``--engine native|quickfix``); prints per venue the probe RTT p50/p99 as we see
it, the venue's part (socket write -> answer read) against 2 x the injected delay, and our
own floor (send + receive path per probe) apart. ``--delays-ms 0 --no-proxy`` is the
zero-latency venue of issue 12's target.
"""
from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.common.clock import FakeClock  # noqa: E402
from gateway.core.market import MarketState  # noqa: E402
from gateway.core.model import BUY, FOK, IOC, LIMIT, MARKET, SELL, OrderIntent  # noqa: E402
from gateway.core.router import build_router  # noqa: E402
from gateway.core.router.config import RoutingConfig  # noqa: E402
from gateway.core.router.decisions import DecisionLog  # noqa: E402

MID = 1.10000
TICK = 0.00001


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def build_market(n_venues: int, levels: int, seed: int = 1) -> MarketState:
    rng = random.Random(seed)
    cfg = RoutingConfig(md_symbols=["EURUSD"], decision_log_size=10_000)
    # a frozen clock keeps probes and books fresh for the whole run (same cost as the real one)
    m = MarketState(cfg, FakeClock(1000.0), sender=lambda *a: True)
    for i in range(n_venues):
        name = f"V{i}"
        m.register_venue(name)
        m.on_venue_up(name, name)
        v = m.venues[name]
        for _ in range(cfg.latency_window):
            v.lat.add(rng.uniform(150e-6, 900e-6))
        book = v.books["EURUSD"]
        off = rng.randint(0, 3)
        book.apply_snapshot([(MID - (1 + off + k) * TICK, rng.randint(1, 20) * 100) for k in range(levels)],
                            [(MID + (1 + off + k) * TICK, rng.randint(1, 20) * 100) for k in range(levels)])
        for side in ("0", "1"):      # some touch depletion history
            best = book.best_bid() if side == "0" else book.best_ask()
            book.apply_update("1", side, best[0], best[1] * 0.8)
            book.apply_update("1", side, best[0], best[1])
    return m


def orders(n: int, seed: int = 2) -> list[OrderIntent]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        side = BUY if i % 2 else SELL
        kind = i % 5
        qty = float(rng.randint(1, 30) * 100)
        if kind == 4:
            out.append(OrderIntent("OMS1", f"C{i}", "EURUSD", side, qty, MARKET, None, IOC))
            continue
        ticks = rng.randint(1, 6)
        px = MID + ticks * TICK if side == BUY else MID - ticks * TICK
        out.append(OrderIntent("OMS1", f"C{i}", "EURUSD", side, qty, LIMIT, round(px, 5), FOK if kind == 3 else IOC))
    return out


def bench_decide(n_venues: int, levels: int, n: int) -> dict:
    m = build_market(n_venues, levels)
    results = {}
    for policy in ("scalp", "best_price", "dma"):
        log = DecisionLog(10_000)
        router = build_router(m.cfg, m, m.clock, policy=policy, log=log)
        batch = orders(n)
        if policy == "dma":
            for o in batch:
                o.ex_destination = f"V{min(3, n_venues - 1)}"
        for o in batch[:500]:
            router.decide(o)          # warm-up
        inner, outer = [], []
        pc = time.perf_counter_ns
        gc.disable()
        try:
            for o in batch:
                t0 = pc()
                d = router.decide(o)
                outer.append((pc() - t0) / 1000.0)
                inner.append(d.decision_us)
        finally:
            gc.enable()
        results[policy] = (inner, outer, log.counts_by_venue())
    pc = time.perf_counter_ns
    overhead = min(-(pc() - pc()) for _ in range(1000)) / 1000.0
    print(f"router decision time, {n_venues} venues x {levels} levels/side, {n} orders per policy "
          f"(timer overhead ~{abs(overhead):.2f} us)")
    print(f"{'policy':<11} {'p50 us':>8} {'p99 us':>8} {'max us':>8} | {'call p50':>9} {'call p99':>9}  venues chosen")
    for policy, (inner, outer, counts) in results.items():
        top = ", ".join(f"{k}:{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:4])
        print(f"{policy:<11} {pct(inner, .5):8.2f} {pct(inner, .99):8.2f} {max(inner):8.1f} | "
              f"{pct(outer, .5):9.2f} {pct(outer, .99):9.2f}  {top}")
    return results


def bench_probes(delays_ms: list[float], seconds: float, interval_ms: float, engine: str = "native",
                 proxy: bool = True) -> dict:
    """Simulator venues with a fixed injected one-way delay (no jitter) and the gateway; the
    gateway's probe figures (admin /status) against 2 x the injected delay.

    Per venue: ``rtt`` (decided -> answer handled, the whole probe as we see it), ``venue``
    (our bytes in the socket -> the answer's bytes read: what the router ranks by) and the
    process's ``floor`` (our send + receive path per probe) apart."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "router"))
    from live_rig import LiveRig  # noqa: PLC0415 - sockets and processes only for this part

    venues = [{"name": f"D{i}", "base_us": d * 1000.0, "jitter_us": 0.0, "proxy": proxy or d > 0,
               "probe_max_per_s": 1000.0} for i, d in enumerate(delays_ms)]
    routing = {"probe_interval_ms": interval_ms, "latency_window": 10_000}
    with tempfile.TemporaryDirectory(prefix="bench_router_") as tmp:
        with LiveRig(Path(tmp), venues, routing, engine=engine) as rig:
            rig.wait_ready(30.0, samples=1)
            time.sleep(seconds)
            st = rig.get("/status")
    snap = {row["name"]: row.get("market", {}) for row in st["venues"]}
    floor = st["gateway"].get("probe_floor") or {}
    print(f"probe figures vs injected latency ({engine} engine, {seconds:.0f}s, probe every {interval_ms:.0f} ms, "
          f"no jitter{', zero-delay venue through its delay line' if proxy else ''})")
    print("rtt = decided -> answer handled; venue = our bytes in the socket -> the answer's bytes read; "
          "expect = 2 x one-way delay")
    print(f"our floor (send + receive path per probe): p50 {_f(floor.get('p50_us'))} us, "
          f"p99 {_f(floor.get('p99_us'))} us, {floor.get('samples', 0)} samples; send path p50/p99 "
          f"{_f(floor.get('send_p50_us'))}/{_f(floor.get('send_p99_us'))} us, receive path "
          f"{_f(floor.get('receive_p50_us'))}/{_f(floor.get('receive_p99_us'))} us")
    print(f"{'venue':<6} {'one-way ms':>10} {'expect us':>9} {'samples':>7} {'rtt p50':>8} {'rtt p99':>8} "
          f"{'venue p50':>9} {'venue p99':>9} {'jitter us':>9} {'venue-exp':>9}")
    out = {"floor_p50_us": floor.get("p50_us"), "floor_p99_us": floor.get("p99_us"), "venues": {}}
    for v, d_ms in zip(venues, delays_ms):
        lat, rtt = snap[v["name"]]["latency"], snap[v["name"]].get("rtt", {})
        expect = 2 * d_ms * 1000
        p50 = lat["p50_us"]
        err = None if p50 is None else p50 - expect
        print(f"{v['name']:<6} {d_ms:10.2f} {expect:9.0f} {lat['samples']:7d} {_f(rtt.get('p50_us')):>8} "
              f"{_f(rtt.get('p99_us')):>8} {_f(p50):>9} {_f(lat['p99_us']):>9} {_f(lat['jitter_us']):>9} "
              f"{_f(err):>9}")
        out["venues"][v["name"]] = {"one_way_ms": d_ms, "rtt_p50_us": rtt.get("p50_us"),
                                    "rtt_p99_us": rtt.get("p99_us"), "venue_p50_us": p50,
                                    "venue_p99_us": lat["p99_us"]}
    return out


def _f(x) -> str:
    return "-" if x is None else f"{x:.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["decide", "probes", "all"], nargs="?", default="decide")
    ap.add_argument("--venues", type=int, default=8)
    ap.add_argument("--levels", type=int, default=10)
    ap.add_argument("--orders", type=int, default=20_000)
    ap.add_argument("--delays-ms", default="0,0.5,2,5", help="one-way delay per simulated venue")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--interval-ms", type=float, default=100.0)
    ap.add_argument("--engine", choices=("native", "quickfix"), default="native")
    ap.add_argument("--no-proxy", action="store_true", help="the zero-delay venue without its delay line")
    ap.add_argument("--json", action="store_true", help="probes: one JSON line of the figures last")
    a = ap.parse_args(argv)
    if a.what in ("decide", "all"):
        bench_decide(a.venues, a.levels, a.orders)
    if a.what in ("probes", "all"):
        out = bench_probes([float(x) for x in a.delays_ms.split(",")], a.seconds, a.interval_ms,
                           a.engine, proxy=not a.no_proxy)
        if a.json:
            import json  # noqa: PLC0415
            print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
