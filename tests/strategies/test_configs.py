"""Every shipped tactic config loads into its model."""
from __future__ import annotations

from gateway.common.configfile import load_config
from gateway.common.paths import REPO_ROOT
from gateway.core.strategies.scalper import ScalperConfig


def test_demo_scalper_config_loads():
    cfg = load_config(REPO_ROOT / "configs/demo/scalper.toml", ScalperConfig)
    assert cfg.exits.target_ticks == 1 and cfg.signal == "imbalance"
