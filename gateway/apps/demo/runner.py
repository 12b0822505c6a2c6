"""One demo run per policy: write the configs, start the simulator and the gateway,
trade with the round-trip scalper (``StrategyDriver`` on the client's own asyncio loop
thread, ``gateway.apps.client.runtime``) while the live view runs, collect, stop everything.

Every child is started with ``gateway.common.procs`` and stopped by its Popen in ``finally``
(no orphans, even on Ctrl-C or an exception). Waits are bounded and block on events.
"""
from __future__ import annotations

import copy
import secrets
import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from gateway.apps.backtest.record import RecordingHandle, start_recording
from gateway.common import procs
from gateway.apps.client.feed import VenueAddress
from gateway.apps.client.runtime import ClientRuntime
from gateway.apps.demo.config import CONFIG_DIR, DemoConfig
from gateway.core.strategies.scalper import Scalper, ScalperConfig
from gateway.apps.demo.tomlout import dumps
from gateway.apps.demo.view import LiveView, fetch_json

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger("demo.runner")


@dataclass
class RunSettings:
    cfg: DemoConfig
    run_dir: Path
    duration_s: float
    sim_template: Path = CONFIG_DIR / "sim.toml"
    gateway_template: Path = CONFIG_DIR / "gateway.toml"
    seed: int | None = None            # overrides the sim and client seeds when set
    out: TextIO = field(default_factory=lambda: sys.stdout)
    tty: bool | None = None
    view_symbol: str | None = None     # the book shown in the live view (default: the last client symbol)
    recording_dir: Path | None = None  # each run's market data and probes recorded here (<label>.rec); None: not recorded
    competitors: bool = True           # False: the control (the simulator's competitors switched off)
    zero_latency: bool = False         # every venue at 0 us injected latency: the whole path is our software
    repeat: int = 1                    # shown in the live view
    repeats: int = 1


def read_toml(path: Path) -> dict:
    return tomllib.loads(Path(path).read_text())


def sim_config(template: dict, ports: dict[str, int], store_dir: Path, duration_s: float, cfg: DemoConfig,
               seed: int | None, competitors: bool = True, zero_latency: bool = False) -> dict:
    """The run's sim TOML: free ports, run-local store, schedule scaled to the trading window,
    the template's cross-venue market with its competitors on or off (the control);
    ``zero_latency``: no injected latency at any venue (no schedule either)."""
    data = copy.deepcopy(template)
    data["store_dir"] = str(store_dir)
    data["log_dir"] = ""
    if "market" in data:
        data["market"]["competitors_enabled"] = bool(competitors and data["market"].get("competitors_enabled", True))
        if seed is not None:
            data["market"]["seed"] = seed
    scale = duration_s / cfg.reference_duration_s
    for i, venue in enumerate(data["venues"]):
        venue["port"] = ports[venue["name"]]
        if seed is not None:
            venue["seed"] = seed * 1000 + i + 1
        if zero_latency:
            venue["latency"] = {"base_us": 0, "jitter_us": 0}
        lat = venue.get("latency") or {}
        for step in lat.get("schedule") or []:
            step["at_s"] = round(cfg.startup_offset_s + step["at_s"] * scale, 3)
    return data


def gateway_config(template: dict, venue_ports: dict[str, int], oms_port: int, admin_port: int,
                   store_dir: Path, policy: str, kill_switch: dict | None = None,
                   client: tuple[str, str] = ("DEMO", "")) -> dict:
    """The run's gateway TOML: free ports, run-local store, the policy, our own OMS client
    (``client``: comp id and the password generated for this run), and the kill switch armed
    (``kill_switch``: loss_window_s / loss_threshold) unless the template arms it."""
    data = copy.deepcopy(template)
    risk = data.setdefault("risk", {})
    if kill_switch and risk.get("loss_threshold") is None:
        risk.update(kill_switch)
    data["store_dir"] = str(store_dir)
    data["log_dir"] = ""
    data.setdefault("oms", {})["port"] = oms_port
    data.setdefault("admin", {})["port"] = admin_port
    data.setdefault("routing", {})["policy"] = policy
    comp_id, password = client
    clients = [c for c in data["oms"].get("clients", []) if c.get("comp_id") != comp_id]
    clients.append({"comp_id": comp_id, "reset_on_logon": True, **({"password": password} if password else {})})
    data["oms"]["clients"] = clients
    for venue in data["venues"]:
        venue["port"] = venue_ports[venue["name"]]
    return data


