"""Every shipped tactic config loads into its model, and the registry names them all."""
from __future__ import annotations

import pytest

from gateway.common.configfile import load_config
from gateway.common.paths import REPO_ROOT
from gateway.core.strategies.registry import TACTICS, lookup
from gateway.core.strategies.scalper import ScalperConfig


def test_demo_scalper_config_loads():
    cfg = load_config(REPO_ROOT / "configs/demo/scalper.toml", ScalperConfig)
    # the demo trades the simulator's lead venue (configs/demo/sim.toml): its moves leave stale quotes
    assert cfg.exits.target_ticks == 1 and cfg.signal == "lead_move" and cfg.lead_venue == "BRAVO"


@pytest.mark.parametrize("name", sorted(TACTICS))
def test_tactic_config_loads_and_builds(name):
    cls, cfg_cls = lookup(name)
    s = cls(load_config(REPO_ROOT / f"configs/tactics/{name}.toml", cfg_cls))
    assert s.name == name and s.timer_interval_s > 0 and s.is_flat()


def test_unknown_tactic_names_the_choices():
    with pytest.raises(KeyError, match="spread_capture"):
        lookup("nope")


@pytest.mark.parametrize("tactic", ["liquidity_fade", "momentum", "spread_capture"])
def test_scenario_files_load_and_build(tactic):
    from gateway.core.matching.scenarios import ScenarioFile, build_scenario
    f = load_config(REPO_ROOT / f"configs/tactics/{tactic}-sim.toml", ScenarioFile)
    gen = build_scenario(tactic, f, start_at=10.0)
    assert gen.next_at() > 10.0
