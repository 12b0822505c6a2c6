"""Helpers for the simulator's socket tests (fixtures are in conftest.py)."""
from __future__ import annotations

import itertools
import statistics
import time

from gateway.fix.raw import RawFixSession
from sim_exchange.config import SimConfig

TERMINAL = {b"2", b"4", b"8", b"C"}
_ids = itertools.count(1)


def make_config(tmp_path, venues: list[dict], symbols: list[dict] | None = None,
                engine: str = "quickfix") -> SimConfig:
    symbols = symbols or [{"symbol": s, "tick_size": 0.01, "ref_price": 100.0}
                          for s in ("T1", "T2", "T3", "T4", "T5", "MD1", "MD2")]
    return SimConfig.model_validate({"store_dir": str(tmp_path / "store"), "symbols": symbols, "venues": venues,
                                     "engine": engine})


def quiet_venue(name: str, port: int, **latency) -> dict:
    """No background arrivals; initial book of 3 levels x 100 around 100.00 (bid 99.99, ask 100.00)."""
    return {"name": name, "port": port, "latency": latency or {},
            "flow": {"enabled": False, "initial_levels": 3, "level_qty": 100, "spread_ticks": 1}}


def client(port: int, venue: str, sender: str = "CLIENT") -> RawFixSession:
    c = RawFixSession(port=port, sender=sender, target=venue, timeout=5.0).connect()
    reply = c.logon()
    assert reply.get(35) == b"A", reply
    return c


def send_order(c: RawFixSession, symbol: str, side: str, qty, price=None, tif: str = "0",
               ord_type: str = "2", extra=()) -> str:
    cl = f"C{next(_ids)}-{time.monotonic_ns()}"
    fields = [(11, cl), (55, symbol), (54, side), (38, qty), (40, ord_type)]
    if price is not None:
        fields.append((44, price))
    fields += [(59, tif), (60, "20260101-00:00:00.000"), *extra]
    c.send("D", fields)
    return cl


def reports(c: RawFixSession, cl_ord_id: str, n: int | None = None, timeout: float = 3.0) -> list:
    """ExecutionReports (or an OrderCancelReject) for ``cl_ord_id`` until a terminal OrdStatus or ``n``."""
    out = []
    want = cl_ord_id.encode("latin-1")      # ids are latin-1 text: one code point per byte
    deadline = time.monotonic() + timeout
    while True:
        m = c.recv_until(lambda m: m.get(35) in (b"8", b"9") and m.get(11) == want,
                         timeout=max(0.01, deadline - time.monotonic()))
        out.append(m)
        if m.get(35) == b"9" or m.get(39) in TERMINAL or (n is not None and len(out) >= n):
            return out


def tr_rtts(c: RawFixSession, n: int) -> list[float]:
    """TestRequest -> Heartbeat round trips in ms, measured at the client's socket edge."""
    out = []
    for i in range(n):
        tid = f"rtt{i}-{time.monotonic_ns()}"
        t0 = time.perf_counter()
        c.send("1", [(112, tid)])
        c.recv_until(lambda m: m.get(35) == b"0" and m.get(112) == tid.encode(), timeout=3.0)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def median(xs):
    return statistics.median(xs)
