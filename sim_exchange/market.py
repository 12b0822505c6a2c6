"""The simulated market across venues: flow sources, price formation and fast competitors.

Sans-IO and seeded. A ``Market`` holds every venue's ``MatchingEngine`` and a list of
**flow sources**; a driver (an asyncio timer in ``loop_exchange.py``, a thread for the
quickfix backend) asks ``next_time()``, sleeps until then, calls ``due(now)`` and applies
each returned ``EngineCall`` to its venue (publishing the events as FIX), then tells
the market which books changed (``book_changed``). That is the whole contract:

    class FlowSource(Protocol):
        def next_time(self) -> float                  # clock seconds; inf = nothing scheduled
        def step(self, now: float) -> list[EngineCall] # what is due at ``now``
        # optional: def on_quote(self, now, venue, symbol, bid, ask) -> None

    EngineCall(venue, fn)   # fn(engine) -> list of engine events, run when applied

Scenario generators (walls, bursts, dislocations) plug in as more flow sources:
``market.add_source(src)``.

The model (parameters in ``config.MarketConfig``; documented in README.md):
- **Fair value** per symbol: a jump process in ticks. Jumps arrive as a Poisson process
  (``move_rate_per_s``), of 1..``max_move_ticks`` ticks, up or down with a pull back to
  the reference price (``reversion``).
- **Lead and followers**: each venue's quoting market maker re-centres its quotes on the
  new fair value after that venue's lag: the lead venue at once (``lag_us`` 0), the others
  ``lag_us`` later (+ exponential ``lag_jitter_us``). All quoters quote the same fair
  value, so venues usually show the same prices, and for the lag the followers' quotes
  are stale.
- **Competitors**: participants that see every venue's book with their own reaction
  latency. When a venue's touch changes, each competitor, ``reaction_us`` later, takes
  that venue's mid as the fair price and sends an IOC to every other venue whose quote is
  better than that mid by at least ``min_edge_ticks``; the IOC arrives ``entry_us`` later
  (per venue) and takes whatever is still there, up to ``take_qty``.

Invariants: every time is the injected clock's; the same seed and the same calls give the
same actions; sources never touch an engine outside an ``EngineCall`` (so the driver
decides when, and under which lock, the engine changes); market participants' owners
start with ``FLOW_OWNER_PREFIX`` (no ExecutionReports are sent for them).
"""
from __future__ import annotations

import heapq
import itertools
import math
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple, Protocol

from gateway.core.matching.engine import BUY, DAY, IOC, LIMIT, SELL, MatchingEngine
from sim_exchange.flow import FLOW_OWNER_PREFIX

INF = float("inf")


class EngineCall(NamedTuple):
    """Run ``fn(engine)`` on ``venue``'s engine; it returns the engine's events."""
    venue: str
    fn: Callable[[MatchingEngine], list]


class FlowSource(Protocol):
    def next_time(self) -> float: ...
    def step(self, now: float) -> list[EngineCall]: ...


class Scheduled:
    """A small seeded timer heap the sources share: (time, seq, action) -> actions due."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()

    def at(self, t: float, action: Any) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), action))

    def next_time(self) -> float:
        return self._heap[0][0] if self._heap else INF

    def pop_due(self, now: float) -> list[Any]:
        out = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[2])
        return out

    def __len__(self) -> int:
        return len(self._heap)


# ---------------------------------------------------------------- the market

class Market:
    """Engines by venue + flow sources + the touch each venue showed last."""

    def __init__(self, engines: dict[str, MatchingEngine], sources: Iterable[FlowSource] = ()) -> None:
        self.engines = engines
        self.sources: list[FlowSource] = list(sources)
        self._touch: dict[tuple[str, str], tuple[int | None, int | None]] = {}
        self.quote_changes = 0

    def add_source(self, source: FlowSource) -> None:
        self.sources.append(source)

    def next_time(self) -> float:
        return min((s.next_time() for s in self.sources), default=INF)

    def due(self, now: float) -> list[EngineCall]:
        """Every call due at ``now``, source by source (bounded: each source pops its own due)."""
        calls: list[EngineCall] = []
        for s in self.sources:
            if s.next_time() <= now:
                calls += s.step(now)
        return calls

    def book_changed(self, venue: str, symbol: str, now: float) -> None:
        """A driver saw ``symbol``'s book change on ``venue``: tell observers if the touch moved."""
        eng = self.engines.get(venue)
        if eng is None or symbol not in eng.instruments:
            return
        touch = (eng.best_bid(symbol), eng.best_ask(symbol))
        key = (venue, symbol)
        if self._touch.get(key) == touch:
            return
        self._touch[key] = touch
        self.quote_changes += 1
        for s in self.sources:
            hook = getattr(s, "on_quote", None)
            if hook is not None:
                hook(now, venue, symbol, touch[0], touch[1])


