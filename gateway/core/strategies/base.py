"""The contract between a strategy and whatever drives it (live FIX client or backtester).

A strategy is a plain object with an injected clock and no I/O. Its driver:
- keeps a ``MarketView`` current (L2 books per venue and symbol, venue round trips) and
  calls ``on_book`` / ``on_trade`` after applying each market event to it;
- calls ``on_report`` with every ExecutionReport of the strategy's own orders;
- calls ``on_timer`` at least every ``timer_interval_s`` (exits on time, stale signals);
- carries out the returned commands in order: ``PlaceOrder`` becomes a NewOrderSingle to
  the gateway (or the backtester's router), ``CancelOrder`` an OrderCancelRequest.

Rules every driver and strategy keep:
- Commands are returned, never sent by the strategy itself (h11 style: outputs are values).
- ``cl_ord_id`` values are chosen by the strategy and unique within a run.
- Times are the driver's clock in seconds (``now`` arguments and ``at`` fields): the live
  driver's monotonic clock, the backtester's replay clock; a strategy never reads time.
- Prices are floats on the instrument's tick grid; quantities whole units.
- ``venue`` on ``PlaceOrder`` is an ExDestination: ``None`` lets the gateway's router
  choose (scalp / best_price), a name pins the venue (a cross-venue leg, dma).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from gateway.core.book import L2Book
from gateway.core.model import BUY, IOC, LIMIT, SELL

__all__ = ["BUY", "SELL", "IOC", "LIMIT", "MarketView", "BookUpdated", "TradePrinted", "OrderReport",
           "PlaceOrder", "CancelOrder", "Command", "Strategy"]


class MarketView(Protocol):
    """What a strategy may read of the market. Owned and updated by the driver."""

    def venues(self) -> Sequence[str]: ...

    def book(self, venue: str, symbol: str) -> L2Book | None:
        """The venue's L2 book for ``symbol`` (None before its first snapshot)."""
        ...

    def rtt_us(self, venue: str) -> float:
        """The venue's live round trip in microseconds, as the router ranks it (inf if unknown)."""
        ...

    def tick_size(self, symbol: str) -> float: ...


# ------------------------------------------------------------------ events (in)

@dataclass(frozen=True, slots=True, kw_only=True)
class BookUpdated:
    """The book of ``symbol`` on ``venue`` changed (already applied to the MarketView)."""
    venue: str
    symbol: str
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TradePrinted:
    """A trade on the venue's tape; ``aggressor_side`` BUY means a buyer lifted the offer."""
    venue: str
    symbol: str
    price: float
    qty: float
    aggressor_side: str | None
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderReport:
    """An ExecutionReport of one of the strategy's own orders (FIX characters kept)."""
    cl_ord_id: str
    exec_type: str          # 150: 0 new, F trade, 4 canceled, 8 rejected, C expired, 5 replaced
    ord_status: str         # 39
    last_qty: float
    last_px: float
    cum_qty: float
    leaves_qty: float
    venue: str | None       # LastMkt(30)
    text: str | None
    at: float


# ------------------------------------------------------------------ commands (out)

@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceOrder:
    cl_ord_id: str
    symbol: str
    side: str               # BUY / SELL
    qty: float
    price: float | None     # None only for market orders
    tif: str = IOC
    ord_type: str = LIMIT
    venue: str | None = None
    reason: str = ""        # why the strategy sent it (entry, target, stop, timeout, unwind ...)


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder:
    cl_ord_id: str          # the cancel request's own id
    orig_cl_ord_id: str
    symbol: str
    side: str
    qty: float


Command = PlaceOrder | CancelOrder


class Strategy(Protocol):
    name: str
    timer_interval_s: float

    def on_book(self, ev: BookUpdated, market: MarketView) -> list[Command]: ...

    def on_trade(self, ev: TradePrinted, market: MarketView) -> list[Command]: ...

    def on_report(self, ev: OrderReport, market: MarketView) -> list[Command]: ...

    def on_timer(self, now: float, market: MarketView) -> list[Command]: ...

    def stop(self, now: float, market: MarketView) -> list[Command]:
        """No new entries; every open position starts its exit. The driver keeps delivering
        reports and timers until ``is_flat()`` (or its deadline) before it logs out."""
        ...

    def is_flat(self) -> bool: ...

    def stats(self) -> dict:
        """Counters and results for views and reports (JSON-safe)."""
        ...
