"""Scenario generators: seeded order flow that produces what each tactic looks for (sans-IO).

Each generator is a small state machine over one or more ``MatchingEngine``s, read-only:
it looks at the engines' books and its own orders, and returns the actions to submit.
The caller applies them (``apply_actions`` here; a venue's ``apply`` under its lock in
the simulator), so execution reports and market data flow exactly as for any order.

    gen = WallScenario(cfg, seed=7, venue="ALPHA", symbol="EURUSD")
    t = gen.next_at()                      # absolute time of the next step (inf = finished)
    actions = gen.step(now, engines)       # engines: {venue name: MatchingEngine}
    events = apply_actions(engines, actions)

Generators (configs: ``configs/tactics/<tactic>-sim.toml``):
- ``WallScenario`` (liquidity_fade): an episode places a wall ``wall_qty`` at
  ``distance_ticks`` behind one side's touch, waits ``settle_s``, then pushes the price
  toward it with IOCs that take the touch level every ``approach_interval_s``. A spoof
  (probability ``1 - hold_probability``) is canceled when the touch comes within
  ``pull_distance_ticks``; a holding wall absorbs an IOC of ``absorb_qty`` at its price,
  stays ``hold_s`` and is then canceled.
- ``BurstScenario`` (momentum): after a quiet gap, ``burst_orders`` IOCs of ``burst_qty``
  on one side, ``burst_spacing_s`` apart, spread over the venues, each at the touch.
- ``DislocationScenario`` (spread_capture): one venue's price jumps: a buy sweeps its
  asks up to ``dislocation_ticks`` above another venue's ask and rests ``qty`` there as
  its bid for ``duration_s`` (about the slower venues' latency), then is canceled if
  nobody took it.

Invariants: deterministic for a seed and the same engine states; every order's owner
starts with ``flow:`` so venues treat it as background flow (no reports sent); at most
one episode in flight per generator; every resting order it places is canceled by the
end of its episode (no leaks into the book).
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Mapping

from pydantic import BaseModel, ConfigDict, Field

from gateway.core.matching.engine import BUY, DAY, IOC, LIMIT, SELL, MatchingEngine

OWNER_PREFIX = "flow:scn-"


@dataclass(frozen=True, slots=True)
class Submit:
    venue: str
    owner: str
    cl_ord_id: str
    symbol: str
    side: str
    qty: int
    price: float
    tif: str
    tag: str = ""           # what the order is for (wall, approach, absorb, burst, dislocation)


@dataclass(frozen=True, slots=True)
class Pull:
    venue: str
    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str
    tag: str = ""


Action = Submit | Pull


def apply_actions(engines: Mapping[str, MatchingEngine], actions: list[Action]) -> dict[str, list]:
    """Apply actions to their venues' engines; the engine events per venue, in order."""
    out: dict[str, list] = {}
    for a in actions:
        eng = engines[a.venue]
        if isinstance(a, Submit):
            ev = eng.new_order(a.owner, a.cl_ord_id, a.symbol, a.side, a.qty, LIMIT, a.price, a.tif)
        else:
            ev = eng.cancel(a.owner, a.cl_ord_id, a.orig_cl_ord_id)
        out.setdefault(a.venue, []).extend(ev)
    return out


def actions_for(venue: str, actions: list[Action]) -> list[Action]:
    return [a for a in actions if a.venue == venue]


class _Base:
    """Ids, owner, seeded rng and the schedule shared by the generators."""

    def __init__(self, name: str, seed: int, start_at: float) -> None:
        self.rng = random.Random(seed)
        self.owner = f"{OWNER_PREFIX}{name}"
        self._ids = itertools.count(1)
        self._name = name
        self._next = start_at
        self.episodes = 0
        self.log: list[dict] = []          # one record per episode (what happened), for tests/reports

    def next_at(self) -> float:
        return self._next

    def _id(self) -> str:
        return f"{self._name}{next(self._ids)}"

    def _submit(self, venue, symbol, side, qty, price, tif, tag) -> Submit:
        return Submit(venue, self.owner, self._id(), symbol, side, int(qty), price, tif, tag)

    def _pull(self, venue, orig, tag) -> Pull:
        return Pull(venue, self.owner, self._id(), orig, tag)

    def _resting(self, eng: MatchingEngine, cl: str) -> bool:
        o = eng.order(self.owner, cl)
        return o is not None and not o.done


# ---------------------------------------------------------------------------- walls

class WallScenarioConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    gap_s: float = Field(2.0, gt=0)                # mean quiet time between episodes (exponential)
    wall_qty: int = Field(5000, ge=1)
    distance_ticks: int = Field(3, ge=1)
    settle_s: float = Field(1.0, ge=0)             # the wall rests this long before the approach
    approach_interval_s: float = Field(0.1, gt=0)
    hold_probability: float = Field(0.5, ge=0, le=1)
    pull_distance_ticks: int = Field(1, ge=0)
    absorb_qty: int = Field(1000, ge=0)
    hold_s: float = Field(1.0, ge=0)
    max_approach_steps: int = Field(50, ge=1)      # background flow may refill faster than we push


