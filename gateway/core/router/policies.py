"""Routing policies: ``ScalpRouter`` (default), ``BestPriceRouter`` (classic SOR), ``DmaRouter``.

Each reads ``MarketState`` (no lock: the gateway's one loop runs routing and market data
alike), decides, and records the decision (with one score tuple per venue, see
``decisions.SCORE_FIELDS``) in its ``DecisionLog``. A venue whose session is down is never
chosen; when nothing is usable the decision has no children and ``reason`` is the Text(58)
of the reject.

Scalp ranking, best first:
1. depth class: enough (fill probability >= ``min_fill_prob``, default 0.5: expected to
   fill at least half of an IOC, or an FOK with 50% probability), else partial (some
   depth), else none shown (a limit IOC there is a cheap miss; a market order is rejected),
2. fresh latency before stale, then latency tier: sorted by latency, a venue within
   ``latency_tie_tolerance_us`` of its tier's fastest venue shares the tier (a tie),
3. higher fill probability,
4. better price (touch for limit orders, sweep price for market orders),
5. lower latency.
Fill probability of an order of Q against displayed A with an expected vanishing quantity
V = touch depletion rate x one-way latency (RTT/2), vanishing modelled as exponential
with mean V: IOC -> expected filled fraction E[min(Q, A - X)+]/Q; FOK -> P(X <= A - Q).
"""
from __future__ import annotations

from bisect import bisect_right
from heapq import heappop, heappush
from math import exp
from operator import itemgetter
from time import perf_counter as _clock_perf_counter
from typing import Any, Final, Sequence

from gateway.common.clock import MONOTONIC, Clock, MonotonicClock
from gateway.core.latency import INF
from gateway.core.market import MarketState
from gateway.core.model import BUY, FOK, IOC, LIMIT, MARKET, ChildOrder, OrderIntent, RoutingDecision
from gateway.core.router.config import RoutingConfig
from gateway.core.router.decisions import DecisionLog

_EPS: Final = 1e-9
perf_counter: Final = _clock_perf_counter   # a static when compiled: no module dict read per decision
# A policy's answer: the child orders, the reason (Text(58) of a reject), the per-venue score rows.
# Typed, so the caller unpacks it natively (compiled) rather than through the iterator protocol.
Decided = tuple[list[ChildOrder], str, Sequence[Any]]


def fill_probability(available: float, qty: float, vanish: float, fok: bool) -> float:
    """See the module docstring. 0..1."""
    if qty <= 0 or available <= 0:
        return 0.0
    if vanish <= 0:
        if available + _EPS >= qty:
            return 1.0
        return 0.0 if fok else available / qty
    if fok:
        return 1.0 - exp(-(available - qty) / vanish) if available > qty else 0.0
    a0 = available - qty if available > qty else 0.0
    e0 = exp(-a0 / vanish)
    filled = qty * (1.0 - e0) + (available - a0) * e0 - vanish * (e0 - exp(-available / vanish))
    return filled / qty if filled > 0 else 0.0


class BaseRouter:
    name = "base"

    def __init__(self, cfg: RoutingConfig, market: MarketState, clock: Clock = MONOTONIC,
                 log: DecisionLog | None = None) -> None:
        self.cfg = cfg
        self.market = market
        self.clock = clock
        self.log = log if log is not None else DecisionLog(cfg.decision_log_size, cfg.decision_log_path)
        # the settings every decision reads, as native attributes (a pydantic attribute read is a
        # generic lookup per order); the routing config is not changed once routers exist
        self._default_venue: str | None = cfg.default_venue
        self._ceiling: float | None = cfg.latency_ceiling_us
        self._min_fill: float = cfg.min_fill_prob
        self._max_age: float = cfg.book_stale_after_s
        self._tie_us: float = cfg.latency_tie_tolerance_us
        self._policy: str = self.name    # the class's name as a native attribute (no type-dict lookup per order)
        self._real_clock: bool = type(clock) is MonotonicClock     # its now() is perf_counter()

    def decide(self, intent: OrderIntent, now: float | None = None) -> RoutingDecision:
        """Route ``intent``; ``now``: the caller's clock reading for this order (default: read it).
        On the real clock (``perf_counter`` itself) that reading starts the decision's timing."""
        if now is None:
            t0 = perf_counter()
            now = self.clock.now()
        elif self._real_clock:
            t0 = now
        else:
            t0 = perf_counter()
        children, reason, scores = self._decide(intent, now)
        d = RoutingDecision(self._policy, children, reason, scores, now, (perf_counter() - t0) * 1e6)
        self.log.record(d, intent)
        return d

    def retry(self, intent: OrderIntent, decision: RoutingDecision | None, remaining_qty: float,
              exclude: tuple | set | frozenset = ()) -> RoutingDecision | None:
        """Micro-burst re-send of an IOC remainder: only the scalp policy does it."""
        return None

    def _decide(self, intent: OrderIntent, now: float) -> Decided:
        raise NotImplementedError

    def _reject(self, intent: OrderIntent, why: str, scores: Sequence[Any]) -> Decided:
        return [], f"{self.name}: {why}", scores


