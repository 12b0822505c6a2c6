"""The demo's own settings (``configs/demo/demo.toml``): the run, the scalper, and the kill
switch written into each run's gateway config."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from gateway.common.configfile import load_config
from gateway.common.paths import REPO_ROOT
from gateway.core.strategies.scalper import ScalperConfig

CONFIG_DIR = REPO_ROOT / "configs" / "demo"
POLICIES = ("scalp", "best_price", "dma")


class KillSwitchConfig(BaseModel):
    """Written into the run's gateway ``[risk]`` when the gateway template sets no loss threshold."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    loss_window_s: PositiveFloat = 5.0
    loss_threshold: PositiveFloat = 1500.0     # money: PnL drop within the window that trips it


class DemoConfig(BaseModel):
    """``configs/demo/demo.toml``: run defaults; command-line flags override them."""
    model_config = ConfigDict(extra="forbid")

    duration_s: PositiveFloat = 20.0
    # The sim's latency schedule (at_s in configs/demo/sim.toml) is written for a
    # reference_duration_s trading window; it is scaled to --duration and shifted by
    # startup_offset_s (sim start -> client trading) so the change lands mid-run.
    reference_duration_s: PositiveFloat = 30.0
    startup_offset_s: float = Field(3.0, ge=0)
    startup_timeout_s: PositiveFloat = 30.0
    status_interval_s: PositiveFloat = 0.5
    decisions_fetch: PositiveInt = 10000
    strategy: str = "configs/demo/scalper.toml"   # ScalperConfig TOML, relative to the repository
    md_depth: PositiveInt = 5
    probe_interval_s: PositiveFloat = 0.05
    # The client's market data sessions skip the FIX dictionary check of each W/X (the
    # gateway validates everything it takes in; our own simulator is the only sender):
    # Measured on the signal's path: bytes read -> signal 231-269 us with it on, 151-196 off.
    md_validate: bool = False
    drain_timeout_s: PositiveFloat = 5.0
    heartbeat_s: PositiveInt = 30
    control: bool = True          # also run every policy with the competitors off (the appendix)
    kill_switch: KillSwitchConfig = Field(default_factory=KillSwitchConfig)

    def scalper(self) -> ScalperConfig:
        path = Path(self.strategy)
        return load_config(path if path.is_absolute() else REPO_ROOT / path, ScalperConfig)


def load_demo_config(path: str | Path | None = None) -> DemoConfig:
    return load_config(path or CONFIG_DIR / "demo.toml", DemoConfig)
