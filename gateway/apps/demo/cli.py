"""`fixgw demo`: simulator + gateway + round-trip scalper over FIX, a live view, then the report.

    fixgw demo                          # scalp, best_price and dma on the same seeds (~20 s each),
                                        # then the same with the competitors off (the control)
    fixgw demo --repeat 3               # three interleaved repeats of each
    fixgw demo --policy scalp           # one policy
    fixgw demo --no-control             # skip the control runs
    fixgw demo --policy scalp --no-control --duration 30 --zero-latency
                                        # every venue at 0 us: signal-to-execution is all our software
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
from gateway.common.configfile import ConfigError
from gateway.apps.demo.report import build_report, comparison_table, write_report
from gateway.apps.demo.runner import DemoRunner, RunSettings


def parse_args(argv, prog: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, help="seconds of trading per run (default: demo.toml, 20)")
    ap.add_argument("--policy", choices=POLICIES, help="run only this routing policy (default: all three)")
    ap.add_argument("--compare", action="store_true", help="all three policies (the default; kept for scripts)")
    ap.add_argument("--no-control", action="store_true", help="skip the control runs (competitors off)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the policies N times, interleaved, and report over all runs (default: 1)")
    ap.add_argument("--seed", type=int, help="override the simulator and client seeds")
    ap.add_argument("--config", help="demo settings TOML (default: configs/demo/demo.toml)")
    ap.add_argument("--sim-config", help="simulator template (default: configs/demo/sim.toml)")
    ap.add_argument("--zero-latency", action="store_true",
                    help="no injected latency at any venue (the run's copy of the simulator config): "
                         "signal-to-execution is then all our software")
    ap.add_argument("--gateway-config", help="gateway template (default: configs/demo/gateway.toml)")
    ap.add_argument("--run-dir", help="configs, stores and logs of the run (default: var/demo/<UTC time>)")
    ap.add_argument("--out", help="report directory (default: reports/demo-<UTC time>)")
    ap.add_argument("--no-record", action="store_true",
                    help="do not record the client's market data (reports/demo-<time>/recordings/); the "
                         "recording's tap runs before the client sees each message")
    ap.add_argument("--plain", action="store_true", help="summary lines instead of the redrawn table")
    ap.add_argument("--symbol", help="the book shown in the live view (default: the last client symbol)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None, prog: str = "fixgw demo", command: str = "demo") -> int:
    args = parse_args(argv, prog)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_demo_config(args.config)
        cfg.scalper()
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    duration = args.duration if args.duration is not None else cfg.duration_s
    if duration <= 0 or args.repeat < 1:
        print(f"{prog}: --duration and --repeat must be positive", file=sys.stderr)
        return 2
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = Path(args.run_dir or f"var/demo/{stamp}")
    out_dir = Path(args.out or f"reports/demo-{stamp}")
    settings = RunSettings(cfg=cfg, run_dir=run_dir, duration_s=duration, seed=args.seed,
                           tty=False if args.plain else None, view_symbol=args.symbol,
                           recording_dir=None if args.no_record else out_dir / "recordings",
                           zero_latency=args.zero_latency)
    if args.sim_config:
        settings.sim_template = Path(args.sim_config)
    if args.gateway_config:
        settings.gateway_template = Path(args.gateway_config)
    runner = DemoRunner(settings)
    # Interleaved (scalp, best_price, dma, scalp, ...) so that a change in machine load
    # over time does not fall on one policy; the control runs (competitors off) after each repeat.
    policies = (args.policy,) if args.policy else POLICIES
    control = cfg.control and not args.no_control
    plan = [(k, policy, comp) for k in range(1, args.repeat + 1)
            for comp in ((True, False) if control else (True,)) for policy in policies]
    _install_signals(runner)

    runs, failures = [], []
    for k, policy, comp in plan:
        if runner.interrupted:
            break
        label = f"{policy}-{k}" + ("" if comp else "-control")
        settings.repeat, settings.repeats, settings.competitors = k, args.repeat, comp
        runner.say(f"--- {prog}: {policy} repeat {k}/{args.repeat}{'' if comp else ' (control: competitors off)'}, "
                   f"{duration:g} s (run dir {run_dir / label})")
        try:
            runs.append(runner.run_policy(policy, label))
        except Exception as exc:  # noqa: BLE001 - report what ran, say what failed
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
            runner.say(f"!!! {label} failed: {exc} (logs in {run_dir / label})")
    failures += [f"{r['policy']}: the {r['meta']['died']} exited during the run" for r in runs if r["meta"].get("died")]
    if not runs:
        print(f"{prog}: no run completed: {'; '.join(failures) or 'interrupted'}", file=sys.stderr)
        return 1
    sc = runner.scalper_cfg
    meta = {"started_utc": stamp, "duration_s": duration, "repeats": args.repeat,
            "policies": list(dict.fromkeys(r["policy"] for r in runs)),
            "sim_seed": runs[0]["meta"].get("sim_seeds"), "market_seed": runs[0]["meta"].get("market_seed"),
            "symbols": list(sc.symbols), "signal": sc.signal, "strategy": sc.model_dump(mode="json"),
            "run_dir": str(run_dir.resolve()), "interrupted": runner.interrupted, "failures": failures}
    report = build_report(runs, meta)
    paths = write_report(report, out_dir)
    runner.say("\n" + comparison_table(report) + "\n")
    runner.say(f"report: {paths['md']}  {paths['json']}")
    if runner.interrupted:
        runner.say("(interrupted: the report covers what ran)")
    for failure in failures:
        print(f"{prog}: FAILED {failure}", file=sys.stderr)
    unaccounted = [p for part in (report["policies"], report["control"]["policies"])
                   for p, s in part.items() if not s["accounting"]["accounted"]]
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
