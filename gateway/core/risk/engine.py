"""The pre-trade risk engine: every check on every order, positions/PnL and the kill switch.

Sans-IO: plain objects and an injected clock. The per-order path resolves the effective
limits of a (session, symbol) pair once and caches them as floats (``inf`` = no limit),
so a check is a handful of comparisons with no allocation on the pass path beyond the
open-order record it must keep.

States (DESIGN.md "Risk states"): ACTIVE; REDUCING (only orders that shrink a position);
HALTED (every new order refused; cancels never come through ``check``). The kill switch
moves to HALTED and RETURNS a ``TradingStateChanged`` (from ``trip``, ``on_fill``,
``on_mark``, ``refresh_marks``, ``on_venue_reject``) exactly once; the caller answers it
(cancel everything, tell the OMS). Nothing is called back. Only a person calls ``reset``.

A session whose own orders keep being rejected by venues is suspended (its new orders
refused, reason ``session_suspended``); the firm trips only on ``firm_venue_reject_threshold``.

``check`` = ``evaluate`` (a pure decision: no state changes) + ``book`` (the order counts
as open exposure). The hub journals between the two, so a failed write books nothing.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Callable, Final

from gateway.common.clock import Clock
from gateway.core.market import MarketState
from gateway.core.model import (BUY, MARKET, REJ_DUPLICATE, REJ_EXCEEDS_LIMIT, REJ_OTHER,
                           REJ_UNKNOWN_SYMBOL, OrderIntent, RiskReject, TradingStateChanged)
from gateway.core.risk.config import RiskConfig
from gateway.core.risk.killswitch import EventRate, RollingLoss
from gateway.core.risk.positions import Position

log = logging.getLogger("gateway.core.risk")

ACTIVE: Final = "ACTIVE"
REDUCING: Final = "REDUCING"
HALTED: Final = "HALTED"
INF: Final = float("inf")
_THROTTLE_WINDOW_S: Final = 1.0
_REL_EPS: Final = 1e-9   # float slack so a price exactly on the band edge passes

CHECK_NAMES = ("kill_switch", "session_suspended", "reducing_only", "duplicate_cl_ord_id", "symbol_not_allowed",
               "market_orders_not_allowed", "max_order_qty", "max_notional", "no_reference_price",
               "price_band_ticks", "price_band_bps", "max_position", "max_gross_exposure",
               "max_orders_per_second")


def _first(*values):
    for v in values:
        if v is not None:
            return v
    return None


class Limits:
    """Effective limits of one (session, symbol) pair; floats with ``inf`` for no limit."""
    __slots__ = ("allowed", "allow_market", "max_order_qty", "max_notional", "max_position",
                 "band_ticks", "tick_size", "band_abs", "band_bps", "band_frac", "banded")

    def __init__(self, cfg: RiskConfig, sess, sym, allowed: bool) -> None:
        layers = [x for x in (sym, sess) if x is not None]

        def pick(name):
            return _first(*(getattr(x, name) for x in layers), getattr(cfg, name))

        self.allowed: bool = allowed
        self.allow_market: bool = bool(pick("allow_market_orders"))
        self.max_order_qty: float = pick("max_order_qty") or INF
        self.max_notional: float = pick("max_notional") or INF
        self.max_position: float = pick("max_position") or INF
        self.band_ticks: float | None = pick("price_band_ticks")
        self.tick_size: float | None = pick("tick_size")
        if self.band_ticks is not None and self.tick_size is None:
            raise ValueError("risk: price_band_ticks needs tick_size (globally or for the symbol)")
        self.band_abs: float = self.band_ticks * self.tick_size if self.band_ticks is not None else INF
        self.band_bps: float | None = pick("price_band_bps")
        self.band_frac: float = self.band_bps / 1e4 if self.band_bps is not None else INF
        self.banded: bool = self.band_abs < INF or self.band_frac < INF   # a limit order needs a reference price


class OpenOrder:
    """A passed order's remaining quantity, counted as worst-case exposure until done."""
    __slots__ = ("pos", "is_buy", "qty", "remaining", "px")

    def __init__(self, pos: Position, is_buy: bool, qty: float, remaining: float, px: float) -> None:
        # qty: the order's total (FIX OrderQty); qty - remaining is what has filled
        self.pos, self.is_buy, self.qty, self.remaining, self.px = pos, is_buy, qty, remaining, px


