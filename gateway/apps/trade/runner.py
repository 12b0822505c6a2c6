"""One `fixgw trade` run: the stack (or an already running gateway), the tactic, the view.

By default: the demo's simulator template with the venues renamed to the scenario's
(``configs/tactics/NAME-sim.toml``) and the scenario plugged in (``simproc``), plus a
gateway (scalp policy) from the demo's gateway template, on free ports in the run dir.
With ``external`` set, nothing is started: the client logs on to that gateway and takes
market data from the venues given. Children are started and stopped by their Popen
(``gateway.common.procs``); every wait is bounded.
"""
from __future__ import annotations

import copy
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.apps.client.feed import VenueAddress
from gateway.apps.client.runtime import ClientRuntime
from gateway.apps.demo.config import CONFIG_DIR
from gateway.apps.demo.runner import (
    client_stats, gateway_config, order_dict, read_toml, tick_sizes, trips_with_ids, wait_gateway_ready,
)
from gateway.apps.demo.tomlout import dumps
from gateway.apps.demo.view import LiveView, fetch_json
from gateway.common import procs
from gateway.common.configfile import load_config
from gateway.common.paths import REPO_ROOT
from gateway.core.matching.scenarios import ScenarioFile
from gateway.core.strategies.registry import lookup


@dataclass
class External:
    """An already running gateway (and the venues to take market data from)."""
    host: str
    port: int
    comp_id: str
    password: str | None
    venues: list[VenueAddress]
    admin: str | None = None
    gateway_comp_id: str = "FIXGW"


@dataclass
class TradeSettings:
    tactic: str
    config: Path
    run_dir: Path
    duration_s: float
    scenario: Path | None = None          # None: plain simulator
    external: External | None = None
    seed: int | None = None
    out: Any = None
    tty: bool | None = None
    startup_timeout_s: float = 30.0
    drain_timeout_s: float = 5.0
    sim_template: Path = CONFIG_DIR / "sim.toml"
    gateway_template: Path = CONFIG_DIR / "gateway.toml"
    meta: dict = field(default_factory=dict)


def venue_names(template: dict, scen: ScenarioFile | None) -> list[str]:
    """The template's venues renamed, in order, to the scenario's (others keep their names)."""
    names = [v["name"] for v in template["venues"]]
    wanted = list(scen.venues or ([scen.venue] if scen.venue else [])) if scen else []
    out = []
    for i, n in enumerate(names):
        new = wanted[i] if i < len(wanted) else n
        while new in out or (i >= len(wanted) and new in wanted):
            new += "X"
        out.append(new)
    return out