def latency_model(sim: dict, startup_s: float) -> dict[str, dict]:
    """Each venue's injected one-way latency, schedule times relative to trading start.

    Approximate by the simulator's own start-up time (its schedule clock starts when its
    proxies start, a little after we launched it).
    """
    out = {}
    for v in sim["venues"]:
        lat = v.get("latency") or {}
        out[v["name"]] = {"base_us": float(lat.get("base_us", 0)), "jitter_us": float(lat.get("jitter_us", 0)),
                          "jitter": lat.get("jitter", "normal"),
                          "schedule": [[round(st["at_s"] - startup_s, 3), float(st["base_us"]),
                                        float(st.get("jitter_us", 0))] for st in lat.get("schedule") or []]}
    return out


def tick_sizes(sim: dict) -> dict[str, float]:
    return {s["symbol"]: float(s["tick_size"]) for s in sim.get("symbols", [])}


class DemoRunner:
    """Runs policies one after another; ``stop`` (set by Ctrl-C) ends the current run early."""

    def __init__(self, settings: RunSettings) -> None:
        self.s = settings
        self.stop = threading.Event()
        self.password = secrets.token_urlsafe(16)   # our DEMO client's, written into each run's gateway TOML
        self.interrupted = False
        self.cleaning = False     # stopping the children: a second Ctrl-C must not cut that short
        self.scalper_cfg: ScalperConfig = settings.cfg.scalper()

    def interrupt(self) -> None:
        self.interrupted = True
        self.stop.set()

    def say(self, text: str) -> None:
        print(text, file=self.s.out, flush=True)

    def run_policy(self, policy: str, label: str | None = None) -> dict:
        """One run (in <run dir>/<label>/, label default: the policy): configs, children, client
        and view, trading, collection; always cleaned up."""
        run = self.prepare(policy, label or policy)
        t_start = time.monotonic()
        try:
            self.start_children(run)
            self.start_client(run)
            run.meta["startup_s"] = round(time.monotonic() - t_start, 3)
            run.meta["latency_model"] = latency_model(run.sim, run.meta["startup_s"])
            self.trade(run)
            return self.collect(run)
        finally:
            self.cleaning = True
            try:
                self.shutdown(run.view, run.client, run.gw_proc, run.sim_proc, run.meta)
            finally:
                self.cleaning = False
                if run.recording is not None:       # the client's loop has stopped: the file is complete
                    run.meta["recording"] = run.recording.close()
                run.meta["wall_s"] = round(time.monotonic() - t_start, 3)

    def prepare(self, policy: str, label: str) -> "_Run":
        """Free ports and the run's sim and gateway TOMLs in <run dir>/<label>/."""
        s = self.s
        pdir = (s.run_dir / label).resolve()
        pdir.mkdir(parents=True, exist_ok=True)
        sim_t, gw_t = read_toml(s.sim_template), read_toml(s.gateway_template)
        names = [v["name"] for v in sim_t["venues"]]
        ports = procs.free_ports(len(names) + 2)
        venue_ports = dict(zip(names, ports))
        oms_port, admin_port = ports[-2:]
        sim = sim_config(sim_t, venue_ports, pdir / "sim-store", s.duration_s, s.cfg, s.seed, s.competitors,
                         s.zero_latency)
        gw = gateway_config(gw_t, venue_ports, oms_port, admin_port, pdir / "gateway-store", policy,
                            s.cfg.kill_switch.model_dump(), client=("DEMO", self.password))
        (pdir / "sim.toml").write_text(dumps(sim))
        (pdir / "gateway.toml").write_text(dumps(gw))
        market = sim.get("market") or {}
        risk = gw.get("risk") or {}
        meta = {"policy": policy, "run_dir": str(pdir), "ports": {"oms": oms_port, "admin": admin_port, **venue_ports},
                "sim_seeds": {v["name"]: v.get("seed") for v in sim["venues"]}, "market_seed": market.get("seed"),
                "market": bool(market.get("enabled")), "competitors": bool(market.get("enabled"))
                and bool(market.get("competitors_enabled")) and bool(market.get("competitors")),
                "duration_s": s.duration_s, "repeat": s.repeat,
                "kill_switch": {k: risk.get(k) for k in ("loss_window_s", "loss_threshold")},
                "routing": {k: gw.get("routing", {}).get(k) for k in ("policy", "default_venue", "probe_interval_ms")}}
        return _Run(policy, pdir, venue_ports, oms_port, admin_port, sim, meta)

    def start_children(self, run: "_Run") -> None:
        """Simulator, then gateway; ready when every venue session is up with latency samples."""
        timeout = self.s.cfg.startup_timeout_s
        run.sim_proc = procs.start(procs.fixgw_command("sim", "--config", str(run.pdir / "sim.toml")),
                                   run.pdir / "sim.log")
        run.meta["sim_pid"] = run.sim_proc.pid
        procs.wait_for_ports(list(run.venue_ports.values()), timeout=timeout, proc=run.sim_proc)
        run.gw_proc = procs.start(procs.fixgw_command("run", "--config", str(run.pdir / "gateway.toml"),
                                                      "--log-level", "WARNING"), run.pdir / "gateway.log")
        run.meta["gateway_pid"] = run.gw_proc.pid
        (run.pdir / "pids.json").write_text(json.dumps({"sim": run.sim_proc.pid, "gateway": run.gw_proc.pid}))
        procs.wait_for_ports([run.oms_port, run.admin_port], timeout=timeout, proc=run.gw_proc)
        wait_gateway_ready(run.admin, list(run.venue_ports), timeout, run.gw_proc, self.stop)

    def start_client(self, run: "_Run") -> None:
        cfg = self.s.cfg
        strategy = Scalper(self.scalper_cfg)
        venues = [VenueAddress(name=n, host="127.0.0.1", port=p) for n, p in run.venue_ports.items()]
        run.client = ClientRuntime(strategy, oms=("127.0.0.1", run.oms_port), venues=venues,
                                   symbols=self.scalper_cfg.symbols, ticks=tick_sizes(run.sim), comp_id="DEMO",
                                   heartbeat_s=cfg.heartbeat_s, probe_interval_s=cfg.probe_interval_s,
                                   depth=cfg.md_depth, logon_fields=((554, self.password),),
                                   md_validate=cfg.md_validate)
        run.client.start(cfg.startup_timeout_s)
        run.meta["client_thread"] = run.client.thread_id
        # Beside pids.json (the children): the client's process and loop thread, for sched.py.
        (run.pdir / "client.json").write_text(json.dumps({"pid": os.getpid(), "thread": run.client.thread_id}))
        # What start-up built lives for the run: out of the collector's reach, so a collection
        # on the client's loop scans only young objects (no full pass in the middle of a signal).
        procs.freeze_startup_heap()
        run.client.run_collector()      # then the young objects are swept by the client's loop, at pauses
        if self.s.recording_dir is not None:
            path = Path(self.s.recording_dir) / f"{run.pdir.name}.rec"
            path.parent.mkdir(parents=True, exist_ok=True)
            meta = {"source": "fixgw demo", "policy": run.policy, "competitors": run.meta["competitors"]}
            run.recording = run.client.call(lambda: start_recording(run.client.feed, path, meta=meta))

    def trade(self, run: "_Run") -> None:
        """Trade for the duration (or until Ctrl-C or a child dies) with the live view, then drain."""
        s, client = self.s, run.client
        client.start_trading()
        title = f"demo policy={run.policy} repeat {s.repeat}/{s.repeats}" + ("" if s.competitors else " CONTROL")
        kill = run.meta["kill_switch"]
        run.view = LiveView(run.admin, lambda: {**client.call(lambda: client_stats(client)), "kill_switch": kill}, title, s.duration_s,
                            s.view_symbol or self.scalper_cfg.symbols[-1], clock=client.elapsed,
                            interval=s.cfg.status_interval_s, out=s.out, tty=s.tty,
                            ticks=tick_sizes(run.sim))
        run.view.start()
        died = self.trade_for(s.duration_s, {"gateway": run.gw_proc, "simulator": run.sim_proc})
        run.meta["trading_s"] = round(client.elapsed(), 3)
        client.stop_trading()
        if died:
            run.meta["died"] = died
            log_name = "gateway.log" if died == "gateway" else "sim.log"
            self.say(f"!!! {died} exited during the run (log: {run.pdir / log_name}); stopping early")
        run.meta["drained"] = client.drain(s.cfg.drain_timeout_s)
        run.view.stop()
        run.view.poll_once()  # the state after the last order ended

    def collect(self, run: "_Run") -> dict:
        """The run as the report reads it: trips, orders, decisions, status series and final status."""
        client, view = run.client, run.view
        decisions = fetch_json(f"{run.admin}/decisions?n={self.s.cfg.decisions_fetch}", timeout=5.0) or []
        final = fetch_json(f"{run.admin}/status", timeout=5.0) or view.last_status or {}

        def grab() -> dict:
            t0 = client.t0 or 0.0
            return {"trips": trips_with_ids(client.strategy.trips), "stats": client.strategy.stats(),
                    "orders": [order_dict(o, t0) for o in client.driver.log.entries()],
                    "driver": dict(client.driver.stats), "feed": dict(client.feed.stats), "t0": t0}
        got = client.call(grab)
        for t in got["trips"]:
            for k in ("signal_at", "entry_sent_at"):
                if t.get(k) is not None:
                    t[k] = round(t[k] - got["t0"], 6)
        run.meta["driver"] = got["driver"]
        run.meta["feed"] = got["feed"]
        run.meta["signals"] = got["stats"].get("signals", {})
        return {"policy": run.policy, "meta": run.meta, "trips": got["trips"], "stats": got["stats"],
                "orders": got["orders"], "decisions": decisions, "series": view.series, "final_status": final}

    @staticmethod
    def shutdown(view, client, gw_proc, sim_proc, meta: dict) -> None:
        """Client logout, then the gateway, then the simulator: each step runs even if one before failed."""
        try:
            if view is not None:
                view.stop()
        finally:
            try:
                if client is not None:
                    client.stop()
            finally:
                try:
                    meta["gateway_exit"] = procs.stop(gw_proc)
                finally:
                    meta["sim_exit"] = procs.stop(sim_proc)

    def trade_for(self, duration: float, children: dict) -> str | None:
        """Block for ``duration`` (or until Ctrl-C) in half-second waits, watching the children;
        the name of a child that died, else None."""
        deadline = time.monotonic() + duration
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.stop.wait(min(0.5, left))
            for name, proc in children.items():
                if proc.poll() is not None:
                    return name
        return None