# ---------------------------------------------------------------- background flow

class BackgroundFlow:
    """Adapter: a venue's seeded ``FlowModel`` (Poisson arrivals) as a flow source."""

    def __init__(self, venue: str, model: Any, start: float) -> None:
        self.venue = venue
        self.model = model
        self._next = start + model.next_delay()

    def next_time(self) -> float:
        return self._next

    def step(self, now: float) -> list[EngineCall]:
        if self._next > now:
            return []
        # The next arrival counts from this one's scheduled time, not from ``now``, so a
        # driver that ran a little late does not thin the Poisson process; after a long
        # stall (over 100 ms behind) it restarts from now instead of bursting.
        self._next += self.model.next_delay()
        if self._next < now - 0.1:
            self._next = now
        return [EngineCall(self.venue, lambda _eng: self.model.step())]


# ---------------------------------------------------------------- price formation

@dataclass(frozen=True)
class QuoterParams:
    """One venue's quoting market maker (from VenueMarketConfig)."""
    lag_s: float
    lag_jitter_s: float
    qty: int
    levels: int
    spread_ticks: int


class PriceFormation:
    """Fair value per symbol; quoters on every venue re-centre on it after their lag."""

    def __init__(self, engines: dict[str, MatchingEngine], quoters: dict[str, QuoterParams], *,
                 move_rate_per_s: float, max_move_ticks: int, reversion: float, seed: int,
                 start: float) -> None:
        self.engines = engines
        self.quoters = quoters
        self.rate = move_rate_per_s
        self.max_move = max_move_ticks
        self.reversion = reversion
        self.rng = random.Random(seed)
        self.sched = Scheduled()
        symbols = sorted({s for v in quoters for s in engines[v].instruments})
        self.ref = {s: next(engines[v].instruments[s].ref_ticks for v in quoters
                            if s in engines[v].instruments) for s in symbols}
        self.fair = dict(self.ref)
        self.quoted: dict[tuple[str, str], int] = {}      # (venue, symbol) -> fair value it quotes
        self._live: dict[tuple[str, str], list[str]] = {}  # our resting ClOrdIDs there
        self._ids = itertools.count(1)
        self.moves = 0
        for s in symbols:
            self._schedule_move(s, start)

    # -- FlowSource
    def next_time(self) -> float:
        return self.sched.next_time()

    def step(self, now: float) -> list[EngineCall]:
        calls: list[EngineCall] = []
        for action in self.sched.pop_due(now):
            kind, symbol, arg = action
            if kind == "move":
                self._move(symbol, now)
            else:                                  # ("quote", symbol, venue)
                calls.append(self._requote_call(arg, symbol))
        return calls

    def initial_calls(self) -> list[EngineCall]:
        """Every quoter's first quotes (applied once at start)."""
        return [self._requote_call(v, s) for v in sorted(self.quoters) for s in sorted(self.fair)
                if s in self.engines[v].instruments]

    def venue_fair(self, venue: str, symbol: str) -> float:
        """The mid (ticks) ``venue``'s quoter shows: background flow anchors on it."""
        spread = self.quoters[venue].spread_ticks if venue in self.quoters else 1
        fv = self.quoted.get((venue, symbol), self.fair.get(symbol))
        return fv - (spread - 1) // 2 + spread / 2 if fv is not None else math.nan

    # -- the jump process
    def _schedule_move(self, symbol: str, after: float) -> None:
        if self.rate > 0:
            self.sched.at(after + self.rng.expovariate(self.rate), ("move", symbol, None))

    def _move(self, symbol: str, now: float) -> None:
        size = self.rng.randint(1, self.max_move)
        # Pull back to the reference price: P(up) falls as the fair value rises above it.
        p_up = min(0.9, max(0.1, 0.5 - self.reversion * (self.fair[symbol] - self.ref[symbol])))
        self.fair[symbol] = max(1 + self.max_move, self.fair[symbol] + (size if self.rng.random() < p_up else -size))
        self.moves += 1
        for venue, q in sorted(self.quoters.items()):
            if symbol not in self.engines[venue].instruments:
                continue
            lag = q.lag_s + (self.rng.expovariate(1 / q.lag_jitter_s) if q.lag_jitter_s > 0 else 0.0)
            self.sched.at(now + lag, ("quote", symbol, venue))
        self._schedule_move(symbol, now)

    # -- quoting
    def _requote_call(self, venue: str, symbol: str) -> EngineCall:
        fv = self.fair[symbol]
        return EngineCall(venue, lambda eng: self._requote(eng, venue, symbol, fv))

    def _requote(self, eng: MatchingEngine, venue: str, symbol: str, fv: int) -> list:
        """Cancel our quotes there, then quote ``levels`` levels a side around ``fv``.
        Cancel first: the new bid may cross our own stale ask."""
        q = self.quoters[venue]
        owner = f"{FLOW_OWNER_PREFIX}mm:{venue}"
        events: list = []
        for cl in self._live.pop((venue, symbol), []):
            if eng.order(owner, cl) is not None and not eng.order(owner, cl).done:
                events += eng.cancel(owner, self._id(), cl)
            eng.forget(owner, cl)
        bid = fv - (q.spread_ticks - 1) // 2
        ask = bid + q.spread_ticks
        inst = eng.instruments[symbol]
        live = []
        for i in range(q.levels):
            for side, px in ((BUY, bid - i), (SELL, ask + i)):
                if px <= 0:
                    continue
                cl = self._id()
                events += eng.new_order(owner, cl, symbol, side, q.qty, LIMIT, inst.to_price(px), DAY)
                live.append(cl)
        self._live[(venue, symbol)] = live
        self.quoted[(venue, symbol)] = fv
        return events

    def _id(self) -> str:
        return f"Q{next(self._ids)}"


