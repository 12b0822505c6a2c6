"""The demo's own settings: the scalping client and the run (``configs/demo/demo.toml``)."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator

from gateway.common.configfile import load_config
from gateway.common.paths import REPO_ROOT

CONFIG_DIR = REPO_ROOT / "configs" / "demo"
POLICIES = ("scalp", "best_price", "dma")


class ClientConfig(BaseModel):
    """The scalping OMS client: which touches it trades, how often and how big."""
    model_config = ConfigDict(extra="forbid")

    seed: int = 7
    symbols: list[str] = Field(default_factory=lambda: ["EURUSD", "BTCUSD", "AAPL"])
    signal_probability: float = Field(0.15, gt=0, le=1)   # chance a touch change fires an order
    sizes: list[PositiveFloat] = Field(default_factory=lambda: [100, 200, 500, 1000])
    size_weights: list[PositiveFloat] | None = None        # same length as sizes; None = uniform
    max_orders_per_s: PositiveFloat = 20.0
    max_in_flight: PositiveInt = 4                          # open orders across symbols
    md_depth: PositiveInt = 5
    drain_timeout_s: PositiveFloat = 5.0                    # wait for open orders at the end
    heartbeat_s: PositiveInt = 30

    @field_validator("symbols", "sizes")
    @classmethod
    def _not_empty(cls, v: list) -> list:
        if not v:
            raise ValueError("must list at least one value")
        return v

    @field_validator("size_weights")
    @classmethod
    def _weights(cls, v: list[float] | None, info) -> list[float] | None:
        sizes = info.data.get("sizes")
        if v is not None and sizes is not None and len(v) != len(sizes):
            raise ValueError(f"needs one weight per size ({len(sizes)}), got {len(v)}")
        return v


class DemoConfig(BaseModel):
    """``configs/demo/demo.toml``: run defaults; command-line flags override them."""
    model_config = ConfigDict(extra="forbid")

    duration_s: PositiveFloat = 30.0
    # The sim's latency schedule (at_s in configs/demo/sim.toml) is written for a
    # reference_duration_s trading window; it is scaled to --duration and shifted by
    # startup_offset_s (sim start -> client trading) so the change lands mid-run.
    reference_duration_s: PositiveFloat = 30.0
    startup_offset_s: float = Field(3.0, ge=0)
    startup_timeout_s: PositiveFloat = 30.0
    status_interval_s: PositiveFloat = 0.5
    decisions_fetch: PositiveInt = 10000
    client: ClientConfig = Field(default_factory=ClientConfig)


def load_demo_config(path: str | Path | None = None) -> DemoConfig:
    return load_config(path or CONFIG_DIR / "demo.toml", DemoConfig)
