"""The replay: recorded events of every venue in time order, through the live strategy, risk and router.

Two clocks per event, as in hftbacktest: the venue applies an event at ``ts_exch``, we
see it at ``ts_local``. The loop walks the events in ``ts_local`` order (the strategy's
timeline); the exchange side of each (venue, symbol) book is kept exact lazily:

- invariant X: before anything of ours happens at a venue at exchange time ``T`` (an
  order or a cancel arriving), that book has applied exactly its events with
  ``ts_exch <= T`` (``_catch_up`` looks ahead in the columns: quantity still in flight
  to us is already gone at the venue: an IOC arriving after the quote vanished misses);
- otherwise an event is applied at the venue when we receive it (never later than we
  see it; never twice: per-book counters ``_seen`` (rows the loop reached) and ``_applied``
  (rows a look-ahead applied; the book has applied ``max(_seen, _applied)`` rows).
Fills of resting orders are stamped with the trade's ``ts_exch``; their report reaches
us ``response`` later, but never before the replay has processed that trade (exact
when the response latency is at least the feed latency; else delivered that late).

Our orders: ``PlaceOrder`` -> ``OrderIntent`` -> ``RiskEngine.check`` -> router
(``build_router`` policy, or DMA when the strategy pins a venue) -> each child reaches its
venue ``LatencyModel.entry(now)`` later and is matched there against the exchange book
at that arrival time (``ExchangeBook.take``: IOC/FOK/market; Day remainders rest in a
queue model); reports come back ``response(t)`` later, update risk (fills, done) and the
ledger, and go to ``strategy.on_report``. An IOC remainder gets the router's
micro-burst ``retry`` when the routing config enables it, as live.

The strategy and router read a ``MarketState`` whose L2 books are updated at
``ts_local`` and whose latency estimators get the recorded probe samples at their
receive time (or, for venues with no probes in the data, samples drawn from the venue's
latency model every ``probe_interval_ms``). Only MarketState's sans-IO parts are used:
its books, estimators and ``route_latency``; its sender is a no-op and its thread never starts.

Speed: columns stay numpy; the loop converts one chunk at a time to Python lists (a
list index is ~10x cheaper than a numpy scalar) and keeps every per-event path to a
few dict operations plus the strategy call.
"""
from __future__ import annotations

import heapq
import importlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gateway.apps.backtest.config import BacktestConfig
from gateway.apps.backtest.exchange import ExchangeBook, VenueOrder
from gateway.apps.backtest.ledger import Ledger
from gateway.core.market import MarketState
from gateway.core.model import BUY, FOK, IOC, MARKET, OrderIntent, TradingStateChanged
from gateway.core.models.queue import queue_model
from gateway.core.recording import CLEAR, DELETE, SNAPSHOT, TRADE, UPDATE, Recording
from gateway.core.risk import HALTED, RiskEngine
from gateway.core.router import build_router
from gateway.core.router.decisions import DecisionLog
from gateway.core.strategies.base import BookUpdated, CancelOrder, OrderReport, PlaceOrder, TradePrinted

_EPS = 1e-9
CHUNK = 1 << 16


_AGG_SIDE = (None, BUY, "2")     # recording aggressor code -> strategy Side
# The frozen dataclass __init__ goes through object.__setattr__ per field; writing the slots
# through their descriptors builds the identical (equal, still frozen) event 3-4x faster.
_BU_VENUE, _BU_SYMBOL, _BU_AT = BookUpdated.venue.__set__, BookUpdated.symbol.__set__, BookUpdated.at.__set__


class ReplayClock:
    """The replay's clock: seconds since the first recorded event. Only the replay moves it."""
    __slots__ = ("t",)

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


def _no_send(*_args) -> bool:
    return True   # MarketState's subscribe/probe messages go nowhere in a replay


