"""A real stack over loopback for socket tests: simulator processes, a gateway process, raw OMS clients.

Every process runs from a TOML written into the test's tmp dir, on free ports, and is
stopped by its own Popen at teardown. Every wait is bounded.
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from gateway.common import procs
from gateway.apps.demo.tomlout import dumps
from gateway.fix.raw import RawFixSession, utc_now

SYMBOLS = [{"symbol": "AAPL", "tick_size": 0.01, "ref_price": 190.00},
           {"symbol": "EURUSD", "tick_size": 0.00001, "ref_price": 1.10000}]
BOOK = {"enabled": False, "initial_levels": 5, "level_qty": 500, "spread_ticks": 1}


ENGINES = ("native", "quickfix")


class Stack:
    sim_args: tuple[str, ...] = ()     # extra `fixgw sim` arguments (e.g. --stats)
    """``engine``: the gateway's FIX backend (default: $FIXGW_TEST_ENGINE or native)."""

    def __init__(self, tmp: Path, engine: str | None = None) -> None:
        self.tmp = tmp
        self.engine = engine or os.environ.get("FIXGW_TEST_ENGINE", "native")
        self.procs: list = []
        self.venue_ports: dict[str, int] = {}
        self.sims: dict[str, object] = {}
        self.gateway = None
        self.gw_cfg: dict = {}
        self.clients: list[RawFixSession] = []

    # ------------------------------------------------------------ simulator
    def start_sim(self, name: str, venues: list[dict], symbols: list[dict] | None = None):
        """One sim process holding ``venues`` (each: name + optional latency/flow/seed)."""
        cfg = {"store_dir": str(self.tmp / f"sim-{name}-store"), "symbols": symbols or SYMBOLS, "venues": []}
        for v in venues:
            port = self.venue_ports.get(v["name"]) or procs.free_port()
            self.venue_ports[v["name"]] = port
            cfg["venues"].append({"flow": dict(BOOK), **v, "port": port})
        path = self.tmp / f"sim-{name}.toml"
        path.write_text(dumps(cfg))
        proc = procs.start(procs.fixgw_command("sim", "--config", str(path), *self.sim_args),
                           self.tmp / f"sim-{name}.log")
        self.procs.append(proc)
        self.sims[name] = proc
        procs.wait_for_ports([self.venue_ports[v["name"]] for v in venues], 20, proc)
        return proc

    # ------------------------------------------------------------ gateway
    def start_gateway(self, routing: dict | None = None, risk: dict | None = None, policy: str | None = None,
                      clients: list[dict] | None = None, wait_venues: bool = True,
                      venue_options: dict | None = None, extra: dict | None = None):
        """``extra``: more top-level gateway settings (the first start only, as the rest)."""
        if not self.gw_cfg:
            self.gw_cfg = {
                "engine": self.engine,
                "store_dir": str(self.tmp / "gw-store"),
                "oms": {"port": procs.free_port(), "heartbeat_s": 30,
                        "clients": clients or [{"comp_id": "OMS1"}, {"comp_id": "OMS2", "password": "pw"},
                                               {"comp_id": "CERT", "reset_on_logon": True}]},
                "venues": [{"name": n, "port": p, "reconnect_s": 1, **(venue_options or {})}
                           for n, p in self.venue_ports.items()],
                "admin": {"port": procs.free_port()},
                "routing": {"policy": "dma", "default_venue": next(iter(self.venue_ports)),
                            "md_symbols": ["AAPL"], "probe_interval_ms": 50, **(routing or {})},
                "risk": risk or {},
                **(extra or {}),
            }
        path = self.tmp / "gateway.toml"
        path.write_text(dumps(self.gw_cfg))
        args = ["run", "--config", str(path)] + (["--policy", policy] if policy else [])
        self.gateway = procs.start(procs.fixgw_command(*args), self.tmp / "gateway.log")
        self.procs.append(self.gateway)
        procs.wait_for_ports([self.oms_port, self.admin_port], 20, self.gateway)
        if wait_venues:
            self.wait_status(lambda st: all(v["logged_on"] for v in st["venues"]), "every venue logged on")
        return self.gateway

    @property
    def oms_port(self) -> int:
        return self.gw_cfg["oms"]["port"]

    @property
    def admin_port(self) -> int:
        return self.gw_cfg["admin"]["port"]

    def status(self, path: str = "/status"):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=5) as resp:
            return json.loads(resp.read())

    def wait_status(self, pred: Callable[[dict], bool], what: str, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        st: dict = {}
        while time.monotonic() < deadline:
            try:
                st = self.status()
                if pred(st):
                    return st
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last status: "
                             f"{json.dumps(st)[:2000]}")

    def post(self, path: str, body: dict, status: bool = False):
        """POST with the admin token; ``status=True``: (HTTP status, answer) even for errors."""
        token = (self.tmp / "gw-store" / "admin.token").read_text().strip()   # made by the gateway at start
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json",
                                                             "Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                answer = (resp.status, json.loads(resp.read()))
        except urllib.error.HTTPError as exc:
            if not status:
                raise
            answer = (exc.code, json.loads(exc.read() or b"{}"))
        return answer if status else answer[1]

    # ------------------------------------------------------------ clients
    def oms(self, sender: str = "OMS1", reset: bool = True, extra=()) -> "Oms":
        client = Oms(port=self.oms_port, sender=sender, target="FIXGW", timeout=5).connect()
        client.logon(reset=reset, extra=extra)
        self.clients.append(client)
        return client

    def venue_client(self, venue: str) -> "Oms":
        """A CLIENT session straight to a simulated venue (another market participant)."""
        client = Oms(port=self.venue_ports[venue], sender="CLIENT", target=venue, timeout=5).connect()
        client.logon(reset=True)
        self.clients.append(client)
        return client

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        for p in reversed(self.procs):
            procs.stop(p, timeout=5)


