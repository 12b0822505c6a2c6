"""Round-trip bookkeeping shared by every tactic (sans-IO): entry -> fills -> exit -> fills.

Model
-----
A ``RoundTrip`` is one trade idea. It starts with one entry order (a single-leg trip:
scalper, fade, momentum) or several sent at once (a multi-leg trip: the two legs of a
cross-venue spread capture). Its position is the signed sum of all its fills and its
cash the signed sum of ``price * qty`` (sells +, buys -), so PnL is computed the same way
for every shape of trip: ``pnl = cash`` once the position is back to zero.

States: ``entering`` (entry IOCs in flight) -> ``open`` (holding, single-leg) ->
``exiting`` (an exit in flight or waiting for a touch) -> ``closed``; ``stuck`` when the
bounded exit ladder is used up (an operator's job; counted in ``stats``).

- When every entry order is done: no fill -> ``closed`` with outcome ``missed_entry``;
  a multi-leg trip whose fills net to zero -> ``closed``; a multi-leg trip left with a
  position -> a legging incident, and the residual is unwound at once (exit reason
  ``unwind``); a single-leg trip with a position -> ``open``.
- An open trip exits on the first of: target (the exit touch reached entry +/- target
  ticks), stop (the exit touch reached entry -/+ stop ticks, or an absolute stop price
  the tactic set), timeout (held ``max_hold_s``), an explicit ``request_exit`` (e.g. the
  wall a fade leaned on was pulled), or ``stop()`` of the strategy.
- The exit ladder (one exit order in flight per trip, never more): IOC limit at the
  exit touch, retried ``max_exit_retries`` times at the then-current touch; then
  ``max_flatten_attempts`` IOCs ``flatten_through_ticks`` through the touch; then market
  orders; after ``max_exit_orders`` exit orders in all the trip is ``stuck``.

Outcome: ``missed_entry`` (nothing filled), else by the gross price PnL in ticks:
``profit`` (> 0), ``loss_price_moved`` (< 0), ``scratch`` (0). Fees only change money.

Invariants
----------
- Every order this book sends has a ``cl_ord_id`` of the form ``{prefix}-{n}``, unique
  within the run; reports for other ids are ignored (and counted).
- Fills are taken from the increase of CumQty, so a duplicated report does not count twice.
- A trip is never ``closed`` with a non-zero position, and ``stop()`` starts the exit of
  every position; ``is_flat()`` tells the driver when it may end the run.
- Nothing here reads a clock: times come from events (``at``) and timer calls (``now``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from statistics import median

from gateway.core.model import MARKET
from gateway.core.strategies.base import (
    BUY, IOC, LIMIT, SELL, Command, MarketView, OrderReport, PlaceOrder,
)
from gateway.core.strategies.config import ExitConfig
from gateway.core.strategies.touch import exit_touch, on_grid, to_ticks

_EPS = 1e-9
_TERMINAL_STATUS = {"2", "3", "4", "8", "C"}     # filled, done for day, canceled, rejected, expired
_TERMINAL_EXEC = {"4", "8", "C"}
OUTCOMES = ("profit", "loss_price_moved", "missed_entry", "scratch")


@dataclass(slots=True, init=False)
class TripOrder:
    cl_ord_id: str
    role: str                  # "entry" / "exit"
    side: str
    qty: float
    limit: float | None
    venue: str | None          # pinned venue, None = the router chooses
    reason: str
    sent_at: float
    ref_px: float | None       # entries: the touch at the signal (slippage reference)
    cum_qty: float = 0.0
    notional: float = 0.0
    done: bool = False
    first_fill_at: float | None = None
    done_at: float | None = None
    fill_venues: list[str] = field(default_factory=list)

    # made per order: a hand-written __init__, native when compiled (see gateway/core/model.py)
    def __init__(self, cl_ord_id: str, role: str, side: str, qty: float, limit: float | None, venue: str | None,
                 reason: str, sent_at: float, ref_px: float | None, cum_qty: float = 0.0, notional: float = 0.0,
                 done: bool = False, first_fill_at: float | None = None, done_at: float | None = None,
                 fill_venues: list[str] | None = None) -> None:
        self.cl_ord_id = cl_ord_id
        self.role = role
        self.side = side
        self.qty = qty
        self.limit = limit
        self.venue = venue
        self.reason = reason
        self.sent_at = sent_at
        self.ref_px = ref_px
        self.cum_qty = cum_qty
        self.notional = notional
        self.done = done
        self.first_fill_at = first_fill_at
        self.done_at = done_at
        self.fill_venues = [] if fill_venues is None else fill_venues

    def avg_px(self) -> float | None:
        return self.notional / self.cum_qty if self.cum_qty > _EPS else None


@dataclass(slots=True, init=False)
class RoundTrip:
    trip_id: str
    tactic: str
    symbol: str
    tick: float
    signal_at: float
    detail: dict                   # what triggered it (JSON-safe)
    target_ticks: float
    stop_ticks: float
    max_hold_s: float
    stop_px: float | None = None   # absolute stop set by the tactic (e.g. beyond a wall)
    state: str = "entering"
    orders: list[TripOrder] = field(default_factory=list)
    position: float = 0.0
    cash: float = 0.0
    fees: float = 0.0
    opened_at: float | None = None
    exit_reason: str | None = None
    exit_orders: int = 0
    legging: dict | None = None
    closed_at: float | None = None
    outcome: str | None = None

    # made per entry: a hand-written __init__, native when compiled (see gateway/core/model.py)
    def __init__(self, trip_id: str, tactic: str, symbol: str, tick: float, signal_at: float, detail: dict,
                 target_ticks: float, stop_ticks: float, max_hold_s: float, stop_px: float | None = None,
                 state: str = "entering", orders: list[TripOrder] | None = None, position: float = 0.0,
                 cash: float = 0.0, fees: float = 0.0, opened_at: float | None = None,
                 exit_reason: str | None = None, exit_orders: int = 0, legging: dict | None = None,
                 closed_at: float | None = None, outcome: str | None = None) -> None:
        self.trip_id = trip_id
        self.tactic = tactic
        self.symbol = symbol
        self.tick = tick
        self.signal_at = signal_at
        self.detail = detail
        self.target_ticks = target_ticks
        self.stop_ticks = stop_ticks
        self.max_hold_s = max_hold_s
        self.stop_px = stop_px
        self.state = state
        self.orders = [] if orders is None else orders
        self.position = position
        self.cash = cash
        self.fees = fees
        self.opened_at = opened_at
        self.exit_reason = exit_reason
        self.exit_orders = exit_orders
        self.legging = legging
        self.closed_at = closed_at
        self.outcome = outcome

    @property
    def entries(self) -> list[TripOrder]:
        return [o for o in self.orders if o.role == "entry"]

    @property
    def exits(self) -> list[TripOrder]:
        return [o for o in self.orders if o.role == "exit"]

    @property
    def in_flight(self) -> bool:
        return any(not o.done for o in self.orders)

    @property
    def multi_leg(self) -> bool:
        return len(self.entries) > 1

    def entry_qty(self) -> float:
        return max((o.cum_qty for o in self.entries), default=0.0)

    def entry_avg(self) -> float | None:
        """Average entry price of a single-leg trip (None for multi-leg or no fill)."""
        if self.multi_leg:
            return None
        return self.entries[0].avg_px() if self.entries else None

    def pnl_ticks(self) -> float:
        """Gross price PnL per unit entered, in ticks (meaningful once the position is zero)."""
        q = self.entry_qty()
        return to_ticks(self.cash / q, self.tick) if q > _EPS else 0.0


class RoundTripBook:
    """Opens, tracks and closes one tactic's round trips; returns the orders to send."""

    def __init__(self, tactic: str, exits: ExitConfig, id_prefix: str) -> None:
        self.tactic = tactic
        self.cfg = exits
        self.prefix = id_prefix
        self._ids = itertools.count(1)
        self._trip_ids = itertools.count(1)
        self.trips: list[RoundTrip] = []
        self._active: dict[str, RoundTrip] = {}           # trip_id -> not yet closed
        self._by_order: dict[str, tuple[RoundTrip, TripOrder]] = {}
        self.stopping = False
        self.counts = {"orders": 0, "unknown_reports": 0, "exit_orders": 0, "flatten_orders": 0,
                       "market_exit_orders": 0, "legging_incidents": 0, "stuck": 0}
        self.exit_reasons: dict[str, int] = {}

    # ------------------------------------------------------------------ opening
    def open_single(self, *, symbol: str, side: str, qty: float, price: float, tick: float,
                    signal_at: float, signal_px: float, venue: str | None = None, reason: str = "entry",
                    detail: dict | None = None, stop_px: float | None = None) -> list[Command]:
        """One entry IOC at ``price``; exits by target/stop/time from the entry's average price."""
        return self.open_legs(symbol=symbol, legs=[(side, qty, price, venue, signal_px)], tick=tick,
                              signal_at=signal_at, reason=reason, detail=detail, stop_px=stop_px)

    def open_legs(self, *, symbol: str, legs: list[tuple[str, float, float, str | None, float]], tick: float,
                  signal_at: float, reason: str = "entry", detail: dict | None = None,
                  stop_px: float | None = None) -> list[Command]:
        """Entry IOCs sent together: legs are (side, qty, limit, venue or None, price at signal)."""
        if self.stopping:
            return []
        c = self.cfg
        trip = RoundTrip(f"{self.prefix}-T{next(self._trip_ids)}", self.tactic, symbol, tick, signal_at,
                         dict(detail or {}), c.target_ticks, c.stop_ticks, c.max_hold_s, stop_px)
        self.trips.append(trip)
        self._active[trip.trip_id] = trip
        out: list[Command] = []
        for side, qty, limit, venue, ref_px in legs:
            out.append(self._place(trip, "entry", side, qty, on_grid(limit, tick), venue, reason, signal_at, ref_px))
        return out

    # ------------------------------------------------------------------ inputs
    def note_sent(self, cl_ord_id: str, at: float) -> None:
        """Optional: the driver's time when the order actually left (default: the signal time)."""
        hit = self._by_order.get(cl_ord_id)
        if hit is not None:
            hit[1].sent_at = at

    def owns(self, cl_ord_id: str) -> bool:
        return cl_ord_id in self._by_order

    def on_report(self, ev: OrderReport, market: MarketView) -> list[Command]:
        hit = self._by_order.get(ev.cl_ord_id)
        if hit is None:
            self.counts["unknown_reports"] += 1
            return []
        trip, order = hit
        if order.done:
            return []      # a duplicate or late report of a finished order
        self._apply_fill(trip, order, ev)
        if ev.ord_status in _TERMINAL_STATUS or ev.exec_type in _TERMINAL_EXEC:
            order.done = True
            order.done_at = ev.at
            return self._progress(trip, ev.at, market)
        return []

    def on_market(self, now: float, market: MarketView, symbol: str | None = None) -> list[Command]:
        """Check exits (price, time) and resend exits that wait for a touch; call on books and timers."""
        out: list[Command] = []
        for trip in list(self._active.values()):
            if symbol is not None and trip.symbol != symbol:
                continue
            if trip.state == "open":
                reason = "stop" if self.stopping else self._exit_reason(trip, now, market)
                if reason:
                    out += self._start_exit(trip, reason, now, market)
            elif trip.state == "exiting" and not trip.in_flight:
                out += self._send_exit(trip, now, market)
        return out

    def request_exit(self, trip_id: str, reason: str, now: float, market: MarketView) -> list[Command]:
        """Close an open trip early for a tactic's own reason (e.g. ``wall_pulled``)."""
        trip = self._active.get(trip_id)
        if trip is None or trip.state != "open":
            return []
        return self._start_exit(trip, reason, now, market)

    def stop(self, now: float, market: MarketView) -> list[Command]:
        """No new trips; every position starts its exit (reason ``stop``). Idempotent."""
        self.stopping = True
        return self.on_market(now, market)

    # ------------------------------------------------------------------ queries
    def busy(self, symbol: str) -> int:
        return sum(1 for t in self._active.values() if t.symbol == symbol)

    def active(self) -> list[RoundTrip]:
        return list(self._active.values())

    def is_flat(self) -> bool:
        """No open position and nothing in flight (stuck trips count as not flat)."""
        return not self._active

    def position(self, symbol: str) -> float:
        return sum(t.position for t in self._active.values() if t.symbol == symbol)

    # ------------------------------------------------------------------ internals: orders
    def _place(self, trip: RoundTrip, role: str, side: str, qty: float, limit: float | None, venue: str | None,
               reason: str, at: float, ref_px: float | None, ord_type: str = LIMIT) -> PlaceOrder:
        cl = f"{self.prefix}-{next(self._ids)}"
        order = TripOrder(cl, role, side, qty, limit, venue, reason, at, ref_px)
        trip.orders.append(order)
        self._by_order[cl] = (trip, order)
        self.counts["orders"] += 1
        return PlaceOrder(cl_ord_id=cl, symbol=trip.symbol, side=side, qty=qty, price=limit, tif=IOC,
                          ord_type=ord_type, venue=venue, reason=f"{role}:{reason}")

    def _apply_fill(self, trip: RoundTrip, order: TripOrder, ev: OrderReport) -> None:
        # CumQty, not LastQty, decides: a duplicated report then adds nothing.
        new = ev.cum_qty - order.cum_qty if ev.cum_qty > 0 else 0.0
        if new <= _EPS:
            return
        px = ev.last_px
        order.cum_qty += new
        order.notional += new * px
        if order.first_fill_at is None:
            order.first_fill_at = ev.at
        if ev.venue and ev.venue not in order.fill_venues:
            order.fill_venues.append(ev.venue)
        sign = 1.0 if order.side == BUY else -1.0
        trip.position += sign * new
        trip.cash -= sign * new * px
        trip.fees += new * self.cfg.fee_per_unit

    # ------------------------------------------------------------------ internals: state
    def _progress(self, trip: RoundTrip, now: float, market: MarketView) -> list[Command]:
        if trip.in_flight:
            return []
        if trip.state == "entering":
            return self._entries_done(trip, now, market)
        if trip.state == "exiting":
            if abs(trip.position) <= _EPS:
                self._close(trip, now)
                return []
            return self._send_exit(trip, now, market)
        return []

    def _entries_done(self, trip: RoundTrip, now: float, market: MarketView) -> list[Command]:
        if trip.entry_qty() <= _EPS:
            self._close(trip, now)
            return []
        if abs(trip.position) <= _EPS:
            self._close(trip, now)      # multi-leg, fully matched
            return []
        trip.opened_at = now
        if trip.multi_leg:
            self._note_legging(trip)
            return self._start_exit(trip, "unwind", now, market)
        trip.state = "open"
        if self.stopping:
            return self._start_exit(trip, "stop", now, market)
        # The market may already be through the target or stop when the fill arrives.
        reason = self._exit_reason(trip, now, market)
        return self._start_exit(trip, reason, now, market) if reason else []

    def _note_legging(self, trip: RoundTrip) -> None:
        legs = [{"cl_ord_id": o.cl_ord_id, "side": o.side, "venue": o.venue, "qty": o.qty,
                 "filled": o.cum_qty} for o in trip.entries]
        trip.legging = {"residual": trip.position, "legs": legs}
        self.counts["legging_incidents"] += 1

    def _exit_reason(self, trip: RoundTrip, now: float, market: MarketView) -> str | None:
        entry = trip.entry_avg()
        if entry is None:
            return None
        long = trip.position > 0
        q = exit_touch(market, trip.symbol, BUY if long else SELL)
        if q is not None:
            d = 1.0 if long else -1.0
            moved = to_ticks(d * (q.price - entry), trip.tick)
            if moved >= trip.target_ticks - 1e-6:
                return "target"
            if moved <= -trip.stop_ticks + 1e-6:
                return "stop_loss"
            if trip.stop_px is not None and d * (q.price - trip.stop_px) <= _EPS:
                return "stop_loss"
        if trip.opened_at is not None and now - trip.opened_at >= trip.max_hold_s - 1e-12:
            return "timeout"
        return None

    def _start_exit(self, trip: RoundTrip, reason: str, now: float, market: MarketView) -> list[Command]:
        trip.state = "exiting"
        trip.exit_reason = reason
        self.exit_reasons[reason] = self.exit_reasons.get(reason, 0) + 1
        return self._send_exit(trip, now, market)

    def _send_exit(self, trip: RoundTrip, now: float, market: MarketView) -> list[Command]:
        """The next rung of the exit ladder (see the module doc); [] while waiting for a touch."""
        c = self.cfg
        if trip.in_flight or abs(trip.position) <= _EPS:
            return []
        if trip.exit_orders >= c.max_exit_orders:
            if trip.state != "stuck":
                trip.state = "stuck"
                self.counts["stuck"] += 1
            return []
        long = trip.position > 0
        side = SELL if long else BUY
        qty = abs(trip.position)
        q = exit_touch(market, trip.symbol, BUY if long else SELL)
        n = trip.exit_orders
        if n <= c.max_exit_retries:
            if q is None:
                return []          # no price to exit at yet: wait for a book or timer event
            order = self._place(trip, "exit", side, qty, q.price, None, trip.exit_reason or "exit", now, q.price)
        elif n <= c.max_exit_retries + c.max_flatten_attempts and q is not None:
            through = c.flatten_through_ticks * trip.tick * (-1.0 if long else 1.0)
            px = on_grid(q.price + through, trip.tick)
            if px <= 0:
                px = trip.tick
            order = self._place(trip, "exit", side, qty, px, None, "flatten", now, q.price)
            self.counts["flatten_orders"] += 1
        else:
            order = self._place(trip, "exit", side, qty, None, None, "flatten_market", now,
                                q.price if q else None, ord_type=MARKET)
            self.counts["market_exit_orders"] += 1
        trip.exit_orders += 1
        self.counts["exit_orders"] += 1
        return [order]

    def _close(self, trip: RoundTrip, now: float) -> None:
        trip.state = "closed"
        trip.closed_at = now
        if trip.entry_qty() <= _EPS:
            trip.outcome = "missed_entry"
        else:
            ticks = trip.pnl_ticks()
            trip.outcome = "profit" if ticks > 1e-6 else "loss_price_moved" if ticks < -1e-6 else "scratch"
        self._active.pop(trip.trip_id, None)

    # ------------------------------------------------------------------ reports
    def trip_dict(self, trip: RoundTrip) -> dict:
        """One round trip as the reports show it (JSON-safe: no inf/nan, plain types)."""
        entries = trip.entries
        fills_at = [o.first_fill_at for o in entries if o.first_fill_at is not None]
        done_at = [o.done_at for o in entries if o.done_at is not None]
        exec_at = min(fills_at) if fills_at else (min(done_at) if done_at else None)
        venues = sorted({v for o in trip.orders for v in o.fill_venues} | {o.venue for o in entries if o.venue})
        avg_exit = _avg([o for o in trip.exits])
        return {
            "trip_id": trip.trip_id, "tactic": trip.tactic, "symbol": trip.symbol, "state": trip.state,
            "side": entries[0].side if len(entries) == 1 else "pair",
            "qty": trip.entry_qty(),
            "signal_at": _r(trip.signal_at), "entry_sent_at": _r(min(o.sent_at for o in entries)) if entries else None,
            "signal_to_exec_us": _r((exec_at - trip.signal_at) * 1e6, 1) if exec_at is not None else None,
            "venues": venues,
            "slippage_ticks": self._slippage(trip),
            "entry_px": _r(trip.entry_avg()), "exit_px": _r(avg_exit),
            "pnl_ticks": trip.pnl_ticks() if trip.state == "closed" else None,
            "pnl_money": _r(self._money(trip)) if trip.state == "closed" else None,
            "fees": _r(trip.fees),
            "outcome": trip.outcome, "exit_reason": trip.exit_reason, "exit_orders": trip.exit_orders,
            "hold_s": _r(trip.closed_at - trip.opened_at) if trip.closed_at is not None and trip.opened_at is not None
            else None,
            "legging": trip.legging, "detail": trip.detail,
        }

    def _money(self, trip: RoundTrip) -> float:
        return trip.cash * self.cfg.multiplier - trip.fees

    def _slippage(self, trip: RoundTrip) -> float | None:
        """Qty-weighted ticks paid against the price at the signal (positive = worse)."""
        num = qty = 0.0
        for o in trip.entries:
            if o.cum_qty <= _EPS or o.ref_px is None:
                continue
            d = 1.0 if o.side == BUY else -1.0
            num += d * (o.notional - o.ref_px * o.cum_qty)
            qty += o.cum_qty
        return to_ticks(num / qty, trip.tick) if qty > _EPS else None

    def stats(self) -> dict:
        closed = [t for t in self.trips if t.state == "closed"]
        traded = [t for t in closed if t.outcome != "missed_entry"]
        outcomes = {k: sum(1 for t in closed if t.outcome == k) for k in OUTCOMES}
        lat = [d["signal_to_exec_us"] for d in (self.trip_dict(t) for t in closed)
               if d["signal_to_exec_us"] is not None]
        pnl_money = sum(self._money(t) for t in traded)
        legged = [t for t in closed if t.legging]
        return {
            "round_trips": len(traded), "missed": outcomes["missed_entry"], "outcomes": outcomes,
            "open": len(self._active), "stuck": self.counts["stuck"],
            "win_rate": _r(outcomes["profit"] / len(traded), 4) if traded else None,
            "pnl_ticks_total": _r(sum(t.pnl_ticks() for t in traded)),
            "pnl_money_total": _r(pnl_money),
            "pnl_per_round_trip": _r(pnl_money / len(traded)) if traded else None,
            "signal_to_exec_p50_us": _r(median(lat), 1) if lat else None,
            "legging_incidents": self.counts["legging_incidents"],
            "legging_loss_money": _r(sum(min(0.0, self._money(t)) for t in legged)),
            "exit_reasons": dict(self.exit_reasons),
            "counts": dict(self.counts),
        }

    def trip_dicts(self, last: int | None = None) -> list[dict]:
        trips = self.trips if last is None else self.trips[-last:]
        return [self.trip_dict(t) for t in trips]


def _avg(orders: list[TripOrder]) -> float | None:
    q = sum(o.cum_qty for o in orders)
    return sum(o.notional for o in orders) / q if q > _EPS else None


def _r(x: float | None, nd: int = 9) -> float | None:
    return None if x is None else round(float(x), nd)
