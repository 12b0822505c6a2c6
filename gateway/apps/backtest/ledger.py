"""The backtest's own books of account: fills, fees, positions, round trips and the equity curve.

Kept apart from the RiskEngine on purpose: risk tracks what it needs to decide (gross
PnL, no fees); the report needs fees per venue, maker/taker and round trips.

- PnL per symbol by average cost: a fill that shrinks the position realizes
  ``(px - avg) * qty`` (signed); fees are subtracted separately (net = gross - fees).
- A round trip starts when a symbol's position leaves zero and ends when it returns to
  zero or flips (the flip starts the next one); it wins when its net PnL (realized gross
  minus the fees of its fills) is > 0. Win rate = wins / closed round trips.
- Equity = realized + unrealized at the mark (mean mid across venues, else the last fill)
  - fees, sampled at each fill and every ``equity_interval_s``.
"""
from __future__ import annotations

from gateway.core.model import BUY

_EPS = 1e-9


class _Pos:
    __slots__ = ("qty", "avg", "realized", "trip_pnl", "last_px")

    def __init__(self) -> None:
        self.qty = 0.0
        self.avg = 0.0
        self.realized = 0.0
        self.trip_pnl = 0.0
        self.last_px = 0.0


class Ledger:
    def __init__(self, fee_specs: dict) -> None:
        self.specs = fee_specs
        self.pos: dict[str, _Pos] = {}
        self.fees = 0.0
        self.fees_by_venue: dict[str, float] = {}
        self.fills: list[dict] = []
        self.equity: list[tuple[float, float]] = []
        self.trips: list[float] = []
        self.maker_qty = 0.0
        self.taker_qty = 0.0

    def fill(self, t: float, venue: str, intent, qty: float, px: float, maker: bool) -> None:
        spec = self.specs.get(venue)
        fee = spec.fee(qty, px, maker) if spec is not None else 0.0
        self.fees += fee
        self.fees_by_venue[venue] = self.fees_by_venue.get(venue, 0.0) + fee
        if maker:
            self.maker_qty += qty
        else:
            self.taker_qty += qty
        pos = self.pos.get(intent.symbol)
        if pos is None:
            pos = self.pos[intent.symbol] = _Pos()
        signed = qty if intent.side == BUY else -qty
        self._apply(pos, signed, px, fee)
        self.fills.append({"t": round(t, 9), "cl_ord_id": intent.cl_ord_id, "venue": venue,
                           "symbol": intent.symbol, "side": "buy" if intent.side == BUY else "sell",
                           "qty": qty, "px": px, "liquidity": "maker" if maker else "taker",
                           "fee": fee, "position": pos.qty})
        self._point(t, {intent.symbol: px})

    def _apply(self, pos: _Pos, signed: float, px: float, fee: float) -> None:
        pos.last_px = px
        pos.trip_pnl -= fee
        q0 = pos.qty
        if q0 == 0.0 or (q0 > 0) == (signed > 0):            # opening or adding
            new = q0 + signed
            pos.avg = (pos.avg * q0 + px * signed) / new
            pos.qty = new
            return
        closing = min(abs(signed), abs(q0))
        pnl = (px - pos.avg) * closing * (1.0 if q0 > 0 else -1.0)
        pos.realized += pnl
        pos.trip_pnl += pnl
        rest = q0 + signed
        if abs(rest) <= _EPS:                                  # flat: the round trip ends
            pos.qty, pos.avg = 0.0, 0.0
            self._close_trip(pos)
        elif (rest > 0) != (q0 > 0):                           # flipped: close, open the rest
            self._close_trip(pos)
            pos.qty, pos.avg = rest, px
        else:
            pos.qty = rest

    def _close_trip(self, pos: _Pos) -> None:
        self.trips.append(pos.trip_pnl)
        pos.trip_pnl = 0.0

    def _value(self, marks) -> float:
        total = -self.fees
        for sym, pos in self.pos.items():
            total += pos.realized
            if pos.qty:
                m = marks(sym) if callable(marks) else marks.get(sym)
                total += (( m if m is not None else pos.last_px) - pos.avg) * pos.qty
        return total

    def _point(self, t: float, marks) -> None:
        self.equity.append((round(t, 9), self._value(marks)))

    def mark(self, t: float, mark_price) -> None:
        if self.pos:
            self._point(t, mark_price)

    def summary(self) -> dict:
        realized = sum(p.realized for p in self.pos.values())
        final = self.equity[-1][1] if self.equity else 0.0
        wins = sum(1 for x in self.trips if x > 0)
        peak, dd = float("-inf"), 0.0
        for _, e in self.equity:
            peak = max(peak, e)
            dd = max(dd, peak - e)
        return {"fills": len(self.fills), "round_trips": len(self.trips), "wins": wins,
                "win_rate": wins / len(self.trips) if self.trips else None,
                "realized_gross": realized, "fees": self.fees, "fees_by_venue": dict(self.fees_by_venue),
                "pnl_net": final, "max_drawdown": dd, "maker_qty": self.maker_qty, "taker_qty": self.taker_qty,
                "open_position": {s: p.qty for s, p in self.pos.items() if p.qty}}
