"""Operator commands against a running gateway: `fixgw session ...` and `fixgw order`.

``fixgw session list``                                  one table row per FIX session
``fixgw session logout SESSION [--text T]``             log a session out (it stays down:
                                                        an initiator is held until `logon`)
``fixgw session logon SESSION``                         let it log on again
``fixgw session seqnum SESSION [--set-next-in N] [--set-next-out M]``
``fixgw order --symbol S --side buy --qty Q [--price P] [--tif ioc] [--venue V]``
``fixgw order --cancel ORIG --symbol S --side buy``
``fixgw order --replace ORIG --symbol S --side buy --qty Q --price P``

SESSION is a session key (``FIX.4.4:FIXGW->OMS1``) or a venue name (``ALPHA``).

The admin endpoint contract (the server implements it; every POST is JSON with
``Authorization: Bearer <token>`` read from ``<store_dir>/admin.token``):

- ``GET /sessions`` -> ``[{"key", "kind": "oms"|"venue", "name", "logged_on", "state",
  "next_sender_seq", "next_target_seq", "last_logon_at", "last_received_at", "last_sent_at",
  "last_disconnect_reason"}, ...]`` (times UTC ISO 8601 or null)
- ``POST /sessions/logout {"session", "text"}``, ``POST /sessions/logon {"session"}``,
  ``POST /sessions/seqnum {"session", "next_in", "next_out"}`` (null: leave as is)
- answers: 200 with the session's new state (``"changed": bool`` optional), a problem is
  an HTTP 4xx with ``{"error": "..."}``. Whether anything changed is the server's
  ``changed`` when it gives one, else the session's row before and after the command
  (``GET /sessions`` both times): a logout of a session already out and held, a logon of
  one not held, a seqnum that sets the numbers they already were, change nothing.

Exit status: 0 done; 1 nothing changed, or the gateway refused (the order was rejected);
2 cannot run (no config, gateway unreachable, logon failed, timeout).

`fixgw order` is a built-in OMS session: a native-engine initiator logging on to the
gateway's OMS acceptor with a client entry of the gateway config (``--client``, default
``OPS``: add ``{ comp_id = "OPS", password = "..." }`` to ``[oms] clients``). It logs on
with ResetSeqNumFlag (141=Y), so it needs no store of its own, sends one message and
prints every ExecutionReport (35=8) or OrderCancelReject (35=9) until the order is done.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gateway.common.configfile import ConfigError, find_config, load_config
from gateway.fix.codec import utc_timestamp

EXIT_OK, EXIT_UNCHANGED, EXIT_CANNOT = 0, 1, 2
TOKEN_FILE = "admin.token"

# ---------------------------------------------------------------- config and HTTP


def _load(args) -> Any:
    from gateway.apps.server.config import GatewayConfig
    return load_config(find_config(getattr(args, "config", None)), GatewayConfig)


class AdminClient:
    """The admin endpoint of one gateway: base URL and bearer token."""

    def __init__(self, base: str, token: str | None, timeout: float = 5.0) -> None:
        self.base, self.token, self.timeout = base.rstrip("/"), token, timeout

    @classmethod
    def from_config(cls, cfg, admin: str | None = None, token_file: str | None = None) -> "AdminClient":
        if admin:
            base = f"http://{admin}"
        else:
            if not cfg.admin.port:
                raise ConfigError("[admin] port is 0: the gateway has no admin endpoint")
            base = f"http://{cfg.admin.host}:{cfg.admin.port}"
        path = Path(token_file) if token_file else Path(cfg.store_dir) / TOKEN_FILE
        token = path.read_text().strip() if path.is_file() else None
        return cls(base, token)

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if method == "POST":
            if not self.token:
                raise OSError("no admin token: <store_dir>/admin.token not found (pass --token-file)")
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read() or b"{}")
            except ValueError:
                payload = {"error": f"HTTP {exc.code}"}
            return exc.code, payload


# ---------------------------------------------------------------- `fixgw session`

COLUMNS = (("name", "SESSION"), ("kind", "KIND"), ("state", "STATE"), ("next_sender_seq", "NEXT OUT"),
           ("next_target_seq", "NEXT IN"), ("last_logon_at", "LAST LOGON"), ("last_received_at", "LAST IN"),
           ("last_sent_at", "LAST OUT"), ("last_disconnect_reason", "LAST DISCONNECT"))


def _time(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = str(value)
    return text[:19] + "Z" if len(text) > 20 and text[10:11] == "T" else text   # seconds are enough here


def _cell(row: dict, key: str) -> str:
    value = row.get(key)
    if key == "name":
        return str(value or row.get("key") or "?")
    if key == "state":
        return f"{value or '?'}{' (up)' if row.get('logged_on') else ''}"
    if key.endswith("_at"):
        return _time(value)
    if key == "last_disconnect_reason":
        text = str(value or "-")
        return text if len(text) <= 60 else text[:57] + "..."
    return "-" if value is None else str(value)


def format_sessions(rows: list[dict]) -> str:
    table = [[title for _, title in COLUMNS]] + [[_cell(r, k) for k, _ in COLUMNS] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table)


def _describe(row: dict | None) -> str:
    if not row:
        return ""
    return (f"{row.get('name') or row.get('key')}: {row.get('state', '?')}, next out "
            f"{row.get('next_sender_seq', '?')}, next in {row.get('next_target_seq', '?')}")


def session_main(argv: list[str] | None = None, prog: str = "fixgw session", out=None, err=None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    ap = argparse.ArgumentParser(prog=prog, description="List and control the FIX sessions of a running gateway.")
    ap.add_argument("--config", help="gateway TOML (default: $FIXGW_CONFIG, then ./configs/gateway.toml)")
    ap.add_argument("--admin", help="admin address host:port (overrides the config)")
    ap.add_argument("--token-file", help="admin token (default: <store_dir>/admin.token)")
    sub = ap.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="one row per session")
    ls.add_argument("--json", action="store_true", help="print the JSON as received")
    lo = sub.add_parser("logout", help="log a session out and keep it down")
    lo.add_argument("session", help="session key or venue name")
    lo.add_argument("--text", default="", help="Text(58) of the Logout")
    li = sub.add_parser("logon", help="let a session log on again")
    li.add_argument("session")
    sq = sub.add_parser("seqnum", help="set the next expected (in) and next sent (out) MsgSeqNum")
    sq.add_argument("session")
    sq.add_argument("--set-next-in", type=int, dest="next_in", metavar="N")
    sq.add_argument("--set-next-out", type=int, dest="next_out", metavar="M")
    args = ap.parse_args(argv)
    if args.action == "seqnum":
        if args.next_in is None and args.next_out is None:
            ap.error("seqnum: give --set-next-in N and/or --set-next-out M")
        for n in (args.next_in, args.next_out):
            if n is not None and n < 1:
                ap.error("sequence numbers start at 1")
    try:
        cfg = None if args.admin and args.token_file else _load(args)
        client = AdminClient.from_config(cfg, args.admin, args.token_file)
    except (ConfigError, OSError) as exc:
        print(f"{prog}: {exc}", file=err)
        return EXIT_CANNOT
    try:
        status, rows = client.call("GET", "/sessions")
        if status < 400 and args.action != "list" and isinstance(rows, list):
            before = find_row(rows, args.session)
            if before is None:
                names = ", ".join(str(r.get("name") or r.get("key")) for r in rows)
                print(f"{prog} {args.action}: no session {args.session!r} (have: {names})", file=err)
                return EXIT_UNCHANGED
            body: dict = {"session": before.get("key") or args.session}   # the exact key, whatever was typed
            if args.action == "logout":
                body["text"] = args.text
            elif args.action == "seqnum":
                body.update(next_in=args.next_in, next_out=args.next_out)
            status, answer = client.call("POST", f"/sessions/{args.action}", body)
            if status < 400:
                _, after_rows = client.call("GET", "/sessions")
                after = find_row(after_rows if isinstance(after_rows, list) else [], args.session) or {}
                return _report_change(prog, args.action, before, after, answer, out)
            rows = answer
    except (urllib.error.URLError, OSError) as exc:
        print(f"{prog}: cannot reach the gateway admin endpoint at {client.base}: "
              f"{getattr(exc, 'reason', None) or exc}", file=err)
        return EXIT_CANNOT
    if status >= 400 or (isinstance(rows, dict) and "error" in rows):
        print(f"{prog} {args.action}: {rows.get('error') if isinstance(rows, dict) else rows}", file=err)
        return EXIT_UNCHANGED
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2), file=out)
    else:
        print(format_sessions(rows or []), file=out)
    return EXIT_OK if rows else EXIT_UNCHANGED


def find_row(rows: list[dict], session: str) -> dict | None:
    """The row of a session named by its key, its name, or (case-insensitively) its name."""
    for r in rows:
        if session in (r.get("key"), r.get("name")):
            return r
    low = session.lower()
    return next((r for r in rows if str(r.get("name", "")).lower() == low), None)


def _changed(action: str, before: dict, after: dict, answer: Any) -> bool:
    """Did the command change anything? The server's own "changed" when it says so; otherwise
    the session's row before and after."""
    if isinstance(answer, dict) and isinstance(answer.get("changed"), bool):
        return answer["changed"]
    if action == "seqnum":
        return any(before.get(k) != after.get(k) for k in ("next_sender_seq", "next_target_seq"))
    held = lambda r: str(r.get("state", "")).startswith("held")   # noqa: E731
    if action == "logout":
        return bool(before.get("logged_on")) or held(after) != held(before)
    return held(before) and not held(after) or (not before.get("logged_on") and bool(after.get("logged_on")))


