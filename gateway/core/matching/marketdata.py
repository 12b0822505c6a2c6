"""Market-data subscriptions, sans-IO: snapshots and per-step incremental diffs.

A subscription remembers the top-N levels it last published per symbol and side; after
each engine step it yields the level changes (279 0 new / 1 change / 2 delete) plus the
trades of that step, which the FIX adapter packs into one X message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from gateway.core.matching.engine import BUY, SELL, MatchingEngine

# MDEntryType (269) / MDUpdateAction (279)
BID: Final = "0"
OFFER: Final = "1"
TRADE: Final = "2"
MD_NEW: Final = "0"
MD_CHANGE: Final = "1"
MD_DELETE: Final = "2"


@dataclass(slots=True)
class MDEntry:
    action: str | None      # None in snapshots
    entry_type: str
    symbol: str
    price: float
    qty: float | None       # None for deletes


@dataclass
class Subscription:
    req_id: str
    symbols: list[str]
    depth: int              # 0 = full book
    # symbol -> (bids {ticks: qty}, asks {ticks: qty}) as last published
    last: dict[str, tuple[dict[int, int], dict[int, int]]] = field(default_factory=dict)

    def snapshot(self, engine: MatchingEngine, symbol: str) -> list[MDEntry]:
        """Full refresh entries (bids best first, then offers, then the last trade)."""
        inst = engine.instruments[symbol]
        bids = engine.levels(symbol, BUY, self.depth)
        asks = engine.levels(symbol, SELL, self.depth)
        self.last[symbol] = (dict(bids), dict(asks))
        out = [MDEntry(None, BID, symbol, inst.to_price(p), q) for p, q in bids]
        out += [MDEntry(None, OFFER, symbol, inst.to_price(p), q) for p, q in asks]
        if symbol in engine.last_trade:
            px, qty = engine.last_trade[symbol]
            out.append(MDEntry(None, TRADE, symbol, px, qty))
        return out

    def update(self, engine: MatchingEngine, symbol: str) -> list[MDEntry]:
        """Level changes since the last publication (and remember the new state)."""
        inst = engine.instruments[symbol]
        old_bids, old_asks = self.last.get(symbol, ({}, {}))
        new_bids = dict(engine.levels(symbol, BUY, self.depth))
        new_asks = dict(engine.levels(symbol, SELL, self.depth))
        self.last[symbol] = (new_bids, new_asks)
        out: list[MDEntry] = []
        for entry_type, old, new in ((BID, old_bids, new_bids), (OFFER, old_asks, new_asks)):
            for p in old.keys() - new.keys():
                out.append(MDEntry(MD_DELETE, entry_type, symbol, inst.to_price(p), None))
            for p, q in new.items():
                before = old.get(p)
                if before is None:
                    out.append(MDEntry(MD_NEW, entry_type, symbol, inst.to_price(p), q))
                elif before != q:
                    out.append(MDEntry(MD_CHANGE, entry_type, symbol, inst.to_price(p), q))
        return out
