"""The ``[routing]`` section of the gateway config: policy, probes, books, decision log.

Example::

    [routing]
    policy = "scalp"                 # scalp | best_price | dma
    probe_interval_ms = 100          # our TestRequest probe per venue session
    probe_primed = true              # each probe: a primer, then the measured one at its answer (market.py)
    stale_after_intervals = 5        # no RTT sample for 5 intervals -> the venue counts as slow
    latency_tie_tolerance_us = 50    # latencies this close to the fastest count as ties
    latency_ceiling_us = 5000        # scalp: reject when no venue is below it
    md_symbols = ["EURUSD", "BTCUSD", "AAPL"]
    book_stale_after_s = 2.0         # no W/X and no probe answer for 2 s -> stale; 0 = off

    [routing.session_policies]
    OMS2 = "best_price"              # per OMS session (CompID) override

Book staleness (``book_stale_after_s``): a book is always stale before its first snapshot
and after its venue session drops (until the resubscription's snapshot arrives). With a
value > 0 (default 2 s) it is also stale when no market data for it arrived for that long AND the
venue's latency probes went unanswered for that long too: a quiet but connected market
(probes answered on the session that carries the subscription) stays usable.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PolicyName = Literal["scalp", "best_price", "dma"]


class RoutingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: PolicyName = "scalp"
    session_policies: dict[str, PolicyName] = Field(default_factory=dict)  # OMS CompID -> policy
    default_venue: str | None = None          # dma: used when the order has no ExDestination(100)

    # live latency
    probe_interval_ms: float = Field(100.0, gt=0, le=60_000)
    # A primer TestRequest runs both ends' probe code and the path between; the measured probe
    # follows its answer at once, so the sample is the venue's latency, not cold caches and
    # wake-ups. Two TestRequests per probe against each venue's probe_max_per_s. False: one
    # TestRequest per probe, measured cold (warm_probes then warms our half).
    probe_primed: bool = True
    stale_after_intervals: int = Field(5, ge=1)
    latency_window: int = Field(200, ge=2, le=100_000)     # samples kept for p50/p99/jitter
    ewma_alpha: float = Field(0.2, gt=0, le=1)
    rank_latency: Literal["recent", "ewma"] = "recent"     # recent = max(median of last N, min of last 2); latency.py
    recent_samples: int = Field(5, ge=1, le=101)           # N
    latency_tie_tolerance_us: float = Field(50.0, ge=0)
    latency_ceiling_us: float | None = Field(None, gt=0)

    # scalp fill model
    # "enough depth": expected fill >= this. Latency ranks first among venues with enough
    # depth (the order: latency, then fill probability, then price); a faster venue
    # expected to fill only part of the order below this loses to a slower one above it.
    min_fill_prob: float = Field(0.5, ge=0, le=1)
    depletion_tau_s: float = Field(1.0, gt=0)              # memory of the touch depletion rate
    micro_burst: bool = False

    # market data
    md_symbols: list[str] = Field(default_factory=lambda: ["EURUSD", "BTCUSD", "AAPL"])
    md_depth: int = Field(10, ge=0)                        # MarketDepth(264); 0 = full book
    book_stale_after_s: float = Field(2.0, ge=0)            # 0 = stale only on session drop

    # decision log
    decision_log_size: int = Field(10_000, ge=1)
    decision_log_path: str | None = None                   # JSONL, appended by a background flusher

    @field_validator("md_symbols")
    @classmethod
    def _symbols(cls, v: list[str]) -> list[str]:
        cleaned = [s.strip() for s in v]
        if any(not s for s in cleaned):
            raise ValueError("md_symbols must not contain empty names")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError(f"md_symbols has duplicates: {cleaned}")
        return cleaned

    @field_validator("default_venue")
    @classmethod
    def _venue(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("default_venue must be a venue name or left out")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "RoutingConfig":
        if self.recent_samples > self.latency_window:
            raise ValueError(f"recent_samples ({self.recent_samples}) must not exceed "
                             f"latency_window ({self.latency_window})")
        return self

    @property
    def probe_interval_s(self) -> float:
        return self.probe_interval_ms / 1000.0

    @property
    def latency_stale_after_s(self) -> float:
        """No RTT sample for this long -> the venue counts as slow."""
        return self.probe_interval_s * self.stale_after_intervals

    def policy_for(self, oms_session: str | None) -> str:
        """The policy for an OMS session, by CompID ('OMS1') or full key ('FIX.4.4:FIXGW->OMS1')."""
        if oms_session and self.session_policies:
            for name in (oms_session, *_comp_ids(oms_session)):
                if name in self.session_policies:
                    return self.session_policies[name]
        return self.policy


def _comp_ids(key: str) -> list[str]:
    """'FIX.4.4:FIXGW->OMS1' -> ['OMS1', 'FIXGW'] (the counterparty first)."""
    body = key.split(":", 1)[-1]
    if "->" not in body:
        return []
    ours, theirs = body.split("->", 1)
    return [theirs, ours]
