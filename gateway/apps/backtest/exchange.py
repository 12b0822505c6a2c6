"""The exchange side of the replay: one book per (venue, symbol) rebuilt from the data, plus our orders.

``ExchangeBook`` holds the displayed L2 levels as the venue had them at exchange time
(``ts_exch``), our resting orders on it, and the quantity we took ourselves.

The take rule (we cannot fill twice on the same quantity): the recording was made
without us, so after our IOC takes ``q`` at price ``p`` the data still shows it. We
keep ``taken[p]`` and display ``max(0, data[p] - taken[p])``. Later decreases of that
level in the data (its orders trading or cancelling in history) are assumed to be the
very quantity we already took, so they consume ``taken[p]`` first instead of shrinking
the display twice; increases (new orders joining) are displayed in full. A delete of the
level, a CLEAR (snapshot) or ``taken`` reaching zero forget the overlay. So: what we
take stays taken until the data itself has removed as much from that level.

Resting orders (Day limit orders) sit in the level's queue; a ``QueueModel`` estimates
the quantity ahead (``front``) from trades and depth changes at their price. Besides
the queue, a resting order fills in full, at its own price, when the market trades
through it (a print beyond its price on its side) or when the opposite side of the
data book crosses it; both as hftbacktest's L2 exchange does.

Times here are exchange times (seconds, replay clock). Nothing here knows latency.
"""
from __future__ import annotations

from gateway.core.models.queue import QueueModel
from gateway.core.recording import AGG_BUY, AGG_SELL, ASK, BID, CLEAR, DELETE, SNAPSHOT, TRADE, UPDATE

_EPS = 1e-9
INF = float("inf")


class VenueOrder:
    """One of our orders as the venue holds it (also the queue model's ``QueuedOrder``)."""
    __slots__ = ("child", "is_buy", "price", "leaves", "front", "cum_trade")

    def __init__(self, child, is_buy: bool, price: float, leaves: float) -> None:
        self.child = child
        self.is_buy = is_buy
        self.price = price
        self.leaves = leaves
        self.front = 0.0
        self.cum_trade = 0.0


