"""A price-time priority matching engine, sans-IO (no sockets, injected clock).

Prices are integer ticks inside the engine and quantities whole units. Every call
returns the list of events it produced (ExecReport, CancelReject, TradePrint,
BookTouched) in the order they happened.

Rules (one venue's conventions, kept consistent):
- Accepted orders are acknowledged with ExecType 0 New before any fill.
- Fills are ExecType F, one per counterparty order, for both sides.
- Market orders never rest: an unfilled remainder is canceled (ExecType 4).
- IOC and FOK remainders are canceled: ExecType 4 Canceled, OrdStatus 4, LeavesQty 0.
  FOK fills completely (across levels) or not at all.
- Cancel/replace keeps time priority only when the price is unchanged and the quantity
  does not increase; any price change or quantity increase goes to the back of the queue.
  A replace that makes the order marketable trades at once. A new quantity at or below
  the filled quantity is refused with an OrderCancelReject.
- Rejects (ExecType 8, OrdStatus 8, OrdRejReason, Text): unknown symbol, quantity not a
  positive whole number, price missing/not positive/off tick, duplicate ClOrdID (per owner).
- Cancel or replace of an unknown or finished order -> OrderCancelReject (35=9).
- No self-trade prevention.
"""
from __future__ import annotations

import bisect
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Final, Iterable, Union

from gateway.common.clock import MONOTONIC, Clock
from gateway.core.matching.events import (
    CANCELED, CXL_DUPLICATE_CLORDID, CXL_OTHER, CXL_TOO_LATE, CXL_UNKNOWN_ORDER, FILLED, NEW,
    PARTIAL, REJ_DUPLICATE, REJ_INCORRECT_QTY, REJ_INVALID_PRICE, REJ_UNKNOWN_SYMBOL, REJ_UNSUPPORTED, REJECTED,
    REPLACED, RESPONSE_TO_CANCEL, RESPONSE_TO_REPLACE, TRADE, BookTouched, CancelReject,
    ExecReport, TradePrint,
)

BUY: Final = "1"
SELL: Final = "2"
MARKET: Final = "1"
LIMIT: Final = "2"
DAY: Final = "0"
IOC: Final = "3"
FOK: Final = "4"
_SUPPORTED_TIF: Final = frozenset((DAY, IOC, FOK))
_DONE: Final = frozenset((FILLED, CANCELED, REJECTED))

Event = Union[ExecReport, CancelReject, TradePrint, BookTouched]   # what every command returns


@dataclass(slots=True)
class Instrument:
    symbol: str
    tick_size: float
    ref_price: float

    @property
    def ref_ticks(self) -> int:
        return round(self.ref_price / self.tick_size)

    def to_ticks(self, price: float) -> int | None:
        """The price in ticks, or None when it is not on the tick grid."""
        ticks = round(price / self.tick_size)
        if abs(ticks * self.tick_size - price) > self.tick_size * 1e-6:
            return None
        return ticks

    def to_price(self, ticks: float) -> float:
        # Round to the tick's decimals so 1.1000000000000001 never reaches the wire.
        return round(ticks * self.tick_size, 10)

    def tick_price(self, ticks: int) -> float:
        """``to_price`` of a whole number of ticks, without round()'s decimal conversion when
        the tick divides one unit (0.00001, 0.01, 0.25): ticks / (ticks per unit) is then the
        double nearest the exact decimal, which is what ``to_price`` returns."""
        per_unit = 1.0 / self.tick_size
        whole = round(per_unit)
        if abs(per_unit - whole) < 1e-9 * per_unit:
            return ticks / whole
        return round(ticks * self.tick_size, 10)