def _report_change(prog: str, action: str, before: dict, after: dict, answer: Any, out) -> int:
    what = _describe(after or before)
    note = answer.get("note") or answer.get("text") if isinstance(answer, dict) else None
    if not _changed(action, before, after, answer):
        print(f"{prog} {action}: nothing changed; {what}", file=out)
        return EXIT_UNCHANGED
    print(f"{prog} {action}: done; {what}{f' ({note})' if note else ''}", file=out)
    return EXIT_OK


# ---------------------------------------------------------------- `fixgw order`

SIDES = {"buy": "1", "sell": "2", "1": "1", "2": "2"}
TIFS = {"day": "0", "ioc": "3", "fok": "4", "0": "0", "3": "3", "4": "4"}
EXEC_TYPES = {"0": "new", "4": "canceled", "5": "replaced", "6": "pending cancel", "8": "rejected",
              "A": "pending new", "C": "expired", "E": "pending replace", "F": "trade", "I": "status"}
TERMINAL = frozenset("248C")


def _transact_time() -> str:
    return utc_timestamp(time.time())


def order_body(args) -> tuple[str, str]:
    """(MsgType, body wire text) of the order, cancel or replace the arguments ask for."""
    cid = args.cl_ord_id or f"OPS-{int(time.time() * 1000)}"
    side = SIDES[args.side.lower()]
    pairs: list[tuple[int, Any]] = [(11, cid)]
    if args.cancel or args.replace:
        pairs.append((41, args.cancel or args.replace))
    pairs += [(55, args.symbol), (54, side), (60, _transact_time())]
    if args.cancel:
        if args.qty is not None:
            pairs.append((38, _num(args.qty)))
        return "F", "".join(f"{t}={v}\x01" for t, v in pairs)
    if args.qty is None:
        raise ValueError("--qty is required for an order or a replace")
    ord_type = "2" if args.price is not None else "1"
    pairs += [(21, "1"), (38, _num(args.qty)), (40, ord_type)]
    if args.price is not None:
        pairs.append((44, _num(args.price)))
    pairs.append((59, TIFS[args.tif.lower()]))
    if args.venue:
        pairs.append((100, args.venue))
    return ("G" if args.replace else "D"), "".join(f"{t}={v}\x01" for t, v in pairs)