class WallScenario(_Base):
    def __init__(self, cfg: WallScenarioConfig, seed: int, venue: str, symbol: str, start_at: float = 0.0) -> None:
        super().__init__("wall", seed, start_at + cfg.gap_s)
        self.cfg, self.venue, self.symbol = cfg, venue, symbol
        self.phase = "idle"
        self.wall: dict | None = None

    def step(self, now: float, engines: Mapping[str, MatchingEngine]) -> list[Action]:
        eng = engines[self.venue]
        handler = getattr(self, f"_{self.phase}")
        return handler(now, eng)

    def _idle(self, now: float, eng: MatchingEngine) -> list[Action]:
        side = BUY if self.rng.random() < 0.5 else SELL
        hold = self.rng.random() < self.cfg.hold_probability
        touch = eng.best_bid(self.symbol) if side == BUY else eng.best_ask(self.symbol)
        if touch is None:
            self._next = now + self.cfg.gap_s
            return []
        px = touch - self.cfg.distance_ticks if side == BUY else touch + self.cfg.distance_ticks
        if px <= 0:
            self._next = now + self.cfg.gap_s
            return []
        order = self._submit(self.venue, self.symbol, side, self.cfg.wall_qty, self._px(eng, px), DAY, "wall")
        self.wall = {"cl": order.cl_ord_id, "side": side, "ticks": px, "hold": hold, "placed_at": now, "steps": 0}
        self.log.append({"kind": "hold" if hold else "spoof", "side": side, "price": order.price,
                         "placed_at": now, "outcome": None})
        self.episodes += 1
        self.phase = "approach"
        self._next = now + self.cfg.settle_s
        return [order]

    def _approach(self, now: float, eng: MatchingEngine) -> list[Action]:
        w = self.wall
        touch = eng.best_bid(self.symbol) if w["side"] == BUY else eng.best_ask(self.symbol)
        if not self._resting(eng, w["cl"]):          # someone else took or broke it
            return self._end(now, "wall gone")
        dist = abs(touch - w["ticks"]) if touch is not None else 0
        w["steps"] += 1
        if w["steps"] > self.cfg.max_approach_steps:   # the price never came: retire the wall
            return self._end(now, "not reached", [self._pull(self.venue, w["cl"], "retire")])
        if not w["hold"] and dist <= self.cfg.pull_distance_ticks:
            return self._end(now, "pulled", [self._pull(self.venue, w["cl"], "pull")])
        self._next = now + self.cfg.approach_interval_s
        if dist == 0:                                # at the wall: it absorbs, then rests
            self.phase = "rest"
            self._next = now + self.cfg.hold_s
            if self.cfg.absorb_qty <= 0:
                return []
            return [self._take(eng, w["side"], w["ticks"], self.cfg.absorb_qty, "absorb")]
        qty = dict(eng.levels(self.symbol, w["side"], 1)).get(touch, 0)
        return [self._take(eng, w["side"], touch, qty, "approach")] if qty else []

    def _rest(self, now: float, eng: MatchingEngine) -> list[Action]:
        w = self.wall
        pulls = [self._pull(self.venue, w["cl"], "retire")] if self._resting(eng, w["cl"]) else []
        return self._end(now, "held", pulls)

    def _take(self, eng: MatchingEngine, wall_side: str, level: int, qty: int, tag: str) -> Submit:
        """An IOC hitting the wall's side at ``level`` (a sell into bids, a buy into asks)."""
        side = SELL if wall_side == BUY else BUY
        return self._submit(self.venue, self.symbol, side, qty, self._px(eng, level), IOC, tag)

    def _end(self, now: float, outcome: str, actions: list[Action] | None = None) -> list[Action]:
        self.log[-1]["outcome"] = outcome
        self.log[-1]["ended_at"] = now
        self.phase, self.wall = "idle", None
        self._next = now + self.rng.expovariate(1.0 / self.cfg.gap_s)
        return actions or []

    def _px(self, eng: MatchingEngine, ticks: int) -> float:
        return eng.instruments[self.symbol].to_price(ticks)


# ---------------------------------------------------------------------------- bursts

class BurstScenarioConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    gap_s: float = Field(3.0, gt=0)
    burst_orders: int = Field(8, ge=1)
    burst_qty: int = Field(200, ge=1)
    burst_spacing_s: float = Field(0.02, gt=0)
    through_ticks: int = Field(1, ge=0)