def _down_row(name: str) -> tuple:
    return (name, False, None, True, 0.0, 0.0, 0.0, None)


class ScalpRouter(BaseRouter):
    """One IOC/FOK limit order to the single fastest venue likely to fill it; never sliced."""

    name = "scalp"

    def _decide(self, intent: OrderIntent, now: float) -> Decided:
        return self._route(intent, intent.qty, (), "", now)

    def retry(self, intent: OrderIntent, decision: RoutingDecision | None, remaining_qty: float,
              exclude: tuple | set | frozenset = ()) -> RoutingDecision | None:
        """Re-send an unfilled IOC remainder once, to the best venue not tried yet.

        ``decision`` is the order's first decision; when None it is looked up in the
        decision log (same intent). Venues in ``exclude`` are skipped as well.
        """
        if not self.cfg.micro_burst or remaining_qty <= _EPS:
            return None
        if decision is None:
            decision = self.log.last_for(intent)
        if decision is not None and (decision.rejected or decision.reason.startswith("scalp micro-burst")
                                     or decision.children[0].tif != IOC):
            return None
        if decision is None and intent.tif == FOK:
            return None
        t0 = perf_counter()
        used = tuple(exclude) + (tuple(c.venue for c in decision.children) if decision is not None else ())
        now = self.clock.now()
        children, reason, scores = self._route(intent, remaining_qty, used, " micro-burst", now)
        if not children:
            return None
        children[0].tif = IOC
        d = RoutingDecision(self.name, children, reason, scores, now, (perf_counter() - t0) * 1e6)
        self.log.record(d, intent)
        return d

    def _route(self, intent: OrderIntent, qty: float, exclude: tuple, tag: str, now: float) -> Decided:
        # Hot path: MarketState.book_usable / L2Book.qty_available are inlined here (same
        # rules); the latency figure is MarketState.route_latency itself, one rule for both.
        m = self.market
        side = intent.side
        buy = side == BUY
        is_market = intent.ord_type == MARKET
        limit = None if is_market else intent.price
        bound = None if limit is None else (limit + _EPS if buy else -limit + _EPS)
        fok = intent.tif == FOK
        symbol = intent.symbol
        ceiling = self._ceiling
        min_fill = self._min_fill
        route_latency = m.route_latency
        max_age = self._max_age
        scores: list[tuple] = []
        viable: list[tuple] = []     # fill probability >= min_fill_prob
        partial: list[tuple] = []    # some depth
        blind: list[tuple] = []      # no depth shown at the limit (limit orders only)
        for v in m.venue_list:
            name = v.name
            if not v.up:
                scores.append((name, False, None, True, 0.0, 0.0, 0.0, None))
                continue
            lat, stale = route_latency(v, now)
            last = v.lat.last_at
            px = None
            avail = vanish = fill = 0.0
            book = v.books.get(symbol)
            usable = book is not None and not book.stale
            if book is not None and usable and max_age > 0:      # MarketState.book_usable, inlined
                lu = book.last_update
                if lu is None or now - lu > max_age:
                    usable = last is not None and now - last <= max_age
            if book is not None and usable:
                s = book.asks if buy else book.bids
                cum = s.cum
                if cum:
                    if bound is None:
                        avail = cum[-1]
                    else:
                        i = bisect_right(s.keys, bound)
                        avail = cum[i - 1] if i else 0.0
                if avail > 0:
                    if is_market:
                        px = book.sweep_price(side, qty)
                        if px is None:
                            px = s.sign * s.keys[-1]   # not enough depth: take all that shows
                    else:
                        px = s.sign * s.keys[0]
                    rate = s.rate
                    if rate:
                        vanish = rate * exp((s.rate_at - now) / book.tau_s) * lat * 0.5e-6
                        if avail - qty > 30.0 * vanish:
                            fill = 1.0                # depth to spare: exp(-30) ~ 1e-13 short of 1
                        else:
                            fill = fill_probability(avail, qty, vanish, fok)
                    elif avail + _EPS >= qty:
                        fill = 1.0
                    else:
                        fill = 0.0 if fok else avail / qty
            row = (name, True, lat, stale, avail, vanish, fill, px)
            scores.append(row)
            if exclude and name in exclude:
                continue
            if ceiling is not None and (stale or lat > ceiling):
                continue
            if fill > 0:
                (viable if fill >= min_fill else partial).append(row)
            elif not is_market:
                blind.append(row)
        tol = self._tie_us
        pick = _best(viable, tol, buy) or _best(partial, tol, buy) or _best(blind, tol, buy)
        if pick is None:
            return self._reject(intent, self._why_none(scores, exclude, is_market, ceiling), scores)
        name, _, lat, stale, _, _, fill, px = pick
        child = ChildOrder(name, qty, px if is_market else limit, LIMIT, FOK if fok else IOC)
        # int() formatting: a float format spec costs ~0.3 us more on the hot path
        lat_text = "?" if lat == INF else int(lat)      # no probe answered yet (a blind pick)
        reason = (f"scalp{tag}: {name} {lat_text}us{' stale' if stale else ''} fill {int(fill * 100)}%"
                  f" ({len(viable)} of {len(viable) + len(partial) + len(blind)} venues with enough depth"
                  f"{')' if viable else (', best partial)' if partial else ', none shows depth)')}")
        return [child], reason, scores

    def _why_none(self, scores: list[tuple], exclude: tuple, is_market: bool, ceiling: float | None) -> str:
        up = [r for r in scores if r[1] and r[0] not in exclude]
        if not up:
            down = ", ".join(r[0] for r in scores if not r[1]) or "none configured"
            return f"no venue available (down: {down})"
        if ceiling is not None:
            lats = ", ".join(f"{r[0]} {'stale' if r[3] else f'{r[2]:.0f}us'}" for r in up)
            if all(r[3] or r[2] > ceiling for r in up):
                return f"no venue below latency ceiling {ceiling:.0f}us ({lats})"
        if is_market:
            return "no displayed liquidity to price a market order"
        return "no usable venue"


