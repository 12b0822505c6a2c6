"""The simulator's configuration (TOML -> pydantic v2; see configs/sim.toml for the format)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.common import procs
from gateway.common.configfile import load_config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SymbolConfig(_Strict):
    symbol: str = Field(min_length=1)
    tick_size: float = Field(gt=0)
    ref_price: float = Field(gt=0)

    @model_validator(mode="after")
    def _ref_on_tick(self) -> "SymbolConfig":
        ticks = self.ref_price / self.tick_size
        if abs(ticks - round(ticks)) > 1e-6:
            raise ValueError(f"ref_price {self.ref_price} is not a multiple of tick_size {self.tick_size}")
        return self


class CounterpartyConfig(_Strict):
    comp_id: str = Field(min_length=1)
    # Certification scenarios start every logon at sequence 1.
    reset_on_logon: bool = False
    # Validation switches (native SessionSettings / quickfix ValidateUserDefinedFields,
    # CheckLatency, MaxLatency).
    validate_user_defined_fields: bool = True
    check_latency: bool = True
    max_latency_s: float = Field(default=120.0, gt=0)


class LatencyStep(_Strict):
    at_s: float = Field(ge=0)
    base_us: float = Field(ge=0)
    jitter_us: float = Field(default=0.0, ge=0)


class LatencyConfig(_Strict):
    """One-way delay applied by the venue's TCP proxy to every chunk, in both directions."""
    base_us: float = Field(default=0.0, ge=0)
    jitter_us: float = Field(default=0.0, ge=0)
    jitter: Literal["none", "normal", "exponential"] = "normal"
    schedule: list[LatencyStep] = Field(default_factory=list)
    # Run the proxy even at zero latency (so set_latency() can add delay later).
    always_proxy: bool = False

    @field_validator("schedule")
    @classmethod
    def _sorted(cls, steps: list[LatencyStep]) -> list[LatencyStep]:
        return sorted(steps, key=lambda s: s.at_s)

    @property
    def needs_proxy(self) -> bool:
        return self.always_proxy or self.base_us > 0 or self.jitter_us > 0 or bool(self.schedule)


class FlowConfig(_Strict):
    """Background order flow of other participants, per symbol (Poisson arrivals)."""
    enabled: bool = True
    rate_per_s: float = Field(default=20.0, ge=0)
    marketable_fraction: float = Field(default=0.2, ge=0, le=1)
    cancel_fraction: float = Field(default=0.3, ge=0, le=1)
    mean_qty: float = Field(default=100.0, gt=0)
    initial_levels: int = Field(default=10, ge=0)
    level_qty: int = Field(default=500, ge=1)
    spread_ticks: int = Field(default=1, ge=1)
    # How far (in ticks) new passive orders land behind the touch, at most.
    max_offset_ticks: int = Field(default=5, ge=0)
    # Cap on our resting orders per symbol: at the cap a new passive order first cancels
    # a random resting one, so a long run keeps a bounded book.
    max_resting_per_symbol: int = Field(default=300, ge=1)
    # Pull of the quoting anchor back to the reference price (0 = none, 1 = always at ref).
    mean_reversion: float = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _fractions(self) -> "FlowConfig":
        if self.marketable_fraction + self.cancel_fraction > 1:
            raise ValueError("marketable_fraction + cancel_fraction must be at most 1")
        return self


class VenueMarketConfig(_Strict):
    """This venue's part in the cross-venue market (used when [market] is enabled)."""
    # A quoting market maker re-centres on the fair value ``lag_us`` (+ exponential
    # ``lag_jitter_us``) after each move: 0 = the lead venue.
    quote: bool = True
    lag_us: float = Field(default=0.0, ge=0)
    lag_jitter_us: float = Field(default=0.0, ge=0)
    quote_qty: int = Field(default=200, ge=1)
    quote_levels: int = Field(default=2, ge=1, le=20)
    # Competitors may send IOCs here.
    competitors: bool = True


class CompetitorConfig(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_]+$")
    reaction_us: float = Field(default=500.0, ge=0)         # a touch change -> decision
    reaction_jitter_us: float = Field(default=100.0, ge=0)  # exponential
    entry_us: float = Field(default=200.0, ge=0)            # decision -> IOC at the venue
    venue_entry_us: dict[str, float] = Field(default_factory=dict)   # per-venue override
    take_qty: int = Field(default=300, ge=1)
    min_edge_ticks: float = Field(default=0.5, ge=0)
    max_spread_ticks: int = Field(default=2, ge=1)


class MarketConfig(_Strict):
    """Cross-venue price formation and latency-sensitive competitors (sim_exchange/market.py).
    Needs every venue in one process: with ``--venue`` (one venue per process) the quoter
    still follows the fair value but no competitor sees another venue."""
    enabled: bool = False
    seed: int = 7
    move_rate_per_s: float = Field(default=2.0, ge=0)       # fair-value jumps per symbol
    max_move_ticks: int = Field(default=1, ge=1)
    reversion: float = Field(default=0.02, ge=0, le=0.4)    # pull of P(up) back to ref per tick away
    competitors_enabled: bool = True
    competitors: list[CompetitorConfig] = Field(default_factory=list)


