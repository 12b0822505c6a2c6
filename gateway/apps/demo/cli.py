"""`fixgw demo`: simulator + gateway + scalping OMS client, a live view, then the report.

    fixgw demo                          # 30 s with the scalp policy
    fixgw demo --policy best_price      # the same with the classic SOR
    fixgw demo --compare --duration 20  # all three policies, same seeds, one report
"""
from __future__ import annotations

import argparse
import datetime as _dt
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from gateway.apps.demo.config import POLICIES, load_demo_config
from gateway.apps.demo.report import build_report, comparison_table, write_report
from gateway.apps.demo.runner import DemoRunner, RunSettings


def parse_args(argv, prog: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, help="seconds of trading per policy (default: demo.toml, 30)")
    ap.add_argument("--policy", choices=POLICIES, default="scalp", help="routing policy (default: %(default)s)")
    ap.add_argument("--compare", action="store_true", help="run all three policies on the same seeds")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the policies N times, interleaved, and report over all runs (default: 1)")
    ap.add_argument("--seed", type=int, help="override the simulator and client seeds")
    ap.add_argument("--config", help="demo settings TOML (default: configs/demo/demo.toml)")
    ap.add_argument("--sim-config", help="simulator template (default: configs/demo/sim.toml)")
    ap.add_argument("--gateway-config", help="gateway template (default: configs/demo/gateway.toml)")
    ap.add_argument("--run-dir", help="configs, stores and logs of the run (default: var/demo/<UTC time>)")
    ap.add_argument("--out", help="report directory (default: reports/demo-<UTC time>)")
    ap.add_argument("--plain", action="store_true", help="summary lines instead of the redrawn table")
    ap.add_argument("--symbol", help="the book shown in the live view (default: the last client symbol)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None, prog: str = "fixgw demo", command: str = "demo") -> int:
    args = parse_args(argv, prog)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_demo_config(args.config)
    duration = args.duration if args.duration is not None else cfg.duration_s
    if duration <= 0 or args.repeat < 1:
        print(f"{prog}: --duration and --repeat must be positive", file=sys.stderr)
        return 2
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = Path(args.run_dir or f"var/demo/{stamp}")
    out_dir = Path(args.out or f"reports/demo-{stamp}")
    settings = RunSettings(cfg=cfg, run_dir=run_dir, duration_s=duration, seed=args.seed,
                           tty=False if args.plain else None, view_symbol=args.symbol)
    if args.sim_config:
        settings.sim_template = Path(args.sim_config)
    if args.gateway_config:
        settings.gateway_template = Path(args.gateway_config)
    runner = DemoRunner(settings)
    # Interleaved (scalp, best_price, dma, scalp, ...) so that a change in machine load
    # over time does not fall on one policy.
    policies = (POLICIES if args.compare else (args.policy,)) * args.repeat
    _install_signals(runner)

    runs, failures = [], []
    for i, policy in enumerate(policies):
        if runner.interrupted:
            break
        label = policy if args.repeat == 1 else f"{policy}-{i // (len(policies) // args.repeat) + 1}"
        runner.say(f"--- {prog}: policy {policy}, {duration:g} s of trading (run dir {run_dir / label})")
        try:
            runs.append(runner.run_policy(policy, label))
        except Exception as exc:  # noqa: BLE001 - report what ran, say what failed
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
            runner.say(f"!!! policy {policy} failed: {exc} (logs in {run_dir / label})")
    failures += [f"{r['policy']}: the {r['meta']['died']} exited during the run" for r in runs if r["meta"].get("died")]
    if not runs:
        print(f"{prog}: no run completed: {'; '.join(failures) or 'interrupted'}", file=sys.stderr)
        return 1
    meta = {"started_utc": stamp, "duration_s": duration, "repeats": args.repeat,
            "policies": list(dict.fromkeys(r["policy"] for r in runs)),
            "sim_seed": runs[0]["meta"].get("sim_seeds"), "client_seed": runs[0]["meta"].get("client_seed"),
            "symbols": list(cfg.client.symbols), "run_dir": str(run_dir.resolve()),
            "interrupted": runner.interrupted, "failures": failures}
    report = build_report(runs, meta)
    paths = write_report(report, out_dir)
    runner.say("\n" + comparison_table(report["summaries"]) + "\n")
    runner.say(f"report: {paths['md']}  {paths['json']}  charts: "
               f"{', '.join(Path(p).name for p in report['charts']['files']) or report['charts']['note']}")
    if runner.interrupted:
        runner.say("(interrupted: the report covers what ran)")
    for failure in failures:
        print(f"{prog}: FAILED {failure}", file=sys.stderr)
    unaccounted = [s["policy"] for s in report["summaries"] if not s["accounted"]]
    if unaccounted:
        print(f"{prog}: orders not all accounted for in {unaccounted}", file=sys.stderr)
    return 1 if failures or unaccounted else 0


def _install_signals(runner: DemoRunner) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):  # noqa: ARG001
        # os.write, not print: the handler may interrupt a print of the main thread.
        if runner.interrupted:
            if runner.cleaning:
                _notice("still stopping the simulator and the gateway (bounded: at most ~25 s)")
                return
            # A second Ctrl-C: stop waiting for the orderly end; every child is still
            # stopped by the runner's finally blocks on the way out.
            raise KeyboardInterrupt
        _notice("stopping: orderly shutdown, then the report (Ctrl-C again to abort)")
        runner.interrupt()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _notice(text: str) -> None:
    try:
        os.write(sys.stderr.fileno(), (text + "\n").encode())
    except (OSError, ValueError):
        pass