class Oms(RawFixSession):
    """A raw FIX client with order helpers. Messages ``reports`` skips are kept for ``recv``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.backlog: list = []

    def recv(self, timeout: float | None = None):
        if self.backlog:
            return self.backlog.pop(0)
        return super().recv(timeout)

    def order(self, cl_ord_id: str, side: str = "1", qty: float = 100, price: str | None = "190.01",
              tif: str = "3", symbol: str = "AAPL", extra=()) -> None:
        fields = [(11, cl_ord_id), (55, symbol), (54, side), (38, qty), (40, "2" if price else "1")]
        if price:
            fields.append((44, price))
        self.send("D", fields + [(59, tif), (60, utc_now()), *extra])

    def cancel(self, cl_ord_id: str, orig: str, side: str = "1", qty: float = 100, symbol: str = "AAPL") -> None:
        self.send("F", [(11, cl_ord_id), (41, orig), (55, symbol), (54, side), (38, qty), (60, utc_now())])

    def replace(self, cl_ord_id: str, orig: str, qty: float, price: str, side: str = "1", tif: str = "0",
                symbol: str = "AAPL") -> None:
        self.send("G", [(11, cl_ord_id), (41, orig), (55, symbol), (54, side), (38, qty), (40, "2"),
                        (44, price), (59, tif), (60, utc_now())])

    def reports(self, cl_ord_id: str, timeout: float = 5.0, until_terminal: bool = True) -> list[dict]:
        """ExecutionReports/OrderCancelRejects for ``cl_ord_id`` until a terminal one (bounded)."""
        out: list[dict] = []
        skipped: list = []
        pending, self.backlog = self.backlog, []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = pending.pop(0) if pending else RawFixSession.recv(self, max(deadline - time.monotonic(), 0.01))
            if msg is None:
                break
            if msg.get(35) not in (b"8", b"9") or msg.get(11) != cl_ord_id.encode():
                skipped.append(msg)
                continue
            rep = {t: (v.decode() if v is not None else None)
                   for t, v in ((t, msg.get(t)) for t in (35, 11, 41, 37, 150, 39, 14, 151, 6, 31, 32, 30, 58,
                                                         103, 434, 102, 198, 43, 97, 790))}
            out.append(rep)
            if until_terminal and (rep[35] == "9" or rep[39] in ("2", "4", "8", "C")):
                break
        self.backlog = skipped + pending + self.backlog
        return out