# ---------------------------------------------------------------- competitors

@dataclass(frozen=True)
class CompetitorParams:
    name: str
    reaction_s: float               # sees a touch change this long after it happened (+ jitter)
    reaction_jitter_s: float
    entry_s: dict[str, float]       # per venue: IOC sent -> IOC at the venue
    take_qty: int
    min_edge_ticks: float           # trade only quotes at least this much better than the mid
    max_spread_ticks: int           # ignore a moved venue whose spread is wider (a hole, not a price)


class Competitors:
    """Latency-sensitive takers of stale quotes across venues (see the module docstring)."""

    def __init__(self, engines: dict[str, MatchingEngine], params: list[CompetitorParams], *, seed: int,
                 venues: Iterable[str] | None = None) -> None:
        self.engines = engines
        self.params = params
        self.venues = sorted(venues if venues is not None else engines)   # where they trade
        self.rng = random.Random(seed)
        self.sched = Scheduled()
        self._ids = itertools.count(1)
        self.stats = {"seen": 0, "iocs": 0, "filled_qty": 0}

    def next_time(self) -> float:
        return self.sched.next_time()

    def on_quote(self, now: float, venue: str, symbol: str, bid: int | None, ask: int | None) -> None:
        if bid is None or ask is None:
            return
        for p in self.params:
            if ask - bid > p.max_spread_ticks:
                continue
            jitter = self.rng.expovariate(1 / p.reaction_jitter_s) if p.reaction_jitter_s > 0 else 0.0
            self.sched.at(now + p.reaction_s + jitter, ("see", p, venue, symbol, (bid + ask) / 2))

    def step(self, now: float) -> list[EngineCall]:
        calls: list[EngineCall] = []
        for action in self.sched.pop_due(now):
            if action[0] == "see":
                self._see(now, *action[1:])
            else:                                   # ("send", venue, call)
                calls.append(action[2])
        return calls

    def _see(self, now: float, p: CompetitorParams, moved: str, symbol: str, mid: float) -> None:
        """Decide on what the other venues show now; each IOC arrives after entry latency."""
        self.stats["seen"] += 1
        for venue in self.venues:
            eng = self.engines[venue]
            if venue == moved or symbol not in eng.instruments or venue not in p.entry_s:
                continue
            bid, ask = eng.best_bid(symbol), eng.best_ask(symbol)
            if ask is not None and ask <= mid - p.min_edge_ticks:
                self._send(now, p, venue, symbol, BUY, math.floor(mid - p.min_edge_ticks))
            elif bid is not None and bid >= mid + p.min_edge_ticks:
                self._send(now, p, venue, symbol, SELL, math.ceil(mid + p.min_edge_ticks))

    def _send(self, now: float, p: CompetitorParams, venue: str, symbol: str, side: str, limit: int) -> None:
        self.stats["iocs"] += 1
        owner = f"{FLOW_OWNER_PREFIX}comp:{p.name}"
        cl = f"K{next(self._ids)}"

        def take(eng: MatchingEngine) -> list:
            events = eng.new_order(owner, cl, symbol, side, p.take_qty, LIMIT,
                                   eng.instruments[symbol].to_price(limit), IOC)
            order = eng.order(owner, cl)
            if order is not None:
                self.stats["filled_qty"] += order.cum_qty
            eng.forget(owner, cl)
            return events

        self.sched.at(now + p.entry_s[venue], ("send", venue, EngineCall(venue, take)))


