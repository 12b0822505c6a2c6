"""Per-venue L2 books and the consolidated touch, built from W/X messages (no I/O).

The client reads the simulator's market data itself (a CLIENT session per venue), so
the signal comes from the market, not from the gateway. Messages are parsed from their
raw SOH-separated text: faster than walking quickfix groups field by field, and the
same code is driven by hand-made strings in the tests.
"""
from __future__ import annotations

from dataclasses import dataclass

from gateway.fix.quickfix_backend import field_pairs as parse_fields  # noqa: F401 - '8=..^A' -> [(8, ..)], used here and by the client

BID, OFFER = "0", "1"
NEW, CHANGE, DELETE = "0", "1", "2"


def md_entries(fields: list[tuple[int, str]]) -> tuple[str | None, list[dict[int, str]]]:
    """The message-level Symbol(55) and the NoMDEntries(268) group entries as dicts.

    An entry starts at the first tag seen after 268 (269 in W, 279 in X).
    """
    symbol: str | None = None
    entries: list[dict[int, str]] = []
    delimiter: int | None = None
    in_group = False
    for tag, value in fields:
        if tag == 10:
            break
        if tag == 268:
            in_group = True
            continue
        if not in_group:
            if tag == 55:
                symbol = value
            continue
        if delimiter is None:
            delimiter = tag
        if tag == delimiter or not entries:
            entries.append({})
        entries[-1][tag] = value
    return symbol, entries


class VenueBook:
    """Price levels of one venue and symbol: {price: qty} per side."""

    __slots__ = ("bids", "asks")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def side(self, entry_type: str) -> dict[float, float]:
        return self.bids if entry_type == BID else self.asks

    def best_bid(self) -> tuple[float, float] | None:
        if not self.bids:
            return None
        px = max(self.bids)
        return px, self.bids[px]

    def best_ask(self) -> tuple[float, float] | None:
        if not self.asks:
            return None
        px = min(self.asks)
        return px, self.asks[px]

    def depth(self) -> tuple[float, float]:
        return sum(self.bids.values()), sum(self.asks.values())


@dataclass(frozen=True, slots=True)
class Touch:
    """The consolidated best bid and offer across venues for one symbol."""
    bid: float
    bid_qty: float
    bid_venue: str
    ask: float
    ask_qty: float
    ask_venue: str

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2

    def key(self) -> tuple[float, float]:
        return self.bid, self.ask


class MarketView:
    """Books per (venue, symbol), fed with W and X; answers the consolidated touch."""

    def __init__(self) -> None:
        self.books: dict[tuple[str, str], VenueBook] = {}
        self.updates = 0

    def book(self, venue: str, symbol: str) -> VenueBook:
        key = (venue, symbol)
        book = self.books.get(key)
        if book is None:
            book = self.books[key] = VenueBook()
        return book

    def on_message(self, venue: str, msg_type: str, raw: str) -> set[str]:
        """Apply a W (snapshot) or X (incremental); return the symbols whose book changed."""
        symbol, entries = md_entries(parse_fields(raw))
        if msg_type == "W":
            return self.apply_snapshot(venue, symbol, entries)
        if msg_type == "X":
            return self.apply_incremental(venue, symbol, entries)
        return set()

    def apply_snapshot(self, venue: str, symbol: str | None, entries: list[dict[int, str]]) -> set[str]:
        if symbol is None:
            return set()
        book = self.book(venue, symbol)
        book.bids.clear()
        book.asks.clear()
        for e in entries:
            kind = e.get(269)
            if kind in (BID, OFFER) and 270 in e:
                book.side(kind)[float(e[270])] = float(e.get(271, 0) or 0)
        self.updates += 1
        return {symbol}

    def apply_incremental(self, venue: str, default_symbol: str | None,
                          entries: list[dict[int, str]]) -> set[str]:
        changed: set[str] = set()
        for e in entries:
            kind = e.get(269)
            symbol = e.get(55, default_symbol)
            if kind not in (BID, OFFER) or symbol is None or 270 not in e:
                continue  # trades (269=2) do not change the book
            levels = self.book(venue, symbol).side(kind)
            px = float(e[270])
            if e.get(279) == DELETE:
                levels.pop(px, None)
            else:
                qty = float(e.get(271, 0) or 0)
                if qty > 0:
                    levels[px] = qty
                else:
                    levels.pop(px, None)
            changed.add(symbol)
        if changed:
            self.updates += 1
        return changed

    def touch(self, symbol: str, venues: set[str] | None = None) -> Touch | None:
        """Best bid and best offer across ``venues`` (all when None); None if a side is empty."""
        best_bid: tuple[float, float, str] | None = None
        best_ask: tuple[float, float, str] | None = None
        for (venue, sym), book in self.books.items():
            if sym != symbol or (venues is not None and venue not in venues):
                continue
            b, a = book.best_bid(), book.best_ask()
            if b and (best_bid is None or b[0] > best_bid[0]):
                best_bid = (b[0], b[1], venue)
            if a and (best_ask is None or a[0] < best_ask[0]):
                best_ask = (a[0], a[1], venue)
        if best_bid is None or best_ask is None:
            return None
        return Touch(best_bid[0], best_bid[1], best_bid[2], best_ask[0], best_ask[1], best_ask[2])

    def forget_venue(self, venue: str) -> None:
        """A venue session went down: its books are no longer the market."""
        for key in [k for k in self.books if k[0] == venue]:
            del self.books[key]
