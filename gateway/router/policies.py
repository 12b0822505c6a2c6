"""Routing policies: ``ScalpRouter`` (default), ``BestPriceRouter`` (classic SOR), ``DmaRouter``.

Each reads ``MarketState`` under its lock, decides, and records the decision (with one
score tuple per venue, see ``decisions.SCORE_FIELDS``) in its ``DecisionLog``. A venue
whose session is down is never chosen; when nothing is usable the decision has no
children and ``reason`` is the Text(58) of the reject.

Scalp ranking, best first:
1. viable: fill probability >= ``min_fill_prob`` (the venue shows depth for this order),
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

from math import exp
from time import perf_counter

from gateway.book import BID, OFFER
from gateway.clock import MONOTONIC, Clock
from gateway.latency import INF
from gateway.market import MarketState
from gateway.model import BUY, FOK, IOC, LIMIT, MARKET, ChildOrder, OrderIntent, RoutingDecision
from gateway.router.config import RoutingConfig
from gateway.router.decisions import DecisionLog

_EPS = 1e-9


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

    def decide(self, intent: OrderIntent) -> RoutingDecision:
        t0 = perf_counter()
        children, reason, scores = self._decide(intent)
        d = RoutingDecision(self.name, children, reason, scores, self.clock.now(), (perf_counter() - t0) * 1e6)
        self.log.record(d, intent)
        return d

    def retry(self, intent: OrderIntent, decision: RoutingDecision, remaining_qty: float) -> RoutingDecision | None:
        """Micro-burst re-send of an IOC remainder: only the scalp policy does it."""
        return None

    def _decide(self, intent: OrderIntent):
        raise NotImplementedError

    def _reject(self, intent: OrderIntent, why: str, scores: list) -> tuple[list, str, list]:
        return [], f"{self.name}: {why}", scores


def _down_row(name: str) -> tuple:
    return (name, False, None, True, 0.0, 0.0, 0.0, None)


class ScalpRouter(BaseRouter):
    """One IOC/FOK limit order to the single fastest venue likely to fill it; never sliced."""

    name = "scalp"

    def _decide(self, intent: OrderIntent):
        return self._route(intent, intent.qty, (), "")

    def retry(self, intent: OrderIntent, decision: RoutingDecision, remaining_qty: float) -> RoutingDecision | None:
        if (not self.cfg.micro_burst or decision.rejected or remaining_qty <= _EPS
                or decision.reason.startswith("scalp micro-burst") or decision.children[0].tif != IOC):
            return None
        t0 = perf_counter()
        used = tuple(c.venue for c in decision.children)
        children, reason, scores = self._route(intent, remaining_qty, used, " micro-burst")
        if not children:
            return None
        d = RoutingDecision(self.name, children, reason, scores, self.clock.now(), (perf_counter() - t0) * 1e6)
        self.log.record(d, intent)
        return d

    def _route(self, intent: OrderIntent, qty: float, exclude: tuple, tag: str):
        m = self.market
        cfg = self.cfg
        side = intent.side
        buy = side == BUY
        is_market = intent.ord_type == MARKET
        limit = None if is_market else intent.price
        fok = intent.tif == FOK
        symbol = intent.symbol
        ceiling = cfg.latency_ceiling_us
        scores: list[tuple] = []
        viable: list[tuple] = []
        others: list[tuple] = []
        with m.lock:
            now = self.clock.now()
            for v in m.venue_list:
                name = v.name
                if not v.up:
                    scores.append(_down_row(name))
                    continue
                lat, stale = m.route_latency(v, now)
                book = v.books.get(symbol)
                px = None
                avail = vanish = fill = 0.0
                if book is not None and m.book_usable(v, book, now):
                    avail = book.qty_available(side, limit)
                    if avail > 0:
                        s = book.asks if buy else book.bids
                        if is_market:
                            px = book.sweep_price(side, qty)
                            if px is None:
                                px = s.sign * s.keys[-1]   # not enough depth: take all that shows
                        else:
                            px = s.sign * s.keys[0]
                        rate = s.rate
                        if rate:
                            vanish = rate * exp(-(now - s.rate_at) / book.tau_s) * lat * 0.5e-6
                        fill = fill_probability(avail, qty, vanish, fok)
                scores.append((name, True, lat, stale, avail, vanish, fill, px))
                if name in exclude or (ceiling is not None and (stale or lat > ceiling)):
                    continue
                row = (stale, lat, fill, (px if buy else -px) if px is not None else INF, name, px)
                if fill >= cfg.min_fill_prob and fill > 0:
                    viable.append(row)
                elif not is_market or px is not None:
                    others.append(row)
        pick = _best(viable, cfg.latency_tie_tolerance_us) or _best(others, cfg.latency_tie_tolerance_us)
        if pick is None:
            return self._reject(intent, self._why_none(scores, exclude, is_market, ceiling), scores)
        stale, lat, fill, _, name, px = pick
        price = px if is_market else limit
        child = ChildOrder(name, qty, price, LIMIT, FOK if fok else IOC)
        quality = "" if viable else "; no venue shows depth for it"
        reason = (f"scalp{tag}: {name} {lat:.0f}us{' stale' if stale else ''} fill {fill:.2f}"
                  f" of {len(viable)}/{len(viable) + len(others)} candidates{quality}")
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


def _best(rows: list[tuple], tol: float) -> tuple | None:
    """Pick by (stale, latency tier, -fill, price, latency); rows: (stale, lat, fill, pkey, name, px)."""
    if not rows:
        return None
    if len(rows) == 1:
        return rows[0]
    rows.sort()
    best_key = None
    best = None
    tier = 0
    lead_stale, lead_lat = rows[0][0], rows[0][1]
    for r in rows:
        if r[0] != lead_stale or r[1] - lead_lat > tol:
            tier += 1
            lead_stale, lead_lat = r[0], r[1]
        key = (tier, -r[2], r[3], r[1])
        if best_key is None or key < best_key:
            best_key, best = key, r
    return best


class BestPriceRouter(BaseRouter):
    """Classic SOR: best displayed price across venues, sliced by depth; keeps the OMS tif."""

    name = "best_price"

    def _decide(self, intent: OrderIntent):
        m = self.market
        buy = intent.side == BUY
        is_market = intent.ord_type == MARKET
        limit = None if is_market else intent.price
        scores: list[tuple] = []
        levels: list[tuple] = []     # (key, latency, venue, qty): ascending key = best first
        touch: list[tuple] = []      # (key, latency, venue) of each venue's best price
        fastest: list[tuple] = []
        with m.lock:
            now = self.clock.now()
            for v in m.venue_list:
                if not v.up:
                    scores.append(_down_row(v.name))
                    continue
                lat, stale = m.route_latency(v, now)
                fastest.append((stale, lat, v.name))
                book = v.books.get(intent.symbol)
                avail, px = 0.0, None
                if book is not None and m.book_usable(v, book, now):
                    s = book.asks if buy else book.bids
                    bound = None if limit is None else s.sign * limit + _EPS
                    for k in s.keys:
                        if bound is not None and k > bound:
                            break
                        q = s.qty[k]
                        levels.append((k, lat, v.name, q))
                        avail += q
                    if s.keys:
                        px = s.sign * s.keys[0]
                        touch.append((s.keys[0], lat, v.name))
                scores.append((v.name, True, lat, stale, avail, 0.0, None, px))
        if not fastest:
            return self._reject(intent, f"no venue available (down: {', '.join(r[0] for r in scores)})", scores)
        levels.sort()
        alloc: dict[str, float] = {}
        left = intent.qty
        for _, _, name, q in levels:
            if left <= _EPS:
                break
            take = q if q < left else left
            alloc[name] = alloc.get(name, 0.0) + take
            left -= take
        if alloc:
            best_venue = levels[0][2]
            how = f"{len(alloc)} venue(s) by displayed depth"
        elif is_market:
            return self._reject(intent, "no displayed liquidity for a market order", scores)
        else:
            best_venue = min(touch)[2] if touch else min(fastest)[2]
            how = "nothing displayed within the limit; sent whole to the best quote" if touch else \
                "no books; sent whole to the fastest venue"
        if left > _EPS:
            alloc[best_venue] = alloc.get(best_venue, 0.0) + left
        price = None if is_market else limit
        children = [ChildOrder(name, q, price, intent.ord_type, intent.tif) for name, q in alloc.items()]
        rest = f", remainder {left:g} to {best_venue}" if left > _EPS and len(alloc) > 1 else ""
        return children, f"best_price: {how}{rest}", scores


class DmaRouter(BaseRouter):
    """Direct market access: the venue in ExDestination(100), else ``default_venue``."""

    name = "dma"

    def _decide(self, intent: OrderIntent):
        m = self.market
        venue = intent.ex_destination or self.cfg.default_venue
        if not venue:
            return self._reject(intent, "no ExDestination(100) on the order and no default_venue configured", [])
        with m.lock:
            v = m.venues.get(venue)
            if v is None:
                return self._reject(intent, f"unknown venue {venue!r} (known: {', '.join(m.venues)})", [])
            if not v.up:
                return self._reject(intent, f"venue {venue} is down", [_down_row(venue)])
            lat, stale = m.route_latency(v, self.clock.now())
        child = ChildOrder(venue, intent.qty, intent.price, intent.ord_type, intent.tif)
        how = "ExDestination" if intent.ex_destination else "default_venue"
        return [child], f"dma: {venue} from {how}", [(venue, True, lat, stale, None, None, None, None)]


POLICIES: dict[str, type[BaseRouter]] = {"scalp": ScalpRouter, "best_price": BestPriceRouter, "dma": DmaRouter}