# Not a dataclass: its generated __init__ would be interpreted code even when this module is
# compiled (one per order, on the order path).
class Order:
    """One order in the book (or rejected); ``price`` in ticks, None for market orders."""

    __slots__ = ("order_id", "owner", "cl_ord_id", "symbol", "side", "ord_type", "tif", "qty", "price",
                 "seq", "cum_qty", "notional", "status", "orig_cl_ord_id", "ids")

    def __init__(self, order_id: str, owner: str, cl_ord_id: str, symbol: str, side: str, ord_type: str,
                 tif: str, qty: int, price: int | None, seq: int = 0, cum_qty: int = 0, notional: int = 0,
                 status: str = NEW, orig_cl_ord_id: str | None = None, ids: list[str] | None = None) -> None:
        self.order_id = order_id
        self.owner = owner
        self.cl_ord_id = cl_ord_id
        self.symbol = symbol
        self.side = side
        self.ord_type = ord_type
        self.tif = tif
        self.qty = qty
        self.price = price
        self.seq = seq                  # time priority
        self.cum_qty = cum_qty
        self.notional = notional        # sum(price_ticks * qty) of fills, for AvgPx
        self.status = status
        self.orig_cl_ord_id = orig_cl_ord_id
        self.ids: list[str] = ids if ids is not None else []   # every ClOrdID of its cancel/replace chain

    def __repr__(self) -> str:
        return (f"Order({self.order_id!r}, {self.owner!r}, {self.cl_ord_id!r}, {self.symbol} {self.side} "
                f"{self.qty}@{self.price} {self.ord_type}/{self.tif} cum={self.cum_qty} status={self.status})")

    @property
    def leaves(self) -> int:
        return 0 if self.status in _DONE else self.qty - self.cum_qty

    @property
    def done(self) -> bool:
        return self.status in _DONE


@dataclass(slots=True)
class _Book:
    """One side's price levels: sorted prices (ascending) and a FIFO queue per price."""
    prices: list[int] = field(default_factory=list)
    queues: dict[int, deque[Order]] = field(default_factory=dict)

    def add(self, order: Order) -> None:
        price = order.price
        assert price is not None            # market orders never rest
        q = self.queues.get(price)
        if q is None:
            q = self.queues[price] = deque()
            bisect.insort(self.prices, price)
        q.append(order)

    def remove(self, order: Order) -> None:
        price = order.price
        if price is None:
            return
        q = self.queues.get(price)
        if q is None:
            return
        try:
            q.remove(order)
        except ValueError:
            return
        if not q:
            self._drop_level(price)

    def _drop_level(self, price: int) -> None:
        del self.queues[price]
        i = bisect.bisect_left(self.prices, price)
        del self.prices[i]

    def level_qty(self, price: int) -> int:
        return sum(o.qty - o.cum_qty for o in self.queues.get(price, ()))


