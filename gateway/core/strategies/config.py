"""The tactics' configurations (pydantic: TOML tables validated, each bad field named).

Apart from the tactics themselves so that those can be compiled (mypyc compiles the order
path's modules; a pydantic model stays interpreted) and so that every tactic's settings are
in one place. Each tactic's module re-exports its own config (``from ...scalper import
ScalperConfig`` keeps working).
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ExitConfig(BaseModel):
    """How a round trip ends. TOML: the ``[exits]`` table of a tactic's config."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    target_ticks: float = Field(1.0, gt=0)
    stop_ticks: float = Field(2.0, gt=0)
    max_hold_s: float = Field(2.0, gt=0)
    max_exit_retries: int = Field(2, ge=0)           # IOC at the touch again after a miss
    flatten_through_ticks: int = Field(3, ge=1)      # then IOC this far through the touch
    max_flatten_attempts: int = Field(2, ge=0)       # ... this many times, then market orders
    max_exit_orders: int = Field(20, ge=1)           # then the trip is 'stuck'
    multiplier: float = Field(1.0, gt=0)             # money per unit of quantity per unit of price
    fee_per_unit: float = Field(0.0, ge=0)           # money per unit filled, every fill


IdPrefix = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_]+$")]   # {prefix}-{n} order ids


class TacticConfig(BaseModel):
    """What every tactic's config has; each sets its own ``name`` and ``id_prefix`` defaults."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    id_prefix: IdPrefix
    symbols: list[str] = Field(min_length=1)
    qty: float = Field(100, gt=0)
    timer_interval_s: float = Field(0.05, gt=0)
    exits: ExitConfig = Field(default_factory=ExitConfig)


class ScalperConfig(TacticConfig):
    """TOML: configs/demo/scalper.toml (top level) with an ``[exits]`` table."""

    name: str = "scalper"
    id_prefix: IdPrefix = "SCALP"
    signal: Literal["imbalance", "lead_move"] = "imbalance"
    imbalance_ratio: float = Field(3.0, gt=1)
    min_touch_qty: float = Field(0.0, ge=0)          # imbalance: both sides must show at least this
    lead_venue: str | None = None
    lead_move_ticks: float = Field(1.0, gt=0)
    max_spread_ticks: float = Field(2.0, gt=0)
    venue: str | None = None                         # pin every order (dma); None = the router chooses
    cooldown_s: float = Field(0.05, ge=0)
    max_open_trips_per_symbol: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _lead_needs_venue(self) -> "ScalperConfig":
        if self.signal == "lead_move" and not self.lead_venue:
            raise ValueError("lead_venue: required when signal = 'lead_move'")
        return self


class MomentumConfig(TacticConfig):
    """TOML: configs/tactics/momentum.toml with an ``[exits]`` table."""

    name: str = "momentum"
    id_prefix: IdPrefix = "MOM"
    window_s: float = Field(0.2, gt=0)
    min_window_volume: float = Field(500, gt=0)
    min_base_volume: float = Field(100, gt=0)     # floor of v_prev, so a quiet market's first trade is no burst
    accel_ratio: float = Field(3.0, gt=1)
    min_side_share: float = Field(0.7, gt=0.5, le=1)
    max_rtt_us: float = Field(1000.0, gt=0)
    cooldown_s: float = Field(0.5, ge=0)
    max_open_trips_per_symbol: int = Field(1, ge=1)


class LiquidityFadeConfig(TacticConfig):
    """TOML: configs/tactics/liquidity_fade.toml with an ``[exits]`` table."""

    name: str = "liquidity_fade"
    id_prefix: IdPrefix = "FADE"
    depth_levels: int = Field(5, ge=2)
    near_ticks: float = Field(5, ge=0)
    wall_multiple: float = Field(5.0, gt=1)
    min_wall_qty: float = Field(0.0, ge=0)
    min_lifetime_s: float = Field(0.5, ge=0)
    max_flickers: int = Field(1, ge=0)
    pull_distance_ticks: float = Field(2, ge=0)
    trigger_ticks: float = Field(1, ge=0)
    stop_beyond_wall_ticks: float = Field(1, ge=0)
    max_walls_tracked: int = Field(1000, ge=10)      # bounded memory on long runs


class SpreadCaptureConfig(TacticConfig):
    """TOML: configs/tactics/spread_capture.toml with an ``[exits]`` table (used by the unwind)."""

    name: str = "spread_capture"
    id_prefix: IdPrefix = "XSC"
    min_qty: float = Field(1, gt=0)
    fee_ticks_per_leg: float = Field(0.2, ge=0)
    base_margin_ticks: float = Field(0.2, ge=0)
    margin_ticks_per_ms: float = Field(0.5, ge=0)
    cooldown_s: float = Field(0.05, ge=0)
    exits: ExitConfig = Field(default_factory=lambda: ExitConfig(max_hold_s=0.5))
