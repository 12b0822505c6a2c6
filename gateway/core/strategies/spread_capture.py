"""Cross-venue spread capture: sell where the bid is high, buy where the ask is low, at once.

Model: for every ordered pair of live venues (S, B) of a traded symbol, the edge is
``S.bid - B.ask`` in ticks. It is worth taking only when
    edge > 2 * fee_ticks_per_leg + base_margin_ticks + margin_ticks_per_ms * slower_rtt_ms
where ``slower_rtt_ms`` is the larger of the two venues' live round trips: the longer an
order is on its way, the likelier the quote it aims at is gone (a latency-adjusted risk
margin). An unknown RTT (inf) never qualifies. The best qualifying pair is taken with
two IOCs sent together, each pinned to its venue, of ``min(qty, S.bid qty, B.ask qty)``.

Both legs are one multi-leg ``RoundTrip``: when both fill the trip closes flat with the
captured spread as PnL; when a leg misses (or fills partly) the residual is a legging
incident and is unwound at once through the exit ladder (exit reason ``unwind``); its
loss is reported as legging loss. One pair per symbol in flight; ``cooldown_s`` between
pairs. Deterministic, no clock reads.
"""
from __future__ import annotations

from math import floor, isfinite
from typing import Any

from gateway.core.strategies.base import BUY, SELL, BookUpdated, Command, MarketView
from gateway.core.strategies.config import SpreadCaptureConfig
from gateway.core.strategies.tactic import RoundTripTactic
from gateway.core.strategies.touch import live_books, to_ticks


class SpreadCapture(RoundTripTactic):
    def __init__(self, cfg: SpreadCaptureConfig) -> None:
        super().__init__(cfg, {"crossed_seen": 0, "below_threshold": 0, "pairs_sent": 0, "skipped_busy": 0,
                               "skipped_cooldown": 0})
        self._last_entry: dict[str, float] = {}

    # ------------------------------------------------------------------ Strategy
    def on_book(self, ev: BookUpdated, market: MarketView) -> list[Command]:
        if ev.symbol not in self._symbols:
            return []
        out = self.trips.on_market(ev.at, market, ev.symbol)
        opp = self.opportunity(ev.symbol, market)
        if opp is not None:
            out += self._enter(ev.symbol, opp, ev.at, market)
        return out

    # ------------------------------------------------------------------ opportunity
    def required_edge_ticks(self, rtt_a_us: float, rtt_b_us: float) -> float:
        slower = max(rtt_a_us, rtt_b_us)
        if not isfinite(slower):
            return float("inf")
        c = self.cfg
        return 2 * c.fee_ticks_per_leg + c.base_margin_ticks + c.margin_ticks_per_ms * slower / 1000.0

    def opportunity(self, symbol: str, market: MarketView) -> dict | None:
        """The best qualifying (sell venue, buy venue) pair, or None."""
        tick = market.tick_size(symbol)
        tops = []
        for venue, book in live_books(market, symbol):
            tops.append((venue, book.best_bid(), book.best_ask()))
        best: dict[str, Any] | None = None
        crossed = False
        for sv, bid, _ in tops:
            for bv, _, ask in tops:
                if sv == bv or bid is None or ask is None:
                    continue
                edge = to_ticks(bid[0] - ask[0], tick)
                if edge <= 0:
                    continue
                crossed = True
                need = self.required_edge_ticks(market.rtt_us(sv), market.rtt_us(bv))
                if edge <= need + 1e-9:
                    continue
                if best is None or edge - need > best["excess_ticks"]:
                    best = {"sell_venue": sv, "sell_px": bid[0], "sell_qty": bid[1], "buy_venue": bv,
                            "buy_px": ask[0], "buy_qty": ask[1], "edge_ticks": edge,
                            "required_ticks": round(need, 6), "excess_ticks": round(edge - need, 6)}
        if crossed:
            self.counts["crossed_seen"] += 1
            if best is None:
                self.counts["below_threshold"] += 1
        return best

    def _enter(self, symbol: str, opp: dict, now: float, market: MarketView) -> list[Command]:
        if self.trips.busy(symbol):
            self.counts["skipped_busy"] += 1
            return []
        if now - self._last_entry.get(symbol, float("-inf")) < self.cfg.cooldown_s:
            self.counts["skipped_cooldown"] += 1
            return []
        qty = float(floor(min(self.cfg.qty, opp["sell_qty"], opp["buy_qty"])))
        if qty < self.cfg.min_qty:
            return []
        self._last_entry[symbol] = now
        self.counts["pairs_sent"] += 1
        legs = [(SELL, qty, opp["sell_px"], opp["sell_venue"], opp["sell_px"]),
                (BUY, qty, opp["buy_px"], opp["buy_venue"], opp["buy_px"])]
        return self.trips.open_legs(symbol=symbol, legs=legs, tick=market.tick_size(symbol), signal_at=now,
                                    reason="leg", detail={"signal": "cross_venue", **opp})
