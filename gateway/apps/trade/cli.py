"""`fixgw trade`: run one scalping tactic live over FIX, with a live view and a report.

    fixgw trade --tactic momentum --config configs/tactics/momentum.toml
        # starts the simulator with configs/tactics/momentum-sim.toml and a gateway
    fixgw trade --tactic spread_capture --config configs/tactics/spread_capture.toml \\
        --gateway 127.0.0.1:9100 --comp-id OMS1 --venue ALPHA=127.0.0.1:9101 --venue BETA=127.0.0.1:9102
        # against a running gateway (password from $FIXGW_PASSWORD or --password-file)
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

from gateway.apps.client.feed import VenueAddress
from gateway.apps.trade.report import write_report
from gateway.apps.trade.runner import External, TradeRunner, TradeSettings
from gateway.common.configfile import ConfigError
from gateway.common.paths import REPO_ROOT
from gateway.core.strategies.registry import TACTICS


def parse_args(argv, prog: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--tactic", required=True, choices=sorted(TACTICS))
    ap.add_argument("--config", help="the tactic's TOML (default: configs/tactics/NAME.toml)")
    ap.add_argument("--scenario", help="simulator scenario (default: configs/tactics/NAME-sim.toml if it exists)")
    ap.add_argument("--no-scenario", action="store_true", help="the plain simulator")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of trading (default: %(default)s)")
    ap.add_argument("--seed", type=int, help="override the simulator's venue seeds")
    ap.add_argument("--gateway", metavar="HOST:PORT", help="trade through this running gateway instead")
    ap.add_argument("--comp-id", default="OMS1", help="our SenderCompID at --gateway (default: %(default)s)")
    ap.add_argument("--target-comp-id", default="FIXGW")
    ap.add_argument("--password-file", help="Password(554) for --gateway (else $FIXGW_PASSWORD, if set)")
    ap.add_argument("--venue", action="append", default=[], metavar="NAME=HOST:PORT",
                    help="with --gateway: a venue to take market data from (repeat)")
    ap.add_argument("--admin", help="with --gateway: its admin URL, for the live view (optional)")
    ap.add_argument("--run-dir", help="configs, stores and logs (default: var/trade/<tactic>-<UTC time>)")
    ap.add_argument("--out", help="report directory (default: reports/trade-<tactic>-<UTC time>)")
    ap.add_argument("--plain", action="store_true", help="summary lines instead of the redrawn view")
    return ap.parse_args(argv)


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: list[str] | None = None, prog: str = "fixgw trade", command: str = "trade") -> int:  # noqa: ARG001
    args = parse_args(argv, prog)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    config = Path(args.config or REPO_ROOT / "configs" / "tactics" / f"{args.tactic}.toml")
    scenario = None
    if not args.no_scenario and not args.gateway:
        default = REPO_ROOT / "configs" / "tactics" / f"{args.tactic}-sim.toml"
        scenario = Path(args.scenario) if args.scenario else (default if default.exists() else None)
    external = None
    try:
        if args.gateway:
            password = (Path(args.password_file).read_text().strip() if args.password_file
                        else os.environ.get("FIXGW_PASSWORD"))
            venues = []
            for v in args.venue:
                name, _, addr = v.partition("=")
                host, port = _hostport(addr)
                venues.append(VenueAddress(name=name, host=host, port=port))
            if not venues:
                print(f"{prog}: --gateway needs at least one --venue NAME=HOST:PORT for market data", file=sys.stderr)
                return 2
            host, port = _hostport(args.gateway)
            external = External(host, port, args.comp_id, password, venues, args.admin, args.target_comp_id)
        settings = TradeSettings(tactic=args.tactic, config=config, scenario=scenario, external=external,
                                 run_dir=Path(args.run_dir or f"var/trade/{args.tactic}-{stamp}"),
                                 duration_s=args.duration, seed=args.seed, out=sys.stdout,
                                 tty=False if args.plain else None,
                                 meta={"started_utc": stamp, "config": str(config),
                                       "scenario": str(scenario) if scenario else None})
        runner = TradeRunner(settings)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    _install_signals(runner)
    try:
        run = runner.run()
    except Exception as exc:  # noqa: BLE001 - say what failed; children are already stopped
        print(f"{prog}: FAILED: {type(exc).__name__}: {exc} (logs in {settings.run_dir})", file=sys.stderr)
        return 1
    run["scenario"] = runner.scenario_summary() if external is None else None
    summary, paths = write_report(run, Path(args.out or f"reports/trade-{args.tactic}-{stamp}"))
    hit = summary["hit_rate"]
    print(f"\n{args.tactic}: round trips {summary['round_trips']}, missed {summary['missed']}, hit rate "
          f"{'n/a' if hit is None else f'{100 * hit:.1f}%'}, PnL {summary['pnl_total']:+,.2f}, legging incidents "
          f"{summary['legging_incidents']}, orders {summary['accounting']['orders']} "
          f"(open {summary['accounting']['open']})")
    if summary["why_no_trades"]:
        print(f"no trades: {summary['why_no_trades']}")
    print(f"report: {paths['md']}  {paths['json']}")
    if not summary["accounting"]["accounted"]:
        print(f"{prog}: orders not all accounted for", file=sys.stderr)
        return 1
    return 0


def _install_signals(runner: TradeRunner) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):  # noqa: ARG001
        if runner.interrupted:
            if runner.cleaning:
                return
            raise KeyboardInterrupt
        runner.interrupt()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":
    raise SystemExit(main())
