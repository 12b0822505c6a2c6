"""The consolidated touch across venues, read from a ``MarketView`` (sans-IO helpers).

The best bid is the highest bid over every venue whose book is live (not stale); its
quantity is the sum of the bids at that price over those venues, and ``venues`` lists
them. Same for the ask. Stale books are left out on purpose: a price a strategy cannot
trust must not trigger or price an order.
"""
from __future__ import annotations

from dataclasses import dataclass

from gateway.core.book import L2Book
from gateway.core.strategies.base import BUY, MarketView

_EPS = 1e-9


@dataclass(slots=True, init=False)
class Quote:
    """The best price of one side across venues (made per entry: a hand-written ``__init__``, native
    when compiled; see gateway/core/model.py). Not frozen: a frozen dataclass sets each field through
    ``object.__setattr__``; nothing here changes a Quote after making it."""
    price: float
    qty: float                  # summed over the venues at this price
    venues: tuple[str, ...]     # the venues showing it, in MarketView order

    def __init__(self, price: float, qty: float, venues: tuple[str, ...]) -> None:
        self.price = price
        self.qty = qty
        self.venues = venues


def live_books(market: MarketView, symbol: str) -> list[tuple[str, L2Book]]:
    out = []
    for venue in market.venues():
        book = market.book(venue, symbol)
        if book is not None and not book.stale:
            out.append((venue, book))
    return out


def best_bid(market: MarketView, symbol: str) -> Quote | None:
    return _best(market, symbol, bid=True)


def best_ask(market: MarketView, symbol: str) -> Quote | None:
    return _best(market, symbol, bid=False)


def touch_for(market: MarketView, symbol: str, order_side: str) -> Quote | None:
    """The price an order of ``order_side`` takes at once: the ask for a buy, the bid for a sell."""
    return best_ask(market, symbol) if order_side == BUY else best_bid(market, symbol)


def exit_touch(market: MarketView, symbol: str, position_side: str) -> Quote | None:
    """The price a position closes at: the bid for a long, the ask for a short."""
    return best_bid(market, symbol) if position_side == BUY else best_ask(market, symbol)


def _best(market: MarketView, symbol: str, bid: bool) -> Quote | None:
    return best_of(live_books(market, symbol), bid)


def best_of(books: list[tuple[str, L2Book]], bid: bool) -> Quote | None:
    """``best_bid`` / ``best_ask`` over books already read (``live_books``): a caller that needs
    several touches of one symbol reads the market once."""
    best_px: float | None = None
    qty = 0.0
    venues: list[str] = []
    for venue, book in books:
        top = book.best_bid() if bid else book.best_ask()
        if top is None:
            continue
        px, q = top
        better = best_px is None or (px > best_px + _EPS if bid else px < best_px - _EPS)
        if better:
            best_px, qty, venues = px, q, [venue]
        elif best_px is not None and abs(px - best_px) <= _EPS:    # (never None here: narrowed for mypy)
            qty += q
            venues.append(venue)
    if best_px is None:
        return None
    return Quote(best_px, qty, tuple(venues))


def to_ticks(price_diff: float, tick: float) -> float:
    """A price difference in ticks, rounded so float noise never shows as 0.9999999 ticks."""
    return round(price_diff / tick, 6)


def on_grid(price: float, tick: float) -> float:
    return round(round(price / tick) * tick, 10)
