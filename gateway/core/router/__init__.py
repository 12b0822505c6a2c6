"""Routing (issue 4): live latency + live books -> one decision per OMS order.

How the gateway wires it::

    market = MarketState(cfg.routing, clock)          # gateway/core/market.py
    for venue in venues: market.register_venue(venue)
    # the process's loop calls market.probe_round() every probe_interval_ms and
    # market.subscribe_pending() after a venue logs on (gateway/apps/server/app.py)
    log = DecisionLog(cfg.routing.decision_log_size, cfg.routing.decision_log_path)
    router = build_router(cfg.routing, market, log=log)                  # per gateway, or
    router = build_router(cfg.routing, market, log=log,
                          policy=cfg.routing.policy_for(oms_session_key))  # per OMS session
    decision = router.decide(intent)   # recorded in router.log already; children empty = reject
    retry = router.retry(intent, decision, leaves)    # IOC remainder, once (scalp + micro_burst)
    ...
    log.close()

``decide`` and ``retry`` record the decision themselves; the gateway does not record again.
``decision.scores`` holds tuples (see ``decisions.SCORE_FIELDS``); ``router.log.recent(n)``
gives dicts for the admin view.
"""
from __future__ import annotations

from gateway.common.clock import MONOTONIC, Clock
from gateway.core.market import MarketState
from gateway.core.router.config import RoutingConfig
from gateway.core.router.decisions import SCORE_FIELDS, DecisionLog, score_dict
from gateway.core.router.policies import POLICIES, BaseRouter, BestPriceRouter, DmaRouter, ScalpRouter, fill_probability

Router = BaseRouter

__all__ = ["build_router", "RoutingConfig", "DecisionLog", "Router", "ScalpRouter", "BestPriceRouter",
           "DmaRouter", "POLICIES", "SCORE_FIELDS", "score_dict", "fill_probability", "MarketState"]


def build_router(cfg: RoutingConfig, market: MarketState, clock: Clock = MONOTONIC,
                 policy: str | None = None, log: DecisionLog | None = None) -> BaseRouter:
    """The router for ``policy`` (default ``cfg.policy``); share ``log`` between routers of one gateway."""
    name = policy or cfg.policy
    try:
        cls = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown routing policy {name!r} (choose from {', '.join(POLICIES)})") from None
    if log is None:
        log = DecisionLog(cfg.decision_log_size, cfg.decision_log_path)
    return cls(cfg, market, clock, log)
