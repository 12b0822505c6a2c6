"""Per-order records of the demo client, built from ExecutionReports (no I/O).

Timestamps are monotonic seconds from the client's own clock: ``signal_ts`` when the
market data that fired the order arrived, ``send_ts`` just before the order went to
the gateway, ``terminal_ts`` when the ExecutionReport that ends it arrived.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field

from gateway.core.model import BUY

TERMINAL_STATUSES = {"2", "3", "4", "8", "C"}   # filled, done for day, canceled, rejected, expired
FILL_EXEC_TYPES = {"F", "1", "2"}                # trade (4.4) and partial/fill (pre-4.4 style)
OUTCOMES = ("filled", "partial_then_done", "missed", "rejected", "unresolved")


@dataclass(slots=True)
class OrderRecord:
    cl_ord_id: str
    symbol: str
    side: str
    qty: float
    intended_px: float
    tick: float
    signal_ts: float
    send_ts: float = 0.0
    venue: str | None = None
    fills: list[tuple[float, float, str | None]] = field(default_factory=list)  # (qty, px, venue)
    status: str = "pending"          # last OrdStatus(39), or 'pending'
    first_er_ts: float | None = None
    terminal_ts: float | None = None
    reject_text: str | None = None
    exec_ids: set[str] = field(default_factory=set)
    cum_qty: float | None = None     # last CumQty(14): the gateway's count, checked against our fills

    @property
    def filled_qty(self) -> float:
        return sum(q for q, _, _ in self.fills)

    @property
    def avg_px(self) -> float | None:
        qty = self.filled_qty
        return sum(q * p for q, p, _ in self.fills) / qty if qty else None

    @property
    def done(self) -> bool:
        return self.terminal_ts is not None

    @property
    def outcome(self) -> str:
        if not self.done:
            return "unresolved"
        if self.status == "8":
            return "rejected"
        filled = self.filled_qty
        if filled >= self.qty - 1e-9:
            return "filled"
        return "partial_then_done" if filled > 0 else "missed"

    @property
    def slippage_ticks(self) -> float | None:
        """(avg fill price - intended) in ticks, signed so that positive is worse for us."""
        avg = self.avg_px
        if avg is None:
            return None
        diff = (avg - self.intended_px) if self.side == BUY else (self.intended_px - avg)
        return diff / self.tick

    @property
    def win(self) -> bool:
        """Fully filled at the intended price or better."""
        slip = self.slippage_ticks
        return self.outcome == "filled" and slip is not None and slip <= 1e-6

    @property
    def signal_to_exec_us(self) -> float | None:
        return None if self.terminal_ts is None else (self.terminal_ts - self.signal_ts) * 1e6

    @property
    def signal_to_send_us(self) -> float:
        return (self.send_ts - self.signal_ts) * 1e6

    @property
    def send_to_ack_us(self) -> float | None:
        return None if self.first_er_ts is None else (self.first_er_ts - self.send_ts) * 1e6

    def as_dict(self, t0: float = 0.0) -> dict:
        d = asdict(self)
        d.pop("exec_ids")
        for k in ("signal_ts", "send_ts", "first_er_ts", "terminal_ts"):
            if d[k] is not None:
                d[k] = round(d[k] - t0, 6)
        d.update(outcome=self.outcome, filled_qty=self.filled_qty, avg_px=self.avg_px,
                 slippage_ticks=self.slippage_ticks, win=self.win,
                 signal_to_exec_us=self.signal_to_exec_us, signal_to_send_us=self.signal_to_send_us,
                 send_to_ack_us=self.send_to_ack_us)
        return d


class OrderTracker:
    """The client's open and finished orders; thread-safe (quickfix callback threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.orders: dict[str, OrderRecord] = {}
        self.open: dict[str, OrderRecord] = {}
        self.open_symbols: dict[str, int] = {}
        self.unknown_reports = 0
        self._idle = threading.Condition(self.lock)

    def add(self, rec: OrderRecord) -> None:
        with self.lock:
            self.orders[rec.cl_ord_id] = rec
            self.open[rec.cl_ord_id] = rec
            self.open_symbols[rec.symbol] = self.open_symbols.get(rec.symbol, 0) + 1

    def busy(self) -> tuple[set[str], int]:
        """Symbols with an open order, and the number of open orders."""
        with self.lock:
            return {s for s, n in self.open_symbols.items() if n}, len(self.open)

    def on_execution_report(self, f: dict[int, str], now: float) -> OrderRecord | None:
        """Apply one ExecutionReport (fields by tag); the record, or None if not ours."""
        with self.lock:
            rec = self.orders.get(f.get(11, ""))
            if rec is None:
                self.unknown_reports += 1
                return None
            exec_id = f.get(17)
            if exec_id is not None and exec_id in rec.exec_ids:
                return rec  # a resent duplicate
            if exec_id is not None:
                rec.exec_ids.add(exec_id)
            if rec.first_er_ts is None:
                rec.first_er_ts = now
            venue = f.get(30) or None
            if venue:
                rec.venue = venue
            last_qty = float(f.get(32, 0) or 0)
            if f.get(150) in FILL_EXEC_TYPES and last_qty > 0:
                rec.fills.append((last_qty, float(f.get(31, 0) or 0), venue))
            rec.status = f.get(39, rec.status)
            if 14 in f:
                rec.cum_qty = float(f[14] or 0)
            if rec.status == "8":
                rec.reject_text = f.get(58)
            if rec.status in TERMINAL_STATUSES:
                self._finish(rec, now)
            return rec

    def on_business_reject(self, ref_id: str | None, text: str | None, now: float) -> OrderRecord | None:
        """A BusinessMessageReject naming our ClOrdID ends that order as rejected."""
        with self.lock:
            rec = self.orders.get(ref_id or "")
            if rec is None or rec.done:
                return None
            rec.status, rec.reject_text = "8", text
            self._finish(rec, now)
            return rec

    def _finish(self, rec: OrderRecord, now: float) -> None:
        if rec.terminal_ts is not None:
            return
        rec.terminal_ts = now
        if self.open.pop(rec.cl_ord_id, None) is not None:
            self.open_symbols[rec.symbol] -= 1
        if not self.open:
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no order is open (or ``timeout``); True if idle."""
        with self.lock:
            return self._idle.wait_for(lambda: not self.open, timeout)

    def records(self) -> list[OrderRecord]:
        with self.lock:
            return list(self.orders.values())