class ExchangeBook:
    __slots__ = ("bids", "asks", "taken_bid", "taken_ask", "resting", "queue", "fills", "plain")

    def __init__(self, queue: QueueModel) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.taken_bid: dict[float, float] = {}
        self.taken_ask: dict[float, float] = {}
        self.resting: list[VenueOrder] = []
        self.queue = queue
        self.fills: list[tuple[VenueOrder, float, float]] = []   # resting fills of the last apply()
        # plain: no resting order of ours and nothing taken -> a level update is a bare dict
        # write, which the replay loop does inline (kept true by _replan after every change)
        self.plain = True

    def _replan(self) -> None:
        self.plain = not (self.resting or self.taken_bid or self.taken_ask)

    # ------------------------------------------------------------------ data events
    def apply(self, kind: int, side: int, price: float, qty: float, action: int) -> bool:
        """Apply one recorded event; True when resting orders filled (read and clear ``fills``)."""
        if kind == UPDATE or kind == SNAPSHOT:
            if side == BID:
                levels, taken = self.bids, self.taken_bid
            else:
                levels, taken = self.asks, self.taken_ask
            old = levels.get(price, 0.0)
            new = 0.0 if action == DELETE else qty
            if new > 0.0:
                levels[price] = new
            elif old:
                del levels[price]
            tk = taken.get(price, 0.0) if taken else 0.0
            if tk:
                tk = self._consume_taken(taken, price, old, new, tk)
                if not taken:
                    self._replan()
            if self.resting:
                prev_disp = old - tk if old > tk else 0.0   # approximate: before the overlay moved
                new_disp = new - tk if new > tk else 0.0
                return self._on_level(side, price, prev_disp, new_disp)
            return False
        if kind == TRADE:
            return bool(self.resting) and self._on_trade(side, price, qty)
        if kind == CLEAR:
            self.bids.clear()
            self.asks.clear()
            self.taken_bid.clear()
            self.taken_ask.clear()
            self._replan()
        return False

    @staticmethod
    def _consume_taken(taken: dict, price: float, old: float, new: float, tk: float) -> float:
        if new <= 0.0:
            del taken[price]
            return 0.0
        if new < old:
            tk -= old - new
            if tk <= _EPS:
                del taken[price]
                return 0.0
            taken[price] = tk
        return tk

    def displayed(self, side: int, price: float) -> float:
        if side == BID:
            q, tk = self.bids.get(price, 0.0), self.taken_bid.get(price, 0.0)
        else:
            q, tk = self.asks.get(price, 0.0), self.taken_ask.get(price, 0.0)
        return q - tk if q > tk else 0.0

    # ------------------------------------------------------------------ our aggressive orders
    def take(self, is_buy: bool, limit: float | None, qty: float, fok: bool) -> list[tuple[float, float]]:
        """Match an incoming order against the displayed book now; returns [(price, qty)].

        Best price first; ``limit`` None is a market order. FOK takes nothing unless the
        whole quantity is displayed within the limit. What is taken goes into ``taken``.
        """
        if is_buy:
            levels, taken = self.asks, self.taken_ask
            bound = INF if limit is None else limit + _EPS
            prices = sorted(p for p in levels if p <= bound)
        else:
            levels, taken = self.bids, self.taken_bid
            bound = -INF if limit is None else limit - _EPS
            prices = sorted((p for p in levels if p >= bound), reverse=True)
        avail = []
        total = 0.0
        for p in prices:
            a = levels[p] - taken.get(p, 0.0)
            if a > _EPS:
                avail.append((p, a))
                total += a
                if total >= qty - _EPS:
                    break
        if fok and total < qty - _EPS:
            return []
        fills = []
        left = qty
        for p, a in avail:
            q = a if a < left else left
            taken[p] = taken.get(p, 0.0) + q
            fills.append((p, q))
            left -= q
            if left <= _EPS:
                break
        self._replan()
        return fills

    # ------------------------------------------------------------------ our resting orders
    def rest(self, order: VenueOrder) -> None:
        self.queue.on_new_order(order, self.displayed(BID if order.is_buy else ASK, order.price))
        self.resting.append(order)
        self.plain = False

    def cancel(self, order: VenueOrder) -> bool:
        try:
            self.resting.remove(order)
        except ValueError:
            return False        # already filled: the cancel is too late
        self._replan()
        return True

    def _on_level(self, side: int, price: float, prev: float, new: float) -> bool:
        queue = self.queue
        for o in self.resting:
            if (side == BID) == o.is_buy:
                if price == o.price:
                    queue.on_depth(o, prev, new)
            elif new > 0.0 and (price <= o.price if o.is_buy else price >= o.price):
                o.front = -o.leaves            # the other side crossed us: filled in full
        return self._collect()

    def _on_trade(self, aggressor: int, price: float, qty: float) -> bool:
        queue = self.queue
        for o in self.resting:
            # a sell aggressor hits bids (our buys), a buy aggressor lifts asks (our sells)
            if aggressor == AGG_SELL and not o.is_buy or aggressor == AGG_BUY and o.is_buy:
                continue
            if price == o.price:
                queue.on_trade(o, qty)
            elif price < o.price if o.is_buy else price > o.price:
                o.front = -o.leaves            # traded through our price
        return self._collect()

    def _collect(self) -> bool:
        queue = self.queue
        done = None
        for o in self.resting:
            f = queue.filled_qty(o)
            if f > 0.0:
                q = f if f < o.leaves else o.leaves
                o.leaves -= q
                o.front += q
                self.fills.append((o, q, o.price))
                if o.leaves <= _EPS:
                    done = done or []
                    done.append(o)
        if done:
            for o in done:
                self.resting.remove(o)
            self._replan()
        return bool(self.fills)
