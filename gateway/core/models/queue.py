"""Queue-position models for resting orders on L2 data (hftbacktest's ``QueueModel`` shape).

With only aggregated levels we never see our own place in the queue; we estimate
``front``, the quantity ahead of us at our price, and fill when it goes below zero::

    class QueueModel(Protocol):
        def on_new_order(self, order, level_qty) -> None       # we join the level
        def on_trade(self, order, qty) -> None                   # a trade printed AT our price
        def on_depth(self, order, prev_qty, new_qty) -> None     # our level's displayed qty changed
        def filled_qty(self, order) -> float                     # how much may fill now (>= 0)

Invariants kept by every model here:
- ``on_new_order`` puts us at the back: ``front`` = the displayed quantity at our price
  (our own order is never in the recorded data, so ``level_qty`` excludes us);
- ``front`` never exceeds the level's displayed quantity (``on_depth`` clamps it): nothing
  can be ahead of us that is not displayed;
- a fill needs ``front < 0``: only quantity traded beyond what was ahead of us reaches us,
  so a queued order is filled only after the quantity ahead of it has traded;
- ``filled_qty`` returns whole lots only and the caller advances ``front`` by what it fills.

``RiskAverseQueue``: the queue moves only on trades at our price; cancels are assumed to
be behind us (the pessimistic bound). ``ProbabilisticQueue``: a decrease of the level
that is not explained by trades is a cancel, ahead of us with probability
``1 - prob(front, back)`` (hftbacktest ``ProbQueueModel``; rigtorp.se 2013 "Estimating
order queue position"); the probability functions are the ones hftbacktest names.
"""
from __future__ import annotations

from math import floor, log1p
from typing import Callable, Protocol

__all__ = ["QueuedOrder", "QueueModel", "RiskAverseQueue", "ProbabilisticQueue", "power_prob",
           "log_prob", "power_prob2", "log_prob2", "power_prob3", "queue_model"]


class QueuedOrder(Protocol):
    """What a queue model reads and writes on an order (the backtester's resting order)."""
    front: float        # estimated quantity ahead of us at our price
    cum_trade: float    # trades at our price since the last depth change (ProbabilisticQueue)


class QueueModel(Protocol):
    def on_new_order(self, order: QueuedOrder, level_qty: float) -> None: ...
    def on_trade(self, order: QueuedOrder, qty: float) -> None: ...
    def on_depth(self, order: QueuedOrder, prev_qty: float, new_qty: float) -> None: ...
    def filled_qty(self, order: QueuedOrder) -> float: ...


def _whole_lots(front: float, lot: float) -> float:
    # rounding, as hftbacktest does: -0.4 lots ahead is float noise, not a fill
    if round(front / lot) < 0:
        return floor(-front / lot + 1e-9) * lot
    return 0.0


class RiskAverseQueue:
    """Join at the back; advance only on trades at our price."""

    name = "risk_averse"

    def __init__(self, lot: float = 1.0) -> None:
        self.lot = lot

    def on_new_order(self, order: QueuedOrder, level_qty: float) -> None:
        order.front = level_qty
        order.cum_trade = 0.0

    def on_trade(self, order: QueuedOrder, qty: float) -> None:
        order.front -= qty

    def on_depth(self, order: QueuedOrder, prev_qty: float, new_qty: float) -> None:
        if new_qty < order.front:
            order.front = new_qty

    def filled_qty(self, order: QueuedOrder) -> float:
        return _whole_lots(order.front, self.lot)


# Probability that a cancel of the level happened BEHIND us, from the quantity ahead of us
# (front) and behind us (back). Names follow hftbacktest's Power/Log ProbQueueFunc 1-3.
def power_prob(n: float) -> Callable[[float, float], float]:
    def prob(front: float, back: float) -> float:
        fb, ff = back ** n, front ** n
        return fb / (fb + ff) if fb + ff > 0 else 1.0
    return prob


def power_prob2(n: float) -> Callable[[float, float], float]:
    def prob(front: float, back: float) -> float:
        total = (back + front) ** n
        return back ** n / total if total > 0 else 1.0
    return prob


def power_prob3(n: float) -> Callable[[float, float], float]:
    def prob(front: float, back: float) -> float:
        total = front + back
        return 1.0 - (front / total) ** n if total > 0 else 1.0
    return prob


def log_prob(front: float, back: float) -> float:
    fb, ff = log1p(back), log1p(front)
    return fb / (fb + ff) if fb + ff > 0 else 1.0


def log_prob2(front: float, back: float) -> float:
    total = log1p(back + front)
    return log1p(back) / total if total > 0 else 1.0


class ProbabilisticQueue:
    """Cancels ahead of us with a position-dependent probability (hftbacktest ProbQueueModel).

    A decrease ``chg`` of the level, after taking out the trades already applied to
    ``front`` (``cum_trade``), is a cancel; with ``p = prob(front, back)`` the share
    ``1 - p`` is taken from ahead of us, and whatever the back cannot absorb
    (``back - p * chg < 0``) must have come from ahead too::

        front' = min(new_qty, front - (1 - p) * chg + min(back - p * chg, 0))
    """

    name = "probabilistic"

    def __init__(self, prob: Callable[[float, float], float] | None = None, lot: float = 1.0) -> None:
        self.prob = prob or power_prob(3.0)
        self.lot = lot

    def on_new_order(self, order: QueuedOrder, level_qty: float) -> None:
        order.front = level_qty
        order.cum_trade = 0.0

    def on_trade(self, order: QueuedOrder, qty: float) -> None:
        order.front -= qty
        order.cum_trade += qty

    def on_depth(self, order: QueuedOrder, prev_qty: float, new_qty: float) -> None:
        chg = prev_qty - new_qty - order.cum_trade
        order.cum_trade = 0.0           # the trades are now in the displayed quantity
        if chg < 0:                     # growth joins behind us
            if new_qty < order.front:
                order.front = new_qty
            return
        front = order.front
        back = prev_qty - front
        p = self.prob(front if front > 0 else 0.0, back if back > 0 else 0.0)
        est = front - (1.0 - p) * chg + min(back - p * chg, 0.0)
        order.front = est if est < new_qty else new_qty

    def filled_qty(self, order: QueuedOrder) -> float:
        return _whole_lots(order.front, self.lot)


def queue_model(name: str, lot: float = 1.0, prob: str = "power", n: float = 3.0) -> QueueModel:
    """Build from config: ``risk_averse`` | ``probabilistic`` (prob: power|power2|power3|log|log2)."""
    if name == "risk_averse":
        return RiskAverseQueue(lot)
    if name == "probabilistic":
        funcs = {"power": lambda: power_prob(n), "power2": lambda: power_prob2(n),
                 "power3": lambda: power_prob3(n), "log": lambda: log_prob, "log2": lambda: log_prob2}
        if prob not in funcs:
            raise ValueError(f"unknown queue probability {prob!r} (choose from {', '.join(funcs)})")
        return ProbabilisticQueue(funcs[prob](), lot)
    raise ValueError(f"unknown queue model {name!r} (risk_averse | probabilistic)")
