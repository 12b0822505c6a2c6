"""The admin interface: HTTP/JSON on loopback inside the gateway, and `fixgw status|kill|reset`.

Endpoints:
- ``GET /status``            sessions, sequence numbers, venues (latency, books), order counts, risk
- ``GET /orders?n=200``      the last n orders with their venue orders
- ``GET /decisions?n=50``    the last n routing decisions with the numbers behind them
- ``POST /kill``  ``{"by": "alice", "reason": "..."}``   trip the kill switch
- ``POST /reset`` ``{"by": "alice", "session": null}``   reset it, or one suspended session
- ``GET /metrics``           Prometheus text format (gateway/apps/metrics.py; read-only, no token)
- ``GET /sessions``          every FIX session: ``[{"key", "kind": "oms"|"venue", "name", "logged_on",
  "state", "next_sender_seq", "next_target_seq", "last_logon_at", "last_received_at", "last_sent_at",
  "last_disconnect_reason"}]`` (times UTC ISO 8601 or null)
- ``POST /sessions/logout`` ``{"session": key or venue/CompID name, "text": "..."}``  log out and hold
  it down (a venue is not redialled, an OMS client's logons are refused) until:
- ``POST /sessions/logon``  ``{"session": ...}``      release it (a venue reconnects now)
- ``POST /sessions/seqnum`` ``{"session": ..., "next_in": int|null, "next_out": int|null}``
  set the next expected incoming / next outgoing MsgSeqNum
  Answers: 200 with the session's new state; 404 unknown session; 400 bad body.

Lockdown (any local process, or a web page through a browser, can reach loopback):
- mutating endpoints need ``Authorization: Bearer <token>``; the token is made at first start
  in ``<store_dir>/admin.token`` (mode 0600) and `fixgw kill|reset` read it from there;
- POST bodies must be ``Content-Type: application/json`` (a browser's simple text/plain or
  form POST is refused) and at most ``MAX_BODY`` bytes; a negative, absurd or missing
  Content-Length is refused; every socket read has a timeout;
- the Host header must be 127.0.0.1 / localhost [:port] (DNS rebinding).

The server runs in its own thread and knows the gateway only through ``AdminActions``
(callables that run on the gateway's loop); it never polls (``serve_forever`` blocks in
select between requests).
"""
from __future__ import annotations

import argparse
import getpass
import hmac
import json
import os
import secrets
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlparse

from gateway.common.configfile import ConfigError, find_config, load_config

MAX_BODY = 4096
REQUEST_TIMEOUT_S = 5.0
TOKEN_FILE = "admin.token"
_LOCAL_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True, kw_only=True)
class AdminActions:
    """What the admin endpoint may do to the gateway (each call takes the gateway's lock itself)."""
    status: Callable[[], dict]
    orders: Callable[[int], list]
    decisions: Callable[[int], list]
    kill: Callable[[str, str], bool]             # (reason, by) -> changed?
    reset: Callable[..., bool]                   # (by, session=None) -> changed?; ValueError: no person
    risk: Callable[[], dict]
    sessions: Callable[[], list] | None = None
    session_logout: Callable[[str, str], dict] | None = None
    session_logon: Callable[[str], dict] | None = None
    session_seqnum: Callable[[str, int | None, int | None], dict] | None = None
    metrics: Callable[[], bytes] | None = None   # Prometheus text format (gateway/apps/metrics.py)


def token_path(store_dir: str | Path) -> Path:
    return Path(store_dir) / TOKEN_FILE