class ReplayView:
    """The strategy's ``MarketView`` over the replay's MarketState."""

    def __init__(self, market: MarketState, clock: ReplayClock, cfg: BacktestConfig) -> None:
        self._m = market
        self._clock = clock
        self._ticks = cfg.backtest.tick_sizes
        self._tick = cfg.backtest.default_tick_size
        self._venues = [v.name for v in market.venue_list]

    def venues(self):
        return self._venues

    def book(self, venue: str, symbol: str):
        v = self._m.venues.get(venue)
        return None if v is None else v.books.get(symbol)

    def rtt_us(self, venue: str) -> float:
        v = self._m.venues.get(venue)
        return float("inf") if v is None else self._m.route_latency(v, self._clock.t)[0]

    def tick_size(self, symbol: str) -> float:
        return self._ticks.get(symbol, self._tick)


@dataclass(slots=True)
class Parent:
    """One strategy order (an OMS order in live terms)."""
    intent: OrderIntent
    pinned: bool
    decision: Any = None
    cum: float = 0.0
    open_children: int = 0
    unfilled: float = 0.0
    acked: bool = False
    retried: bool = False
    children: list = field(default_factory=list)
    sent_at: float = 0.0


@dataclass(slots=True)
class Child:
    parent: Parent
    venue: str
    book: int
    qty: float
    price: float | None
    ord_type: str
    tif: str
    vorder: VenueOrder | None = None
    done: bool = False


def load_strategy(spec: str, params: dict) -> Any:
    """A tactic name of ``gateway.core.strategies.registry`` (``scalper``: built as
    ``cls(ConfigClass(**params))``, as ``fixgw trade`` does) or ``module:Class`` (``Class(**params)``)."""
    mod, sep, name = spec.partition(":")
    if not sep:
        from gateway.core.strategies.registry import lookup   # the tactics' registry
        cls, cfg_cls = lookup(spec)
        return cls(cfg_cls.model_validate(params))
    if not mod or not name:
        raise ValueError(f"strategy must be a tactic name or 'module:Class', not {spec!r}")
    return getattr(importlib.import_module(mod), name)(**params)


