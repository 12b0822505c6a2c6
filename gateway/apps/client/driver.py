"""Runs a strategy as an OMS client of the gateway, over FIX, on one asyncio loop.

``StrategyDriver`` is the ``Application`` of the OMS session (e.g. DEMO -> FIXGW). It
feeds the strategy from a ``MarketFeed`` (books and trades straight from the venues),
turns its commands into NewOrderSingle / OrderCancelRequest, and its ExecutionReports
into ``OrderReport`` events (``gateway.core.strategies.base``). A loop timer calls
``on_timer`` every ``strategy.timer_interval_s``.

Invariants:
- Every order the strategy placed ends in exactly one terminal report to the strategy:
  the gateway's, or one made here when the order could not be sent (session down) or
  the gateway refused the message (BusinessMessageReject naming its ClOrdID).
- ``OrderLog`` keeps, per order, the time of the market data that triggered it, the
  send time, the first and the terminal report: signal-to-execution is measured on one
  clock, the driver's. With the native engine it also keeps the hops inside the client:
  when the triggering bytes were read from the socket (``md_read_at``), when the order was
  handed to the socket (``written_at``) and when the first report's bytes were read
  (``report_read_at``), so a run can say what is the client's and what is outside it.
- A NewOrderSingle goes to the socket at once, not when the market data batch that
  triggered it ends (the engine joins the writes of one received chunk; an order must not
  wait behind the rest of a market data burst), and before the driver's own bookkeeping
  of it (``OrderEntry``, ``note_sent``).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from gateway.common.clock import MONOTONIC, Clock
from gateway.core.model import LIMIT
from gateway.core.strategies.base import (
    BookUpdated, CancelOrder, Command, OrderReport, PlaceOrder, TradePrinted,
)
from gateway.fix.codec import utc_timestamp
from gateway.fix.engine import BaseApplication, SessionHandle, Unsupported
from gateway.apps.client.feed import MarketFeed

log = logging.getLogger("client.driver")

TERMINAL = frozenset("248C")        # OrdStatus: filled, canceled, rejected, expired


def price_decimals(tick: float) -> int:
    exp = Decimal(str(tick)).normalize().as_tuple().exponent
    return max(0, -int(exp))


@dataclass(slots=True)
class OrderEntry:
    """One order the strategy placed, as the driver saw it."""
    cl_ord_id: str
    symbol: str
    side: str
    qty: float
    price: float | None
    reason: str
    pinned_venue: str | None
    signal_at: float                 # clock time of the market event that produced it
    md_read_at: float | None = None  # when the bytes of that market event were read (native engine)
    sent_at: float | None = None
    written_at: float | None = None  # handed to the socket (after the send and its flush)
    report_read_at: float | None = None   # the first report's bytes read from the socket (native engine)
    first_report_at: float | None = None
    done_at: float | None = None
    status: str = "pending"          # last OrdStatus, or 'pending' / 'not_sent'
    cum_qty: float = 0.0
    avg_px: float = 0.0
    venue: str | None = None
    text: str | None = None
    fills: list[tuple[float, float, str | None]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.done_at is not None


class OrderLog:
    """Every order of a run, in send order (for live views and reports)."""

    def __init__(self) -> None:
        self.orders: dict[str, OrderEntry] = {}

    def open_count(self) -> int:
        return sum(1 for o in self.orders.values() if not o.done)

    def entries(self) -> list[OrderEntry]:
        return list(self.orders.values())


class StrategyDriver(BaseApplication):
    def __init__(self, strategy: Any, feed: MarketFeed, *, clock: Clock = MONOTONIC, gateway_comp_id: str = "FIXGW",
                 wall: Callable[[], float] | None = None) -> None:
        self.strategy = strategy
        self.feed = feed
        self.clock = clock
        self.gateway_comp_id = gateway_comp_id
        self.log = OrderLog()
        self.session: SessionHandle | None = None
        self._flush: Callable[[], None] | None = None    # the native session's write-now
        self.trading = False
        self.stopping = False
        self.closing = False
        self.decimals = {s: price_decimals(t) for s, t in feed.ticks.items()}
        self.stats = {"reports": 0, "cancel_rejects": 0, "business_rejects": 0, "session_rejects": 0,
                      "send_failures": 0, "unknown_reports": 0, "strategy_errors": 0}
        self._cancels: dict[str, str] = {}           # cancel request ClOrdID -> order ClOrdID
        self._timer: asyncio.TimerHandle | None = None
        self._now_event_at = 0.0                     # clock time of the event being handled
        self.wall = wall or time.time
        feed.listeners.append(self._on_market)

    # ------------------------------------------------------------ lifecycle
    def start_trading(self) -> None:
        self.trading = True
        self._schedule_timer()

    def begin_stop(self) -> None:
        """No new entries; the strategy starts closing what it holds."""
        if self.stopping:
            return
        self.stopping = True
        now = self.clock.now()
        stop = getattr(self.strategy, "stop", None)
        if stop is not None:
            self._run(lambda: stop(now, self.feed), now)

    def is_flat(self) -> bool:
        flat = getattr(self.strategy, "is_flat", None)
        return self.log.open_count() == 0 and (flat is None or flat())

    def close(self) -> None:
        """End of the run: no more timers; the logout that follows is expected."""
        self.trading = False
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------ OMS session
    def on_logon(self, session: SessionHandle) -> None:
        if session.target_comp_id == self.gateway_comp_id:
            self.session = session
            self._flush = getattr(session, "flush", None)

    def on_logout(self, session: SessionHandle, reason: str) -> None:
        if session is self.session:
            self.session = None
            self._flush = None
            (log.info if self.closing else log.warning)("OMS session down: %s", reason)

    def on_admin(self, session: SessionHandle, msg) -> None:
        if msg.msg_type == "3":
            self.stats["session_rejects"] += 1
            log.warning("session Reject from the gateway: %s", msg.get(58))

    def on_message(self, session: SessionHandle, msg) -> None:
        mt = msg.msg_type
        if mt == "8":
            self._on_execution_report(msg, getattr(session, "received_at", None))
        elif mt == "9":
            self.stats["cancel_rejects"] += 1
        elif mt == "j":
            self.stats["business_rejects"] += 1
            ref = msg.get(379)
            if ref and ref in self.log.orders:
                self._synthetic_terminal(ref, f"refused by the gateway: {msg.get(58)}")
        elif mt == "B":
            log.warning("news from the gateway: %s", msg.get(148))
        else:
            raise Unsupported(f"MsgType {mt} not handled by the client")

    def _on_execution_report(self, msg, read_at: float | None = None) -> None:
        now = self.clock.now()
        cl = msg.get(11) or ""
        orig = msg.get(41)
        cl = self._cancels.get(cl, orig if orig in self.log.orders else cl)
        entry = self.log.orders.get(cl)
        if entry is None:
            self.stats["unknown_reports"] += 1
            return
        self.stats["reports"] += 1
        exec_type, status = msg.get(150) or "", msg.get(39) or ""
        if exec_type == "I":
            return                                # a status answer, not a state change
        report = OrderReport(cl_ord_id=cl, exec_type=exec_type, ord_status=status,
                             last_qty=_num(msg.get(32)), last_px=_num(msg.get(31)), cum_qty=_num(msg.get(14)),
                             leaves_qty=_num(msg.get(151)), venue=msg.get(30), text=msg.get(58), at=now)
        if entry.report_read_at is None:
            entry.report_read_at = read_at
        self._record(entry, report, now)
        self._run(lambda: self.strategy.on_report(report, self.feed), now)

    def _record(self, entry: OrderEntry, rep: OrderReport, now: float) -> None:
        if entry.first_report_at is None:
            entry.first_report_at = now
        if rep.last_qty > 0:
            entry.fills.append((rep.last_qty, rep.last_px, rep.venue))
        entry.status = rep.ord_status
        entry.cum_qty = max(entry.cum_qty, rep.cum_qty)
        entry.venue = rep.venue or entry.venue
        if rep.text:
            entry.text = rep.text
        if rep.ord_status in TERMINAL and entry.done_at is None:
            entry.done_at = now

    def _synthetic_terminal(self, cl_ord_id: str, text: str) -> None:
        entry = self.log.orders[cl_ord_id]
        if entry.done:
            return
        now = self.clock.now()
        report = OrderReport(cl_ord_id=cl_ord_id, exec_type="8", ord_status="8", last_qty=0.0, last_px=0.0,
                             cum_qty=entry.cum_qty, leaves_qty=0.0, venue=None, text=text, at=now)
        self._record(entry, report, now)
        self._run(lambda: self.strategy.on_report(report, self.feed), now)

    # ------------------------------------------------------------ market -> strategy
    def _on_market(self, kind: str, venue: str, symbol: str, px: float, qty: float, aggressor, at: float) -> None:
        if not self.trading:
            return
        read_at = self.feed.last_read_at
        if kind == "trade":
            ev = TradePrinted(venue=venue, symbol=symbol, price=px, qty=qty, aggressor_side=aggressor, at=at)
            self._run(lambda: self.strategy.on_trade(ev, self.feed), at, read_at)
        else:
            ev = BookUpdated(venue=venue, symbol=symbol, at=at)
            self._run(lambda: self.strategy.on_book(ev, self.feed), at, read_at)

    def _schedule_timer(self) -> None:
        interval = max(float(getattr(self.strategy, "timer_interval_s", 0.05)), 0.001)
        self._timer = asyncio.get_running_loop().call_later(interval, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self.trading:
            return
        now = self.clock.now()
        self._run(lambda: self.strategy.on_timer(now, self.feed), now)
        self._schedule_timer()

    def _run(self, call: Callable[[], list[Command]], at: float, read_at: float | None = None) -> None:
        try:
            commands = call()
        except Exception:  # noqa: BLE001 - a strategy bug must not take the session down
            self.stats["strategy_errors"] += 1
            log.exception("strategy %s raised", getattr(self.strategy, "name", "?"))
            return
        for cmd in commands or ():
            if isinstance(cmd, PlaceOrder):
                # Never dropped here, not even after begin_stop: the strategy registered the
                # order and waits for its report (it refuses new entries itself once stopped).
                self._place(cmd, at, read_at)
            elif isinstance(cmd, CancelOrder):
                self._cancel(cmd)

    # ------------------------------------------------------------ strategy -> FIX
    def _place(self, cmd: PlaceOrder, signal_at: float, read_at: float | None = None) -> None:
        # The order goes to the socket first; its bookkeeping (OrderEntry, the strategy's
        # note_sent) follows: no report can be read before this returns to the loop.
        body = (f"11={cmd.cl_ord_id}\x0155={cmd.symbol}\x0154={cmd.side}\x0160={self._timestamp()}\x01"
                f"38={cmd.qty:g}\x0140={cmd.ord_type}\x01")
        if cmd.ord_type == LIMIT and cmd.price is not None:
            body += f"44={cmd.price:.{self.decimals.get(cmd.symbol, 8)}f}\x01"
        body += f"59={cmd.tif}\x01"
        if cmd.venue:
            body += f"100={cmd.venue}\x01"
        sent_at = self.clock.now()
        sent = self.session is not None and self.session.send("D", body)
        if sent and self._flush is not None:
            self._flush()        # now: the order path does not wait for the end of the market data batch
        written_at = self.clock.now() if sent else None
        entry = OrderEntry(cmd.cl_ord_id, cmd.symbol, cmd.side, cmd.qty, cmd.price, cmd.reason, cmd.venue,
                           signal_at, read_at, sent_at, written_at)
        self.log.orders[cmd.cl_ord_id] = entry
        note = getattr(getattr(self.strategy, "trips", None), "note_sent", None)
        if note is not None:
            note(cmd.cl_ord_id, sent_at)
        if not sent:
            self.stats["send_failures"] += 1
            entry.status = "not_sent"
            self._synthetic_terminal(cmd.cl_ord_id, "not sent: OMS session down")

    def _cancel(self, cmd: CancelOrder) -> None:
        self._cancels[cmd.cl_ord_id] = cmd.orig_cl_ord_id
        body = (f"11={cmd.cl_ord_id}\x0141={cmd.orig_cl_ord_id}\x0155={cmd.symbol}\x0154={cmd.side}\x01"
                f"38={cmd.qty:g}\x0160={self._timestamp()}\x01")
        if self.session is None or not self.session.send("F", body):
            self.stats["send_failures"] += 1

    def _timestamp(self) -> str:
        return utc_timestamp(self.wall(), 6)


def _num(text: str | None) -> float:
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        return 0.0

