"""Liquidity fading: find large resting orders near the touch, tell walls from spoofs, fade toward walls.

Detection (per venue, on each of its book updates): a level among the top ``depth_levels``
of a side, within ``near_ticks`` of that side's touch, whose quantity is at least
``wall_multiple`` times the typical level (the median of the top levels of both sides)
and at least ``min_wall_qty``, is a wall candidate. Each is tracked by (venue, side, price).

Classification by behaviour:
- **spoof** (sticky for the price): the level stopped qualifying while it was within
  ``pull_distance_ticks`` of the touch and the trades printed at that price since the
  previous update do not explain the drop (it was pulled as the price approached); or it
  vanished and came back more than ``max_flickers`` times (refreshing on and off);
- **broken**: it stopped qualifying because it was traded away (a real order that lost);
- **wall**: present for at least ``min_lifetime_s`` without any of the above;
- otherwise **candidate** (too young to judge).

Fading: when the venue's touch on the wall's side is within ``trigger_ticks`` of a
**wall** and has come closer than when the wall was first seen (the price is moving
toward it), trade against the move: a bid wall -> buy at the consolidated ask, an ask
wall -> sell at the bid; one IOC. The stop sits ``stop_beyond_wall_ticks`` beyond the wall
(the wall broke: the idea is wrong) or at ``exits.stop_ticks``, whichever the exit touch
meets first; the target is ``exits.target_ticks``. A position whose wall is pulled or
broken while held exits at once (``wall_pulled`` / ``wall_broken``). Each wall is faded
at most once. Deterministic, no clock reads.
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from gateway.core.book import BID, OFFER, L2Book
from gateway.core.strategies.base import BUY, SELL, BookUpdated, Command, MarketView, TradePrinted
from gateway.core.strategies.config import LiquidityFadeConfig
from gateway.core.strategies.tactic import RoundTripTactic
from gateway.core.strategies.touch import best_ask, best_bid, on_grid, to_ticks


@dataclass(slots=True)
class Wall:
    venue: str
    symbol: str
    side: str                # BID / OFFER (book side)
    price: float
    since: float             # start of the current presence
    first_dist: float        # ticks from its side's touch when first seen
    qty: float
    present: bool = True
    min_dist: float = 0.0
    flickers: int = 0
    status: str = "candidate"    # candidate / wall / spoof / broken / gone
    faded: bool = False
    trip_id: str | None = None


class LiquidityFade(RoundTripTactic):
    def __init__(self, cfg: LiquidityFadeConfig) -> None:
        super().__init__(cfg, {"walls_seen": 0, "spoofs": 0, "held": 0, "broken": 0, "fades": 0})
        self.walls: dict[tuple[str, str, str, float], Wall] = {}
        self._traded: dict[tuple[str, str, float], float] = {}   # qty printed per price since the last book update

    # ------------------------------------------------------------------ Strategy
    def on_book(self, ev: BookUpdated, market: MarketView) -> list[Command]:
        if ev.symbol not in self._symbols:
            return []
        book = market.book(ev.venue, ev.symbol)
        out: list[Command] = []
        if book is not None and not book.stale:
            out += self._track(ev.venue, ev.symbol, book, ev.at, market)
        out += self.trips.on_market(ev.at, market, ev.symbol)
        if book is not None and not book.stale:
            out += self._maybe_fade(ev.venue, ev.symbol, book, ev.at, market)
        return out

    def on_trade(self, ev: TradePrinted, market: MarketView) -> list[Command]:
        if ev.symbol in self._symbols:
            key = (ev.venue, ev.symbol, round(ev.price, 10))
            self._traded[key] = self._traded.get(key, 0.0) + ev.qty
        return []

    def classify(self, wall: Wall, now: float) -> str:
        if wall.status in ("spoof", "broken"):
            return wall.status
        if wall.present and now - wall.since >= self.cfg.min_lifetime_s - 1e-12:
            return "wall"
        return "candidate" if wall.present else "gone"

    def extra_stats(self) -> dict:
        return {"walls_tracked": len(self.walls)}

    # ------------------------------------------------------------------ wall tracking
    def _track(self, venue: str, symbol: str, book: L2Book, now: float, market: MarketView) -> list[Command]:
        tick = market.tick_size(symbol)
        c = self.cfg
        levels = {BID: book.levels(BID, c.depth_levels), OFFER: book.levels(OFFER, c.depth_levels)}
        sizes = [q for side in levels.values() for _, q in side]
        if len(sizes) < 2:
            return []
        threshold = max(c.wall_multiple * median(sizes), c.min_wall_qty)
        seen: set[tuple] = set()
        for side, lv in levels.items():
            if not lv:
                continue
            touch = lv[0][0]
            for px, qty in lv:
                dist = abs(to_ticks(touch - px, tick))
                if dist > c.near_ticks or qty < threshold:
                    continue
                key = (venue, symbol, side, round(px, 10))
                seen.add(key)
                self._seen_wall(key, side, px, qty, dist, now)
        out: list[Command] = []
        for key, wall in list(self.walls.items()):
            if key[0] == venue and key[1] == symbol and wall.present and key not in seen:
                out += self._lost_wall(wall, book, tick, now, market)
        self._traded = {k: v for k, v in self._traded.items() if not (k[0] == venue and k[1] == symbol)}
        self._bound_memory()
        return out

    def _seen_wall(self, key: tuple, side: str, px: float, qty: float, dist: float, now: float) -> None:
        wall = self.walls.get(key)
        if wall is None:
            self.walls[key] = Wall(venue=key[0], symbol=key[1], side=side, price=px, since=now, first_dist=dist,
                                   qty=qty, min_dist=dist)
            self.counts["walls_seen"] += 1
            return
        if not wall.present:       # it came back: a refresh of the level
            wall.present, wall.since, wall.flickers = True, now, wall.flickers + 1
            if wall.flickers > self.cfg.max_flickers and wall.status != "spoof":
                self._mark(wall, "spoof")
        wall.qty = qty
        wall.min_dist = min(wall.min_dist, dist)
        if self.classify(wall, now) == "wall" and wall.status == "candidate":
            self._mark(wall, "wall")

    def _lost_wall(self, wall: Wall, book: L2Book, tick: float, now: float, market: MarketView) -> list[Command]:
        """The wall stopped qualifying: traded away (broken) or pulled near the touch (spoof)."""
        wall.present = False
        traded = self._traded.get((wall.venue, wall.symbol, round(wall.price, 10)), 0.0)
        remaining = dict(book.levels(wall.side)).get(wall.price, 0.0)
        touch = book.best_bid() if wall.side == BID else book.best_ask()
        through = touch is not None and (touch[0] < wall.price - 1e-12 if wall.side == BID
                                         else touch[0] > wall.price + 1e-12)
        dist = abs(to_ticks(touch[0] - wall.price, tick)) if touch is not None else 0.0
        if through or (traded > 0 and traded >= 0.5 * (wall.qty - remaining)):
            self._mark(wall, "broken")
            reason = "wall_broken"
        elif min(dist, wall.min_dist) <= self.cfg.pull_distance_ticks:
            self._mark(wall, "spoof")
            reason = "wall_pulled"
        else:
            wall.status = "gone" if wall.status != "spoof" else wall.status
            reason = "wall_pulled"
        if wall.trip_id is not None:
            return self.trips.request_exit(wall.trip_id, reason, now, market)
        return []

    def _mark(self, wall: Wall, status: str) -> None:
        if wall.status == status:
            return
        wall.status = status
        if status in ("spoof", "broken"):
            self.counts["spoofs" if status == "spoof" else "broken"] += 1
        elif status == "wall":
            self.counts["held"] += 1

    def _bound_memory(self) -> None:
        excess = len(self.walls) - self.cfg.max_walls_tracked
        if excess > 0:
            # the oldest absent walls go first; present ones are what we trade on
            gone = sorted((w.since, k) for k, w in self.walls.items() if not w.present)[:excess]
            for _, k in gone:
                del self.walls[k]

    # ------------------------------------------------------------------ fading
    def _maybe_fade(self, venue: str, symbol: str, book: L2Book, now: float, market: MarketView) -> list[Command]:
        tick = market.tick_size(symbol)
        for key, wall in self.walls.items():
            if key[0] != venue or key[1] != symbol or wall.faded or self.classify(wall, now) != "wall":
                continue
            touch = book.best_bid() if wall.side == BID else book.best_ask()
            if touch is None:
                continue
            dist = abs(to_ticks(touch[0] - wall.price, tick))
            if dist <= self.cfg.trigger_ticks and dist < wall.first_dist and not self.trips.busy(symbol):
                return self._fade(wall, dist, now, market, tick)
        return []

    def _fade(self, wall: Wall, dist: float, now: float, market: MarketView, tick: float) -> list[Command]:
        side = BUY if wall.side == BID else SELL
        q = best_ask(market, wall.symbol) if side == BUY else best_bid(market, wall.symbol)
        if q is None:
            return []
        beyond = self.cfg.stop_beyond_wall_ticks * tick
        stop_px = on_grid(wall.price - beyond if side == BUY else wall.price + beyond, tick)
        wall.faded = True
        self.counts["fades"] += 1
        detail = {"signal": "fade", "wall_venue": wall.venue, "wall_px": wall.price, "wall_qty": wall.qty,
                  "wall_age_s": round(now - wall.since, 6), "distance_ticks": dist, "flickers": wall.flickers}
        cmds = self.trips.open_single(symbol=wall.symbol, side=side, qty=self.cfg.qty, price=q.price, tick=tick,
                                      signal_at=now, signal_px=q.price, detail=detail, stop_px=stop_px)
        if cmds:
            wall.trip_id = self.trips.trips[-1].trip_id
        return cmds