class BurstScenario(_Base):
    def __init__(self, cfg: BurstScenarioConfig, seed: int, venues: list[str], symbol: str,
                 start_at: float = 0.0) -> None:
        super().__init__("burst", seed, start_at + cfg.gap_s)
        self.cfg, self.venues, self.symbol = cfg, list(venues), symbol
        self.left = 0
        self.side = BUY

    def step(self, now: float, engines: Mapping[str, MatchingEngine]) -> list[Action]:
        if self.left == 0:        # a new burst starts
            self.side = BUY if self.rng.random() < 0.5 else SELL
            self.left = self.cfg.burst_orders
            self.episodes += 1
            self.log.append({"kind": "burst", "side": self.side, "started_at": now, "orders": 0})
        venue = self.venues[self.rng.randrange(len(self.venues))]
        eng = engines[venue]
        touch = eng.best_ask(self.symbol) if self.side == BUY else eng.best_bid(self.symbol)
        self.left -= 1
        self._next = now + (self.cfg.burst_spacing_s if self.left else self.rng.expovariate(1.0 / self.cfg.gap_s))
        if touch is None:
            return []
        px = touch + self.cfg.through_ticks if self.side == BUY else max(1, touch - self.cfg.through_ticks)
        self.log[-1]["orders"] += 1
        return [self._submit(venue, self.symbol, self.side, self.cfg.burst_qty,
                             eng.instruments[self.symbol].to_price(px), IOC, "burst")]


# ---------------------------------------------------------------------------- dislocations

class DislocationScenarioConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    gap_s: float = Field(2.0, gt=0)
    dislocation_ticks: int = Field(2, ge=1)
    qty: int = Field(200, ge=1)
    duration_s: float = Field(0.002, gt=0)          # about the slower venues' round trip


class DislocationScenario(_Base):
    def __init__(self, cfg: DislocationScenarioConfig, seed: int, venues: list[str], symbol: str,
                 start_at: float = 0.0) -> None:
        if len(venues) < 2:
            raise ValueError("venues: a dislocation needs at least two venues")
        super().__init__("disl", seed, start_at + cfg.gap_s)
        self.cfg, self.venues, self.symbol = cfg, list(venues), symbol
        self.open: tuple[str, str] | None = None     # (venue, cl_ord_id) of the resting dislocated quote

    def step(self, now: float, engines: Mapping[str, MatchingEngine]) -> list[Action]:
        if self.open is not None:
            venue, cl = self.open
            self.open = None
            self._next = now + self.rng.expovariate(1.0 / self.cfg.gap_s)
            taken = not self._resting(engines[venue], cl)
            self.log[-1]["outcome"] = "taken" if taken else "expired"
            return [] if taken else [self._pull(venue, cl, "expire")]
        hi, lo = self.rng.sample(self.venues, 2)     # hi's bid goes above lo's ask
        ask = engines[lo].best_ask(self.symbol)
        if ask is None:
            self._next = now + self.cfg.gap_s
            return []
        px = ask + self.cfg.dislocation_ticks
        # hi's own asks up to px are swept first (the lead venue's price jumps), and the
        # remainder rests as hi's new bid, above lo's ask: the dislocation.
        swept = sum(q for p, q in engines[hi].levels(self.symbol, SELL) if p <= px)
        order = self._submit(hi, self.symbol, BUY, swept + self.cfg.qty,
                             engines[hi].instruments[self.symbol].to_price(px), DAY, "dislocation")
        self.open = (hi, order.cl_ord_id)
        self.episodes += 1
        self.log.append({"kind": "dislocation", "bid_venue": hi, "ask_venue": lo, "bid": order.price,
                         "started_at": now, "outcome": None})
        self._next = now + self.cfg.duration_s
        return [order]


# ---------------------------------------------------------------------------- files

class ScenarioFile(BaseModel):
    """``configs/tactics/<tactic>-sim.toml``: where to run, the seed, and the ``[scenario]`` table."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    venue: str | None = None
    venues: list[str] = Field(default_factory=list)
    symbol: str
    seed: int = 0
    scenario: dict = Field(default_factory=dict)


def build_scenario(tactic: str, f: ScenarioFile, start_at: float = 0.0) -> _Base:
    """The generator for ``tactic`` from its scenario file (config errors name the field)."""
    if tactic == "liquidity_fade":
        if not f.venue:
            raise ValueError("venue: required for the wall scenario")
        return WallScenario(WallScenarioConfig(**f.scenario), f.seed, f.venue, f.symbol, start_at)
    if tactic == "momentum":
        return BurstScenario(BurstScenarioConfig(**f.scenario), f.seed, f.venues, f.symbol, start_at)
    if tactic == "spread_capture":
        return DislocationScenario(DislocationScenarioConfig(**f.scenario), f.seed, f.venues, f.symbol, start_at)
    raise ValueError(f"tactic: no scenario for {tactic!r} (liquidity_fade, momentum, spread_capture)")
