"""Pre-trade risk checks, positions/PnL and the kill switch (issue 5).

``RiskEngine(cfg, clock, mark_price=None)`` implements ``gateway.model.RiskGate``;
``RiskConfig`` is the ``[risk]`` config section.
"""
from gateway.risk.config import RiskConfig, SessionRisk, SymbolRisk
from gateway.risk.engine import ACTIVE, HALTED, REDUCING, RiskEngine

__all__ = ["RiskConfig", "SessionRisk", "SymbolRisk", "RiskEngine", "ACTIVE", "REDUCING", "HALTED"]