def _num(x: float) -> str:
    return f"{x:.10f}".rstrip("0").rstrip(".") if isinstance(x, float) else str(x)


def format_report(msg) -> str:
    """One line for an ExecutionReport or an OrderCancelReject."""
    g = msg.get
    if msg.msg_type == "9":
        return (f"cancel rejected  ClOrdID={g(11)} OrigClOrdID={g(41)} OrdStatus={g(39)} "
                f"reason={g(102)} {g(58) or ''}").rstrip()
    if msg.msg_type == "3" or msg.msg_type == "j":
        return f"rejected by the session  RefSeqNum={g(45)} reason={g(373) or g(380)} {g(58) or ''}".rstrip()
    et = g(150) or "?"
    parts = [f"{EXEC_TYPES.get(et, et):<14}", f"ClOrdID={g(11)}", f"OrdStatus={g(39)}", f"CumQty={g(14)}",
             f"LeavesQty={g(151)}", f"AvgPx={g(6)}"]
    if et == "F":
        parts += [f"LastQty={g(32)}", f"LastPx={g(31)}"]
    if g(30):
        parts.append(f"LastMkt={g(30)}")
    if g(58):
        parts.append(g(58))
    return "  ".join(parts)


def finished(msg, kind: str) -> tuple[bool, int]:
    """(this message ends the command, exit status)."""
    t = msg.msg_type
    if t in ("9", "3", "j"):
        return True, EXIT_UNCHANGED
    if t != "8":
        return False, EXIT_OK
    et, status = msg.get(150), msg.get(39)
    if et == "8":
        return True, EXIT_UNCHANGED
    if kind == "G" and et == "5":
        return True, EXIT_OK
    return status in TERMINAL, EXIT_OK


