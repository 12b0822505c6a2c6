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
    return "-" if v is None or v == float("inf") else fmt.format(v)


def fmt_px(px, tick: float | None) -> str:
    """A price on its tick grid (decimals of the tick); ``-`` for an empty side."""
    if px is None:
        return "-"
    if not tick:
        return f"{px:g}"
    from gateway.apps.client.driver import price_decimals
    return f"{round(px / tick) * tick:.{price_decimals(tick)}f}"


def render(status: dict | None, client: dict, title: str, elapsed: float, duration: float,
           symbol: str, ticks: dict[str, float] | None = None) -> str:
    """The table as text, every line at most 80 columns (pure: the tests call it with hand-made dicts)."""
    status = status or {}
    tick = (ticks or {}).get(symbol)
    trips = client.get("trips") or {}
    risk = status.get("risk") or {}
    kill = client.get("kill_switch") or risk.get("kill_switch") or {}
    lines = [f"fixgw {title}  t={elapsed:5.1f}/{duration:.0f}s"[:80],
             f"risk {risk.get('state', '-')}  kill switch: loss > {_num(kill.get('loss_threshold'))} in "
             f"{_num(kill.get('loss_window_s'), '{:g}')} s  gateway PnL {_num(risk.get('total_pnl'), '{:,.2f}')}"[:80],
             f"{'VENUE':<8} {'STATE':<8} {'RTT us':>7} {symbol + ' bid x ask':>35} {'ORDERS':>7}"]
    by_venue = client.get("by_venue") or {}
    for v in status.get("venues") or []:
        name = str(v.get("name", "?"))[:8]
        market = v.get("market") or {}
        lat = market.get("latency") or {}
        book = (market.get("books") or {}).get(symbol) or {}
        state = "up" if v.get("logged_on") else "DOWN"
        if lat.get("stale"):
            state += "/st"
        top = f"{fmt_px(book.get('bid'), tick)} x {fmt_px(book.get('ask'), tick)}"
        lines.append(f"{name:<8} {state:<8} {_num(lat.get('ewma_us')):>7} {top:>35} {by_venue.get(name, 0):>7}")
    win = trips.get("win_rate")
    lines.append(f"trips {trips.get('round_trips', 0)}  win {'-' if win is None else f'{100 * win:.0f}%'}  "
                 f"missed {trips.get('missed', 0)}  PnL/trip {_num(trips.get('pnl_per_round_trip'), '{:+,.2f}')}  "
                 f"total {_num(trips.get('pnl_money_total'), '{:+,.2f}')}"[:80])
    pos = " ".join(f"{k} {v:+g}" for k, v in sorted((client.get("positions") or {}).items()) if v) or "flat"
    lines.append(f"orders {client.get('orders', 0)} (open {client.get('open_orders', 0)})  s2e p50 "
                 f"{_num(trips.get('signal_to_exec_p50_us'))} us  stuck {trips.get('stuck', 0)}  pos {pos}"[:80])
    return "\n".join(lines)


def summary_line(status: dict | None, client: dict, title: str, elapsed: float) -> str:
    """One line for non-terminal output (at most 80 columns)."""
    trips = client.get("trips") or {}
    risk = (status or {}).get("risk") or {}
    win = trips.get("win_rate")
    return (f"[{title} t={elapsed:.0f}s] trips {trips.get('round_trips', 0)} win "
            f"{'-' if win is None else f'{100 * win:.0f}%'} missed {trips.get('missed', 0)} "
            f"PnL {_num(trips.get('pnl_money_total'), '{:+,.1f}')} risk {risk.get('state', '-')}")[:80]


class LiveView(threading.Thread):
    """Polls /status every ``interval`` seconds, keeps condensed snapshots, redraws."""

    def __init__(self, admin_url: str, client_stats: Callable[[], dict], policy: str, duration: float,
                 symbol: str, clock: Callable[[], float], interval: float = 0.5,
                 out: TextIO | None = None, tty: bool | None = None, line_every_s: float = 3.0,
                 ticks: dict[str, float] | None = None) -> None:
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
        self.ticks = ticks or {}

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
                self.out.write(CLEAR + render(status, client, self.policy, t, self.duration, self.symbol, self.ticks) + "\n")
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
