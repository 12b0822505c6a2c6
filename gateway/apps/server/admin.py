"""The admin interface: HTTP/JSON on loopback inside the gateway, and `fixgw status|kill|reset`.

Endpoints (no authentication, so loopback only; the config refuses other hosts):
- ``GET /status``            sessions, sequence numbers, venues (latency, books), order counts, risk
- ``GET /orders?n=200``      the last n orders with their venue orders
- ``GET /decisions?n=50``    the last n routing decisions with the numbers behind them
- ``POST /kill``  ``{"by": "alice", "reason": "..."}``   trip the kill switch
- ``POST /reset`` ``{"by": "alice"}``                    reset it (a person must be named)

The server runs in its own thread and only reads the gateway under its lock; it never
polls (``serve_forever`` blocks in select between requests).
"""
from __future__ import annotations

import argparse
import getpass
import json
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

from gateway.common.configfile import load_config

if TYPE_CHECKING:
    from gateway.apps.server.app import Gateway


class AdminServer:
    def __init__(self, gateway: "Gateway", host: str, port: int) -> None:
        handler = type("Handler", (_Handler,), {"gateway": gateway})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="gw-admin", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    gateway: "Gateway"

    def log_message(self, fmt, *args):  # noqa: D401 - keep the gateway's log clean
        pass

    def do_GET(self):
        url = urlparse(self.path)
        n = _int(parse_qs(url.query).get("n", [""])[0])
        gw = self.gateway
        if url.path == "/status":
            return self._json(200, gw.status())
        if url.path == "/orders":
            return self._json(200, gw.orders_view(n or 200))
        if url.path == "/decisions":
            return self._json(200, gw.decisions.recent(n or 50))
        return self._json(404, {"error": f"unknown path {url.path}; try /status, /orders, /decisions"})

    def do_POST(self):
        url = urlparse(self.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        except ValueError:
            return self._json(400, {"error": "body must be JSON"})
        by = str(body.get("by") or "").strip()
        if url.path not in ("/kill", "/reset"):
            return self._json(404, {"error": f"unknown path {url.path}; try /kill or /reset"})
        if not by:
            return self._json(400, {"error": "name the person acting: {\"by\": \"name\"}"})
        if url.path == "/kill":
            tripped = self.gateway.trip(str(body.get("reason") or "manual kill"), by)
            return self._json(200, {"tripped": tripped, "risk": self.gateway.risk.snapshot()})
        try:
            self.gateway.reset_risk(by)
        except ValueError as exc:
            return self._json(400, {"error": str(exc)})
        return self._json(200, {"reset": True, "risk": self.gateway.risk.snapshot()})

    def _json(self, code: int, payload) -> None:
        data = json.dumps(payload, default=str).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _int(text: str) -> int:
    try:
        return max(int(text), 0)
    except ValueError:
        return 0


# ------------------------------------------------------------ `fixgw status | kill | reset`

def request(base: str, path: str, body: dict | None = None, timeout: float = 5.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}")


def format_status(st: dict) -> str:
    g = st.get("gateway", {})
    lines = [f"gateway pid {g.get('pid')} up {g.get('uptime_s', 0):.0f}s, OMS port {g.get('oms_port')}, "
             f"policy {g.get('policy')}"]
    lines.append("OMS sessions:")
    for s in st.get("oms_sessions", []):
        lines.append(f"  {s['session']:<28} {'UP  ' if s.get('logged_on') else 'down'} "
                     f"next out {s.get('next_sender_seq')} next in {s.get('next_target_seq')}")
    lines.append("venues:")
    for v in st.get("venues", []):
        lat = (v.get("market") or {}).get("latency") or {}
        p50, p99 = lat.get("p50_us"), lat.get("p99_us")
        rtt = f"rtt p50 {p50:.0f}us p99 {p99:.0f}us" if p50 is not None and p99 is not None else "rtt -"
        lines.append(f"  {v['name']:<8} {v.get('state', '?'):<10} next out {v.get('next_sender_seq')} "
                     f"next in {v.get('next_target_seq')}  open {v.get('open_orders', 0)}  "
                     f"routed {v.get('orders_routed', 0)}  fills {v.get('fills', 0)}  {rtt}")
    o = st.get("orders", {})
    lines.append("orders: " + ", ".join(f"{k} {v}" for k, v in o.items()))
    r = st.get("risk", {})
    lines.append(f"risk: {r.get('state')}  pnl {r.get('total_pnl', 0):.2f}"
                 + (f"  tripped: {r.get('trip_reason')}" if r.get("trip_reason") else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "fixgw status", command: str = "status") -> int:
    ap = argparse.ArgumentParser(prog=prog, description={
        "status": "Show a running gateway's sessions, sequence numbers, open orders and risk state.",
        "kill": "Trip the kill switch of a running gateway: reject new orders, cancel open ones.",
        "reset": "Reset a tripped kill switch (a person decides; name yourself with --by)."}[command])
    ap.add_argument("--config", default="configs/gateway.toml", help="gateway TOML, for the admin port")
    ap.add_argument("--admin", help="admin address host:port (overrides --config)")
    if command == "status":
        ap.add_argument("--json", action="store_true", help="print the raw JSON")
    else:
        ap.add_argument("--by", default=getpass.getuser(), help="who is acting (default: your user name)")
    if command == "kill":
        ap.add_argument("--reason", default="manual kill from the command line")
    args = ap.parse_args(argv)
    base = _base_url(args)
    try:
        if command == "status":
            st = request(base, "/status")
            print(json.dumps(st, indent=2) if args.json else format_status(st))
            return 0
        body = {"by": args.by, **({"reason": args.reason} if command == "kill" else {})}
        result = request(base, f"/{command}", body)
    except (urllib.error.URLError, OSError) as exc:
        print(f"{prog}: cannot reach the gateway admin endpoint at {base}: {exc}", file=sys.stderr)
        return 2
    if "error" in result:
        print(f"{prog}: {result['error']}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


def _base_url(args) -> str:
    if args.admin:
        return f"http://{args.admin}"
    from gateway.apps.server.config import GatewayConfig
    cfg = load_config(args.config, GatewayConfig)
    if not cfg.admin.port:
        raise SystemExit(f"{args.config}: [admin] port is 0: the gateway has no admin endpoint")
    return f"http://{cfg.admin.host}:{cfg.admin.port}"