class MatchingEngine:
    def __init__(self, instruments: list[Instrument], clock: Clock = MONOTONIC, venue: str = "SIM",
                 id_prefix: str = "") -> None:
        self.clock = clock
        self.venue = venue
        # OrderID/ExecID prefix; a venue process passes one per run so that ids stay unique
        # across restarts, as a counterparty deduplicating ExecIDs expects
        self.id_prefix = f"{venue}-{id_prefix}" if id_prefix else venue
        self.instruments = {i.symbol: i for i in instruments}
        self._bids = {s: _Book() for s in self.instruments}
        self._asks = {s: _Book() for s in self.instruments}
        self._orders: dict[tuple[str, str], Order] = {}   # (owner, any ClOrdID of its chain) -> order
        self._seq = itertools.count(1)
        self._order_ids = 0
        self._exec_ids = 0
        self.last_trade: dict[str, tuple[float, float]] = {}
        self.orders_in = 0
        self.trades = 0

    # ------------------------------------------------------------------ queries
    def instrument(self, symbol: str) -> Instrument | None:
        return self.instruments.get(symbol)

    def order(self, owner: str, cl_ord_id: str) -> Order | None:
        return self._orders.get((owner, cl_ord_id))

    def knows(self, owner: str, cl_ord_id: str) -> bool:
        return (owner, cl_ord_id) in self._orders

    def best_bid(self, symbol: str) -> int | None:
        prices = self._bids[symbol].prices
        return prices[-1] if prices else None

    def best_ask(self, symbol: str) -> int | None:
        prices = self._asks[symbol].prices
        return prices[0] if prices else None

    def levels(self, symbol: str, side: str, depth: int = 0) -> list[tuple[int, int]]:
        """Aggregated levels best first as (price_ticks, qty); depth 0 = all."""
        book = self._bids[symbol] if side == BUY else self._asks[symbol]
        prices = reversed(book.prices) if side == BUY else iter(book.prices)
        out: list[tuple[int, int]] = []
        for p in prices:
            out.append((p, book.level_qty(p)))
            if depth and len(out) >= depth:
                break
        return out

    def open_orders(self, owner: str) -> list[Order]:
        seen: set[int] = set()
        out: list[Order] = []
        for (o_owner, _), order in self._orders.items():
            if o_owner == owner and not order.done and id(order) not in seen:
                seen.add(id(order))
                out.append(order)
        return out

    # ------------------------------------------------------------------ commands
    def new_order(self, owner: str, cl_ord_id: str, symbol: str, side: str, qty: float,
                  ord_type: str = LIMIT, price: float | None = None, tif: str = DAY) -> list[Event]:
        """Accept (and match) or reject one order."""
        self.orders_in += 1
        now = self.clock.now()
        inst = self.instruments.get(symbol)
        order = Order(order_id=self._next_order_id(), owner=owner, cl_ord_id=cl_ord_id, symbol=symbol,
                      side=side, ord_type=ord_type, tif=tif, qty=0, price=None)
        problem = self._validate(owner, cl_ord_id, inst, side, qty, ord_type, price, tif)
        if problem is not None:
            reason, text = problem
            order.qty = _whole(qty) or 0
            order.status = REJECTED
            return [self._report(order, REJECTED, now, price_hint=price, rej=(reason, text))]
        assert inst is not None                  # _validate refused an unknown symbol
        order.qty = _whole(qty) or 0
        order.price = inst.to_ticks(price) if ord_type == LIMIT and price is not None else None
        self._remember(order, cl_ord_id)
        events: list[Event] = [self._report(order, NEW, now)]
        self._execute(order, events, now)
        return events

    def cancel(self, owner: str, cl_ord_id: str, orig_cl_ord_id: str) -> list[Event]:
        now = self.clock.now()
        order = self._orders.get((owner, orig_cl_ord_id))
        refusal = self._refuse_amend(owner, cl_ord_id, orig_cl_ord_id, order, RESPONSE_TO_CANCEL, now)
        if refusal is not None or order is None:
            return refusal or []
        self._book(order).remove(order)
        order.status = CANCELED
        order.orig_cl_ord_id = orig_cl_ord_id
        order.cl_ord_id = cl_ord_id
        self._remember(order, cl_ord_id)
        return [self._report(order, CANCELED, now), BookTouched(order.symbol)]

    def replace(self, owner: str, cl_ord_id: str, orig_cl_ord_id: str, qty: float,
                price: float | None = None) -> list[Event]:
        """Cancel/replace quantity and/or limit price (see the priority rule in the module doc)."""
        now = self.clock.now()
        order = self._orders.get((owner, orig_cl_ord_id))
        refusal = self._refuse_amend(owner, cl_ord_id, orig_cl_ord_id, order, RESPONSE_TO_REPLACE, now)
        if refusal is not None or order is None:
            return refusal or []
        inst = self.instruments[order.symbol]
        new_qty = _whole(qty)
        if new_qty is None or new_qty <= 0:
            return [self._cxl_reject(order, owner, cl_ord_id, orig_cl_ord_id, RESPONSE_TO_REPLACE, CXL_OTHER,
                                     f"invalid quantity {qty!r}", now)]
        if new_qty <= order.cum_qty:
            return [self._cxl_reject(order, owner, cl_ord_id, orig_cl_ord_id, RESPONSE_TO_REPLACE, CXL_TOO_LATE,
                                     f"new quantity {new_qty} not above filled quantity {order.cum_qty}", now)]
        new_price = order.price
        if order.ord_type == LIMIT and price is not None:
            new_price = inst.to_ticks(price) if price > 0 else None
            if new_price is None:
                return [self._cxl_reject(order, owner, cl_ord_id, orig_cl_ord_id, RESPONSE_TO_REPLACE, CXL_OTHER,
                                         f"price {price} not on tick {inst.tick_size}", now)]
        keeps_priority = new_price == order.price and new_qty <= order.qty
        book = self._book(order)
        if keeps_priority:
            order.qty = new_qty
        else:
            book.remove(order)
            order.qty, order.price, order.seq = new_qty, new_price, next(self._seq)
        order.orig_cl_ord_id, order.cl_ord_id = orig_cl_ord_id, cl_ord_id
        self._remember(order, cl_ord_id)
        events: list[Event] = [self._report(order, REPLACED, now), BookTouched(order.symbol)]
        if not keeps_priority:
            self._match(order, events, now)
            if order.leaves > 0:
                book.add(order)
        return events

    def forget(self, owner: str, cl_ord_id: str) -> bool:
        """Drop a finished order (every ClOrdID of its chain) to bound memory on long runs.

        Background flow forgets its own orders; client orders are kept, so duplicate
        ClOrdIDs and cancels of finished orders are still recognised.
        """
        order = self._orders.get((owner, cl_ord_id))
        if order is None or not order.done:
            return False
        for cid in order.ids:
            self._orders.pop((owner, cid), None)
        return True

    @property
    def order_count(self) -> int:
        return len(self._orders)

    # ------------------------------------------------------------------ internals
    def _remember(self, order: Order, cl_ord_id: str) -> None:
        order.ids.append(cl_ord_id)
        self._orders[(order.owner, cl_ord_id)] = order

    def _validate(self, owner: str, cl_ord_id: str, inst: Instrument | None, side: str, qty: float,
                  ord_type: str, price: float | None, tif: str) -> tuple[int, str] | None:
        if (owner, cl_ord_id) in self._orders:
            return REJ_DUPLICATE, f"duplicate ClOrdID {cl_ord_id}"
        if inst is None:
            return REJ_UNKNOWN_SYMBOL, "unknown symbol"
        if side not in (BUY, SELL):
            return REJ_UNSUPPORTED, f"unsupported side {side!r}"
        w = _whole(qty)
        if w is None or w <= 0:
            return REJ_INCORRECT_QTY, f"quantity must be a positive whole number, got {qty!r}"
        if tif not in _SUPPORTED_TIF:
            return REJ_UNSUPPORTED, f"unsupported TimeInForce {tif!r}"
        if ord_type == LIMIT:
            if price is None or price <= 0:
                return REJ_INVALID_PRICE, f"limit price must be positive, got {price!r}"
            if inst.to_ticks(price) is None:
                return REJ_INVALID_PRICE, f"price {price} not on tick {inst.tick_size}"
        elif ord_type != MARKET:
            return REJ_UNSUPPORTED, f"unsupported OrdType {ord_type!r}"
        return None

    def _refuse_amend(self, owner: str, cl_ord_id: str, orig_cl_ord_id: str, order: Order | None,
                      response_to: str, now: float) -> list[Event] | None:
        if order is None:
            return [CancelReject(owner, cl_ord_id, orig_cl_ord_id, "NONE", REJECTED, response_to,
                                 CXL_UNKNOWN_ORDER, f"unknown order {orig_cl_ord_id}", now)]
        if (owner, cl_ord_id) in self._orders:
            return [self._cxl_reject(order, owner, cl_ord_id, orig_cl_ord_id, response_to,
                                     CXL_DUPLICATE_CLORDID, f"duplicate ClOrdID {cl_ord_id}", now)]
        if order.done:
            return [self._cxl_reject(order, owner, cl_ord_id, orig_cl_ord_id, response_to, CXL_TOO_LATE,
                                     f"order {orig_cl_ord_id} is already done", now)]
        return None

    def _cxl_reject(self, order: Order, owner: str, cl_ord_id: str, orig: str, response_to: str,
                    reason: int, text: str, now: float) -> CancelReject:
        return CancelReject(owner, cl_ord_id, orig, order.order_id, order.status, response_to, reason, text, now)

    def _book(self, order: Order) -> _Book:
        return self._bids[order.symbol] if order.side == BUY else self._asks[order.symbol]

    def _opposite(self, order: Order) -> _Book:
        return self._asks[order.symbol] if order.side == BUY else self._bids[order.symbol]

    def _execute(self, order: Order, events: list[Event], now: float) -> None:
        if order.tif == FOK and self._available(order) < order.qty:
            self._finish(order, CANCELED, events, now, "FOK: not enough liquidity")
            return
        self._match(order, events, now)
        if order.leaves == 0:
            return
        if order.ord_type == MARKET or order.tif in (IOC, FOK):
            self._finish(order, CANCELED, events, now,
                         "no liquidity" if order.cum_qty == 0 else "remainder canceled")
            return
        order.seq = next(self._seq)
        self._book(order).add(order)
        events.append(BookTouched(order.symbol))

    def _crosses(self, order: Order, level: int) -> bool:
        if order.price is None:
            return True
        return level <= order.price if order.side == BUY else level >= order.price

    def _available(self, order: Order) -> int:
        book = self._opposite(order)
        prices: Iterable[int] = book.prices if order.side == BUY else reversed(book.prices)
        total = 0
        for p in prices:
            if not self._crosses(order, p):
                break
            total += book.level_qty(p)
            if total >= order.qty:
                break
        return total

    def _match(self, order: Order, events: list[Event], now: float) -> None:
        book = self._opposite(order)
        inst = self.instruments[order.symbol]
        while order.leaves > 0 and book.prices:
            level = book.prices[0] if order.side == BUY else book.prices[-1]
            if not self._crosses(order, level):
                break
            queue = book.queues[level]
            while queue and order.leaves > 0:
                resting = queue[0]
                qty = min(order.leaves, resting.leaves)
                self._fill(resting, qty, level, events, now)
                self._fill(order, qty, level, events, now)
                self.trades += 1
                px = inst.to_price(level)
                self.last_trade[order.symbol] = (px, qty)
                events.append(TradePrint(order.symbol, px, qty, order.side, now))
                if resting.leaves == 0:
                    queue.popleft()
            if not queue:
                book._drop_level(level)
            events.append(BookTouched(order.symbol))

    def _fill(self, order: Order, qty: int, price: int, events: list[Event], now: float) -> None:
        order.cum_qty += qty
        order.notional += qty * price
        order.status = FILLED if order.cum_qty >= order.qty else PARTIAL
        events.append(self._report(order, TRADE, now, last=(price, qty)))

    def _finish(self, order: Order, status: str, events: list[Event], now: float, text: str) -> None:
        order.status = status
        events.append(self._report(order, status, now, text=text))

    def _report(self, order: Order, exec_type: str, now: float, last: tuple[int, int] | None = None,
                rej: tuple[int, str] | None = None, text: str | None = None,
                price_hint: float | None = None) -> ExecReport:
        inst = self.instruments.get(order.symbol)
        avg = _to_price(order.notional / order.cum_qty, inst) if order.cum_qty else 0.0
        price = _tick_price(order.price, inst) if order.price is not None else price_hint
        self._exec_ids += 1
        er = ExecReport(
            owner=order.owner, order_id=order.order_id, cl_ord_id=order.cl_ord_id,
            orig_cl_ord_id=order.orig_cl_ord_id if exec_type == CANCELED or exec_type == REPLACED else None,
            exec_id=f"{self.id_prefix}-E{self._exec_ids}", exec_type=exec_type, ord_status=order.status,
            symbol=order.symbol, side=order.side, ord_type=order.ord_type, tif=order.tif,
            order_qty=order.qty, price=price, cum_qty=order.cum_qty, leaves_qty=order.leaves, avg_px=avg,
            time=now)
        if last is not None:
            er.last_px, er.last_qty = _tick_price(last[0], inst), float(last[1])
        if rej is not None:
            er.ord_rej_reason, er.text = rej
        elif text is not None:
            er.text = text
        return er

    def _next_order_id(self) -> str:
        self._order_ids += 1
        return f"{self.id_prefix}-{self._order_ids}"


def _to_price(ticks: float, inst: Instrument | None) -> float:
    """``inst.to_price(ticks)``; with no instrument (an unknown symbol's reject), the ticks."""
    return round(ticks * inst.tick_size, 10) if inst is not None else float(ticks)


def _tick_price(ticks: int, inst: Instrument | None) -> float:
    """``_to_price`` of whole ticks (``Instrument.tick_price``)."""
    return inst.tick_price(ticks) if inst is not None else float(ticks)


def _whole(qty: float | int | None) -> int | None:
    """``qty`` as an int when it is a whole number, else None."""
    if qty is None:
        return None
    try:
        f = float(qty)
    except (TypeError, ValueError):
        return None
    if f != f or abs(f - round(f)) > 1e-9:
        return None
    return int(round(f))
