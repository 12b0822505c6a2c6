"""The backtest config file: ``[backtest]`` (models, fees, strategy) next to the gateway's ``[routing]`` and ``[risk]``.

Example::

    [backtest]
    strategy = "tests.backtest.strategies:TouchScalper"   # module:Class, built with params
    queue = "risk_averse"            # risk_averse | probabilistic
    queue_prob = "power"             # probabilistic: power | power2 | power3 | log | log2
    queue_n = 3.0
    seed = 7
    synthesize_probes = true         # venues without recorded probes get probe samples from their model

    [backtest.params]                # keyword arguments of the strategy
    qty = 1

    [backtest.venues.ALPHA]
    latency = "constant"             # constant | normal | empirical (half the recorded probe RTTs)
    empirical_window_s = 0           # empirical: > 0 uses only probes sent within +-this of the order
    entry_us = 150
    response_us = 150
    jitter_us = 0                    # normal: one-way = N(entry_us, jitter_us), both ways
    taker_bps = 0.2                  # fees: bps of notional and/or per unit; negative = rebate
    maker_bps = -0.1

    [routing]                        # gateway/core/router/config.py, unchanged
    policy = "scalp"

    [risk]                           # gateway/core/risk/config.py, unchanged
    max_position = 10
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.common.configfile import ConfigError, validate_config

from gateway.core.models.latency import (ConstantLatency, EmpiricalLatency, LatencyModel, ScheduledJitterLatency,
                                         WindowedEmpiricalLatency)
from gateway.core.risk.config import RiskConfig
from gateway.core.router.config import RoutingConfig


class VenueSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency: Literal["constant", "normal", "empirical"] = "constant"
    entry_us: float = Field(100.0, ge=0)
    response_us: float = Field(100.0, ge=0)
    jitter_us: float = Field(0.0, ge=0)
    maker_bps: float = 0.0
    taker_bps: float = 0.0
    maker_per_unit: float = 0.0
    taker_per_unit: float = 0.0
    empirical_window_s: float = Field(0.0, ge=0)   # empirical: > 0 draws from probes within +-window of the order

    def fee(self, qty: float, px: float, maker: bool) -> float:
        if maker:
            return qty * px * self.maker_bps * 1e-4 + qty * self.maker_per_unit
        return qty * px * self.taker_bps * 1e-4 + qty * self.taker_per_unit

    def model(self, seed: int, rtt_samples_s=(), sample_times_s=None) -> LatencyModel:
        if self.latency == "constant":
            return ConstantLatency(self.entry_us * 1e-6, self.response_us * 1e-6)
        if self.latency == "normal":
            return ScheduledJitterLatency(self.entry_us, self.jitter_us, "normal", seed=seed)
        if len(rtt_samples_s) == 0:
            raise ValueError("latency = 'empirical' needs probe samples of the venue in the recording")
        if self.empirical_window_s > 0 and sample_times_s is not None:
            return WindowedEmpiricalLatency(sample_times_s, rtt_samples_s, self.empirical_window_s, seed)
        return EmpiricalLatency(rtt_samples_s, seed)


class BacktestSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    queue: Literal["risk_averse", "probabilistic"] = "risk_averse"
    queue_prob: str = "power"
    queue_n: float = 3.0
    lot: float = Field(1.0, gt=0)
    seed: int = 0
    venues: dict[str, VenueSpec] = Field(default_factory=dict)
    default_venue: VenueSpec = Field(default_factory=VenueSpec)
    tick_sizes: dict[str, float] = Field(default_factory=dict)
    default_tick_size: float = Field(0.01, gt=0)
    synthesize_probes: bool = True
    equity_interval_s: float = Field(1.0, gt=0)
    oms_session: str = "BACKTEST"
    # every: on_book after each level row; touch: only when the venue's top of book moved;
    # message: once per venue message (rows of one book with the same receive time), as the live feed
    notify: Literal["every", "touch", "message"] = "every"

    def venue(self, name: str) -> VenueSpec:
        return self.venues.get(name, self.default_venue)


class BacktestConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")   # a gateway config file may carry other sections

    backtest: BacktestSection = Field(default_factory=BacktestSection)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> BacktestConfig:
    """Read a TOML file (or defaults) and apply dotted overrides, e.g. {"backtest.params.qty": 2}."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for key, value in (overrides or {}).items():
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return validate_config(raw, BacktestConfig, str(path or "<defaults + --set>"))
