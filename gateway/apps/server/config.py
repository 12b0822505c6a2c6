"""The gateway's configuration (`fixgw run --config configs/gateway.toml`).

One validated model for the whole process. ``engine = "native" | "quickfix"`` picks the
FIX backend (both behind ``gateway.fix.engine.create_engine``); every OMS client and every
venue maps onto one ``SessionSettings`` (``session_settings``), so a config error is
reported with its field before any socket opens. Secrets (venue Password(554)) come from
an environment variable (``password_env``) or a file (``password_file``), never the TOML.
The ``[routing]`` and ``[risk]`` sections belong to their engines.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.apps.housekeeping import DayEnd
from gateway.common import procs
from gateway.common.collector import CollectorConfig
from gateway.fix.schedule import SessionSchedule
from gateway.fix.settings import SessionSettings
from gateway.core.risk.config import RiskConfig
from gateway.core.router.config import RoutingConfig

_COMP_ID_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")


def _comp_id(value: str) -> str:
    if not value or not set(value) <= _COMP_ID_CHARS:
        raise ValueError(f"a CompID must be non-empty letters, digits, '_', '-' or '.' (got {value!r})")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TlsSection(_Strict):
    """TLS for the OMS acceptor or a venue (native engine; quickfix only if built with SSL).
    PEM files. Acceptor: cert + key, ``ca`` + ``require_client_cert`` to verify client
    certificates. Initiator: ``ca`` to verify the venue, ``server_name`` to check (default:
    the host dialed), cert + key for a client certificate."""
    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    server_name: str | None = None
    require_client_cert: bool = False
    verify: bool = True

    def to_engine(self):
        from gateway.fix.transport import TlsConfig
        return TlsConfig(cert_file=self.cert, key_file=self.key, ca_file=self.ca,
                         require_client_cert=self.require_client_cert, server_hostname=self.server_name,
                         verify=self.verify)


class _SessionOptions(_Strict):
    """FIX session switches shared by OMS clients and venues (QuickFIX's meaning)."""
    reset_on_logout: bool | None = None      # None: same as reset_on_logon
    reset_on_disconnect: bool | None = None  # None: same as reset_on_logon
    validate_incoming: bool = True           # dictionary validation of what the peer sends (a trusted
                                             # venue's reports: false saves ~15 us per message here)
    validate_user_defined_fields: bool = True
    check_latency: bool = True
    max_latency_s: float = Field(120, gt=0)
    dictionary: str | None = None            # FIX dictionary (QuickFIX XML); default fix_specs/FIX44.xml
    # When the session runs (QuickFIX StartTime/EndTime/StartDay/EndDay/TimeZone/LogonTime/
    # LogoutTime, see gateway/fix/schedule.py); None: non-stop. A venue's schedule end also
    # expires its open Day orders to the OMS (ExecType C).
    schedule: SessionSchedule | None = None


def _secret(env: str | None, file: str | None, what: str) -> str | None:
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ValueError(f"{what}: environment variable {env} is not set")
        return value
    if file:
        try:
            return Path(file).read_text().strip()
        except OSError as exc:
            raise ValueError(f"{what}: cannot read password_file {file}: {exc}") from None
    return None


class OmsClient(_SessionOptions):
    """An upstream OMS/EMS allowed to log on (its SenderCompID)."""
    comp_id: str
    password: str | None = None          # checked against Password(554) at logon when set
    password_env: str | None = None      # ... or taken from this environment variable
    password_file: str | None = None     # ... or from this file
    username: str | None = None          # checked against Username(553) when set
    reset_on_logon: bool = False         # e.g. for certification runs that start every case at 1

    _check_id = field_validator("comp_id")(lambda cls, v: _comp_id(v))

    def expected_password(self) -> str | None:
        return self.password if self.password is not None else _secret(
            self.password_env, self.password_file, f"client {self.comp_id}")


class OmsConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(9100, ge=1, le=65535)
    comp_id: str = "FIXGW"
    heartbeat_s: int = Field(30, ge=1, le=3600)     # counterparties' HeartBtInt is taken from their logon
    tls: TlsSection | None = None
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


class VenueConfig(_SessionOptions):
    name: str                            # LastMkt(30) and ExDestination(100) value
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    failover: list[str] = []             # more "host:port" addresses, tried in order after host:port
    sender_comp_id: str = "FIXGW"
    target_comp_id: str | None = None    # default: the venue name
    heartbeat_s: int = Field(30, ge=1, le=3600)
    reconnect_s: int = Field(1, ge=1, le=3600)
    reset_on_logon: bool = False
    username: str | None = None          # Username(553) in our Logon
    password_env: str | None = None      # Password(554) from this environment variable
    password_file: str | None = None     # ... or from this file (first line)
    tls: TlsSection | None = None
    # Our TestRequest latency probes on this session. Off for a venue that throttles
    # TestRequests (or a certification run): the router then ranks it by order
    # acknowledgement time (NewOrderSingle -> first ExecutionReport) instead.
    probes: bool = True
    # --- probe rate cap (issue 12) ---
    # At most this many of our TestRequests per second on this session, whatever
    # routing.probe_interval_ms asks (real venues throttle them; set the venue's limit).
    # A cap below the probe interval's rate stretches the venue's staleness window with it.
    probe_max_per_s: float = Field(20.0, gt=0, le=1000)
    market_data: bool = True             # subscribe to its books (routing.md_symbols) on logon

    _check_ids = field_validator("name", "sender_comp_id")(lambda cls, v: _comp_id(v))

    @field_validator("failover")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        for a in v:
            host, sep, port = a.rpartition(":")
            if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"failover address must be host:port (got {a!r})")
        return v

    @property
    def target(self) -> str:
        return self.target_comp_id or self.name

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(self.host, self.port)] + [(a.rpartition(":")[0], int(a.rpartition(":")[2])) for a in self.failover]

    def logon_fields(self) -> tuple[tuple[int, str], ...]:
        out = []
        if self.username:
            out.append((553, self.username))
        password = _secret(self.password_env, self.password_file, f"venue {self.name}")
        if password is not None:
            out.append((554, password))
        return tuple(out)


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
    engine: Literal["native", "quickfix"] = "native"   # the FIX backend of every session
    store_dir: str = "var/gateway/store"       # FileStores of every session + the order journal
    # FIX message and event logs per session, rotated daily and by size: None (default) =
    # <store_dir>/../log, i.e. var/gateway/log beside var/gateway/store; "" = no logs.
    log_dir: str | None = None
    # Session stores (native engine): "never" (records reach the OS before their bytes reach
    # the wire: survives SIGKILL, not a power cut), "interval" (fsync at most every second),
    # "always" (fsync per record: survives a power cut, costs a disk flush per message).
    store_fsync: Literal["never", "interval", "always"] = "never"
    # Native engine: run each latency probe's code once on a throwaway twin session just
    # before the probe, so a lone probe does not pay cold CPU caches in our floor
    # (docs/operations.md "Latency probes"). Off: it holds the loop ~0.3 ms per probe and
    # does not change the venue latency the router ranks by.
    warm_probes: bool = False
    # The trading-day end: every open Day order is canceled at its venue and expired to the
    # OMS, e.g. { time = "17:00:00", time_zone = "America/New_York" }. None: only venue
    # schedules end Day orders.
    day_end: DayEnd | None = None
    # The order journal is compacted (snapshot + fresh file, the old one kept as .1) after
    # start-up replay and when it passes this many MB at a quiet moment; 0 = only at start-up.
    journal_compact_mb: int = Field(256, ge=0)
    # An ended order keeps its venue side (venue orders, their ClOrdIDs and ExecIDs) this many
    # seconds for late reports, then it is retired: the OMS can still ask its status, is still
    # told "too late" to a cancel and refused a duplicate ClOrdID; a venue's report for it is
    # then ignored (counted). Memory per order of the day: ~1.3 KB -> ~0.7 KB (docs/operations.md).
    retire_after_s: float = Field(60.0, ge=0.0)
    # Pin the process to one CPU (-1 = the last one the process may use; None = no pinning).
    # Only one thread runs Python at a time (the GIL); with quickfix's two threads on one
    # core a GIL hand-over is a local switch, not a cross-core wake-up (measured: +46% orders/s).
    cpu: int | None = None
    # Native engine: after each read the loop keeps polling its sockets, without sleeping, for
    # this many microseconds (0 = off): the venue's answer to an order just sent is read
    # without a process wake-up. It keeps a CPU busy: use it with ``cpu`` on a core of its own.
    busy_poll_us: int = Field(0, ge=0, le=1_000_000)
    # Native engine: while no orders move, run one synthetic order through twins of the
    # order path (sessions, edges, core; nothing real) every this many ms, so that the next
    # real order finds its code in the CPU caches (0 = off). Costs CPU while idle
    # (gateway/apps/server/warm.py; docs/operations.md "Keeping the order path warm").
    warm_every_ms: float = Field(0.0, ge=0, le=1_000)
    oms: OmsConfig
    venues: list[VenueConfig] = Field(min_length=1)
    admin: AdminConfig = AdminConfig()
    routing: RoutingConfig = RoutingConfig()
    risk: RiskConfig = RiskConfig()
    # When the garbage collector runs: by the loop at pauses in the flow and within bounds,
    # not in the middle of an order (gateway/common/collector.py, docs/operations.md).
    collector: CollectorConfig = CollectorConfig()

    @field_validator("cpu")
    @classmethod
    def _cpu_available(cls, v: int | None) -> int | None:
        return procs.check_cpu(v)

    def pin_cpu(self) -> int | None:
        """Apply ``cpu`` to the calling thread (threads started later inherit it)."""
        return procs.pin_cpu(self.cpu)

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
        if self.busy_poll_us and self.engine != "native":
            raise ValueError("busy_poll_us: only the native engine polls (quickfix runs its own threads); set it to 0")
        if self.warm_every_ms and self.engine != "native":
            raise ValueError("warm_every_ms: only the native engine has session twins to warm with; set it to 0")
        if 0 < self.warm_every_ms < 0.1:
            raise ValueError(f"warm_every_ms: {self.warm_every_ms} is below 0.1 ms (a warm-up takes about that long)")
        return self

    def venue(self, name: str) -> VenueConfig:
        return next(v for v in self.venues if v.name == name)

    @property
    def log_path(self) -> Path | None:
        """Where FIX message logs go (None: off)."""
        if self.log_dir is None:
            return Path(self.store_dir).parent / "log"
        return Path(self.log_dir) if self.log_dir else None

    @property
    def journal_path(self) -> Path:
        return Path(self.store_dir) / "orders.journal"