# ---------------------------------------------------------------- wiring and a fake-clock driver

def touched_symbols(events: list) -> list[str]:
    """Symbols whose book an engine step changed (BookTouched or a trade), in order."""
    out: list[str] = []
    for ev in events:
        symbol = getattr(ev, "symbol", None)
        if symbol is not None and type(ev).__name__ in ("BookTouched", "TradePrint") and symbol not in out:
            out.append(symbol)
    return out


def apply_call(market: Market, call: EngineCall, now: float) -> list:
    """Apply one call to its engine and report the books it changed (no FIX: tests, backtests)."""
    eng = market.engines.get(call.venue)
    if eng is None:
        return []
    events = call.fn(eng)
    for symbol in touched_symbols(events):
        market.book_changed(call.venue, symbol, now)
    return events


def drive(market: Market, clock: Any, until: float, max_steps: int = 1_000_000) -> int:
    """Run the market on a FakeClock up to ``until``; returns the number of calls applied."""
    applied = 0
    for _ in range(max_steps):
        t = market.next_time()
        if t > until:
            break
        if t > clock.now():
            clock.set(t)
        for call in market.due(clock.now()):
            apply_call(market, call, clock.now())
            applied += 1
    clock.set(max(until, clock.now()))
    return applied


def market_from_config(sim: Any, engines: dict[str, MatchingEngine], flows: dict[str, Any],
                       start: float) -> tuple[Market, list[EngineCall]]:
    """The market of one process: background flow per venue, and, when ``[market]`` is
    enabled, price formation and competitors over the venues this process runs.
    Returns the market and the calls to apply once at start (the quoters' first quotes)."""
    market = Market(engines)
    for venue, model in flows.items():
        cfg = model.cfg
        if cfg.enabled and cfg.rate_per_s > 0:
            market.add_source(BackgroundFlow(venue, model, start))
    mcfg = sim.market
    if not mcfg.enabled:
        return market, []
    venues = {v.name: v for v in sim.venues if v.name in engines}
    quoters = {name: QuoterParams(v.market.lag_us / 1e6, v.market.lag_jitter_us / 1e6, v.market.quote_qty,
                                  v.market.quote_levels, v.flow.spread_ticks)
               for name, v in venues.items() if v.market.quote}
    initial: list[EngineCall] = []
    if quoters:
        pf = PriceFormation(engines, quoters, move_rate_per_s=mcfg.move_rate_per_s,
                            max_move_ticks=mcfg.max_move_ticks, reversion=mcfg.reversion,
                            seed=mcfg.seed, start=start)
        market.add_source(pf)
        initial = pf.initial_calls()
        for venue, model in flows.items():
            if venue in quoters:
                model.reference = lambda symbol, _v=venue: pf.venue_fair(_v, symbol)
    targets = [n for n, v in venues.items() if v.market.competitors]
    if mcfg.competitors_enabled and mcfg.competitors and len(venues) > 1:
        params = [CompetitorParams(c.name, c.reaction_us / 1e6, c.reaction_jitter_us / 1e6,
                                   {v: c.venue_entry_us.get(v, c.entry_us) / 1e6 for v in targets},
                                   c.take_qty, c.min_edge_ticks, c.max_spread_ticks)
                  for c in mcfg.competitors]
        market.add_source(Competitors(engines, params, seed=mcfg.seed + 1, venues=targets))
    return market, initial