def _best(rows: list[tuple], tol: float, buy: bool) -> tuple | None:
    """Best score row: fresh before stale, then the latency tier of the fastest (rows within
    ``tol`` of it tie), then higher fill probability, better price, lower latency."""
    if not rows:
        return None
    if len(rows) > 1:
        rows.sort(key=_BY_STALE_LAT)
    first = rows[0]
    stale0, limit = first[3], first[2] + tol
    best, best_key = first, None
    for r in rows:
        if r[3] is not stale0 or r[2] > limit:
            break                                   # sorted: the rest are in slower tiers
        px = r[7]
        key = (-r[6], INF if px is None else (px if buy else -px), r[2])
        if best_key is None or key < best_key:
            best, best_key = r, key
    return best


_BY_STALE_LAT = itemgetter(3, 2)


class BestPriceRouter(BaseRouter):
    """Classic SOR: best displayed price across venues, sliced by depth; keeps the OMS tif.

    Levels are merged across venues best price first (faster venue first at equal
    price) only as deep as the order needs; what no venue shows goes to the venue with
    the best price.
    """

    name = "best_price"

    def _decide(self, intent: OrderIntent, now: float) -> Decided:
        m = self.market
        buy = intent.side == BUY
        is_market = intent.ord_type == MARKET
        limit = intent.price if not is_market else None
        bound = INF if limit is None else (limit + _EPS if buy else -limit + _EPS)
        symbol = intent.symbol
        check_age = self._max_age > 0
        scores: list[tuple] = []
        heads: list[tuple] = []      # (key, latency, n, keys, qty map, level index, venue)
        fastest: list[tuple] = []
        for n, v in enumerate(m.venue_list):
            if not v.up:
                scores.append((v.name, False, None, True, 0.0, 0.0, 0.0, None))
                continue
            lat, stale = m.route_latency(v, now)
            fastest.append((stale, lat, v.name))
            book = v.books.get(symbol)
            avail, px = 0.0, None
            if book is not None and not book.stale and (not check_age or m.book_usable(v, book, now)):
                s = book.asks if buy else book.bids
                keys = s.keys
                if keys:
                    px = s.sign * keys[0]
                    i = bisect_right(keys, bound)
                    avail = s.cum[i - 1] if i else 0.0
                    heads.append((keys[0], lat, n, keys, s.qty, 0, v.name))
            scores.append((v.name, True, lat, stale, avail, 0.0, None, px))
        if not fastest:
            down = ", ".join(r[0] for r in scores) or "none configured"
            return self._reject(intent, f"no venue available (down: {down})", scores)
        heads.sort()
        best_head = heads[0] if heads else None
        alloc: dict[str, float] = {}
        left = intent.qty
        heap = [h for h in heads if h[0] <= bound]
        while heap and left > _EPS:
            key, lat, n, keys, qty, i, name = heappop(heap)
            q = qty[key]
            take = q if q < left else left
            alloc[name] = alloc.get(name, 0.0) + take
            left -= take
            i += 1
            if i < len(keys) and keys[i] <= bound:
                heappush(heap, (keys[i], lat, n, keys, qty, i, name))
        if alloc and best_head is not None:       # (something was allocated: there was a head)
            best_venue = best_head[6]
            how = f"{len(alloc)} venue(s) by displayed depth"
        elif is_market:
            return self._reject(intent, "no displayed liquidity for a market order", scores)
        elif best_head is not None:
            best_venue, how = best_head[6], "nothing displayed within the limit; sent whole to the best quote"
        else:
            best_venue, how = min(fastest)[2], "no books; sent whole to the fastest venue"
        rest = f", remainder {left:g} to {best_venue}" if left > _EPS and alloc else ""
        if left > _EPS:
            alloc[best_venue] = alloc.get(best_venue, 0.0) + left
        price = None if is_market else limit
        children = [ChildOrder(name, q, price, intent.ord_type, intent.tif) for name, q in alloc.items()]
        return children, f"best_price: {how}{rest}", scores


