"""The gateway's configuration (`fixgw run --config configs/gateway.toml`).

One validated model for the whole process; quickfix SessionSettings are built from it
(``session_settings``), so a config error is reported with its field before any socket
opens. The ``[routing]`` and ``[risk]`` sections belong to their engines.
"""
from __future__ import annotations

import os
from pathlib import Path
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.fix import quickfix_backend as fixedge
from gateway.core.risk.config import RiskConfig
from gateway.core.router.config import RoutingConfig

_COMP_ID_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")


def _comp_id(value: str) -> str:
    if not value or not set(value) <= _COMP_ID_CHARS:
        raise ValueError(f"a CompID must be non-empty letters, digits, '_', '-' or '.' (got {value!r})")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OmsClient(_Strict):
    """An upstream OMS/EMS allowed to log on (its SenderCompID)."""
    comp_id: str
    password: str | None = None          # checked against Password(554) at logon when set
    username: str | None = None          # checked against Username(553) when set
    reset_on_logon: bool = False         # e.g. for certification runs that start every case at 1

    _check_id = field_validator("comp_id")(lambda cls, v: _comp_id(v))


class OmsConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(9100, ge=1, le=65535)
    comp_id: str = "FIXGW"
    heartbeat_s: int = Field(30, ge=1, le=3600)     # counterparties' HeartBtInt is taken from their logon
    clients: list[OmsClient] = Field(min_length=1)

    _check_id = field_validator("comp_id")(lambda cls, v: _comp_id(v))

    @field_validator("clients")
    @classmethod
    def _unique_clients(cls, clients: list[OmsClient]) -> list[OmsClient]:
        seen: set[str] = set()
        for c in clients:
            if c.comp_id in seen:
                raise ValueError(f"client comp_id {c.comp_id!r} is listed twice")
            seen.add(c.comp_id)
        return clients


class VenueConfig(_Strict):
    name: str                            # LastMkt(30) and ExDestination(100) value
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    sender_comp_id: str = "FIXGW"
    target_comp_id: str | None = None    # default: the venue name
    heartbeat_s: int = Field(30, ge=1, le=3600)
    reconnect_s: int = Field(1, ge=1, le=3600)

    _check_ids = field_validator("name", "sender_comp_id")(lambda cls, v: _comp_id(v))

    @property
    def target(self) -> str:
        return self.target_comp_id or self.name


class AdminConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(9180, ge=0, le=65535)     # 0 = no admin endpoint

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, v: str) -> str:
        if v not in ("127.0.0.1", "localhost"):
            raise ValueError("the admin endpoint has no authentication: it listens on loopback only")
        return v


class GatewayConfig(_Strict):
    store_dir: str = "var/gateway/store"       # FileStores of every session + the order journal
    log_dir: str = ""                          # "" = no FIX message logs
    # Pin the process to one CPU (-1 = the last one the process may use; None = no pinning).
    # Only one thread runs Python at a time (the GIL); with quickfix's two threads on one
    # core a GIL hand-over is a local switch, not a cross-core wake-up (measured: +46% orders/s).
    cpu: int | None = None
    oms: OmsConfig
    venues: list[VenueConfig] = Field(min_length=1)
    admin: AdminConfig = AdminConfig()
    routing: RoutingConfig = RoutingConfig()
    risk: RiskConfig = RiskConfig()

    @field_validator("cpu")
    @classmethod
    def _cpu_available(cls, v: int | None) -> int | None:
        allowed = sorted(os.sched_getaffinity(0))
        if v is not None and v != -1 and v not in allowed:
            raise ValueError(f"CPU {v} is not available to this process (allowed: {allowed}, or -1 for the last)")
        return v

    def pin_cpu(self) -> int | None:
        """Apply ``cpu`` to the calling thread (threads started later inherit it)."""
        if self.cpu is None:
            return None
        cpu = sorted(os.sched_getaffinity(0))[-1] if self.cpu == -1 else self.cpu
        os.sched_setaffinity(0, {cpu})
        return cpu

    @model_validator(mode="after")
    def _consistent(self) -> "GatewayConfig":
        names = [v.name for v in self.venues]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"venues: name {dupes[0]!r} is listed twice")
        sessions = [(v.sender_comp_id, v.target) for v in self.venues]
        if len(set(sessions)) != len(sessions):
            raise ValueError("venues: two venues share the same sender_comp_id/target_comp_id session")
        if self.routing.default_venue is not None and self.routing.default_venue not in names:
            raise ValueError(f"routing.default_venue {self.routing.default_venue!r} is not one of the venues {names}")
        return self

    def venue(self, name: str) -> VenueConfig:
        return next(v for v in self.venues if v.name == name)

    @property
    def journal_path(self) -> Path:
        return Path(self.store_dir) / "orders.journal"


def session_settings(cfg: GatewayConfig):
    """(acceptor settings, initiator settings) for quickfix, from the validated config."""
    default = fixedge.engine_defaults(Path(cfg.store_dir) / "fix", cfg.log_dir or None)
    oms_sessions = [{
        "ConnectionType": "acceptor",
        "SenderCompID": cfg.oms.comp_id,
        "TargetCompID": c.comp_id,
        "SocketAcceptHost": cfg.oms.host,
        "SocketAcceptPort": cfg.oms.port,
        "HeartBtInt": cfg.oms.heartbeat_s,
        "ResetOnLogon": c.reset_on_logon,
        "ResetOnLogout": c.reset_on_logon,
        "ResetOnDisconnect": c.reset_on_logon,
    } for c in cfg.oms.clients]
    venue_sessions = [{
        "ConnectionType": "initiator",
        "SenderCompID": v.sender_comp_id,
        "TargetCompID": v.target,
        "SocketConnectHost": v.host,
        "SocketConnectPort": v.port,
        "HeartBtInt": v.heartbeat_s,
        "ReconnectInterval": v.reconnect_s,
    } for v in cfg.venues]
    return fixedge.build_settings(default, oms_sessions), fixedge.build_settings(default, venue_sessions)
