"""`fixgw sim` / `python -m sim_exchange`: run the configured venues until SIGINT/SIGTERM."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from gateway.common.configfile import ConfigError
from gateway.common.collector import CollectorConfig, LoopCollector
from gateway.common.procs import freeze_startup_heap
from sim_exchange.config import SimConfig
from sim_exchange.exchange import SimExchange


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Simulated FIX 4.4 exchange (one or more venues).")
    p.add_argument("--config", default="configs/sim.toml", help="TOML config (format: configs/sim.toml)")
    p.add_argument("--venue", action="append", metavar="NAME",
                   help="run only this venue of the config (repeatable); one process per venue "
                        "gives each its own loop and GIL, but no cross-venue competitors")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds (default: run until signalled)")
    p.add_argument("--stats", action="store_true", help="print per-venue statistics as JSON at exit")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    return p


def listening_line(v) -> str:
    lat = v.cfg.latency
    if lat.needs_proxy:
        delay = f"one-way {lat.base_us:.0f} us"
        if lat.jitter_us and lat.jitter != "none":
            delay += f" +/- {lat.jitter_us:.0f} us {lat.jitter}"
        if lat.schedule:
            delay += ", then " + ", ".join(f"{s.base_us:.0f} us at {s.at_s:g}s" for s in lat.schedule)
    else:
        delay = "no injected latency"
    flow = f"flow {v.cfg.flow.rate_per_s:g}/s per symbol" if v.cfg.flow.enabled else "flow off"
    engine = getattr(v, "kind", "quickfix")
    poll = f"; polls {v.cfg.busy_poll_us} us after each read" if v.cfg.busy_poll_us else ""
    return (f"venue {v.name} listening on 127.0.0.1:{v.port} as {v.comp_id} "
            f"({delay}; {flow}; symbols {','.join(sorted(v.engine.instruments))}; {engine} engine{poll})")


def market_line(ex: SimExchange) -> str | None:
    """What the cross-venue market does in this process (None when it is off)."""
    m = ex.config.market
    if not m.enabled or ex.market is None:
        return None
    venues = sorted(ex.native)
    comps = (f"{len(m.competitors)} competitor(s) across {', '.join(venues)}"
             if m.competitors_enabled and m.competitors and len(venues) > 1
             else "no cross-venue competitors (one venue in this process)" if len(venues) <= 1
             else "competitors off")
    lead = [v.name for v in ex.config.venues if v.name in venues and v.market.quote and v.market.lag_us == 0]
    return (f"market: fair value moves {m.move_rate_per_s:g}/s per symbol, lead {','.join(lead) or '-'}; {comps}")


def wait_for_shutdown(duration: float | None = None) -> None:
    """Block the main thread (no polling) until SIGINT/SIGTERM or ``duration`` passes."""
    stop = threading.Event()

    def _handler(signum, frame):  # noqa: ARG001 - signal signature
        stop.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    stop.wait(duration)


def main(argv: list[str] | None = None, prog: str = "fixgw sim", command: str = "sim") -> int:  # noqa: ARG001
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = SimConfig.load(args.config)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if args.venue:
        unknown = sorted(set(args.venue) - {v.name for v in config.venues})
        if unknown:
            print(f"{prog}: --venue {', '.join(unknown)}: not in {args.config} "
                  f"(have {', '.join(v.name for v in config.venues)})", file=sys.stderr)
            return 2
        config = config.model_copy(update={"venues": [v for v in config.venues if v.name in args.venue]})
    cpu = config.pin_cpu()              # before any thread starts: they inherit it
    ex = SimExchange(config)
    try:
        ex.start()
    except Exception as exc:  # noqa: BLE001 - e.g. a port in use: say so, exit non-zero
        print(f"{prog}: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    freeze_startup_heap()
    # --- collector (gateway/common/collector.py): the native venues' loop runs the collections,
    # at pauses and within bounds, as the gateway's does (defaults of [collector])
    sim_loop = ex.event_loop
    collector = LoopCollector(CollectorConfig()) if sim_loop is not None else None
    if collector is not None:
        sim_loop.call_soon_threadsafe(collector.start, sim_loop)
    # ---
    for v in ex.venues.values():
        print(listening_line(v), flush=True)
    if cpu is not None:
        print(f"sim pinned to CPU {cpu}", flush=True)
    line = market_line(ex)
    if line:
        print(line, flush=True)
    try:
        wait_for_shutdown(duration=args.duration)
    finally:
        stats = ex.stats()
        if collector is not None:            # on the loop's thread, before the venues stop there
            sim_loop.call_soon_threadsafe(collector.stop)
        ex.stop()
    if args.stats:
        print(json.dumps(stats, default=str, indent=1))
    print("sim stopped", flush=True)
    return 0
