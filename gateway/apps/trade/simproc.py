"""The simulator with a tactic's scenario generator plugged in as one more flow source.

    python -m gateway.apps.trade.simproc --config sim.toml --tactic momentum \
        --scenario configs/tactics/momentum-sim.toml [--summary scenario.json]

Starts ``SimExchange`` (every venue native, one loop), then, on the simulator's loop, adds a
``ScenarioSource`` wrapping ``gateway.core.matching.scenarios.build_scenario(...)`` to the
market and kicks the market driver. Runs until SIGTERM/SIGINT; at exit writes what the
scenario did (episodes, their outcomes) to ``--summary`` so the run's report can say why a
tactic traded or did not.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from functools import partial
from pathlib import Path

from gateway.common.configfile import ConfigError, load_config
from gateway.core.matching.scenarios import ScenarioFile, apply_actions, build_scenario

log = logging.getLogger("trade.simproc")


class ScenarioSource:
    """Adapter: a scenario generator (``next_at`` / ``step(now, engines)``) as a market flow source."""

    def __init__(self, gen, engines: dict) -> None:
        self.gen = gen
        self.engines = engines
        self.actions = 0

    def next_time(self) -> float:
        return self.gen.next_at()

    def step(self, now: float) -> list:
        from sim_exchange.market import EngineCall
        actions = self.gen.step(now, self.engines)
        self.actions += len(actions)
        return [EngineCall(a.venue, partial(_apply_one, a)) for a in actions if a.venue in self.engines]


def _apply_one(action, engine) -> list:
    return apply_actions({action.venue: engine}, [action])[action.venue]


def plug(ex, tactic: str, scenario: ScenarioFile, warmup_s: float = 1.0) -> ScenarioSource:
    """Add the scenario to a started SimExchange's market (call on the simulator's loop)."""
    now = ex.driver.clock()
    src = ScenarioSource(build_scenario(tactic, scenario, start_at=now + warmup_s), ex.market.engines)
    ex.market.add_source(src)
    ex.driver.kick()
    return src


def main(argv: list[str] | None = None) -> int:
    from sim_exchange.config import SimConfig
    from sim_exchange.exchange import SimExchange
    ap = argparse.ArgumentParser(prog="python -m gateway.apps.trade.simproc", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--tactic", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--summary", help="JSON file written at exit: what the scenario did")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds before the first episode")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = SimConfig.load(args.config)
        scen = load_config(args.scenario, ScenarioFile)
    except ConfigError as exc:
        print(f"simproc: {exc}", file=sys.stderr)
        return 2
    ex = SimExchange(cfg).start()
    src = None
    try:
        async def add():
            return plug(ex, args.tactic, scen, args.warmup)
        src = ex._loop.run(add())      # noqa: SLF001 - the loop the market lives on
        print(f"scenario {args.tactic} plugged into {sorted(ex.market.engines)}", flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
    finally:
        summary = None
        try:
            async def grab():
                return {"episodes": src.gen.episodes, "actions": src.actions, "log": list(src.gen.log)}
            if src is not None and ex._loop is not None:  # noqa: SLF001
                summary = ex._loop.run(grab(), timeout=5)  # noqa: SLF001
        except Exception:  # noqa: BLE001 - the summary is a nicety; stopping is not
            log.exception("scenario summary")
        ex.stop()
        if args.summary and summary is not None:
            Path(args.summary).write_text(json.dumps(summary, default=str))
    print("sim stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