def wait_gateway_ready(admin: str, venues: list[str], timeout: float, proc, stop: threading.Event) -> None:
    """Until every venue session of the gateway is logged on and has latency samples (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}; see {getattr(proc, '_fixgw_log', '')}")
        st = fetch_json(f"{admin}/status") or {}
        rows = {v.get("name"): v for v in st.get("venues") or []}
        if all(rows.get(n, {}).get("logged_on") and
               (((rows[n].get("market") or {}).get("latency") or {}).get("samples") or 0) > 0
               for n in venues):
            return
        stop.wait(0.2)
    if not stop.is_set():
        raise TimeoutError(f"gateway venue sessions not all up with latency samples after {timeout:.0f}s")


def order_dict(o, t0: float) -> dict:
    """One order of the driver's log, times relative to the start of trading (JSON-safe)."""
    def rel(x):
        return None if x is None else round(x - t0, 6)
    return {"cl_ord_id": o.cl_ord_id, "symbol": o.symbol, "side": o.side, "qty": o.qty, "price": o.price,
            "reason": o.reason, "signal_at": rel(o.signal_at), "sent_at": rel(o.sent_at),
            "md_read_at": rel(o.md_read_at), "written_at": rel(o.written_at), "report_read_at": rel(o.report_read_at),
            "first_report_at": rel(o.first_report_at), "done_at": rel(o.done_at), "status": o.status,
            "cum_qty": o.cum_qty, "venue": o.venue, "text": o.text, "done": o.done,
            "filled_qty": sum(q for q, _, _ in o.fills)}