def _default_counterparties() -> list[CounterpartyConfig]:
    return [CounterpartyConfig(comp_id="FIXGW"), CounterpartyConfig(comp_id="CLIENT"),
            CounterpartyConfig(comp_id="CERT", reset_on_logon=True)]


class VenueConfig(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_]+$")
    port: int = Field(ge=1, le=65535)
    sender_comp_id: str | None = None
    seed: int = 1
    counterparties: list[CounterpartyConfig] = Field(default_factory=_default_counterparties)
    # Symbols this venue lists (default: all top-level [[symbols]]).
    symbols: list[str] | None = None
    latency: LatencyConfig = Field(default_factory=LatencyConfig)
    flow: FlowConfig = Field(default_factory=FlowConfig)
    market: VenueMarketConfig = Field(default_factory=VenueMarketConfig)
    # FIX engine of this venue: "native" (asyncio, gateway.fix) or "quickfix"; default: the top-level engine.
    engine: Literal["native", "quickfix"] | None = None
    # Native engine: after each read the venue's loop keeps polling its sockets, without
    # sleeping, for this many microseconds (0 = off, the default: the venue sleeps in epoll
    # between messages). A real matching engine does not sleep; a window longer than the
    # gap between the messages it gets (a gateway probing every 100 ms: > 100000) keeps the
    # venue awake, so no wake-up sits in what a probe or an order measures. It burns a CPU
    # while it polls: give the process a core of its own (``cpu``). One loop serves every
    # native venue of the process, so the longest window of them applies to all
    # (gateway/fix/transport.py ``BusyPoll``; docs/operations.md "Busy polling").
    busy_poll_us: int = Field(default=0, ge=0, le=10_000_000)

    @property
    def comp_id(self) -> str:
        return self.sender_comp_id or self.name


class SimConfig(_Strict):
    store_dir: str = "var/sim/store"
    log_dir: str = ""
    # quickfix ThreadedSocketAcceptor (a thread per connection) or SocketAcceptor (one thread).
    threaded_acceptor: bool = True
    # FIX engine for every venue (a venue may override): "native" or "quickfix".
    engine: Literal["native", "quickfix"] = "native"
    # Pin the simulator process to one CPU (-1 = the last one it may use; None = no pinning),
    # e.g. beside a venue's ``busy_poll_us`` so the poller has a core of its own.
    cpu: int | None = None
    market: MarketConfig = Field(default_factory=MarketConfig)
    symbols: list[SymbolConfig] = Field(min_length=1)
    venues: list[VenueConfig] = Field(min_length=1)

    @field_validator("cpu")
    @classmethod
    def _cpu_available(cls, v: int | None) -> int | None:
        return procs.check_cpu(v)

    def pin_cpu(self) -> int | None:
        """Apply ``cpu`` to the calling thread (threads started later inherit it)."""
        return procs.pin_cpu(self.cpu)

    @model_validator(mode="after")
    def _consistent(self) -> "SimConfig":
        known = {s.symbol for s in self.symbols}
        if len(known) != len(self.symbols):
            raise ValueError("symbols: duplicate symbol")
        names, ports, comp_ids = set(), set(), set()
        for v in self.venues:
            if v.name in names:
                raise ValueError(f"venues: duplicate venue name {v.name!r}")
            if v.comp_id in comp_ids:
                # quickfix keys its sessions by CompIDs, process-wide
                raise ValueError(f"venues.{v.name}.sender_comp_id: {v.comp_id!r} is used by another venue")
            comp_ids.add(v.comp_id)
            if v.port in ports:
                raise ValueError(f"venues: duplicate port {v.port}")
            names.add(v.name)
            ports.add(v.port)
            unknown = set(v.symbols or ()) - known
            if unknown:
                raise ValueError(f"venues.{v.name}.symbols: unknown symbol(s) {sorted(unknown)}")
            if v.busy_poll_us and self.venue_engine(v) != "native":
                raise ValueError(f"venues.{v.name}.busy_poll_us: only the native engine polls "
                                 "(quickfix runs its own threads); set it to 0")
        for c in self.market.competitors:
            unknown = set(c.venue_entry_us) - names
            if unknown:
                raise ValueError(f"market.competitors.{c.name}.venue_entry_us: unknown venue(s) {sorted(unknown)}")
        return self

    def venue_engine(self, venue: VenueConfig) -> str:
        return venue.engine or self.engine

    def venue_symbols(self, venue: VenueConfig) -> list[SymbolConfig]:
        if venue.symbols is None:
            return list(self.symbols)
        by_name = {s.symbol: s for s in self.symbols}
        return [by_name[s] for s in venue.symbols]

    @classmethod
    def load(cls, path: str | Path) -> "SimConfig":
        """Read and validate a TOML file; raises gateway.common.configfile.ConfigError naming the field."""
        return load_config(path, cls)