class DmaRouter(BaseRouter):
    """Direct market access: the venue in ExDestination(100), else ``default_venue``."""

    name = "dma"

    def __init__(self, cfg: RoutingConfig, market: MarketState, clock: Clock = MONOTONIC,
                 log: DecisionLog | None = None) -> None:
        super().__init__(cfg, market, clock, log)
        self._reasons_ex: dict[str, str] = {}        # venue -> "dma: <venue> from ExDestination"
        self._reasons_default: dict[str, str] = {}   # venue -> "dma: <venue> from default_venue"
        # venue -> (latency, stale, the scores of a decision with them): the latency moves with the
        # probes, not per order, so consecutive decisions share one scores tuple (no two per order)
        self._scores: dict[str, tuple[float, bool, tuple]] = {}

    def _decide(self, intent: OrderIntent, now: float) -> Decided:
        m = self.market
        venue = intent.ex_destination or self._default_venue
        if not venue:
            return self._reject(intent, "no ExDestination(100) on the order and no default_venue configured", ())
        v = m.venues.get(venue)
        if v is None:
            return self._reject(intent, f"unknown venue {venue!r} (known: {', '.join(m.venues)})", ())
        if not v.up:
            return self._reject(intent, f"venue {venue} is down", (_down_row(venue),))
        lat, stale = m.route_latency(v, now)
        child = ChildOrder(venue, intent.qty, intent.price, intent.ord_type, intent.tif)
        # the reason's text is one per (venue, how): made once (bounded: known venues only)
        reasons = self._reasons_ex if intent.ex_destination else self._reasons_default
        reason = reasons.get(venue)
        if reason is None:
            how = "ExDestination" if intent.ex_destination else "default_venue"
            reason = reasons[venue] = f"dma: {venue} from {how}"
        # the scores: a tuple of one tuple of plain values (the decision log keeps it, and the
        # collector untracks such tuples; a list it would visit for as long as the log keeps it),
        # the previous decision's while the venue's latency figures are the same (values: shared)
        last = self._scores.get(venue)
        if last is not None and last[0] == lat and last[1] == stale:
            return [child], reason, last[2]
        row: tuple = (venue, True, lat, stale, None, None, None, None)
        scores: tuple = (row,)
        self._scores[venue] = (lat, stale, scores)
        return [child], reason, scores


POLICIES: dict[str, type[BaseRouter]] = {"scalp": ScalpRouter, "best_price": BestPriceRouter, "dma": DmaRouter}