def trips_with_ids(book) -> list[dict]:
    """Every round trip as the reports show it, plus the ClOrdIDs of its entry orders."""
    return [{**book.trip_dict(t), "entry_ids": [o.cl_ord_id for o in t.entries]} for t in book.trips]


def client_stats(client: ClientRuntime) -> dict:
    """What the live view shows of the client (called on the client's loop thread)."""
    st = client.strategy.trips.stats()
    log_ = client.driver.log
    per: dict[str, int] = {}
    for o in log_.orders.values():
        if o.venue:
            per[o.venue] = per.get(o.venue, 0) + 1
    positions = {}
    for t in client.strategy.trips.active():
        positions[t.symbol] = positions.get(t.symbol, 0.0) + t.position
    return {"trips": st, "orders": len(log_.orders), "open_orders": log_.open_count(), "by_venue": per,
            "positions": positions, "rtt_us": {v: client.feed.rtt_us(v) for v in client.feed.venues()}}


@dataclass
class _Run:
    """The state of one policy run, so that cleanup can stop whatever was started."""
    policy: str
    pdir: Path
    venue_ports: dict[str, int]
    oms_port: int
    admin_port: int
    sim: dict
    meta: dict
    sim_proc: subprocess.Popen | None = None
    gw_proc: subprocess.Popen | None = None
    client: ClientRuntime | None = None
    view: LiveView | None = None
    recording: RecordingHandle | None = None

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"
