"""Hand-built market states for the router tests (fake clock, fake sender, raw FIX text)."""
from __future__ import annotations

from gateway.common.clock import FakeClock
from gateway.core.market import MarketState
from gateway.core.model import BUY, IOC, LIMIT, OrderIntent
from gateway.core.router.config import RoutingConfig

SOH = "\x01"


def fix(*pairs) -> str:
    """Raw FIX text from (tag, value) pairs (only what MarketState reads)."""
    return "".join(f"{t}={v}{SOH}" for t, v in pairs)


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[tuple] = []
        self.ok = True

    def __call__(self, session_id, msg_type, fields, groups) -> bool:
        self.sent.append((session_id, msg_type, fields, groups))
        return self.ok

    def of_type(self, msg_type: str) -> list[tuple]:
        return [s for s in self.sent if s[1] == msg_type]


def make_market(venues=("ALPHA", "BRAVO", "CHARLIE"), **cfg_kw):
    cfg = RoutingConfig(**cfg_kw)
    clock = FakeClock(1000.0)
    sender = FakeSender()
    market = MarketState(cfg, clock, sender)
    for v in venues:
        market.register_venue(v)
    return cfg, clock, sender, market


def up(market: MarketState, venue: str, rtt_us: float | None = None, samples: int = 5) -> None:
    """Log a venue on and give it RTT samples straight into its estimator."""
    market.on_venue_up(venue, f"sess-{venue}")
    if rtt_us is not None:
        for _ in range(samples):
            market.venues[venue].lat.add(rtt_us / 1e6)


def snapshot(market: MarketState, venue: str, symbol: str, bids, asks) -> None:
    pairs = [(35, "W"), (55, symbol), (268, len(bids) + len(asks))]
    for px, q in bids:
        pairs += [(269, "0"), (270, px), (271, q)]
    for px, q in asks:
        pairs += [(269, "1"), (270, px), (271, q)]
    assert market.on_venue_app(venue, fix(*pairs), "W")


def incremental(market: MarketState, venue: str, symbol: str, entries) -> None:
    """entries: (action, side, px, qty)."""
    pairs = [(35, "X"), (268, len(entries))]
    for action, side, px, q in entries:
        pairs += [(279, action), (269, side), (270, px)]
        if q is not None:
            pairs.append((271, q))
        pairs.append((55, symbol))
    assert market.on_venue_app(venue, fix(*pairs), "X")


def intent(qty=100.0, price=1.10010, side=BUY, tif=IOC, ord_type=LIMIT, symbol="EURUSD", ex=None, session="OMS1"):
    return OrderIntent(session, "C1", symbol, side, qty, ord_type, price, tif, ex)
