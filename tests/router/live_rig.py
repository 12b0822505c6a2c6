"""Simulated venues (one process each) + a gateway process + an OMS raw client, for socket tests.

Used by tests/router/test_routing_live.py and benchmarks/bench_router.py (probe accuracy).
Every wait is bounded; only processes started here are stopped, by their Popen.
"""
from __future__ import annotations

import itertools
import json
import sys
import time
import urllib.request
from pathlib import Path

from gateway.common import procs
from gateway.fix.raw import RawFixSession

SYMBOLS = [{"symbol": "EURUSD", "tick_size": 0.00001, "ref_price": 1.10000}]
_ids = itertools.count(1)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def _section(name: str, d: dict) -> str:
    return f"[{name}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in d.items())


class LiveRig:
    """venues: [{"name", "base_us", "jitter_us", "schedule", "level_qty", "levels"}], and for the
    venue's process "busy_poll_us" (the venue polls instead of sleeping) and "cpu" (pinning)."""

    def __init__(self, tmp: Path, venues: list[dict], routing: dict | None = None, engine: str = "native",
                 gateway_extra: str = "") -> None:
        self.tmp = Path(tmp)
        self.venues = venues
        self.engine = engine
        self.gateway_extra = gateway_extra       # top-level gateway config lines, e.g. "warm_probes = true"
        self.routing = {"md_symbols": ["EURUSD"], "probe_interval_ms": 50, **(routing or {})}
        self.sims: dict[str, object] = {}
        self.sim_started: dict[str, float] = {}
        self.gateway = None
        ports = procs.free_ports(len(venues) + 2)
        self.venue_ports = {v["name"]: p for v, p in zip(venues, ports)}
        self.oms_port, self.admin_port = ports[-2], ports[-1]
        self.base = f"http://127.0.0.1:{self.admin_port}"

    # ---------------------------------------------------------------- processes
    def _sim_toml(self, v: dict) -> Path:
        lat = {"base_us": v.get("base_us", 0.0), "jitter_us": v.get("jitter_us", 0.0),
               "jitter": v.get("jitter", "none"), "always_proxy": v.get("proxy", True)}
        if v.get("schedule"):
            lat["schedule"] = v["schedule"]
        flow = {"enabled": v.get("flow", False), "initial_levels": v.get("levels", 5),
                "level_qty": v.get("level_qty", 1000), "spread_ticks": 1}
        venue = {"name": v["name"], "port": self.venue_ports[v["name"]], "seed": 7}
        if v.get("busy_poll_us"):
            venue["busy_poll_us"] = int(v["busy_poll_us"])
        text = (f'store_dir = {json.dumps(str(self.tmp / ("sim-" + v["name"])))}\nlog_dir = ""\n'
                + (f'cpu = {int(v["cpu"])}\n' if v.get("cpu") is not None else "")
                + "".join(_section("[symbols]", s) for s in SYMBOLS)
                + _section("[venues]", venue)
                + _section("venues.latency", lat) + _section("venues.flow", flow))
        path = self.tmp / f"sim-{v['name']}.toml"
        path.write_text(text)
        return path

    def _gateway_toml(self) -> Path:
        text = (f'store_dir = {json.dumps(str(self.tmp / "gw"))}\nlog_dir = ""\nengine = "{self.engine}"\n'
                f'{self.gateway_extra}\n'
                + _section("oms", {"host": "127.0.0.1", "port": self.oms_port, "comp_id": "FIXGW",
                                   "clients": [{"comp_id": "OMS1", "reset_on_logon": True}]})
                + "".join(_section("[venues]", {"name": v["name"], "port": self.venue_ports[v["name"]],
                                                "reconnect_s": 1,
                                                "probe_max_per_s": v.get("probe_max_per_s", 20.0)})
                          for v in self.venues)
                + _section("admin", {"host": "127.0.0.1", "port": self.admin_port})
                + _section("routing", self.routing))
        path = self.tmp / "gateway.toml"
        path.write_text(text)
        return path

    def start(self, timeout: float = 30.0) -> "LiveRig":
        for v in self.venues:
            cmd = [sys.executable, "-m", "sim_exchange", "--config", str(self._sim_toml(v))]
            self.sims[v["name"]] = procs.start(cmd, self.tmp / f"sim-{v['name']}.log")
        for v in self.venues:
            procs.wait_for_ports([self.venue_ports[v["name"]]], timeout, self.sims[v["name"]])
            self.sim_started[v["name"]] = time.monotonic()   # ~ the proxy's schedule origin
        cmd = procs.fixgw_command("run", "--config", str(self._gateway_toml()))
        self.gateway = procs.start(cmd, self.tmp / "gateway.log")
        procs.wait_for_ports([self.oms_port, self.admin_port], timeout, self.gateway)
        return self

    def stop(self) -> None:
        procs.stop(self.gateway)
        for p in self.sims.values():
            procs.stop(p)

    def kill_venue(self, name: str) -> None:
        procs.kill_hard(self.sims[name])

    def restart_venue(self, name: str, timeout: float = 30.0) -> None:
        """Start a killed venue again on its port, with its store (sequence numbers kept)."""
        v = next(v for v in self.venues if v["name"] == name)
        cmd = [sys.executable, "-m", "sim_exchange", "--config", str(self._sim_toml(v))]
        self.sims[name] = procs.start(cmd, self.tmp / f"sim-{name}.log")
        procs.wait_for_ports([self.venue_ports[name]], timeout, self.sims[name])

    def log_tail(self, name: str = "gateway", lines: int = 30) -> str:
        path = self.tmp / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def __enter__(self) -> "LiveRig":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- admin view
    def get(self, path: str):
        with urllib.request.urlopen(self.base + path, timeout=5) as resp:
            return json.loads(resp.read())

    def market(self) -> dict:
        """venue -> the MarketState snapshot row (up, latency, books)."""
        return {row["name"]: row.get("market", {}) for row in self.get("/status")["venues"]}

    def wait_until(self, pred, timeout: float, step: float = 0.1, what: str = "condition"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = pred()
            if last:
                return last
            time.sleep(step)
        raise TimeoutError(f"{what} not met within {timeout}s; gateway log:\n{self.log_tail()}")

    def wait_ready(self, timeout: float = 20.0, samples: int = 5) -> dict:
        """Every venue up, with RTT samples and a fresh EURUSD book."""
        def ready():
            m = self.market()
            ok = all(m.get(v["name"], {}).get("up") and m[v["name"]]["latency"]["samples"] >= samples
                     and not m[v["name"]]["books"]["EURUSD"]["stale"] for v in self.venues)
            return m if ok else None
        return self.wait_until(ready, timeout, what="all venues up with samples and books")

    # ---------------------------------------------------------------- OMS client
    def oms(self) -> RawFixSession:
        c = RawFixSession(port=self.oms_port, sender="OMS1", target="FIXGW", timeout=5.0).connect()
        reply = c.logon()
        assert reply.get(35) == b"A", reply
        return c

    @staticmethod
    def order(c: RawFixSession, qty, price, side: str = "1", tif: str = "3", ord_type: str = "2",
              symbol: str = "EURUSD") -> str:
        cl = f"R{next(_ids)}-{time.monotonic_ns()}"
        fields = [(11, cl), (55, symbol), (54, side), (38, qty), (40, ord_type)]
        if price is not None:
            fields.append((44, price))
        fields += [(59, tif), (60, "20260101-00:00:00.000")]
        c.send("D", fields)
        return cl

    @staticmethod
    def final_report(c: RawFixSession, cl_ord_id: str, timeout: float = 5.0):
        """The terminal ExecutionReport (OrdStatus filled/canceled/rejected/expired) and all before it."""
        want = cl_ord_id.encode()
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            m = c.recv_until(lambda m: m.get(35) == b"8" and m.get(11) == want,
                             timeout=max(0.01, deadline - time.monotonic()))
            seen.append(m)
            if m.get(39) in (b"2", b"4", b"8", b"C"):
                return m, seen