class Replay:
    def __init__(self, rec: Recording, strategy: Any, cfg: BacktestConfig) -> None:
        self.rec = rec
        self.strategy = strategy
        self.cfg = cfg
        bt = cfg.backtest
        self.clock = ReplayClock()
        routing = cfg.routing.model_copy(update={"md_symbols": list(rec.symbols)})
        self.market = MarketState(routing, self.clock, sender=_no_send)
        for v in rec.venues:
            self.market.register_venue(v)
            self.market.on_venue_up(v, session_id=v)
        self.view = ReplayView(self.market, self.clock, cfg)
        dlog = DecisionLog(routing.decision_log_size)
        self.router = build_router(routing, self.market, self.clock, log=dlog)
        self.dma = build_router(routing, self.market, self.clock, policy="dma", log=dlog)
        self.risk = RiskEngine(cfg.risk, self.clock, mark_price=self.market.mark_price)
        self.trips: list[dict] = []      # kill-switch trips: risk returns them (it calls nothing back)
        self.queue = queue_model(bt.queue, bt.lot, bt.queue_prob, bt.queue_n)
        nsym = len(rec.symbols)
        self.nbooks = max(len(rec.venues) * nsym, 1)
        self.book_venue = [rec.venues[b // nsym] for b in range(len(rec.venues) * nsym)]
        self.book_symbol = [rec.symbols[b % nsym] for b in range(len(rec.venues) * nsym)]
        self.book_of = {(v, s): i for i, (v, s) in enumerate(zip(self.book_venue, self.book_symbol))}
        self.xbooks = [ExchangeBook(self.queue) for _ in range(self.nbooks)]
        self.lbooks = [self.market.venues[v].books[s] for v, s in zip(self.book_venue, self.book_symbol)]
        self.specs = {v: bt.venue(v) for v in rec.venues}
        self.latency = {}
        n = len(rec)
        t0 = int(min(rec.ts_exch.min(), rec.ts_local.min())) if n else 0   # == _prepare's t0
        for i, v in enumerate(rec.venues):
            mine = rec.probe_venue == i
            rtts = rec.probe_rtt[mine] if len(rec.probe_rtt) else ()
            times = (rec.probe_sent_at[mine] - t0) * 1e-9 if len(rec.probe_rtt) else None
            self.latency[v] = self.specs[v].model(bt.seed + i, rtts, times)
        self.ledger = Ledger(self.specs)
        self.parents: dict[str, Parent] = {}     # open orders only: memory stays flat over a day
        self._done = [0, 0, 0.0, 0.0]            # orders sent, orders filled, qty sent, qty filled
        self._heap: list = []
        self._seq = 0
        self.stats = {"events": 0, "orders": 0, "children": 0, "risk_rejects": 0, "route_rejects": 0,
                      "cancels": 0, "cancels_too_late": 0, "retries": 0, "probes": 0, "late_reports": 0}
        self._prepare()

    # ------------------------------------------------------------------ data preparation
    def _prepare(self) -> None:
        rec = self.rec
        n = len(rec)
        tl = rec.ts_local
        if n and not bool(np.all(tl[1:] >= tl[:-1])):
            order = np.argsort(tl, kind="stable")
            for c in ("ts_exch", "ts_local", "venue", "symbol", "kind", "side", "price", "qty", "action"):
                setattr(rec, c, getattr(rec, c)[order])
        t0 = int(min(rec.ts_exch.min(), rec.ts_local.min())) if n else 0
        self.t0 = t0
        self._nsym = nsym = max(len(rec.symbols), 1)
        # the venue cannot have stamped an event after we received it, and its stream per
        # book is in order: clamp, then make ts_exch non-decreasing per book (invariant X)
        self._idx: list[np.ndarray] = []
        self._te: list[np.ndarray] = []
        for b in range(self.nbooks):
            v, sy = divmod(b, nsym)
            mask = rec.venue == v
            if nsym > 1:
                mask &= rec.symbol == sy
            idx = np.flatnonzero(mask).astype(np.int32 if n < 2**31 else np.int64)
            del mask
            te = np.minimum(rec.ts_exch[idx], rec.ts_local[idx])
            np.maximum.accumulate(te, out=te)
            rec.ts_exch[idx] = te
            self._idx.append(idx)
            self._te.append((te - t0) * 1e-9)
        self._pending = (-1, 0.0)     # notify = "message": (book, receive time) of the rows not yet notified
        self._applied = [0] * self.nbooks
        self._seen = [0] * self.nbooks
        self.end_t = float((rec.ts_local.max() - t0) * 1e-9) if n else 0.0
        self._probes = self._probe_schedule()
        self._probe_i = 0
        self._timer_dt = float(getattr(self.strategy, "timer_interval_s", 0.0) or 0.0)
        self._next_timer = self._timer_dt if self._timer_dt > 0 else float("inf")
        self._next_equity = self.cfg.backtest.equity_interval_s

    def _probe_schedule(self) -> list[tuple[float, str, float]]:
        """(receive time, venue, rtt) of every probe answer, recorded or synthesized."""
        rec = self.rec
        out = [(float((s + r * 1e9 - self.t0) * 1e-9), rec.venues[v], float(r))
               for v, s, r in zip(rec.probe_venue.tolist(), rec.probe_sent_at.tolist(), rec.probe_rtt.tolist())]
        if self.cfg.backtest.synthesize_probes:
            have = {v for _, v, _ in out}
            step = self.cfg.routing.probe_interval_s
            for v in rec.venues:
                if v in have:
                    continue
                lat = self.latency[v]
                t = 0.0
                while t <= self.end_t + step:
                    rtt = lat.entry(t) + lat.response(t)
                    out.append((t + rtt, v, rtt))
                    t += step
        out.sort()
        return out

    # ------------------------------------------------------------------ scheduling
    def _at(self, t: float, fn, *args) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, fn, args))

    def _next_due(self) -> float:
        t = self._heap[0][0] if self._heap else float("inf")
        if self._probe_i < len(self._probes):
            p = self._probes[self._probe_i][0]
            if p < t:
                t = p
        return min(t, self._next_timer, self._next_equity)

    def _due(self, until: float) -> float:
        """Run everything scheduled at or before ``until``, in time order; returns the next due time."""
        clock = self.clock
        while True:
            t = self._next_due()
            if t > until:
                return t
            if t > clock.t:
                clock.t = t
            heap = self._heap
            if heap and heap[0][0] == t:
                _, _, fn, args = heapq.heappop(heap)
                fn(*args)
            elif self._probe_i < len(self._probes) and self._probes[self._probe_i][0] == t:
                _, venue, rtt = self._probes[self._probe_i]
                self._probe_i += 1
                self.market.venues[venue].lat.add(rtt)
                self.stats["probes"] += 1
            elif self._next_equity == t:
                self._next_equity = t + self.cfg.backtest.equity_interval_s
                self._tripped(self.risk.refresh_marks())
                self.ledger.mark(t, self.market.mark_price)
            else:
                self._next_timer = t + self._timer_dt
                self._commands(self.strategy.on_timer(t, self.view))

    # ------------------------------------------------------------------ the main loop
    def run(self) -> dict:
        wall0 = time.perf_counter()
        rec = self.rec
        n = len(rec)
        t0 = self.t0
        for a in range(0, n, CHUNK):
            s = slice(a, a + CHUNK)
            kind, action = rec.kind[s], rec.action[s]
            # an update's new level size, 0 for a delete (the loop passes it to apply_level as is)
            qty = np.where((kind == UPDATE) & (action == DELETE), 0.0, rec.qty[s])
            self._run_chunk(((rec.ts_local[s] - t0) * 1e-9).tolist(), self._books(s).tolist(),
                            kind.tolist(), rec.side[s].tolist(), rec.price[s].tolist(),
                            qty.tolist(), action.tolist())
        if self._pending[0] >= 0:
            b, t = self._pending
            self._pending = (-1, 0.0)
            self._notify_book(b, t)
        self.stats["events"] = n
        stop = getattr(self.strategy, "stop", None)       # tactics flatten on stop()
        if callable(stop):
            self._commands(stop(self.clock.t, self.view))
        # drain: every order in flight gets its answer; timers stop with the data
        self._next_timer = float("inf")
        self._next_equity = float("inf")
        self._probe_i = len(self._probes)
        while self._heap:
            t, _, fn, args = heapq.heappop(self._heap)
            self.clock.t = max(self.clock.t, t)
            fn(*args)
        self.ledger.mark(self.clock.t, self.market.mark_price)
        wall = time.perf_counter() - wall0
        return self._result(wall)

    def _books(self, s: slice) -> np.ndarray:
        """Book ids of a chunk: venue * nsym + symbol (computed per chunk, not stored)."""
        rec = self.rec
        if self._nsym == 1:
            return rec.venue[s]
        return rec.venue[s].astype(np.int32) * self._nsym + rec.symbol[s]

    def _run_chunk(self, tl, bk, kd, sd, px, qt, ac) -> None:
        clock = self.clock
        xbooks, lbooks = self.xbooks, self.lbooks
        applied, seen = self._applied, self._seen
        bven, bsym = self.book_venue, self.book_symbol
        strat, view = self.strategy, self.view
        on_book, on_trade = strat.on_book, strat.on_trade
        commands = self._commands
        touch_only = self.cfg.backtest.notify == "touch"
        per_message = self.cfg.backtest.notify == "message"
        pend_b, pend_t = self._pending
        next_due = self._next_due()
        new, set_v, set_s, set_at = object.__new__, _BU_VENUE, _BU_SYMBOL, _BU_AT
        te = self._te     # per book: ts_exch in seconds (only read when our resting orders fill)
        for t, b, k, s, p, q, a in zip(tl, bk, kd, sd, px, qt, ac):
            if pend_b >= 0 and (b != pend_b or t != pend_t or t >= next_due):
                # the rows of one venue message (same book, same receive time) are over:
                # one on_book for all of them, as the live feed notifies once per message
                self._pending = (-1, 0.0)
                self._notify_book(pend_b, pend_t)
                pend_b = -1
                next_due = self._next_due()
            if t >= next_due:
                next_due = self._due(t)
            clock.t = t
            m = seen[b]
            seen[b] = m + 1
            if m >= applied[b]:                     # not yet applied by a look-ahead
                xb = xbooks[b]
                if k <= SNAPSHOT and xb.plain:      # ExchangeBook.apply's plain case, inline
                    lv = xb.asks if s else xb.bids
                    if a == DELETE or q <= 0.0:
                        lv.pop(p, None)
                    else:
                        lv[p] = q
                elif xb.apply(k, s, p, q, a):
                    self._resting_fills(xb, float(te[b][m]), b)
                    next_due = self._next_due()
            lb = lbooks[b]
            if k == UPDATE:
                if touch_only:
                    # the top of book can only move if the update is at or inside the touch
                    ks = (lb.asks if s else lb.bids).keys
                    moved = not ks or (p if s else -p) <= ks[0]
                    lb.apply_level(s, p, q, t)
                    if not moved:
                        continue
                else:
                    lb.apply_level(s, p, q, t)
                    if per_message:
                        pend_b, pend_t = b, t
                        continue
                ev = new(BookUpdated)               # == BookUpdated(venue=, symbol=, at=), 3x cheaper
                set_v(ev, bven[b])
                set_s(ev, bsym[b])
                set_at(ev, t)
                cmds = on_book(ev, view)
            elif k == TRADE:
                lb.on_trade(p, q)
                cmds = on_trade(TradePrinted(venue=bven[b], symbol=bsym[b], price=p, qty=q,
                                             aggressor_side=_AGG_SIDE[s], at=t), view)
            elif k == SNAPSHOT:
                lb.apply_level(s, p, q, t)
                continue
            else:   # CLEAR: the snapshot's levels follow
                lb.apply_snapshot((), ())
                continue
            if cmds:
                commands(cmds)
                next_due = self._next_due()
        self._pending = (pend_b, pend_t)

    def _notify_book(self, b: int, t: float) -> None:
        cmds = self.strategy.on_book(BookUpdated(venue=self.book_venue[b], symbol=self.book_symbol[b], at=t),
                                     self.view)
        if cmds:
            self._commands(cmds)

    # ------------------------------------------------------------------ exchange side
    def _catch_up(self, b: int, t: float) -> ExchangeBook:
        """Invariant X: apply book ``b``'s events with ts_exch <= t that the loop has not reached."""
        xb = self.xbooks[b]
        n = max(self._applied[b], self._seen[b])
        te = self._te[b]
        k = int(np.searchsorted(te, t, side="right"))
        if k > n:
            rows = self._idx[b][n:k]
            rec = self.rec
            for x, kind, s, p, q, a in zip(te[n:k].tolist(), rec.kind[rows].tolist(), rec.side[rows].tolist(),
                                           rec.price[rows].tolist(), rec.qty[rows].tolist(),
                                           rec.action[rows].tolist()):
                if xb.apply(kind, s, p, q, a):
                    self._resting_fills(xb, x, b)
            self._applied[b] = k
        return xb

    def _resting_fills(self, xb: ExchangeBook, t_exch: float, b: int) -> None:
        venue = self.book_venue[b]
        lat = self.latency[venue]
        now = self.clock.t
        for vo, q, p in xb.fills:
            back = t_exch + lat.response(t_exch)
            if back < now:
                self.stats["late_reports"] += 1
                back = now
            self._at(back, self._deliver, vo.child, [("F", q, p, True, vo.leaves)])
        xb.fills.clear()

    def _arrive(self, child: Child) -> None:
        t = self.clock.t
        xb = self._catch_up(child.book, t)
        is_buy = child.parent.intent.side == BUY
        limit = None if child.ord_type == MARKET else child.price
        fills = xb.take(is_buy, limit, child.qty, child.tif == FOK)
        reports = []
        left = child.qty
        for p, q in fills:
            left -= q
            reports.append(("F", q, p, False, max(left, 0.0)))
        if left > _EPS:
            if child.tif in (IOC, FOK) or limit is None:
                reports.append(("4", left, 0.0, False, 0.0))
            else:
                vo = child.vorder = VenueOrder(child, is_buy, limit, left)
                xb.rest(vo)
                reports.insert(0, ("0", 0.0, 0.0, False, left))
        back = t + self.latency[child.venue].response(t)
        self._at(back, self._deliver, child, reports)

    def _arrive_cancel(self, child: Child) -> None:
        vo = child.vorder
        t = self.clock.t
        xb = self._catch_up(child.book, t)
        if vo is not None and xb.cancel(vo):
            self._at(t + self.latency[child.venue].response(t), self._deliver, child, [("4", vo.leaves, 0.0, False, 0.0)])
        else:
            self.stats["cancels_too_late"] += 1

    # ------------------------------------------------------------------ our side
    def _commands(self, cmds) -> None:
        if not cmds:
            return
        for c in cmds:
            if isinstance(c, PlaceOrder):
                self._place(c)
            elif isinstance(c, CancelOrder):
                self._cancel(c)

    def _place(self, c: PlaceOrder) -> None:
        now = self.clock.t
        self.stats["orders"] += 1
        intent = OrderIntent(self.cfg.backtest.oms_session, c.cl_ord_id, c.symbol, c.side, float(c.qty),
                             c.ord_type, c.price, c.tif, c.venue, now)
        parent = Parent(intent, c.venue is not None, sent_at=now)
        self.parents[c.cl_ord_id] = parent
        rej = self.risk.check(intent)
        if rej is not None:
            self.stats["risk_rejects"] += 1
            self._at(now, self._reject, parent, rej.text)
            return
        decision = (self.dma if parent.pinned else self.router).decide(intent)
        parent.decision = decision
        if decision.rejected:
            self.stats["route_rejects"] += 1
            self.risk.on_order_done(intent, intent.qty)
            self._at(now, self._reject, parent, decision.reason)
            return
        self._send(parent, decision)

    def _send(self, parent: Parent, decision) -> None:
        now = self.clock.t
        symbol = parent.intent.symbol
        for ch in decision.children:
            b = self.book_of.get((ch.venue, symbol))
            child = Child(parent, ch.venue, -1 if b is None else b, ch.qty, ch.price, ch.ord_type, ch.tif)
            parent.children.append(child)
            parent.open_children += 1
            self.stats["children"] += 1
            if b is None:     # a venue or symbol the recording has no data for: nothing to match
                self._at(now, self._deliver, child, [("4", ch.qty, 0.0, False, 0.0)])
                continue
            self._at(now + self.latency[ch.venue].entry(now), self._arrive, child)

    def _cancel(self, c: CancelOrder) -> None:
        parent = self.parents.get(c.orig_cl_ord_id)
        self.stats["cancels"] += 1
        if parent is None:
            return
        now = self.clock.t
        for child in parent.children:
            if not child.done and child.book >= 0:
                self._at(now + self.latency[child.venue].entry(now), self._arrive_cancel, child)

    def _finish(self, parent: Parent) -> None:
        self.parents.pop(parent.intent.cl_ord_id, None)
        if parent.children:
            d = self._done
            d[0] += 1
            d[2] += parent.intent.qty
            if parent.cum > _EPS:
                d[1] += 1
                d[3] += parent.cum

    def _reject(self, parent: Parent, text: str) -> None:
        it = parent.intent
        self._finish(parent)
        self._commands(self.strategy.on_report(OrderReport(
            cl_ord_id=it.cl_ord_id, exec_type="8", ord_status="8", last_qty=0.0, last_px=0.0, cum_qty=0.0,
            leaves_qty=0.0, venue=None, text=text, at=self.clock.t), self.view))

    def _deliver(self, child: Child, reports: list) -> None:
        """Reports of one child reach us: risk, ledger, then the strategy (as one order)."""
        parent = child.parent
        it = parent.intent
        now = self.clock.t
        was_open = not child.done
        out = []
        for exec_type, q, p, maker, child_leaves in reports:
            if exec_type == "F":
                parent.cum += q
                self._tripped(self.risk.on_fill(it, q, p))
                self.ledger.fill(now, child.venue, it, q, p, maker)
                full = parent.cum >= it.qty - _EPS
                out.append(self._report(parent, "F", "2" if full else "1", q, p, child.venue))
                if child_leaves <= _EPS:
                    self._child_done(child, 0.0)
            elif exec_type == "0":
                if not parent.acked:
                    parent.acked = True
                    out.append(self._report(parent, "0", "0", 0.0, 0.0, child.venue))
            else:
                self._child_done(child, q)
        cmds = []
        for r in out:
            cmds.extend(self.strategy.on_report(r, self.view) or ())
        if was_open and child.done and parent.open_children == 0:
            cmds.extend(self._parent_done(parent))
        self._commands(cmds)

    def _child_done(self, child: Child, unfilled: float) -> None:
        if not child.done:
            child.done = True
            child.parent.open_children -= 1
            child.parent.unfilled += unfilled

    def _parent_done(self, parent: Parent) -> list:
        it = parent.intent
        if parent.unfilled > _EPS and it.tif == IOC and not parent.pinned and not parent.retried:
            d = self.router.retry(it, parent.decision, parent.unfilled)
            if d is not None and d.children:
                parent.retried = True
                parent.unfilled = 0.0
                self.stats["retries"] += 1
                self._send(parent, d)
                return []
        leaves = it.qty - parent.cum
        self.risk.on_order_done(it, leaves if leaves > 0 else 0.0)
        self._finish(parent)
        if parent.unfilled > _EPS:
            parent.unfilled = 0.0
            return list(self.strategy.on_report(
                self._report(parent, "4", "4", 0.0, 0.0, None), self.view) or ())
        return []

    def _tripped(self, changed: TradingStateChanged | None) -> None:
        if changed is not None and changed.state == HALTED:
            self.trips.append({"at": self.clock.t, "reason": changed.reason})

    def _report(self, parent: Parent, exec_type: str, status: str, q: float, p: float, venue) -> OrderReport:
        it = parent.intent
        leaves = 0.0 if status in ("2", "4", "8") else max(it.qty - parent.cum, 0.0)
        return OrderReport(cl_ord_id=it.cl_ord_id, exec_type=exec_type, ord_status=status, last_qty=q,
                           last_px=p, cum_qty=parent.cum, leaves_qty=leaves, venue=venue, text=None,
                           at=self.clock.t)

    # ------------------------------------------------------------------ result
    def _result(self, wall_s: float) -> dict:
        st = self.strategy.stats() if hasattr(self.strategy, "stats") else {}
        for p in list(self.parents.values()):     # still open at the end (resting orders)
            self._finish(p)
        n_sent, n_filled, q_sent, q_filled = self._done
        return {
            "events": len(self.rec), "venues": list(self.rec.venues), "symbols": list(self.rec.symbols),
            "replay_s": self.end_t, "wall_s": wall_s,
            "events_per_s": len(self.rec) / wall_s if wall_s > 0 else None,
            "stats": dict(self.stats),
            "orders_sent": n_sent, "orders_filled": n_filled,
            "fill_rate": n_filled / n_sent if n_sent else None,
            "qty_sent": q_sent, "qty_filled": q_filled,
            "ledger": self.ledger.summary(), "fills": self.ledger.fills, "equity": self.ledger.equity,
            "risk": {"state": self.risk.state, "realized_pnl": self.risk.realized_pnl,
                     "unrealized_pnl": self.risk.unrealized_pnl, "trips": self.trips,
                     "rejects_by_check": {k: v for k, v in self.risk.rejects_by_check.items() if v}},
            "routes": self.router.log.counts_by_venue(), "strategy": st,
            "config": {"queue": self.cfg.backtest.queue, "policy": self.cfg.routing.policy,
                       "latency": {v: s.model_dump() for v, s in self.specs.items()}},
        }


def run_backtest(rec: Recording, cfg: BacktestConfig, strategy: Any | None = None) -> dict:
    """One replay; ``strategy`` defaults to the one named in ``cfg.backtest.strategy``."""
    if strategy is None:
        strategy = load_strategy(cfg.backtest.strategy, cfg.backtest.params)
    return Replay(rec, strategy, cfg).run()
