"""The garbage collector's share of the stubbed order path, per ``[collector]`` mode (prints numbers).

    python benchmarks/bench_collector.py [--orders 20000] [--tick 30] [--callgrind [--extra 4000]]

The gateway with its sessions stubbed out (``profile_gateway.stub_gateway``: our Python work
only, the start-up heap frozen) takes ``--orders`` orders, NOS in + ER out, non-stop (the
collector's worst case: never a pause to sweep in). Mode ``python``: CPython's automatic
collector (the gateway before ``[collector]``); mode ``loop``: the gateway's default policy,
its check run every ``--tick`` orders (the loop's timer: every 2 ms is ~30 orders at 15,000
orders/s). Per mode: the collections, their total and longest pause (``gc.callbacks``), the
thread CPU per order. ``--callgrind``: instructions per order of each mode under valgrind
(two runs of ``--orders`` and ``--orders + --extra``, the difference / ``--extra``),
repeatable on a loaded machine.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


class TimerlessLoop:
    """Stands in for the asyncio loop: the bench calls ``LoopCollector.step`` itself."""

    class _Handle:
        def cancel(self) -> None:
            pass

    def call_later(self, delay: float, callback, *args):  # noqa: ARG002 - the loop's signature
        return self._Handle()


def orders_with_looks(gw, oms, venue, first: int, n: int, look) -> float:
    """``profile_gateway.stub_orders`` (NOS in, fill in, every message pre-parsed), ClOrdIDs
    from ``first`` on, then ``look()``; returns thread CPU seconds of both."""
    from profile_gateway import stub_orders
    cpu = stub_orders(gw, oms, venue, n, first=first)
    t0 = time.thread_time()
    look()
    return cpu + time.thread_time() - t0


def run(mode: str, orders: int, tick: int) -> dict:
    """``orders`` stubbed orders (after 500 to warm up) under ``mode``; pause figures and CPU."""
    from gateway.common.collector import CollectorConfig, GcStats, LoopCollector
    from profile_gateway import stub_gateway
    with tempfile.TemporaryDirectory(prefix="bench-gc-") as d:
        gw, oms, venue = stub_gateway(Path(d), freeze=True)
        orders_with_looks(gw, oms, venue, 0, 500, lambda: None)
        now = [0.0]
        col = LoopCollector(CollectorConfig(mode=mode), clock=lambda: now[0])
        col.start(TimerlessLoop())
        stats = GcStats().install()

        def look() -> None:            # the loop's timer: 2 ms later, one look
            now[0] += 0.002
            if mode == "loop":
                col.step()
        cpu = 0.0
        try:
            for first in range(500, 500 + orders, tick):
                cpu += orders_with_looks(gw, oms, venue, first, tick, look)
        finally:
            stats.uninstall()
            col.stop()
            gw.core.close()
    return {**stats.summary(), "gc_us_per_order": sum(stats.total_s) / orders * 1e6,
            "cpu_us_per_order": cpu / orders * 1e6}


def callgrind(mode: str, orders: int, extra: int, tick: int) -> float:
    counts = []
    with tempfile.TemporaryDirectory(prefix="bench-gc-cg-") as d:
        for n in (orders, orders + extra):
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={d}/cg.{n}", sys.executable, __file__,
                   "--quiet", mode, "--orders", str(n), "--tick", str(tick)]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            m = re.search(r"Collected : (\d+)", res.stderr)
            assert m, res.stderr[-2000:]
            counts.append(int(m.group(1)))
    return (counts[1] - counts[0]) / extra


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=20000)
    ap.add_argument("--tick", type=int, default=30, help="orders between two looks of the loop's policy")
    ap.add_argument("--modes", default="python,loop")
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--extra", type=int, default=4000)
    ap.add_argument("--quiet", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quiet:
        run(args.quiet, args.orders, args.tick)
        return 0
    from gateway.common import accel
    print(f"# stubbed order path, {args.orders} orders non-stop, modules {accel.mode()[0]}; "
          f"load average {os.getloadavg()[0]:.2f}")
    for mode in args.modes.split(","):
        if args.callgrind:
            print(f"  {mode:7} {callgrind(mode, args.orders, args.extra, args.tick):,.0f} instructions per order")
            continue
        r = run(mode, args.orders, args.tick)
        print(f"  {mode:7} {r['collections']} collections (gen0/1/2 {'/'.join(map(str, r['per_generation']))}), "
              f"{r['total_ms']:.1f} ms = {r['gc_us_per_order']:.2f} us per order, longest {r['longest_ms']:.2f} ms; "
              f"CPU {r['cpu_us_per_order']:.1f} us per order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
