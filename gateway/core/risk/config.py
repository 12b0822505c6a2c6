"""The ``[risk]`` section of the gateway config: limits and kill-switch triggers.

Every limit is optional (``None`` = no limit), so an empty ``[risk]`` section works.
Overrides: ``[risk.sessions.<CompID>]`` per OMS session and ``[risk.symbol_limits.<SYM>]``
per symbol. The most specific value wins: symbol over session over global, resolved
once per (session, symbol) pair and cached by the engine.

Example::

    [risk]
    max_order_qty = 1000
    max_notional = 250000
    max_position = 5000
    max_gross_exposure = 2000000
    price_band_bps = 50
    max_orders_per_second = 200
    symbols = ["AAPL", "MSFT"]
    loss_window_s = 1.0
    loss_threshold = 5000
    daily_loss_limit = 20000
    venue_reject_window_s = 1.0
    venue_reject_threshold = 20

    [risk.sessions.OMS1]
    max_orders_per_second = 500

    [risk.symbol_limits.AAPL]
    tick_size = 0.01
    price_band_ticks = 20
    max_position = 10000
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator


class LimitOverrides(BaseModel):
    """Per-order limits that a session or a symbol may override (unset = inherit)."""
    model_config = ConfigDict(extra="forbid")

    max_order_qty: PositiveFloat | None = None
    max_notional: PositiveFloat | None = None
    max_position: PositiveFloat | None = None       # absolute, per symbol, worst case with open orders
    price_band_ticks: PositiveFloat | None = None   # needs tick_size
    price_band_bps: PositiveFloat | None = None
    tick_size: PositiveFloat | None = None
    allow_market_orders: bool | None = None


class SessionRisk(LimitOverrides):
    """Overrides for one OMS session (keyed by its CompID or its full session key)."""

    max_orders_per_second: PositiveInt | None = None


class SymbolRisk(LimitOverrides):
    """Overrides for one symbol."""


class RiskConfig(BaseModel):
    """Global limits, overrides and kill-switch triggers. Losses are positive amounts."""
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True                    # False: every pre-trade check passes (kill switch still applies)
    max_order_qty: PositiveFloat | None = None
    max_notional: PositiveFloat | None = None
    max_position: PositiveFloat | None = None
    max_gross_exposure: PositiveFloat | None = None  # firm-wide: |positions| at mark + open order notional
    price_band_ticks: PositiveFloat | None = None
    price_band_bps: PositiveFloat | None = None
    tick_size: PositiveFloat | None = None
    allow_market_orders: bool = True
    max_orders_per_second: PositiveInt | None = None
    symbols: list[str] | None = None        # allow-list; None = every symbol
    check_duplicate_cl_ord_id: bool = True
    reject_without_reference: bool = False  # price band / market notional with no mark: reject (True) or skip

    kill_switch_enabled: bool = True
    loss_window_s: PositiveFloat = 1.0
    loss_threshold: PositiveFloat | None = None    # trip when PnL drops by more than this within the window
    daily_loss_limit: PositiveFloat | None = None  # trip when realized+unrealized since day start < -limit
    venue_reject_window_s: PositiveFloat = 1.0
    # one client's rejects suspend that client (its OMS session), not the firm:
    venue_reject_threshold: PositiveInt | None = None       # suspend a session after this many in the window
    firm_venue_reject_threshold: PositiveInt | None = None  # trip the firm kill switch (all sessions' rejects)
    max_in_flight_per_venue: PositiveInt | None = None      # back-pressure: orders sent, not yet answered
    pnl_ring_size: PositiveInt = 65536      # bound on PnL samples kept for the rolling window

    sessions: dict[str, SessionRisk] = Field(default_factory=dict)
    symbol_limits: dict[str, SymbolRisk] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ticks_band_has_a_tick_size(self) -> "RiskConfig":
        """A band in ticks needs a tick size for every symbol it can apply to."""
        if self.tick_size is not None:
            return self
        for sym, over in self.symbol_limits.items():
            if over.price_band_ticks is not None and over.tick_size is None:
                raise ValueError(f"risk.symbol_limits.{sym}.price_band_ticks needs a tick_size")
        wide = [f"risk.sessions.{k}" for k, v in self.sessions.items()
                if v.price_band_ticks is not None and v.tick_size is None]
        if self.price_band_ticks is not None:
            wide.insert(0, "risk")
        if not wide:
            return self
        # a global or per-session band covers every allowed symbol: each needs its own tick size
        covered = self.symbols is not None and all(
            s in self.symbol_limits and self.symbol_limits[s].tick_size is not None for s in self.symbols)
        if not covered:
            raise ValueError(f"{wide[0]}.price_band_ticks needs a tick_size in [risk] "
                             f"(or one per symbol for every symbol in the allow-list)")
        return self
