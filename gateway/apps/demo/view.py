"""The live terminal view: polls the gateway's admin /status and redraws a compact table.

A thread blocks on ``Event.wait(interval)`` between polls (never spins: the GIL trap).
On a terminal it clears and redraws; otherwise it prints one summary line every few
seconds so logs stay readable. Every poll is also kept (condensed) for the report.
"""
from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from typing import Callable, TextIO

CLEAR = "\x1b[H\x1b[2J"


def fetch_json(url: str, timeout: float = 1.0):
    """GET a JSON document; None when the gateway does not answer (it may be starting or gone)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return json.loads(resp.read().decode())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def condense(status: dict, t: float) -> dict:
    """The part of a /status answer the report charts need, keyed by venue name."""
    venues = {}
    for v in status.get("venues") or []:
        market = v.get("market") or {}
        lat = market.get("latency") or {}
        venues[v.get("name", "?")] = {
            "logged_on": v.get("logged_on"), "p50_us": lat.get("p50_us"), "p99_us": lat.get("p99_us"),
            "ewma_us": lat.get("ewma_us"), "stale": lat.get("stale"),
            "orders_routed": v.get("orders_routed"), "fills": v.get("fills"),
            "books": {s: {k: b.get(k) for k in ("bid", "bid_qty", "ask", "ask_qty", "levels")}
                      for s, b in (market.get("books") or {}).items() if isinstance(b, dict)},
        }
    risk = status.get("risk") or {}
    return {"t": round(t, 3), "venues": venues, "orders": status.get("orders") or {},
            "routing": (status.get("routing") or {}).get("by_venue") or {},
            "risk": {"state": risk.get("state"), "total_pnl": risk.get("total_pnl")}}


def _num(v, fmt: str = "{:,.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def _levels(v) -> str:
    """Book depth in levels: the gateway reports [bid levels, ask levels]."""
    if isinstance(v, (list, tuple)):
        return "/".join(str(x) for x in v)
    return _num(v)


def _slippage(totals: dict) -> str:
    qty = totals.get("slip_qty") or 0
    return f"{totals.get('slip_ticks_x_qty', 0) / qty:+.2f}" if qty else "-"


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[len(s) // 2]


def render(status: dict | None, client: dict, policy: str, elapsed: float, duration: float,
           symbol: str) -> str:
    """The table as text (pure: the tests call it with hand-made dicts)."""
    status = status or {}
    totals = client.get("totals", {})
    per = client.get("venues", {})
    sent = totals.get("sent", 0) or 0
    lines = [f"fixgw demo  policy={policy}  t={elapsed:5.1f}/{duration:.0f}s   (Ctrl-C stops)",
             f"{'VENUE':<8} {'SESSION':<8} {'RTT ewma':>8} {'p50/p99 us':>15}  {symbol + ' bid x ask':<34} "
             f"{'LVLS b/a':>8} {'ROUTED':>7} {'FILLS':>6} {'MISSES':>6}"]
    for v in status.get("venues") or []:
        name = v.get("name", "?")
        market = v.get("market") or {}
        lat = market.get("latency") or {}
        book = (market.get("books") or {}).get(symbol) or {}
        mine = per.get(name, {})
        top = (f"{_num(book.get('bid_qty'))} @ {book.get('bid', '-')} x {book.get('ask', '-')} @ "
               f"{_num(book.get('ask_qty'))}") if book else "-"
        state = "up" if v.get("logged_on") else "DOWN"
        if lat.get("stale"):
            state += "/stale"
        share = f"{100 * mine.get('orders', 0) / sent:.0f}%" if sent else "-"
        lines.append(f"{name:<8} {state:<8} {_num(lat.get('ewma_us')):>8} {_num(lat.get('p50_us')):>7}/"
                     f"{_num(lat.get('p99_us')):<7}  "
                     f"{top:<34} {_levels(book.get('levels')):>8} {share:>7} {mine.get('fills', 0):>6} "
                     f"{mine.get('misses', 0):>6}")
    gw = status.get("orders") or {}
    risk = status.get("risk") or {}
    filled = totals.get("filled", 0) + totals.get("partial_then_done", 0)
    lines.append(f"gateway: orders {gw.get('total', '-')} (filled {gw.get('filled', '-')}, canceled "
                 f"{gw.get('canceled', '-')}, rejected {gw.get('rejected', '-')})  risk {risk.get('state', '-')}  "
                 f"PnL {_num(risk.get('total_pnl'), '{:,.2f}')}")
    lines.append(f"client:  sent {sent}  open {totals.get('open', 0)}  fill rate "
                 f"{(100 * filled / sent) if sent else 0:.0f}%  missed {totals.get('missed', 0)}  rejected "
                 f"{totals.get('rejected', 0)}  slippage {_slippage(totals)} ticks  "
                 f"signal->exec p50 {_num(_median(totals.get('lat_us', [])))} us")
    return "\n".join(lines)


def summary_line(status: dict | None, client: dict, policy: str, elapsed: float) -> str:
    """One line for non-terminal output."""
    totals = client.get("totals", {})
    rtts = " ".join(f"{v.get('name')}={_num(((v.get('market') or {}).get('latency') or {}).get('ewma_us'))}us"
                    for v in (status or {}).get("venues") or [])
    filled = totals.get("filled", 0) + totals.get("partial_then_done", 0)
    return (f"[demo {policy} t={elapsed:.1f}s] sent {totals.get('sent', 0)} filled {filled} missed "
            f"{totals.get('missed', 0)} rejected {totals.get('rejected', 0)} | probe RTT {rtts or '-'}")


class LiveView(threading.Thread):
    """Polls /status every ``interval`` seconds, keeps condensed snapshots, redraws."""

    def __init__(self, admin_url: str, client_stats: Callable[[], dict], policy: str, duration: float,
                 symbol: str, clock: Callable[[], float], interval: float = 0.5,
                 out: TextIO | None = None, tty: bool | None = None, line_every_s: float = 3.0) -> None:
        super().__init__(name="demo-view", daemon=True)
        self.admin_url = admin_url.rstrip("/")
        self.client_stats = client_stats
        self.policy, self.duration, self.symbol = policy, duration, symbol
        self.clock = clock                       # seconds since trading started
        self.interval = interval
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.line_every_s = line_every_s
        self.series: list[dict] = []
        self.last_status: dict | None = None
        self.stopped = threading.Event()
        self._last_line = float("-inf")
        self.render_errors = 0

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.poll_once()

    def poll_once(self) -> None:
        status = fetch_json(self.admin_url + "/status")
        t = self.clock()
        if status is not None:
            self.last_status = status
            self.series.append(condense(status, t))
        try:
            client = self.client_stats()
        except Exception:  # noqa: BLE001 - the view must never stop the run
            client = {}
        try:
            if self.tty:
                self.out.write(CLEAR + render(status, client, self.policy, t, self.duration, self.symbol) + "\n")
                self.out.flush()
            elif t - self._last_line >= self.line_every_s:
                self._last_line = t
                print(summary_line(status, client, self.policy, t), file=self.out, flush=True)
        except Exception as exc:  # noqa: BLE001 - a status shape we did not expect must not end the run
            self.render_errors += 1
            if self.render_errors == 1:
                print(f"[demo view] cannot draw the status ({type(exc).__name__}: {exc}); "
                      f"the run goes on", file=self.out, flush=True)

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join(timeout=5)