class SessionState:
    __slots__ = ("key", "seen", "open", "sent", "max_rate", "limits", "overrides", "suspended", "rejects")

    def __init__(self, key: str, overrides, max_rate: int | None) -> None:
        self.key = key
        self.seen: set[str] = set()            # every ClOrdID checked today (when risk owns the check)
        self.open: dict[str, OpenOrder] = {}
        self.max_rate = max_rate
        self.sent: deque[float] | None = deque(maxlen=max_rate) if max_rate else None
        self.limits: dict[str, Limits] = {}
        self.overrides = overrides
        self.suspended: str | None = None      # why this session may not send new orders
        self.rejects: EventRate | None = None  # its own venue rejects (created on the first)


def _session_overrides(cfg: RiskConfig, key: str):
    """Overrides for a session key 'FIX.4.4:GW->OMS1': by full key, then by the OMS CompID."""
    found = cfg.sessions.get(key)
    if found is None and "->" in key:
        found = cfg.sessions.get(key.rsplit("->", 1)[1])
    return found


class RiskEngine:
    """Implements ``gateway.core.model.RiskGate``."""

    def __init__(self, cfg: RiskConfig, clock: Clock,
                 mark_price: Callable[[str], float | None] | None = None, own_cl_ord_ids: bool = True) -> None:
        """``own_cl_ord_ids=False``: the caller's order index refuses a repeated ClOrdID before
        risk is asked (the gateway's ``OrderManager``, which keeps every order of the day), so
        risk keeps no set of its own: the day's ClOrdIDs are not held twice."""
        self.cfg = cfg
        self.clock = clock
        self.mark_price = mark_price
        # The gateway's marks are ``MarketState.mark_price``: kept as its owner too, so that a fill
        # asks it by a native call, not through the bound method (a Python-level call, ~1k
        # instructions per fill). Used only while ``mark_price`` is still that bound method.
        owner = getattr(mark_price, "__self__", None)
        self._market: MarketState | None = (
            owner if type(owner) is MarketState and getattr(mark_price, "__name__", "") == "mark_price" else None)
        self._market_mark = mark_price if self._market is not None else None
        self.state = ACTIVE
        self.trip_reason: str | None = None
        self.tripped_at: float | None = None
        self.tripped_by: str | None = None
        self.trips = 0
        self.history: list[dict] = []          # state changes, with who and why
        self.checks = 0
        self.rejects_by_check: dict[str, int] = dict.fromkeys(CHECK_NAMES, 0)
        self.realized_pnl = 0.0
        self.unrealized_pnl = 0.0
        self._day_start_pnl = 0.0
        self._positions: dict[str, Position] = {}
        self._sessions: dict[str, SessionState] = {}
        self._open_notional = 0.0
        self._position_exposure = 0.0
        self._exposure_of: dict[str, float] = {}
        # the last order that passed ``_check`` as far as its session and position, and those
        # two (entries are made once and never replaced): ``book`` of the same intent, right
        # after, takes them instead of looking both up again
        self._checked: OrderIntent | None = None
        self._checked_sess: SessionState | None = None
        self._checked_pos: Position | None = None
        self._allow = frozenset(cfg.symbols) if cfg.symbols is not None else None
        self._max_gross = cfg.max_gross_exposure or INF
        self._dup = cfg.check_duplicate_cl_ord_id and own_cl_ord_ids
        # settings the per-order path reads, as native attributes (a pydantic attribute read
        # is a generic lookup on every order and fill); the config is not changed after start
        self._limits_on: bool = bool(cfg.enabled)
        self._kill_on: bool = bool(cfg.kill_switch_enabled)
        self._loss_threshold: float | None = cfg.loss_threshold
        self._daily_loss_limit: float | None = cfg.daily_loss_limit
        now = clock.now()
        self._loss = RollingLoss(cfg.loss_window_s, cfg.pnl_ring_size, now)
        self._rejects = EventRate(cfg.venue_reject_window_s, max(cfg.firm_venue_reject_threshold or 1, 1) * 4)
        for sym in cfg.symbol_limits:            # fail at start, not on the first order
            Limits(cfg, None, cfg.symbol_limits[sym], True)
        Limits(cfg, None, None, True)
        for sess in cfg.sessions.values():
            Limits(cfg, sess, None, True)

    # ---- the per-order path -------------------------------------------------------------

    def check(self, intent: OrderIntent) -> RiskReject | None:
        """Run every check; on pass the order counts as open exposure until done."""
        rej = self.evaluate(intent)
        if rej is None:
            self.book(intent)
        elif self._dup and rej.check != "duplicate_cl_ord_id":
            self._session(intent.oms_session).seen.add(intent.cl_ord_id)
        return rej

    def evaluate(self, intent: OrderIntent, qty: float | None = None) -> RiskReject | None:
        """Every pre-trade check as a pure decision: nothing is booked (only counters move).

        ``qty`` is the exposure the order adds (less than intent.qty for a replace after fills).
        """
        return self._check(intent, intent.qty if qty is None else qty)

    def book(self, intent: OrderIntent, qty: float | None = None) -> None:
        """The order passed and was journaled: count it as open exposure until it is done."""
        sess = self._checked_sess
        pos = self._checked_pos
        if intent is not self._checked or sess is None or pos is None:
            sess = self._session(intent.oms_session)
            pos = self._positions.get(intent.symbol) or self._new_position(intent.symbol)
        self._checked = None
        if self._dup:
            sess.seen.add(intent.cl_ord_id)
        px = intent.price if intent.ord_type != MARKET else self._reference(pos)
        self._book_open(sess, intent.cl_ord_id, pos, intent.side == BUY, intent.qty,
                        intent.qty if qty is None else qty, px or 0.0)

    def _session(self, key: str) -> SessionState:
        return self._sessions.get(key) or self._new_session(key)

    def _check(self, intent: OrderIntent, qty: float) -> RiskReject | None:
        self.checks += 1
        state = self.state
        if state == HALTED:
            return self._reject("kill_switch", f"kill switch: trading halted ({self.trip_reason})",
                                REJ_OTHER)
        sess = self._sessions.get(intent.oms_session) or self._new_session(intent.oms_session)
        if sess.suspended is not None:
            return self._reject("session_suspended", f"session_suspended: {sess.suspended}", REJ_OTHER)
        cid = intent.cl_ord_id
        if self._dup and cid in sess.seen:
            return self._reject("duplicate_cl_ord_id", f"duplicate_cl_ord_id: {cid} already used by this session",
                                REJ_DUPLICATE)
        symbol = intent.symbol
        lim = sess.limits.get(symbol) or self._resolve(sess, symbol)
        pos = self._positions.get(symbol) or self._new_position(symbol)
        self._checked, self._checked_sess, self._checked_pos = intent, sess, pos
        is_buy = intent.side == BUY
        if state == REDUCING and not self._reduces(pos, is_buy, qty):
            return self._reject("reducing_only",
                                f"reducing_only: {symbol} position {pos.qty:g}, open buy {pos.open_buy:g} "
                                f"sell {pos.open_sell:g}; order would not shrink it", REJ_OTHER)
        if self._limits_on:
            return self._check_limits(intent, sess, lim, pos, qty, is_buy)
        return None

    def _check_limits(self, intent: OrderIntent, sess: SessionState, lim: Limits, pos: Position, qty: float,
                      is_buy: bool) -> RiskReject | None:
        symbol = intent.symbol
        if not lim.allowed:
            return self._reject("symbol_not_allowed", f"symbol_not_allowed: {symbol} is not in the allow-list",
                                REJ_UNKNOWN_SYMBOL)
        is_market = intent.ord_type == MARKET
        if is_market and not lim.allow_market:
            return self._reject("market_orders_not_allowed",
                                f"market_orders_not_allowed: market order for {symbol} refused", REJ_OTHER)
        size = intent.qty
        if size > lim.max_order_qty:
            return self._reject("max_order_qty", f"max_order_qty: {size:g} > limit {lim.max_order_qty:g}")
        # the reference (a robust mark across venues) only when something here uses it
        ref = self._reference(pos) if is_market or lim.banded else None
        px = ref if is_market else intent.price
        if px is None:
            if self.cfg.reject_without_reference and (lim.max_notional < INF or self._max_gross < INF):
                return self._reject("no_reference_price",
                                    f"no_reference_price: no mark for {symbol} to value a market order", REJ_OTHER)
            notional = 0.0
        else:
            if size * px > lim.max_notional:
                return self._reject("max_notional",
                                    f"max_notional: {size * px:.2f} > limit {lim.max_notional:.2f}")
            notional = qty * px
        if lim.banded and not is_market and px is not None:
            rej = self._check_band(symbol, lim, px, ref)
            if rej is not None:
                return rej
        if is_buy:
            worst = pos.qty + pos.open_buy + qty
            if worst > lim.max_position:
                return self._reject("max_position", f"max_position: {symbol} worst case {worst:g} "
                                    f"(position {pos.qty:g} + open buys {pos.open_buy:g} + {qty:g}) > limit {lim.max_position:g}")
        else:
            worst = pos.qty - pos.open_sell - qty
            if -worst > lim.max_position:
                return self._reject("max_position", f"max_position: {symbol} worst case {worst:g} "
                                    f"(position {pos.qty:g} - open sells {pos.open_sell:g} - {qty:g}) < -limit {lim.max_position:g}")
        gross = self._position_exposure + self._open_notional + notional
        if gross > self._max_gross * (1.0 + _REL_EPS):
            return self._reject("max_gross_exposure",
                                f"max_gross_exposure: {gross:.2f} > limit {self._max_gross:.2f}")
        sent = sess.sent
        if sent is not None and len(sent) == sess.max_rate:
            now = self.clock.now()
            if now - sent[0] < _THROTTLE_WINDOW_S:
                return self._reject("max_orders_per_second",
                                    f"max_orders_per_second: {sess.max_rate + 1} orders within "
                                    f"{now - sent[0]:.3f}s > limit {sess.max_rate}/s")
        return None

    def _check_band(self, symbol: str, lim: Limits, px: float, ref: float | None) -> RiskReject | None:
        if lim.band_abs == INF and lim.band_frac == INF:
            return None
        if ref is None:
            if self.cfg.reject_without_reference:
                return self._reject("no_reference_price",
                                    f"no_reference_price: no mark for {symbol} to check the price band", REJ_OTHER)
            return None
        diff = abs(px - ref)
        slack = abs(ref) * _REL_EPS
        if diff > lim.band_abs + slack:
            assert lim.tick_size is not None        # band_abs is finite only with a tick size
            return self._reject("price_band_ticks", f"price_band_ticks: {px:g} is {diff / lim.tick_size:.1f} ticks "
                                f"from reference {ref:g} > limit {lim.band_ticks:g} ticks")
        if diff > abs(ref) * lim.band_frac + slack:
            return self._reject("price_band_bps", f"price_band_bps: {px:g} is {diff / abs(ref) * 1e4:.1f} bps "
                                f"from reference {ref:g} > limit {lim.band_bps:g} bps")
        return None

    @staticmethod
    def _reduces(pos: Position, is_buy: bool, qty: float) -> bool:
        if is_buy:
            return pos.qty < 0.0 and pos.qty + pos.open_buy + qty <= 0.0
        return pos.qty > 0.0 and pos.qty - pos.open_sell - qty >= 0.0

    def _book_open(self, sess: SessionState, cid: str, pos: Position, is_buy: bool, total: float, qty: float,
                   px: float) -> None:
        sess.open[cid] = OpenOrder(pos, is_buy, total, qty, px)
        if is_buy:
            pos.open_buy += qty
        else:
            pos.open_sell += qty
        pos.open_notional += qty * px
        self._open_notional += qty * px
        if sess.sent is not None:
            sess.sent.append(self.clock.now())

    def _reject(self, check: str, text: str, reason: int = REJ_EXCEEDS_LIMIT) -> RiskReject:
        self.rejects_by_check[check] += 1
        return RiskReject(check, text, reason)

    def _reference(self, pos: Position) -> float | None:
        ref = self._mark(pos.symbol)
        return ref if ref is not None else pos.mark

    def _mark(self, symbol: str) -> float | None:
        """``mark_price(symbol)``; None without one."""
        mark_price = self.mark_price
        if mark_price is None:
            return None
        market = self._market
        if market is not None and mark_price is self._market_mark:
            return market.mark_price(symbol)
        return mark_price(symbol)

    def _new_session(self, key: str) -> SessionState:
        ov = _session_overrides(self.cfg, key)
        rate = _first(ov.max_orders_per_second if ov is not None else None, self.cfg.max_orders_per_second)
        sess = self._sessions[key] = SessionState(key, ov, rate)
        return sess

    def _resolve(self, sess: SessionState, symbol: str) -> Limits:
        allowed = self._allow is None or symbol in self._allow
        lim = sess.limits[symbol] = Limits(self.cfg, sess.overrides, self.cfg.symbol_limits.get(symbol), allowed)
        return lim

    def _new_position(self, symbol: str) -> Position:
        pos = self._positions[symbol] = Position(symbol)
        self._exposure_of[symbol] = 0.0
        return pos

    # ---- order lifecycle ------------------------------------------------------------------

    def on_fill(self, intent: OrderIntent, last_qty: float, last_px: float) -> TradingStateChanged | None:
        """Book a fill: release open exposure, move the position, revalue, run the kill switch."""
        pos = self._positions.get(intent.symbol) or self._new_position(intent.symbol)
        sess = self._sessions.get(intent.oms_session)
        order = sess.open.get(intent.cl_ord_id) if sess is not None else None
        if order is not None:
            self._release(order, min(last_qty, order.remaining))
        self.realized_pnl += pos.apply_fill(last_qty if intent.side == BUY else -last_qty, last_px)
        mark = self._mark(pos.symbol)
        if mark is not None:
            pos.mark = mark
        elif pos.mark is None:
            pos.mark = last_px
        self._revalue(pos)
        return self._evaluate_losses()

    def on_order_done(self, intent: OrderIntent, leaves_qty: float) -> None:
        """Terminal state: release what remains open (our own count is the authority)."""
        sess = self._sessions.get(intent.oms_session)
        if sess is None:
            return
        cid = intent.cl_ord_id
        order = sess.open.get(cid)
        if order is None:
            return
        del sess.open[cid]
        if order.remaining > 0.0:
            self._release(order, order.remaining)

    def check_replace(self, orig: OrderIntent, new: OrderIntent) -> RiskReject | None:
        """A cancel/replace: check ``new`` as if ``orig``'s open quantity were gone.

        On pass ``new`` (its ClOrdID) carries the open exposure: new.qty (FIX OrderQty is the
        total, fills included) minus what ``orig`` has filled. On reject ``orig`` stays as it was.
        Later fills and the terminal report should name ``new``.
        """
        rej = self.evaluate_replace(orig, new)
        if rej is None:
            self.book_replace(orig, new)
        return rej

    def _replace_parts(self, orig: OrderIntent, new: OrderIntent):
        sess = self._sessions.get(orig.oms_session)
        old = sess.open.get(orig.cl_ord_id) if sess is not None else None
        held = old.remaining if old is not None else 0.0
        filled = old.qty - held if old is not None else 0.0
        return sess, old, held, max(new.qty - filled, 0.0)

    def evaluate_replace(self, orig: OrderIntent, new: OrderIntent) -> RiskReject | None:
        """``check_replace`` as a pure decision: the original's exposure is set aside only for the check."""
        _, old, held, qty = self._replace_parts(orig, new)
        if old is not None:
            self._release(old, held)
        try:
            return self._check(new, qty)
        finally:
            if old is not None:
                self._release(old, -held)   # put the original exposure back

    def book_replace(self, orig: OrderIntent, new: OrderIntent) -> None:
        """The replace passed and was journaled: ``new`` carries the exposure from now on."""
        sess, old, held, qty = self._replace_parts(orig, new)
        if old is not None:
            self._release(old, held)
            del sess.open[orig.cl_ord_id]
        self.book(new, qty)

    def _release(self, order: OpenOrder, qty: float) -> None:
        """Drop ``qty`` of an order's open exposure (a negative qty restores it)."""
        order.remaining -= qty
        pos = order.pos
        if order.is_buy:
            pos.open_buy -= qty
        else:
            pos.open_sell -= qty
        pos.open_notional -= qty * order.px
        self._open_notional -= qty * order.px

    def on_mark(self, symbol: str, price: float) -> TradingStateChanged | None:
        """A new reference price (mid or last trade); revalues and runs the loss triggers."""
        pos = self._positions.get(symbol) or self._new_position(symbol)
        pos.mark = price
        if pos.qty:
            self._revalue(pos)
            return self._evaluate_losses()
        return None

    def refresh_marks(self) -> TradingStateChanged | None:
        """Pull ``mark_price`` for every open position (call on a timer when marks are not pushed)."""
        if self.mark_price is None:
            return None
        for pos in self._positions.values():
            if pos.qty:
                mark = self._mark(pos.symbol)
                if mark is not None:
                    pos.mark = mark
                    self._revalue(pos)
        return self._evaluate_losses()

    def _revalue(self, pos: Position) -> None:
        self.unrealized_pnl += pos.revalue()
        exposure = pos.exposure()
        self._position_exposure += exposure - self._exposure_of[pos.symbol]
        self._exposure_of[pos.symbol] = exposure

    # ---- kill switch ------------------------------------------------------------------------

    @property
    def total_pnl(self) -> float:
        return self.realized_pnl + self.unrealized_pnl

    def _evaluate_losses(self) -> TradingStateChanged | None:
        if not self._kill_on:
            return None
        total = self.realized_pnl + self.unrealized_pnl
        threshold = self._loss_threshold
        if threshold is not None:
            drop = self._loss.add(self.clock.now(), total)
            if drop > threshold and self.state != HALTED:
                return self.trip(f"rolling loss: PnL fell {drop:.2f} within {self.cfg.loss_window_s:g}s "
                                 f"(now {total:.2f}) > loss_threshold {threshold:g}")
        limit = self._daily_loss_limit
        if limit is not None:
            day_loss = self._day_start_pnl - total
            if day_loss > limit and self.state != HALTED:
                return self.trip(f"daily loss: {day_loss:.2f} (realized {self.realized_pnl:.2f}, "
                                 f"unrealized {self.unrealized_pnl:.2f}) > daily_loss_limit {limit:g}")
        return None

    def on_venue_reject(self, venue: str, session: str | None = None) -> TradingStateChanged | None:
        """A venue refused one of ``session``'s orders: suspend that session past its threshold;
        trip the firm only past ``firm_venue_reject_threshold`` (all sessions together)."""
        cfg = self.cfg
        if not self._kill_on:
            return None
        now = self.clock.now()
        firm = cfg.firm_venue_reject_threshold
        if firm is not None:
            count = self._rejects.add(now)
            if count >= firm and self.state != HALTED:
                return self.trip(f"venue reject spike: {count} rejects within {cfg.venue_reject_window_s:g}s "
                                 f"(last from {venue}) >= firm_venue_reject_threshold {firm}")
        threshold = cfg.venue_reject_threshold
        if threshold is None or session is None:
            return None
        sess = self._session(session)
        if sess.rejects is None:
            sess.rejects = EventRate(cfg.venue_reject_window_s, max(threshold, 1) * 4)
        count = sess.rejects.add(now)
        if count >= threshold and sess.suspended is None:
            return self.suspend(session, f"{count} of its orders rejected by venues within "
                                f"{cfg.venue_reject_window_s:g}s (last from {venue}) >= venue_reject_threshold "
                                f"{threshold}")
        return None

    def suspend(self, session: str, reason: str, by: str = "auto") -> TradingStateChanged | None:
        """Refuse new orders from one OMS session (the firm trades on). None if already suspended."""
        sess = self._session(session)
        if sess.suspended is not None:
            return None
        sess.suspended = reason
        log.warning("risk: session %s suspended by %s: %s", session, by, reason)
        self.history.append({"at": self.clock.now(), "state": HALTED, "session": session, "reason": reason,
                             "by": by})
        return TradingStateChanged(state=HALTED, previous=ACTIVE, reason=reason, by=by, session=session)

    def suspended_sessions(self) -> dict[str, str]:
        return {k: s.suspended for k, s in self._sessions.items() if s.suspended is not None}

    def trip(self, reason: str, by: str = "auto") -> TradingStateChanged | None:
        """Halt trading; returns the change once (None if already halted)."""
        if self.state == HALTED:
            return None
        previous = self.state
        self._set_state(HALTED, reason, by)
        self.trip_reason = reason
        self.tripped_at = self.clock.now()
        self.tripped_by = by
        self.trips += 1
        return TradingStateChanged(state=HALTED, previous=previous, reason=reason, by=by)

    def reduce_only(self, by: str, reason: str = "manual") -> None:
        """Move to REDUCING: only orders that shrink a position pass."""
        self._require_person(by)
        self._set_state(REDUCING, reason, by)

    def reset(self, by: str, session: str | None = None) -> TradingStateChanged | None:
        """Back to ACTIVE (the firm, or one suspended session). Only a person resets.

        Returns the change, or None when there was nothing to reset.
        """
        self._require_person(by)
        if session is not None:
            sess = self._sessions.get(session)
            if sess is None or sess.suspended is None:
                return None
            sess.suspended, sess.rejects = None, None
            self.history.append({"at": self.clock.now(), "state": ACTIVE, "session": session, "reason": "reset",
                                 "by": by})
            return TradingStateChanged(state=ACTIVE, previous=HALTED, reason="reset", by=by, session=session)
        previous = self.state
        suspended = self.suspended_sessions()
        for sess in self._sessions.values():
            sess.suspended, sess.rejects = None, None
        if previous == ACTIVE and not suspended:
            return None
        self._set_state(ACTIVE, "reset", by)
        self.trip_reason = self.tripped_at = self.tripped_by = None
        now = self.clock.now()
        # the loss that tripped the switch must not re-trip it on the next fill
        self._loss = RollingLoss(self.cfg.loss_window_s, self.cfg.pnl_ring_size, now, self.total_pnl)
        self._rejects = EventRate(self.cfg.venue_reject_window_s, self._rejects._times.maxlen or 4)
        return TradingStateChanged(state=ACTIVE, previous=previous, reason="reset", by=by)

    def start_new_day(self, by: str) -> None:
        """New trading day: the daily loss counts from here and ClOrdIDs may be reused."""
        self._require_person(by)
        self._day_start_pnl = self.total_pnl
        for sess in self._sessions.values():
            sess.seen = set(sess.open)
        self.history.append({"at": self.clock.now(), "state": self.state, "reason": "new day", "by": by})

    @staticmethod
    def _require_person(by: str) -> None:
        if not by or not by.strip() or by == "auto":
            raise ValueError("risk: only a person (named in 'by') can reset or change the risk state")

    def _set_state(self, state: str, reason: str, by: str) -> None:
        # state changes are rare and must leave a trace with the numbers behind them
        log.warning("risk state %s -> %s by %s: %s (realized %.2f, unrealized %.2f)",
                    self.state, state, by, reason, self.realized_pnl, self.unrealized_pnl)
        self.state = state
        self.history.append({"at": self.clock.now(), "state": state, "reason": reason, "by": by})

    # ---- restart ------------------------------------------------------------------------------

    def restore(self, fills, open_orders, seen) -> None:
        """Rebuild positions, open exposure and used ClOrdIDs after a restart (order journal).

        ``fills``: (intent, qty, px) in the order they happened; ``open_orders``:
        (intent, remaining qty); ``seen``: (session key, ClOrdID) pairs used today. No check
        runs, and the rolling-loss window starts afresh at the restored PnL, so replaying a
        day's fills in one instant cannot trip the switch; the daily limit still counts them.
        """
        for intent, qty, px in fills:
            pos = self._positions.get(intent.symbol) or self._new_position(intent.symbol)
            self.realized_pnl += pos.apply_fill(qty if intent.side == BUY else -qty, px)
            if pos.mark is None:
                pos.mark = px
            self._revalue(pos)
        for session, cid in (seen if self._dup else ()):
            (self._sessions.get(session) or self._new_session(session)).seen.add(cid)
        for intent, remaining in open_orders:
            sess = self._sessions.get(intent.oms_session) or self._new_session(intent.oms_session)
            pos = self._positions.get(intent.symbol) or self._new_position(intent.symbol)
            px = intent.price if intent.price is not None else (self._reference(pos) or 0.0)
            self._book_open(sess, intent.cl_ord_id, pos, intent.side == BUY, intent.qty, remaining, px)
        self._loss = RollingLoss(self.cfg.loss_window_s, self.cfg.pnl_ring_size, self.clock.now(), self.total_pnl)

    # ---- reporting ----------------------------------------------------------------------------

    def snapshot(self) -> dict:
        positions = {}
        for sym, pos in self._positions.items():
            if pos.qty or pos.realized_pnl or pos.open_buy or pos.open_sell:
                positions[sym] = pos.as_dict()
        return {
            "state": self.state,
            "trip_reason": self.trip_reason,
            "tripped_at": self.tripped_at,
            "tripped_by": self.tripped_by,
            "trips": self.trips,
            "positions": positions,
            "realized_pnl": self.realized_pnl,
            "unrealized_pnl": self.unrealized_pnl,
            "total_pnl": self.total_pnl,
            "day_pnl": self.total_pnl - self._day_start_pnl,
            "gross_exposure": self._position_exposure + self._open_notional,
            "open_orders": sum(len(s.open) for s in self._sessions.values()),
            "rejects_by_check": {k: v for k, v in self.rejects_by_check.items() if v},
            "suspended_sessions": self.suspended_sessions(),
            "checks": self.checks,
            "history": list(self.history[-20:]),
        }