def ensure_token(store_dir: str | Path) -> str:
    """The admin bearer token, made on first start (mode 0600) and kept across restarts."""
    path = token_path(store_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_token(store_dir)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    return read_token(store_dir)


def read_token(store_dir: str | Path) -> str:
    return token_path(store_dir).read_text().strip()


class AdminServer:
    def __init__(self, actions: AdminActions, host: str, port: int, token: str) -> None:
        handler = type("Handler", (_Handler,), {"actions": actions, "token": token})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="gw-admin", daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    actions: AdminActions
    token: str
    timeout = REQUEST_TIMEOUT_S          # socket timeout for every read (slow or silent clients)

    def log_message(self, fmt, *args):  # noqa: D401 - keep the gateway's log clean
        pass

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        if host.count(":") == 1 and not host.rsplit(":", 1)[1].isdigit():
            return False
        return name in _LOCAL_HOSTS

    def do_GET(self):
        if not self._host_ok():
            return self._json(403, {"error": "Host must be 127.0.0.1 or localhost"})
        url = urlparse(self.path)
        n = _int(parse_qs(url.query).get("n", [""])[0])
        a = self.actions
        if url.path == "/status":
            return self._json(200, a.status())
        if url.path == "/orders":
            return self._json(200, a.orders(min(n or 200, 10_000)))
        if url.path == "/decisions":
            return self._json(200, a.decisions(min(n or 50, 10_000)))
        if url.path == "/metrics" and a.metrics is not None:
            from gateway.apps.metrics import CONTENT_TYPE
            return self._send(200, a.metrics(), CONTENT_TYPE)
        if url.path == "/sessions" and a.sessions is not None:
            return self._json(200, a.sessions())
        return self._json(404, {"error": f"unknown path {url.path}; try /status, /orders, /decisions, /sessions"})

    def do_POST(self):
        body, error = self._read_body()
        if error is not None:
            self.close_connection = True
            return self._json(*error)
        url = urlparse(self.path)
        if url.path.startswith("/sessions/") and self.actions.sessions is not None:
            return self._session_command(url.path, body)
        if url.path not in ("/kill", "/reset"):
            return self._json(404, {"error": f"unknown path {url.path}; try /kill, /reset or /sessions/..."})
        by = str(body.get("by") or "").strip()
        if not by:
            return self._json(400, {"error": "name the person acting: {\"by\": \"name\"}"})
        if url.path == "/kill":
            tripped = self.actions.kill(str(body.get("reason") or "manual kill"), by)
            return self._json(200, {"tripped": tripped, "changed": tripped, "risk": self.actions.risk()})
        session = body.get("session")
        try:
            changed = self.actions.reset(by, str(session) if session else None)
        except ValueError as exc:
            return self._json(400, {"error": str(exc)})
        return self._json(200, {"reset": changed, "changed": changed, "risk": self.actions.risk()})

    def _session_command(self, path: str, body: dict):
        a = self.actions
        session = body.get("session")
        if not isinstance(session, str) or not session:
            return self._json(400, {"error": "name the session: {\"session\": \"<key or name>\"}"})
        try:
            if path == "/sessions/logout":
                text = body.get("text") or ""
                if not isinstance(text, str):
                    return self._json(400, {"error": "text must be a string"})
                return self._json(200, a.session_logout(session, text[:200]))
            if path == "/sessions/logon":
                return self._json(200, a.session_logon(session))
            if path == "/sessions/seqnum":
                n_in, n_out = body.get("next_in"), body.get("next_out")
                if n_in is None and n_out is None:
                    return self._json(400, {"error": "give next_in and/or next_out"})
                return self._json(200, a.session_seqnum(session, n_in, n_out))
        except KeyError as exc:
            return self._json(404, {"error": str(exc.args[0]) if exc.args else "unknown session"})
        except ValueError as exc:
            return self._json(400, {"error": str(exc)})
        return self._json(404, {"error": f"unknown path {path}; try /sessions/logout, /sessions/logon, "
                                         "/sessions/seqnum"})

    def _read_body(self) -> tuple[dict, tuple[int, dict] | None]:
        """(JSON object, None) or ({}, (status, error)): every lockdown check before any read."""
        if not self._host_ok():
            return {}, (403, {"error": "Host must be 127.0.0.1 or localhost"})
        auth = self.headers.get("Authorization") or ""
        given = auth[7:].strip() if auth.startswith("Bearer ") else ""
        if not given or not hmac.compare_digest(given.encode(), self.token.encode()):
            return {}, (401, {"error": "missing or wrong bearer token (see <store_dir>/admin.token)"})
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return {}, (415, {"error": "Content-Type must be application/json"})
        raw_len = self.headers.get("Content-Length")
        try:
            length = int(raw_len) if raw_len is not None else -1
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            return {}, (411 if raw_len is None else 413,
                        {"error": f"Content-Length must be 0..{MAX_BODY} (got {raw_len!r})"})
        try:
            raw = self.rfile.read(length) if length else b"{}"
            body = json.loads(raw or b"{}")
        except (ValueError, OSError):
            return {}, (400, {"error": "body must be a JSON object"})
        if not isinstance(body, dict):
            return {}, (400, {"error": "body must be a JSON object"})
        return body, None

    def _json(self, code: int, payload) -> None:
        self._send(code, json.dumps(payload, default=str).encode(), "application/json")

    def _send(self, code: int, data: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _int(text: str) -> int:
    try:
        return max(int(text), 0)
    except ValueError:
        return 0


# ------------------------------------------------------------ `fixgw status | kill | reset`

def request(base: str, path: str, body: dict | None = None, timeout: float = 5.0, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, method="POST" if body is not None else "GET",
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}")


def _hms(iso_time: str | None) -> str:
    """'2026-12-01T15:00:01.123456+00:00' -> '15:00:01Z' (status lines are read by people)."""
    if not iso_time:
        return "-"
    return iso_time[11:19] + "Z" if len(iso_time) >= 19 and iso_time[10:11] == "T" else str(iso_time)


def format_status(st: dict) -> str:
    g = st.get("gateway", {})
    lines = [f"gateway pid {g.get('pid')} up {g.get('uptime_s', 0):.0f}s, OMS port {g.get('oms_port')}, "
             f"policy {g.get('policy')}"]
    lines.append("OMS sessions:")
    for s in st.get("oms_sessions", []):
        lines.append(f"  {s['session']:<28} {'UP  ' if s.get('logged_on') else 'down'} "
                     f"next out {s.get('next_sender_seq')} next in {s.get('next_target_seq')}")
    lines.append("venues:")
    # --- latency (issue 12): the venue's part of the probe RTT; our own floor on its own line ---
    floor = g.get("probe_floor") or {}
    if floor.get("p50_us") is not None:
        lines[-1] = (f"venues (latency = probe RTT net of our floor; floor p50 {floor['p50_us']:.0f}us "
                     f"p99 {floor['p99_us']:.0f}us over {floor.get('samples', 0)} probes):")
    for v in st.get("venues", []):
        mkt = v.get("market") or {}
        lat = mkt.get("latency") or {}
        p50, p99 = lat.get("p50_us"), lat.get("p99_us")
        rtt = f"latency p50 {p50:.0f}us p99 {p99:.0f}us" if p50 is not None and p99 is not None else "latency -"
        raw = (mkt.get("rtt") or {}).get("p50_us")
        cold = (mkt.get("rtt_cold") or {}).get("p50_us")       # primed probes: the primers' round trip
        if raw is not None:
            rtt += f" (rtt p50 {raw:.0f}us" + (f", primer {cold:.0f}us)" if cold is not None else ")")
        if mkt.get("probes") is False:
            rtt = "probes off"
        ack = (mkt.get("ack") or {}).get("p50_us")         # the passive figures
        jit = (mkt.get("heartbeat") or {}).get("jitter_us")
        rtt += (f"  ack p50 {ack:.0f}us" if ack is not None else "") + \
            (f"  heartbeat jitter {jit:.0f}us" if jit is not None else "")
        lines.append(f"  {v['name']:<8} {v.get('state', '?'):<10} next out {v.get('next_sender_seq')} "
                     f"next in {v.get('next_target_seq')}  open {v.get('open_orders', 0)}  "
                     f"routed {v.get('orders_routed', 0)}  fills {v.get('fills', 0)}  {rtt}")
        link = v.get("link") or {}
        seen = ", ".join(f"{label} {_hms(link.get(k))}" for label, k in (
            ("logon", "last_logon_at"), ("in", "last_received_at"), ("out", "last_sent_at"),
            ("heartbeat", "last_heartbeat_at")) if link.get(k))
        if seen:
            lines.append(f"           last {seen}")
        if not v.get("logged_on"):
            why = link.get("link_state") or link.get("last_disconnect") or "not connected yet"
            attempts = link.get("connect_attempts")
            lines.append(f"           down: {why}"
                         + (f" ({attempts} connect attempts)" if attempts else ""))
        for symbol, reason in ((v.get("market") or {}).get("md_rejects") or {}).items():
            lines.append(f"           market data {symbol} rejected by the venue: {reason}")
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
    ap.add_argument("--config", help="gateway TOML, for the admin port and token "
                                     "(default: $FIXGW_CONFIG, then ./configs/gateway.toml)")
    ap.add_argument("--admin", help="admin address host:port (overrides --config)")
    ap.add_argument("--token-file", help="admin token file (default: <store_dir>/admin.token from --config)")
    if command == "status":
        ap.add_argument("--json", action="store_true", help="print the raw JSON")
    else:
        ap.add_argument("--by", default=getpass.getuser(), help="who is acting (default: your user name)")
    if command == "kill":
        ap.add_argument("--reason", default="manual kill from the command line")
    if command == "reset":
        ap.add_argument("--session", help="reset one suspended OMS session (its session key)")
    args = ap.parse_args(argv)
    base, store_dir = _base_url(args)
    try:
        if command == "status":
            st = request(base, "/status")
            print(json.dumps(st, indent=2) if args.json else format_status(st))
            return 0
        token = _token(args, store_dir)
        body = {"by": args.by, **({"reason": args.reason} if command == "kill" else {}),
                **({"session": args.session} if command == "reset" and args.session else {})}
        result = request(base, f"/{command}", body, token=token)
    except (urllib.error.URLError, OSError) as exc:
        print(f"{prog}: cannot reach the gateway admin endpoint at {base}: {exc}", file=sys.stderr)
        return 2
    if "error" in result:
        print(f"{prog}: {result['error']}", file=sys.stderr)
        return 1
    state = (result.get("risk") or {}).get("state")
    if not result.get("changed"):
        print(f"{prog}: nothing changed (risk state {state})")
        return 1
    print(f"{prog}: done, risk state now {state}")
    return 0


def _token(args, store_dir: str | None) -> str:
    path = Path(args.token_file) if args.token_file else token_path(store_dir) if store_dir else None
    if path is None or not path.exists():
        raise OSError(f"no admin token file {path}; pass --token-file or --config of the running gateway")
    return path.read_text().strip()


def _base_url(args) -> tuple[str, str | None]:
    from gateway.apps.server.config import GatewayConfig
    cfg = None
    if not args.admin or not getattr(args, "token_file", None):
        try:
            cfg = load_config(find_config(args.config), GatewayConfig)
        except ConfigError:
            if not args.admin:
                raise
    if args.admin:
        return f"http://{args.admin}", cfg.store_dir if cfg is not None else None
    if not cfg.admin.port:
        raise SystemExit(f"{find_config(args.config)}: [admin] port is 0: the gateway has no admin endpoint")
    return f"http://{cfg.admin.host}:{cfg.admin.port}", cfg.store_dir
