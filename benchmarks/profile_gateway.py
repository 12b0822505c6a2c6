"""Where a gateway order's time goes: stage timers around the order path (prints a table).

    .venv/bin/python benchmarks/profile_gateway.py [--orders 2000]

The gateway runs in this process with perf_counter timers wrapped around each stage of
the order path; the load (a raw OMS client sending one IOC order at a time, and a raw fake
venue that fills each at once) runs in a child process, so that it does not compete for
this process's GIL. The venue socket is up before the gateway starts (the child opens it). Times are per call, in microseconds, inclusive of nested stages:
``quickfix send`` is the C++ ``sendToTarget`` (header, serialise, FileStore, socket).
What the timers cannot see (quickfix parsing and validating the incoming message before
our callback, and the GIL hand-over between quickfix's threads) is the remainder of the
edge-to-edge figures of bench_gateway.py.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gateway.fix import quickfix_backend as fixedge, procs  # noqa: E402
from gateway.common.configfile import load_config  # noqa: E402

TIMES: dict[str, list[float]] = {}


def timed(name: str, obj, attr: str) -> None:
    fn = getattr(obj, attr)
    bucket = TIMES.setdefault(name, [])

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            bucket.append((time.perf_counter() - t0) * 1e6)
    setattr(obj, attr, wrapper)


def drive(oms_port: int, venue_port: int, n: int) -> None:
    """Child process: the fake venue and the OMS client (one order at a time)."""
    from bench_gateway import FakeVenue, client, send_order, wait_terminal
    venue = FakeVenue("FAKE", venue_port)
    venue.start()
    if not venue.logged_on.wait(30):
        raise SystemExit("the gateway did not log on to the fake venue")
    procs.wait_for_ports([oms_port], 30)
    c = client(oms_port, "FIXGW")
    for i in range(n):
        send_order(c, f"p{i}")
        wait_terminal(c, f"p{i}")
    c.logout()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=2000)
    ap.add_argument("--drive", type=int, nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drive:
        drive(args.drive[0], args.drive[1], args.orders)
        return 0
    from bench_gateway import gateway_config
    from gateway.apps.server.config import GatewayConfig
    from gateway.apps.server.app import Gateway

    with tempfile.TemporaryDirectory(prefix="prof-gw-") as d:
        tmp = Path(d)
        vport = procs.free_port()
        path, cfg = gateway_config(tmp, {"FAKE": vport})
        load = subprocess.Popen([sys.executable, __file__, "--drive", str(cfg["oms"]["port"]), str(vport),
                                 "--orders", str(args.orders)])
        gw = Gateway(load_config(path, GatewayConfig))
        timed("OMS NewOrderSingle callback", gw.oms, "from_app")
        timed("  risk check", gw.risk, "check")
        timed("  journal write", gw.journal, "write")
        timed("  order state (accept)", gw.orders, "accept")
        timed("  venue order build+send", gw.venues, "send")
        timed("venue ExecutionReport callback", gw.venues, "from_app")
        timed("  order state (exec)", gw.orders, "on_venue_exec")
        timed("  OMS report build+send", gw.oms, "send_exec")
        timed("quickfix send (C++ sendToTarget)", fixedge, "send")
        timed("  toApp callback (venue)", gw.venues, "toApp")
        timed("  toApp callback (OMS)", gw.oms, "toApp")
        gw.start()
        router = gw.router_for("FIX.4.4:FIXGW->OMS1")
        timed("  route decision", router, "decide")
        try:
            load.wait(300)
        finally:
            procs.stop(load)
            gw.stop()
    print(f"# gateway order path, {args.orders} orders one at a time (us per call, inclusive)")
    print(f"{'stage':36} {'calls':>6} {'p50':>8} {'p90':>8} {'p99':>8}")
    for name, xs in TIMES.items():
        if xs:
            a = np.asarray(xs)
            print(f"{name:36} {len(a):6d} {np.percentile(a, 50):8.1f} {np.percentile(a, 90):8.1f} "
                  f"{np.percentile(a, 99):8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