async def send_order(cfg, client_id: str, msg_type: str, body: str, *, host: str | None = None,
                     port: int | None = None, timeout: float = 10.0, out=None) -> int:
    """Log on as ``client_id``, send one message, print the answers until done; exit status."""
    from gateway.fix.engine import BaseApplication, create_engine
    from gateway.fix.settings import SessionSettings
    out = out or sys.stdout
    client = next((c for c in cfg.oms.clients if c.comp_id == client_id), None)
    if client is None:
        raise ConfigError(f"[oms] clients has no comp_id {client_id!r} (have: "
                          f"{', '.join(c.comp_id for c in cfg.oms.clients)}); add "
                          f'{{ comp_id = "{client_id}", password = "..." }} or pass --client')
    fields: list[tuple[int, str]] = []
    if client.username:
        fields.append((553, client.username))
    # after the native port, a client's password may come from password_env / password_file
    password = client.expected_password() if hasattr(client, "expected_password") else client.password
    if password:
        fields.append((554, password))
    settings = SessionSettings(sender_comp_id=client.comp_id, target_comp_id=cfg.oms.comp_id, role="initiator",
                               heartbeat_s=30, reset_on_logon=True, logon_fields=tuple(fields))
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    cl_ord_id = body.split("\x01", 1)[0].split("=", 1)[1]

    class App(BaseApplication):
        def on_logon(self, session) -> None:
            print(f"logged on to {host or cfg.oms.host}:{port or cfg.oms.port} as {client.comp_id}; "
                  f"sending {'order' if msg_type == 'D' else 'cancel' if msg_type == 'F' else 'replace'} "
                  f"{cl_ord_id}", file=out)
            session.send(msg_type, body)

        def on_logout(self, session, reason: str) -> None:
            if not done.done():
                done.set_result(("logout", reason))

        def on_admin(self, session, msg) -> None:
            if msg.msg_type == "3":
                self.on_message(session, msg)

        def on_message(self, session, msg) -> None:
            if msg.msg_type not in ("8", "9", "3", "j"):
                return                        # News (35=B) and the like: not ours to answer
            if msg.msg_type == "8" and msg.get(11) not in (cl_ord_id, None) and msg.get(41) != cl_ord_id:
                return                        # another order's report (a resend): not ours
            print(format_report(msg), file=out)
            end, status = finished(msg, msg_type)
            if end and not done.done():
                done.set_result(("done", status))

    engine = create_engine("native", "initiator", [settings], App(),
                           hosts=[(host or cfg.oms.host, port or cfg.oms.port)], backoff_max_s=1.0)
    await engine.start()
    try:
        kind, value = await asyncio.wait_for(done, timeout)
    except asyncio.TimeoutError:
        ns = next(iter(engine.sessions.values()))
        why = getattr(ns, "last_disconnect", "") or "no answer"
        print(f"fixgw order: timed out after {timeout:g} s ({'logged on' if ns.logged_on else why})",
              file=sys.stderr)
        return EXIT_CANNOT
    finally:
        await engine.stop()
    if kind == "logout":
        print(f"fixgw order: the gateway logged us out: {value}", file=sys.stderr)
        return EXIT_CANNOT
    return value


def order_main(argv: list[str] | None = None, prog: str = "fixgw order", out=None) -> int:
    ap = argparse.ArgumentParser(prog=prog, description=(
        "Send one order (or a cancel or replace) through a running gateway as a built-in OMS session "
        "and print the reports until it is done."))
    ap.add_argument("--config", help="gateway TOML (default: $FIXGW_CONFIG, then ./configs/gateway.toml)")
    ap.add_argument("--client", default="OPS", help="the [oms] clients entry to log on as (default OPS)")
    ap.add_argument("--host", help="OMS acceptor host (default: [oms] host)")
    ap.add_argument("--port", type=int, help="OMS acceptor port (default: [oms] port)")
    ap.add_argument("--symbol", required=True)
    ap.add_argument("--side", required=True, choices=sorted(SIDES))
    ap.add_argument("--qty", type=float)
    ap.add_argument("--price", type=float, help="limit price (no price: a market order)")
    ap.add_argument("--tif", default="day", choices=sorted(TIFS))
    ap.add_argument("--venue", help="ExDestination(100) (the dma policy's venue)")
    ap.add_argument("--cl-ord-id", help="ClOrdID (default OPS-<ms>)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--cancel", metavar="ORIG_CL_ORD_ID", help="cancel this order instead")
    group.add_argument("--replace", metavar="ORIG_CL_ORD_ID", help="replace this order (new --qty/--price)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the end (default 10)")
    args = ap.parse_args(argv)
    try:
        cfg = _load(args)
        msg_type, body = order_body(args)
    except (ConfigError, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_CANNOT
    from gateway.fix.transport import new_event_loop
    loop = new_event_loop()
    try:
        return loop.run_until_complete(send_order(cfg, args.client, msg_type, body, host=args.host,
                                                  port=args.port, timeout=args.timeout, out=out))
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_CANNOT
    finally:
        loop.close()


def main(argv: list[str] | None = None, prog: str = "fixgw session", command: str = "session") -> int:
    """`fixgw session ...` / `fixgw order ...` (see gateway/cli.py)."""
    if command == "order":
        return order_main(argv, prog)
    return session_main(argv, prog)


if __name__ == "__main__":
    sys.exit(main())
