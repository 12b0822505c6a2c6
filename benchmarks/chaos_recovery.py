"""The full chaos recovery run: thousands of orders (IOC, Day, cancels, replaces) from one
or two OMS sessions through `fixgw run` to simulated venues, SIGKILL of the gateway at
many seeded random points, a restart each time; prints the figures and checks:

- every OMS order has exactly one terminal report (per order chain, across reconnects;
  session repeats and PossResend reports with a known ExecID are not new events);
- no venue order was sent twice (fresh NewOrderSingles per ClOrdID at the venues);
- the gateway's positions equal the venues' fills (and the OMS's);
- the gateway restarted every time.
Offending orders are printed with every report they got. Exit status 1 if any fails.

    PYTHONPATH=. .venv/bin/python benchmarks/chaos_recovery.py --orders 5000 --kills 30 --seed 1
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chaos.harness import ChaosRun, RunConfig, report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=5000)
    p.add_argument("--kills", type=int, default=30)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sessions", type=int, choices=(1, 2), default=2)
    p.add_argument("--venues", type=int, choices=(1, 2, 3), default=2)
    p.add_argument("--flow", action="store_true", help="background flow on the venues (Day orders may fill)")
    p.add_argument("--sim-engine", choices=("native", "quickfix"), default="native")
    p.add_argument("--window", type=int, default=40, help="orders without a first answer per session")
    p.add_argument("--keep", action="store_true", help="keep the run directory (logs, journals)")
    p.add_argument("--retire-after-s", type=float, default=None,
                   help="the gateway's retire_after_s (0: ended orders leave memory at the next tick)")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="chaos-recovery-"))
    cfg = RunConfig(orders=args.orders, kills=args.kills, seed=args.seed, sessions=args.sessions,
                    venues=args.venues, flow=args.flow, sim_engine=args.sim_engine, window=args.window,
                    final_timeout_s=60.0, retire_after_s=args.retire_after_s)
    run = ChaosRun(tmp, cfg, log=lambda s: print(s, flush=True))
    print(f"run directory: {tmp}", flush=True)
    try:
        run.start()
        res = run.run()
    finally:
        run.stop()
    report(res, log=lambda s: print(s, flush=True), max_listed=50)
    if not args.keep and res.ok:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
