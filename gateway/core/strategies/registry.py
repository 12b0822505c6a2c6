"""Tactic name -> (strategy class, config class), for ``fixgw trade --tactic NAME``.

A driver loads a tactic with::

    cls, cfg_cls = TACTICS[name]          # or lookup(name), which names the choices on a typo
    strategy = cls(load_config(path, cfg_cls))

Every registered class implements ``base.Strategy`` plus ``stop(now, market)`` and
``is_flat()`` (see ``base.py`` and ``roundtrip.py``), takes its config as its only
argument and exposes its ``RoundTripBook`` as ``.trips`` (``trip_dicts()`` for reports).
"""
from __future__ import annotations

from pydantic import BaseModel

from gateway.core.strategies.liquidity_fade import LiquidityFade, LiquidityFadeConfig
from gateway.core.strategies.momentum import Momentum, MomentumConfig
from gateway.core.strategies.scalper import Scalper, ScalperConfig
from gateway.core.strategies.spread_capture import SpreadCapture, SpreadCaptureConfig

TACTICS: dict[str, tuple[type, type[BaseModel]]] = {
    "scalper": (Scalper, ScalperConfig),
    "liquidity_fade": (LiquidityFade, LiquidityFadeConfig),
    "momentum": (Momentum, MomentumConfig),
    "spread_capture": (SpreadCapture, SpreadCaptureConfig),
}


def lookup(name: str) -> tuple[type, type[BaseModel]]:
    try:
        return TACTICS[name]
    except KeyError:
        raise KeyError(f"unknown tactic {name!r}; choose one of {', '.join(sorted(TACTICS))}") from None
