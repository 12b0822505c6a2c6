"""FIX market data (W snapshot, X incremental) applied to per-venue L2 books (sans-IO).

Input is a message's (tag, value) pairs in wire order, so any parser's output works
(our codec's ``Message.pairs``, a recorded file, a test's hand-made list). Output is the
list of what changed, as ``(symbol, kind, price, qty)`` tuples for the caller to fan out:
``kind`` is ``"book"`` for a level change or ``"trade"`` for a print.

Rules:
- An incremental entry for a book that has not had its snapshot yet is dropped: there is
  nothing to apply it to, and the snapshot that follows carries the full state.
- A trade's aggressor is inferred from the touch before the message (FIX 4.4's MDEntry
  has no AggressorSide; a venue may list the level it emptied before the print): at or
  through the best offer a buyer lifted it, at or through the best bid a seller hit it,
  inside the spread unknown (None).
- Entries that cannot be read (no price, a side that is not bid/offer/trade) are counted
  in ``skipped`` and ignored; they never stop the rest of the message.
"""
from __future__ import annotations

from typing import Callable, Iterable

from gateway.core.book import BID, DELETE, OFFER, TRADE, L2Book
from gateway.core.model import BUY, SELL

Pairs = Iterable[tuple[int, str]]
Change = tuple[str, str, float, float, "str | None"]   # (symbol, "book"|"trade", px, qty, aggressor)
Touch = tuple[float, float] | None                   # a side's best (price, qty), None when empty


def md_entries(pairs: Pairs) -> tuple[dict[int, str], list[dict[int, str]]]:
    """Fields before the NoMDEntries(268) group, and the group's entries as dicts.

    An entry starts again at the tag that opened the first entry (269 in W, 279 in X).
    """
    head: dict[int, str] = {}
    entries: list[dict[int, str]] = []
    delimiter: int | None = None
    in_group = False
    for tag, value in pairs:
        if tag == 10:
            break
        if tag == 268 and not in_group:
            in_group = True
            continue
        if not in_group:
            head.setdefault(tag, value)
            continue
        if delimiter is None:
            delimiter = tag
        if tag == delimiter or not entries:
            entries.append({})
        entries[-1][tag] = value
    return head, entries


class VenueBooks:
    """The L2 books of one venue, kept from its W/X messages."""

    __slots__ = ("venue", "books", "new_book", "skipped", "req_symbols")

    def __init__(self, venue: str, new_book: Callable[[str], L2Book]) -> None:
        self.venue = venue
        self.books: dict[str, L2Book] = {}
        self.new_book = new_book
        self.skipped = 0
        self.req_symbols: dict[str, str] = {}     # MDReqID -> symbol, for W/X without 55

    def book(self, symbol: str) -> L2Book:
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = self.new_book(symbol)
        return book

    def mark_stale(self) -> None:
        for book in self.books.values():
            book.mark_stale()

    def on_snapshot(self, pairs: Pairs) -> list[Change]:
        head, entries = md_entries(pairs)
        symbol = head.get(55) or self.req_symbols.get(head.get(262, ""))
        if not symbol:
            self.skipped += len(entries) or 1
            return []
        bids, asks, trade = [], [], None
        for e in entries:
            px, qty = md_number(e.get(270)), md_number(e.get(271)) or 0.0
            kind = e.get(269)
            if px is None:
                self.skipped += 1
            elif kind == BID:
                bids.append((px, qty))
            elif kind == OFFER:
                asks.append((px, qty))
            elif kind == TRADE:
                trade = (px, qty)
            else:
                self.skipped += 1
        book = self.book(symbol)
        book.apply_snapshot(bids, asks)
        out: list[Change] = [(symbol, "book", 0.0, 0.0, None)]
        if trade is not None:
            book.on_trade(*trade)      # the last print: not a new trade, so not fanned out
        return out

    def on_incremental(self, pairs: Pairs) -> list[Change]:
        head, entries = md_entries(pairs)
        default = head.get(55) or self.req_symbols.get(head.get(262, ""))
        out: list[Change] = []
        touched: set[str] = set()
        before: dict[str, tuple[Touch, Touch]] = {}   # symbol -> (best bid, best ask) before this message
        for e in entries:
            symbol = e.get(55) or default
            px = md_number(e.get(270))
            if not symbol or px is None:
                self.skipped += 1
                continue
            book = self.books.get(symbol)
            if book is None or book.stale:
                continue
            if symbol not in before:
                before[symbol] = (book.best_bid(), book.best_ask())
            kind, qty = e.get(269), md_number(e.get(271))
            if kind == TRADE:
                if e.get(279) != DELETE:
                    bid, ask = before[symbol]
                    out.append((symbol, "trade", px, qty or 0.0, aggressor(bid, ask, px)))
                    book.on_trade(px, qty or 0.0)
            elif kind in (BID, OFFER):
                try:
                    book.apply_update(e.get(279, "0"), kind, px, qty)
                except ValueError:
                    self.skipped += 1
                    continue
                touched.add(symbol)
            else:
                self.skipped += 1
        out.extend((s, "book", 0.0, 0.0, None) for s in touched)
        return out


def aggressor(bid: Touch, ask: Touch, px: float) -> str | None:
    """BUY / SELL / None from the touch (best bid, best ask) before the print (rules above)."""
    if ask is not None and px >= ask[0] - 1e-12:
        return BUY
    if bid is not None and px <= bid[0] + 1e-12:
        return SELL
    return None


def md_number(text: str | None) -> float | None:
    """A price or size field, None when absent or unreadable (the entry is then skipped)."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def md_request_body(req_id: str, symbols: Iterable[str], depth: int, trades: bool = True) -> str:
    """A MarketDataRequest (V) body: snapshot + incremental updates of bids, offers (and trades)."""
    types = [BID, OFFER] + ([TRADE] if trades else [])
    syms = list(symbols)
    return (f"262={req_id}\x01263=1\x01264={depth}\x01265=1\x01267={len(types)}\x01"
            + "".join(f"269={t}\x01" for t in types)
            + f"146={len(syms)}\x01" + "".join(f"55={s}\x01" for s in syms))