class TradeRunner:
    def __init__(self, s: TradeSettings) -> None:
        self.s = s
        self.stop = threading.Event()
        self.interrupted = False
        self.cleaning = False
        cls, cfg_cls = lookup(s.tactic)
        self.cfg = load_config(s.config, cfg_cls)
        self.strategy = cls(self.cfg)
        self.scenario = load_config(s.scenario, ScenarioFile) if s.scenario else None
        self.sim_proc = self.gw_proc = None
        self.client: ClientRuntime | None = None
        self.view: LiveView | None = None
        self.meta: dict = dict(s.meta)

    def interrupt(self) -> None:
        self.interrupted = True
        self.stop.set()

    def say(self, text: str) -> None:
        print(text, file=self.s.out, flush=True)

    # ------------------------------------------------------------ the run
    def run(self) -> dict:
        try:
            if self.s.external is None:
                oms, venues, admin, ticks, gw_id, comp, pw = self.start_stack()
            else:
                e = self.s.external
                oms, venues, admin, gw_id, comp, pw = (e.host, e.port), e.venues, e.admin, e.gateway_comp_id, \
                    e.comp_id, e.password
                ticks = {s["symbol"]: float(s["tick_size"]) for s in read_toml(self.s.sim_template)["symbols"]}
                self.meta["against"] = f"gateway {e.host}:{e.port} as {e.comp_id}"
            self.trade(oms, venues, admin, ticks, gw_id, comp, pw)
            return self.collect(admin)
        finally:
            self.cleaning = True
            try:
                self.shutdown()
            finally:
                self.cleaning = False

    def start_stack(self):
        s = self.s
        pdir = s.run_dir.resolve()
        pdir.mkdir(parents=True, exist_ok=True)
        sim_t, gw_t = read_toml(s.sim_template), read_toml(s.gateway_template)
        names = venue_names(sim_t, self.scenario)
        rename = dict(zip([v["name"] for v in sim_t["venues"]], names))
        ports = procs.free_ports(len(names) + 2)
        venue_ports = dict(zip(names, ports))
        oms_port, admin_port = ports[-2:]
        sim = copy.deepcopy(sim_t)
        sim["store_dir"], sim["log_dir"] = str(pdir / "sim-store"), ""
        for i, v in enumerate(sim["venues"]):
            v["name"] = rename[v["name"]]
            v["port"] = venue_ports[v["name"]]
            v.get("latency", {}).pop("schedule", None)      # a steady market: the tactic, not a slowdown
            if s.seed is not None:
                v["seed"] = s.seed * 1000 + i + 1
        gw_t = copy.deepcopy(gw_t)
        for v in gw_t["venues"]:
            v["name"] = rename.get(v["name"], v["name"])
        gw_t.setdefault("routing", {})["default_venue"] = names[0]
        gw_t["routing"]["md_symbols"] = sorted({x["symbol"] for x in sim["symbols"]})
        password = secrets.token_urlsafe(16)           # our TRADE client's, for this run only
        gw = gateway_config(gw_t, venue_ports, oms_port, admin_port, pdir / "gateway-store", "scalp",
                            client=("TRADE", password))
        gw["oms"]["clients"] = [c for c in gw["oms"]["clients"] if c["comp_id"] == "TRADE"]
        (pdir / "sim.toml").write_text(dumps(sim))
        (pdir / "gateway.toml").write_text(dumps(gw))
        if self.scenario is not None:
            cmd = [procs.fixgw_command()[0], "-m", "gateway.apps.trade.simproc", "--config", str(pdir / "sim.toml"),
                   "--tactic", s.tactic, "--scenario", str(s.scenario), "--summary", str(pdir / "scenario.json")]
            self.meta["against"] = f"the simulator with the {s.tactic} scenario, through a gateway (scalp policy)"
        else:
            cmd = procs.fixgw_command("sim", "--config", str(pdir / "sim.toml"))
            self.meta["against"] = "the plain simulator (no scenario for this tactic), through a gateway"
        self.sim_proc = procs.start(cmd, pdir / "sim.log", cwd=REPO_ROOT)
        procs.wait_for_ports(list(venue_ports.values()), timeout=s.startup_timeout_s, proc=self.sim_proc)
        self.gw_proc = procs.start(procs.fixgw_command("run", "--config", str(pdir / "gateway.toml"),
                                                       "--log-level", "WARNING"), pdir / "gateway.log")
        (pdir / "pids.json").write_text(json.dumps({"sim": self.sim_proc.pid, "gateway": self.gw_proc.pid}))
        procs.wait_for_ports([oms_port, admin_port], timeout=s.startup_timeout_s, proc=self.gw_proc)
        admin = f"http://127.0.0.1:{admin_port}"
        wait_gateway_ready(admin, names, s.startup_timeout_s, self.gw_proc, self.stop)
        venues = [VenueAddress(name=n, host="127.0.0.1", port=p) for n, p in venue_ports.items()]
        return ("127.0.0.1", oms_port), venues, admin, tick_sizes(sim), "FIXGW", "TRADE", password

    def trade(self, oms, venues, admin, ticks, gw_id, comp, password) -> None:
        s = self.s
        fields = ((554, password),) if password else ()
        self.client = client = ClientRuntime(self.strategy, oms=oms, venues=venues, symbols=self.cfg.symbols,
                                             ticks=ticks, comp_id=comp, gateway_comp_id=gw_id,
                                             logon_fields=fields)
        client.start(s.startup_timeout_s)
        client.start_trading()
        self.view = LiveView(admin or "http://127.0.0.1:0", lambda: client.call(lambda: client_stats(client)),
                             f"trade {s.tactic}", s.duration_s, self.cfg.symbols[0], clock=client.elapsed,
                             out=s.out, tty=s.tty, ticks=ticks)
        self.view.start()
        children = {"gateway": self.gw_proc, "simulator": self.sim_proc}
        deadline = time.monotonic() + s.duration_s
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.stop.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            died = [n for n, p in children.items() if p is not None and p.poll() is not None]
            if died:
                self.meta["died"] = died[0]
                self.say(f"!!! the {died[0]} exited during the run; stopping early")
                break
        self.meta["trading_s"] = round(client.elapsed(), 3)
        client.stop_trading()
        self.meta["drained"] = client.drain(s.drain_timeout_s)
        self.view.stop()
        self.view.poll_once()

    def collect(self, admin: str | None) -> dict:
        client = self.client

        def grab() -> dict:
            t0 = client.t0 or 0.0
            return {"trips": trips_with_ids(client.strategy.trips), "stats": client.strategy.stats(),
                    "orders": [order_dict(o, t0) for o in client.driver.log.entries()],
                    "driver": dict(client.driver.stats), "feed": dict(client.feed.stats)}
        got = client.call(grab)
        final = fetch_json(f"{admin}/status", timeout=5.0) if admin else None
        self.meta["driver"], self.meta["feed"] = got.pop("driver"), got.pop("feed")
        return {"tactic": self.s.tactic, "meta": self.meta, **got, "final_status": final, "scenario": None}

    def shutdown(self) -> None:
        """strategy stopped and drained already; logout, then the gateway, then the simulator."""
        try:
            if self.view is not None:
                self.view.stop()
        finally:
            try:
                if self.client is not None:
                    self.client.stop()
            finally:
                try:
                    self.meta["gateway_exit"] = procs.stop(self.gw_proc)
                finally:
                    self.meta["sim_exit"] = procs.stop(self.sim_proc)

    def scenario_summary(self) -> dict | None:
        path = self.s.run_dir.resolve() / "scenario.json"
        try:
            return json.loads(path.read_text()) if path.exists() else None
        except ValueError:
            return None