def _resets(o, reset_on_logon: bool) -> dict:
    return {"reset_on_logon": reset_on_logon,
            "reset_on_logout": reset_on_logon if o.reset_on_logout is None else o.reset_on_logout,
            "reset_on_disconnect": reset_on_logon if o.reset_on_disconnect is None else o.reset_on_disconnect}


def _common(o) -> dict:
    return {"validate_messages": o.validate_incoming, "validate_user_defined_fields": o.validate_user_defined_fields,
            "check_latency": o.check_latency, "max_latency_s": o.max_latency_s, "dictionary_path": o.dictionary,
            "schedule": o.schedule}


def oms_session_settings(cfg: GatewayConfig) -> list[SessionSettings]:
    """One acceptor ``SessionSettings`` per OMS client."""
    return [SessionSettings(sender_comp_id=cfg.oms.comp_id, target_comp_id=c.comp_id, role="acceptor",
                            heartbeat_s=cfg.oms.heartbeat_s, timestamp_precision=6,
                            **_resets(c, c.reset_on_logon), **_common(c))
            for c in cfg.oms.clients]


def venue_session_settings(v: VenueConfig) -> SessionSettings:
    """The initiator ``SessionSettings`` of one venue (secrets resolved now: ValueError names them)."""
    return SessionSettings(sender_comp_id=v.sender_comp_id, target_comp_id=v.target, role="initiator",
                           heartbeat_s=v.heartbeat_s, timestamp_precision=6, logon_fields=v.logon_fields(),
                           **_resets(v, v.reset_on_logon), **_common(v))


def session_settings(cfg: GatewayConfig) -> tuple[list[SessionSettings], list[SessionSettings]]:
    """(OMS acceptor settings, venue initiator settings), validated, for either engine."""
    return oms_session_settings(cfg), [venue_session_settings(v) for v in cfg.venues]
